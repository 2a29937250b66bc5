// The browser demo (examples/browser) in headless Chromium against real herald instances on the
// Redis engine: a redis-server, herald A (the page connects to it) and herald B (the test posts
// through it). Open the page on A, post 3 via B, see them; stop A (SIGTERM), post 2 via B while A
// is down, start A again on the same port, see the page reconnect and get those 2 replayed from
// the Redis inbox, post 1 more, see each of the 6 exactly once. Saves a screenshot to
// build/browser/demo.png.
//
// Needs: /usr/bin/chromium (Debian `chromium`), redis-server (REDIS_SERVER or on PATH), `npm ci`
// here and in clients/js (which builds clients/js/dist), HERALD_BIN=/abs/path/to/herald. Herald
// has no --static-dir yet, so this test serves the page and the SDK itself with a tiny static
// server.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { readFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startHerald, post, sleep, waitFor } from '../../clients/js/test/herald.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '../..');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const REDIS_SERVER = process.env.REDIS_SERVER || 'redis-server';
const SCREENSHOT = path.join(ROOT, 'build/browser/demo.png');

const cleanups = [];
after(async () => { for (const f of cleanups.reverse()) await f().catch(() => {}); });

/** A free loopback port: bind 127.0.0.1:0, read the port, close. */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

/** Starts a throwaway redis-server (no persistence) on a free loopback port; resolves once it answers PING. */
async function startRedis() {
  const port = await freePort();
  const proc = spawn(REDIS_SERVER, ['--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', '--port', String(port)],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
  proc.stderr.setEncoding('utf8').on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  const spawnError = new Promise((_, reject) => proc.on('error', (e) => reject(new Error(`cannot run ${REDIS_SERVER}: ${e.message}`))));
  const kill = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  };
  const ping = () => new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    let got = '';
    c.setEncoding('utf8');
    c.on('connect', () => c.write('PING\r\n'));
    c.on('data', (d) => { got += d; if (got.includes('\r\n')) { c.destroy(); resolve(got.startsWith('+PONG')); } });
    c.on('error', () => resolve(false));
    c.setTimeout(500, () => { c.destroy(); resolve(false); });
  });
  try {
    await Promise.race([spawnError, waitFor(async () => {
      if (proc.exitCode !== null) throw new Error(`redis-server exited (code ${proc.exitCode}):\n${out}`);
      return ping();
    }, 'redis-server to answer PING', 10_000)]);
  } catch (e) {
    await kill();
    throw e;
  }
  return { port, url: `redis://127.0.0.1:${port}`, kill };
}

/** Waits until herald's /readyz answers 200. */
async function waitReady(h) {
  await waitFor(async () => {
    try {
      return (await fetch(`${h.base}/readyz`)).status === 200;
    } catch {
      return false;
    }
  }, `${h.base}/readyz 200`, 10_000);
}

/** Starts herald on the Redis engine (listen defaults to a free port) and waits for /readyz. */
async function startRedisHerald(redisUrl, instanceId, listen = '127.0.0.1:0') {
  const args = ['--engine', 'redis', '--redis-url', redisUrl, '--instance-id', instanceId, '--drain-ms', '500'];
  // Starting again on a port just given up may need a moment before the bind succeeds.
  let h;
  for (let i = 0; !h; i++) {
    try {
      h = await startHerald({ listen, args });
    } catch (e) {
      if (i >= 49) throw e;
      await sleep(100);
    }
  }
  cleanups.push(() => h.kill());
  await waitReady(h);
  return h;
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.map': 'application/json', '.css': 'text/css' };
const SERVED = ['/examples/browser/', '/clients/js/dist/'];

// A tiny static server for the repository's demo page and built SDK, on 127.0.0.1:0.
function serveStatic() {
  const server = http.createServer(async (req, res) => {
    const p = path.posix.normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
    const file = path.join(ROOT, p.endsWith('/') ? `${p}index.html` : p);
    if (!SERVED.some((d) => p.startsWith(d)) || !file.startsWith(ROOT)) {
      res.writeHead(404).end('not found');
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

test('browser demo: receive, get what was sent while herald was down after a restart, no duplicates', { timeout: 120_000 }, async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing (apt-get install -y chromium)`);
  assert.ok(existsSync(path.join(ROOT, 'clients/js/dist/index.js')), 'build the SDK first: cd clients/js && npm ci');

  const redis = await startRedis();
  cleanups.push(() => redis.kill()); // pushed first, so it is stopped last
  let a = await startRedisHerald(redis.url, 'A');
  const b = await startRedisHerald(redis.url, 'B');
  const server = await serveStatic();
  cleanups.push(() => new Promise((r) => server.close(r)));
  const web = `http://127.0.0.1:${server.address().port}`;

  const userDataDir = await mkdtemp(path.join(tmpdir(), 'herald-chromium-'));
  cleanups.push(() => rm(userDataDir, { recursive: true, force: true }));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 900, height: 700 },
  });
  cleanups.push(() => context.close());
  const page = context.pages()[0] ?? await context.newPage();
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));

  const clientId = 'demo';
  const url = `${web}/examples/browser/index.html?url=${encodeURIComponent(a.url)}&client=${clientId}`;
  await page.goto(url);
  const state = () => page.locator('#state').textContent();
  const items = () => page.locator('#notifications li .data').allTextContents();
  const logText = () => page.locator('#log').textContent();
  const expected = (n) => Array.from({ length: n }, (_, i) => `{"text":"hello ${i + 1}"}`);
  const waitState = async (s, ms = 10_000) => {
    try {
      await page.waitForFunction((s) => document.querySelector('#state')?.textContent === s, s, { timeout: ms });
    } catch (e) {
      throw new Error(`state never became ${s} (is ${await state()}); log:\n${await logText()}\nconsole:\n${consoleLines.join('\n')}`);
    }
  };
  const waitCount = async (n, ms = 10_000) => {
    try {
      await page.waitForFunction((n) => document.querySelectorAll('#notifications li').length >= n, n, { timeout: ms });
    } catch (e) {
      throw new Error(`never saw ${n} notifications (got ${(await items()).join(', ')}); log:\n${await logText()}`);
    }
  };

  await waitState('open');
  // Posted through B, delivered by A: the page's route lives in Redis.
  for (let i = 1; i <= 3; i++) {
    const r = await post(b.base, clientId, { text: `hello ${i}` });
    assert.equal(r.client_online, true, `hello ${i}: ${JSON.stringify(r)}`);
  }
  await waitCount(3);
  assert.deepEqual(await items(), expected(3));

  // Stop A (SIGTERM: drain, give the route back, exit); the page notices and keeps retrying.
  const aListen = a.listen;
  await a.kill('SIGTERM');
  await page.waitForFunction(() => /reconnecting/.test(document.querySelector('#log')?.textContent ?? ''), null, { timeout: 10_000 });
  // Sent while A is down: stored in the Redis inbox, nobody to deliver to.
  for (let i = 4; i <= 5; i++) {
    const r = await post(b.base, clientId, { text: `hello ${i}` });
    assert.equal(r.client_online, false, `hello ${i}: ${JSON.stringify(r)}`);
  }
  await page.waitForTimeout(300);
  assert.deepEqual(await items(), expected(3), 'nothing arrives while A is down');

  // A again on the same port: the page reconnects and gets 4 and 5 replayed from the inbox.
  a = await startRedisHerald(redis.url, 'A', aListen);
  await waitState('open', 15_000);
  await waitCount(5, 15_000);
  const r6 = await post(b.base, clientId, { text: 'hello 6' });
  assert.equal(r6.client_online, true, `hello 6: ${JSON.stringify(r6)}`);
  await waitCount(6);
  await page.waitForTimeout(500); // a duplicate would show up here
  const got = await items();
  assert.deepEqual(got, expected(6), `each exactly once: ${got.join(', ')}`);
  assert.equal(await state(), 'open');
  const log = await logText();
  assert.equal((log.match(/connected \(session/g) ?? []).length, 2, `two connections:\n${log}`);
  assert.equal((log.match(/connected \(session [^)]*instance A\)/g) ?? []).length, 2, `both to instance A:\n${log}`);

  await mkdir(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  console.log(`screenshot: ${SCREENSHOT}`);
});
