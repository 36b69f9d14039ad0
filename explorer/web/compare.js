/* contprof explorer — comparison of two profiles (#/compare?a=ID&b=ID
 * &type=…&normalize=1&view=diff|side). "diff" draws one flame graph
 * coloured by change (red: grew in B, blue: shrank) and a table of the
 * functions that changed most; "side" draws the two flame graphs next to
 * each other. Without a and b it shows a picker of recent profiles. */
'use strict';
(function () {
  var h = CP.h;

  function page(main, route) {
    var params = route.params, a = params.get('a'), b = params.get('b');
    main.appendChild(h('h1.page-title', 'Compare two profiles'));
    if (!/^\d+$/.test(a || '') || !/^\d+$/.test(b || '')) { picker(main, a, b); return; }
    var gen = CP.gen;
    main.appendChild(CP.loading());
    Promise.all([CP.getJSON('/api/profiles/' + a), CP.getJSON('/api/profiles/' + b)]).then(function (r) {
      if (!CP.current(gen)) return;
      main.removeChild(main.lastChild);
      show(main, params, r[0], r[1], gen);
    }).catch(function (e) {
      if (CP.current(gen)) CP.clear(main).appendChild(CP.errorBox('Could not load the profiles', e));
    });
  }

  function picker(main, a, b) {
    var gen = CP.gen, box = h('section.panel', CP.loading());
    main.appendChild(box);
    CP.getJSON('/api/profiles?limit=300').then(function (res) {
      if (!CP.current(gen)) return;
      var opts = (res.profiles || []).map(function (p) {
        return [String(p.id), '#' + p.id + '  ' + p.service + ' · ' + (p.env || '–') + ' · ' + (p.version || '–') + ' · ' + CP.fmtTime(p.start_ms)];
      });
      function sel(id, cur) {
        return h('select#' + id, opts.map(function (o) { return h('option', { value: o[0], selected: o[0] === cur }, o[1]); }));
      }
      var sa = sel('cmp-a', a || (opts[1] || opts[0] || [''])[0]), sb = sel('cmp-b', b || (opts[0] || [''])[0]);
      CP.clear(box);
      if (opts.length < 2) { box.appendChild(CP.empty('Comparing needs at least two profiles.')); return; }
      CP.append(box, [h('p.muted', 'Pick a baseline (A) and the profile to compare with it (B); or tick two rows in the profile list.'),
        h('div.toolbar', h('label.field', 'A (before) ', sa), h('label.field', 'B (after) ', sb),
          h('button.btn.primary', { type: 'button', onclick: function () { CP.go('compare', { a: sa.value, b: sb.value }); } }, 'Compare'))]);
    }).catch(function (e) {
      if (CP.current(gen)) CP.clear(box).appendChild(CP.errorBox('Could not load profiles', e));
    });
  }

  function card(label, p) {
    return h('div.cmp-card', h('div.cmp-label', label),
      h('a.strong', { href: CP.link('profile/' + p.id, {}) }, p.service + ' #' + p.id),
      h('div.muted', [p.env, p.version, p.host, CP.fmtRuntime(p)].filter(Boolean).join(' · ')),
      h('div', CP.fmtTime(p.start_ms) + ' · ' + CP.fmtDuration(p.duration_ms)),
      h('div', 'CPU ' + CP.fmtCores(p.cpu_cores) + ' · alloc ' + CP.fmtBytesRate(p.alloc_rate)));
  }

  function show(main, params, pa, pb, gen) {
    var types = CP.sortTypes((pa.types || []).concat((pb.types || []).filter(function (t) { return (pa.types || []).indexOf(t) < 0; })));
    var type = params.get('type');
    if (types.indexOf(type) < 0) type = types.indexOf(pb['default_type']) >= 0 ? pb['default_type'] : types[0];
    var view = params.get('view') === 'side' ? 'side' : 'diff', norm = params.get('normalize') === '1';
    function set(k, v) { var p = new URLSearchParams(params); if (v) p.set(k, v); else p.delete(k); CP.go('compare', p, true); }
    var typeSel = h('select#cmp-type', { 'aria-label': 'Profile type', onchange: function () { set('type', typeSel.value); } },
      types.map(function (t) { return h('option', { value: t, selected: t === type }, CP.typeName(t)); }));
    var normBox = h('input#cmp-normalize', { type: 'checkbox', checked: norm, onchange: function () { set('normalize', normBox.checked ? '1' : ''); } });
    main.appendChild(h('div.cmp-cards', card('A (before)', pa), h('div.cmp-arrow', '→'), card('B (after)', pb)));
    main.appendChild(h('div.toolbar', h('label.field', 'Type ', typeSel),
      h('label.field', { title: 'Divide each side by its duration, so profiles of different length compare' }, normBox, ' per second'),
      CP.tabs([['diff', 'Diff'], ['side', 'Side by side']], view, function (v) { set('view', v === 'diff' ? '' : v); }),
      h('span.spacer'),
      h('a.btn', { href: CP.link('compare', { a: pb.id, b: pa.id, type: type }) }, 'Swap A and B')));
    var body = h('div.cmp-body');
    main.appendChild(body);
    if (view === 'side') sideBySide(body, pa, pb, type, gen);
    else diffView(body, pa, pb, type, norm, gen);
  }

  function diffView(body, pa, pb, type, norm, gen) {
    var flame = new CP.Flame({ diff: true });
    var rowsBox = h('div.fn-table', CP.loading());
    var note = h('div.view-note');
    body.appendChild(h('section.panel.flame-panel', h('h2', 'Difference ',
      h('span.legend', h('span.sw.up'), 'grew in B', h('span.sw.down'), 'shrank in B')), note, flame.el));
    body.appendChild(h('section.panel', h('h2', 'Largest changes'), rowsBox));
    flame.canvas.appendChild(CP.loading());
    CP.getJSON('/api/compare' + CP.qs({ a: pa.id, b: pb.id, type: type, normalize: norm ? 1 : null })).then(function (c) {
      if (!CP.current(gen)) return;
      flame.setTree(CP.tree.fromCompare(c), c.unit);
      note.textContent = CP.typeName(c.type) + ': A ' + CP.fmtUnit(c.a.total, c.unit) + ' → B ' + CP.fmtUnit(c.b.total, c.unit) +
        (c.normalized ? ' per second' : '');
      CP.clear(rowsBox).appendChild(new CP.Table({ columns: diffColumns(c.unit), rows: c.rows || [], sortKey: 'abs_delta', limit: 300,
        empty: 'No functions on either side.', onRowClick: function (r) { flame.setSearch(r.name); } }).el);
    }).catch(function (e) {
      if (!CP.current(gen)) return;
      CP.clear(flame.canvas).appendChild(CP.errorBox('Could not compare', e));
      CP.clear(rowsBox);
    });
  }

  function signed(v, unit) { return (v > 0 ? '+' : v < 0 ? '−' : '') + CP.fmtUnit(Math.abs(v), unit); }

  function diffColumns(unit) {
    function f(v) { return CP.fmtUnit(v, unit); }
    return [
      { key: 'name', label: 'Function', cls: 'fn', tip: function (r) { return r.name + (r.file ? '\n' + r.file : ''); } },
      { key: 'file', label: 'File', cls: 'file', tip: function (r) { return r.file; } },
      { key: 'a_self', label: 'A self', num: true, fmt: f },
      { key: 'b_self', label: 'B self', num: true, fmt: f },
      { key: 'abs_delta', label: 'Δ self', num: true, value: function (r) { return Math.abs(r.delta_self); },
        fmt: function (v, r) { return signed(r.delta_self, unit); }, cls: 'delta' },
      { key: 'a_total', label: 'A total', num: true, fmt: f },
      { key: 'b_total', label: 'B total', num: true, fmt: f }
    ];
  }

  function sideBySide(body, pa, pb, type, gen) {
    var grid = h('div.side-by-side');
    body.appendChild(grid);
    [[pa, 'A'], [pb, 'B']].forEach(function (x) {
      var flame = new CP.Flame({});
      var note = h('div.view-note');
      grid.appendChild(h('section.panel.flame-panel', h('h2', x[1] + ': ' + x[0].service + ' #' + x[0].id), note, flame.el));
      flame.canvas.appendChild(CP.loading());
      CP.getJSON('/api/profiles/' + x[0].id + '/flame' + CP.qs({ type: type })).then(function (fj) {
        if (!CP.current(gen)) return;
        flame.setTree(CP.tree.fromFlame(fj), fj.unit);
        note.textContent = CP.typeName(fj.type) + ': ' + CP.fmtUnit(fj.total, fj.unit);
      }).catch(function (e) {
        if (CP.current(gen)) CP.clear(flame.canvas).appendChild(CP.errorBox('Could not load', e));
      });
    });
  }

  CP.pages.compare = page;
})();
