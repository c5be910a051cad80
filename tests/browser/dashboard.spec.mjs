// The live dashboard in a real headless browser (Debian's Chromium, driven by
// playwright-core): load the page on a real supervisor, watch a service go
// from running through a restart back to running after a `kill -9`, click
// Restart (answering the token prompt), filter, and save a screenshot.
//
// Run on its own with `bash tests/browser/run.sh` (it builds the binary and
// installs what is missing), or `node tests/browser/dashboard.spec.mjs` with
// AI_DAWG_BIN pointing at a built ai-dawg-manager. Prints one line per check
// and a closing `browser: N passed, M failed`; exits non-zero on failure.
// The screenshot goes to tests/browser/artifacts/dashboard.png (gitignored).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startSupervisor, waitFor } from './supervisor.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const BIN = process.env.AI_DAWG_BIN
  || path.join(process.env.CARGO_TARGET_DIR || path.join(repo, 'target'), 'debug/ai-dawg-manager');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOT = path.join(here, 'artifacts/dashboard.png');
const TOKEN = 'browser-test-token-0123456789';
const TIMEOUT = 15000;

let passed = 0;
let failed = 0;
const notes = [];

async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log(`  ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`  FAIL ${name}: ${e && e.message ? e.message.split('\n').slice(0, 6).join('\n       ') : e}`);
  }
}

function assert(cond, message) { if (!cond) throw new Error(message); }

async function main() {
  if (!fs.existsSync(BIN)) throw new Error(`no binary at ${BIN}: build it first (cargo build) or set AI_DAWG_BIN`);
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium`);
  const sup = await startSupervisor({
    bin: BIN,
    token: TOKEN,
    services: [
      // A slow start keeps `starting` on screen long enough to be seen.
      { name: 'alpha', display_name: 'AI Producer', args: ['--start-delay-ms', '400'] },
      { name: 'beta', display_name: 'Vocal Coach' },
      { name: 'gamma', autostart: false },
    ],
  });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ai-dawg-chromium-'));
  let context = null;
  const pageErrors = [];
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1400, height: 760 },
    });
    const page = context.pages()[0] || await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    // The one expected failure: the first POST, before the token is known.
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().includes('401 (Unauthorized)')) pageErrors.push(m.text());
    });
    const prompts = [];
    page.on('dialog', async (d) => { prompts.push(d.message()); await d.accept(TOKEN); });
    const row = (name) => page.locator(`#rows > [data-service="${name}"]`);

    await check('the page loads and goes live', async () => {
      await page.goto(sup.url + '/', { timeout: TIMEOUT });
      await page.locator('#live', { hasText: 'live' }).waitFor({ timeout: TIMEOUT });
      for (const n of ['alpha', 'beta']) {
        await page.locator(`#rows > [data-service="${n}"][data-status="running"]`).waitFor({ timeout: TIMEOUT });
      }
      await page.locator('#rows > [data-service="gamma"][data-status="stopped"]').waitFor({ timeout: TIMEOUT });
      const cells = await row('alpha').locator('[role=cell]').allInnerTexts();
      assert(cells[1].includes('AI Producer'), `display name shown: ${cells[1]}`);
      assert(/^\d+$/.test(cells[2]), `pid shown: ${cells[2]}`);
    });

    await check('kill -9: running → restarting → running, live', async () => {
      const oldPid = Number(await row('alpha').getAttribute('data-pid'));
      assert(oldPid > 0, 'a pid to kill');
      // Every status the row takes, with the time the page showed it.
      await page.evaluate(() => {
        window.__seen = [];
        const tr = document.querySelector('#rows > [data-service="alpha"]');
        new MutationObserver(() => window.__seen.push({ status: tr.dataset.status, at: performance.timeOrigin + performance.now() }))
          .observe(tr, { attributes: true, attributeFilter: ['data-status'] });
      });
      const killedAt = Date.now();
      process.kill(oldPid, 'SIGKILL');
      await page.locator('#rows > [data-service="alpha"]:not([data-status="running"])').waitFor({ timeout: TIMEOUT });
      await page.locator(`#rows > [data-service="alpha"][data-status="running"]:not([data-pid="${oldPid}"])`)
        .waitFor({ timeout: TIMEOUT });
      const seen = await page.evaluate(() => window.__seen);
      const statuses = seen.map((s) => s.status);
      assert(statuses.length >= 2 && statuses[0] !== 'running', `left running first: ${statuses}`);
      assert(statuses.includes('starting'), `showed the restart (starting): ${statuses}`);
      assert(statuses[statuses.length - 1] === 'running', `ended running: ${statuses}`);
      const latency = Math.round(seen[0].at - killedAt);
      notes.push(`dashboard update latency (kill -9 → row shows ${statuses[0]}): ${latency} ms; statuses seen: ${statuses.join(' → ')}`);
      assert(latency < 1000, `shown within a second (took ${latency} ms)`);
      await page.locator('#events li', { hasText: 'killed by signal 9' }).first().waitFor({ timeout: TIMEOUT });
      const restarts = await row('alpha').locator('[role=cell]').nth(4).innerText();
      await waitFor('restart count 1', TIMEOUT, async () => (await row('alpha').locator('[role=cell]').nth(4).innerText()) === '1')
        .catch(() => { throw new Error(`restart count shown: ${restarts}`); });
    });

    await check('Restart button (with the token prompt) restarts beta', async () => {
      const oldPid = await row('beta').getAttribute('data-pid');
      await row('beta').locator('button[data-action="restart"]').click();
      await page.locator('#toast', { hasText: 'restarted' }).waitFor({ timeout: TIMEOUT });
      assert(prompts.length === 1 && prompts[0].includes('token'), `one token prompt: ${JSON.stringify(prompts)}`);
      await page.locator(`#rows > [data-service="beta"][data-status="running"]:not([data-pid="${oldPid}"])`)
        .waitFor({ timeout: TIMEOUT });
      await page.locator('#audit li', { hasText: 'beta restart SUCCESS' }).first().waitFor({ timeout: TIMEOUT });
      // The token is remembered for the session: no second prompt.
      await row('beta').locator('button[data-action="restart"]').click();
      await page.locator('#toast', { hasText: 'restarted' }).waitFor({ timeout: TIMEOUT });
      assert(prompts.length === 1, 'no second prompt');
    });

    await check('filter and severity order', async () => {
      await page.fill('#filter', 'is:stopped');
      await waitFor('only gamma shown', TIMEOUT, async () => {
        const visible = await page.locator('#rows > [data-service]:not([hidden])').evaluateAll((rs) => rs.map((r) => r.dataset.service));
        return visible.length === 1 && visible[0] === 'gamma';
      });
      await page.fill('#filter', '');
      const order = await page.locator('#rows > [data-service]').evaluateAll((rs) => rs.map((r) => r.dataset.status));
      const rank = { escalated: 0, unhealthy: 1, backoff: 2, starting: 3, unknown: 4, stopped: 5, running: 6 };
      assert(order.every((s, i) => i === 0 || rank[order[i - 1]] <= rank[s]), `sorted by severity: ${order}`);
    });

    await check('screenshot saved', async () => {
      fs.mkdirSync(path.dirname(SHOT), { recursive: true });
      await page.screenshot({ path: SHOT, fullPage: true });
      assert(fs.statSync(SHOT).size > 10000, 'a real picture');
      notes.push(`screenshot: ${path.relative(repo, SHOT)}`);
    });

    await check('no errors in the page', async () => {
      assert(pageErrors.length === 0, pageErrors.join('\n'));
    });
  } catch (e) {
    failed++;
    console.log(`  FAIL setup: ${e.message}`);
    console.log(sup.stderr().split('\n').slice(-20).join('\n'));
  } finally {
    if (context) await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
    await sup.stop();
  }
}

console.log('dashboard browser test');
try {
  await main();
} catch (e) {
  failed++;
  console.log(`  FAIL ${e.message}`);
}
for (const n of notes) console.log(`  note ${n}`);
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
