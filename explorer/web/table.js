/* contprof explorer — sortable table. Columns are described once
 * ({key, label, num, fmt, value, title, tip, bar, nosort}); clicking a header
 * sorts by it (again to reverse). Rows are plain objects; cells are built with CP.h, so
 * data is never parsed as HTML. `bar` draws a share bar behind the value. */
'use strict';
(function () {
  var h = CP.h;

  function Table(opts) {
    this.cols = opts.columns;
    this.rows = opts.rows || [];
    this.sortKey = opts.sortKey || null;
    this.desc = opts.desc !== false;
    this.limit = opts.limit || 0;
    this.onRow = opts.onRowClick || null;
    this.rowAttrs = opts.rowAttrs || null;
    this.onSort = opts.onSort || null;     /* server-side sorting: (key, desc) */
    this.empty = opts.empty || 'Nothing to show.';
    this.filter = null;                    /* row predicate, e.g. a search */
    this.el = h('div.table-wrap');
    this.render();
  }

  Table.prototype.setRows = function (rows) { this.rows = rows || []; this.render(); };

  /* Show only rows for which pred(row) is true (null: all rows). */
  Table.prototype.setFilter = function (pred) { this.filter = pred; this.render(); };

  Table.prototype.col = function (key) {
    for (var i = 0; i < this.cols.length; i++) if (this.cols[i].key === key) return this.cols[i];
    return null;
  };

  Table.prototype.value = function (c, r) { return c.value ? c.value(r) : r[c.key]; };

  Table.prototype.sorted = function () {
    var c = this.col(this.sortKey);
    if (!c || this.onSort) return this.rows;
    var self = this, sign = this.desc ? -1 : 1;
    return this.rows.slice().sort(function (a, b) {
      var x = self.value(c, a), y = self.value(c, b);
      if (x == null && y == null) return 0;
      if (x == null) return 1;            /* missing values always last */
      if (y == null) return -1;
      if (typeof x === 'string' || typeof y === 'string') return sign * String(x).localeCompare(String(y));
      return sign * (x - y);
    });
  };

  Table.prototype.sortBy = function (key) {
    if (this.sortKey === key) this.desc = !this.desc;
    else { this.sortKey = key; this.desc = !!(this.col(key) || {}).num; }
    if (this.onSort) this.onSort(this.sortKey, this.desc);
    this.render();
  };

  Table.prototype.head = function () {
    var self = this;
    return h('thead', h('tr', this.cols.map(function (c) {
      var on = self.sortKey === c.key;
      var th = h('th' + (c.num ? '.num' : ''), {
        scope: 'col', title: c.title || null, 'data-key': c.key,
        'aria-sort': on ? (self.desc ? 'descending' : 'ascending') : 'none'
      }, c.nosort ? c.label : h('button.sort', { type: 'button', onclick: function () { self.sortBy(c.key); } },
        c.label, h('span.arrow', on ? (self.desc ? ' ▼' : ' ▲') : '')));
      return th;
    })));
  };

  Table.prototype.cell = function (c, r) {
    var v = this.value(c, r);
    var text = c.fmt ? c.fmt(v, r) : (v == null || v === '' ? '–' : String(v));
    var td = h('td' + (c.num ? '.num' : '') + (c.cls ? '.' + c.cls : ''), { title: c.tip ? c.tip(r) : null });
    if (c.bar) {
      var f = Math.max(0, Math.min(1, c.bar(r) || 0));
      td.appendChild(h('span.bar', { style: { width: (f * 100).toFixed(2) + '%' } }));
    }
    CP.append(td, text);
    return td;
  };

  Table.prototype.render = function () {
    var self = this, rows = this.filter ? this.sorted().filter(this.filter) : this.sorted();
    var shown = this.limit ? rows.slice(0, this.limit) : rows;
    var body = h('tbody', shown.map(function (r) {
      var tr = h('tr', self.rowAttrs ? self.rowAttrs(r) : null, self.cols.map(function (c) { return self.cell(c, r); }));
      if (self.onRow) {
        tr.classList.add('clickable');
        tr.addEventListener('click', function (e) { self.onRow(r, e); });
      }
      return tr;
    }));
    CP.clear(this.el);
    this.el.appendChild(h('table.grid', this.head(), body));
    if (!rows.length) this.el.appendChild(CP.empty(this.empty));
    else if (shown.length < rows.length) {
      this.el.appendChild(h('div.more', 'Showing ' + shown.length + ' of ' + rows.length + ' rows.'));
    }
  };

  CP.Table = Table;
})();
