/* contprof explorer — facet panel of the profile list: for Env, Service,
 * Version, Host, Runtime and Language, each value with its count; clicking
 * a value toggles it as a filter (several values of one facet = any of). */
'use strict';
(function () {
  var h = CP.h;
  var FACETS = [['env', 'Env'], ['service', 'Service'], ['version', 'Version'],
                ['host', 'Host'], ['runtime', 'Runtime'], ['language', 'Language']];
  var SHOW = 8;   /* values shown before "more" */

  /* facets: {key: [{value, count}]} from /api/profiles; selected:
   * {key: [values]} (owned by the caller, never modified here);
   * onChange(newSelected) is called on every click. */
  function render(facets, selected, onChange) {
    var el = h('nav.facets', { 'aria-label': 'Facets' });
    FACETS.forEach(function (f) {
      el.appendChild(group(f[0], f[1], (facets || {})[f[0]] || [], selected[f[0]] || [], function (vals) {
        var next = Object.assign({}, selected);
        next[f[0]] = vals;
        onChange(next);
      }));
    });
    return el;
  }

  function group(key, label, values, chosen, set) {
    var list = h('ul.facet-values');
    var expanded = false;
    /* keep selected values listed even when the server counts them 0 */
    var vals = values.slice();
    chosen.forEach(function (c) {
      if (!vals.some(function (v) { return v.value === c; })) vals.push({ value: c, count: 0 });
    });
    function draw() {
      CP.clear(list);
      var shown = expanded ? vals : vals.slice(0, SHOW);
      shown.forEach(function (v) { list.appendChild(item(key, v, chosen, set)); });
      if (vals.length > SHOW) {
        list.appendChild(h('li', h('button.link', { type: 'button', onclick: function () { expanded = !expanded; draw(); } },
          expanded ? 'show less' : 'show ' + (vals.length - SHOW) + ' more')));
      }
      if (!vals.length) list.appendChild(h('li.none', 'no values'));
    }
    draw();
    var clear = chosen.length ? h('button.link.facet-clear', { type: 'button', onclick: function () { set([]); } }, 'clear') : null;
    return h('section.facet', { 'data-facet': key }, h('h3', label, clear), list);
  }

  function item(key, v, chosen, set) {
    var on = chosen.indexOf(v.value) >= 0;
    var shown = CP.displayFacet(key, v.value);
    var btn = h('button.facet-value' + (on ? '.on' : ''), {
      type: 'button', 'data-value': v.value, 'aria-pressed': on ? 'true' : 'false',
      title: (on ? 'Remove filter ' : 'Filter on ') + key + ':' + (v.value || '(none)') +
        (shown !== v.value ? ' (shown as ' + shown + ')' : ''),
      onclick: function () {
        set(on ? chosen.filter(function (c) { return c !== v.value; }) : chosen.concat([v.value]));
      }
    }, h('span.check', on ? '☑' : '☐'), h('span.fv', v.value === '' ? '(none)' : shown), h('span.count', String(v.count)));
    return h('li', btn);
  }

  CP.facets = { render: render, keys: FACETS.map(function (f) { return f[0]; }) };
})();
