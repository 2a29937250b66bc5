// The SDK against a real herald: receive + ack, reconnect, resume, dedupe, token refresh,
// unauthorized, takeover. Run: npm test (HERALD_BIN=/abs/path/to/herald).
import { test, after } from 'node:test';
import WebSocket from 'ws';
import assert from 'node:assert/strict';
import { connect, memoryStore, compareIds } from '../dist/index.js';
import { startHerald, restartHerald, post, clientInfo, jwt, sleep, waitFor, nextEvent } from './herald.mjs';

const FAST = { initialMs: 50, maxMs: 400, drainMs: 100 };
const T = { timeout: 30_000 };
const clients = [];
const heralds = [];
after(async () => {
  for (const c of clients) c.close();
  for (const h of heralds) await h.kill();
});

async function herald(args = []) {
  const h = await startHerald({ args });
  heralds.push(h);
  return h;
}
function client(opts) {
  const c = connect({ backoff: FAST, ...opts });
  clients.push(c);
  c.seen = [];
  c.events = [];
  c.on('notification', (n) => { c.seen.push(n); });
  for (const e of ['connected', 'disconnected', 'reconnecting', 'error']) c.on(e, (ev) => c.events.push([e, ev]));
  return c;
}
const count = (c, e) => c.events.filter(([n]) => n === e).length;

test('compareIds compares numerically', () => {
  assert.ok(compareIds('9-0', '10-0') < 0);
  assert.ok(compareIds('10-2', '10-10') < 0);
  assert.ok(compareIds('1764866400000-3', '1764866400000-3') === 0);
  assert.ok(compareIds('1764866400001', '1764866400000-99') > 0);
});

test('receives notifications and acks them (pending drops to 0)', T, async () => {
  const h = await herald();
  const c = client({ url: h.url, clientId: 'ack-1' });
  assert.equal(c.state, 'connecting');
  const welcome = await nextEvent(c, 'connected');
  assert.equal(c.state, 'open');
  assert.ok(welcome.session);
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push((await post(h.base, 'ack-1', { n: i })).id);
  await waitFor(() => c.seen.length === 5, '5 notifications');
  assert.deepEqual(c.seen.map((n) => n.data.n), [0, 1, 2, 3, 4]);
  assert.deepEqual(c.seen.map((n) => n.id), ids);
  assert.ok(c.seen.every((n) => typeof n.ts === 'number' && n.ts > 0));
  await waitFor(async () => (await clientInfo(h.base, 'ack-1')).body.pending === 0, 'pending 0');
  assert.equal(c.lastId, ids[4]);
  c.close();
  await waitFor(() => c.state === 'closed', 'closed');
});

test('acks only after an async handler resolves', T, async () => {
  const h = await herald();
  const c = client({ url: h.url, clientId: 'ack-async' });
  let release;
  const gate = new Promise((r) => { release = r; });
  c.on('notification', () => gate);
  await nextEvent(c, 'connected');
  await post(h.base, 'ack-async', { n: 1 });
  await waitFor(() => c.seen.length === 1, 'notification');
  await sleep(100);
  assert.equal((await clientInfo(h.base, 'ack-async')).body.pending, 1, 'not acked while the handler runs');
  release();
  await waitFor(async () => (await clientInfo(h.base, 'ack-async')).body.pending === 0, 'pending 0 after resolve');
});

test('reconnects after herald is killed and restarted on the same port', T, async () => {
  let h = await herald();
  const c = client({ url: h.url, clientId: 're-1' });
  await nextEvent(c, 'connected');
  await post(h.base, 're-1', { n: 1 });
  await waitFor(() => c.seen.length === 1, 'first notification');

  const disc = nextEvent(c, 'disconnected');
  h = await restartHerald(h);
  heralds.push(h);
  const d = await disc;
  assert.equal(d.code, 1006);
  assert.equal(d.willReconnect, true);
  await waitFor(() => c.state === 'open', 'reopened', 10_000);
  assert.ok(count(c, 'reconnecting') >= 1);
  assert.equal(count(c, 'connected'), 2);
  // The memory engine lost everything: post after the restart.
  await post(h.base, 're-1', { n: 2 });
  await waitFor(() => c.seen.length === 2, 'second notification');
  assert.deepEqual(c.seen.map((n) => n.data.n), [1, 2]);
});

test('resumes with last_id: a new client with the same storage gets only the new ones', T, async () => {
  const h = await herald();
  const storage = memoryStore();
  const a = client({ url: h.url, clientId: 'resume-1', storage });
  await nextEvent(a, 'connected');
  for (let i = 1; i <= 3; i++) await post(h.base, 'resume-1', { n: i });
  await waitFor(() => a.seen.length === 3, '3 notifications');
  a.close();
  await waitFor(() => a.state === 'closed', 'a closed');
  assert.equal(storage.get(), a.seen[2].id);

  for (let i = 4; i <= 5; i++) await post(h.base, 'resume-1', { n: i });
  const b = client({ url: h.url, clientId: 'resume-1', storage });
  await waitFor(() => b.seen.length === 2, 'the 2 new ones');
  await sleep(150);
  assert.deepEqual(b.seen.map((n) => n.data.n), [4, 5]);
  await waitFor(async () => (await clientInfo(h.base, 'resume-1')).body.pending === 0, 'pending 0');
});

test('drops duplicates by id (replays of what is still being processed)', T, async () => {
  const h = await herald();
  let frames = 0; // notification frames on the wire, duplicates included
  class CountingWebSocket extends WebSocket {
    constructor(url) {
      super(url);
      this.on('message', (d) => { if (JSON.parse(String(d)).type === 'notification') frames += 1; });
    }
  }
  const c = client({ url: h.url, clientId: 'dup-1', WebSocket: CountingWebSocket });
  // A slow handler: while it holds the first notification, the connection drops; the next hello
  // has no last_id (nothing processed yet), so herald replays all three behind the queued ones.
  let release;
  const gate = new Promise((r) => { release = r; });
  let first = true;
  c.on('notification', () => { if (first) { first = false; return gate; } });
  await nextEvent(c, 'connected');
  for (let i = 1; i <= 3; i++) await post(h.base, 'dup-1', { n: i });
  await waitFor(() => c.seen.length === 1, 'first notification (held)');
  await fetch(`${h.base}/v1/clients/dup-1/disconnect`, { method: 'POST' });
  await waitFor(() => count(c, 'connected') === 2, 'reconnected after 4000');
  assert.equal(c.events.find(([e]) => e === 'disconnected')[1].code, 4000);
  await sleep(100); // the replays arrive and queue up
  release();
  await post(h.base, 'dup-1', { n: 4 });
  await waitFor(() => c.seen.length >= 4, '4 notifications');
  await sleep(200);
  assert.deepEqual(c.seen.map((n) => n.data.n), [1, 2, 3, 4]);
  assert.equal(frames, 7, 'herald sent 1-3, replayed 1-3, then 4');
  // Duplicates received on the current connection are acked there too: nothing stays pending.
  await waitFor(async () => (await clientInfo(h.base, 'dup-1')).body.pending === 0, 'pending 0');
});

test('token function is called again on every reconnect', T, async () => {
  const secret = 'test-secret-0123456789';
  const args = ['--client-auth', 'jwt', '--jwt-secret', secret];
  let h = await herald(args);
  let calls = 0;
  const c = client({
    url: h.url,
    clientId: 'tok-1',
    token: async () => {
      calls += 1;
      await sleep(5);
      return jwt(secret, { sub: 'tok-1', exp: Math.floor(Date.now() / 1000) + 60, n: calls });
    },
  });
  await nextEvent(c, 'connected');
  assert.equal(calls, 1);
  h = await restartHerald(h, args);
  heralds.push(h);
  await waitFor(() => count(c, 'connected') === 2, 'reconnected', 10_000);
  assert.ok(calls >= 2, `token function called ${calls} times`);
  await post(h.base, 'tok-1', { ok: true });
  await waitFor(() => c.seen.length === 1, 'notification after refresh');
});

test('unauthorized: a bad token closes with 1008 and the client does not reconnect', T, async () => {
  const h = await herald(['--client-auth', 'jwt', '--jwt-secret', 'right-secret-123']);
  let calls = 0;
  const c = client({ url: h.url, clientId: 'bad-1', token: () => { calls += 1; return jwt('wrong-secret', { sub: 'bad-1' }); } });
  const d = await nextEvent(c, 'disconnected');
  assert.equal(d.code, 1008);
  assert.equal(d.error, 'unauthorized');
  assert.equal(d.willReconnect, false);
  assert.equal(c.state, 'closed');
  await sleep(500);
  assert.equal(count(c, 'reconnecting'), 0);
  assert.equal(count(c, 'connected'), 0);
  assert.equal(calls, 1);
  assert.ok(c.events.some(([e, ev]) => e === 'error' && ev.code === 'unauthorized'));
});

test('taken over (4001): the older client does not reconnect', T, async () => {
  const h = await herald();
  const a = client({ url: h.url, clientId: 'tab' });
  await nextEvent(a, 'connected');
  const d = nextEvent(a, 'disconnected');
  const b = client({ url: h.url, clientId: 'tab' });
  await nextEvent(b, 'connected');
  const ev = await d;
  assert.equal(ev.code, 4001);
  assert.equal(ev.willReconnect, false);
  assert.equal(a.state, 'closed');
  await sleep(500);
  assert.equal(count(a, 'reconnecting'), 0);
  assert.equal(b.state, 'open');
  await post(h.base, 'tab', { to: 'b' });
  await waitFor(() => b.seen.length === 1, 'b gets it');
  assert.equal(a.seen.length, 0);
});

test('drain (1012) reconnects soon', T, async () => {
  let h = await herald(['--drain-ms', '200']);
  const c = client({ url: h.url, clientId: 'drain-1' });
  await nextEvent(c, 'connected');
  const disc = nextEvent(c, 'disconnected');
  await h.kill('SIGTERM');
  const d = await disc;
  assert.equal(d.code, 1012);
  assert.equal(d.willReconnect, true);
  const r = c.events.find(([e]) => e === 'reconnecting');
  assert.ok(r && r[1].delayMs <= FAST.drainMs);
  h = await startHerald({ listen: h.listen });
  heralds.push(h);
  await waitFor(() => count(c, 'connected') === 2, 'reconnected', 10_000);
});
