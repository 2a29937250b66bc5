"""Helpers for Herald's integration tests: a real `herald` process, an HTTP client for the service
API, a WebSocket client (the `websockets` library, driven from a background asyncio loop so tests
read as plain sequential code) and a raw WebSocket client that can send what a well-behaved library
never would (invalid UTF-8, hand-made fragments, a peer that never reads).

Rules the helpers follow so the suite stays deterministic and bounded in time:
- every blocking call has a timeout, and a timeout is a test failure with a clear message;
- nothing waits by sleeping: tests wait for a frame, a close, or state read over the API
  (`wait_until` polls a predicate with a short interval up to a deadline).
"""

import asyncio
import base64
import ctypes
import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time
import uuid

import websockets
import websockets.exceptions

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def herald_bin():
    b = os.environ.get("HERALD_BIN") or os.path.join(REPO, "build", "herald")
    if not os.path.isabs(b):
        b = os.path.abspath(b)
    return b


DEFAULT_TIMEOUT = 5.0


def new_cid(prefix="u"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def id_key(i):
    """'<ms>-<seq>' → (ms, seq), for ordering comparisons."""
    ms, seq = i.split("-")
    return int(ms), int(seq)


def wait_until(pred, timeout=DEFAULT_TIMEOUT, interval=0.02, what="condition"):
    """Polls pred() until it returns something truthy; returns that value. Fails on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")
        time.sleep(interval)


# ---- the herald process -----------------------------------------------------------------------

_LISTEN_RE = re.compile(r"(?<!API )listening on (\[?[0-9a-fA-F.:]+\]?):(\d+)")
_API_LISTEN_RE = re.compile(r"service API listening on (\[?[0-9a-fA-F.:]+\]?):(\d+)")

_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # If the test runner dies (e.g. the faulthandler watchdog), herald must not be orphaned.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:
        pass


class Herald:
    """A running herald process. Use through the `herald_factory` fixture, which stops it."""

    # Harness defaults; a test overrides any of them by passing the same flag.
    DEFAULTS = {"listen": "127.0.0.1:0", "threads": "2", "drain-ms": "0"}

    def __init__(self, extra=(), flags=None, start_timeout=10.0, wait_for_sigterm_handler=True):
        opts = dict(self.DEFAULTS)
        repeated = []
        for k, v in (flags or {}).items():
            name = k.replace("_", "-")
            if isinstance(v, (list, tuple)):
                opts.pop(name, None)
                repeated += [(name, str(x)) for x in v]
            else:
                opts[name] = str(v)
        self.args = [herald_bin()]
        for k, v in opts.items():
            self.args += [f"--{k}", v]
        for k, v in repeated:
            self.args += [f"--{k}", v]
        self.args += list(extra)
        self.wants_api_port = "api-listen" in opts
        self.stderr_lines = []
        self.stdout_lines = []
        self.port = None
        self.api_port = None
        self.host = None
        self.clients = []
        self.expected_dead = False
        self.signalled = False
        self.stopped = False
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr_lines, True), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout_lines, False), daemon=True),
        ]
        for t in self._threads:
            t.start()
        deadline = time.monotonic() + start_timeout
        with self._cond:
            while not self._ready():
                left = deadline - time.monotonic()
                if self.proc.poll() is not None or left <= 0:
                    break
                self._cond.wait(min(left, 0.1))
            ready = self._ready()
        if not ready:
            self.proc.kill()
            self.proc.wait(5)
            for t in self._threads:  # read what it said to the end before quoting it
                t.join(5)
            self.stopped = True
            raise AssertionError(f"herald did not start ({' '.join(self.args)}), rc={self.proc.returncode}\n"
                                 + self.stderr_tail())
        if wait_for_sigterm_handler:
            # herald prints "listening on" before it installs its SIGTERM handler (see
            # test_shutdown.py::test_sigterm_right_after_start_drains): wait until it has, so that
            # stopping it is a graceful drain and not death by signal.
            wait_until(self.sigterm_handled, timeout=start_timeout, interval=0.002,
                       what="herald to install its SIGTERM handler")

    def sigterm_handled(self):
        """True once the process catches SIGTERM (SigCgt in /proc/<pid>/status)."""
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("SigCgt:"):
                        return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
        except OSError:
            pass
        return False

    def _ready(self):
        return self.port is not None and (not self.wants_api_port or self.api_port is not None)

    def _pump(self, stream, sink, is_stderr):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                sink.append(line)
                if is_stderr:
                    m = _API_LISTEN_RE.search(line)
                    if m:
                        self.api_port = int(m.group(2))
                    else:
                        m = _LISTEN_RE.search(line)
                        if m and self.port is None:
                            self.host = m.group(1).strip("[]")
                            if self.host in ("0.0.0.0", "::"):
                                self.host = "127.0.0.1"
                            self.port = int(m.group(2))
                self._cond.notify_all()
        stream.close()

    def stderr_tail(self, n=40):
        with self._cond:
            return "\n".join(self.stderr_lines[-n:])

    # -- clients & API bound to this process --

    @property
    def api(self):
        return Api(self.host, self.api_port or self.port)

    @property
    def main_api(self):
        return Api(self.host, self.port)

    def ws(self, path="/v1/ws", **kw):
        c = WSClient(f"ws://{self.host}:{self.port}{path}", **kw)
        self.clients.append(c)
        return c

    def raw(self, **kw):
        c = RawWS(self.host, self.port, **kw)
        self.clients.append(c)
        return c

    def track(self, c):
        self.clients.append(c)
        return c

    # -- lifecycle --

    def signal(self, sig=signal.SIGTERM):
        """Signals the process; the test then owns its exit (see wait_exit)."""
        self.signalled = True
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=10.0):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"herald did not exit within {timeout}s\n" + self.stderr_tail())

    def kill(self):
        """For tests that leave the process in a state a clean stop cannot end."""
        self.expected_dead = True
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self):
        """Closes the clients, SIGTERM, waits, SIGKILL fallback. Returns an error text or None."""
        if self.stopped:
            return None
        self.stopped = True
        for c in self.clients:
            try:
                c.abort()
            except Exception:
                pass
        if self.expected_dead:
            self.kill()
            return None
        if self.signalled:
            try:
                rc = self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                return "herald did not exit within 10s of the test's signal (killed)\n" + self.stderr_tail()
            return None if rc == 0 else f"herald exited with rc={rc} after the test's signal\n" + self.stderr_tail()
        if self.proc.poll() is not None:
            return (f"herald exited during the test with rc={self.proc.returncode}\n" + self.stderr_tail())
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            return "herald did not exit within 10s of SIGTERM (killed)\n" + self.stderr_tail()
        if rc != 0:
            return f"herald exited with rc={rc} after SIGTERM\n" + self.stderr_tail()
        return None


# ---- HTTP -------------------------------------------------------------------------------------

class Resp:
    def __init__(self, status, body, headers, raw):
        self.status = status
        self.body = body
        self.headers = headers
        self.raw = raw

    def __iter__(self):  # status, body = api.post(...)
        return iter((self.status, self.body))

    def __repr__(self):
        return f"Resp({self.status}, {self.body!r})"


def _decode(raw, content_type):
    if content_type and "json" in content_type:
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")
    return raw.decode("utf-8", "replace")


class Api:
    def __init__(self, host, port, headers=None):
        self.host = host
        self.port = port
        self.headers = dict(headers or {})

    def with_headers(self, **h):
        return Api(self.host, self.port, {**self.headers, **{k.replace("_", "-"): v for k, v in h.items()}})

    def bearer(self, key):
        return Api(self.host, self.port, {**self.headers, "Authorization": f"Bearer {key}"})

    def conn(self, timeout=DEFAULT_TIMEOUT):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, raw=None, timeout=DEFAULT_TIMEOUT, conn=None):
        h = {**self.headers, **(headers or {})}
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        own = conn is None
        c = conn or self.conn(timeout)
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            payload = r.read()
            return Resp(r.status, _decode(payload, r.getheader("Content-Type")), dict(r.getheaders()), payload)
        finally:
            if own:
                c.close()

    def post(self, path, body=None, headers=None, **kw):
        return self.request("POST", path, body, headers, **kw)

    def get(self, path, headers=None, **kw):
        return self.request("GET", path, None, headers, **kw)

    def delete(self, path, headers=None, **kw):
        return self.request("DELETE", path, None, headers, **kw)

    # -- shortcuts with assertions --

    def notify(self, client_id, data, **extra):
        """Durable notify; asserts 202 and returns the id."""
        r = self.post("/v1/notifications", {"client_id": client_id, "data": data, **extra})
        assert r.status == 202, r
        assert isinstance(r.body.get("id"), str), r
        return r.body["id"]

    def status(self, client_id):
        r = self.get(f"/v1/clients/{client_id}")
        assert r.status == 200, r
        return r.body

    def pending(self, client_id):
        return self.status(client_id)["pending"]

    def events(self, client_id, limit=None, conn=None):
        q = f"?limit={limit}" if limit is not None else ""
        r = self.get(f"/v1/clients/{client_id}/events{q}", conn=conn)
        assert r.status == 200, r
        return r.body["events"]

    def metrics(self, conn=None):
        r = self.get("/metrics", conn=conn)
        assert r.status == 200, r
        out = {}
        for line in r.body.splitlines():
            if not line or line.startswith("#"):
                continue
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
        return out


# ---- WebSocket client (websockets library) ----------------------------------------------------

class _Loop:
    """One asyncio loop in a daemon thread; sync code submits coroutines to it."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="ws-loop")
        self.thread.start()

    def run(self, coro, timeout):
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except TimeoutError:
            fut.cancel()
            raise


_LOOP = None
_LOOP_LOCK = threading.Lock()


def aio():
    global _LOOP
    with _LOOP_LOCK:
        if _LOOP is None:
            _LOOP = _Loop()
        return _LOOP


class Closed(Exception):
    def __init__(self, code, reason):
        super().__init__(f"connection closed: {code} {reason!r}")
        self.code = code
        self.reason = reason


class NoFrame(AssertionError):
    pass


class WSClient:
    """A well-behaved client (the websockets library; it answers pings by itself)."""

    def __init__(self, url, timeout=DEFAULT_TIMEOUT, **kw):
        opts = dict(ping_interval=None, max_size=None, max_queue=None, compression=None, open_timeout=timeout,
                    close_timeout=2)
        opts.update(kw)
        self.url = url

        async def go():
            return await websockets.connect(url, **opts)

        self.ws = aio().run(go(), timeout + 1)

    def send(self, msg):
        aio().run(self.ws.send(msg), DEFAULT_TIMEOUT)

    def send_json(self, obj):
        self.send(json.dumps(obj))

    def recv(self, timeout=DEFAULT_TIMEOUT):
        async def go():
            try:
                return await asyncio.wait_for(self.ws.recv(), timeout)
            except asyncio.TimeoutError:
                raise NoFrame(f"no frame within {timeout}s")
            except websockets.exceptions.ConnectionClosed as e:
                rcvd = e.rcvd
                raise Closed(rcvd.code if rcvd else None, rcvd.reason if rcvd else None)

        return aio().run(go(), timeout + 2)

    def recv_json(self, timeout=DEFAULT_TIMEOUT):
        m = self.recv(timeout)
        assert isinstance(m, str), f"expected a text frame, got {m!r}"
        return json.loads(m)

    def hello(self, client_id, timeout=DEFAULT_TIMEOUT, **extra):
        """Says hello; returns the welcome."""
        self.send_json({"type": "hello", "client_id": client_id, **extra})
        w = self.recv_json(timeout)
        assert w.get("type") == "welcome", w
        return w

    def ack(self, id_):
        self.send_json({"type": "ack", "id": id_})

    def recv_notifications(self, n, timeout=DEFAULT_TIMEOUT):
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NoFrame(f"got {len(out)} of {n} notifications within {timeout}s")
            m = self.recv_json(left)
            assert m.get("type") == "notification", m
            out.append(m)
        return out

    def expect_close(self, timeout=DEFAULT_TIMEOUT):
        """Reads until the server closes. Returns (code, reason, frames received before)."""
        frames = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NoFrame(f"no close within {timeout}s (frames: {frames!r})")
            try:
                m = self.recv(left)
            except Closed as c:
                return c.code, c.reason, frames
            try:
                frames.append(json.loads(m))
            except (TypeError, ValueError):
                frames.append(m)

    def expect_error_close(self, code_word, close_code, timeout=DEFAULT_TIMEOUT):
        """Asserts: next frames end with an error frame `code_word`, then a close `close_code`."""
        code, reason, frames = self.expect_close(timeout)
        assert frames and isinstance(frames[-1], dict), (code, reason, frames)
        assert frames[-1].get("type") == "error", frames
        assert frames[-1].get("code") == code_word, frames
        assert isinstance(frames[-1].get("message"), str) and frames[-1]["message"], frames
        assert code == close_code, (code, reason, frames)
        assert reason == code_word, (code, reason)
        return frames

    def watch_close(self):
        """Starts reading in the background until the server closes; returns a future of
        (code, reason, frames, time.monotonic() at the close), so several clients' closes can be
        timed independently."""
        async def go():
            frames = []
            while True:
                try:
                    m = await self.ws.recv()
                except websockets.exceptions.ConnectionClosed as e:
                    t = time.monotonic()
                    return (e.rcvd.code if e.rcvd else None, e.rcvd.reason if e.rcvd else None, frames, t)
                frames.append(json.loads(m) if isinstance(m, str) else m)

        return asyncio.run_coroutine_threadsafe(go(), aio().loop)

    def close(self, code=1000):
        aio().run(self.ws.close(code), DEFAULT_TIMEOUT)

    def abort(self):
        try:
            aio().run(self.ws.close(), 3)
        except Exception:
            pass


# ---- raw WebSocket client ---------------------------------------------------------------------

OP_CONT, OP_TEXT, OP_BIN, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def build_frame(opcode, payload=b"", fin=True, mask=True, key=None):
    if isinstance(payload, str):
        payload = payload.encode()
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n <= 0xFFFF:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = key if key is not None else os.urandom(4)
    body = bytes(b ^ key[i & 3] for i, b in enumerate(payload))
    return head + key + body


class RawWS:
    """A WebSocket client written by hand: exact control of every byte, and of not reading."""

    def __init__(self, host, port, path="/v1/ws", rcvbuf=None, timeout=DEFAULT_TIMEOUT, handshake=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = b""
        self.path = path
        self.host = host
        self.port = port
        if handshake:
            self.handshake()

    def upgrade_request(self):
        self.key = base64.b64encode(os.urandom(16)).decode()
        return (f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {self.key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()

    def read_http_response(self, timeout=DEFAULT_TIMEOUT):
        """Reads one HTTP response head (and a Content-Length body). Returns (status, headers, body)."""
        self.sock.settimeout(timeout)
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed before an HTTP response: {self.buf!r}")
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body

    def handshake(self):
        self.sock.sendall(self.upgrade_request())
        status, headers, _ = self.read_http_response()
        assert status == 101, status
        want = base64.b64encode(hashlib.sha1(self.key.encode() + _GUID).digest()).decode()
        assert headers.get("sec-websocket-accept") == want, headers

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", fin=True, mask=True):
        self.sock.sendall(build_frame(opcode, payload, fin=fin, mask=mask))

    def send_text(self, text):
        self.send_frame(OP_TEXT, text.encode() if isinstance(text, str) else text)

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NoFrame("no complete frame in time")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise NoFrame("no complete frame in time")
            if not chunk:
                raise Closed(None, "eof")
            self.buf += chunk

    def recv_frame(self, timeout=DEFAULT_TIMEOUT):
        """Returns (fin, opcode, payload bytes)."""
        deadline = time.monotonic() + timeout
        self._fill(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        assert not b1 & 0x80, "server frames must not be masked"
        n = b1 & 0x7F
        off = 2
        if n == 126:
            self._fill(4, deadline)
            n = struct.unpack("!H", self.buf[2:4])[0]
            off = 4
        elif n == 127:
            self._fill(10, deadline)
            n = struct.unpack("!Q", self.buf[2:10])[0]
            off = 10
        self._fill(off + n, deadline)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def recv_json(self, timeout=DEFAULT_TIMEOUT):
        """Next text frame as JSON, answering nothing and skipping pings/pongs."""
        deadline = time.monotonic() + timeout
        while True:
            fin, op, payload = self.recv_frame(max(0.0, deadline - time.monotonic()))
            if op in (OP_PING, OP_PONG):
                continue
            if op == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                raise Closed(code, payload[2:].decode())
            assert op == OP_TEXT and fin, (op, fin, payload)
            return json.loads(payload)

    def hello(self, client_id, **extra):
        self.send_json({"type": "hello", "client_id": client_id, **extra})
        w = self.recv_json()
        assert w.get("type") == "welcome", w
        return w

    def expect_close(self, timeout=DEFAULT_TIMEOUT):
        """Reads frames until a close frame. Returns (code, reason, non-control frames as JSON)."""
        frames = []
        deadline = time.monotonic() + timeout
        while True:
            fin, op, payload = self.recv_frame(max(0.0, deadline - time.monotonic()))
            if op == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                return code, payload[2:].decode(), frames
            if op in (OP_PING, OP_PONG):
                continue
            try:
                frames.append(json.loads(payload))
            except ValueError:
                frames.append(payload)

    def expect_error_close(self, code_word, close_code, timeout=DEFAULT_TIMEOUT):
        code, reason, frames = self.expect_close(timeout)
        assert frames and isinstance(frames[-1], dict) and frames[-1].get("type") == "error", (code, frames)
        assert frames[-1].get("code") == code_word, frames
        assert (code, reason) == (close_code, code_word), (code, reason)
        return frames

    def wait_eof(self, timeout=DEFAULT_TIMEOUT):
        """Reads and discards until the server closes the TCP connection."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("server did not close the connection in time")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return
            if not chunk:
                return

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    abort = close


# ---- JWT --------------------------------------------------------------------------------------

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(secret, claims, header=None):
    header = header or {"alg": "HS256", "typ": "JWT"}
    signing = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64url(sig)
