#!/usr/bin/env python3
"""Herald's chaos test: does every notification answered 202 reach its client, in order, while
instances and Redis die under it? (docs/testing.md has the full picture.)

- Redis with `appendonly yes` + `appendfsync always` (it promises to keep every acknowledged
  write) on a loopback port, data in a temporary directory.
- Three `herald --engine redis` instances on port 0 (the port is read back from their log).
- A few thousand WebSocket clients (one asyncio process, a small callback-driven WebSocket client
  below) that disconnect and reconnect at random to random instances: a clean close, a dropped TCP
  connection, a network blip (the old connection is left open and unread while a new one says
  hello, so the old session is taken over), or a frozen tab (reads nothing for a while, then goes
  on). Each hello carries last_id = the newest id the client has processed (one in ten "forgets"
  it, which makes replays, i.e. duplicates); each notification received is acked with some
  probability.
- A steady stream of durable notifications (POST /v1/notifications) through random instances,
  `data` = {"s": n} with a per-client sequence number, a few in flight per client.
- Meanwhile: instances killed with SIGKILL and restarted (same port and id, a new port, a new
  instance id; once while Redis is down), Redis killed with SIGKILL and restarted from its AOF, and
  Redis dropping every subscriber connection a few times.
- Then chaos stops and the system gets a bounded time to settle: every client comes online and
  stays (notifications still missing after that are "stuck", reported), then every client
  reconnects with its last_id and drains its inbox, and every client's status is read. Then the
  verifier counts.

One JSON line on stdout: parameters, figures (sent, accepted, refused, delivered, duplicates,
lost, order violations, late deliveries to online clients, ...) and wall time. Exit status 1 when
lost, order_violations, late_while_online, route_mismatches, protocol_errors, crashes or
unclean_exits is not 0.

Run: `make chaos`, or HERALD_BIN=build/herald /usr/bin/python3 tests/chaos/chaos.py [--clients N ...]
"""

import argparse
import asyncio
import base64
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from herald_it import _LISTEN_RE, _die_with_parent, herald_bin  # noqa: E402
from redis_it import RedisServer, redis_server_bin  # noqa: E402


def log(*a):
    print(f"[chaos {time.monotonic() - T0:7.1f}s]", *a, file=sys.stderr, flush=True)


T0 = time.monotonic()


def pct(values, q):
    """The q-quantile of seconds, in ms (None when empty; inf when never)."""
    if not values:
        return None
    v = sorted(values)[min(len(values) - 1, int(q * len(values)))]
    return None if v == float("inf") else round(v * 1000, 1)


def id_key(s):
    ms, _, seq = s.partition("-")
    return int(ms), int(seq or 0)


# ---- herald processes -------------------------------------------------------------------------

class Instance:
    """One herald process. Its stderr goes to a file (the port is read back from it, as the
    integration harness does); its status-event stream (stdout) is discarded."""

    def __init__(self, iid, redis_url, workdir, threads, port=0):
        self.iid = iid
        self.redis_url = redis_url
        self.workdir = workdir
        self.threads = threads
        self.want_port = port
        self.port = None
        self.proc = None
        self.log_path = None
        self.killed = False  # killed on purpose: its exit is expected
        self.generation = 0
        self.heartbeat_ms = 20000

    async def start(self, port=None, timeout=15.0):
        if port is not None:
            self.want_port = port
        self.generation += 1
        self.killed = False
        self.port = None
        self.log_path = os.path.join(self.workdir, f"herald-{self.iid}-{self.generation}.log")
        args = [herald_bin(), "--listen", f"127.0.0.1:{self.want_port}", "--engine", "redis",
                "--redis-url", self.redis_url, "--instance-id", self.iid, "--threads", str(self.threads),
                "--drain-ms", "0", "--heartbeat-ms", str(self.heartbeat_ms)]
        with open(self.log_path, "wb") as err:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                         preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while True:
            with open(self.log_path, errors="replace") as f:
                m = _LISTEN_RE.search(f.read())
            if m:
                self.port = int(m.group(2))
                self.want_port = self.port
                return self
            if self.proc.poll() is not None:
                # The same port right after a kill can still be taken for a moment: say so.
                raise RuntimeError(f"herald {self.iid} exited rc={self.proc.returncode} at start:\n" + self.tail())
            if time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(f"herald {self.iid} did not listen within {timeout}s:\n" + self.tail())
            await asyncio.sleep(0.02)

    def kill9(self):
        self.killed = True
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def tail(self, n=25):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


# ---- HTTP (the service API), asyncio, keep-alive -----------------------------------------------

class HttpConn:
    def __init__(self, port):
        self.port = port
        self.reader = self.writer = None

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    def close(self):
        if self.writer:
            self.writer.transport.abort()
            self.writer = None

    async def request(self, method, path, body=b""):
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split()[1])
        length = 0
        keep = True
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                keep = False
        payload = await self.reader.readexactly(length) if length else b""
        if not keep:
            self.close()
        return status, payload


async def http_get(port, path, timeout=2.0):
    c = HttpConn(port)
    try:
        await asyncio.wait_for(c.open(), timeout)
        return await asyncio.wait_for(c.request("GET", path), timeout)
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
        return None, b""
    finally:
        c.close()


# ---- WebSocket client (RFC 6455, client side), callback-driven ---------------------------------

def mask_payload(payload):
    key = os.urandom(4)
    n = len(payload)
    if n == 0:
        return key, payload
    m = (key * (n // 4 + 1))[:n]
    return key, (int.from_bytes(payload, "big") ^ int.from_bytes(m, "big")).to_bytes(n, "big")


def client_frame(opcode, payload):
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    key, body = mask_payload(payload)
    return head + key + body


class WsConn(asyncio.Protocol):
    """One WebSocket connection of a Client. Text frames go to client.on_frame(self, obj) unless
    the connection is abandoned; pings are answered; a close is echoed."""

    def __init__(self, client, port):
        self.client = client
        self.port = port
        self.transport = None
        self.buf = bytearray()
        self.upgraded = False
        self.close_code = None
        self.close_sent = False
        self.abandoned = False
        self.where = None  # (instance, session) from the welcome
        self.welcome = asyncio.get_running_loop().create_future()
        self.lost = asyncio.get_running_loop().create_future()
        client.conns += 1
        self.no = client.conns

    def connection_made(self, transport):
        self.transport = transport
        # The current connection from now on: its first frames can come before connect() resumes.
        self.client.conn = self
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write((f"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                        .encode())

    def send_json(self, obj):
        if self.transport is None or self.close_sent or self.transport.is_closing():
            return
        self.transport.write(client_frame(0x1, json.dumps(obj, separators=(",", ":")).encode()))

    def close(self, code=1000):
        if self.transport is None or self.close_sent or self.transport.is_closing():
            return
        self.close_sent = True
        self.transport.write(client_frame(0x8, struct.pack("!H", code)))

    def abort(self):
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data):
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end])
            del self.buf[:end + 4]
            if not head.startswith(b"HTTP/1.1 101"):
                self.client.runner.count("ws_upgrade_refused")
                self.abort()
                return
            self.upgraded = True
            self.client.on_upgraded(self)
        buf = self.buf
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            n = b1 & 0x7F
            pos = 2
            if n == 126:
                if len(buf) < 4:
                    return
                n = struct.unpack_from("!H", buf, 2)[0]
                pos = 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n = struct.unpack_from("!Q", buf, 2)[0]
                pos = 10
            if len(buf) < pos + n:
                return
            payload = bytes(buf[pos:pos + n])
            del buf[:pos + n]
            op = b0 & 0x0F
            if op == 0x1:
                if not self.abandoned:
                    self.client.on_frame(self, json.loads(payload))
                else:
                    self.client.trace("ignored (abandoned)", self.no, payload[:80])
            elif op == 0x9:  # ping
                if not self.close_sent and not self.transport.is_closing():
                    self.transport.write(client_frame(0xA, payload))
            elif op == 0x8:
                self.close_code = struct.unpack_from("!H", payload)[0] if len(payload) >= 2 else 1005
                if not self.close_sent:
                    self.close_sent = True
                    self.transport.write(client_frame(0x8, payload[:2]))
                self.transport.close()
                return
            elif op in (0x0, 0x2):
                self.client.runner.count("unexpected_frames")

    def connection_lost(self, exc):
        self.client.trace("lost", self.no, self.close_code)
        if self.client.conn is self and not self.abandoned:
            self.client.set_online(False)
        if not self.welcome.done():
            self.welcome.set_result(None)
        if not self.lost.done():
            self.lost.set_result(self.close_code)


# ---- clients ---------------------------------------------------------------------------------

class Client:
    def __init__(self, runner, n):
        self.runner = runner
        self.cid = f"chaos-{runner.run_tag}-{n}"
        self.conn = None          # the connection whose frames are processed
        self.newest = None        # (ms, seq) of the newest id processed
        self.newest_str = None
        self.seen = set()         # ids processed
        self.processed = []       # [(id_key, s)] in processing order
        self.duplicates = 0
        self.order_violations = []
        self.wake = None          # resolved by the runner to end a wait early (phase change)
        self.settled = False      # welcomed once the final phase began
        self.conns = 0
        self.online = False
        self.epochs = [0.0]       # start time of each epoch (see set_online)
        self.recv_time = {}       # id_key → when first processed
        self.log = []             # what happened to this client, printed when it loses one
        # poster side
        self.next_s = 0
        self.accepted = []        # [(s, id, t_sent, t_answered)] answered 202
        self.online_posts = []    # [(accepted entry, epoch)] posted while the client was online
        self.refused = {}         # s → 503 or None (connection error): never promised

    def set_online(self, online):
        """A new epoch: the client is reading a welcomed connection (online) or not. A notification
        posted while online must arrive within --late-s unless the epoch ends before that."""
        self.online = online
        self.epochs.append(time.monotonic())

    def trace(self, *what):
        self.log.append((round(time.time(), 3),) + what)

    # frames of the current connection
    def on_upgraded(self, conn):
        hello = {"type": "hello", "client_id": self.cid}
        if self.newest_str and (self.runner.phase != "chaos" or random.random() >= self.runner.args.forget):
            hello["last_id"] = self.newest_str
            if random.random() < self.runner.args.lie:
                # The verifier's own check: a last_id ahead of what was processed acks (and so
                # deletes) notifications never seen; this run must then fail with lost > 0.
                ms, seq = self.newest
                hello["last_id"] = f"{ms + 2000}-{seq}"
                self.runner.count("lies")
        elif self.newest_str:
            self.runner.count("hellos_without_last_id")
        self.trace("hello", conn.no, hello.get("last_id"))
        conn.send_json(hello)

    def on_frame(self, conn, m):
        t = m.get("type")
        if t == "welcome":
            self.trace("welcome", conn.no, m.get("instance"), m.get("session"))
            if conn is self.conn:
                self.set_online(True)
            conn.where = (m.get("instance"), m.get("session"))
            if not conn.welcome.done():
                conn.welcome.set_result(m)
            return
        if t == "error":
            self.trace("error", conn.no, m.get("code"))
            if not self.runner.stopping:
                self.runner.count("error_" + str(m.get("code")))
            if m.get("code") in ("unknown_ack_id", "bad_request", "unknown_type", "hello_required",
                                 "duplicate_hello", "websocket_protocol", "invalid_utf8"):
                self.runner.protocol_errors.append((self.cid, m))
            return
        if t != "notification":
            self.runner.count("unexpected_messages")
            return
        i = m["id"]
        data = m.get("data")
        s = data.get("s") if isinstance(data, dict) else None
        if conn is not self.conn:
            self.trace("n", conn.no, i, s, "ignored (not current)")
            return  # a connection the client has already given up on
        k = id_key(i)
        self.runner.received += 1
        if k in self.seen:
            self.duplicates += 1
            verdict = "dup"
        elif self.newest is not None and k < self.newest:
            # Older than one already processed and never seen: it was skipped, then came late.
            self.order_violations.append(("late", i, self.newest_str))
            verdict = "LATE"
        else:
            self.newest, self.newest_str = k, i
            self.seen.add(k)
            self.processed.append((k, s))
            self.recv_time[k] = time.monotonic()
            verdict = "new"
        ack = self.runner.phase == "final" or random.random() < self.runner.args.ack_prob
        self.trace("n", conn.no, i, s, verdict + (" acked" if ack else ""))
        if ack:
            conn.send_json({"type": "ack", "id": i})

    async def connect(self, inst):
        loop = asyncio.get_running_loop()
        self.trace("connect", inst.iid, inst.port)
        try:
            _, conn = await asyncio.wait_for(loop.create_connection(lambda: WsConn(self, inst.port), "127.0.0.1",
                                                                    inst.port), 5)
        except (OSError, asyncio.TimeoutError):
            self.runner.count("connect_failures")
            return None
        try:
            w = await asyncio.wait_for(asyncio.shield(conn.welcome), 10)
        except asyncio.TimeoutError:
            self.runner.count("welcome_timeouts")
            conn.abort()
            return None
        if w is None:  # closed before welcome: instance died, or storage unavailable (1011)
            self.runner.count("hello_failures")
            return None
        self.runner.count("sessions")
        return conn

    async def wait(self, futs, timeout):
        self.wake = asyncio.get_running_loop().create_future()
        await asyncio.wait([*futs, self.wake], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        self.wake = None

    async def life(self):
        r = self.runner
        a = r.args
        failures = 0
        old = None
        loop = asyncio.get_running_loop()
        while not r.stopping:
            inst = r.pick_instance()
            conn = await self.connect(inst) if inst else None
            if old is not None:  # a blip: the abandoned connection goes once the new one is up
                loop.call_later(2.0, old.abort)
                old = None
            if conn is None:
                failures += 1
                await self.wait([], min(2.0, 0.05 * 2 ** min(failures, 6)) * random.random() + 0.05)
                continue
            failures = 0
            born = r.phase
            if born == "final":
                self.settled = True
            leave_at = loop.time() + random.expovariate(1.0 / a.mean_session_s)
            # Stay on this connection until it ends, its time is up (chaos), or the final round.
            while True:
                timeout = max(0.0, leave_at - loop.time()) if r.phase == "chaos" else None
                await self.wait([conn.lost], timeout)
                if r.stopping or conn.lost.done():
                    break
                if r.phase == "final" and born != "final":
                    break  # the final round: everyone reconnects once, cleanly
                if r.phase == "chaos" and loop.time() >= leave_at:
                    if random.random() >= a.freeze:
                        break
                    # A frozen tab: reads nothing for a while (pongs included), then goes on
                    # with what the kernel kept, on this connection if it still lives.
                    r.count("freezes")
                    self.trace("freeze", conn.no)
                    self.set_online(False)
                    conn.transport.pause_reading()
                    await self.wait([], random.uniform(0.5, 3.0 * a.heartbeat_ms / 1000))
                    if not conn.transport.is_closing():
                        conn.transport.resume_reading()
                        if not conn.lost.done():
                            self.set_online(True)
                    leave_at = loop.time() + random.expovariate(1.0 / a.mean_session_s)
            if r.stopping:
                break
            if conn.lost.done():
                r.count("connections_lost")
                self.conn = None
                continue  # reconnect at once (the instance died, or closed us)
            if r.phase != "chaos":
                conn.close(1000)
                await self.wait([conn.lost], 3)
                conn.abort()
                self.conn = None
                continue
            how = random.random()
            self.trace("leave", conn.no, "blip" if how < 0.2 else "abort" if how < 0.4 else "close")
            self.set_online(False)
            if how < 0.2:
                r.count("blips")
                conn.abandoned = True
                old = conn
            elif how < 0.4:
                r.count("aborts")
                conn.abort()
            else:
                r.count("clean_closes")
                conn.close(1000)
                await self.wait([conn.lost], 3)
                conn.abort()
            self.conn = None
            if random.random() < 0.3:
                await self.wait([], random.uniform(0.5, 4.0))  # offline a while: the inbox keeps it
            else:
                await self.wait([], random.uniform(0.0, 0.3))
        if self.conn:
            self.conn.abort()

    def missing(self):
        return [i for _, i, _, _ in self.accepted if id_key(i) not in self.seen]


# ---- the run ---------------------------------------------------------------------------------

class Runner:
    def __init__(self, args):
        self.args = args
        self.run_tag = os.urandom(3).hex()
        self.workdir = None
        self.redis = None
        self.instances = {}      # iid → Instance (current processes)
        self.up = []             # instances clients and services may use now
        self.clients = []
        self.phase = "chaos"
        self.stopping = False
        self.posting = True
        self.counts = {}
        self.protocol_errors = []
        self.crashes = []
        self.unclean_exits = []
        self.events = []         # what the chaos did, when
        self.sent = self.accepted = self.refused_503 = self.refused_conn = self.other_status = 0
        self.received = 0
        self.next_iid = ord("D")
        self.redis_outages = []
        self.restarts = 0

    def count(self, what, n=1):
        self.counts[what] = self.counts.get(what, 0) + n

    def note(self, what):
        self.events.append({"t": round(time.monotonic() - self.t_start, 1), "what": what})
        log(what)

    def pick_instance(self):
        return random.choice(self.up) if self.up else None

    # -- processes --

    async def start_instance(self, iid, port=0):
        inst = self.instances.get(iid) or Instance(iid, self.redis.url, self.workdir, self.args.threads)
        inst.heartbeat_ms = self.args.heartbeat_ms
        self.instances[iid] = inst
        for attempt in range(20):
            try:
                await inst.start(port)
                break
            except RuntimeError as e:
                if port == 0 or attempt == 19:
                    raise
                log(f"restart of {iid} on port {port} failed ({str(e).splitlines()[0]}), again")
                await asyncio.sleep(0.1)
        self.up.append(inst)
        return inst

    async def wait_ready(self, inst, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st, _ = await http_get(inst.port, "/readyz")
            if st == 200:
                return True
            await asyncio.sleep(0.05)
        return False

    async def kill_instance(self, inst):
        if inst in self.up:
            self.up.remove(inst)
        await asyncio.to_thread(inst.kill9)

    async def chaos_kill_restart(self, mode, down_s):
        """mode: same (same id, same port), port (same id, new port), new (new id, new port)."""
        candidates = [i for i in self.up]
        if not candidates:
            return
        inst = random.choice(candidates)
        port = inst.port
        await self.kill_instance(inst)
        self.note(f"kill -9 herald {inst.iid} (port {port}); restart in {down_s:.1f}s as '{mode}'")
        await asyncio.sleep(down_s)
        if mode == "same":
            new = await self.start_instance(inst.iid, port)
        elif mode == "port":
            new = await self.start_instance(inst.iid, 0)
        else:
            del self.instances[inst.iid]
            iid = chr(self.next_iid)
            self.next_iid += 1
            new = await self.start_instance(iid, 0)
        self.restarts += 1
        self.note(f"herald {new.iid} up on port {new.port}")

    async def chaos_redis(self, down_s):
        t_kill = time.monotonic()
        await asyncio.to_thread(self.redis.stop, signal.SIGKILL)
        self.note(f"kill -9 redis; restart from its AOF in {down_s:.1f}s")
        # An instance dies while Redis is down, and comes back before Redis does.
        await asyncio.sleep(down_s / 3)
        inst = random.choice(self.up)
        port = inst.port
        await self.kill_instance(inst)
        self.note(f"kill -9 herald {inst.iid} (port {port}) while redis is down")
        await asyncio.sleep(down_s / 3)
        await self.start_instance(inst.iid, port)
        self.note(f"herald {inst.iid} up again on port {port}, redis still down")
        await asyncio.sleep(down_s / 3)
        await asyncio.to_thread(self.redis.start)
        self.note("redis up (AOF loaded)")
        self.redis_outages.append((t_kill, time.monotonic()))

    async def chaos_pubsub_drop(self):
        try:
            n = await asyncio.to_thread(self.redis.cmd, "CLIENT", "KILL", "TYPE", "pubsub")
        except Exception as e:  # Redis may be down right now: nothing to drop
            n = repr(e)
        self.note(f"redis drops its subscriber connections ({n})")

    async def watch_processes(self):
        while not self.stopping:
            for inst in list(self.instances.values()):
                if not inst.killed and inst.proc is not None and inst.proc.poll() is not None:
                    rc = inst.proc.returncode
                    self.crashes.append({"instance": inst.iid, "rc": rc, "log": inst.tail()})
                    self.note(f"herald {inst.iid} CRASHED rc={rc}; restarting it")
                    if inst in self.up:
                        self.up.remove(inst)
                    inst.killed = True
                    try:
                        await self.start_instance(inst.iid, 0)
                    except RuntimeError as e:
                        log(str(e))
            await asyncio.sleep(0.2)

    # -- services --

    async def poster(self, wid, schedule):
        conns = {}
        idle = self.idle
        while self.posting:
            slot = next(schedule)
            delay = slot - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if not self.posting:
                break
            if not idle:
                self.count("post_slots_skipped")
                continue
            j = random.randrange(len(idle))
            c = idle[j]
            idle[j] = idle[-1]
            idle.pop()
            inst = self.pick_instance()
            s = c.next_s
            c.next_s += 1
            self.sent += 1
            t_sent = time.monotonic()
            epoch = len(c.epochs) - 1 if c.online else None
            body = json.dumps({"client_id": c.cid, "data": {"s": s}}).encode()
            status = None
            payload = b""
            try:
                if inst is None:
                    raise OSError("no instance up")
                key = (inst.iid, inst.generation, inst.port)
                hc = conns.get(key)
                if hc is None:
                    hc = HttpConn(inst.port)
                    await asyncio.wait_for(hc.open(), 5)
                    conns[key] = hc
                try:
                    status, payload = await asyncio.wait_for(hc.request("POST", "/v1/notifications", body),
                                                             self.args.post_timeout)
                finally:
                    if status is None or hc.writer is None:
                        hc.close()
                        conns.pop(key, None)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError) as e:
                self.count("post_" + type(e).__name__)
            c.trace("post", s, status, payload[:40] if status else None, inst.iid if inst else None)
            if status == 202:
                self.accepted += 1
                c.accepted.append((s, json.loads(payload)["id"], t_sent, time.monotonic()))
                if epoch is not None:
                    c.online_posts.append((c.accepted[-1], epoch))
            elif status == 503:
                self.refused_503 += 1
                c.refused[s] = 503
            elif status is None:
                self.refused_conn += 1
                c.refused[s] = None
            else:
                self.other_status += 1
                self.count(f"post_status_{status}")
                c.refused[s] = status
            idle.append(c)
        for hc in conns.values():
            hc.close()

    # -- phases --

    def wake_all(self):
        for c in self.clients:
            if c.wake is not None and not c.wake.done():
                c.wake.set_result(None)

    async def wait_until(self, pred, timeout, interval=0.2):
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(interval)
        return True

    def missing_total(self):
        return sum(len(c.missing()) for c in self.clients)

    async def run(self):
        a = self.args
        self.redis = RedisServer(persistent=True)
        self.workdir = self.redis.dir
        self.t_start = time.monotonic()
        self.t_wall = time.time()
        await asyncio.to_thread(self.redis.start)
        try:
            return await self._run()
        finally:
            self.stopping = True
            for inst in self.instances.values():
                if inst.alive():
                    inst.proc.kill()
                    inst.proc.wait()
            self.redis.stop(signal.SIGKILL)
            if self.ok and not a.keep:
                shutil.rmtree(self.workdir, ignore_errors=True)
            else:
                log(f"logs and Redis data kept in {self.workdir}")

    async def _run(self):
        a = self.args
        self.ok = False
        for iid in "ABC":
            await self.start_instance(iid)
        for inst in self.up:
            assert await self.wait_ready(inst), inst.tail()
        self.note(f"redis on {self.redis.port} (AOF, fsync always); heralds " +
                  ", ".join(f"{i.iid}:{i.port}" for i in self.up))
        watcher = asyncio.create_task(self.watch_processes())

        self.clients = [Client(self, n) for n in range(a.clients)]
        # One entry per post a client may have in flight: with more than one, a client's
        # notifications race each other through different instances.
        self.idle = [c for c in self.clients for _ in range(a.inflight)]
        tasks = []
        for i, c in enumerate(self.clients):
            tasks.append(asyncio.create_task(c.life()))
            if i % 100 == 99:
                await asyncio.sleep(0.05)
        await self.wait_until(lambda: self.counts.get("sessions", 0) >= a.clients * 0.9, 60)
        self.note(f"{self.counts.get('sessions', 0)} sessions opened; chaos for {a.duration}s")

        # Services post at a steady rate through random instances.
        t_post = time.monotonic()
        period = 1.0 / a.rate

        def schedule():
            k = 0
            while True:
                yield t_post + k * period
                k += 1
        sched = schedule()
        posters = [asyncio.create_task(self.poster(w, sched)) for w in range(a.posters)]

        # The chaos.
        t_chaos = time.monotonic()
        plan = self.plan()
        for at, what in plan:
            delay = t_chaos + at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await what()
        delay = t_chaos + a.duration - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        self.posting = False
        await asyncio.wait(posters, timeout=a.post_timeout + 5)
        for inst in list(self.up):
            if not await self.wait_ready(inst):
                self.note(f"herald {inst.iid} not ready after the chaos")
        chaos_s = time.monotonic() - t_chaos
        self.note(f"chaos over after {chaos_s:.0f}s: {self.sent} sent, {self.accepted} accepted; settling")

        # Settle 1: everyone online and staying; what the live path delivers by itself.
        self.phase = "settle"
        self.wake_all()
        await self.wait_until(lambda: self.missing_total() == 0, a.settle_s)
        stuck = self.missing_total()
        stuck_clients = sum(1 for c in self.clients if c.missing())
        self.note(f"online and settled: {stuck} accepted notifications not yet delivered to {stuck_clients} clients")

        # Settle 2: everyone reconnects once with its last_id and drains its inbox.
        self.phase = "final"
        self.wake_all()
        await self.wait_until(lambda: all(c.settled for c in self.clients), a.settle_s)
        await self.wait_until(lambda: self.missing_total() == 0, a.settle_s)
        self.note("final reconnect done; checking every client's status")
        status_figures = await self.check_status()
        self.note(f"status: {status_figures}; verifying")
        self.stopping = True
        self.wake_all()
        watcher.cancel()

        # Each instance must still stop cleanly (no hang): SIGTERM → exit 0.
        for inst in list(self.up):
            inst.proc.send_signal(signal.SIGTERM)
        for inst in list(self.up):
            try:
                rc = await asyncio.to_thread(inst.proc.wait, 15)
                if rc != 0:
                    self.unclean_exits.append({"instance": inst.iid, "rc": rc, "log": inst.tail()})
            except subprocess.TimeoutExpired:
                self.unclean_exits.append({"instance": inst.iid, "rc": "hang", "log": inst.tail()})
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return self.verify(stuck, stuck_clients, chaos_s, status_figures)

    def plan(self):
        """(seconds into the chaos, action): instance kills spread over the run, Redis once."""
        d = self.args.duration
        modes = ["same", "port", "new", "same", "port", "same"]
        kills = max(0, self.args.kills)
        slots = kills + (1 if self.args.redis_kill else 0)
        at = [d * (k + 1) / (slots + 1) for k in range(slots)]
        redis_slot = len(at) // 2 if self.args.redis_kill else -1
        plan = []
        m = 0
        for k, t in enumerate(at):
            if k == redis_slot:
                plan.append((t, lambda: self.chaos_redis(random.uniform(1.5, 3.0))))
            else:
                mode = modes[m % len(modes)]
                m += 1
                plan.append((t, lambda mode=mode: self.chaos_kill_restart(mode, random.uniform(0.3, 2.5))))
        # Between those, Redis drops every subscriber connection (as it does to a subscriber over
        # its output-buffer limit, or as a network blip between an instance and Redis would).
        drops = max(0, self.args.pubsub_drops)
        for k in range(drops):
            plan.append((d * (k + 0.5) / drops, self.chaos_pubsub_drop))
        plan.sort(key=lambda x: x[0])
        return plan

    async def check_status(self):
        """GET /v1/clients/{id} of every client once all are back: online, on the instance and
        session its last welcome named (the route survived the chaos and points at the live
        session), and nothing pending (its last_id and acks trimmed the inbox). Acks are in
        flight for a moment, so a mismatch is looked at again for a few seconds."""
        todo = list(self.clients)
        last = {}
        deadline = time.monotonic() + 10

        async def worker(queue):
            conns = {}
            while queue:
                c = queue.pop()
                inst = self.pick_instance()
                hc = conns.get(inst.iid)
                try:
                    if hc is None or hc.writer is None:
                        hc = conns[inst.iid] = HttpConn(inst.port)
                        await asyncio.wait_for(hc.open(), 5)
                    st, body = await asyncio.wait_for(hc.request("GET", f"/v1/clients/{c.cid}"), 5)
                    last[c.cid] = (st, json.loads(body) if st == 200 else body)
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
                    last[c.cid] = (None, repr(e))
                    hc.close()
            for hc in conns.values():
                hc.close()

        def bad(c):
            st, b = last.get(c.cid, (None, None))
            want = c.conn.where if c.conn is not None else None
            return (st != 200 or not b.get("online") or want is None
                    or (b.get("instance"), b.get("session")) != want or b.get("pending") != 0)

        while todo:
            queue = list(todo)
            await asyncio.gather(*(worker(queue) for _ in range(16)))
            todo = [c for c in todo if bad(c)]
            if not todo or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        route_bad = pending_left = 0
        for c in todo:
            st, b = last.get(c.cid, (None, None))
            want = c.conn.where if c.conn is not None else None
            if st != 200 or not b.get("online") or (b.get("instance"), b.get("session")) != want:
                route_bad += 1
                if route_bad <= 5:
                    log("status of", c.cid, "is", st, b, "but its connection is", want)
            elif b.get("pending") != 0:
                pending_left += 1
                if pending_left <= 5:
                    log("status of", c.cid, "has pending", b.get("pending"))
        return {"route_mismatches": route_bad, "pending_left": pending_left}

    def verify(self, stuck, stuck_clients, chaos_s, status_figures):
        a = self.args
        lost = delivered = dups = 0
        order = []
        id_order = []
        unconfirmed = after_503 = 0
        online_checked = late = 0
        latencies = []
        late_examples = []
        lost_examples = []
        for c in self.clients:
            # The engine: a notification posted after another one was answered 202 has a greater id.
            by_sent = sorted(c.accepted, key=lambda x: x[2])
            answered_max = None  # the greatest id answered before the post being looked at was sent
            done = sorted(c.accepted, key=lambda x: x[3])
            j = 0
            for s, i, t_sent, _ in by_sent:
                while j < len(done) and done[j][3] < t_sent:
                    k = id_key(done[j][1])
                    answered_max = k if answered_max is None or k > answered_max else answered_max
                    j += 1
                if answered_max is not None and id_key(i) <= answered_max:
                    id_order.append((c.cid, s, i))
            acc = {id_key(i): s for s, i, _, _ in c.accepted}
            for s, i, _, _ in c.accepted:
                if id_key(i) in c.seen:
                    delivered += 1
                else:
                    lost += 1
                    if len(lost_examples) < 10:
                        lost_examples.append({"client": c.cid, "s": s, "id": i})
            for k, s in c.processed:
                if k not in acc:
                    # Received, but its post was refused: a connection error leaves the outcome
                    # unknown; a 503 says "nothing was stored" and should never come to this.
                    if c.refused.get(s) == 503:
                        after_503 += 1
                        if after_503 <= 5:
                            when = next((t[0] for t in c.log if t[1] == "post" and t[2] == s), None)
                            log("answered 503 but delivered:", c.cid, s,
                                f"posted at +{when - self.t_wall:.1f}s" if when else "")
                    else:
                        unconfirmed += 1
            dups += c.duplicates
            # Liveness: posted while the client read a welcomed connection, which it kept reading
            # for --late-s after the 202, then it arrived within --late-s. (What was on its way
            # when Redis died may wait for Redis: --late-s after Redis is back.)
            for (s, i, t_sent, t_ans), ep in c.online_posts:
                deadline = t_ans + a.late_s
                for k0, k1 in self.redis_outages:  # it may have been on its way: give Redis time
                    if k0 - 1.0 <= t_ans <= k1:
                        deadline = max(deadline, k1 + a.late_s)
                end = c.epochs[ep + 1] if ep + 1 < len(c.epochs) else float("inf")
                if end < deadline:
                    continue
                online_checked += 1
                t = c.recv_time.get(id_key(i))
                lat = (t - t_sent) if t is not None else float("inf")
                latencies.append(lat)
                if t is None or t > deadline:
                    late += 1
                    if len(late_examples) < 5:
                        late_examples.append((c.cid, s, i, round(lat, 2)))
            order += [(c.cid,) + v for v in c.order_violations]
            # A 202'd one is processed after every 202'd one answered before it was posted (with
            # one post in flight per client: the sequence numbers increase).
            t_of = {s: (t_sent, t_ans) for s, _, t_sent, t_ans in c.accepted}
            seen_s = [s for k, s in c.processed if k in acc]
            for x, y in zip(seen_s, seen_s[1:]):
                if t_of[y][1] < t_of[x][0]:
                    order.append((c.cid, "sequence", x, y))
        wall = time.monotonic() - T0
        figures = {
            "sent": self.sent, "accepted": self.accepted,
            "refused": self.refused_503 + self.refused_conn + self.other_status,
            "refused_503": self.refused_503, "refused_connection": self.refused_conn,
            "other_status": self.other_status,
            "delivered": delivered, "lost": lost, "duplicates": dups,
            "order_violations": len(order) + len(id_order),
            "stuck_until_reconnect": stuck, "stuck_clients": stuck_clients,
            "received_frames": self.received, "delivered_after_connection_error": unconfirmed,
            "delivered_after_503": after_503,
            "online_checked": online_checked, "late_while_online": late,
            "online_latency_ms_p50": pct(latencies, 0.5), "online_latency_ms_p99": pct(latencies, 0.99),
            "online_latency_ms_max": pct(latencies, 1.0),
            **status_figures,
            "protocol_errors": len(self.protocol_errors), "crashes": len(self.crashes),
            "unclean_exits": len(self.unclean_exits),
            "instance_kills": sum(1 for e in self.events if e["what"].startswith("kill -9 herald")),
            "redis_kills": sum(1 for e in self.events if e["what"].startswith("kill -9 redis")),
            **{k: v for k, v in sorted(self.counts.items())},
        }
        for e in late_examples:
            log("late while online (client, s, id, seconds):", e)
        self.ok = (lost == 0 and not order and not id_order and not self.protocol_errors and not self.crashes
                   and status_figures["route_mismatches"] == 0 and late == 0
                   and not self.unclean_exits)
        line = {"scenario": "chaos", "ok": self.ok,
                "params": {"clients": a.clients, "rate_per_s": a.rate, "duration_s": a.duration,
                           "instances": 3, "threads": a.threads, "kills": a.kills,
                           "pubsub_drops": a.pubsub_drops,
                           "mean_session_s": a.mean_session_s, "inflight": a.inflight,
                           "freeze": a.freeze, "heartbeat_ms": a.heartbeat_ms, "ack_prob": a.ack_prob, "forget": a.forget,
                           "seed": a.seed},
                "figures": figures, "chaos_s": round(chaos_s, 1), "wall_s": round(wall, 1)}
        if not self.ok:
            log("FAILED")
            for e in lost_examples:
                log("lost:", e)
            traced = set()
            with open(os.path.join(self.workdir, "lost-clients.txt"), "w") as f:
                for e in lost_examples:
                    if e["client"] in traced:
                        continue
                    traced.add(e["client"])
                    c = next(c for c in self.clients if c.cid == e["client"])
                    f.write(f"== {c.cid} lost {c.missing()}\n")
                    for t in c.log:
                        f.write(repr(t) + "\n")
            log("traces of clients that lost one:", os.path.join(self.workdir, "lost-clients.txt"))
            for o in order[:10]:
                log("order:", o)
            for e in id_order[:5]:
                log("id not above one answered 202 before it was posted:", e)
            for p in self.protocol_errors[:10]:
                log("protocol error:", p)
            for x in self.crashes + self.unclean_exits:
                log(f"herald {x['instance']} rc={x['rc']}:\n{x['log']}")
        log("timeline:", json.dumps(self.events))
        print(json.dumps(line), flush=True)
        return 0 if self.ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=2500)
    p.add_argument("--rate", type=float, default=400, help="notifications posted per second")
    p.add_argument("--duration", type=float, default=100, help="seconds of chaos")
    p.add_argument("--kills", type=int, default=5, help="instance kills (plus one while Redis is down)")
    p.add_argument("--redis-kill", type=int, default=1, help="1: kill Redis once (0: never)")
    p.add_argument("--pubsub-drops", type=int, default=4, help="times Redis drops the subscribers")
    p.add_argument("--threads", type=int, default=2, help="event loops per herald")
    p.add_argument("--posters", type=int, default=48, help="concurrent service connections")
    p.add_argument("--post-timeout", type=float, default=10.0)
    p.add_argument("--mean-session-s", type=float, default=8.0, help="mean life of a client connection")
    p.add_argument("--inflight", type=int, default=2, help="posts a client may have in flight at once")
    p.add_argument("--freeze", type=float, default=0.15,
                   help="share of connections that stop reading for up to 3 heartbeats, then go on")
    p.add_argument("--heartbeat-ms", type=int, default=2000, help="the heralds' --heartbeat-ms")
    p.add_argument("--lie", type=float, default=0.0,
                   help="self-check of the verifier: share of hellos whose last_id is 2 s ahead (must fail)")
    p.add_argument("--late-s", type=float, default=5.0,
                   help="a notification posted while its client is online must arrive within this")
    p.add_argument("--ack-prob", type=float, default=0.7)
    p.add_argument("--forget", type=float, default=0.1, help="share of reconnects without last_id")
    p.add_argument("--settle-s", type=float, default=30.0, help="bound of each settle step")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--keep", action="store_true", help="keep logs and Redis data even when it passes")
    args = p.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    random.seed(args.seed)
    if not redis_server_bin() or not os.path.exists(herald_bin()):
        print(f"chaos: needs redis-server and {herald_bin()} (set REDIS_SERVER, HERALD_BIN)", file=sys.stderr)
        return 2
    return asyncio.run(Runner(args).run())


if __name__ == "__main__":
    sys.exit(main())
