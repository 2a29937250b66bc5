// Test helpers: start/stop a real herald, call its service API, make HS256 JWTs, wait for things.
// HERALD_BIN points at the binary (default: build/herald at the repository root).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
export const HERALD_BIN = process.env.HERALD_BIN || path.resolve(here, '../../../build/herald');

const running = new Set();
function killAll() {
  for (const p of running) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  running.clear();
}
process.on('exit', killAll);

/** Starts herald; `listen` defaults to a free loopback port. Resolves once it listens. */
export function startHerald({ listen = '127.0.0.1:0', args = [] } = {}) {
  if (!existsSync(HERALD_BIN)) throw new Error(`herald binary not found: ${HERALD_BIN} (set HERALD_BIN)`);
  const proc = spawn(HERALD_BIN, ['--listen', listen, '--threads', '1', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  running.add(proc);
  let stderr = '';
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => { running.delete(proc); resolve({ code, signal }); }));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`herald did not start in 10 s:\n${stderr}`)), 10_000);
    proc.stderr.setEncoding('utf8').on('data', (d) => {
      stderr += d;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m && timer) {
        clearTimeout(timer);
        const port = Number(m[1]);
        resolve({
          proc, port, exited,
          listen: `127.0.0.1:${port}`,
          base: `http://127.0.0.1:${port}`,
          url: `ws://127.0.0.1:${port}/v1/ws`,
          stderr: () => stderr,
          async kill(signal = 'SIGKILL') {
            if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
            await exited;
          },
        });
      }
    });
    proc.on('error', (e) => { clearTimeout(timer); reject(e); });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`herald exited early (code ${code}, signal ${signal}):\n${stderr}`));
    });
  });
}

/** Starts herald again on the same address (the port may take a moment to be free). */
export async function restartHerald(h, args = []) {
  await h.kill();
  let lastErr;
  for (let i = 0; i < 50; i++) {
    try {
      return await startHerald({ listen: h.listen, args });
    } catch (e) {
      lastErr = e;
      await sleep(100);
    }
  }
  throw lastErr;
}

export async function post(base, clientId, data, extra = {}) {
  const res = await fetch(`${base}/v1/notifications`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: clientId, data, ...extra }),
  });
  const body = await res.json();
  if (res.status !== 202) throw new Error(`POST /v1/notifications: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

export async function clientInfo(base, clientId) {
  const res = await fetch(`${base}/v1/clients/${encodeURIComponent(clientId)}`);
  return { status: res.status, body: await res.json() };
}

const b64url = (x) => Buffer.from(x).toString('base64url');
/** An HS256 JWT with the given claims. */
export function jwt(secret, claims) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value (returned) or `ms` pass (throws with `what`). */
export async function waitFor(fn, what = 'condition', ms = 5000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Resolves with the next `event` of a client. */
export function nextEvent(client, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { off(); reject(new Error(`timed out waiting for ${event}`)); }, ms);
    const off = client.on(event, (ev) => { clearTimeout(t); off(); resolve(ev); });
  });
}
