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

  var PALETTE = ['#7c5cff', '#e0663a', '#1f9d74', '#d4a017', '#2f7fd8', '#c2408f', '#6b8e23', '#8b5a2b',
                 '#17a2b8', '#9467bd', '#e377c2', '#7f7f7f'];

  /* Several series (groups: [{key, downsampled, points}], points [t, v, id]
   * or, downsampled, [t, mean, min, max, n]) plus a dashed service total
   * ([t, v]); a downsampled series is a line of means over a min–max band.
   * A legend names each series (its key in full, as a tooltip too). */
  function multiChart(opts) {
    var groups = (opts.groups || []).filter(function (g) { return g.points && g.points.length; });
    var total = (opts.total || []).filter(function (p) { return isFinite(p[1]); });
    if (groups.length <= 1 && !opts.forceMulti) return lineChart(opts);
    var fmt = opts.fmt || CP.fmtCount;
    var svg = s('svg', { viewBox: '0 0 ' + W + ' ' + H, class: 'chart multi', role: 'img',
                         'aria-label': opts.title || 'chart' });
    var all = [], ts = [];
    groups.forEach(function (g) { g.points.forEach(function (p) { all.push(g.downsampled ? p[3] : p[1]); ts.push(p[0]); }); });
    total.forEach(function (p) { all.push(p[1]); ts.push(p[0]); });
    var t0 = Math.min.apply(null, ts), t1 = Math.max.apply(null, ts);
    if (t1 === t0) { t0 -= 30000; t1 += 30000; }
    var ticksY = yTicks(Math.max.apply(null, all), opts.binary, all.every(function (v) { return v === Math.round(v); }));
    var ymax = ticksY[ticksY.length - 1] || 1;
    function sx(t) { return L + (t - t0) / (t1 - t0) * (W - L - R); }
    function sy(v) { return H - B - v / ymax * (H - T - B); }
    axes(svg, sx, sy, ticksY, xTicks(t0, t1), fmt, t1 - t0);
    if (opts.mark >= t0 && opts.mark <= t1)
      svg.appendChild(s('line', { x1: sx(opts.mark), x2: sx(opts.mark), y1: T, y2: H - B, class: 'mark' }));
    function xy(p, i) { return sx(p[0]).toFixed(1) + ',' + sy(p[i]).toFixed(1); }
    groups.forEach(function (g, gi) {
      var color = PALETTE[gi % PALETTE.length];
      if (g.downsampled) {
        var band = g.points.map(function (p) { return xy(p, 3); }).concat(
          g.points.slice().reverse().map(function (p) { return xy(p, 2); }));
        var poly = s('polygon', { class: 'band', points: band.join(' '), 'data-group': g.key });
        poly.style.fill = color;
        svg.appendChild(poly);
      }
      /* colours through the CSSOM: the page's CSP refuses style attributes */
      var line = s('polyline', { class: 'line series', 'data-group': g.key,
        points: g.points.map(function (p) { return xy(p, 1); }).join(' ') });
      line.style.stroke = color;
      line.appendChild(s('title', {}, g.key));
      svg.appendChild(line);
      if (!g.downsampled && g.points.length <= 300) g.points.forEach(function (p) {
        var dot = s('circle', { cx: sx(p[0]), cy: sy(p[1]), r: 2.6, class: 'dot' + (opts.onPick ? ' pick' : '') });
        dot.style.stroke = color;
        dot.appendChild(s('title', {}, g.key + ' — ' + CP.fmtTime(p[0]) + ' — ' + fmt(p[1])));
        if (opts.onPick) dot.addEventListener('click', function () { opts.onPick(-1, p); });
        svg.appendChild(dot);
      });
    });
    if (total.length) {
      var tl = s('polyline', { class: 'line total', points: total.map(function (p) { return xy(p, 1); }).join(' ') });
      tl.appendChild(s('title', {}, 'service total'));
      svg.appendChild(tl);
    }
    var legend = document.createElement('div');
    legend.className = 'legend';
    groups.forEach(function (g, gi) {
      var item = document.createElement('span');
      item.className = 'legend-item';
      item.title = g.key + (g.downsampled ? ' (downsampled: line = mean, band = min–max)' : '');
      var sw = document.createElement('i');
      sw.style.background = PALETTE[gi % PALETTE.length];
      item.appendChild(sw);
      item.appendChild(document.createTextNode(g.key || '(none)'));
      legend.appendChild(item);
    });
    if (total.length) {
      var ti = document.createElement('span');
      ti.className = 'legend-item total';
      ti.appendChild(document.createElement('i'));
      ti.appendChild(document.createTextNode('total'));
      legend.appendChild(ti);
    }
    var box = document.createElement('div');
    box.appendChild(svg);
    box.appendChild(legend);
    return box;
  }

  CP.lineChart = lineChart;
  CP.multiChart = multiChart;
})();
