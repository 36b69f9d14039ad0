/* contprof explorer — checks on what dd-trace for Node.js uploaded (run by
 * run.sh, which starts the explorer and the profiled app.js).
 *
 * Known answers: app.js spends its CPU in fibonacciBusyLoop and allocates
 * in allocateBuffers; dd-trace sends wall.pprof (sample/wall/cpu),
 * space.pprof (inuse_objects/inuse_space) and events.pprof in one upload
 * and no host (the explorer fills in its own, as the Datadog agent does).
 * Env: EXPLORER_URL. */
'use strict';
const os = require('os');

const BASE = process.env.EXPLORER_URL;
const EXPECT = { service: 'node-shop', env: 'staging', version: '4.2.0', host: os.hostname(),
  runtime: 'nodejs', language: 'javascript' };
const NEED_TYPES = ['sample', 'wall', 'cpu', 'inuse_objects', 'inuse_space'];
let passed = 0;
let lastProfile = null;

function check(cond, msg) { if (!cond) throw new Error(msg); }
async function get(path) {
  const r = await fetch(BASE + path);
  const body = await r.text();
  check(r.status === 200, `GET ${path}: ${r.status} ${body.slice(0, 200)}`);
  return JSON.parse(body);
}
function ok(name) { passed++; console.log(`ok ${passed} - ${name}`); }
function names(node, out) {          /* every function name in a flame tree, iteratively */
  const stack = [node];
  while (stack.length) { const n = stack.pop(); out.add(n.name); (n.children || []).forEach(c => stack.push(c)); }
  return out;
}

async function main() {
  /* Two full uploads (every attachment) within a bounded wait. */
  let full = [];
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline) {
    const l = await get('/api/profiles?service=node-shop&limit=50');
    full = l.profiles.filter(p => NEED_TYPES.every(t => p.types.includes(t)));
    if (full.length >= 2) break;
    await new Promise(r => setTimeout(r, 500));
  }
  check(full.length >= 2, `expected 2 uploads holding ${NEED_TYPES.join(', ')}; got ${full.length}`);
  ok(`${full.length} dd-trace uploads, each with every attachment's types: ${full[0].types.join(', ')}`);

  for (const p of full)
    for (const k of Object.keys(EXPECT)) check(p[k] === EXPECT[k], `profile ${p.id}: ${k} is '${p[k]}', expected '${EXPECT[k]}'`);
  const l = await get('/api/profiles?service=node-shop');
  for (const k of ['service', 'env', 'version', 'host'])
    check(l.facets[k].some(v => v.value === EXPECT[k] && v.count >= 2), `facet ${k} lacks ${EXPECT[k]}: ${JSON.stringify(l.facets[k])}`);
  ok('service/env/version/host filled (host = the explorer\'s own) and faceted');

  const p = full[1];                     /* not the newest: a whole period */
  const d = await get(`/api/profiles/${p.id}`);
  lastProfile = { id: p.id, types: d.type_totals };
  check(d.default_type === 'cpu', `default type is ${d.default_type}, expected cpu (CPU time first)`);
  check(p.cpu_cores > 0 && p.live_heap > 0, `measures missing: cpu_cores ${p.cpu_cores}, live_heap ${p.live_heap}`);
  const m = await get('/api/metrics?service=node-shop');
  const cpuSeries = m.series.find(s => s.name === 'cpu_cores');
  check(cpuSeries && cpuSeries.points.length >= 2, 'metrics: no cpu_cores points for node-shop');
  ok(`measures and metrics: CPU ${(p.cpu_cores * 100).toFixed(1)}%, live heap ${p.live_heap} B, ${cpuSeries.points.length} CPU points`);

  for (const tt of d.type_totals) {
    const f = await get(`/api/profiles/${p.id}/flame?type=${encodeURIComponent(tt.type)}&min_frac=0`);
    check(Math.abs(f.total - tt.total) <= 1e-6 * Math.max(1, tt.total), `${tt.type}: flame total ${f.total} != ${tt.total}`);
    const t = await get(`/api/profiles/${p.id}/table?type=${encodeURIComponent(tt.type)}`);
    if (tt.total > 0) check(f.root.children.length > 0 && t.rows.length > 0, `${tt.type}: nothing drawn`);
  }
  ok(`every type (${d.type_totals.map(t => t.type).join(', ')}) drawn with its exact total`);

  /* Sampling: judged on all uploads so far (the aggregate), waiting for
   * more within the deadline when a short period caught too little. */
  let cpu = new Set(), space = new Set();
  while (Date.now() < deadline + 30000) {
    const q = `/api/aggregate/flame?service=node-shop&min_frac=0&wait_ms=20000&type=`;
    const a = await get(q + 'cpu'), b = await get(q + 'inuse_space');
    if (a.root) cpu = names(a.root, new Set());
    if (b.root) space = names(b.root, new Set());
    if (cpu.has('fibonacciBusyLoop') && space.has('allocateBuffers')) break;
    await new Promise(r => setTimeout(r, 1000));
  }
  check(cpu.has('fibonacciBusyLoop'), 'cpu flames of every upload lack fibonacciBusyLoop');
  check(space.has('allocateBuffers'), 'inuse_space flames of every upload lack allocateBuffers');
  const a = await get(`/api/profiles/${p.id}/analysis`);
  check(a.rules.filter(r => r.checked).length >= 3, `analysis checked only ${a.rules.filter(r => r.checked).map(r => r.id)}`);
  ok('known answers (aggregate of the uploads): fibonacciBusyLoop on CPU, allocateBuffers in the live heap; analysis rules checked');
}

/* The same upload in a real browser (when run.sh found chromium): the
 * list shows it with Node.js / JavaScript facets, and every type of the
 * profile draws a flame graph and a function table. */
async function browser(id, types) {
  const { chromium } = require('playwright-core');
  const path = require('path');
  const ctx = await chromium.launchPersistentContext(process.env.USER_DATA_DIR, {
    executablePath: process.env.CHROMIUM, headless: true, viewport: { width: 1280, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync'] });
  const errors = [];
  try {
    const page = ctx.pages()[0] || await ctx.newPage();
    page.setDefaultTimeout(10000);
    page.on('pageerror', e => errors.push(e.message));
    await page.goto(BASE + '/#/?service=node-shop');
    await page.waitForSelector('.list-body tbody tr');
    const facet = async k => page.$$eval(`.facet[data-facet="${k}"] .facet-value .fv`, fs => fs.map(f => f.textContent));
    check((await facet('runtime')).includes('Node.js'), `runtime facet shows ${await facet('runtime')}`);
    check((await facet('language')).includes('JavaScript'), `language facet shows ${await facet('language')}`);
    check((await facet('host')).includes(EXPECT.host), `host facet shows ${await facet('host')}`);
    await page.screenshot({ path: path.join(process.env.ARTIFACTS, 'ddtrace-list.png') });
    for (const t of types) {
      await page.goto(`${BASE}/#/profile/${id}?type=${encodeURIComponent(t.type)}`);
      if (t.total > 0) {
        await page.waitForFunction(() => document.querySelectorAll('.flame-panel .flame-canvas .fr').length > 1 &&
          document.querySelectorAll('.fn-table tbody tr').length > 0);
      } else {
        await page.waitForSelector('.flame-panel .flame-canvas .empty, .flame-panel .flame-canvas .fr');
      }
      if (t.type === 'cpu' || t.type === 'inuse_space')
        await page.screenshot({ path: path.join(process.env.ARTIFACTS, `ddtrace-${t.type}.png`) });
    }
    check(!errors.length, `page errors: ${errors.join('; ')}`);
  } finally {
    await ctx.close();
  }
  ok(`in Chromium: Node.js / JavaScript facets, and ${types.length} types drawn (${types.map(t => t.type).join(', ')})`);
}

main().then(async () => {
  if (process.env.CHROMIUM) await browser(lastProfile.id, lastProfile.types);
  console.log(`# ${passed} checks passed`);
}, e => { console.error(`not ok - ${e.message}`); process.exit(1); }).catch(e => { console.error(`not ok - ${e.message}`); process.exit(1); });
