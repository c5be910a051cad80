// Measures the dashboard's cost and speed on a real supervisor with many
// services (not part of CI: it takes about 90 s):
//
//   node tests/browser/measure.mjs [services=100] [interval_seconds=1] [window_seconds=30]
//
// with AI_DAWG_BIN pointing at the binary to measure (a release build is what
// users run). It prints the supervisor's CPU (from /proc/PID/stat, utime +
// stime over the window) with no client, then with the dashboard open in
// headless Chromium, and the dashboard's update latency after a `kill -9`
// (until the row shows a new status or pid: a restart that takes a few ms may
// be over before the next frame).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startSupervisor, waitFor } from './supervisor.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const BIN = process.env.AI_DAWG_BIN || path.join(repo, 'target/release/ai-dawg-manager');
const [n = 100, interval = 1, windowS = 30] = process.argv.slice(2).map(Number);
const TICKS = 100; // CLK_TCK on Linux

function cpuTicks(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime
}

function rssMb(pid) {
  const statm = fs.readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ');
  return (Number(statm[1]) * 4096) / 1048576;
}

async function cpuOver(pid, seconds) {
  const t0 = cpuTicks(pid);
  const w0 = Date.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const used = (cpuTicks(pid) - t0) / TICKS;
  return (100 * used) / ((Date.now() - w0) / 1000);
}

const services = Array.from({ length: n }, (_, i) => ({ name: `svc-${String(i).padStart(3, '0')}` }));
console.log(`${n} services, health checks every ${interval}s, ${windowS}s windows, binary ${BIN}`);
const sup = await startSupervisor({ bin: BIN, services, intervalSeconds: interval });
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ai-dawg-chromium-'));
let context;
try {
  await waitFor(`all ${n} running`, 120000, async () =>
    (await sup.api('/api/v1/services')).summary.running === n);
  console.log(`supervisor pid ${sup.pid}, RSS ${rssMb(sup.pid).toFixed(1)} MB`);
  const idle = await cpuOver(sup.pid, windowS);
  console.log(`CPU, no client:          ${idle.toFixed(2)} % of one core`);

  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1400, height: 900 },
  });
  const page = context.pages()[0] || await context.newPage();
  await page.goto(sup.url + '/');
  await page.locator('#live', { hasText: 'live' }).waitFor({ timeout: 30000 });
  await waitFor('all rows running', 30000, async () =>
    (await page.locator('#rows > [data-status="running"]').count()) === n);
  const open = await cpuOver(sup.pid, windowS);
  console.log(`CPU, dashboard open:     ${open.toFixed(2)} % of one core (RSS ${rssMb(sup.pid).toFixed(1)} MB)`);

  const latencies = [];
  for (const name of ['svc-010', 'svc-050', 'svc-090']) {
    const pid = Number(await page.locator(`#rows > [data-service="${name}"]`).getAttribute('data-pid'));
    await page.evaluate((svc) => {
      window.__shown = null;
      const tr = document.querySelector(`#rows > [data-service="${svc}"]`);
      new MutationObserver(() => { if (window.__shown === null) window.__shown = performance.timeOrigin + performance.now(); })
        .observe(tr, { attributes: true, attributeFilter: ['data-status', 'data-pid'] });
    }, name);
    const killed = Date.now();
    process.kill(pid, 'SIGKILL');
    await waitFor('the row changed', 10000, async () => (await page.evaluate(() => window.__shown)) !== null);
    latencies.push(Math.round((await page.evaluate(() => window.__shown)) - killed));
    await page.locator(`#rows > [data-service="${name}"][data-status="running"]:not([data-pid="${pid}"])`).waitFor({ timeout: 30000 });
  }
  console.log(`dashboard update latency after kill -9: ${latencies.join(', ')} ms`);
} finally {
  if (context) await context.close().catch(() => {});
  fs.rmSync(profile, { recursive: true, force: true });
  await sup.stop();
}
