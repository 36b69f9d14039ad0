/* contprof explorer — call trees: the one in-page shape every flame graph
 * draws. A node is {name, file, total, self, children[]}; in a comparison a
 * node also has base / selfBase (profile A) and after / self (profile B),
 * and total = max(A, B) so code that shrank keeps its width.
 * Converts the server's /flame and /compare JSON (explorer/API.md) into it. */
'use strict';
(function () {
  function byName(a, b) {
    return a.name < b.name ? -1 : a.name > b.name ? 1 : (a.file < b.file ? -1 : a.file > b.file ? 1 : 0);
  }

  /* Copy a server node and its subtree; values(x) gives the node's numbers.
   * Iterative (an explicit stack): stacks of many thousand frames must not
   * hit the JavaScript call-stack limit. */
  function convert(x0, values) {
    function one(x) {
      var n = values(x);
      n.name = String(x.name != null ? x.name : '?');
      n.file = x.file || '';
      if (x.kind) n.kind = String(x.kind);   /* frame kind: mapping file name */
      n.children = [];
      return n;
    }
    var root = one(x0), work = [[x0, root]];
    while (work.length) {
      var it = work.pop(), kids = it[0].children || [];
      for (var i = 0; i < kids.length; i++) {
        var c = one(kids[i]);
        it[1].children.push(c);
        work.push([kids[i], c]);
      }
      it[1].children.sort(byName);
    }
    return root;
  }

  function plainValues(x) { return { total: +x.total || 0, self: +x.self || 0 }; }

  function diffValues(x) {
    var a = +x.a || 0, b = +x.b || 0;
    return { base: a, after: b, total: Math.max(a, b), self: +x.b_self || 0, selfBase: +x.a_self || 0 };
  }

  function rootOf(j, values) {
    var root = convert(j.root || { name: 'root' }, values);
    root.name = 'all';
    return root;
  }

  /* /api/profiles/{id}/flame or /api/aggregate/flame → tree. */
  function fromFlame(j) { return rootOf(j, plainValues); }

  /* /api/compare → diff tree. */
  function fromCompare(j) { return rootOf(j, diffValues); }

  /* Sum of the totals of the outermost nodes matching pred (a match inside
   * a match is not counted twice), for "search matches N% of the view". */
  function matchedTotal(root, pred) {
    var s = 0, work = [root];
    while (work.length) {
      var n = work.pop();
      if (pred(n)) { s += n.total; continue; }
      for (var i = 0; i < n.children.length; i++) work.push(n.children[i]);
    }
    return s;
  }

  CP.tree = { fromFlame: fromFlame, fromCompare: fromCompare, matchedTotal: matchedTotal };
})();
