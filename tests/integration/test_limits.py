"""Abuse limits against a real herald: connections per address (cap and rate, refused at accept),
the HTTP request time-out (slowloris), the header size cap (431), the service API's request rate
per key or per caller address (429 + Retry-After) and the hello rate per client id (1013).

Loopback addresses are not exempt, so each test uses 127.0.0.x source addresses as distinct
callers; /metrics is read from an address of its own so that reading it does not count."""

import http.client
import select
import socket
import time

from herald_it import DEFAULT_TIMEOUT, Api, Closed, new_cid, wait_until

KEY1 = "key-one-limits-0123456789"
KEY2 = "key-two-limits-0123456789"


class ApiFrom(Api):
    """The service API called from a given loopback source address."""

    def __init__(self, h, source, headers=None):
        super().__init__(h.host, h.port, headers)
        self.source = source

    def conn(self, timeout=DEFAULT_TIMEOUT):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout, source_address=(self.source, 0))


def probe(h):
    return ApiFrom(h, "127.0.0.99")


def delta(before, after, key):
    return after.get(key, 0) - before.get(key, 0)


def tcp(h, source="127.0.0.1"):
    """A TCP connection, or None when herald reset it so soon that connect() already saw it."""
    try:
        return socket.create_connection((h.host, h.port), timeout=DEFAULT_TIMEOUT, source_address=(source, 0))
    except ConnectionResetError:
        return None


def served(s):
    """True when the connection answers GET /healthz (and stays open, keep-alive); False when
    herald closed it without a word (refused at accept)."""
    if s is None:
        return False
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: herald\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data or not data.endswith(b"}"):
            chunk = s.recv(4096)
            if not chunk:
                return False
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        return False
    assert data.startswith(b"HTTP/1.1 200"), data
    return True


def closed_by_server(s, timeout):
    """Waits until the server ends the connection; returns the time it took, or None."""
    t0 = time.monotonic()
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(4096):
                break
    except ConnectionResetError:
        pass
    except socket.timeout:
        return None
    return time.monotonic() - t0


# ---- connections per address ------------------------------------------------------------------

def test_connections_over_the_per_address_cap_are_closed_at_accept(herald_factory):
    h = herald_factory(max_connections_per_ip=3)
    m0 = probe(h).metrics()
    held = [tcp(h), tcp(h)]
    assert all(served(s) for s in held)
    ws = h.raw()  # a WebSocket from the same address is the third connection
    ws.hello(new_cid())
    extra = tcp(h)
    assert not served(extra)
    other = tcp(h, "127.0.0.2")  # another address has its own count
    assert served(other)
    m1 = probe(h).metrics()
    assert delta(m0, m1, 'herald_connections_refused_total{reason="per_ip_cap"}') == 1
    assert delta(m0, m1, 'herald_connections_refused_total{reason="per_ip_rate"}') == 0

    # A connection that ends gives its place back: the WebSocket session, then an HTTP one.
    fresh = []

    def a_place_is_free():
        s = tcp(h)
        if served(s):
            fresh.append(s)
            return True
        if s:
            s.close()
        return False

    ws.close()
    wait_until(a_place_is_free, what="the place of the closed WebSocket connection")
    assert not served(tcp(h))
    held[0].close()
    wait_until(a_place_is_free, what="the place of the closed HTTP connection")


def test_connection_rate_per_address(herald_factory):
    h = herald_factory(max_connections_per_ip=0, connect_rate_per_ip=1, connect_burst_per_ip=5)
    m0 = probe(h).metrics()
    admitted, t0 = 0, time.monotonic()
    for _ in range(50):
        s = tcp(h)
        ok = served(s)
        if s:
            s.close()
        if not ok:
            break
        admitted += 1
    elapsed = time.monotonic() - t0
    assert not ok, "50 connections in a row from one address, none refused"
    # The burst, plus the tokens refilled (1/s) while the loop ran.
    assert 5 <= admitted <= 5 + int(elapsed) + 1, (admitted, elapsed)
    assert served(tcp(h, "127.0.0.3"))
    m1 = probe(h).metrics()
    assert delta(m0, m1, 'herald_connections_refused_total{reason="per_ip_rate"}') == 1


# ---- HTTP time-out and header cap --------------------------------------------------------------

def test_a_request_must_arrive_within_the_http_timeout(herald_factory):
    h = herald_factory(http_timeout_ms=500)
    m0 = probe(h).metrics()
    silent = tcp(h)
    slow = tcp(h)
    t0 = time.monotonic()
    slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: herald\r\n")
    # Slowloris: one more header byte every 50 ms. The bound is on the whole request, not on
    # the gap between bytes, so it still ends after about 500 ms.
    closed = False
    while time.monotonic() - t0 < 10:
        readable, _, _ = select.select([slow], [], [], 0.05)  # paces the drip
        if readable:
            closed = closed_by_server(slow, 1) is not None
            break
        try:
            slow.sendall(b"X")
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
    took = time.monotonic() - t0
    assert closed and 0.4 <= took < 3, (closed, took)
    assert closed_by_server(silent, 5) is not None, "a connection that sent nothing stayed open"
    # An idle keep-alive connection is closed the same way, but is not counted as a time-out.
    idle = tcp(h)
    assert served(idle)
    assert closed_by_server(idle, 5) is not None
    m1 = probe(h).metrics()
    assert delta(m0, m1, "herald_http_timeouts_total") == 2


def test_a_header_over_the_cap_is_answered_431(herald_factory):
    h = herald_factory(max_header_bytes=2048)
    api = h.api
    m0 = api.metrics()
    assert api.get("/healthz", headers={"X-Pad": "a" * 1500}).status == 200
    r = api.get("/healthz", headers={"X-Pad": "a" * 3000})
    assert r.status == 431 and r.body["error"]["code"] == "header_too_large", r
    m1 = api.metrics()
    assert delta(m0, m1, 'herald_errors_total{code="header_too_large"}') == 1
    assert delta(m0, m1, 'herald_http_requests_total{route="other",status="431"}') == 1


# ---- service API rate ---------------------------------------------------------------------------

def post_until_refused(api, cid, tries=40):
    """Posts notifications until one is not accepted. Returns (accepted, refusal, seconds)."""
    t0 = time.monotonic()
    for n in range(tries):
        r = api.post("/v1/notifications", {"client_id": cid, "data": n})
        if r.status != 202:
            return n, r, time.monotonic() - t0
    raise AssertionError(f"{tries} requests in a row, none refused")


def assert_rate_limited(r):
    assert r.status == 429, r
    assert r.body["error"]["code"] == "rate_limited", r
    retry = {k.lower(): v for k, v in r.headers.items()}.get("retry-after", "")
    assert retry.isdigit() and int(retry) >= 1, r.headers


def test_api_rate_limit_per_key(herald_factory):
    h = herald_factory(api_key=[KEY1, KEY2], api_rate_limit=1, api_rate_burst=3)
    a1, a2 = h.api.bearer(KEY1), h.api.bearer(KEY2)
    m0 = h.api.metrics()
    cid = new_cid()
    # A batch is one request, however many notifications it carries.
    r = a1.post("/v1/notifications/batch", {"notifications": [{"client_id": cid, "data": i} for i in range(10)]})
    assert r.status == 200 and all(x["status"] == 202 for x in r.body["results"]), r
    accepted, refusal, elapsed = post_until_refused(a1, cid)
    assert 2 <= accepted <= 2 + int(elapsed) + 1, (accepted, elapsed)
    assert_rate_limited(refusal)
    assert a2.notify(cid, "the other key has its own bucket")
    for _ in range(5):  # probes are never limited
        assert a1.get("/healthz").status == 200
        assert a1.get("/readyz").status == 200
    m1 = h.api.metrics()
    assert delta(m0, m1, 'herald_rate_limited_total{kind="api"}') == 1
    assert delta(m0, m1, 'herald_errors_total{code="rate_limited"}') == 1
    assert delta(m0, m1, 'herald_http_requests_total{route="notify",status="429"}') == 1


def test_api_rate_limit_keys_from_the_key_file_have_their_own_buckets(herald_factory, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text(f"# service keys\n{KEY1}\n{KEY2}\n")
    h = herald_factory(api_key_file=str(keys), api_rate_limit=1, api_rate_burst=2)
    cid = new_cid()
    _, refusal, _ = post_until_refused(h.api.bearer(KEY1), cid)
    assert_rate_limited(refusal)
    assert h.api.bearer(KEY2).notify(cid, "a key from the file has its own bucket")


def test_api_rate_limit_without_keys_is_per_caller_address(herald_factory):
    h = herald_factory(api_rate_limit=1, api_rate_burst=2)
    cid = new_cid()
    _, refusal, _ = post_until_refused(ApiFrom(h, "127.0.0.1"), cid)
    assert_rate_limited(refusal)
    assert ApiFrom(h, "127.0.0.4").notify(cid, "another loopback address")


# ---- hello rate ---------------------------------------------------------------------------------

def test_hello_rate_per_client_id(herald_factory):
    h = herald_factory(hello_rate=1, hello_burst=3)
    m0 = probe(h).metrics()
    cid = new_cid()
    welcomed, t0 = 0, time.monotonic()
    for _ in range(30):
        c = h.raw()
        c.send_json({"type": "hello", "client_id": cid})
        first = c.recv_json()
        if first.get("type") != "welcome":
            break
        welcomed += 1
        c.close()
    else:
        raise AssertionError("30 hellos in a row for one client id, none refused")
    elapsed = time.monotonic() - t0
    assert first == {"type": "error", "code": "rate_limited", "message": first["message"]}, first
    try:
        c.recv_json()
        raise AssertionError("no close after rate_limited")
    except Closed as e:
        assert (e.code, e.reason) == (1013, "rate_limited")
    assert 3 <= welcomed <= 3 + int(elapsed) + 1, (welcomed, elapsed)
    h.raw().hello(new_cid())  # another id is not held back
    m1 = probe(h).metrics()
    assert delta(m0, m1, 'herald_rate_limited_total{kind="hello"}') == 1
    assert delta(m0, m1, 'herald_errors_total{code="rate_limited"}') == 1
