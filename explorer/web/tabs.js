/* contprof explorer — bodies of the profile page's tabs: Profiles (type
 * selector + flame graph + function table), Analysis (findings with their
 * evidence, and every rule that was checked), Metrics (charts over the
 * profiles of the same service and env) and Runtime Info (the info object
 * the profiler sent, as readable tables). Each is fn(el, profile, params, gen). */
'use strict';
(function () {
  var h = CP.h;

  /* ---- Profiles ------------------------------------------------------ */

  function profilesTab(el, p, params, gen) {
    var totals = {};
    (p.type_totals || []).forEach(function (t) { totals[t.type] = t; });
    var types = CP.sortTypes(p.types || Object.keys(totals));
    if (!types.length) { el.appendChild(CP.empty('This profile has no sample types.')); return; }
    var type = params.get('type');
    if (types.indexOf(type) < 0) type = types.indexOf(p['default_type']) >= 0 ? p['default_type'] : types[0];
    var sel = h('select#type-select', { 'aria-label': 'Profile type', onchange: function () {
      var q = new URLSearchParams(params);
      q.set('type', sel.value);
      CP.go('profile/' + p.id, q, true);
    } }, types.map(function (t) {
      var tt = totals[t];
      return h('option', { value: t, selected: t === type },
        CP.typeName(t) + (tt ? ' — ' + CP.fmtUnit(tt.total, tt.unit) : ''));
    }));
    el.appendChild(h('div.toolbar', h('label.field', 'Profile type ', sel)));
    var base = '/api/profiles/' + p.id;
    CP.flameView(el, { gen: gen, search: params.get('focus'), profileId: p.id, type: type, unit: (totals[type] || {}).unit,
                       flameUrl: base + '/flame' + CP.qs({ type: type }),
                       tableUrl: base + '/table' + CP.qs({ type: type }),
                       hint: 'click a frame to zoom · hover for values' });
  }

  /* ---- Analysis ------------------------------------------------------ */

  /* Evidence values in words: value/self/total in the evidence's unit,
   * shares and their thresholds as percentages. */
  function evidenceValue(k, v, ev) {
    if (v == null) return '–';
    if (typeof v === 'object') return JSON.stringify(v);
    if (typeof v !== 'number') return String(v);
    var shareLike = /share|ratio|frac/.test(k) || (k === 'threshold' && ev.share != null && v <= 1);
    if (shareLike && v <= 1.5) return CP.fmtPct(v);
    if (/pct/.test(k)) return (Math.round(v * 100) / 100) + '%';
    if (ev.unit && /^(value|self|total|max|sum|time|threshold)$/.test(k)) return CP.fmtUnit(v, ev.unit);
    if (/bytes|space|heap/.test(k)) return CP.fmtBytes(v);
    if (/rate/.test(k)) return CP.fmtBytesRate(v);
    if (/_ns$/.test(k)) return CP.fmtNs(v);
    return Number.isInteger(v) ? v.toLocaleString('en-US') : String(Math.round(v * 1000) / 1000);
  }

  /* A link to the Profiles tab with the finding's function highlighted. */
  function showLink(p, ev) {
    if (!ev.function) return null;
    var q = { tab: 'profiles', type: (p.types || []).indexOf(ev.type) >= 0 ? ev.type : null, focus: ev.function };
    return h('a.show-fn', { href: CP.link('profile/' + p.id, q) }, 'Show ' + ev.function + ' in the flame graph →');
  }

  function finding(p, f) {
    var ev = f.evidence || {};
    var rows = Object.keys(ev).filter(function (k) { return k !== 'unit'; }).map(function (k) {
      return h('tr', h('th', k), h('td', evidenceValue(k, ev[k], ev)));
    });
    var sev = f.severity === 'warning' ? 'warning' : 'info';
    return h('article.finding.' + sev, { 'data-rule': f.rule },
      h('div.finding-head', h('span.sev', sev === 'warning' ? '⚠ warning' : 'ℹ info'), h('h3', f.title || f.rule),
        h('code.rule', f.rule)),
      f.detail ? h('p', f.detail) : null,
      rows.length ? h('details', { open: true }, h('summary', 'Evidence'), h('table.kv', rows)) : null,
      showLink(p, ev));
  }

  function analysisTab(el, p, params, gen) {
    CP.loadInto(el, '/api/profiles/' + p.id + '/analysis', gen, 'the analysis', function (a) {
      var fs = a.findings || [];
      var panel = h('section.panel', h('h2', fs.length ? fs.length + ' finding' + (fs.length === 1 ? '' : 's') : 'No findings'));
      if (!fs.length) panel.appendChild(h('p.muted', 'None of the rules below fired for this profile.'));
      fs.forEach(function (f) { panel.appendChild(finding(p, f)); });
      el.appendChild(panel);
      el.appendChild(h('section.panel', h('h2', 'Rules checked'), h('table.grid.rules', h('tbody', (a.rules || []).map(function (r) {
        var fired = fs.some(function (f) { return f.rule === r.id; });
        return h('tr', { 'data-rule': r.id },
          h('td', h('code', r.id)), h('td', r.title || ''),
          h('td', fired ? h('span.badge.fired', 'fired') : r.checked ? h('span.badge.ok', 'checked, ok') : h('span.badge.skip', 'not checked')),
          h('td.muted', r.why || ''));
      })))));
    });
  }

  /* ---- Metrics ------------------------------------------------------- */

  var SERIES = [
    ['cpu_cores', 'CPU (cores used)', CP.fmtCores],
    ['alloc_rate', 'Memory allocation rate', CP.fmtBytesRate],
    ['live_heap', 'Live heap', CP.fmtBytes],
    ['threads', 'Threads', CP.fmtCount],
    ['samples', 'Samples per profile', CP.fmtCount],
    ['samples_dropped', 'Samples dropped by the profiler', CP.fmtCount],
    ['upload_failures', 'Upload failures', CP.fmtCount],
    ['overhead_pct', 'Profiler overhead', function (v) { return (Math.round(v * 100) / 100) + '%'; }]
  ];

  function metricsTab(el, p, params, gen) {
    /* arrays: an empty env is a value to match, not "any env" */
    var q = { service: [p.service || ''], env: [p.env || ''] };
    el.appendChild(CP.loading());
    Promise.all([CP.getJSON('/api/metrics' + CP.qs(q)),
                 CP.getJSON('/api/profiles' + CP.qs(Object.assign({ limit: 1000, sort: 'start', order: 'asc' }, q)))
                   .catch(function () { return { profiles: [] }; })]).then(function (r) {
      if (!CP.current(gen)) return;
      CP.clear(el);
      var byStart = {};
      (r[1].profiles || []).forEach(function (x) { byStart[x.start_ms] = x.id; });
      var cpu = (r[0].series || [])[0] || {}, ng = (cpu.groups || []).length;
      el.appendChild(h('p.muted', 'One point per profile of ' + (p.service || '?') + (p.env ? ' in ' + p.env : '') +
        ' (' + (r[0].profiles || 0) + ' profiles' + (ng > 1 ? ', one line per ' + (cpu.by === 'host' ? 'host' : 'process') +
        ' and a dashed service total' : '') + '). Click a point to open its profile.'));
      var grid = h('div.charts');
      var have = {};
      (r[0].series || []).forEach(function (s) { have[s.name] = s; });
      SERIES.forEach(function (d) {
        var s = have[d[0]] || { points: [] };
        grid.appendChild(h('figure.chart-box', { 'data-series': d[0] }, h('figcaption', d[1], h('span.last', lastValue(s, d[2]))),
          CP.multiChart({ title: d[1], points: s.points, groups: s.groups, total: s.total, fmt: d[2], mark: p.start_ms,
            binary: /bytes/.test(s.unit || ''),
            onPick: function (i, pt) {
              var id = pt[2] || byStart[pt[0]];   /* [t, v, id] when the server gives ids */
              if (id) CP.go('profile/' + id, { tab: 'metrics' });
            } })));
      });
      el.appendChild(grid);
    }).catch(function (e) {
      if (CP.current(gen)) CP.clear(el).appendChild(CP.errorBox('Could not load metrics', e));
    });
  }

  function lastValue(s, fmt) {
    var pts = s.points || [];
    return pts.length ? 'latest ' + fmt(pts[pts.length - 1][1]) : '';
  }

  /* ---- Runtime Info -------------------------------------------------- */

  function scalar(k, v) {
    if (v === null || v === undefined) return '–';
    if (typeof v === 'boolean') return v ? 'yes' : 'no';
    if (typeof v === 'number' && /bytes|heap|memory|rss|_size$|max_size/i.test(k) && v >= 1024) {
      return CP.fmtBytes(v) + '  (' + v.toLocaleString('en-US') + ' B)';
    }
    if (typeof v === 'number' && /time$|_ms$|_time_ms/.test(k) && v > 1e11) return CP.fmtTime(v) + '  (' + v + ')';
    if (typeof v === 'number' && /_ns$/.test(k)) return CP.fmtNs(v);
    if (typeof v === 'number' && /_pct$/.test(k)) return (Math.round(v * 1000) / 1000) + '%';
    if (typeof v === 'number' && /_ms$/.test(k)) return CP.fmtNs(v * 1e6);
    if (Array.isArray(v) && v.every(function (x) { return typeof x !== 'object' || x === null; })) return v.join(', ');
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  }

  function isNested(v) {
    return v && typeof v === 'object' && !(Array.isArray(v) && v.every(function (x) { return typeof x !== 'object' || x === null; }));
  }

  /* A table of an object's plain values; nested objects become their own
   * titled sections, so deep info stays readable. */
  function infoSection(title, obj, depth) {
    var keys = Object.keys(obj);
    var flat = keys.filter(function (k) { return !isNested(obj[k]); });
    var nested = keys.filter(function (k) { return isNested(obj[k]); });
    var sec = h('section.info-section' + (depth ? '.sub' : ''), h(depth ? 'h3' : 'h2', title));
    if (flat.length) {
      sec.appendChild(h('table.kv', h('tbody', flat.map(function (k) {
        return h('tr', h('th', k), h('td', scalar(k, obj[k])));
      }))));
    }
    /* first-level groups (settings, metrics, gc, …) sit side by side */
    var holder = depth ? sec : sec.appendChild(h('div.info-grid'));
    nested.forEach(function (k) { holder.appendChild(infoSection(k, obj[k], depth + 1)); });
    if (!keys.length) sec.appendChild(h('p.muted', 'nothing was sent'));
    return sec;
  }

  function infoTab(el, p, params, gen) {
    CP.loadInto(el, '/api/profiles/' + p.id + '/info', gen, 'runtime info', function (info) {
      var box = h('div.panel.info');
      var grid = box.appendChild(infoSection('Runtime', info || {}, 0)).querySelector('.info-grid');
      grid.appendChild(infoSection('Tags', p.tag_map || {}, 1));
      grid.appendChild(infoSection('Profile', {
        id: p.id, 'runtime-id': p.runtime_id, samples: p.samples, 'pprof size': CP.fmtBytes(p.pprof_bytes),
        received: CP.fmtTime(p.received_ms), source: p.source, family: p.family
      }, 1));
      el.appendChild(box);
    });
  }

  CP.profileTabs = { profiles: profilesTab, analysis: analysisTab, metrics: metricsTab, info: infoTab };
})();
