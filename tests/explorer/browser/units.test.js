/* contprof explorer — known-answer tests of the pages' pure helpers (unit
 * formatting, timestamps, call-tree conversion), run by run.sh with plain
 * node before the browser part: what the pages print must be true.
 * Loads explorer/web/util.js and tree.js into a bare context (no DOM). */
'use strict';
const fs = require('fs');
const path = require('path');
const vm = require('vm');
const assert = require('assert');

const WEB = path.join(__dirname, '..', '..', '..', 'explorer', 'web');
const ctx = vm.createContext({ console, Date, Math, URLSearchParams });
ctx.window = ctx;
for (const f of ['util.js', 'tree.js']) vm.runInContext(fs.readFileSync(path.join(WEB, f), 'utf8'), ctx, { filename: f });
const CP = ctx.CP;

let n = 0;
/* Values made by the pages live in the vm context's realm (their arrays
 * have that realm's Array.prototype): compare them as plain data. */
function eq(actual, want, what) {
  const plain = v => (v && typeof v === 'object' ? JSON.parse(JSON.stringify(v)) : v);
  assert.deepStrictEqual(plain(actual), want, `${what}: got ${JSON.stringify(actual)}, want ${JSON.stringify(want)}`);
  n++;
}

/* durations: ns → µs/ms/s, minutes only from 10 min */
eq(CP.fmtNs(0), '0 ns', 'fmtNs 0');
eq(CP.fmtNs(999), '999 ns', 'fmtNs 999');
eq(CP.fmtNs(1500), '1.5 µs', 'fmtNs 1500');
eq(CP.fmtNs(2.5e6), '2.5 ms', 'fmtNs 2.5e6');
eq(CP.fmtNs(211923320), '211.92 ms', 'fmtNs 211923320');
eq(CP.fmtNs(82.2e9), '82.2 s', 'fmtNs 82.2 s');
eq(CP.fmtNs(900e9), '15 min', 'fmtNs 15 min');
eq(CP.fmtNs(null), '–', 'fmtNs null');

/* bytes are binary */
eq(CP.fmtBytes(512), '512 B', 'fmtBytes 512');
eq(CP.fmtBytes(1536), '1.5 KiB', 'fmtBytes 1536');
eq(CP.fmtBytes(52428800), '50 MiB', 'fmtBytes 50 MiB');
eq(CP.fmtBytes(3 * 1073741824), '3 GiB', 'fmtBytes 3 GiB');
eq(CP.fmtBytesRate(485489187.4), '463 MiB/s', 'fmtBytesRate');

/* shares and cores: 1.37 cores = 137 %, small shares keep two decimals */
eq(CP.fmtPct(1.37), '137%', 'fmtPct 1.37');
eq(CP.fmtPct(0.75), '75%', 'fmtPct 0.75');
eq(CP.fmtPct(0.0512), '5.12%', 'fmtPct 0.0512');
eq(CP.fmtPct(NaN), '–', 'fmtPct NaN');
eq(CP.fmtCount(1834), '1.8k', 'fmtCount 1834');
eq(CP.fmtCount(42), '42', 'fmtCount 42');

/* values in pprof and API units */
eq(CP.fmtUnit(3e9, 'nanoseconds'), '3 s', 'fmtUnit ns');
eq(CP.fmtUnit(2048, 'bytes'), '2 KiB', 'fmtUnit bytes');
eq(CP.fmtUnit(104857600, 'bytes/s'), '100 MiB/s', 'fmtUnit bytes/s');
eq(CP.fmtUnit(0.657647, '%'), '0.66%', 'fmtUnit %');
eq(CP.fmtUnit(7, 'count'), '7', 'fmtUnit count');

/* facet display names: tags keep what clients send, pages show products */
eq(['OpenJDK_64-Bit_Server_VM', 'Java', 'CPython', 'nodejs', 'OpenJ9', 'go', 'whatever'].map(CP.displayRuntime),
   ['JVM', 'JVM', 'CPython', 'Node.js', 'JVM', 'Go', 'whatever'], 'displayRuntime');
eq(['jvm', 'java', 'python', 'javascript', 'c'].map(CP.displayLanguage), ['Java', 'Java', 'Python', 'JavaScript', 'c'],
   'displayLanguage');

/* timestamps: RFC 3339 with ns, epoch s/ms/ns */
const t = Date.UTC(2026, 10, 25, 6, 0, 0, 123);
eq(CP.toMs('2026-11-25T06:00:00.123456789Z'), t, 'toMs RFC 3339 ns');
eq(CP.toMs(t), t, 'toMs ms');
eq(CP.toMs(t / 1000), t, 'toMs s');
eq(CP.toMs(t * 1e6), t, 'toMs ns');
eq(CP.toMs('not a time'), null, 'toMs garbage');

/* /flame → tree: root renamed, children by name, self kept */
const flame = CP.tree.fromFlame({ root: { name: 'root', total: 40, self: 0, children: [
  { name: 'main', file: 'a.py', total: 40, self: 0, children: [
    { name: 'render', file: 'a.py', total: 10, self: 10 },
    { name: 'parse', file: 'a.py', total: 30, self: 25, children: [{ name: 'parse', total: 5, self: 5 }] }] }] } });
eq(flame.name, 'all', 'fromFlame root name');
eq(flame.children[0].children.map(c => c.name), ['parse', 'render'], 'fromFlame children by name');
eq([flame.children[0].children[0].total, flame.children[0].children[0].self], [30, 25], 'fromFlame values');
/* recursion: parse inside parse is counted once */
eq(CP.tree.matchedTotal(flame, x => x.name === 'parse'), 30, 'matchedTotal under recursion');
eq(CP.tree.matchedTotal(flame, x => x.name === 'nothing'), 0, 'matchedTotal no match');

/* /compare → diff tree: width is max(A, B), self is B's */
const diff = CP.tree.fromCompare({ root: { name: 'root', a: 10, b: 6, a_self: 0, b_self: 0, children: [
  { name: 'gone', a: 10, b: 0, a_self: 10, b_self: 0 }, { name: 'new', a: 0, b: 6, a_self: 0, b_self: 6 }] } });
eq([diff.total, diff.base, diff.after], [10, 10, 6], 'fromCompare root');
eq(diff.children.map(c => [c.name, c.total, c.self, c.selfBase]), [['gone', 10, 0, 10], ['new', 6, 6, 0]], 'fromCompare children');

console.log(`units: ${n} checks passed`);
