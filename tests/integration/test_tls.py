"""TLS (--tls-cert/--tls-key): wss:// clients and https:// services on the same listener, Herald's
own framing over TLS records, the handshake's failures and time-out counted, the drain, and the
start-up errors for bad certificate files. The certificates are made per run with the openssl CLI."""

import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from herald_it import DEFAULT_TIMEOUT, Api, WSClient, herald_bin, new_cid, wait_until

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=30)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 with its key, a second (unrelated) key, and the
    first key encrypted with a passphrase."""
    d = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "key.pem", "-out", "cert.pem", "-days", "2", "-subj", "/CN=herald-test",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", cwd=d)
    _openssl("genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", "other.pem", cwd=d)
    _openssl("pkey", "-in", "key.pem", "-aes256", "-passout", "pass:secret", "-out", "encrypted.pem", cwd=d)
    return {name: str(d / f"{name}.pem") for name in ("cert", "key", "other", "encrypted")}


@pytest.fixture
def client_ctx(certs):
    ctx = ssl.create_default_context(cafile=certs["cert"])
    return ctx


class HttpsApi(Api):
    """The service API over https, trusting the test certificate."""

    def __init__(self, host, port, ctx, headers=None):
        super().__init__(host, port, headers)
        self.ctx = ctx

    def conn(self, timeout=DEFAULT_TIMEOUT):
        return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.ctx)


def start_tls(herald_factory, certs, **flags):
    return herald_factory(tls_cert=certs["cert"], tls_key=certs["key"], **flags)


def wss(h, ctx, **kw):
    return h.track(WSClient(f"wss://{h.host}:{h.port}/v1/ws", ssl=ctx, **kw))


def tls_failures(api):
    return api.metrics()["herald_tls_handshake_failures_total"]


def read_until_eof(sock, timeout):
    """Reads and drops bytes until the peer closes; returns the seconds it took. Fails on timeout."""
    sock.settimeout(timeout)
    t0 = time.monotonic()
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise AssertionError(f"the server did not close within {timeout}s")
    return time.monotonic() - t0


def test_wss_hello_notification_ack(herald_factory, certs, client_ctx):
    h = start_tls(herald_factory, certs)
    api = HttpsApi(h.host, h.port, client_ctx)
    cid = new_cid()
    c = wss(h, client_ctx)
    assert c.ws.transport.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
    w = c.hello(cid)
    assert w["type"] == "welcome"
    nid = api.notify(cid, {"text": "over tls"})
    n = c.recv_json()
    assert n["type"] == "notification" and n["id"] == nid and n["data"] == {"text": "over tls"}
    assert api.pending(cid) == 1
    c.ack(nid)
    wait_until(lambda: api.pending(cid) == 0, what="the ack to empty the inbox")
    assert api.status(cid)["online"] is True


def test_https_api_keep_alive(herald_factory, certs, client_ctx):
    h = start_tls(herald_factory, certs)
    api = HttpsApi(h.host, h.port, client_ctx)
    conn = api.conn()
    try:
        assert api.get("/healthz", conn=conn).status == 200
        first = conn.sock
        assert first is not None, "the server closed a keep-alive connection"
        cid = new_cid()
        r = api.post("/v1/notifications", {"client_id": cid, "data": 1}, conn=conn)
        assert r.status == 202, r
        assert api.get(f"/v1/clients/{cid}", conn=conn).body["pending"] == 1
        assert conn.sock is first, "the requests did not share one TLS connection"
    finally:
        conn.close()
    # The same port does not speak plain HTTP.
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
        Api(h.host, h.port).get("/healthz", timeout=2)


def test_plain_text_client_fails_cleanly_and_is_counted(herald_factory, certs, client_ctx):
    h = start_tls(herald_factory, certs)
    api = HttpsApi(h.host, h.port, client_ctx)
    before = tls_failures(api)
    s = socket.create_connection((h.host, h.port), timeout=DEFAULT_TIMEOUT)
    try:
        s.sendall(b"GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        read_until_eof(s, DEFAULT_TIMEOUT)
    finally:
        s.close()
    wait_until(lambda: tls_failures(api) == before + 1, what="the failed handshake to be counted")
    # The server is unharmed: a TLS client still gets in.
    c = wss(h, client_ctx)
    c.hello(new_cid())


def test_silent_connection_is_closed_at_the_handshake_timeout(herald_factory, certs, client_ctx):
    h = start_tls(herald_factory, certs, hello_timeout_ms=400)
    api = HttpsApi(h.host, h.port, client_ctx)
    before = tls_failures(api)
    s = socket.create_connection((h.host, h.port), timeout=DEFAULT_TIMEOUT)
    try:
        took = read_until_eof(s, DEFAULT_TIMEOUT)
    finally:
        s.close()
    assert 0.3 <= took <= 3.0, f"closed after {took:.3f}s; --hello-timeout-ms is 400"
    wait_until(lambda: tls_failures(api) == before + 1, what="the timed-out handshake to be counted")


def _handshake(h, ctx):
    """Opens a TLS connection with ctx; returns the negotiated (version, cipher) or the SSLError."""
    raw = socket.create_connection((h.host, h.port), timeout=DEFAULT_TIMEOUT)
    try:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            return s.version(), s.cipher()[0]
    except ssl.SSLError as e:
        return e
    finally:
        raw.close()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_1_2_minimum_and_aead_ciphers_only(herald_factory, certs):
    h = start_tls(herald_factory, certs)
    api = HttpsApi(h.host, h.port, ssl.create_default_context(cafile=certs["cert"]))
    before = tls_failures(api)

    def client(version, ciphers=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(certs["cert"])
        ctx.minimum_version = ctx.maximum_version = version
        if ciphers:
            ctx.set_ciphers(ciphers)
        return ctx

    assert _handshake(h, client(ssl.TLSVersion.TLSv1_3))[0] == "TLSv1.3"
    assert _handshake(h, client(ssl.TLSVersion.TLSv1_2)) == ("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256")
    assert _handshake(h, client(ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-CHACHA20-POLY1305"))[1] == \
        "ECDHE-ECDSA-CHACHA20-POLY1305"
    # The server answers each with an alert (the client did offer them).
    refused = [
        (client(ssl.TLSVersion.TLSv1_1, "DEFAULT:@SECLEVEL=0"), "PROTOCOL_VERSION"),  # below the floor
        (client(ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-SHA"), "HANDSHAKE_FAILURE"),  # CBC: not offered
    ]
    for ctx, alert in refused:
        e = _handshake(h, ctx)
        assert isinstance(e, ssl.SSLError) and alert in str(e.reason), e
    wait_until(lambda: tls_failures(api) == before + len(refused), what="the refused handshakes to be counted")


def test_large_notification_spans_tls_records(herald_factory, certs, client_ctx):
    h = start_tls(herald_factory, certs, max_message_bytes=256 * 1024)
    api = HttpsApi(h.host, h.port, client_ctx)
    cid = new_cid()
    c = wss(h, client_ctx)
    c.hello(cid)
    blob = "".join(chr(ord("a") + i % 26) for i in range(200_000))
    nid = api.notify(cid, {"blob": blob})
    n = c.recv_json()
    assert n["id"] == nid and n["data"]["blob"] == blob
    # Many small frames queued in one turn are gathered into records and arrive whole and in order.
    r = api.post("/v1/notifications/batch",
                 {"notifications": [{"client_id": cid, "data": {"i": i, "pad": "p" * (i % 700)}}
                                    for i in range(500)]})
    assert r.status == 200 and all(x["status"] == 202 for x in r.body["results"]), r
    got = c.recv_notifications(500)
    assert [m["data"]["i"] for m in got] == list(range(500))
    assert all(m["data"]["pad"] == "p" * (m["data"]["i"] % 700) for m in got)
    c.ack(got[-1]["id"])
    wait_until(lambda: api.pending(cid) == 0, what="the last ack to empty the inbox")


UPGRADE = (b"GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def tls_upgrade(h, ctx, after=b"", rcvbuf=None):
    """A hand-driven WebSocket over TLS: sends the upgrade request and `after` in one write, reads
    the 101 (and not a byte more); returns the ssl socket."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(DEFAULT_TIMEOUT)
    raw.connect((h.host, h.port))
    # A TCP end without close_notify must show as an error, not as a clean end.
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1", suppress_ragged_eofs=False)
    s.sendall(UPGRADE + after)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        assert chunk, "closed during the upgrade"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def test_client_messages_split_and_joined_across_records(herald_factory, certs, client_ctx):
    """Bytes the client sends arrive through the session's own TLS read buffer: a hello that starts
    in the upgrade's own record and is split over many more, and many acks in one record, are read
    like on plain TCP."""
    h = start_tls(herald_factory, certs)
    api = HttpsApi(h.host, h.port, client_ctx)
    cid = new_cid()
    hello = json.dumps({"type": "hello", "client_id": cid, "pad": "x" * 9000}).encode()
    frame = _masked_text(hello)
    s = tls_upgrade(h, client_ctx, after=frame[:700])
    try:
        for i in range(700, len(frame), 700):  # one TLS record per sendall
            s.sendall(frame[i:i + 700])
        welcome = _read_text(s)
        assert json.loads(welcome)["type"] == "welcome"
        ids = [api.notify(cid, i) for i in range(20)]
        for i in ids:
            assert json.loads(_read_text(s))["id"] == i
        s.sendall(b"".join(_masked_text(json.dumps({"type": "ack", "id": i}).encode()) for i in ids))
        wait_until(lambda: api.pending(cid) == 0, what="the acks to empty the inbox")
    finally:
        s.close()


def test_server_close_ends_with_close_notify(herald_factory, certs, client_ctx):
    """When the server ends a session (here: no hello in time, then the client echoes the close),
    the TLS stream ends with close_notify: the client reads a clean end, not a truncation."""
    h = start_tls(herald_factory, certs, hello_timeout_ms=300)
    client_ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
    s = tls_upgrade(h, client_ctx)
    try:
        err = json.loads(_read_text(s, timeout=5))
        assert err["type"] == "error" and err["code"] == "hello_timeout", err
        op, payload = _read_frame(s)
        assert op == 0x8 and int.from_bytes(payload[:2], "big") == 1008, (op, payload)
        s.sendall(_masked(0x8, payload[:2]))
        try:
            rest = s.recv(1)
        except ssl.SSLEOFError:
            pytest.fail("the server closed the TCP connection without close_notify")
        assert rest == b"", rest
    finally:
        s.close()


def test_client_that_never_reads_is_closed_for_backpressure(herald_factory, certs, client_ctx):
    """A TLS write that cannot complete holds the queue like a blocked writev: past
    --max-queue-bytes the client is closed (backpressure), nothing unacked is lost, and the session
    ends although the peer never reads our close or close_notify."""
    h = start_tls(herald_factory, certs, max_queue_bytes=4096, max_message_bytes=2048)
    api = HttpsApi(h.host, h.port, client_ctx)
    cid = new_cid()
    slow = tls_upgrade(h, client_ctx, after=_masked_text(json.dumps({"type": "hello", "client_id": cid}).encode()),
                       rcvbuf=4096)
    try:
        assert json.loads(_read_text(slow))["type"] == "welcome"
        conn = api.conn()
        ids = []
        try:
            while api.metrics(conn=conn)['herald_errors_total{code="backpressure"}'] == 0:
                assert len(ids) < 20000, "never hit backpressure"
                for _ in range(100):
                    r = api.post("/v1/notifications", {"client_id": cid, "data": {"n": len(ids), "pad": "x" * 1000}},
                                 conn=conn)
                    assert r.status == 202, r
                    ids.append(r.body["id"])
        finally:
            conn.close()
        ev = wait_until(lambda: [e for e in api.events(cid) if e["type"] == "disconnected"], timeout=8,
                        what="the slow client to be closed")
        assert ev[0]["reason"] == "backpressure"
        wait_until(lambda: api.metrics()["herald_connections"] == 0, what="the session to end")
        assert api.status(cid)["pending"] == len(ids)
    finally:
        slow.close()
    c = wss(h, client_ctx)
    c.hello(cid)
    got = c.recv_notifications(len(ids), timeout=30)
    assert [m["data"]["n"] for m in got] == list(range(len(ids)))


def _masked(opcode, payload):
    key = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def _masked_text(payload):
    return _masked(0x1, payload)


def _recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        assert chunk, "closed early"
        out += chunk
    return out


def _read_frame(s):
    """One unmasked, final server frame: (opcode, payload)."""
    b0, b1 = _recv_exact(s, 2)
    assert b0 & 0x80, f"expected a final frame, got 0x{b0:02x}"
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(_recv_exact(s, 2), "big")
    elif n == 127:
        n = int.from_bytes(_recv_exact(s, 8), "big")
    return b0 & 0x0F, _recv_exact(s, n)


def _read_text(s, timeout=DEFAULT_TIMEOUT):
    s.settimeout(timeout)
    op, payload = _read_frame(s)
    assert op == 0x1, f"expected a text frame, got opcode {op}"
    return payload.decode()


def test_api_listen_is_tls_too_unless_api_tls_off(herald_factory, certs, client_ctx):
    h = start_tls(herald_factory, certs, api_listen="127.0.0.1:0")
    assert HttpsApi(h.host, h.api_port, client_ctx).get("/healthz").status == 200
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
        Api(h.host, h.api_port).get("/healthz", timeout=2)

    h2 = start_tls(herald_factory, certs, api_listen="127.0.0.1:0", api_tls="off")
    plain = Api(h2.host, h2.api_port)
    assert plain.get("/healthz").status == 200
    cid = new_cid()
    c = wss(h2, client_ctx)
    c.hello(cid)
    nid = plain.notify(cid, "via the plain API address")
    assert c.recv_json()["id"] == nid


def test_drain_with_tls_clients_exits_0(herald_factory, certs, client_ctx):
    h = start_tls(herald_factory, certs, drain_ms=300)
    api = HttpsApi(h.host, h.port, client_ctx)
    clients = [wss(h, client_ctx) for _ in range(3)]
    for c in clients:
        c.hello(new_cid())
    # One TLS connection that never finishes its handshake must not hold the exit up.
    idle = socket.create_connection((h.host, h.port), timeout=DEFAULT_TIMEOUT)
    wait_until(lambda: api.metrics()["herald_connections"] == 3, what="3 sessions")
    watchers = [c.watch_close() for c in clients]
    h.signal()
    for w in watchers:
        code, reason, frames, _ = w.result(5)
        assert (code, reason) == (1012, "server_shutdown"), (code, reason, frames)
    assert h.wait_exit(10) == 0
    idle.close()


def _start_fails(args):
    p = subprocess.run([herald_bin(), "--listen", "127.0.0.1:0", "--threads", "1", *args],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=10)
    return p.returncode, p.stderr.decode()


def test_bad_certificate_files_stop_the_start(certs, tmp_path):
    missing = str(tmp_path / "nope.pem")
    rc, err = _start_fails(["--tls-cert", missing, "--tls-key", certs["key"]])
    assert rc == 1 and "--tls-cert" in err and missing in err and "cannot read" in err, err
    rc, err = _start_fails(["--tls-cert", certs["cert"], "--tls-key", missing])
    assert rc == 1 and "--tls-key" in err and missing in err, err
    rc, err = _start_fails(["--tls-cert", certs["cert"], "--tls-key", certs["other"]])
    assert rc == 1 and "--tls-key" in err and "match" in err, err
    rc, err = _start_fails(["--tls-cert", certs["key"], "--tls-key", certs["key"]])
    assert rc == 1 and "not a PEM certificate" in err, err
    rc, err = _start_fails(["--tls-cert", certs["cert"], "--tls-key", certs["encrypted"]])
    assert rc == 1 and "--tls-key" in err, err
    rc, err = _start_fails(["--tls-cert", certs["cert"]])
    assert rc == 2 and "--tls-key" in err, err
