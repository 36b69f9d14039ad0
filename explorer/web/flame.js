/* contprof explorer — interactive flame graph (icicle: callers on top).
 * DOM frames, absolutely positioned, so text stays selectable and findable.
 * Click a frame to zoom into it (its callers stay as a full-width path
 * above; click one to zoom out to it), hover for self/total values and
 * shares, type in the search box to highlight matching functions and see
 * their share (Esc zooms out). In comparison mode (a CP.tree.fromCompare
 * tree) frames are red where B grew over A and blue where it shrank. */
'use strict';
(function () {
  var h = CP.h;
  var ROW = 18;            /* px per stack level */
  var MIN_FRAC = 0.0012;   /* frames narrower than this share of the view are not drawn */
  var MAX_FRAMES = 8000;   /* DOM budget: beyond it the deepest frames are not drawn */

  /* Frame kinds (the mapping file name the profiler gave each frame, see
   * cp_frame_kind): a hue range each, so Python, Java (interpreted,
   * compiled, inlined, native), native libraries, kernel and pseudo-frames
   * are told apart at a glance. */
  var KINDS = {
    '[python]': { label: 'Python', hue: [44, 58] }, '[java:interpreted]': { label: 'Java (interpreted)', hue: [95, 110] },
    '[java:compiled]': { label: 'Java (JIT-compiled)', hue: [120, 145] }, '[java:inlined]': { label: 'Java (inlined)', hue: [165, 180] },
    '[java:native]': { label: 'Java native method', hue: [185, 195] }, '[kernel]': { label: 'Kernel', hue: [215, 230] },
    '[pseudo]': { label: 'Pseudo-frame', hue: null }, '[native]': { label: 'Native', hue: [0, 16] }
  };
  function kindOf(node) {
    if (!node.kind) return null;
    return KINDS[node.kind] || { label: 'Native: ' + node.kind, hue: [0, 16] };
  }
  CP.frameKindLabel = function (kind) { return kind ? (KINDS[kind] || { label: 'Native: ' + kind }).label : ''; };

  function color(node) {
    var k = CP.hash32(node.name), kd = kindOf(node);
    if (kd && !kd.hue) return 'hsl(0,0%,' + (78 + k % 8) + '%)';
    if (kd) return 'hsl(' + (kd.hue[0] + k % (kd.hue[1] - kd.hue[0] + 1)) + ',' + (55 + (k >> 8) % 20) + '%,' + (58 + (k >> 16) % 12) + '%)';
    /* Warm palette like classic flame graphs; the hash keeps a function's
     * colour the same across views and reloads. */
    return 'hsl(' + (8 + k % 42) + ',' + (62 + (k >> 8) % 22) + '%,' + (60 + (k >> 16) % 12) + '%)';
  }

  function diffColor(node) {
    var a = node.base || 0, b = node.after || 0, m = Math.max(a, b);
    if (!m) return '#ddd';
    var d = (b - a) / m;                   /* -1 … 1 */
    var l = 92 - Math.round(Math.min(1, Math.abs(d) * 1.6) * 34);
    return d >= 0 ? 'hsl(2,75%,' + l + '%)' : 'hsl(214,75%,' + l + '%)';
  }

  function Flame(opts) {
    this.unit = opts.unit || 'count';
    this.diff = !!opts.diff;
    this.root = null;
    this.zoom = null;
    this.term = '';
    this.onSearch = opts.onSearch || null;   /* (term) after each search change */
    this.build();
  }

  Flame.prototype.build = function () {
    var self = this;
    this.search = h('input.flame-search', { type: 'search', placeholder: 'Highlight functions (text or regex)…',
      'aria-label': 'Search functions', oninput: CP.debounce(function () { self.setSearch(self.search.value); }, 120) });
    this.resetBtn = h('button.btn.small', { type: 'button', onclick: function () { self.zoomTo(null); } }, 'Reset zoom');
    this.status = h('span.flame-status');
    this.canvas = h('div.flame-canvas', { role: 'img', 'aria-label': 'Flame graph' });
    this.tip = h('div.flame-tip', { hidden: true });
    this.el = h('div.flame', h('div.flame-bar', this.search, this.resetBtn, this.status), this.canvas, this.tip);
    this.canvas.addEventListener('click', function (e) { self.onClick(e); });
    this.canvas.addEventListener('mousemove', function (e) { self.onMove(e); });
    this.canvas.addEventListener('mouseleave', function () { self.tip.hidden = true; });
    /* Esc zooms back out (one listener per graph; dropped with its page) */
    document.addEventListener('keydown', function onKey(e) {
      if (!self.el.isConnected && self.root) { document.removeEventListener('keydown', onKey); return; }
      if (e.key === 'Escape' && self.zoom && !document.fullscreenElement) self.zoomTo(null);
    });
  };

  Flame.prototype.setTree = function (root, unit) {
    this.root = root;
    if (unit) this.unit = unit;
    this.zoom = null;
    this.render();
  };

  Flame.prototype.zoomTo = function (node) {
    this.zoom = node && node !== this.root ? node : null;
    this.render();
  };

  /* The search is a case-insensitive regular expression when it is one
   * ("^handle|parse$"), else plain text. */
  Flame.prototype.setSearch = function (term) {
    this.term = (term || '').trim().toLowerCase();
    try { this.re = this.term ? new RegExp(this.term, 'i') : null; } catch (e) { this.re = null; }
    if (this.search.value.trim().toLowerCase() !== this.term) this.search.value = term;
    this.render();
    if (this.onSearch) this.onSearch(this.term);
  };

  Flame.prototype.matches = function (n) {
    if (!this.term) return false;
    if (this.re) return this.re.test(n.name) || this.re.test(n.file);
    return n.name.toLowerCase().indexOf(this.term) >= 0 || n.file.toLowerCase().indexOf(this.term) >= 0;
  };

  /* Path from the root to the zoomed node (both included). */
  Flame.prototype.path = function () {
    var target = this.zoom, work = [this.root], parent = new Map();
    while (target && work.length) {              /* iterative: deep stacks */
      var n = work.pop();
      if (n === target) {
        var out = [];
        for (var p = n; p; p = parent.get(p)) out.unshift(p);
        return out;
      }
      for (var i = 0; i < n.children.length; i++) { parent.set(n.children[i], n); work.push(n.children[i]); }
    }
    return [this.root];
  };

  Flame.prototype.render = function () {
    CP.clear(this.canvas);
    this.frames = [];
    this.tipNode = null;        /* the tooltip's shares depend on the zoom */
    this.tip.hidden = true;
    if (!this.root || !this.root.total) {
      this.canvas.style.height = 'auto';
      this.canvas.appendChild(CP.empty('No samples of this type in this profile.'));
      this.status.textContent = '';
      return;
    }
    var path = this.path(), focus = path[path.length - 1];
    var frag = document.createDocumentFragment(), depth = 0, self = this;
    path.slice(0, -1).forEach(function (n) { self.addFrame(frag, n, 0, 1, depth++, true); });
    depth = this.layout(frag, focus, depth);
    this.canvas.style.height = (depth * ROW + 2) + 'px';
    this.canvas.appendChild(frag);
    this.resetBtn.disabled = !this.zoom;
    this.updateStatus(focus);
    this.drawLegend();
  };

  /* The frame kinds present in the graph, with their colours. */
  Flame.prototype.drawLegend = function () {
    if (!this.legend) { this.legend = h('div.flame-legend'); this.el.insertBefore(this.legend, this.tip); }
    CP.clear(this.legend);
    if (this.diff) return;
    var seen = {}, order = [];
    this.frames.forEach(function (n) {
      var label = n.kind ? (KINDS[n.kind] ? KINDS[n.kind].label : 'Native library') : null;
      if (label && !seen[label]) { seen[label] = n; order.push(label); }
    });
    var self = this;
    order.forEach(function (label) {
      var sw = h('i');
      sw.style.background = color({ name: '', kind: seen[label].kind });
      self.legend.appendChild(h('span.legend-item', { 'data-kind': label }, sw, label));
    });
  };

  /* Breadth-first so that, when the DOM budget runs out, it is the deepest
   * frames that go, never a caller whose callees are drawn. */
  Flame.prototype.layout = function (frag, focus, depth0) {
    var queue = [{ n: focus, x: 0, d: depth0 }], maxD = depth0, scale = 1 / focus.total;
    for (var q = 0; q < queue.length && this.frames.length < MAX_FRAMES; q++) {
      var it = queue[q], w = it.n.total * scale;
      this.addFrame(frag, it.n, it.x, w, it.d, false);
      maxD = Math.max(maxD, it.d);
      var x = it.x;   /* callees from the left edge; self time is the gap on the right */
      for (var i = 0; i < it.n.children.length; i++) {
        var c = it.n.children[i], cw = c.total * scale;
        if (cw >= MIN_FRAC) queue.push({ n: c, x: x, d: it.d + 1 });
        x += cw;
      }
    }
    return maxD + 1;
  };

  Flame.prototype.addFrame = function (frag, n, x, w, d, ancestor) {
    var el = h('div.fr', { 'data-i': this.frames.length });
    el.style.left = (x * 100) + '%';
    el.style.width = (w * 100) + '%';
    el.style.top = (d * ROW) + 'px';
    el.style.background = this.diff ? diffColor(n) : color(n);
    if (ancestor) el.classList.add('anc');
    if (this.term) el.classList.add(this.matches(n) ? 'match' : 'dim');
    el.textContent = n.name;
    this.frames.push(n);
    frag.appendChild(el);
  };

  Flame.prototype.updateStatus = function (focus) {
    var parts = [];
    if (this.zoom) parts.push('Zoomed into ' + focus.name);
    if (this.term) {
      var self = this;
      var m = CP.tree.matchedTotal(this.root, function (n) { return self.matches(n); });
      parts.push('Matches: ' + CP.fmtUnit(m, this.unit) + ' (' + CP.fmtPct(m / this.root.total) + ' of all)');
    }
    this.status.textContent = parts.join(' · ');
  };

  Flame.prototype.nodeAt = function (e) {
    var t = e.target.closest && e.target.closest('.fr');
    return t ? this.frames[+t.getAttribute('data-i')] : null;
  };

  Flame.prototype.onClick = function (e) {
    var n = this.nodeAt(e);
    if (n) this.zoomTo(n);
  };

  Flame.prototype.onMove = function (e) {
    var n = this.nodeAt(e);
    if (!n) { this.tip.hidden = true; return; }
    if (this.tipNode !== n) { this.tipNode = n; this.fillTip(n); }
    this.tip.hidden = false;
    var r = this.el.getBoundingClientRect(), tw = this.tip.offsetWidth;
    var x = e.clientX - r.left + 14;
    if (x + tw > r.width) x = Math.max(0, e.clientX - r.left - tw - 14);
    this.tip.style.left = x + 'px';
    this.tip.style.top = (e.clientY - r.top + 16) + 'px';
  };

  Flame.prototype.fillTip = function (n) {
    var all = this.root.total, u = this.unit, rows = [];
    function row(k, v) { rows.push(h('tr', h('th', k), h('td', v))); }
    if (this.diff) {
      row('A (before)', CP.fmtUnit(n.base, u) + '  self ' + CP.fmtUnit(n.selfBase, u));
      row('B (after)', CP.fmtUnit(n.after, u) + '  self ' + CP.fmtUnit(n.self, u));
      var d = n.after - n.base;
      row('Change', (d >= 0 ? '+' : '−') + CP.fmtUnit(Math.abs(d), u) +
        (n.base ? ' (' + (d >= 0 ? '+' : '') + CP.fmtPct(d / n.base) + ')' : ' (new)'));
    } else {
      row('Total', CP.fmtUnit(n.total, u) + ' · ' + CP.fmtPct(n.total / all) + ' of all');
      row('Self', CP.fmtUnit(n.self, u) + ' · ' + CP.fmtPct(n.self / all) + ' of all');
      if (this.zoom) row('Of zoomed', CP.fmtPct(n.total / this.zoom.total));
    }
    if (n.kind) row('Kind', CP.frameKindLabel(n.kind));
    CP.clear(this.tip);
    CP.append(this.tip, [h('div.tip-name', n.name), n.file ? h('div.tip-file', n.file) : null,
      h('table', rows), h('div.tip-hint', 'Click to zoom')]);
  };

  CP.Flame = Flame;
})();
