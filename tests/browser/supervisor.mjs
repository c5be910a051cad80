// Starts the REAL ai-dawg-manager supervisor for the browser test: a config in
// a fresh temporary folder (demo services on free 127.0.0.1 ports, sub-second
// intervals, the `http` listener on a free port), `ai-dawg-manager start`,
// and a stop() that ends it (SIGTERM, then SIGKILL) with all its services.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const handedOut = new Set();

/** A port nobody listens on, below the ephemeral range (32768+), never the same twice. */
export async function freePort() {
  for (;;) {
    const port = 28000 + Math.floor(Math.random() * 4000);
    if (handedOut.has(port)) continue;
    const ok = await new Promise((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (ok) { handedOut.add(port); return port; }
  }
}

export async function waitFor(what, timeoutMs, check) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try { if (await check()) return; } catch { /* not yet */ }
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * services: [{name, args: [...extra demo-service args], autostart}]
 * Returns {url, port, dir, token, api(path), stop(), stderr()}.
 */
export async function startSupervisor({ bin, services, token, intervalSeconds = 0.2 }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ai-dawg-browser-'));
  fs.mkdirSync(path.join(dir, 'config'));
  const port = await freePort();
  const svc = {};
  for (const s of services) {
    const p = await freePort();
    svc[s.name] = {
      command: ['ai-dawg-manager', 'demo-service', '--port', String(p), '--name', s.name, ...(s.args || [])],
      port: p,
      health_endpoint: `http://127.0.0.1:${p}/health`,
      stop_timeout: '2s',
      autostart: s.autostart !== false,
      ...(s.display_name ? { display_name: s.display_name } : {}),
    };
  }
  const config = {
    ai_dawg: { services: svc },
    monitoring: {
      health_check_interval_seconds: intervalSeconds,
      health_check_timeout_seconds: 1,
      max_restart_attempts: 5,
      restart_cooldown_seconds: 0.2,
      stable_after_seconds: 60,
    },
    http: { listen: `127.0.0.1:${port}`, ...(token ? { token } : {}) },
  };
  fs.writeFileSync(path.join(dir, 'config/autonomy.json'), JSON.stringify(config, null, 2));
  fs.writeFileSync(path.join(dir, 'config/commands-whitelist.json'), '{"commands": ["ai-dawg-manager"]}');
  const out = fs.openSync(path.join(dir, 'supervisor.out'), 'w');
  const err = fs.openSync(path.join(dir, 'supervisor.err'), 'w');
  const env = { ...process.env, RUST_LOG: 'info' };
  delete env.AI_DAWG_CONFIG;
  const child = spawn(bin, ['--config', path.join(dir, 'config/autonomy.json'), 'start'], {
    stdio: ['ignore', out, err],
    env,
  });
  let exited = null;
  const done = new Promise((resolve) => child.on('exit', (code, signal) => { exited = { code, signal }; resolve(); }));
  const url = `http://127.0.0.1:${port}`;
  const stderr = () => fs.readFileSync(path.join(dir, 'supervisor.err'), 'utf8');
  const api = async (p) => {
    const res = await fetch(url + p);
    if (!res.ok) throw new Error(`${p}: HTTP ${res.status}`);
    return res.json();
  };
  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 8000);
      await done;
      clearTimeout(killer);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor('the supervisor to answer on ' + url, 30000, async () =>
      exited || (await fetch(url + '/api/v1/services')).ok);
    if (exited) throw new Error(`the supervisor exited (${JSON.stringify(exited)}):\n${stderr()}`);
  } catch (e) {
    await stop();
    throw e;
  }
  return { url, port, dir, token, api, stop, stderr, pid: child.pid };
}
