// The browser demo (examples/browser) in headless Chromium against a real herald: open the page,
// post 3 notifications through the API, see them; kill herald and start it again on the same
// port, see the page reconnect, post 2 more, see each exactly once. Saves a screenshot to
// build/browser/demo.png.
//
// Needs: /usr/bin/chromium (Debian `chromium`), `npm ci` here and in clients/js (which builds
// clients/js/dist), HERALD_BIN=/abs/path/to/herald. Herald has no --static-dir yet, so this test
// serves the page and the SDK itself with a tiny static server.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startHerald, restartHerald, post } from '../../clients/js/test/herald.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '../..');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const SCREENSHOT = path.join(ROOT, 'build/browser/demo.png');

const cleanups = [];
after(async () => { for (const f of cleanups.reverse()) await f().catch(() => {}); });

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

test('browser demo: receive, survive a herald restart, no duplicates', { timeout: 90_000 }, async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing (apt-get install -y chromium)`);
  assert.ok(existsSync(path.join(ROOT, 'clients/js/dist/index.js')), 'build the SDK first: cd clients/js && npm ci');

  let h = await startHerald();
  cleanups.push(() => h.kill());
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
  const url = `${web}/examples/browser/index.html?url=${encodeURIComponent(h.url)}&client=${clientId}`;
  await page.goto(url);
  const state = () => page.locator('#state').textContent();
  const items = () => page.locator('#notifications li .data').allTextContents();
  const waitState = async (s, ms = 10_000) => {
    try {
      await page.waitForFunction((s) => document.querySelector('#state')?.textContent === s, s, { timeout: ms });
    } catch (e) {
      throw new Error(`state never became ${s} (is ${await state()}); console:\n${consoleLines.join('\n')}`);
    }
  };
  const waitCount = (n) => page.waitForFunction((n) => document.querySelectorAll('#notifications li').length >= n, n, { timeout: 10_000 });

  await waitState('open');
  for (let i = 1; i <= 3; i++) await post(h.base, clientId, { text: `hello ${i}` });
  await waitCount(3);
  assert.deepEqual(await items(), ['{"text":"hello 1"}', '{"text":"hello 2"}', '{"text":"hello 3"}']);

  // Kill herald and start it again on the same port: the page must notice and reconnect.
  h = await restartHerald(h);
  cleanups.push(() => h.kill());
  await page.waitForFunction(() => /reconnecting/.test(document.querySelector('#log')?.textContent ?? ''), null, { timeout: 10_000 });
  await waitState('open');
  // The memory engine lost its state with the restart: post after it.
  for (let i = 4; i <= 5; i++) await post(h.base, clientId, { text: `hello ${i}` });
  await waitCount(5);
  await page.waitForTimeout(300); // a duplicate would show up here
  const got = await items();
  assert.deepEqual(got, [1, 2, 3, 4, 5].map((i) => `{"text":"hello ${i}"}`), `each exactly once: ${got.join(', ')}`);
  assert.equal(await state(), 'open');
  const logText = await page.locator('#log').textContent();
  assert.equal((logText.match(/connected \(session/g) ?? []).length, 2, `two connections:\n${logText}`);

  await mkdir(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  console.log(`screenshot: ${SCREENSHOT}`);
});
