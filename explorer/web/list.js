/* contprof explorer — the profile list (home page): search box, time range,
 * facet panel, and one sortable line per profile with its CPU (cores used)
 * and allocation rate. All state lives in the URL (#/?env=prod&sort=…), so
 * a filtered view can be bookmarked; sorting and paging are done by the
 * server because it holds more profiles than one page shows. */
'use strict';
(function () {
  var h = CP.h;
  var PAGE = 100;
  var LIVE_S = 10;
  var SHORT_MS = 1000;   /* explorer/src/measures.h EX_MIN_RATE_DURATION_NS: no rates below it */

  var COLUMNS = [
    { key: 'service', label: 'Service', cls: 'strong.narrow', tip: function (r) { return r.service; } },
    { key: 'env', label: 'Env', tip: function (r) { return r.env; } },
    { key: 'version', label: 'Version', tip: function (r) { return r.version; } },
    { key: 'host', label: 'Host', cls: 'narrow', tip: function (r) { return r.host; } },
    { key: 'runtime', label: 'Runtime', cls: 'narrow', fmt: function (v, r) { return CP.fmtRuntime(r); },
      tip: function (r) { return CP.fmtRuntime(r); } },
    { key: 'language', label: 'Language', fmt: function (v) { return CP.displayLanguage(v) || '–'; },
      tip: function (r) { return r.language; } },
    { key: 'start', label: 'Start', value: function (r) { return r.start_ms; }, fmt: CP.fmtShortTime,
      tip: function (r) { return CP.fmtTime(r.start_ms) + ' – ' + CP.fmtTime(r.end_ms); } },
    { key: 'duration', label: 'Duration', num: true, value: function (r) { return r.duration_ms; },
      fmt: function (v, r) { return CP.fmtDuration(r.duration_ms) + (r.duration_ms < SHORT_MS ? ' (short)' : ''); },
      tip: function (r) { return r.duration_ms < SHORT_MS ? 'A short tail profile (flushed at exit): too short for CPU or allocation rates' : null; } },
    { key: 'cpu_cores', label: 'CPU', num: true, fmt: CP.fmtCores,
      title: 'Cores used: CPU time / duration, summed over threads (200% = two cores busy)' },
    { key: 'alloc_rate', label: 'Mem. alloc', num: true, fmt: CP.fmtBytesRate,
      title: 'Memory allocation: bytes allocated per second over the profile' }
  ];

  function update(p) { CP.go('', p, true); }

  /* A copy of params with k set (or removed when v is empty), back on page 1. */
  function withParam(params, k, v) {
    var p = new URLSearchParams(params);
    if (v === '' || v == null) p.delete(k); else p.set(k, v);
    p.delete('offset');
    return p;
  }

  function toolbar(st) {
    var params = st.params;
    var search = h('input#q.search', { type: 'search', placeholder: 'Search tags (e.g. shop prod web-1)…',
      value: params.get('q') || '', 'aria-label': 'Search tags',
      onkeydown: function (e) { if (e.key === 'Enter') update(withParam(params, 'q', search.value.trim())); } });
    search.addEventListener('search', function () { update(withParam(params, 'q', search.value.trim())); });
    st.compareBtn = h('button.btn#compare-btn', { type: 'button', disabled: true,
      title: 'Tick two profiles to compare them', onclick: function () {
        CP.go('compare', { a: st.picked[0].id, b: st.picked[1].id });
      } }, 'Compare selected');
    return h('div.toolbar', search, CP.rangePicker(params, update), h('span.spacer'), st.compareBtn,
      h('button.btn#aggregate-btn', { type: 'button', title: 'Merge the matching profiles into one flame graph',
        onclick: function () { CP.go('aggregate', params); } }, 'Aggregate'),
      h('button.btn', { type: 'button', title: 'Reload', onclick: function () { update(params); } }, 'Refresh'),
      h('label.field', { title: 'Reload the list every ' + LIVE_S + ' s while no row is ticked' },
        h('input#live', { type: 'checkbox', checked: params.get('live') === '1',
          onchange: function (e) { update(withParam(params, 'live', e.target.checked ? '1' : '')); } }), ' Live'));
  }

  /* Live mode: reload the data in place while this page is on screen and
   * nothing is ticked (a reload would drop the ticks). */
  function scheduleLive(st) {
    if (st.params.get('live') !== '1') return;
    setTimeout(function () {
      if (!CP.current(st.gen)) return;
      if (st.picked.length) scheduleLive(st);
      else load(st);
    }, LIVE_S * 1000);
  }

  /* Tick or untick a row for comparison; at most two stay ticked. */
  function pick(st, row, on) {
    st.picked = st.picked.filter(function (p) { return p.id !== row.id; });
    if (on) st.picked.push(row);
    if (st.picked.length > 2) st.picked.shift();
    /* A is the older profile: deltas then read as "what changed since" */
    st.picked.sort(function (x, y) { return x.start_ms - y.start_ms; });
    st.body.querySelectorAll('input.pick').forEach(function (c) {
      c.checked = st.picked.some(function (p) { return String(p.id) === c.getAttribute('data-id'); });
    });
    st.compareBtn.disabled = st.picked.length !== 2;
  }

  function onFacets(params, sel) {
    var p = new URLSearchParams(params);
    CP.facets.keys.forEach(function (k) { p.delete(k); (sel[k] || []).forEach(function (v) { p.append(k, v); }); });
    p.delete('offset');
    update(p);
  }

  function show(st, res) {
    var params = st.params;
    CP.clear(st.side).appendChild(CP.facets.render(res.facets, selectedFacets(params), function (sel) { onFacets(params, sel); }));
    CP.clear(st.body);
    st.body.appendChild(summary(res, params));
    st.body.appendChild(table(st, res.profiles || []).el);
    st.body.appendChild(pager(res, st.offset, params));
  }

  function page(main, route) {
    var params = route.params;
    var st = { gen: CP.gen, params: params, picked: [], offset: +params.get('offset') || 0,
               sortKey: params.get('sort') || 'start', desc: params.get('order') !== 'asc',
               side: h('aside.side', CP.loading()), body: h('section.list-body', CP.loading()) };
    main.appendChild(toolbar(st));
    main.appendChild(h('div.list-layout', st.side, st.body));
    load(st);
  }

  function load(st) {
    var q = CP.filters(st.params);
    q.sort = st.sortKey; q.order = st.desc ? 'desc' : 'asc'; q.limit = PAGE; q.offset = st.offset;
    CP.getJSON('/api/profiles' + CP.qs(q)).then(function (res) {
      if (CP.current(st.gen)) show(st, res);
    }).catch(function (e) {
      if (!CP.current(st.gen)) return;
      CP.clear(st.side);
      CP.clear(st.body).appendChild(CP.errorBox('Could not load profiles', e));
    }).then(function () { scheduleLive(st); });
  }

  function selectedFacets(params) {
    var s = {};
    CP.facets.keys.forEach(function (k) { s[k] = params.getAll(k); });
    return s;
  }

  function summary(res, params) {
    var chips = [];
    CP.facets.keys.forEach(function (k) {
      params.getAll(k).forEach(function (v) {
        chips.push(h('button.chip', { type: 'button', title: 'Remove this filter', onclick: function () {
          var p = new URLSearchParams();
          params.forEach(function (pv, pk) { if (!(pk === k && pv === v) && pk !== 'offset') p.append(pk, pv); });
          update(p);
        } }, k + ':' + (v || '(none)') + ' ×'));
      });
    });
    var n = res.total || 0;
    return h('div.list-summary', h('span#result-count', n + (n === 1 ? ' profile' : ' profiles')), chips);
  }

  function table(st, rows) {
    var params = st.params;
    var cols = [{ key: 'pick', label: '', nosort: true, value: function () { return null; }, fmt: function () { return ''; } }]
      .concat(COLUMNS);
    var t = new CP.Table({
      columns: cols, rows: rows, sortKey: st.sortKey, desc: st.desc,
      empty: 'No profiles match. Point a profiler at this explorer (agent_url=' + location.origin + ') or widen the filters.',
      onSort: function (k, d) {
        var p = new URLSearchParams(params);
        p.set('sort', k); p.set('order', d ? 'desc' : 'asc'); p.delete('offset');
        update(p);
      },
      rowAttrs: function (r) { return { 'data-id': r.id, title: r.tags || null }; },
      onRowClick: function (r, e) {
        if (e.target.closest('input.pick')) return;
        CP.go('profile/' + r.id, {});
      }
    });
    /* the checkbox column: tick two profiles to compare them */
    t.el.querySelectorAll('tbody tr').forEach(function (tr, i) {
      var box = h('input.pick', { type: 'checkbox', 'data-id': rows[i].id, 'aria-label': 'Select for comparison',
        onchange: function () { pick(st, rows[i], box.checked); } });
      tr.firstChild.appendChild(box);
    });
    var th = t.el.querySelector('th[data-key="pick"]');
    if (th) CP.clear(th).appendChild(h('span.sr', 'Select'));
    return t;
  }

  function pager(res, offset, params) {
    var total = res.total || 0, n = (res.profiles || []).length;
    if (total <= n) return h('span');
    function to(o) { var p = new URLSearchParams(params); p.set('offset', String(o)); update(p); }
    return h('div.pager',
      h('button.btn.small', { type: 'button', disabled: offset <= 0, onclick: function () { to(Math.max(0, offset - PAGE)); } }, '‹ Previous'),
      ' ' + (offset + 1) + '–' + (offset + n) + ' of ' + total + ' ',
      h('button.btn.small', { type: 'button', disabled: offset + n >= total, onclick: function () { to(offset + PAGE); } }, 'Next ›'));
  }

  CP.pages.list = page;
})();
