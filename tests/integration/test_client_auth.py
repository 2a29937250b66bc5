"""Client authentication: JWTs (HS256, RS256, ES256) whose sub is the client id, the auto/none
rules at start-up, the failure counters in /metrics, and service API keys from --api-key-file."""

import os
import signal
import time

import pytest

from herald_it import b64url, make_jwt, new_cid, wait_until
from jwt_it import ES256_PRIVATE, ES256_PUBLIC, RS256_PRIVATE, RS256_PUBLIC, sign

SECRET = "s3cret-for-tests"


@pytest.fixture
def jwt_herald(herald_factory):
    return herald_factory(client_auth="jwt", jwt_secret=SECRET)


def test_valid_token_is_welcome(jwt_herald):
    cid = new_cid()
    c = jwt_herald.ws()
    c.hello(cid, token=make_jwt(SECRET, {"sub": cid, "exp": int(time.time()) + 60}))
    nid = jwt_herald.api.notify(cid, "authed")
    assert c.recv_json()["id"] == nid


def test_token_without_exp_is_accepted(jwt_herald):
    cid = new_cid()
    jwt_herald.ws().hello(cid, token=make_jwt(SECRET, {"sub": cid}))


def test_expired_within_leeway_is_accepted(jwt_herald):
    cid = new_cid()
    jwt_herald.ws().hello(cid, token=make_jwt(SECRET, {"sub": cid, "exp": int(time.time()) - 10}))


def _now():
    return int(time.time())


CLIENT_REASONS = ("missing", "malformed", "bad_signature", "expired", "not_yet_valid", "wrong_audience",
                  "wrong_issuer", "wrong_subject", "alg_mismatch")


def client_failures(h):
    """herald_auth_failures_total{kind="client"} by reason (every reason is always exported)."""
    m = h.api.metrics()
    return {r: m[f'herald_auth_failures_total{{kind="client",reason="{r}"}}'] for r in CLIENT_REASONS}


def service_failures(h):
    m = h.api.metrics()
    return {r: m[f'herald_auth_failures_total{{kind="service",reason="{r}"}}'] for r in ("missing", "wrong")}


def diff(before, after):
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


def refused(h, cid, token, reason, legacy=False):
    """Says hello with `token`; asserts unauthorized + 1008, no session, and exactly one failure
    counted, under `reason`."""
    before = client_failures(h)
    hello = {"clientId": cid} if legacy else {"type": "hello", "client_id": cid}
    if token is not None:
        hello["token"] = token
    c = h.ws()
    c.send_json(hello)
    c.expect_error_close("unauthorized", 1008)
    st = h.api.status(cid)
    assert st["online"] is False and h.api.events(cid) == []  # never became a session
    # The counter moves before the close is sent, so it is already there.
    assert diff(before, client_failures(h)) == {reason: 1}


BAD_TOKENS = [
    pytest.param(lambda cid: None, "missing", id="missing"),
    pytest.param(lambda cid: "", "missing", id="empty"),
    pytest.param(lambda cid: "not-a-jwt", "malformed", id="garbage"),
    pytest.param(lambda cid: "x" * 9000, "malformed", id="oversize"),
    pytest.param(lambda cid: make_jwt("other-secret", {"sub": cid}), "bad_signature", id="wrong-secret"),
    pytest.param(lambda cid: make_jwt(SECRET, {"sub": "someone-else"}), "wrong_subject", id="wrong-sub"),
    pytest.param(lambda cid: make_jwt(SECRET, {"exp": _now() + 60}), "wrong_subject", id="no-sub"),
    pytest.param(lambda cid: make_jwt(SECRET, {"sub": cid, "exp": _now() - 120}), "expired", id="expired"),
    pytest.param(lambda cid: make_jwt(SECRET, {"sub": cid, "nbf": _now() + 120}), "not_yet_valid",
                 id="not-yet-valid"),
    pytest.param(lambda cid: make_jwt(SECRET, {"sub": cid, "exp": "tomorrow"}), "malformed", id="exp-string"),
    pytest.param(lambda cid: make_jwt(SECRET, {"sub": cid}, header={"alg": "HS512"}), "alg_mismatch",
                 id="alg-hs512"),
    pytest.param(lambda cid: b64url(b'{"alg":"none"}') + "." + b64url(('{"sub":"%s"}' % cid).encode()) + ".",
                 "alg_mismatch", id="alg-none"),
    pytest.param(lambda cid: make_jwt(SECRET, {"sub": cid})[:-2], "malformed", id="truncated-signature"),
    pytest.param(lambda cid: make_jwt(SECRET, {"sub": cid})[:-3], "bad_signature", id="short-signature"),  # 30 bytes
]


@pytest.mark.parametrize("token,reason", BAD_TOKENS)
def test_bad_token_is_unauthorized_and_counted(jwt_herald, token, reason):
    cid = new_cid()
    refused(jwt_herald, cid, token(cid), reason)


def test_legacy_hello_is_refused_when_auth_is_on(jwt_herald):
    refused(jwt_herald, new_cid(), None, "missing", legacy=True)


# ---- RS256 and ES256 ----------------------------------------------------------------------------

def test_rs256_end_to_end(herald_factory):
    h = herald_factory(jwt_public_key=RS256_PUBLIC)  # client auth auto: jwt, RS256 from the key
    cid = new_cid()
    c = h.ws()
    c.hello(cid, token=sign("RS256", {"sub": cid, "exp": _now() + 60}))
    nid = h.api.notify(cid, "rs256")
    assert c.recv_json()["id"] == nid
    assert sum(client_failures(h).values()) == 0
    refused(h, new_cid(), sign("RS256", {"sub": "someone-else"}), "wrong_subject")
    refused(h, new_cid(), sign("RS256", {"sub": "x", "exp": _now() - 3600}), "wrong_subject")
    cid2 = new_cid()
    refused(h, cid2, sign("RS256", {"sub": cid2, "exp": _now() - 3600}), "expired")
    # Algorithm confusion: HS256 "signed" with the public key's PEM text as the HMAC secret.
    with open(RS256_PUBLIC) as f:
        pem = f.read()
    refused(h, cid2, make_jwt(pem, {"sub": cid2}), "alg_mismatch")
    # The ES256 key's token, and a token signed by RS256's private key but with its payload changed.
    refused(h, cid2, sign("ES256", {"sub": cid2}), "alg_mismatch")
    good = sign("RS256", {"sub": cid2, "exp": _now() + 60}).split(".")
    forged = ".".join([good[0], b64url(('{"sub":"%s","exp":%d}' % (cid2, _now() + 86400)).encode()), good[2]])
    refused(h, cid2, forged, "bad_signature")
    refused(h, cid2, None, "missing", legacy=True)


def test_es256_end_to_end_with_audience_and_issuer(herald_factory):
    h = herald_factory(client_auth="jwt", jwt_public_key=ES256_PUBLIC, jwt_audience="herald",
                       jwt_issuer="https://auth.example.com")
    ok = {"aud": ["web", "herald"], "iss": "https://auth.example.com"}
    cid = new_cid()
    c = h.ws()
    c.hello(cid, token=sign("ES256", {"sub": cid, "exp": _now() + 60, **ok}))
    nid = h.api.notify(cid, "es256")
    assert c.recv_json()["id"] == nid
    h.ws().hello(new_cid_ := new_cid(), token=sign("ES256", {"sub": new_cid_, "aud": "herald",
                                                               "iss": ok["iss"]}))
    cid2 = new_cid()
    refused(h, cid2, sign("ES256", {"sub": cid2, "aud": "other", "iss": ok["iss"]}), "wrong_audience")
    refused(h, cid2, sign("ES256", {"sub": cid2, "iss": ok["iss"]}), "wrong_audience")
    refused(h, cid2, sign("ES256", {"sub": cid2, "aud": "herald", "iss": "https://evil.example.com"}),
            "wrong_issuer")
    refused(h, cid2, sign("ES256", {"sub": cid2, "nbf": _now() + 3600, **ok}), "not_yet_valid")
    good = sign("ES256", {"sub": cid2, **ok})
    head, payload, sig = good.split(".")
    # JWS carries R||S (64 bytes); a cut signature (60 bytes) is refused.
    refused(h, cid2, head + "." + payload + "." + sig[:-6], "bad_signature")
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    refused(h, cid2, head + "." + payload + "." + flipped, "bad_signature")
    refused(h, cid2, sign("RS256", {"sub": cid2, **ok}), "alg_mismatch")
    refused(h, cid2, head + "." + payload + "." + sig + "=", "malformed")


# ---- start-up rules -----------------------------------------------------------------------------

def test_auth_off_ignores_tokens_and_allows_the_legacy_hello(herald):
    # No key and a loopback --listen: auto comes to none.
    cid = new_cid()
    herald.ws().hello(cid, token="anything")
    legacy = new_cid()
    c = herald.ws()
    c.send_json({"clientId": legacy})
    herald.api.notify(legacy, {"legacy": True})
    assert c.recv_json() == {"legacy": True}
    assert sum(client_failures(herald).values()) == 0


def test_non_loopback_listen_without_a_key_refuses_to_start(herald_factory):
    with pytest.raises(AssertionError, match="did not start") as e:
        herald_factory(listen="0.0.0.0:0")
    assert "explicit --client-auth none" in str(e.value)
    assert "rc=2" in str(e.value)


def test_explicit_none_on_a_non_loopback_listen(herald_factory):
    h = herald_factory(listen="0.0.0.0:0", client_auth="none")
    cid = new_cid()
    c = h.ws()
    c.send_json({"clientId": cid})  # the legacy hello works when auth is none
    h.api.notify(cid, 7)
    assert c.recv_json() == 7
    assert any("client auth none" in line for line in h.stderr_lines)  # the start-up warning


def test_non_loopback_listen_with_a_key_is_jwt(herald_factory):
    h = herald_factory(listen="0.0.0.0:0", jwt_secret=SECRET)
    refused(h, new_cid(), None, "missing", legacy=True)
    cid = new_cid()
    h.ws().hello(cid, token=make_jwt(SECRET, {"sub": cid}))


@pytest.mark.parametrize("flags,says", [
    pytest.param({"client_auth": "jwt"}, "--jwt-secret or --jwt-public-key", id="jwt-without-key"),
    pytest.param({"jwt_secret": SECRET, "jwt_public_key": RS256_PUBLIC}, "not both", id="two-keys"),
    pytest.param({"jwt_public_key": "/nonexistent/key.pem"}, "/nonexistent/key.pem", id="missing-key-file"),
    pytest.param({"jwt_public_key": ES256_PRIVATE}, "private key", id="private-key"),
    pytest.param({"jwt_public_key": os.path.join(os.path.dirname(RS256_PUBLIC), "rsa1024_public.pem")}, "2048",
                 id="short-rsa-key"),
    pytest.param({"jwt_audience": "herald"}, "--jwt-audience", id="audience-without-key"),
    pytest.param({"api_key": "short-key"}, "16 characters", id="short-api-key"),
])
def test_bad_auth_configuration_refuses_to_start(herald_factory, flags, says):
    with pytest.raises(AssertionError, match="did not start") as e:
        herald_factory(**flags)
    assert says in str(e.value)


# ---- service API keys ---------------------------------------------------------------------------

KEY_A, KEY_B, KEY_C, KEY_D = ("svc-key-a-0123456789", "svc-key-b-0123456789", "svc-key-c-0123456789",
                              "svc-key-d-0123456789")


def test_api_key_file_wrong_and_missing_keys_are_401_and_counted(herald_factory, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text(f"# service keys\n\n{KEY_A}\n   {KEY_B}  \n# {KEY_D} (retired)\n")
    h = herald_factory(api_key=KEY_C, api_key_file=str(keys))
    cid = new_cid()
    for k in (KEY_A, KEY_B, KEY_C):
        r = h.api.bearer(k).post("/v1/notifications", {"client_id": cid, "data": k})
        assert r.status == 202, (k, r)
    before = service_failures(h)
    for api, n in ((h.api, "missing"), (h.api.bearer(KEY_D), "wrong"), (h.api.bearer(KEY_A + "x"), "wrong"),
                   (h.api.with_headers(Authorization=KEY_A), "wrong"), (h.api.bearer(""), "missing")):
        r = api.post("/v1/notifications", {"client_id": cid, "data": 1})
        assert r.status == 401 and r.body["error"]["code"] == "unauthorized", r
    assert diff(before, service_failures(h)) == {"missing": 2, "wrong": 3}
    assert h.api.bearer(KEY_A).status(cid)["pending"] == 3  # nothing refused was stored


def test_api_key_file_is_reread_on_sighup(herald_factory, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text(KEY_A + "\n")
    h = herald_factory(api_key_file=str(keys))
    cid = new_cid()
    status = lambda k: h.api.bearer(k).get(f"/v1/clients/{cid}").status  # noqa: E731
    assert (status(KEY_A), status(KEY_B)) == (200, 401)
    # Rotation: B added next to A, then A retired.
    keys.write_text(f"{KEY_A}\n{KEY_B}\n")
    h.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: status(KEY_B) == 200, what="the new key after SIGHUP")
    assert status(KEY_A) == 200
    keys.write_text(f"# A retired\n{KEY_B}\n")
    h.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: status(KEY_A) == 401, what="the retired key to be refused after SIGHUP")
    assert status(KEY_B) == 200
    # A broken file keeps the keys in force (and says so).
    keys.write_text("too-short\n")
    h.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: any("keeping the 1 API keys in force" in line for line in h.stderr_lines),
               what="the refused reload to be reported")
    assert (status(KEY_A), status(KEY_B)) == (401, 200)
    assert h.proc.poll() is None


@pytest.mark.parametrize("content,says", [
    pytest.param("", "has no keys", id="empty"),
    pytest.param("# only a comment\n\n", "has no keys", id="only-comments"),
    pytest.param(KEY_A + "\nshort-key\n", "line 2", id="short-key"),
    pytest.param(None, "cannot read", id="missing-file"),
])
def test_bad_api_key_file_refuses_to_start(herald_factory, tmp_path, content, says):
    keys = tmp_path / "keys"
    if content is not None:
        keys.write_text(content)
    with pytest.raises(AssertionError, match="did not start") as e:
        herald_factory(api_key_file=str(keys))
    assert says in str(e.value)
