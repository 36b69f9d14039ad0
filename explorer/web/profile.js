/* contprof explorer — the profile page (#/profile/ID?tab=…&type=…): header
 * with the profile's identity, times and measures; buttons to download the
 * original pprof, go full screen, compare with the previous profile of the
 * same service and aggregate the service; then four tabs whose bodies live
 * in tabs.js (CP.profileTabs). */
'use strict';
(function () {
  var h = CP.h;
  var TABS = [['profiles', 'Profiles'], ['analysis', 'Analysis'], ['metrics', 'Metrics'], ['info', 'Runtime Info']];

  function page(main, route) {
    var gen = CP.gen, id = route.path[1];
    if (!/^\d+$/.test(id || '')) { CP.pages.notfound(main); return; }
    main.appendChild(CP.loading());
    CP.getJSON('/api/profiles/' + id).then(function (p) {
      if (!CP.current(gen)) return;
      CP.clear(main);
      var tab = route.params.get('tab') || 'profiles';
      if (!TABS.some(function (t) { return t[0] === tab; })) tab = 'profiles';
      var wrap = h('div.profile-page');
      wrap.appendChild(header(p));
      wrap.appendChild(CP.tabs(TABS, tab, function (t) {
        var q = new URLSearchParams(route.params);
        q.set('tab', t);
        CP.go('profile/' + id, q, true);
      }));
      var body = h('div.tab-body', { role: 'tabpanel', 'data-tab': tab });
      wrap.appendChild(body);
      main.appendChild(wrap);
      CP.profileTabs[tab](body, p, route.params, gen);
    }).catch(function (e) {
      if (!CP.current(gen)) return;
      CP.clear(main).appendChild(CP.errorBox('Could not load profile ' + id, e));
      main.appendChild(h('p', h('a', { href: '#/' }, '← Back to the profile list')));
    });
  }

  function fact(label, value, title) {
    return h('div.fact', { title: title || null }, h('span.k', label), h('span.v', value == null || value === '' ? '–' : value));
  }

  /* <main> goes full screen, not this page: the router re-renders inside
   * it, so switching tabs keeps the full-screen view */
  function fullscreenButton() {
    return h('button.btn#fullscreen', { type: 'button', title: 'Full screen (Esc to leave)', onclick: function () {
      var main = document.getElementById('main');
      if (document.fullscreenElement) document.exitFullscreen();
      else if (main.requestFullscreen) main.requestFullscreen().catch(function () { /* refused by the browser: stay */ });
    } }, document.fullscreenElement ? 'Exit full screen' : 'Full screen');
  }

  function actions(p) {
    var cmp = h('button.btn#compare-prev', { type: 'button', title: 'Compare with the previous profile of this service and env',
      onclick: function () { comparePrevious(p, cmp); } }, 'Compare with previous');
    return h('div.actions',
      h('a.btn.primary#download', { href: '/api/profiles/' + p.id + '/pprof', download: (p.service || 'profile') + '-' + p.id + '.pprof.gz',
        title: 'The pprof exactly as received; opens with go tool pprof' }, '⤓ Download pprof'),
      cmp,
      h('a.btn', { href: CP.link('aggregate', { service: [p.service || ''], env: [p.env || ''], type: p['default_type'] }),
        title: 'All profiles of this service as one flame graph' }, 'Aggregate service'),
      fullscreenButton(),
      h('button.btn.danger#delete-profile', { type: 'button', title: 'Delete this profile from the explorer',
        onclick: function () { deleteProfile(p); } }, 'Delete…'),
      h('button.btn.danger#delete-service', { type: 'button', title: 'Delete every profile of ' + (p.service || '(none)'),
        onclick: function () { deleteService(p); } }, 'Delete service…'));
  }

  function deleteProfile(p) {
    if (!window.confirm('Delete profile #' + p.id + ' of ' + (p.service || '(none)') + '? This cannot be undone.')) return;
    CP.del('/api/profiles/' + p.id).then(function () { CP.go('', {}); }, function (e) { window.alert('Could not delete: ' + e.message); });
  }

  function deleteService(p) {
    var svc = p.service || '';
    if (!window.confirm('Delete EVERY profile of service "' + svc + '"? This cannot be undone.')) return;
    CP.del('/api/services/' + encodeURIComponent(svc)).then(function (j) {
      window.alert('Deleted ' + j.deleted + ' profile' + (j.deleted === 1 ? '' : 's') + ' of ' + svc + '.');
      CP.go('', {});
    }, function (e) { window.alert('Could not delete: ' + e.message); });
  }

  /* The end's date only when it differs from the start's. */
  function endTime(p) {
    var s = CP.fmtTime(p.start_ms), e = CP.fmtTime(p.end_ms);
    return s.slice(0, 10) === e.slice(0, 10) ? e.slice(11) : e;
  }

  /* Identity and time on the left, the profile's measures on the right. */
  function header(p) {
    return h('header.profile-head',
      h('div.title-row',
        h('h1', h('a.crumb', { href: '#/' }, 'Profiles'), ' / ', h('span#profile-service', p.service || '(no service)'),
          stepper(p)),
        actions(p)),
      h('div.head-grid',
        h('div.facts',
          fact('Env', p.env), fact('Version', p.version), fact('Host', p.host),
          fact('Runtime', CP.fmtRuntime(p)), fact('Language', CP.displayLanguage(p.language)), fact('PID', p.pid),
          fact('Start', CP.fmtTime(p.start_ms)), fact('End', endTime(p), CP.fmtTime(p.end_ms)),
          fact('Duration', CP.fmtDuration(p.duration_ms))),
        h('div.facts.measures',
          fact('CPU', CP.fmtCores(p.cpu_cores), 'Cores used: CPU time / duration, summed over threads (200% = two cores busy)'),
          fact('Memory allocation', CP.fmtBytesRate(p.alloc_rate), 'Bytes allocated per second over the profile'),
          fact('Live heap', p.live_heap == null ? null : CP.fmtBytes(p.live_heap)),
          fact('Threads', p.threads))));
  }

  /* The profile of the same service and env just before (older) or after
   * p, found through the list API; then(neighbour) runs when there is one,
   * otherwise btn says there is none. */
  function neighbour(p, older, btn, then) {
    var q = { service: [p.service || ''], env: [p.env || ''], sort: 'start', order: older ? 'desc' : 'asc', limit: 5 };
    if (older) q.to = p.start_ms - 1; else q.from = p.end_ms;
    btn.disabled = true;
    CP.getJSON('/api/profiles' + CP.qs(q)).then(function (res) {
      var n = (res.profiles || []).filter(function (x) {
        return x.id !== p.id && (older ? x.start_ms < p.start_ms : x.start_ms > p.start_ms);
      })[0];
      if (n) then(n);
      else btn.textContent = older ? 'No earlier profile' : 'No later profile';
    }).catch(function (e) { btn.textContent = 'Lookup failed'; btn.title = e.message; });
  }

  function comparePrevious(p, btn) {
    neighbour(p, true, btn, function (prev) { CP.go('compare', { a: prev.id, b: p.id, type: p['default_type'] }); });
  }

  /* ‹ › step to the previous / next profile of the service, same tab. */
  function stepper(p) {
    var tab = CP.route().params.get('tab');
    function btn(older) {
      var b = h('button.btn.small' + (older ? '#prev-profile' : '#next-profile'), { type: 'button',
        title: older ? 'Previous profile of this service and env' : 'Next profile of this service and env',
        onclick: function () { neighbour(p, older, b, function (n) { CP.go('profile/' + n.id, { tab: tab }); }); } },
        older ? '‹ Older' : 'Newer ›');
      return b;
    }
    return h('span.stepper', btn(true), btn(false));
  }

  CP.pages.profile = page;
})();
