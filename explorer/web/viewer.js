/* contprof explorer — what `go tool pprof -http` and speedscope add to a
 * flame graph, for one profile:
 *  - filters: focus / ignore / hide by regular expression (function names)
 *    and label filters (thread name, task name, lock name, exception
 *    type…), applied by the server to the flame graph and the table;
 *  - a function's detail: sandwich (its callers above, its callees below)
 *    and its source lines with per-line self/total (source text when the
 *    file is readable where the explorer runs).
 * CP.viewerFilters(el, profileId, onChange) draws the filter bar;
 * CP.functionDetail(el, opts) the detail panel. */
'use strict';
(function () {
  var h = CP.h;

  /* Filter bar. state: {focus, ignore, hide, labels: ['key:re', …]};
   * onChange(state) after Apply / Enter / a label pick. */
  function viewerFilters(profileId, state, onChange) {
    function input(key, label, ph) {
      var i = h('input.filter-re', { type: 'text', 'aria-label': label, placeholder: ph, value: state[key] || '',
        'data-filter': key, onkeydown: function (e) { if (e.key === 'Enter') apply(); } });
      return { key: key, el: h('label.field', label + ' ', i), input: i };
    }
    var fields = [input('focus', 'Focus', 'regex: keep stacks through…'), input('ignore', 'Ignore', 'regex: drop stacks through…'),
                  input('hide', 'Hide', 'regex: remove frames…')];
    var keySel = h('select#label-key', { 'aria-label': 'Label' }, h('option', { value: '' }, 'label…'));
    var valSel = h('select#label-value', { 'aria-label': 'Label value', disabled: true }, h('option', { value: '' }, 'value…'));
    var chips = h('span.label-chips');
    var labels = {};
    function apply() {
      var next = { labels: (state.labels || []).slice() };
      fields.forEach(function (f) { next[f.key] = f.input.value.trim(); });
      onChange(next);
    }
    keySel.addEventListener('change', function () {
      CP.clear(valSel).appendChild(h('option', { value: '' }, 'value…'));
      var l = labels[keySel.value];
      valSel.disabled = !l;
      (l ? l.values : []).forEach(function (v) {
        valSel.appendChild(h('option', { value: v.value }, v.value + ' (' + v.samples + ')'));
      });
    });
    valSel.addEventListener('change', function () {
      if (!keySel.value || !valSel.value) return;
      var re = '^' + valSel.value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '$';
      state.labels = (state.labels || []).concat([keySel.value + ':' + re]);
      apply();
    });
    (state.labels || []).forEach(function (lf, i) {
      chips.appendChild(h('button.chip.label-chip', { type: 'button', title: 'Remove this label filter',
        onclick: function () { state.labels.splice(i, 1); apply(); } }, lf.replace(/:\^?(.*?)\$?$/, ' = $1') + ' ✕'));
    });
    CP.getJSON('/api/profiles/' + profileId + '/labels').then(function (j) {
      (j.labels || []).forEach(function (l) {
        labels[l.key] = l;
        keySel.appendChild(h('option', { value: l.key }, l.key + ' (' + l.distinct + ')'));
      });
      if (!(j.labels || []).length) keySel.disabled = true;
    }).catch(function () { keySel.disabled = true; });
    return h('div.toolbar.viewer-filters', fields.map(function (f) { return f.el; }),
      h('button.btn.small#filters-apply', { type: 'button', onclick: apply }, 'Apply'),
      h('span.label-filter', keySel, valSel), chips);
  }

  /* The query parameters of a filter state. */
  function filterParams(state) {
    var q = {};
    ['focus', 'ignore', 'hide'].forEach(function (k) { if (state[k]) q[k] = state[k]; });
    if (state.labels && state.labels.length) q.label = state.labels.slice();
    if (state.time) { q.time_from = state.time[0]; q.time_to = state.time[1]; }
    return q;
  }

  /* Time-ordered view (samples with timestamps, e.g. dd-trace's
   * end_timestamp_ns): one bar per time bucket; click a bar to show only
   * that span in the flame graph and table, shift-click to extend it. */
  function timeline(el, url, state, unit, onPick) {
    CP.getJSON(url).then(function (j) {
      if (!j.values || !j.values.length) return;
      var SVGNS = 'http://www.w3.org/2000/svg', W = 1000, H = 70, n = j.values.length;
      var max = Math.max.apply(null, j.values) || 1, bw = W / n;
      var svg = document.createElementNS(SVGNS, 'svg');
      svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
      svg.setAttribute('class', 'timeline');
      svg.setAttribute('preserveAspectRatio', 'none');
      var from = j.from_ns, w = j.bucket_ns, sel = state.time;
      j.values.forEach(function (v, i) {
        var t0 = from + i * w, r = document.createElementNS(SVGNS, 'rect');
        r.setAttribute('x', (i * bw).toFixed(2));
        r.setAttribute('width', Math.max(0.5, bw - 0.6).toFixed(2));
        r.setAttribute('y', (H - v / max * (H - 4)).toFixed(2));
        r.setAttribute('height', (v / max * (H - 4)).toFixed(2));
        r.setAttribute('data-i', i);
        var on = sel && t0 >= sel[0] && t0 < sel[1];
        r.setAttribute('class', 'tl-bar' + (on ? ' on' : sel ? ' off' : ''));
        var title = document.createElementNS(SVGNS, 'title');
        title.textContent = CP.fmtTime(t0 / 1e6) + ' — ' + CP.fmtUnit(v, unit);
        r.appendChild(title);
        r.addEventListener('click', function (e) {
          var a = t0, b = t0 + w;
          if (e.shiftKey && sel) { a = Math.min(a, sel[0]); b = Math.max(b, sel[1]); }
          onPick([a, b]);
        });
        svg.appendChild(r);
      });
      var clear = h('button.btn.small#timeline-clear', { type: 'button', disabled: !sel, onclick: function () { onPick(null); } },
        'Whole profile');
      CP.append(el, [h('div.timeline-head', h('strong', 'Over time '),
        h('span.hint', sel ? 'showing ' + CP.fmtNs(sel[1] - sel[0]) + ' from ' + CP.fmtClock(sel[0] / 1e6) + ' · shift-click extends'
                           : 'click a bar to see only that time span'), clear), svg]);
    }).catch(function () { /* no time-ordered view for this profile */ });
  }

  /* A small flame graph of one side of a sandwich. */
  function miniFlame(title, j, unit, hint) {
    var f = new CP.Flame({ unit: unit });
    var box = h('div.sandwich-side', h('h3', title, ' ', h('span.hint', hint)), f.el);
    f.setTree(CP.tree.fromFlame(j), unit);
    return box;
  }

  function sourceTable(j) {
    var byLine = {};
    (j.lines || []).forEach(function (l) { byLine[l.line] = l; });
    var total = j.profile_total || 1, rows = [];
    if (j.source) {
      var lines = (j.lines || []).map(function (l) { return l.line; }).filter(function (n) { return n > 0; });
      var lo = Math.max(1, Math.min.apply(null, lines.concat([1])) - 5);
      var hi = Math.min(j.source.length, Math.max.apply(null, lines.concat([1])) + 5);
      for (var n = lo; n <= hi; n++) rows.push({ line: n, text: j.source[n - 1], cost: byLine[n] });
    } else {
      (j.lines || []).forEach(function (l) { rows.push({ line: l.line, text: null, cost: l }); });
    }
    function cell(v) { return v ? CP.fmtUnit(v, j.unit) + ' (' + CP.fmtPct(v / total) + ')' : ''; }
    return h('table.grid.source-lines', h('thead', h('tr', h('th.num', 'Line'), h('th.num', 'Self'), h('th.num', 'Total'),
      h('th', j.source ? 'Source' : 'Source (file not readable here)'))),
      h('tbody', rows.map(function (r) {
        return h('tr' + (r.cost ? '.hot' : ''), { 'data-line': r.line }, h('td.num', String(r.line)),
          h('td.num', cell(r.cost && r.cost.self)), h('td.num', cell(r.cost && r.cost.total)),
          h('td.code', r.text == null ? '' : r.text));
      })));
  }

  /* Detail of one function (name, file) of profile id for type, under
   * filters q: sandwich and source lines, as two tabs. */
  function functionDetail(el, opts) {
    var base = '/api/profiles/' + opts.id, q = Object.assign({ type: opts.type, fn: opts.name, file: opts.file || '' }, opts.filters);
    var body = h('div.fn-detail-body');
    var view = opts.view || 'sandwich';
    function show(v) {
      view = v;
      CP.clear(body);
      tabs.querySelectorAll('button').forEach(function (b) {
        b.setAttribute('aria-selected', b.dataset.view === v ? 'true' : 'false');
        b.classList.toggle('on', b.dataset.view === v);
      });
      if (v === 'sandwich') {
        CP.loadInto(body, base + '/sandwich' + CP.qs(q), opts.gen, 'the sandwich view', function (j) {
          body.appendChild(h('div.sandwich', miniFlame('Callers', j.callers, j.unit, 'who calls ' + opts.name + ' (outermost call)'),
            miniFlame('Callees', j.callees, j.unit, 'what ' + opts.name + ' calls')));
        });
      } else {
        CP.loadInto(body, base + '/lines' + CP.qs(q), opts.gen, 'the source view', function (j) {
          body.appendChild(h('p.muted', (j.file || 'no file') + ' — per-line costs of ' + opts.name));
          body.appendChild(h('div.table-wrap', sourceTable(j)));
        });
      }
    }
    var tabs = h('div.tabs.fn-tabs', { role: 'tablist' },
      h('button.tab', { type: 'button', 'data-view': 'sandwich', onclick: function () { show('sandwich'); } }, 'Callers / callees'),
      h('button.tab', { type: 'button', 'data-view': 'source', onclick: function () { show('source'); } }, 'Source lines'));
    CP.clear(el);
    CP.append(el, [h('h2', 'Function ', h('code', opts.name), ' ', h('span.hint', opts.file || '')), tabs, body]);
    show(view);
  }

  CP.viewerFilters = viewerFilters;
  CP.timeline = timeline;
  CP.filterParams = filterParams;
  CP.functionDetail = functionDetail;
})();
