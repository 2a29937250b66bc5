"""The service API's answers to bad input, its limits and its authentication."""

import json
import socket

import pytest

from herald_it import Api, new_cid, wait_until


def assert_error(r, status, code):
    assert r.status == status, r
    assert isinstance(r.body, dict) and set(r.body) == {"error"}, r
    assert r.body["error"]["code"] == code and r.body["error"]["message"], r


def test_probes(herald):
    api = herald.api
    assert api.get("/healthz").body == {"status": "ok"}
    r = api.get("/readyz")
    assert r.status == 200 and r.body == {"status": "ready"}
    r = api.get("/metrics")
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
    assert "# TYPE herald_connections gauge" in r.body


def test_invalid_json_body(herald):
    for raw in (b"{", b"", b"not json", b'{"client_id": "u1", "data": }', b"\xff\xfe"):
        r = herald.api.post("/v1/notifications", raw=raw, headers={"Content-Type": "application/json"})
        assert_error(r, 400, "invalid_json")


@pytest.mark.parametrize("body,code", [
    pytest.param({"data": 1}, "bad_request", id="no-client-id"),
    pytest.param({"client_id": 5, "data": 1}, "bad_request", id="client-id-int"),
    pytest.param({"client_id": None, "data": 1}, "bad_request", id="client-id-null"),
    pytest.param({"client_id": "u1"}, "bad_request", id="no-data"),
    pytest.param({"client_id": "u1", "data": 1, "ttl_s": "10"}, "bad_request", id="ttl-string"),
    pytest.param({"client_id": "u1", "data": 1, "ttl_s": 0}, "bad_request", id="ttl-zero"),
    pytest.param({"client_id": "u1", "data": 1, "ttl_s": -5}, "bad_request", id="ttl-negative"),
    pytest.param({"client_id": "u1", "data": 1, "ttl_s": 1.5}, "bad_request", id="ttl-float"),
    pytest.param({"client_id": "u1", "data": 1, "ttl_s": 315360001}, "bad_request", id="ttl-too-long"),
    pytest.param({"client_id": "u1", "data": 1, "durable": "yes"}, "bad_request", id="durable-string"),
    pytest.param({"client_id": "u1", "data": 1, "durable": 1}, "bad_request", id="durable-int"),
    pytest.param({"client_id": "u1", "data": 1, "idempotency_key": 7}, "bad_request", id="key-int"),
    pytest.param({"client_id": "u1", "data": 1, "idempotency_key": ""}, "bad_request", id="key-empty"),
    pytest.param({"client_id": "u1", "data": 1, "idempotency_key": "k" * 257}, "bad_request", id="key-257"),
    pytest.param([{"client_id": "u1", "data": 1}], "bad_request", id="array-body"),
    pytest.param("u1", "bad_request", id="string-body"),
    pytest.param({"client_id": "bad id!", "data": 1}, "invalid_client_id", id="client-id-charset"),
    pytest.param({"client_id": "", "data": 1}, "invalid_client_id", id="client-id-empty"),
    pytest.param({"client_id": "a" * 129, "data": 1}, "invalid_client_id", id="client-id-129"),
    pytest.param({"client_id": "é", "data": 1}, "invalid_client_id", id="client-id-non-ascii"),
])
def test_bad_notify_body(herald, body, code):
    r = herald.api.post("/v1/notifications", body)
    assert_error(r, 400, code)
    assert herald.api.pending("u1") == 0  # nothing was stored


def test_optional_fields_may_be_null(herald):
    r = herald.api.post("/v1/notifications", {"client_id": "u1", "data": None, "ttl_s": None,
                                               "durable": None, "idempotency_key": None})
    assert r.status == 202 and r.body["client_online"] is False and r.body["id"], r


@pytest.mark.parametrize("path", ["/v1/clients/bad%20id!", "/v1/clients/" + "a" * 129,
                                  "/v1/clients/bad%20id!/events", "/v1/clients/a%2Fb/pending"])
def test_invalid_client_id_in_path(herald, path):
    method = "DELETE" if path.endswith("/pending") else "GET"
    assert_error(herald.api.request(method, path), 400, "invalid_client_id")


def test_percent_encoded_client_id_in_path(herald):
    cid = "user@example.com:1"
    herald.api.notify(cid, 1)
    r = herald.api.get("/v1/clients/user%40example.com%3A1")
    assert r.status == 200 and r.body["client_id"] == cid and r.body["pending"] == 1, r


@pytest.mark.parametrize("path", ["/", "/nope", "/v1", "/v1/notification", "/v1/clients/u1/whatever",
                                  "/v1/ws", "/notify/extra"])
def test_unknown_path_is_404(herald, path):
    assert_error(herald.api.get(path), 404, "not_found")


@pytest.mark.parametrize("method,path", [
    ("GET", "/v1/notifications"), ("PUT", "/v1/notifications"), ("GET", "/v1/notifications/batch"),
    ("POST", "/v1/clients/u1"), ("DELETE", "/v1/clients/u1"), ("GET", "/v1/clients/u1/pending"),
    ("POST", "/v1/clients/u1/events"), ("GET", "/v1/clients/u1/disconnect"), ("GET", "/notify"),
    ("POST", "/healthz"), ("POST", "/readyz"), ("DELETE", "/metrics"),
])
def test_wrong_method_is_405(herald, method, path):
    assert_error(herald.api.request(method, path), 405, "method_not_allowed")


def test_body_over_the_limit_is_413(herald_factory):
    h = herald_factory(max_body_bytes=1024)
    api, cid = h.api, new_cid()
    base = {"client_id": cid, "data": ""}
    pad = 1024 - len(json.dumps(base))
    at_limit = json.dumps({**base, "data": "x" * pad}).encode()
    assert len(at_limit) == 1024
    r = api.post("/v1/notifications", raw=at_limit, headers={"Content-Type": "application/json"})
    assert r.status == 202, r
    over = json.dumps({**base, "data": "x" * (pad + 1)}).encode()
    r = api.post("/v1/notifications", raw=over, headers={"Content-Type": "application/json"})
    assert_error(r, 413, "body_too_large")
    assert api.pending(cid) == 1


def test_default_body_limit_is_1_mib(herald):
    cid = new_cid()
    over = json.dumps({"client_id": cid, "data": "x" * (1024 * 1024)}).encode()
    r = herald.api.post("/v1/notifications", raw=over, headers={"Content-Type": "application/json"})
    assert_error(r, 413, "body_too_large")
    assert herald.api.pending(cid) == 0


def _raw_http(h, head):
    s = socket.create_connection((h.host, h.port), timeout=5)
    s.sendall(head)
    return s


def _read_response(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, f"connection closed before a response: {buf!r}"
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = s.recv(65536)
        assert chunk
        rest += chunk
    return int(lines[0].split()[1]), headers, json.loads(rest[:n])


def _wait_eof(s):
    while True:
        try:
            if not s.recv(65536):
                return
        except ConnectionResetError:
            return


def test_content_length_over_the_limit_is_413_before_the_body(herald):
    # Only the headers are sent: the answer must come from Content-Length alone.
    s = _raw_http(herald, b"POST /v1/notifications HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: 5000000\r\n\r\n")
    try:
        status, headers, body = _read_response(s)
        assert status == 413 and body["error"]["code"] == "body_too_large", (status, body)
        assert headers.get("connection", "").lower() == "close"
        _wait_eof(s)  # and the connection is closed (socket timeout 5 s fails the test)
    finally:
        s.close()


def test_chunked_body_over_the_limit_is_413(herald_factory):
    h = herald_factory(max_body_bytes=1024)
    s = _raw_http(h, b"POST /v1/notifications HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
    try:
        chunk = b"x" * 600
        s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))  # 1200 bytes read > 1024
        status, _, body = _read_response(s)
        assert status == 413 and body["error"]["code"] == "body_too_large", (status, body)
    finally:
        s.close()


def test_data_over_max_message_bytes_is_413(herald):
    cid = new_cid()
    r = herald.api.post("/v1/notifications", {"client_id": cid, "data": "x" * 65536})
    assert_error(r, 413, "body_too_large")
    assert herald.api.pending(cid) == 0
    r = herald.api.post("/v1/notifications", {"client_id": cid, "data": "x" * 65000})
    assert r.status == 202, r


def test_api_key_required_when_set(herald_factory):
    key, key2 = "k3y-one-secret-0000", "k3y-two-secret-0000"
    h = herald_factory(api_key=[key, key2])
    cid = new_cid()
    anon = h.api
    for method, path, body in [("POST", "/v1/notifications", {"client_id": cid, "data": 1}),
                               ("POST", "/v1/notifications/batch", {"notifications": [{"client_id": cid, "data": 1}]}),
                               ("POST", "/notify", {"clientId": cid, "data": 1}),
                               ("GET", f"/v1/clients/{cid}", None),
                               ("GET", f"/v1/clients/{cid}/events", None),
                               ("DELETE", f"/v1/clients/{cid}/pending", None),
                               ("POST", f"/v1/clients/{cid}/disconnect", None)]:
        for api in (anon, anon.bearer("wrong-key-000"), anon.bearer(key + "x"), anon.bearer(key[:-1]),
                    anon.with_headers(Authorization=key), anon.with_headers(Authorization=f"Basic {key}")):
            r = api.request(method, path, body)
            assert_error(r, 401, "unauthorized")
            assert r.headers.get("WWW-Authenticate") == "Bearer", r.headers
    # Probes need no key.
    for path in ("/healthz", "/readyz", "/metrics"):
        assert anon.get(path).status == 200
    # Either key works.
    r = anon.bearer(key).post("/v1/notifications", {"client_id": cid, "data": 1})
    assert r.status == 202, r
    r = anon.bearer(key2).post("/notify", {"clientId": cid, "data": 2})
    assert r.status == 202, r
    assert anon.bearer(key2).status(cid)["pending"] == 2  # nothing refused was stored
    # Clients need no API key.
    c = h.ws()
    c.hello(cid)
    assert len(c.recv_notifications(2)) == 2


def test_no_api_key_means_open_to_loopback(herald):
    r = herald.api.post("/v1/notifications", {"client_id": new_cid(), "data": 1})
    assert r.status == 202, r


def _non_loopback_address():
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent
            addr = s.getsockname()[0]
    except OSError:
        return None
    return None if addr.startswith("127.") or addr == "0.0.0.0" else addr


@pytest.mark.skipif(_non_loopback_address() is None, reason="no non-loopback IPv4 address")
def test_no_api_key_refuses_non_loopback_callers(herald_factory):
    addr = _non_loopback_address()
    h = herald_factory(listen="0.0.0.0:0", client_auth="none")
    remote = Api(addr, h.port)
    assert_error(remote.post("/v1/notifications", {"client_id": "u1", "data": 1}), 403, "forbidden")
    assert_error(remote.get("/v1/clients/u1"), 403, "forbidden")
    assert remote.get("/healthz").status == 200
    assert Api("127.0.0.1", h.port).post("/v1/notifications", {"client_id": "u1", "data": 1}).status == 202
    k = herald_factory(listen="0.0.0.0:0", client_auth="none", api_key="remote-key-1-0000")
    assert Api(addr, k.port).bearer("remote-key-1-0000").post(
        "/v1/notifications", {"client_id": "u1", "data": 1}).status == 202


def test_keep_alive_connection_serves_many_requests(herald):
    api, cid = herald.api, new_cid()
    conn = api.conn()
    try:
        ids = [api.post("/v1/notifications", {"client_id": cid, "data": n}, conn=conn).body["id"]
               for n in range(20)]
        assert api.get(f"/v1/clients/{cid}", conn=conn).body["pending"] == 20
        # an error answer does not end a keep-alive connection
        assert api.post("/v1/notifications", raw=b"{", conn=conn).status == 400
        assert api.get("/healthz", conn=conn).status == 200
    finally:
        conn.close()
    assert len(set(ids)) == 20


def test_websocket_upgrade_on_the_api_only_listener_is_refused(herald_factory):
    h = herald_factory(api_listen="127.0.0.1:0")
    assert h.api_port != h.port
    from herald_it import RawWS
    r = h.track(RawWS(h.host, h.api_port, handshake=False))
    r.send_raw(r.upgrade_request())
    status, _, body = r.read_http_response()
    assert status == 404 and json.loads(body)["error"]["code"] == "not_found"
    # the API itself answers there
    assert Api(h.host, h.api_port).post("/v1/notifications", {"client_id": "u1", "data": 1}).status == 202


def test_bad_upgrade_requests(herald):
    from herald_it import RawWS
    cases = [
        (b"GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n", 426),
        (b"GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         b"Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n", 400),
        (b"POST /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n", 400),
    ]
    for req, want in cases:
        r = herald.track(RawWS(herald.host, herald.port, handshake=False))
        r.send_raw(req)
        status, headers, _ = r.read_http_response()
        assert status == want, (req, status)
        if want == 426:
            assert headers.get("sec-websocket-version") == "13"
    wait_until(lambda: herald.api.metrics()["herald_connections"] == 0, what="no session opened")
