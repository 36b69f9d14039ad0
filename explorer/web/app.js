/* contprof explorer — the page shell: hash router (#/ list, #/profile/ID,
 * #/aggregate, #/compare), shared bits every page uses (time-range picker,
 * filter query strings, profile-type names) and start-up. Each page module
 * registers CP.pages[name] = function (main, route) and renders into main;
 * a route change bumps CP.gen so late answers of the old page are ignored. */
'use strict';
(function () {
  var h = CP.h;
  CP.pages = CP.pages || {};
  CP.gen = 0;

  /* ---- routing ------------------------------------------------------ */

  CP.route = function () {
    var raw = location.hash.replace(/^#\/?/, '');
    var q = raw.indexOf('?');
    var path = (q >= 0 ? raw.slice(0, q) : raw).split('/').filter(Boolean);
    return { path: path, params: new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '') };
  };

  /* Navigate; params: URLSearchParams or plain object. replace=true keeps
   * history clean for state tweaks (sorting, filters, tabs). */
  CP.go = function (path, params, replace) {
    var p = params instanceof URLSearchParams ? params : new URLSearchParams(CP.qs(params || {}).slice(1));
    var s = p.toString();
    var url = '#/' + path + (s ? '?' + s : '');
    if (replace) { history.replaceState(null, '', url); render(); } else location.hash = url;
  };

  CP.link = function (path, params) {
    var s = CP.qs(params || {});
    return '#/' + path + s;
  };

  /* Is this async answer still for the page on screen? */
  CP.current = function (gen) { return gen === CP.gen; };

  function render() {
    var r = CP.route(), main = document.getElementById('main');
    CP.gen++;
    var name = r.path[0] || 'list';
    var page = CP.pages[name] || CP.pages.notfound;
    CP.clear(main);
    document.querySelectorAll('.topnav a').forEach(function (a) {
      a.classList.toggle('on', a.getAttribute('data-page') === name);
    });
    try { page(main, r); } catch (e) { main.appendChild(CP.errorBox('This page failed', e)); }
  }

  CP.pages.notfound = function (main) {
    main.appendChild(h('div.panel', h('h2', 'Page not found'), h('p', h('a', { href: '#/' }, 'Back to the profile list'))));
  };

  /* ---- filters and time ranges --------------------------------------- */

  CP.RANGES = [['', 'All time'], ['15m', 'Last 15 minutes'], ['1h', 'Last hour'], ['6h', 'Last 6 hours'],
               ['24h', 'Last 24 hours'], ['7d', 'Last 7 days'], ['30d', 'Last 30 days'], ['custom', 'Custom…']];
  var UNIT_MS = { m: 60000, h: 3600000, d: 86400000 };

  /* Turn route params (range=1h, or from/to in ms) into API from/to. */
  CP.timeFilter = function (params) {
    var range = params.get('range') || '';
    var m = /^(\d+)([mhd])$/.exec(range);
    if (m) return { from: Date.now() - (+m[1]) * UNIT_MS[m[2]] };
    if (range === 'custom') return { from: params.get('from') || null, to: params.get('to') || null };
    return {};
  };

  /* API filter object from route params (facets repeated, q, time). */
  CP.filters = function (params) {
    var f = CP.timeFilter(params);
    CP.facets.keys.forEach(function (k) { var v = params.getAll(k); if (v.length) f[k] = v; });
    if (params.get('q')) f.q = params.get('q');
    return f;
  };

  function toLocalInput(ms) {
    if (!ms) return '';
    var d = new Date(+ms - new Date(+ms).getTimezoneOffset() * 60000);
    return d.toISOString().slice(0, 16);
  }

  /* Time-range picker bound to route params; onChange(params) gets a copy. */
  CP.rangePicker = function (params, onChange) {
    var range = params.get('range') || '';
    var sel = h('select#range', { 'aria-label': 'Time range' }, CP.RANGES.map(function (r) {
      return h('option', { value: r[0], selected: r[0] === range }, r[1]);
    }));
    var from = h('input', { type: 'datetime-local', 'aria-label': 'From', value: toLocalInput(params.get('from')) });
    var to = h('input', { type: 'datetime-local', 'aria-label': 'To', value: toLocalInput(params.get('to')) });
    var custom = h('span.custom-range', { hidden: range !== 'custom' }, from, ' – ', to);
    function emit() {
      var p = new URLSearchParams(params);
      p.set('range', sel.value);
      if (!sel.value) p.delete('range');
      p.delete('from'); p.delete('to'); p.delete('offset');
      if (sel.value === 'custom') {
        if (from.value) p.set('from', String(new Date(from.value).getTime()));
        if (to.value) p.set('to', String(new Date(to.value).getTime()));
      }
      onChange(p);
    }
    sel.addEventListener('change', function () { custom.hidden = sel.value !== 'custom'; if (sel.value !== 'custom') emit(); });
    from.addEventListener('change', emit);
    to.addEventListener('change', emit);
    return h('span.range', sel, custom);
  };

  /* ---- profile types ------------------------------------------------- */

  var TYPE_NAMES = {
    'cpu-time': 'CPU time', 'cpu-samples': 'CPU samples', 'wall-time': 'Wall time',
    'wall-samples': 'Wall samples', 'alloc-space': 'Allocated memory', 'alloc-samples': 'Allocations (count)',
    'heap-space': 'Live heap', 'heap-live-samples': 'Live heap objects', 'lock-acquire-wait': 'Lock wait time',
    'lock-acquire': 'Lock acquisitions', 'exception-samples': 'Exceptions',
    /* other clients' names for the same things (dd-trace for Node, Go) */
    cpu: 'CPU time', wall: 'Wall time', sample: 'Wall samples', inuse_space: 'Live heap',
    inuse_objects: 'Live heap objects', alloc_space: 'Allocated memory', alloc_objects: 'Allocations (count)',
    space: 'Live heap', objects: 'Live heap objects', timeline: 'Timeline events', delay: 'Lock wait time',
    contentions: 'Lock acquisitions'
  };
  var TYPE_ORDER = ['cpu-time', 'cpu', 'wall-time', 'wall', 'alloc-space', 'alloc_space', 'heap-space', 'inuse_space',
                    'space', 'lock-acquire-wait', 'delay', 'exception-samples', 'cpu-samples', 'wall-samples', 'sample',
                    'alloc-samples', 'alloc_objects', 'heap-live-samples', 'inuse_objects', 'objects', 'lock-acquire',
                    'contentions', 'timeline'];

  CP.typeName = function (t) { return TYPE_NAMES[t] || t; };

  CP.sortTypes = function (types) {
    function rank(t) { var i = TYPE_ORDER.indexOf(t); return i < 0 ? 99 : i; }
    return types.slice().sort(function (a, b) { return rank(a) - rank(b) || (a < b ? -1 : 1); });
  };

  /* ---- small shared widgets ------------------------------------------ */

  CP.fmtCores = function (c) { return c == null ? '–' : CP.fmtPct(c, c < 0.1 ? 2 : 1); };

  CP.fmtDuration = function (ms) { return ms == null ? '–' : CP.fmtNs(ms * 1e6); };

  CP.fmtRuntime = function (p) {
    return [CP.displayRuntime(p.runtime), p.runtime_version].filter(Boolean).join(' ') || '–';
  };

  CP.loading = function () { return h('div.loading', 'Loading…'); };

  /* Show "Loading…" in el, GET url, then fill(json) into the emptied el;
   * an error (or a throw in fill) becomes a one-line box naming `what`.
   * Answers arriving after the page changed (gen) are dropped. */
  CP.loadInto = function (el, url, gen, what, fill) {
    el.appendChild(CP.loading());
    CP.getJSON(url).then(function (j) {
      if (!CP.current(gen)) return;
      CP.clear(el);
      fill(j);
    }).catch(function (e) {
      if (CP.current(gen)) CP.clear(el).appendChild(CP.errorBox('Could not load ' + what, e));
    });
  };

  CP.tabs = function (names, active, onPick) {
    return h('div.tabs', { role: 'tablist' }, names.map(function (n) {
      return h('button.tab' + (n[0] === active ? '.on' : ''), {
        type: 'button', role: 'tab', 'data-tab': n[0], 'aria-selected': n[0] === active ? 'true' : 'false',
        onclick: function () { onPick(n[0]); }
      }, n[1]);
    }));
  };

  /* The top bar's "N profiles · vX": also tells at once if the server is down. */
  function health() {
    var el = document.getElementById('health');
    CP.getJSON('/api/health').then(function (j) {
      el.textContent = (j.profiles != null ? j.profiles + ' profiles stored' : '') + (j.version ? ' · v' + j.version : '');
    }).catch(function (e) { el.textContent = 'server unreachable: ' + e.message; });
  }

  document.addEventListener('fullscreenchange', function () {
    var b = document.getElementById('fullscreen');
    if (b) b.textContent = document.fullscreenElement ? 'Exit full screen' : 'Full screen';
  });

  window.addEventListener('hashchange', render);
  document.addEventListener('DOMContentLoaded', function () { render(); health(); });
})();
