/* contprof explorer — the "flame graph + function table" view shared by a
 * profile's Profiles tab and the aggregate page: loads a /flame and a
 * /table answer (explorer/API.md), draws CP.Flame and a sortable summary of
 * functions (self, total, shares). Clicking a function in the table
 * highlights it in the flame graph; searching the flame graph narrows the
 * table to the matching functions. */
'use strict';
(function () {
  var h = CP.h;

  function columns(unit, total) {
    function share(v) { return total ? v / total : 0; }
    return [
      { key: 'name', label: 'Function', cls: 'fn',
        tip: function (r) { return r.name + (r.kind ? '\n' + CP.frameKindLabel(r.kind) : ''); } },
      { key: 'file', label: 'File', cls: 'file', tip: function (r) { return r.file; }, fmt: shortPath },
      { key: 'self', label: 'Self', num: true, fmt: function (v) { return CP.fmtUnit(v, unit); } },
      { key: 'self_pct', label: 'Self %', num: true, value: function (r) { return share(r.self); },
        fmt: function (v) { return CP.fmtPct(v); }, bar: function (r) { return share(r.self); } },
      { key: 'total', label: 'Total', num: true, fmt: function (v) { return CP.fmtUnit(v, unit); } },
      { key: 'total_pct', label: 'Total %', num: true, value: function (r) { return share(r.total); },
        fmt: function (v) { return CP.fmtPct(v); }, bar: function (r) { return share(r.total); } }
    ];
  }

  /* Long paths keep their informative end: "…/site-packages/app/views.py". */
  function shortPath(f) {
    if (!f) return '–';
    return f.length > 48 ? '…' + f.slice(f.length - 47) : f;
  }

  /* Fill `el` with the view. flameUrl/tableUrl: API URLs; gen: the page
   * generation (answers for an older page are dropped); onLoad(flameJSON)
   * lets the caller show extra facts (e.g. how many profiles were merged);
   * search: a term to highlight once loaded. */
  function flameView(el, opts) {
    /* A single profile (opts.profileId): filters and a function detail
     * panel; the view redraws itself when the filters change. */
    if (opts.profileId && !opts.noFilters) return filteredView(el, opts);
    var table = null;
    /* the flame graph's search also narrows the function table */
    var flame = new CP.Flame({ unit: 'count', onSearch: function (term) {
      if (table) table.setFilter(term ? function (r) { return (r.name + ' ' + r.file).toLowerCase().indexOf(term) >= 0; } : null);
    } });
    var tableBox = h('div.fn-table', CP.loading());
    var note = h('div.view-note');
    el.appendChild(h('section.panel.flame-panel', h('h2', 'Flame graph ', h('span.hint', opts.hint || '')), note, flame.el));
    el.appendChild(h('section.panel', h('h2', 'Functions ', h('span.hint', 'self = time in the function itself; total = including its callees')), tableBox));
    flame.canvas.appendChild(CP.loading());
    Promise.all([CP.getJSON(opts.flameUrl), CP.getJSON(opts.tableUrl)]).then(function (r) {
      if (!CP.current(opts.gen)) return;
      var fj = r[0], tj = r[1];
      flame.setTree(CP.tree.fromFlame(fj), fj.unit);
      note.textContent = describe(fj);
      if (opts.onLoad) opts.onLoad(fj);
      var t = table = new CP.Table({ columns: columns(tj.unit, tj.total), rows: tj.rows || [], sortKey: 'self', limit: 300,
        empty: 'No functions for this type.',
        onRowClick: function (row) {
          flame.setSearch(row.name);
          if (opts.onFunction) { opts.onFunction(row); return; }
          flame.el.scrollIntoView({ behavior: 'smooth', block: 'start' });
        } });
      CP.clear(tableBox).appendChild(t.el);
      if (opts.search) flame.setSearch(opts.search);
    }).catch(function (e) {
      if (!CP.current(opts.gen)) return;
      CP.clear(flame.canvas).appendChild(CP.errorBox('Could not load the flame graph', e));
      CP.clear(tableBox);
    });
    return flame;
  }

  function describe(fj) {
    var parts = [CP.typeName(fj.type) + ': ' + CP.fmtUnit(fj.total, fj.unit) + ' in total'];
    if (fj.profiles != null) parts.push(fj.profiles + ' profile' + (fj.profiles === 1 ? '' : 's') + ' merged' +
      (fj.truncated ? ' (more matched: newest only)' : ''));
    if (fj.pruned) parts.push(fj.pruned + ' tiny frames folded into their callers');
    return parts.join(' · ');
  }

  function filteredView(el, opts) {
    var state = opts.filterState || { labels: [] }, bar = h('div'), tl = h('section.panel.timeline-panel', { hidden: true });
    var views = h('div'), detail = h('section.panel.fn-detail', { hidden: true });
    el.appendChild(bar);
    el.appendChild(tl);
    el.appendChild(views);
    el.appendChild(detail);
    function draw() {
      var q = CP.filterParams(state), sep = function (u) { return u + (u.indexOf('?') >= 0 ? '&' : '?'); };
      var extra = CP.qs(q).slice(1);
      CP.clear(bar).appendChild(CP.viewerFilters(opts.profileId, state, function (next) { next.time = state.time; state = next; draw(); }));
      CP.clear(tl);
      tl.hidden = true;
      var tq = Object.assign({ type: opts.type }, q);
      delete tq.time_from;
      delete tq.time_to;
      CP.timeline(tl, '/api/profiles/' + opts.profileId + '/timeline' + CP.qs(tq), state, opts.unit, function (span) {
        state.time = span;
        draw();
      });
      new MutationObserver(function (m, obs) { if (tl.firstChild) { tl.hidden = false; obs.disconnect(); } })
        .observe(tl, { childList: true });
      CP.clear(views);
      detail.hidden = true;
      flameView(views, Object.assign({}, opts, {
        noFilters: true,
        flameUrl: extra ? sep(opts.flameUrl) + extra : opts.flameUrl,
        tableUrl: extra ? sep(opts.tableUrl) + extra : opts.tableUrl,
        onFunction: function (row) {
          detail.hidden = false;
          CP.functionDetail(detail, { id: opts.profileId, type: opts.type, name: row.name, file: row.file, filters: q, gen: opts.gen });
          detail.scrollIntoView({ behavior: 'smooth', block: 'start' });
        } }));
    }
    draw();
  }

  CP.flameView = flameView;
})();
