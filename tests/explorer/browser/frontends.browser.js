/* contprof explorer — real-browser check of profiles made by the real front
 * ends (run by ../frontends_test.py, which uploads them): for each case, a
 * profile of a CPython program or a JVM that contended on a lock and threw
 * exceptions, the viewer's type selector lists the lock-wait and exception
 * types, and the flame graph of each draws the function that waited or
 * threw.
 *
 * Env: EXPLORER_URL, CHROMIUM, ARTIFACTS, USER_DATA_DIR,
 *      CASES = [{"service", "id", "lockFn", "excFn"}, ...]. */
'use strict';
const path = require('path');
const { chromium } = require('playwright-core');

const BASE = process.env.EXPLORER_URL;
const CASES = JSON.parse(process.env.CASES || '[]');
let passed = 0;

async function flameNames(page) {
  return page.$$eval('.flame-panel .flame-canvas .fr', fs => fs.map(f => f.textContent));
}

/* The flame graph draws a frame whose name contains fn (frames carry the
 * class or module before the function). */
async function waitFlameWith(page, fn, what) {
  try {
    await page.waitForFunction(w => {
      const have = Array.from(document.querySelectorAll('.flame-panel .flame-canvas .fr')).map(f => f.textContent);
      return have.some(n => n === w || n.endsWith('.' + w));
    }, fn, { timeout: 15000 });
  } catch (e) {
    throw new Error(`${what}: no ${fn} frame; the flame graph shows ${(await flameNames(page)).slice(0, 12).join(' | ')}`);
  }
}

async function main() {
  if (!CASES.length) throw new Error('no cases');
  const ctx = await chromium.launchPersistentContext(process.env.USER_DATA_DIR, {
    executablePath: process.env.CHROMIUM, headless: true, viewport: { width: 1280, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync']
  });
  const problems = [];
  try {
    const page = ctx.pages()[0] || await ctx.newPage();
    page.setDefaultTimeout(15000);
    page.on('pageerror', e => problems.push('page error: ' + e.message));
    for (const c of CASES) {
      await page.goto(`${BASE}/#/profile/${c.id}?type=lock-acquire-wait`);
      await page.waitForSelector('#type-select option', { state: 'attached' });
      const opts = await page.$$eval('#type-select option', os => os.map(o => o.textContent));
      for (const want of ['Lock wait time', 'Exceptions']) {
        if (!opts.some(o => o.startsWith(want))) throw new Error(`${c.service}: type selector lacks ${want}: ${opts.join(' | ')}`);
      }
      await waitFlameWith(page, c.lockFn, `${c.service} lock wait time`);
      await page.screenshot({ path: path.join(process.env.ARTIFACTS, `${c.service}-lock-wait.png`) });
      await page.goto(`${BASE}/#/profile/${c.id}?type=exception-samples`);
      await waitFlameWith(page, c.excFn, `${c.service} exceptions`);
      await page.screenshot({ path: path.join(process.env.ARTIFACTS, `${c.service}-exceptions.png`) });
      passed++;
      console.log(`ok ${passed} - ${c.service}: lock wait (${c.lockFn}) and exceptions (${c.excFn}) shown`);
    }
  } finally {
    await ctx.close();
  }
  if (problems.length) throw new Error(problems.join('; '));
}

main().catch(e => { console.error(`not ok - ${e.message.split('\n')[0]}`); process.exit(1); });
