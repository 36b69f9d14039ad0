/* contprof explorer — real-browser test of the viewer features (run by
 * run.sh after explorer.test.js, on the same explorer):
 *  - focus / ignore / hide by regex and label filters (thread name);
 *  - a function's sandwich (callers / callees) and source lines, with the
 *    source text of a file written here;
 *  - a 5,000-frame stack drawn, the table naming the true leaf;
 *  - Metrics of a service on three hosts: three series and a total.
 * The profiles are known answers written here as pprof (a few lines of
 * protobuf below): the core's encoder caps stacks at 599 frames and the
 * source file must exist on this machine.
 *
 * Env: EXPLORER_URL, ARTIFACTS, USER_DATA_DIR, CHROMIUM. */
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const { chromium } = require('playwright-core');

const BASE = process.env.EXPLORER_URL;
const ART = process.env.ARTIFACTS;
let passed = 0;
const problems = [];

function fail(msg) { throw new Error(msg); }
function check(cond, msg) { if (!cond) fail(msg); }
async function step(name, fn) {
  const t0 = Date.now();
  try { await fn(); } catch (e) { console.error(`not ok - ${name}: ${e.message.split('\n')[0]}`); throw e; }
  passed++;
  console.log(`ok ${passed} - viewer: ${name} (${Date.now() - t0} ms)`);
}
async function shot(page, name) { await page.screenshot({ path: path.join(ART, name + '.png'), fullPage: false }); }

/* ---- a minimal pprof writer ------------------------------------------- */

function varint(v) {
  const out = [];
  let x = BigInt(v);
  if (x < 0n) x += 1n << 64n;
  while (x >= 0x80n) { out.push(Number(x & 0x7fn) | 0x80); x >>= 7n; }
  out.push(Number(x));
  return Buffer.from(out);
}
const key = (f, w) => varint(f * 8 + w);
const fint = (f, v) => (v ? Buffer.concat([key(f, 0), varint(v)]) : Buffer.alloc(0));
const fbytes = (f, b) => Buffer.concat([key(f, 2), varint(b.length), b]);
const packed = (f, arr) => fbytes(f, Buffer.concat(arr.map(varint)));

/* samples: [{stack: [[name, file, line, kind?], …] root first, values: […],
 * labels: {k: v}}]; kind is a mapping file name ("[python]", a library). */
function pprof(types, samples, startMs, durMs) {
  const strings = [''], sidx = new Map([['', 0]]);
  const str = s => { if (!sidx.has(s)) { sidx.set(s, strings.length); strings.push(s); } return sidx.get(s); };
  const funcs = new Map(), locs = new Map(), maps = new Map(), parts = [];
  for (const [t, u] of types) parts.push(fbytes(1, Buffer.concat([fint(1, str(t)), fint(2, str(u))])));
  const fn = (name, file) => {
    const k = name + '\0' + file;
    if (!funcs.has(k)) funcs.set(k, { id: funcs.size + 1, name, file });
    return funcs.get(k).id;
  };
  const mapping = kind => {
    if (!kind) return 0;
    if (!maps.has(kind)) maps.set(kind, maps.size + 1);
    return maps.get(kind);
  };
  const loc = (name, file, line, kind) => {
    const k = name + '\0' + file + '\0' + line + '\0' + (kind || '');
    if (!locs.has(k)) locs.set(k, { id: locs.size + 1, fid: fn(name, file), line, mid: mapping(kind) });
    return locs.get(k).id;
  };
  for (const s of samples) {
    const ids = s.stack.map(([n, f, l, k]) => loc(n, f, l, k)).reverse();   /* leaf first */
    const labels = Object.entries(s.labels || {}).map(([k, v]) =>   /* bigint: a numeric label */
      fbytes(3, Buffer.concat([fint(1, str(k)), typeof v === 'bigint' ? fint(3, v) : fint(2, str(String(v)))])));
    parts.push(fbytes(2, Buffer.concat([packed(1, ids), packed(2, s.values), ...labels])));
  }
  for (const [kind, id] of maps) parts.push(fbytes(3, Buffer.concat([fint(1, id), fint(5, str(kind))])));
  for (const l of locs.values())
    parts.push(fbytes(4, Buffer.concat([fint(1, l.id), fint(2, l.mid), fbytes(4, Buffer.concat([fint(1, l.fid), fint(2, l.line)]))])));
  for (const f of funcs.values()) parts.push(fbytes(5, Buffer.concat([fint(1, f.id), fint(2, str(f.name)), fint(4, str(f.file))])));
  const tail = Buffer.concat([fint(9, BigInt(startMs) * 1000000n), fint(10, BigInt(durMs) * 1000000n)]);
  const strs = Buffer.concat(strings.map(s => fbytes(6, Buffer.from(s))));
  return zlib.gzipSync(Buffer.concat([...parts, strs, tail]));
}

async function upload(tags, bytes, startMs, durMs) {
  const boundary = '----viewerTest' + Math.random().toString(16).slice(2);
  const ev = { attachments: ['auto.pprof'], start: new Date(startMs).toISOString(), end: new Date(startMs + durMs).toISOString(),
    family: 'python', version: '4', tags_profiler: tags };
  const head = (n, t) => Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${n}"; filename="${n}"\r\nContent-Type: ${t}\r\n\r\n`);
  const body = Buffer.concat([head('event', 'application/json'), Buffer.from(JSON.stringify(ev)), Buffer.from('\r\n'),
    head('auto.pprof', 'application/octet-stream'), bytes, Buffer.from(`\r\n--${boundary}--\r\n`)]);
  const r = await fetch(BASE + '/profiling/v1/input', { method: 'POST', body, headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` } });
  const text = await r.text();
  check(r.status === 200, `upload answered ${r.status}: ${text.slice(0, 200)}`);
  return JSON.parse(text).id;
}

/* ---- data --------------------------------------------------------------- */

const SRC = path.join(path.dirname(ART), 'viewer-src', 'shop.py');

function writeSource() {
  const lines = [];
  for (let i = 1; i <= 40; i++) lines.push(`# line ${i}`);
  lines[9] = '    body = parse(request)          # line 10';
  lines[10] = '    return render(body)            # line 11';
  lines[19] = '    return json.loads(text)        # line 20';
  lines[29] = '    return template.format(**ctx)  # line 30';
  fs.mkdirSync(path.dirname(SRC), { recursive: true });
  fs.writeFileSync(SRC, lines.join('\n') + '\n');
}

async function seed() {
  writeSource();
  const now = Date.now() - 600000, F = SRC;
  const app = pprof([['cpu-time', 'nanoseconds'], ['cpu-samples', 'count']], [
    { stack: [['main', F, 3], ['handler', F, 10], ['parse', F, 20]], values: [3e9, 300], labels: { 'thread name': 'worker-1' } },
    { stack: [['main', F, 3], ['handler', F, 11], ['render', F, 30]], values: [1e9, 100], labels: { 'thread name': 'worker-2' } },
    { stack: [['gc_collect', F, 5]], values: [7e8, 70], labels: { 'thread name': 'gc' } }], now, 10000);
  const ids = { app: await upload('service:viewer-app,env:test,host:v1', app, now, 10000) };
  const kinds = pprof([['cpu-time', 'nanoseconds']], [
    { stack: [['<module>', 'z.py', 1, '[python]'], ['compress', 'z.py', 4, '[python]'], ['deflate', 'deflate.c', 0, '/usr/lib/x86_64-linux-gnu/libz.so.1'],
              ['longest_match', 'deflate.c', 0, '/usr/lib/x86_64-linux-gnu/libz.so.1']], values: [3e9] },
    { stack: [['<module>', 'z.py', 1, '[python]'], ['loop', 'z.py', 9, '[python]']], values: [1e9] },
    { stack: [['[unknown]', '', 0, '[pseudo]']], values: [2e8] }], now, 10000);
  ids.kinds = await upload('service:viewer-kinds,env:test,host:v1', kinds, now, 10000);
  ids.locks = await upload('service:viewer-locks,env:test,host:v1', pprof(
    [['lock-acquire-wait', 'nanoseconds'], ['lock-acquire', 'count'], ['exception-samples', 'count']], [
      { stack: [['main', 'l.py', 1], ['flush', 'l.py', 5], ['Lock.acquire', 'threading.py', 9]], values: [4e9, 40, 0], labels: { 'lock name': 'cache_lock' } },
      { stack: [['main', 'l.py', 1], ['load', 'l.py', 7], ['Lock.acquire', 'threading.py', 9]], values: [1e9, 10, 0], labels: { 'lock name': 'db_lock' } },
      { stack: [['main', 'l.py', 1], ['parse', 'l.py', 3]], values: [0, 0, 12], labels: { 'exception type': 'ValueError' } },
      { stack: [['main', 'l.py', 1], ['fetch', 'l.py', 4]], values: [0, 0, 3], labels: { 'exception type': 'TimeoutError' } }], now, 10000), now, 10000);
  const timed = [];
  for (let i = 0; i < 20; i++)
    timed.push({ stack: [['main', 't.js', 1], [i < 10 ? 'phase_one' : 'phase_two', 't.js', 2]], values: [1e7 * (i + 1)],
                 labels: { end_timestamp_ns: BigInt(now) * 1000000n + BigInt(i) * 500000000n } });
  ids.timed = await upload('service:viewer-timed,env:test,host:v1', pprof([['wall', 'nanoseconds']], timed, now, 10000), now, 10000);
  const deep = [['main', 'deep.py', 1]];
  for (let i = 0; i < 4998; i++) deep.push(['recurse', 'deep.py', 2]);
  deep.push(['deepest_leaf', 'deep.py', 3]);
  ids.deep = await upload('service:viewer-deep,env:test,host:v1',
    pprof([['cpu-time', 'nanoseconds']], [{ stack: deep, values: [5e8] }, { stack: [['main', 'deep.py', 1], ['shallow', 'deep.py', 9]], values: [1e8] }], now, 10000),
    now, 10000);
  const cores = { 'h-a': 0.1, 'h-b': 0.5, 'h-c': 0.9 };
  ids.tri = [];
  for (let i = 0; i < 6; i++)
    for (const [host, c] of Object.entries(cores)) {
      const t = now - (6 - i) * 10000 + Object.keys(cores).indexOf(host) * 500;
      ids.tri.push(await upload(`service:tri,env:prod,host:${host},runtime-id:rt-${host}`,
        pprof([['cpu-time', 'nanoseconds']], [{ stack: [['main', 'tri.py', 1], ['work_' + host, 'tri.py', 2]], values: [c * 1e10 + i] }], t, 10000), t, 10000));
    }
  return ids;
}

/* ---- page helpers ---------------------------------------------------------- */

const flameNames = page => page.$$eval('.flame-panel .flame-canvas .fr', fs => fs.map(f => f.textContent));
const tableNames = page => page.$$eval('.fn-table tbody tr td.fn', tds => tds.map(t => t.textContent));

async function waitFlame(page, want, absent, what) {
  try {
    await page.waitForFunction(([w, a]) => {
      const have = Array.from(document.querySelectorAll('.flame-panel .flame-canvas .fr')).map(f => f.textContent);
      const rows = document.querySelectorAll('.fn-table tbody tr').length;
      return rows > 0 && w.every(n => have.includes(n)) && a.every(n => !have.includes(n));
    }, [want, absent], { timeout: 10000 });
  } catch (e) {
    fail(`${what}: want ${want.join(', ')} and not ${absent.join(', ')}; the flame graph shows ${(await flameNames(page)).slice(0, 12).join(' | ')}`);
  }
}

async function setFilter(page, which, value) {
  await page.fill(`input.filter-re[data-filter="${which}"]`, value);
  await page.click('#filters-apply');
}

async function run(page, ids) {
  await step('profile page with the filter bar', async () => {
    await page.goto(`${BASE}/#/profile/${ids.app}`);
    await waitFlame(page, ['main', 'handler', 'parse', 'render', 'gc_collect'], [], 'unfiltered');
  });
  await step('focus ^parse$ keeps only stacks through parse', async () => {
    await setFilter(page, 'focus', '^parse$');
    await waitFlame(page, ['main', 'handler', 'parse'], ['render', 'gc_collect'], 'focus');
    check(!(await tableNames(page)).includes('render'), 'focus: the table still lists render');
    await shot(page, 'viewer-focus');
  });
  await step('ignore render drops its stacks; hide handler removes the frame', async () => {
    await setFilter(page, 'focus', '');
    await setFilter(page, 'ignore', 'render');
    await waitFlame(page, ['main', 'handler', 'parse', 'gc_collect'], ['render'], 'ignore');
    await setFilter(page, 'ignore', '');
    await setFilter(page, 'hide', '^handler$');
    await waitFlame(page, ['main', 'parse', 'render'], ['handler'], 'hide');
    await shot(page, 'viewer-ignore-hide');
    await setFilter(page, 'hide', '');
    await waitFlame(page, ['handler', 'render'], [], 'filters cleared');
  });
  await step('label filter thread name = worker-2 shows only its stacks', async () => {
    await page.selectOption('#label-key', 'thread name');
    await page.waitForFunction(() => document.querySelectorAll('#label-value option').length > 1);
    await page.selectOption('#label-value', 'worker-2');
    await waitFlame(page, ['main', 'handler', 'render'], ['parse', 'gc_collect'], 'label filter');
    check((await page.$$('.label-chip')).length === 1, 'the label filter has no chip to remove it');
    await shot(page, 'viewer-label-filter');
    await page.click('.label-chip');
    await waitFlame(page, ['parse', 'render', 'gc_collect'], [], 'label filter removed');
  });
  await step('sandwich of handler: main above, parse and render below', async () => {
    await page.click('.fn-table tbody tr:has(td.fn:text-is("handler"))');
    await page.waitForSelector('.fn-detail .sandwich-side .fr', { timeout: 10000 });
    const sides = await page.$$eval('.fn-detail .sandwich-side', ss => ss.map(s =>
      Array.from(s.querySelectorAll('.fr')).map(f => f.textContent)));
    check(sides.length === 2, `sandwich: ${sides.length} sides`);
    check(sides[0].includes('handler') && sides[0].includes('main') && !sides[0].includes('parse'),
      `callers side shows ${sides[0].join(' | ')}`);
    check(sides[1].includes('handler') && sides[1].includes('parse') && sides[1].includes('render') && !sides[1].includes('main'),
      `callees side shows ${sides[1].join(' | ')}`);
    await page.$eval('.fn-detail', el => el.scrollIntoView());
    await shot(page, 'viewer-sandwich');
  });
  await step('source lines of handler: per-line totals next to the source text', async () => {
    await page.click('.fn-tabs button[data-view="source"]');
    await page.waitForSelector('table.source-lines tr.hot', { timeout: 10000 });
    const rows = await page.$$eval('table.source-lines tbody tr', trs => trs.map(tr =>
      Array.from(tr.querySelectorAll('td')).map(td => td.textContent)));
    const l10 = rows.find(r => r[0] === '10'), l11 = rows.find(r => r[0] === '11');
    check(l10 && /^3(\.0+)? s/.test(l10[2]) && l10[3].includes('parse(request)'), `line 10: ${JSON.stringify(l10)}`);
    check(l11 && /^1(\.0+)? s/.test(l11[2]) && l11[3].includes('render(body)'), `line 11: ${JSON.stringify(l11)}`);
    await page.$eval('.fn-detail', el => el.scrollIntoView());
    await shot(page, 'viewer-source');
  });
  await step('frames coloured by kind (Python, native library, pseudo) with a legend', async () => {
    await page.goto(`${BASE}/#/profile/${ids.kinds}`);
    await waitFlame(page, ['compress', 'longest_match', 'loop', '[unknown]'], [], 'frame kinds');
    const legend = await page.$$eval('.flame-panel .flame-legend .legend-item', is => is.map(i => i.textContent));
    check(['Python', 'Native library', 'Pseudo-frame'].every(k => legend.includes(k)), `legend: ${legend.join(', ')}`);
    const bg = await page.$$eval('.flame-panel .flame-canvas .fr', fs => Object.fromEntries(fs.map(f => [f.textContent, getComputedStyle(f).backgroundColor])));
    const hue = c => { const [r, g, b] = c.match(/\d+/g).map(Number); return [r, g, b]; };
    const [pr, pg] = hue(bg.compress), [nr, ng] = hue(bg.longest_match);
    check(pg > pr * 0.8 && nr > ng * 1.3, `Python (${bg.compress}) and native (${bg.longest_match}) frames are not told apart`);
    await shot(page, 'viewer-frame-kinds');
  });
  await step('lock and exception profile types: named, drawn, filtered by lock name / exception type', async () => {
    await page.goto(`${BASE}/#/profile/${ids.locks}`);
    await page.waitForSelector('#type-select option', { state: 'attached' });
    const opts = await page.$$eval('#type-select option', os => os.map(o => o.textContent));
    check(['Lock wait time', 'Lock acquisitions', 'Exceptions'].every(t => opts.some(o => o.startsWith(t))), `types: ${opts.join(' | ')}`);
    await waitFlame(page, ['flush', 'load', 'Lock.acquire'], ['parse'], 'lock wait time');
    await page.selectOption('#label-key', 'lock name');
    await page.waitForFunction(() => document.querySelectorAll('#label-value option').length > 1);
    await page.selectOption('#label-value', 'db_lock');
    await waitFlame(page, ['load', 'Lock.acquire'], ['flush'], 'lock name = db_lock');
    await shot(page, 'viewer-lock-wait');
    await page.goto(`${BASE}/#/profile/${ids.locks}?type=exception-samples`);
    await waitFlame(page, ['parse', 'fetch'], ['flush'], 'exceptions');
    await page.selectOption('#label-key', 'exception type');
    await page.waitForFunction(() => document.querySelectorAll('#label-value option').length > 1);
    await page.selectOption('#label-value', 'ValueError');
    await waitFlame(page, ['parse'], ['fetch'], 'exception type = ValueError');
    await shot(page, 'viewer-exceptions');
  });
  await step('time-ordered view: a click on an early bar shows only that span', async () => {
    await page.goto(`${BASE}/#/profile/${ids.timed}`);
    await waitFlame(page, ['phase_one', 'phase_two'], [], 'time-ordered, whole profile');
    await page.waitForSelector('svg.timeline .tl-bar', { state: 'attached' });
    const bars = await page.$$('svg.timeline .tl-bar');
    check(bars.length > 10, `${bars.length} time buckets`);
    await bars[0].click();
    await waitFlame(page, ['phase_one'], ['phase_two'], 'time window at the start');
    await shot(page, 'viewer-timeline');
    await page.click('#timeline-clear');
    await waitFlame(page, ['phase_one', 'phase_two'], [], 'time window cleared');
  });
  await step('a 5,000-frame stack draws, and the table names the true leaf', async () => {
    await page.goto(`${BASE}/#/profile/${ids.deep}`);
    await waitFlame(page, ['main', 'recurse', 'deepest_leaf', 'shallow'], [], 'deep stack');
    const frames = (await flameNames(page)).length;
    check(frames >= 5000, `only ${frames} frames drawn`);
    const top = await page.$eval('.fn-table tbody tr td.fn', td => td.textContent);
    check(top === 'deepest_leaf', `the table's top self row is ${top}, not deepest_leaf`);
    await shot(page, 'viewer-deep-stack');
    await page.$eval('.flame-panel .flame-canvas', el => el.lastElementChild.scrollIntoView());
    await shot(page, 'viewer-deep-stack-leaf');
  });
  await step('Metrics of a service on three hosts: three series and a total', async () => {
    await page.goto(`${BASE}/#/profile/${ids.tri[ids.tri.length - 1]}?tab=metrics`);
    await page.waitForSelector('figure.chart-box[data-series="cpu_cores"] polyline.series', { timeout: 10000, state: 'attached' });
    const fig = 'figure.chart-box[data-series="cpu_cores"]';
    const series = await page.$$eval(`${fig} polyline.series`, ls => ls.map(l => l.getAttribute('data-group')));
    check(series.length === 3 && ['h-a', 'h-b', 'h-c'].every(k => series.includes(k)), `series: ${series.join(', ')}`);
    check(await page.$(`${fig} polyline.total`), 'no total line');
    const legend = await page.$$eval(`${fig} .legend-item`, is => is.map(i => i.textContent));
    check(legend.includes('h-a') && legend.includes('total'), `legend: ${legend.join(', ')}`);
    await shot(page, 'viewer-metrics-three-hosts');
  });
}

async function longNames(page) {
  await step('a 5,000-character service name does not widen the page', async () => {
    const now = Date.now() - 300000, name = 'svc-' + 'x'.repeat(4996);
    const id = await upload(`service:${name},env:test,host:v1`,
      pprof([['cpu-time', 'nanoseconds']], [{ stack: [['main', 'a.py', 1]], values: [1e9] }], now, 10000), now, 10000);
    for (const url of [`${BASE}/#/`, `${BASE}/#/profile/${id}`]) {
      await page.goto(url);
      await page.waitForSelector(url.includes('profile') ? '.flame-panel .fr' : '.list-body tbody tr');
      const w = await page.evaluate(() => document.documentElement.scrollWidth);
      check(w <= 1300, `${url}: the page is ${w} px wide`);
    }
    await shot(page, 'viewer-long-service-name');
  });
}

async function deleteFromPage(page, ids) {
  await step('delete a profile, then a whole service, from the profile page', async () => {
    page.on('dialog', d => d.accept());
    await page.goto(`${BASE}/#/profile/${ids.tri[0]}`);
    await page.click('#delete-profile');
    await page.waitForFunction(() => !location.hash.includes('/profile/'));
    let r = await fetch(`${BASE}/api/profiles/${ids.tri[0]}`);
    check(r.status === 404, `profile ${ids.tri[0]} still answers ${r.status} after Delete`);
    await page.goto(`${BASE}/#/profile/${ids.tri[1]}`);
    await page.click('#delete-service');
    await page.waitForFunction(() => !location.hash.includes('/profile/'));
    const left = await (await fetch(`${BASE}/api/profiles?service=tri`)).json();
    check(left.total === 0, `${left.total} profiles of service tri left after "Delete service"`);
  });
}

async function main() {
  const ids = await seed();
  const ctx = await chromium.launchPersistentContext(process.env.USER_DATA_DIR + '-viewer', {
    executablePath: process.env.CHROMIUM, headless: true, viewport: { width: 1280, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync']
  });
  try {
    const page = ctx.pages()[0] || await ctx.newPage();
    page.setDefaultTimeout(10000);
    page.on('pageerror', e => problems.push('page error: ' + e.message));
    page.on('console', m => { if (m.type() === 'error') problems.push('console error: ' + m.text()); });
    try {
      await run(page, ids);
      await deleteFromPage(page, ids);
      await longNames(page);
    } catch (e) {
      await shot(page, 'viewer-FAILED').catch(() => {});
      if (problems.length) e.message += `\n  the pages also reported:\n  ${problems.join('\n  ')}`;
      throw e;
    }
    check(!problems.length, `the pages reported:\n  ${problems.join('\n  ')}`);
  } finally {
    await ctx.close();
  }
  console.log(`# viewer: ${passed} checks passed`);
}

main().catch(e => { console.error(e.message); process.exit(1); });
