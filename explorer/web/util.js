/* contprof explorer — shared helpers: DOM building, unit formatting,
 * JSON fetching and small string utilities. Loaded first; everything else
 * hangs off the global CP namespace (classic scripts, no build step, so the
 * pages work whatever MIME type the server gives .js files). */
'use strict';
var CP = window.CP || {};
window.CP = CP;

/* h('div.cls#id', {attrs}, children...) builds an element. Strings become
 * text nodes (never innerHTML: profile data is untrusted user input). */
CP.h = function (spec, attrs) {
  var m = /^([a-z0-9]+)?((?:[.#][\w-]+)*)$/i.exec(spec) || [null, 'div', ''];
  var el = document.createElement(m[1] || 'div');
  (m[2].match(/[.#][\w-]+/g) || []).forEach(function (p) {
    if (p[0] === '.') el.classList.add(p.slice(1)); else el.id = p.slice(1);
  });
  var start = 2;
  if (attrs && (typeof attrs !== 'object' || attrs.nodeType || Array.isArray(attrs))) start = 1;
  else if (attrs) CP.setAttrs(el, attrs);
  for (var i = start; i < arguments.length; i++) CP.append(el, arguments[i]);
  return el;
};

CP.setAttrs = function (el, attrs) {
  Object.keys(attrs).forEach(function (k) {
    var v = attrs[k];
    if (v === undefined || v === null || v === false) return;
    if (k.slice(0, 2) === 'on') el.addEventListener(k.slice(2), v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  });
};

CP.append = function (el, c) {
  if (c === undefined || c === null || c === false) return;
  if (Array.isArray(c)) { c.forEach(function (x) { CP.append(el, x); }); return; }
  el.appendChild(c.nodeType ? c : document.createTextNode(String(c)));
};

CP.clear = function (el) { while (el.firstChild) el.removeChild(el.firstChild); return el; };

/* ---- units ---------------------------------------------------------- */

function trim(x, digits) {
  var s = x.toFixed(digits);
  return s.indexOf('.') >= 0 ? s.replace(/\.?0+$/, '') : s;
}

/* steps: [divisor, unit, from] — a unit is used from `from` (default: its
 * divisor) up, so e.g. 90 s stays "90 s" rather than "1.5 min". */
function scaled(v, steps, digits) {
  var a = Math.abs(v);
  for (var i = steps.length - 1; i > 0; i--) {
    if (a >= (steps[i][2] || steps[i][0])) return trim(v / steps[i][0], digits) + ' ' + steps[i][1];
  }
  return trim(v, v === Math.round(v) ? 0 : digits) + (steps[0][1] ? ' ' + steps[0][1] : '');
}

var NS = [[1, 'ns'], [1e3, 'µs'], [1e6, 'ms'], [1e9, 's'], [60e9, 'min', 600e9], [3600e9, 'h', 36000e9]];
var BYTES = [[1, 'B'], [1024, 'KiB'], [1048576, 'MiB'], [1073741824, 'GiB'], [1099511627776, 'TiB']];
var COUNT = [[1, ''], [1e3, 'k'], [1e6, 'M'], [1e9, 'G']];

CP.fmtNs = function (v) { return v == null ? '–' : scaled(v, NS, 2); };
CP.fmtBytes = function (v) { return v == null ? '–' : scaled(v, BYTES, 1); };
CP.fmtCount = function (v) {
  return v == null ? '–' : scaled(v, COUNT, 1).replace(/ (?=[kMG]$)/, '');
};
CP.fmtBytesRate = function (v) { return v == null ? '–' : CP.fmtBytes(v) + '/s'; };
CP.fmtPct = function (r, digits) {
  if (r == null || !isFinite(r)) return '–';
  return trim(r * 100, digits == null ? (Math.abs(r) < 0.1 ? 2 : 1) : digits) + '%';
};

/* Format a value in a pprof unit ("nanoseconds", "bytes", "count") or an
 * API measure unit ("bytes/s", "%", "cores": 1 core = 100%). */
CP.fmtUnit = function (v, unit) {
  if (unit === 'nanoseconds' || unit === 'ns') return CP.fmtNs(v);
  if (unit === 'bytes') return CP.fmtBytes(v);
  if (unit === 'bytes/s') return CP.fmtBytesRate(v);
  if (unit === '%') return v == null ? '–' : trim(v, 2) + '%';
  if (unit === 'cores') return v == null ? '–' : CP.fmtPct(v);
  return CP.fmtCount(v);
};

/* Timestamps: the API may give RFC 3339 strings, unix seconds or ns. */
CP.toMs = function (t) {
  if (t == null || t === '') return null;
  if (typeof t === 'number') {
    if (t > 1e17) return t / 1e6;   /* ns */
    if (t > 1e14) return t / 1e3;   /* µs */
    if (t > 1e11) return t;         /* ms */
    return t * 1000;                /* s */
  }
  var ms = Date.parse(String(t).replace(/(\.\d{3})\d+/, '$1'));
  return isNaN(ms) ? null : ms;
};

function pad(n) { return (n < 10 ? '0' : '') + n; }

CP.fmtTime = function (t) {
  var ms = CP.toMs(t);
  if (ms == null) return '–';
  var d = new Date(ms);
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
    pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
};

/* Compact for tables: the time alone today, month and day otherwise. */
CP.fmtShortTime = function (t) {
  var ms = CP.toMs(t);
  if (ms == null) return '–';
  var d = new Date(ms), now = new Date();
  if (d.toDateString() === now.toDateString()) return 'today ' + CP.fmtClock(ms);
  var mon = d.toLocaleString('en-US', { month: 'short' }) + ' ' + d.getDate();
  return (d.getFullYear() === now.getFullYear() ? mon : mon + ' ' + d.getFullYear()) + ' ' + CP.fmtClock(ms).slice(0, 5);
};

CP.fmtClock = function (t) {
  var ms = CP.toMs(t);
  if (ms == null) return '–';
  var d = new Date(ms);
  return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
};

/* ---- network -------------------------------------------------------- */

/* GET a JSON document; rejects with an Error whose message is the server's
 * one-line reason when it gives one. */
/* A 202 answer is work in progress (an aggregation merging profiles):
 * {"running": true, "done": n, "profiles": m}. CP.getJSON shows it in the
 * progress bar and asks again until the result is there. */
CP.progress = function (done, total) {
  var el = document.getElementById('progress');
  if (!el) {
    el = document.createElement('div');
    el.id = 'progress';
    el.setAttribute('role', 'status');
    el.appendChild(document.createElement('span'));
    el.appendChild(document.createElement('div')).className = 'progress-bar';
    document.body.appendChild(el);
  }
  if (done == null) { el.hidden = true; return; }
  el.hidden = false;
  el.firstChild.textContent = 'Merging ' + done.toLocaleString('en-US') + ' of ' + total.toLocaleString('en-US') + ' profiles…';
  el.lastChild.style.width = (total ? Math.round(100 * done / total) : 0) + '%';
};

CP.getJSON = function (url) {
  return fetch(url, { headers: { Accept: 'application/json' } }).then(function (r) {
    return r.text().then(function (body) {
      if (r.status === 202) {
        var p = JSON.parse(body);
        CP.progress(p.done, p.profiles);
        return new Promise(function (res) { setTimeout(res, 250); }).then(function () { return CP.getJSON(url); });
      }
      if (url.indexOf('/api/aggregate/') === 0) CP.progress(null);
      if (!r.ok) {
        var reason = body;
        try { reason = JSON.parse(body).error || body; } catch (e) { /* plain text */ }
        throw new Error(r.status + ' ' + (reason || r.statusText).trim().split('\n')[0]);
      }
      return body ? JSON.parse(body) : null;
    });
  });
};

/* Display names of runtimes and languages: tags keep what clients send
 * (OpenJDK_64-Bit_Server_VM, nodejs, javascript…); pages show the
 * product names. Unknown values are shown as sent. */
var RUNTIMES = [[/^(cpython|python)$/i, 'CPython'], [/^pypy/i, 'PyPy'],
  [/(openjdk|hotspot|server.?vm|client.?vm|^jvm$|^java$|graalvm|openj9|zing)/i, 'JVM'],
  [/^(nodejs|node|node\.js|v8)$/i, 'Node.js'], [/^(go|gc)$/i, 'Go'], [/^ruby$/i, 'Ruby'],
  [/^(dotnet|\.net|clr|coreclr)$/i, '.NET'], [/^php$/i, 'PHP']];
var LANGUAGES = { python: 'Python', java: 'Java', jvm: 'Java', javascript: 'JavaScript', node: 'JavaScript',
  nodejs: 'JavaScript', go: 'Go', golang: 'Go', ruby: 'Ruby', dotnet: '.NET', php: 'PHP', kotlin: 'Kotlin',
  scala: 'Scala' };
CP.displayRuntime = function (v) {
  for (var i = 0; v && i < RUNTIMES.length; i++) if (RUNTIMES[i][0].test(v)) return RUNTIMES[i][1];
  return v;
};
CP.displayLanguage = function (v) {
  return v && Object.prototype.hasOwnProperty.call(LANGUAGES, v.toLowerCase()) ? LANGUAGES[v.toLowerCase()] : v;
};
/* A facet value as shown: mapped for runtime and language. */
CP.displayFacet = function (key, v) {
  return key === 'runtime' ? CP.displayRuntime(v) : key === 'language' ? CP.displayLanguage(v) : v;
};
/* DELETE url; resolves to the answer's JSON, rejects with its reason. */
CP.del = function (url) {
  return fetch(url, { method: 'DELETE', headers: { Accept: 'application/json' } }).then(function (r) {
    return r.text().then(function (body) {
      var j = null;
      try { j = JSON.parse(body); } catch (e) { /* plain text */ }
      if (!r.ok) throw new Error(r.status + ' ' + ((j && j.error) || body || r.statusText));
      return j;
    });
  });
};

/* "?k=v&…" from {k: v | [v, …]}; a lone null or "" is left out (no
 * filter), but "" inside an array is kept (filter on the empty value). */
CP.qs = function (params) {
  var parts = [];
  Object.keys(params).forEach(function (k) {
    var v = params[k];
    if (v === undefined || v === null || v === '') return;
    [].concat(v).forEach(function (x) {
      parts.push(encodeURIComponent(k) + '=' + encodeURIComponent(x));
    });
  });
  return parts.length ? '?' + parts.join('&') : '';
};

/* ---- misc ----------------------------------------------------------- */

CP.hash32 = function (s) {
  var h = 2166136261;
  for (var i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 16777619); }
  return h >>> 0;
};

CP.debounce = function (fn, ms) {
  var t = null;
  return function () {
    var args = arguments, self = this;
    clearTimeout(t);
    t = setTimeout(function () { fn.apply(self, args); }, ms);
  };
};

/* An error box that says what failed, in place of a section's content. */
CP.errorBox = function (what, err) {
  return CP.h('div.error', { role: 'alert' }, what + ': ' + (err && err.message ? err.message : err));
};

CP.empty = function (text) { return CP.h('div.empty', text); };
