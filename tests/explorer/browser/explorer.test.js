/* contprof explorer — real-browser test (run by run.sh, which starts the
 * explorer and sets the environment below).
 *
 * Seeds the explorer by POSTing the demo profiles the way the core's
 * uploader does (v2.4 multipart: event.json + the gzip'd pprof), derives
 * the expected facet counts from the uploaded tags, then drives headless
 * Debian chromium through playwright-core: list, facets, filtering,
 * search, sorting, a profile's flame graph and function table for two
 * types (known-answer functions and their 3:1 split), the Analysis,
 * Metrics and Runtime Info tabs, aggregate and comparison views.
 * Every check failing prints one clear line; screenshots are artifacts.
 *
 * Env: EXPLORER_URL, DEMO_PROFILES, ARTIFACTS, USER_DATA_DIR, CHROMIUM. */
'use strict';
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const BASE = process.env.EXPLORER_URL;
const DEMO = process.env.DEMO_PROFILES;
const ART = process.env.ARTIFACTS;
const KNOWN = require('./known-answers.json');

const shots = [];
const problems = [];   /* page errors and failed requests, reported at the end */
let passed = 0;

function fail(msg) { throw new Error(msg); }
function check(cond, msg) { if (!cond) fail(msg); }

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
  } catch (e) {
    console.error(`not ok - ${name}: ${e.message.split('\n')[0]}`);
    throw e;
  }
  passed++;
  console.log(`ok ${passed} - ${name} (${Date.now() - t0} ms)`);
}

async function shot(page, name) {
  const file = path.join(ART, name + '.png');
  await page.screenshot({ path: file, fullPage: false });
  shots.push(file);
}

/* ---- seeding ----------------------------------------------------------- */

/* The demo dir holds <base>.pprof.gz + <base>.json (the event document). */
function demoProfiles() {
  const out = [];
  for (const f of fs.readdirSync(DEMO).sort()) {
    if (!f.endsWith('.json')) continue;
    const event = JSON.parse(fs.readFileSync(path.join(DEMO, f), 'utf8'));
    const pprof = path.join(DEMO, f.replace(/\.json$/, '.pprof.gz'));
    const att = (event.attachments || [])[0];
    const file = fs.existsSync(pprof) ? pprof : att && path.join(DEMO, att);
    if (file && fs.existsSync(file)) out.push({ event, bytes: fs.readFileSync(file) });
  }
  check(out.length >= 2, `need at least 2 demo profiles in ${DEMO}, found ${out.length}`);
  return out;
}

function tagsOf(event) {
  const t = {};
  for (const kv of String(event.tags_profiler || '').split(',')) {
    const i = kv.indexOf(':');
    if (i > 0) t[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return t;
}

function multipart(event, bytes) {
  const boundary = '----contprofBrowserTest' + Math.random().toString(16).slice(2);
  const ev = Object.assign({}, event, { attachments: ['auto.pprof'] });
  const head = (name, file, type) => Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; ` +
    `name="${name}"; filename="${file}"\r\nContent-Type: ${type}\r\n\r\n`);
  const body = Buffer.concat([head('event', 'event.json', 'application/json'), Buffer.from(JSON.stringify(ev)),
    Buffer.from('\r\n'), head('auto.pprof', 'auto.pprof', 'application/octet-stream'), bytes,
    Buffer.from(`\r\n--${boundary}--\r\n`)]);
  return { body, type: `multipart/form-data; boundary=${boundary}` };
}

async function upload(p) {
  const m = multipart(p.event, p.bytes);
  const r = await fetch(BASE + '/profiling/v1/input', { method: 'POST', body: m.body, headers: { 'Content-Type': m.type } });
  const text = await r.text();
  check(r.status === 200, `upload answered ${r.status}: ${text.slice(0, 200)}`);
  return JSON.parse(text).id;
}

function spanOf(u) { return Date.parse(u.event.end) - Date.parse(u.event.start); }

function countBy(list, key) {
  const c = {};
  for (const p of list) c[p.tags[key] || ''] = (c[p.tags[key] || ''] || 0) + 1;
  return c;
}

/* ---- page helpers -------------------------------------------------------- */

async function rowsText(page) {
  return page.$$eval('.list-body tbody tr', trs => trs.map(tr => tr.innerText));
}

async function facetCounts(page, facet) {
  return page.$$eval(`.facet[data-facet="${facet}"] .facet-value`, bs => {
    const o = {};
    for (const b of bs) o[b.getAttribute('data-value')] = +b.querySelector('.count').textContent;
    return o;
  });
}

async function waitRows(page, n, what) {
  try {
    await page.waitForFunction(k => document.querySelectorAll('.list-body tbody tr').length === k &&
      !document.querySelector('.list-body .loading'), n, { timeout: 8000 });
  } catch (e) {
    fail(`${what}: expected ${n} rows, the list shows ${(await rowsText(page)).length}`);
  }
}

async function flameNames(page) {
  return page.$$eval('.flame-canvas .fr', fs => fs.map(f => f.textContent));
}

async function tableRows(page) {
  return page.$$eval('.fn-table tbody tr', trs => trs.map(tr => {
    const td = tr.querySelectorAll('td');
    return { name: td[0].textContent, self: td[2].textContent, selfPct: parseFloat(td[3].textContent) };
  }));
}

async function waitFlame(page, names, what) {
  try {
    await page.waitForFunction(ns => {
      const have = Array.from(document.querySelectorAll('.flame-canvas .fr')).map(f => f.textContent);
      return ns.every(n => have.some(h => h.includes(n))) && document.querySelectorAll('.fn-table tbody tr').length > 0;
    }, names, { timeout: 8000 });
  } catch (e) {
    const have = await flameNames(page);
    fail(`${what}: flame graph lacks ${names.filter(n => !have.some(h => h.includes(n))).join(', ')} ` +
      `(it shows ${have.slice(0, 12).join(' | ')})`);
  }
}

/* The known 3:1 split: self% of the heavy over the light function. */
async function checkSplit(page, split, what) {
  const rows = await tableRows(page);
  const find = n => rows.find(r => r.name.includes(n));
  const a = find(split.heavy), b = find(split.light);
  check(a && b, `${what}: the function table lacks ${!a ? split.heavy : split.light}`);
  const ratio = a.selfPct / b.selfPct;
  check(Math.abs(ratio - split.ratio) <= split.ratio * split.tolerance,
    `${what}: ${split.heavy} : ${split.light} = ${a.selfPct}% : ${b.selfPct}% (ratio ${ratio.toFixed(2)}, want ${split.ratio} ± ${split.tolerance * 100}%)`);
  return ratio;
}

async function openTab(page, tab, selector, what) {
  await page.click(`.tabs .tab[data-tab="${tab}"]`);
  try {
    await page.waitForSelector(`.tab-body[data-tab="${tab}"] ${selector}`, { timeout: 8000 });
  } catch (e) {
    const err = await page.$eval('.tab-body', el => el.innerText.slice(0, 200)).catch(() => '');
    fail(`${what}: ${selector} never appeared (tab shows: ${err})`);
  }
}

/* ---- the test ------------------------------------------------------------ */

async function main() {
  const demo = demoProfiles();
  const uploaded = [];
  await step(`seed: POST ${demo.length} demo profiles to /profiling/v1/input`, async () => {
    for (const p of demo) uploaded.push({ id: await upload(p), tags: tagsOf(p.event), event: p.event });
  });
  const services = countBy(uploaded, 'service'), languages = countBy(uploaded, 'language');
  const svc = KNOWN.service;
  check(services[svc], `the demo profiles have no service ${svc} (have: ${Object.keys(services).join(', ')})`);

  const ctx = await chromium.launchPersistentContext(process.env.USER_DATA_DIR, {
    executablePath: process.env.CHROMIUM, headless: true, viewport: { width: 1280, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync']
  });
  try {
    const page = ctx.pages()[0] || await ctx.newPage();
    page.setDefaultTimeout(8000);
    page.on('pageerror', e => problems.push('page error: ' + e.message));
    page.on('console', m => { if (m.type() === 'error') problems.push('console error: ' + m.text()); });
    page.on('requestfailed', r => problems.push('request failed: ' + r.url()));
    page.on('request', r => { if (!r.url().startsWith(BASE) && !r.url().startsWith('data:')) problems.push('external request: ' + r.url()); });
    try {
      await run(page, uploaded, services, languages);
    } catch (e) {
      await shot(page, 'FAILED').catch(() => {});
      if (problems.length) e.message += `\n  the pages also reported:\n  ${problems.join('\n  ')}`;
      throw e;
    }
  } finally {
    await ctx.close();
  }
  check(!problems.length, `the pages reported problems:\n  ${problems.join('\n  ')}`);
}

/* The checks, page by page; S = {uploaded, services, languages, svc, target}. */
async function run(page, uploaded, services, languages) {
  const svc = KNOWN.service;
  /* the longest profile of the service: most samples, steadiest split */
  const target = uploaded.filter(u => u.tags.service === svc).sort((a, b) => spanOf(b) - spanOf(a))[0];
  const S = { uploaded, services, languages, svc, target };
  await listChecks(page, S);
  await profileChecks(page, S);
  await tabChecks(page, S);
  await viewChecks(page, S);
}

async function listChecks(page, { uploaded, services, languages, svc }) {
  await step('list: one row per profile, facet counts match the uploads', async () => {
    await page.goto(BASE + '/');
    await waitRows(page, uploaded.length, 'profile list');
    const sc = await facetCounts(page, 'service'), lc = await facetCounts(page, 'language');
    const ec = await facetCounts(page, 'env');
    check(JSON.stringify(ec) === JSON.stringify(sortedCounts(ec, countBy(uploaded, 'env'))),
      `env facet shows ${JSON.stringify(ec)}, uploads have ${JSON.stringify(countBy(uploaded, 'env'))}`);
    check(JSON.stringify(sc) === JSON.stringify(sortedCounts(sc, services)),
      `service facet shows ${JSON.stringify(sc)}, uploads have ${JSON.stringify(services)}`);
    check(JSON.stringify(lc) === JSON.stringify(sortedCounts(lc, languages)),
      `language facet shows ${JSON.stringify(lc)}, uploads have ${JSON.stringify(languages)}`);
    const rows = await rowsText(page);
    check(rows.every(r => /\d%/.test(r) || /–/.test(r)), 'a row lacks a CPU measure');
    await shot(page, '01-list');
  });

  await step(`list: clicking the facet service:${svc} filters`, async () => {
    await page.click(`.facet[data-facet="service"] .facet-value[data-value="${svc}"]`);
    await waitRows(page, services[svc], `filtered by service:${svc}`);
    const cells = await page.$$eval('.list-body tbody tr td:nth-child(2)', tds => tds.map(t => t.textContent));
    check(cells.every(c => c === svc), `filtered rows include other services: ${cells.join(', ')}`);
    check(/service=/.test(page.url()), `the filter is not in the URL: ${page.url()}`);
    await shot(page, '02-list-filtered');
  });

  await step('list: sorting by CPU orders the rows', async () => {
    await page.click('th[data-key="cpu_cores"] button');
    await page.waitForFunction(() => /sort=cpu_cores/.test(location.hash) && document.querySelectorAll('.list-body tbody tr').length > 0);
    await page.waitForSelector('th[data-key="cpu_cores"][aria-sort="descending"]');
    const v = await page.$$eval('.list-body tbody tr td:nth-child(10)', tds => tds.map(t => parseFloat(t.textContent)));
    const nums = v.filter(x => !isNaN(x));
    check(nums.every((x, i) => i === 0 || nums[i - 1] >= x), `CPU column not descending: ${v.join(', ')}`);
  });

  await step('list: the time-range selector filters by time', async () => {
    await page.goto(BASE + '/#/');
    await waitRows(page, uploaded.length, 'unfiltered list');
    await page.selectOption('#range', 'custom');
    await page.fill('.custom-range input[aria-label="From"]', '2001-01-01T00:00');
    await page.fill('.custom-range input[aria-label="To"]', '2001-01-02T00:00');
    await page.waitForFunction(() => /range=custom/.test(location.hash) && /to=/.test(location.hash));
    await waitRows(page, 0, 'range 2001-01-01 .. 2001-01-02');
    check(/0 profiles/.test(await page.textContent('#result-count')), 'the count does not say 0 profiles');
    await page.selectOption('#range', '7d');
    await waitRows(page, uploaded.length, 'range last 7 days');
  });

  await step('list: free-text search over tags', async () => {
    const other = Object.keys(services).find(s => s !== svc);
    await page.goto(BASE + '/#/');
    await waitRows(page, uploaded.length, 'unfiltered list');
    await page.fill('#q', other);
    await page.press('#q', 'Enter');
    await waitRows(page, services[other], `search "${other}"`);
  });

}

async function profileChecks(page, { services, svc, target }) {
  await step(`profile page: header, ${KNOWN.types[0].type} flame graph and table name the known functions`, async () => {
    await page.goto(BASE + '/#/?service=' + encodeURIComponent(svc));
    await waitRows(page, services[svc], 'list for the profile page');
    await page.click(`.list-body tbody tr[data-id="${target.id}"] td:nth-child(2)`);
    await page.waitForSelector('#profile-service');
    check((await page.textContent('#profile-service')) === svc, 'profile header shows the wrong service');
    const head = await page.textContent('.profile-head');
    for (const k of ['Env', 'Version', 'Host', 'Runtime', 'Start', 'End']) check(head.includes(k), `header lacks ${k}`);
    const href = await page.getAttribute('#download', 'href');
    const r = await fetch(BASE + href);
    const buf = Buffer.from(await r.arrayBuffer());
    check(r.ok && buf[0] === 0x1f && buf[1] === 0x8b, `download pprof: ${r.status}, not gzip`);
    await checkType(page, KNOWN.types[0], true);
    await shot(page, '03-profile-' + KNOWN.types[0].type);
  });

  await step('flame graph: hover tooltip, click to zoom, search highlights', async () => {
    const fn = KNOWN.types[0].functions[0];
    const frame = page.locator('.flame-canvas .fr', { hasText: fn }).first();
    await frame.hover();
    await page.waitForSelector('.flame-tip:not([hidden])');
    const tip = await page.textContent('.flame-tip');
    check(tip.includes(fn) && /Self/.test(tip) && /Total/.test(tip) && /%/.test(tip), `tooltip reads "${tip}"`);
    await frame.click();
    await page.waitForFunction(() => /Zoomed into/.test(document.querySelector('.flame-status').textContent));
    check(!(await page.isDisabled('.flame-bar button')), 'Reset zoom stays disabled after zooming');
    await page.click('.flame-bar button');
    await page.fill('.flame-search', fn);
    await page.waitForSelector('.fr.match');
    check(/Matches: .*%/.test(await page.textContent('.flame-status')), 'search shows no share of matches');
    await page.fill('.flame-search', '');
    await page.waitForFunction(() => !document.querySelector('.fr.match'));
    await page.click('.fn-table th[data-key="total"] button');
    await page.waitForSelector('.fn-table th[data-key="total"][aria-sort="descending"]');
    const totals = await page.$$eval('.fn-table tbody tr td:nth-child(6)', tds => tds.map(t => parseFloat(t.textContent)));
    check(totals.every((x, i) => i === 0 || totals[i - 1] >= x), `function table not sorted by total: ${totals.join(', ')}`);
    check(totals[0] === 100, `the outermost function's total is ${totals[0]}%, want 100%`);
  });

  for (const t of KNOWN.types.slice(1)) {
    await step(`profile page: switch type to ${t.type}`, async () => {
      await checkType(page, t, false);
      await shot(page, '04-profile-' + t.type);
    });
  }

  await step('full screen: the button enters it, tabs keep it, the button leaves it', async () => {
    await page.click('#fullscreen');
    await page.waitForFunction(() => !!document.fullscreenElement);
    try {
      await page.waitForFunction(() => document.getElementById('fullscreen').textContent === 'Exit full screen', null, { timeout: 3000 });
    } catch (e) { fail('the button does not offer to leave full screen'); }
    await openTab(page, 'info', '.info-section', 'runtime info in full screen');
    check(await page.evaluate(() => !!document.fullscreenElement), 'switching tabs left full screen');
    await page.click('#fullscreen');
    await page.waitForFunction(() => !document.fullscreenElement);
  });

}

async function tabChecks(page, { uploaded, svc, target }) {
  await step('Analysis tab: rules and findings with evidence', async () => {
    await openTab(page, 'analysis', 'table.rules', 'analysis');
    const rules = await page.$$eval('table.rules tr[data-rule]', trs => trs.map(t => t.getAttribute('data-rule')));
    for (const r of KNOWN.rules) check(rules.includes(r), `analysis does not list rule ${r} (lists ${rules.join(', ')})`);
    const findings = await page.$$eval('.finding', fs => fs.map(f => f.getAttribute('data-rule') + ': ' + f.innerText));
    for (const f of KNOWN.findings || []) {
      check(findings.some(x => x.startsWith(f.rule + ':') && x.includes(f.mentions)),
        `no ${f.rule} finding mentioning ${f.mentions} (findings: ${findings.map(x => x.split('\n')[0]).join(' | ') || 'none'})`);
    }
    await shot(page, '05-analysis');
    const hot = (KNOWN.findings || [])[0];
    if (hot) {
      await page.click(`.finding[data-rule="${hot.rule}"] a.show-fn`);
      try {
        await page.waitForFunction(fn => Array.from(document.querySelectorAll('.fr.match')).some(f => f.textContent.includes(fn)),
          hot.mentions, { timeout: 8000 });
      } catch (e) { fail(`"Show in the flame graph" did not highlight ${hot.mentions}`); }
    }
  });

  await step('Metrics tab: charts with one point per profile of the service', async () => {
    await openTab(page, 'metrics', '.charts svg', 'metrics');
    const env = target.tags.env || '';
    const mine = uploaded.filter(u => u.tags.service === svc && (u.tags.env || '') === env);
    /* a profile without CPU samples (a short last flush) has no CPU point */
    const r = await fetch(`${BASE}/api/profiles?service=${encodeURIComponent(svc)}&env=${encodeURIComponent(env)}`);
    const withCpu = (await r.json()).profiles.filter(p => p.cpu_cores != null).length;
    check(withCpu >= 1 && withCpu <= mine.length, `${withCpu} of ${mine.length} profiles of ${svc} have CPU`);
    const dots = await page.$$eval('.chart-box[data-series="cpu_cores"] circle', c => c.length);
    check(dots === withCpu, `CPU chart has ${dots} points, want ${withCpu} (profiles of ${svc} in ${env} with CPU time)`);
    const boxes = await page.$$eval('.chart-box', b => b.length);
    check(boxes >= 6, `only ${boxes} charts`);
    await shot(page, '06-metrics');
  });

  await step('Runtime Info tab: readable info', async () => {
    await openTab(page, 'info', '.info-section', 'runtime info');
    const text = await page.textContent('.tab-body');
    const info = target.event.info || {};
    const keys = Object.keys(info).filter(k => typeof info[k] !== 'object').slice(0, 3);
    for (const k of keys) check(text.includes(k), `runtime info lacks key ${k}`);
    check(text.includes(svc), 'runtime info lacks the service tag');
    await shot(page, '07-runtime-info');
  });

}

async function viewChecks(page, { uploaded, services, svc, target }) {
  await step(`aggregate: ${svc} over all time names the known functions`, async () => {
    await page.goto(BASE + '/#/aggregate?service=' + encodeURIComponent(svc) + '&type=' + KNOWN.types[0].type);
    await waitFlame(page, KNOWN.types[0].functions, 'aggregate');
    const note = await page.textContent('.view-note');
    check(note.includes(services[svc] + ' profile'), `aggregate note "${note}" does not say ${services[svc]} profiles were merged`);
    await checkSplit(page, KNOWN.types[0].split, 'aggregate');
    await shot(page, '08-aggregate');
  });

  await step('compare: tick two profiles in the list, diff view', async () => {
    await page.goto(BASE + '/#/');
    await waitRows(page, uploaded.length, 'list for compare');
    /* the two longest profiles: a short last flush may hold no samples */
    const two = uploaded.slice().sort((a, b) => spanOf(b) - spanOf(a)).slice(0, 2)
      .sort((a, b) => Date.parse(a.event.start) - Date.parse(b.event.start));
    for (const u of two) await page.check(`input.pick[data-id="${u.id}"]`);
    await page.click('#compare-btn');
    await page.waitForSelector('.cmp-cards');
    check(page.url().includes(`#/compare?a=${two[0].id}&b=${two[1].id}`),
      `compare URL is ${page.url()}, want a=${two[0].id} (older) & b=${two[1].id}`);
    await waitFlame(page, KNOWN.types[0].functions.slice(0, 1), 'compare');
    const legend = await page.textContent('.legend');
    check(/grew in B/.test(legend) && /shrank in B/.test(legend), 'the diff legend is missing');
    await shot(page, '09-compare');
  });

  const mine = uploaded.filter(u => u.tags.service === svc && (u.tags.env || '') === (target.tags.env || ''))
    .sort((a, b) => Date.parse(b.event.start) - Date.parse(a.event.start));
  if (mine.length >= 2) {
    await step('profile page: "Compare with previous" opens the diff against the previous profile', async () => {
      await page.goto(BASE + '/#/profile/' + mine[0].id);
      await page.click('#compare-prev');
      const want = new RegExp(`#/compare\\?a=${mine[1].id}&b=${mine[0].id}`);
      try {
        await page.waitForFunction(re => new RegExp(re).test(location.href), want.source, { timeout: 8000 });
      } catch (e) { fail(`compare URL is ${page.url()}, want a=${mine[1].id}&b=${mine[0].id}`); }
      await waitFlame(page, KNOWN.types[0].functions.slice(0, 1), 'compare with previous');
    });

    await step('profile page: "Newer ›" and "‹ Older" step through the service\'s profiles', async () => {
      for (const [from, button, to] of [[mine[1], '#next-profile', mine[0]], [mine[0], '#prev-profile', mine[1]]]) {
        await page.goto(BASE + '/#/profile/' + from.id + '?tab=analysis');
        await page.click(button);
        try {
          await page.waitForFunction(id => location.hash.startsWith(`#/profile/${id}?tab=analysis`), to.id, { timeout: 8000 });
        } catch (e) { fail(`${button} from profile ${from.id} went to ${page.url()}, want profile ${to.id}`); }
      }
    });
  }
}

/* Facet counts shown must equal the uploads' counts for the same values. */
function sortedCounts(shown, want) {
  const o = {};
  for (const k of Object.keys(shown)) o[k] = want[k] || 0;
  check(Object.keys(want).every(k => k in shown), `facet lacks values: ${Object.keys(want).filter(k => !(k in shown)).join(', ')}`);
  return o;
}

async function checkType(page, t, first) {
  if (!first) {
    const opts = await page.$$eval('#type-select option', os => os.map(o => o.value));
    check(opts.includes(t.type), `type selector lacks ${t.type} (has ${opts.join(', ')})`);
    await page.selectOption('#type-select', t.type);
    await page.waitForFunction(ty => location.hash.includes('type=' + ty), t.type);
  } else {
    await page.waitForSelector('#type-select');
    check((await page.inputValue('#type-select')) === t.type, `default type is ${await page.inputValue('#type-select')}, want ${t.type}`);
  }
  await waitFlame(page, t.functions, t.type);
  const rows = await tableRows(page);
  for (const f of t.functions) check(rows.some(r => r.name.includes(f)), `${t.type} table lacks ${f}`);
  if (t.split) await checkSplit(page, t.split, t.type);
}

main().then(() => {
  console.log('screenshots:\n  ' + shots.join('\n  '));
  console.log(`${passed} checks passed`);
}, e => {
  console.error('explorer_browser: FAIL: ' + e.message);
  if (shots.length) console.error('screenshots so far:\n  ' + shots.join('\n  '));
  process.exit(1);
});
