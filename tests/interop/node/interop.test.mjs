// Herald against Node's `ws`, an independent WebSocket implementation: Herald frames and
// handshakes with its own code (src/ws/), so every behaviour a browser-like client relies on is
// checked here against someone else's client. Each test starts its own herald process.
//
//   cd tests/interop/node && npm ci && HERALD_BIN=/abs/path/to/herald node --test
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import WebSocket from 'ws';

const here = path.dirname(fileURLToPath(import.meta.url));
const HERALD_BIN = process.env.HERALD_BIN || path.resolve(here, '../../../build/herald');
const TEST_TIMEOUT = 60_000;

// ---- herald processes -------------------------------------------------------------------------

const running = new Set();

function killAll() {
  for (const p of running) {
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }
  running.clear();
}
after(killAll);
process.on('exit', killAll);

// Starts herald on a free loopback port; resolves once it has said where it listens.
function startHerald(extraArgs = []) {
  if (!existsSync(HERALD_BIN)) throw new Error(`herald binary not found: ${HERALD_BIN} (set HERALD_BIN)`);
  const args = ['--listen', '127.0.0.1:0', '--threads', '2', ...extraArgs];
  const proc = spawn(HERALD_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  let stderr = '';
  let stdout = '';
  proc.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`herald did not start in 10 s:\n${stderr}`)), 10_000);
    proc.stderr.setEncoding('utf8').on('data', (d) => {
      stderr += d;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m && timer) {
        clearTimeout(timer);
        const port = Number(m[1]);
        resolve({
          proc,
          port,
          base: `http://127.0.0.1:${port}`,
          url: `ws://127.0.0.1:${port}/v1/ws`,
          exited,
          stderr: () => stderr,
          stdout: () => stdout,
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

// ---- a client with a message queue ----------------------------------------------------------

class Client {
  constructor(url, options = {}) {
    this.ws = new WebSocket(url, options);
    this.messages = [];
    this.waiters = [];
    this.response = null;
    this.errors = [];
    this.ws.on('upgrade', (res) => { this.response = res; });
    this.ws.on('error', (e) => this.errors.push(e));  // surfaced through `closed`
    this.ws.on('message', (data, isBinary) => {
      const m = { text: data.toString('utf8'), isBinary };
      const w = this.waiters.shift();
      if (w) w.resolve(m);
      else this.messages.push(m);
    });
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        const c = { code, reason: reason.toString('utf8') };
        for (const w of this.waiters.splice(0)) w.reject(new Error(`closed ${code} ${c.reason} while waiting`));
        resolve(c);
      });
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('close', (code) => reject(new Error(`closed ${code} before open: ${this.errors.join('; ')}`)));
    });
    this.opened.catch(() => {});
  }

  // The next message as text (and whether it was binary), or an error after `ms`.
  nextRaw(ms = 5000) {
    if (this.messages.length) return Promise.resolve(this.messages.shift());
    return new Promise((resolve, reject) => {
      const w = {
        resolve: (m) => { clearTimeout(w.timer); resolve(m); },
        reject: (e) => { clearTimeout(w.timer); reject(e); },
      };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no message in ${ms} ms`));
      }, ms);
      this.waiters.push(w);
    });
  }

  async next(ms) {
    const m = await this.nextRaw(ms);
    assert.equal(m.isBinary, false, 'Herald sends text frames');
    return JSON.parse(m.text);
  }

  send(obj, options) {
    return new Promise((resolve, reject) =>
      this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj), options ?? {}, (e) => (e ? reject(e) : resolve())));
  }

  async hello(clientId, extra = {}) {
    await this.opened;
    await this.send({ type: 'hello', client_id: clientId, ...extra });
    const welcome = await this.next();
    assert.equal(welcome.type, 'welcome', JSON.stringify(welcome));
    return welcome;
  }
}

// The close a client saw, or a failure after `ms`.
function closedWithin(client, ms = 5000) {
  return Promise.race([
    client.closed,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`not closed in ${ms} ms`)), ms).unref()),
  ]);
}

// ---- service API ----------------------------------------------------------------------------

async function notify(base, clientId, data) {
  const res = await fetch(`${base}/v1/notifications`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: clientId, data }),
  });
  const body = await res.json();
  assert.equal(res.status, 202, JSON.stringify(body));
  return body;
}

async function clientStatus(base, clientId) {
  const res = await fetch(`${base}/v1/clients/${encodeURIComponent(clientId)}`);
  assert.equal(res.status, 200);
  return res.json();
}

async function eventually(check, what, ms = 5000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const last = await check();
    if (last.ok) return last.value;
    if (Date.now() > deadline) assert.fail(`${what}: still ${JSON.stringify(last.value)} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function parseId(id) {
  const m = /^(\d+)-(\d+)$/.exec(id);
  assert.ok(m, `id ${id} is not <ms>-<seq>`);
  return [BigInt(m[1]), BigInt(m[2])];
}

function idLess(a, b) {
  const [am, as] = parseId(a);
  const [bm, bs] = parseId(b);
  return am < bm || (am === bm && as < bs);
}

// ---- the tests --------------------------------------------------------------------------------

test('200 notifications arrive in order, and the ack empties the inbox', { timeout: TEST_TIMEOUT }, async () => {
  const h = await startHerald();
  const c = new Client(h.url);
  const welcome = await c.hello('node-1');
  assert.equal(typeof welcome.session, 'string');
  assert.equal(typeof welcome.instance, 'string');
  assert.equal(typeof welcome.heartbeat_ms, 'number');

  const posted = [];
  for (let i = 0; i < 200; i++) {
    const r = await notify(h.base, 'node-1', { n: i, text: `hello ${i}` });
    assert.equal(r.client_online, true);
    posted.push(r.id);
  }
  let last = null;
  for (let i = 0; i < 200; i++) {
    const n = await c.next();
    assert.equal(n.type, 'notification');
    assert.deepEqual(n.data, { n: i, text: `hello ${i}` });
    assert.equal(n.id, posted[i], 'the id the client sees is the one the service was given');
    assert.equal(typeof n.ts, 'number');
    if (last !== null) assert.ok(idLess(last, n.id), `ids must increase: ${n.id} after ${last}`);
    last = n.id;
  }

  let status = await clientStatus(h.base, 'node-1');
  assert.equal(status.online, true);
  assert.equal(status.session, welcome.session);
  await c.send({ type: 'ack', id: last });
  status = await eventually(async () => {
    const s = await clientStatus(h.base, 'node-1');
    return { ok: s.pending === 0, value: s };
  }, 'pending after the ack');
  assert.equal(status.pending, 0);

  c.ws.close(1000, 'bye');
  const closed = await closedWithin(c);
  assert.equal(closed.code, 1000, 'the server answers a 1000 close with 1000');
  await eventually(async () => {
    const s = await clientStatus(h.base, 'node-1');
    return { ok: s.online === false, value: s };
  }, 'online after the close');
});

test('a 100 KB message over --max-message-bytes 65536 closes with 1009', { timeout: TEST_TIMEOUT }, async () => {
  const h = await startHerald(['--max-message-bytes', '65536']);
  const c = new Client(h.url);
  await c.hello('node-big');
  const big = JSON.stringify({ type: 'ack', id: '1-0', pad: 'x'.repeat(100 * 1024) });
  c.ws.send(big, () => {});
  const closed = await closedWithin(c);
  assert.equal(closed.code, 1009, `close was ${closed.code} ${closed.reason}; errors: ${c.errors.join('; ')}`);
  // Herald says why before closing.
  const frames = c.messages.map((m) => JSON.parse(m.text));
  assert.deepEqual(frames.map((f) => [f.type, f.code]), [['error', 'message_too_big']]);
});

// A JSON text of exactly `size` bytes: `obj` with a padding field.
function padded(obj, size) {
  const base = JSON.stringify({ ...obj, pad: '' });
  assert.ok(base.length <= size);
  const text = JSON.stringify({ ...obj, pad: 'p'.repeat(size - base.length) });
  assert.equal(Buffer.byteLength(text), size);
  return text;
}

test('the message limit is exact: 65536 bytes pass, 65537 close with 1009', { timeout: TEST_TIMEOUT }, async () => {
  const h = await startHerald(['--max-message-bytes', '65536']);
  const c = new Client(h.url);
  await c.opened;
  await c.send(padded({ type: 'hello', client_id: 'node-limit' }, 65536));
  assert.equal((await c.next()).type, 'welcome', 'a message of exactly the limit is accepted');
  await c.send(padded({ type: 'ack', id: '1-0' }, 65537));
  const closed = await closedWithin(c);
  assert.equal(closed.code, 1009, `one byte over the limit: close ${closed.code} ${closed.reason}`);
});

test('the limit counts fragments joined: 3 x 30 KB closes with 1009', { timeout: TEST_TIMEOUT }, async () => {
  const h = await startHerald(['--max-message-bytes', '65536']);
  const c = new Client(h.url);
  await c.hello('node-frags-big');
  const chunk = 'x'.repeat(30 * 1024);
  c.ws.send(chunk, { fin: false }, () => {});
  c.ws.send(chunk, { fin: false }, () => {});
  c.ws.send(chunk, { fin: true }, () => {});
  const closed = await closedWithin(c);
  assert.equal(closed.code, 1009, `close ${closed.code} ${closed.reason}`);
});

test('permessage-deflate offered by ws is declined and the connection works', { timeout: TEST_TIMEOUT }, async () => {
  const h = await startHerald();
  const c = new Client(h.url, { perMessageDeflate: { threshold: 0 } });  // compress everything, if agreed
  await c.opened;
  assert.equal(c.ws.extensions, '', 'no extension may be agreed');
  assert.equal(c.response.headers['sec-websocket-extensions'], undefined);
  await c.hello('node-deflate');
  const r = await notify(h.base, 'node-deflate', { big: 'z'.repeat(5000) });
  const n = await c.next();
  assert.equal(n.id, r.id);
  assert.equal(n.data.big.length, 5000);
  await c.send({ type: 'ack', id: n.id });  // a client frame, uncompressed, is understood
  c.ws.close(1000);
  assert.equal((await closedWithin(c)).code, 1000);
});

test('a hello sent in two fragments is joined; ping is answered with the same payload', { timeout: TEST_TIMEOUT }, async () => {
  const h = await startHerald();
  const c = new Client(h.url);
  await c.opened;
  const hello = JSON.stringify({ type: 'hello', client_id: 'node-frag' });
  const cut = Math.floor(hello.length / 2);
  await c.send(hello.slice(0, cut), { fin: false });  // text frame, FIN clear
  await c.send(hello.slice(cut), { fin: true });      // continuation, FIN set
  const welcome = await c.next();
  assert.equal(welcome.type, 'welcome');

  const pong = new Promise((resolve) => c.ws.once('pong', (data) => resolve(data.toString())));
  c.ws.ping('are you there');
  assert.equal(await pong, 'are you there');

  // A fragmented ack with a ping between its fragments (control frames may interleave).
  const r = await notify(h.base, 'node-frag', 1);
  const n = await c.next();
  assert.equal(n.id, r.id);
  const ack = JSON.stringify({ type: 'ack', id: n.id });
  await c.send(ack.slice(0, 5), { fin: false });
  c.ws.ping('between');
  await c.send(ack.slice(5), { fin: true });
  await eventually(async () => {
    const s = await clientStatus(h.base, 'node-frag');
    return { ok: s.pending === 0, value: s };
  }, 'pending after a fragmented ack');
  c.ws.close(1000);
  assert.equal((await closedWithin(c)).code, 1000);
});

test('legacy hello gets bare data frames', { timeout: TEST_TIMEOUT }, async () => {
  const h = await startHerald();
  const c = new Client(h.url);
  await c.opened;
  await c.send({ clientId: 'node-legacy' });
  // No welcome for the legacy protocol; wait until the route exists, then notify.
  await eventually(async () => {
    const s = await clientStatus(h.base, 'node-legacy');
    return { ok: s.online === true, value: s };
  }, 'legacy client online');
  await notify(h.base, 'node-legacy', { legacy: true });
  assert.deepEqual(await c.next(), { legacy: true });
  c.ws.close(1000);
  await closedWithin(c);
});

test('malformed JSON gets an error frame and close 1008', { timeout: TEST_TIMEOUT }, async () => {
  const h = await startHerald();
  const c = new Client(h.url);
  await c.opened;
  await c.send('{"type":"hello",');
  const closed = await closedWithin(c);
  assert.equal(closed.code, 1008);
  const frames = c.messages.map((m) => JSON.parse(m.text));
  assert.deepEqual(frames.map((f) => [f.type, f.code]), [['error', 'invalid_json']]);
});

test('SIGTERM closes every client with 1012 and herald exits 0', { timeout: TEST_TIMEOUT }, async () => {
  const h = await startHerald(['--drain-ms', '300']);
  const clients = [];
  for (let i = 0; i < 3; i++) {
    const c = new Client(h.url);
    await c.hello(`node-term-${i}`);
    clients.push(c);
  }
  h.proc.kill('SIGTERM');
  for (const c of clients) {
    const closed = await closedWithin(c, 10_000);
    assert.equal(closed.code, 1012, `close ${closed.code} ${closed.reason}`);
  }
  const exit = await Promise.race([
    h.exited,
    new Promise((_, reject) => setTimeout(() => reject(new Error('herald did not exit')), 10_000).unref()),
  ]);
  assert.deepEqual(exit, { code: 0, signal: null }, h.stderr());
});

// ---- TLS ------------------------------------------------------------------------------------

// A JSON request over https to herald, trusting `ca`.
function httpsJson(port, ca, method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request({ host: '127.0.0.1', port, method, path, ca, servername: '127.0.0.1',
                                headers: data ? { 'content-type': 'application/json' } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d) => { text += d; }).on('end', () => {
        try { resolve({ status: res.statusCode, body: JSON.parse(text) }); } catch (e) { reject(e); }
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

test('wss:// and https:// with --tls-cert/--tls-key: hello, notification, ack, 1009 over TLS', { timeout: TEST_TIMEOUT }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'herald-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=herald-test',
    '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const ca = readFileSync(path.join(dir, 'cert.pem'));
  const h = await startHerald(['--tls-cert', path.join(dir, 'cert.pem'), '--tls-key', path.join(dir, 'key.pem')]);
  const c = new Client(`wss://127.0.0.1:${h.port}/v1/ws`, { ca });
  await c.hello('node-tls');
  const sent = await httpsJson(h.port, ca, 'POST', '/v1/notifications', { client_id: 'node-tls', data: { text: 'x'.repeat(50_000) } });
  assert.equal(sent.status, 202, JSON.stringify(sent.body));
  const n = await c.next();
  assert.equal(n.id, sent.body.id);
  assert.equal(n.data.text.length, 50_000);
  await c.send({ type: 'ack', id: n.id });
  await eventually(async () => {
    const s = await httpsJson(h.port, ca, 'GET', '/v1/clients/node-tls');
    return { ok: s.body.pending === 0, value: s.body };
  }, 'the ack to empty the inbox');
  // 100 KB from the client, over many TLS records: over the limit, so 1009.
  await c.send('{"type":"ack","id":"' + 'x'.repeat(100_000) + '"}');
  const closed = await closedWithin(c);
  assert.equal(closed.code, 1009, `close ${closed.code} ${closed.reason}`);
  rmSync(dir, { recursive: true, force: true });
});
