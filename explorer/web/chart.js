/* contprof explorer — small hand-written SVG time-series chart: one series
 * of [t_ms, value] points, time on x, a zero-based y axis with "nice" ticks,
 * a dot per profile (hover shows time and value; clicking a dot calls
 * onPick with the point's index, e.g. to open that profile); `mark` draws
 * a dashed line at one time (the profile on screen); `binary` puts the y
 * ticks on powers of 1024 for byte values. */
'use strict';
(function () {
  var SVG = 'http://www.w3.org/2000/svg';
  var W = 560, H = 180, L = 62, R = 14, T = 12, B = 28;

  function s(tag, attrs, text) {
    var el = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    if (text != null) el.textContent = text;
    return el;
  }

  /* 1, 2 or 5 times a power of ten, so tick labels are round. */
  function niceStep(range, n) {
    var raw = range / n, p = Math.pow(10, Math.floor(Math.log10(raw))), m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }

  /* binary: byte values, so ticks fall on round KiB/MiB/GiB numbers;
   * ints: whole-number series (threads, counts) get whole-number ticks. */
  function yTicks(max, binary, ints) {
    if (!(max > 0)) return [0, 1];
    var base = binary ? Math.pow(1024, Math.max(0, Math.floor(Math.log(max) / Math.log(1024)))) : 1;
    var step = niceStep(max / base, 4) * base, out = [];
    if (ints) step = Math.max(1, Math.ceil(step));
    for (var v = 0; v <= max + step * 0.999; v += step) out.push(v);
    return out;
  }

  function xTicks(t0, t1) {
    var span = Math.max(1, t1 - t0), out = [];
    for (var i = 0; i <= 4; i++) out.push(t0 + span * i / 4);
    return out;
  }

  function axes(svg, sx, sy, ticksY, ticksX, fmt, span) {
    ticksY.forEach(function (v) {
      svg.appendChild(s('line', { x1: L, x2: W - R, y1: sy(v), y2: sy(v), class: 'grid' }));
      svg.appendChild(s('text', { x: L - 6, y: sy(v) + 4, 'text-anchor': 'end', class: 'tick' }, fmt(v)));
    });
    var prev = null;
    ticksX.forEach(function (t, i) {
      var label = span > 36e5 * 20 ? CP.fmtTime(t).slice(5, 16) : CP.fmtClock(t);
      if (label === prev) return;   /* short spans: several ticks in one second */
      prev = label;
      var anchor = i === 0 ? 'start' : i === ticksX.length - 1 ? 'end' : 'middle';
      svg.appendChild(s('text', { x: sx(t), y: H - 8, 'text-anchor': anchor, class: 'tick' }, label));
    });
  }

  function lineChart(opts) {
    var pts = (opts.points || []).filter(function (p) { return p && isFinite(p[1]); });
    var fmt = opts.fmt || CP.fmtCount;
    var svg = s('svg', { viewBox: '0 0 ' + W + ' ' + H, class: 'chart', role: 'img',
                         'aria-label': opts.title || 'chart' });
    if (!pts.length) {
      svg.appendChild(s('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'nodata' }, 'no data'));
      return svg;
    }
    var t0 = pts[0][0], t1 = pts[pts.length - 1][0];
    if (t1 === t0) { t0 -= 30000; t1 += 30000; }
    var ints = pts.every(function (p) { return p[1] === Math.round(p[1]); });
    var ticksY = yTicks(Math.max.apply(null, pts.map(function (p) { return p[1]; })), opts.binary, ints);
    var ymax = ticksY[ticksY.length - 1] || 1;
    function sx(t) { return L + (t - t0) / (t1 - t0) * (W - L - R); }
    function sy(v) { return H - B - v / ymax * (H - T - B); }
    axes(svg, sx, sy, ticksY, xTicks(t0, t1), fmt, t1 - t0);
    if (opts.mark >= t0 && opts.mark <= t1) {
      svg.appendChild(s('line', { x1: sx(opts.mark), x2: sx(opts.mark), y1: T, y2: H - B, class: 'mark' }));
    }
    svg.appendChild(s('polyline', { class: 'line',
      points: pts.map(function (p) { return sx(p[0]).toFixed(1) + ',' + sy(p[1]).toFixed(1); }).join(' ') }));
    pts.forEach(function (p, i) {
      var dot = s('circle', { cx: sx(p[0]), cy: sy(p[1]), r: 3.2, class: 'dot' + (opts.onPick ? ' pick' : '') });
      dot.appendChild(s('title', {}, CP.fmtTime(p[0]) + ' — ' + fmt(p[1])));
      if (opts.onPick) dot.addEventListener('click', function () { opts.onPick(i, p); });
      svg.appendChild(dot);
    });
    return svg;
  }

  CP.lineChart = lineChart;
})();
