"""Client authentication with --client-auth jwt: HS256 tokens whose sub is the client id."""

import time

import pytest

from herald_it import b64url, make_jwt, new_cid

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


BAD_TOKENS = [
    pytest.param(lambda cid: None, id="missing"),
    pytest.param(lambda cid: "", id="empty"),
    pytest.param(lambda cid: "not-a-jwt", id="garbage"),
    pytest.param(lambda cid: make_jwt("other-secret", {"sub": cid}), id="wrong-secret"),
    pytest.param(lambda cid: make_jwt(SECRET, {"sub": "someone-else"}), id="wrong-sub"),
    pytest.param(lambda cid: make_jwt(SECRET, {"exp": _now() + 60}), id="no-sub"),
    pytest.param(lambda cid: make_jwt(SECRET, {"sub": cid, "exp": _now() - 120}), id="expired"),
    pytest.param(lambda cid: make_jwt(SECRET, {"sub": cid, "nbf": _now() + 120}), id="not-yet-valid"),
    pytest.param(lambda cid: make_jwt(SECRET, {"sub": cid, "exp": "tomorrow"}), id="exp-string"),
    pytest.param(lambda cid: make_jwt(SECRET, {"sub": cid}, header={"alg": "HS512"}), id="alg-hs512"),
    pytest.param(lambda cid: b64url(b'{"alg":"none"}') + "." + b64url(('{"sub":"%s"}' % cid).encode()) + ".",
                 id="alg-none"),
    pytest.param(lambda cid: make_jwt(SECRET, {"sub": cid})[:-2], id="truncated-signature"),
]


@pytest.mark.parametrize("token", BAD_TOKENS)
def test_bad_token_is_unauthorized(jwt_herald, token):
    cid = new_cid()
    t = token(cid)
    hello = {"type": "hello", "client_id": cid}
    if t is not None:
        hello["token"] = t
    c = jwt_herald.ws()
    c.send_json(hello)
    c.expect_error_close("unauthorized", 1008)
    st = jwt_herald.api.status(cid)
    assert st["online"] is False and jwt_herald.api.events(cid) == []  # never became a session


def test_legacy_hello_is_refused_when_auth_is_on(jwt_herald):
    c = jwt_herald.ws()
    c.send_json({"clientId": new_cid()})
    c.expect_error_close("unauthorized", 1008)


def test_auth_off_ignores_tokens(herald):
    cid = new_cid()
    herald.ws().hello(cid, token="anything")


def test_jwt_needs_a_secret(herald_factory):
    with pytest.raises(AssertionError, match="did not start"):
        herald_factory(client_auth="jwt")
