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
      { key: 'name', label: 'Function', cls: 'fn', tip: function (r) { return r.name; } },
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

  CP.flameView = flameView;
})();
