// The design Herald replaces, built the way it was described, as the baseline for
// `make bench-compare`: Node.js with `ws` and `ioredis`, one process = one instance.
//
//   client's first frame {"clientId":"c1"} -> SET ws:<id> <instance> EX 3600,
//     SUBSCRIBE ws:inst:<instance> (once per process), LRANGE + DEL queue:<id> delivered, then live
//   POST /notify {"clientId","data"} -> GET ws:<id>: an instance -> PUBLISH {clientId,data} to
//     ws:inst:<instance>, 202 {"delivered":true}; none -> RPUSH queue:<id>, 202 {"queued":true}
//   frames to the client are the bare `data` JSON; on close DEL ws:<id>.
//
// The replaced design's races (a notify between GET and the client's LRANGE, a DEL after a
// reconnect elsewhere) are kept on purpose: this is the baseline, not a fix.
//
//   node server.mjs [--host 127.0.0.1] [--port 0] [--redis-url redis://127.0.0.1:6379] [--instance-id i1]
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { WebSocketServer } from 'ws';
import Redis from 'ioredis';

function args(argv) {
  const o = { host: '127.0.0.1', port: 0, redisUrl: 'redis://127.0.0.1:6379', instanceId: '' };
  for (let i = 2; i < argv.length; ++i) {
    const [k, inline] = argv[i].split(/=(.*)/s, 2);
    const v = inline !== undefined ? inline : argv[++i];
    if (k === '--host') o.host = v;
    else if (k === '--port') o.port = Number(v);
    else if (k === '--redis-url') o.redisUrl = v;
    else if (k === '--instance-id') o.instanceId = v;
    else {
      process.stderr.write(`unknown argument ${argv[i]}\n`);
      process.exit(2);
    }
  }
  if (!o.instanceId) o.instanceId = 'i-' + randomBytes(4).toString('hex');
  return o;
}

const opt = args(process.argv);
const instance = opt.instanceId;
const channel = `ws:inst:${instance}`;
const redis = new Redis(opt.redisUrl, { lazyConnect: false });
const sub = new Redis(opt.redisUrl, { lazyConnect: false });
const sockets = new Map(); // clientId -> WebSocket on this instance

let subscribed = null;
function subscribeOnce() {
  if (!subscribed) subscribed = sub.subscribe(channel);
  return subscribed;
}
sub.on('message', (ch, msg) => {
  if (ch !== channel) return;
  let m;
  try {
    m = JSON.parse(msg);
  } catch {
    return;
  }
  const ws = sockets.get(m.clientId);
  if (ws && ws.readyState === ws.OPEN) ws.send(JSON.stringify(m.data));
});

function reply(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/healthz') return reply(res, 200, { ok: true, instance });
  if (req.method !== 'POST' || req.url !== '/notify') return reply(res, 404, { error: 'not found' });
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return reply(res, 400, { error: 'bad json' });
    }
    const { clientId, data } = body || {};
    if (typeof clientId !== 'string' || data === undefined) return reply(res, 400, { error: 'clientId and data required' });
    try {
      const where = await redis.get(`ws:${clientId}`);
      if (where) {
        await redis.publish(`ws:inst:${where}`, JSON.stringify({ clientId, data }));
        return reply(res, 202, { delivered: true });
      }
      await redis.rpush(`queue:${clientId}`, JSON.stringify(data));
      return reply(res, 202, { queued: true });
    } catch (e) {
      return reply(res, 503, { error: String(e && e.message) });
    }
  });
});

const wss = new WebSocketServer({ server });
wss.on('connection', (ws) => {
  let clientId = null;
  ws.on('message', async (raw) => {
    if (clientId !== null) return; // only the hello is read
    let m;
    try {
      m = JSON.parse(raw.toString());
    } catch {
      return ws.close(1008, 'bad hello');
    }
    if (!m || typeof m.clientId !== 'string') return ws.close(1008, 'bad hello');
    clientId = m.clientId;
    sockets.set(clientId, ws);
    try {
      await redis.set(`ws:${clientId}`, instance, 'EX', 3600);
      await subscribeOnce();
      const queued = await redis.multi().lrange(`queue:${clientId}`, 0, -1).del(`queue:${clientId}`).exec();
      const items = queued[0][1] || [];
      for (const d of items) if (ws.readyState === ws.OPEN) ws.send(d);
    } catch (e) {
      process.stderr.write(`hello ${clientId}: ${e && e.message}\n`);
    }
  });
  ws.on('close', () => {
    if (clientId === null) return;
    if (sockets.get(clientId) === ws) sockets.delete(clientId);
    redis.del(`ws:${clientId}`).catch(() => {});
  });
  ws.on('error', () => {});
});

server.listen(opt.port, opt.host, () => {
  const a = server.address();
  process.stderr.write(`listening on ${a.address}:${a.port}\n`);
});

function stop() {
  server.close();
  for (const ws of wss.clients) ws.terminate();
  redis.disconnect();
  sub.disconnect();
  setTimeout(() => process.exit(0), 100).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
