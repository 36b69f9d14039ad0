/* contprof explorer — aggregate view (#/aggregate?service=…&env=…&range=…
 * &type=…): every profile matching the filters merged by the server into
 * one flame graph and function table, the first view when hunting what a
 * service spends its time on over hours rather than one minute. */
'use strict';
(function () {
  var h = CP.h;

  /* name(v) gives an option's label (default: the value itself). */
  function select(id, label, values, current, onPick, anyLabel, name) {
    var s = h('select#' + id, { 'aria-label': label, onchange: function () { onPick(s.value); } },
      anyLabel ? h('option', { value: '' }, anyLabel) : null,
      values.map(function (v) {
        return h('option', { value: v, selected: v === current }, name ? name(v) : v === '' ? '(none)' : v);
      }));
    return h('label.field', label + ' ', s);
  }

  /* The profile types any matching profile has, best first. */
  function typesOf(res) {
    var types = {};
    (res.profiles || []).forEach(function (p) { (p.types || []).forEach(function (t) { types[t] = true; }); });
    return CP.sortTypes(Object.keys(types));
  }

  function toolbar(bar, res, params, tlist, type) {
    function set(k, v) {
      var p = new URLSearchParams(params);
      if (v) p.set(k, v); else p.delete(k);
      CP.go('aggregate', p, true);
    }
    function vals(k) { return ((res.facets || {})[k] || []).map(function (v) { return v.value; }); }
    CP.clear(bar);
    CP.append(bar, [
      select('agg-service', 'Service', vals('service'), params.get('service'), function (v) { set('service', v); }, 'all services'),
      select('agg-env', 'Env', vals('env'), params.get('env'), function (v) { set('env', v); }, 'all envs'),
      CP.rangePicker(params, function (p) { CP.go('aggregate', p, true); }),
      select('agg-type', 'Type', tlist, type, function (v) { set('type', v); }, null, CP.typeName),
      h('span.spacer'),
      h('a.btn', { href: CP.link('', listParams(params)) }, 'Show these profiles')]);
  }

  function page(main, route) {
    var gen = CP.gen, params = route.params, f = CP.filters(params);
    var bar = h('div.toolbar'), body = h('div.agg-body');
    main.appendChild(h('h1.page-title', 'Aggregate ', h('span.hint', 'many profiles as one flame graph')));
    main.appendChild(bar);
    main.appendChild(body);
    CP.loadInto(bar, '/api/profiles' + CP.qs(Object.assign({ limit: 200 }, f)), gen, 'profiles', function (res) {
      var tlist = typesOf(res), type = params.get('type');
      if (tlist.indexOf(type) < 0) type = tlist[0] || 'cpu-time';
      toolbar(bar, res, params, tlist, type);
      if (!res.total) { body.appendChild(CP.empty('No profiles match these filters.')); return; }
      var q = Object.assign({}, f, { type: type });
      CP.flameView(body, { gen: gen, flameUrl: '/api/aggregate/flame' + CP.qs(q), tableUrl: '/api/aggregate/table' + CP.qs(q),
                           hint: 'summed over the matching profiles' });
    });
  }

  function listParams(params) {
    var o = {};
    params.forEach(function (v, k) { if (k !== 'type') o[k] = (o[k] || []).concat([v]); });
    return o;
  }

  CP.pages.aggregate = page;
})();
