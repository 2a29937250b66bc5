"""Helpers for the multi-instance tests of the Redis engine: a real `redis-server` on a free
loopback port (stoppable and restartable on the same port), a small RESP client to look at the
keys directly, and a factory of `herald --engine redis` processes that waits for /readyz.

The fixtures live here (this file is not a conftest); a test module uses them by importing them:

    from redis_it import redis_server, redis_persistent, heralds  # noqa: F401  (fixtures)

Teardown order: `heralds` asks for the Redis fixture before `herald_factory`, so the heralds are
stopped (and checked for a crash / an unclean exit) while Redis is still up, and Redis goes last.
"""

import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from herald_it import DEFAULT_TIMEOUT, Api, _die_with_parent, new_cid, wait_until


def redis_server_bin():
    return os.environ.get("REDIS_SERVER") or shutil.which("redis-server")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- RESP -------------------------------------------------------------------------------------

class RespError(Exception):
    pass


class Resp:
    """A minimal blocking RESP2 client: enough to read and write keys from a test."""

    def __init__(self, port, host="127.0.0.1", timeout=DEFAULT_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RespError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode("utf-8", "replace")
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RespError(f"unexpected reply {line!r}")

    def cmd(self, *args):
        out = [f"*{len(args)}\r\n".encode()]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(f"${len(b)}\r\n".encode() + b + b"\r\n")
        self.sock.sendall(b"".join(out))
        return self._reply()


# ---- redis-server -----------------------------------------------------------------------------

class RedisServer:
    """A redis-server on 127.0.0.1:port. With `persistent`, data lives in an AOF fsynced on every
    write, so a stop (even SIGKILL) and a start on the same port lose nothing."""

    def __init__(self, persistent=False):
        self.bin = redis_server_bin()
        self.persistent = persistent
        self.dir = tempfile.mkdtemp(prefix="herald-redis-")
        self.port = free_port()
        self.proc = None
        self.log_path = os.path.join(self.dir, "redis.log")
        self.starts = 0

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def args(self):
        a = [self.bin, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir", self.dir,
             "--daemonize", "no", "--logfile", self.log_path, "--protected-mode", "no"]
        if self.persistent:
            a += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            a += ["--appendonly", "no"]
        return a

    def start(self, timeout=10.0):
        assert self.proc is None or self.proc.poll() is not None, "redis-server already running"
        self.starts += 1
        self.proc = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited with rc={self.proc.returncode}\n" + self.log_tail())
            if self.ping():
                return self
            if time.monotonic() >= deadline:
                self.proc.kill()
                raise AssertionError(f"redis-server did not answer PING on {self.port} within {timeout}s\n"
                                     + self.log_tail())
            time.sleep(0.01)

    def ping(self):
        try:
            with Resp(self.port, timeout=1.0) as r:
                return r.cmd("PING") == "PONG"
        except (OSError, RespError, ConnectionError):
            return False

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Stops the server and waits until the process is gone (the port is then free again)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def client(self):
        return Resp(self.port)

    def cmd(self, *args):
        with Resp(self.port) as r:
            return r.cmd(*args)

    def log_tail(self, n=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def cleanup(self):
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


def _redis_fixture(persistent):
    if not redis_server_bin() or not os.access(redis_server_bin(), os.X_OK):
        pytest.skip("redis-server not found (set REDIS_SERVER)")
    srv = RedisServer(persistent=persistent)
    srv.start()
    return srv


@pytest.fixture
def redis_server():
    """A fresh redis-server without persistence (a restart comes back empty)."""
    srv = _redis_fixture(False)
    yield srv
    srv.cleanup()


@pytest.fixture
def redis_persistent():
    """A fresh redis-server with an AOF fsynced always (a restart keeps everything)."""
    srv = _redis_fixture(True)
    yield srv
    srv.cleanup()


# ---- herald instances on Redis ----------------------------------------------------------------

def readyz(h, timeout=2.0):
    """Status of GET /readyz, or None when the request fails (e.g. the process is gone)."""
    try:
        return Api(h.host, h.port).get("/readyz", timeout=timeout).status
    except OSError:
        return None


def wait_ready(h, timeout=10.0, status=200):
    wait_until(lambda: readyz(h) == status, timeout=timeout, interval=0.02,
               what=f"/readyz {status} on instance {getattr(h, 'iid', '?')}")


class Heralds:
    """start('A', heartbeat_ms=...) → a herald on Redis with instance id 'A', ready (GET /readyz 200).
    The herald is a herald_it.Herald with `.iid` and `.api` set; herald_factory stops it."""

    def __init__(self, redis, factory):
        self.redis = redis
        self.factory = factory
        self.by_iid = {}

    def start(self, iid, ready_timeout=10.0, **flags):
        flags = {"engine": "redis", "redis_url": self.redis.url, "instance_id": iid, "threads": "2", **flags}
        h = self.factory(**flags)
        h.iid = iid
        h.redis = self.redis
        self.by_iid[iid] = h
        wait_ready(h, ready_timeout)
        return h

    def start_many(self, *iids, **flags):
        return [self.start(i, **flags) for i in iids]

    def __getitem__(self, iid):
        return self.by_iid[iid]


def _redis_of(request):
    for name in ("redis_persistent", "redis_server"):
        if name in request.fixturenames:
            return request.getfixturevalue(name)
    return request.getfixturevalue("redis_server")


@pytest.fixture
def heralds(request):
    """Factory of herald instances on the test's Redis (`redis_persistent` when the test asks
    for it, else `redis_server`). Redis is set up before, and torn down after, the heralds."""
    redis = _redis_of(request)
    factory = request.getfixturevalue("herald_factory")
    return Heralds(redis, factory)


# ---- small helpers ----------------------------------------------------------------------------

def loop_of(session_id):
    """Session ids are '<boot>.<loop>.<counter>': the event loop (thread) serving the session."""
    return int(session_id.split(".")[1])


def route_key(cid):
    return "herald:{" + cid + "}:route"


class Poster(threading.Thread):
    """Posts durable notifications over one keep-alive HTTP connection, in a thread.
    `items` is an iterable of (api, client_id, data); results go to `self.results` as
    (client_id, status, body). Stops early when `stop` is set. Exceptions are kept in `error`."""

    def __init__(self, items, stop=None, name="poster"):
        super().__init__(daemon=True, name=name)
        self.items = items
        self.stop_event = stop or threading.Event()
        self.results = []
        self.error = None
        self.lock = threading.Lock()
        self.count_202 = 0

    def run(self):
        conns = {}
        try:
            for api, cid, data in self.items:
                if self.stop_event.is_set():
                    break
                key = (api.host, api.port)
                c = conns.get(key)
                if c is None:
                    c = conns[key] = api.conn(timeout=DEFAULT_TIMEOUT)
                try:
                    r = api.post("/v1/notifications", {"client_id": cid, "data": data}, conn=c)
                    res = (cid, r.status, r.body)
                except (OSError, http.client.HTTPException) as e:
                    # No retry: the first try may have been stored, and its id is then unknown.
                    c.close()
                    conns.pop(key, None)
                    res = (cid, None, repr(e))
                with self.lock:
                    self.results.append(res)
                    if res[1] == 202:
                        self.count_202 += 1
        except Exception as e:  # surfaced by the test through .error
            self.error = e
        finally:
            for c in conns.values():
                c.close()

    def accepted(self):
        with self.lock:
            return [(cid, body) for cid, st, body in self.results if st == 202]


def route_in_redis(redis, cid):
    """The raw route value 'iid:sid' of a client in Redis, or None."""
    return redis.cmd("GET", route_key(cid))


def warm_up_close_script(h):
    """One client connects to h and leaves, and the test waits until its route is gone. After
    that, the compare-and-delete script of a close is in Redis's script cache, so a close is sent
    as EVALSHA and runs in order with what its instance sends after it — notably the
    `disconnected` event. (A first EVALSHA answered NOSCRIPT is re-sent as EVAL after whatever was
    queued meanwhile, so without this the event can come before the delete.)"""
    cid = new_cid("warm")
    ws = h.ws()
    ws.hello(cid)
    ws.close()
    wait_until(lambda: route_in_redis(h.redis, cid) is None, what="the warm-up client's route to go")
