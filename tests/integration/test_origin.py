"""--allowed-origins: a browser page from another origin is told bad_origin and closed with 1008
(a policy close: client libraries do not retry it); allowed pages and non-browser clients (no
Origin header) connect."""

from herald_it import new_cid


def test_page_from_an_unlisted_origin_is_refused_with_1008(herald_factory):
    h = herald_factory(allowed_origins="https://app.example.com,https://admin.example.com")
    bad = h.ws(origin="https://evil.example.net")
    code, reason, frames = bad.expect_close()
    assert (code, reason) == (1008, "bad_origin")
    assert frames and frames[-1]["type"] == "error" and frames[-1]["code"] == "bad_origin", frames
    assert h.api.metrics()['herald_errors_total{code="bad_origin"}'] == 1


def test_listed_origins_and_clients_without_origin_connect(herald_factory):
    h = herald_factory(allowed_origins="https://app.example.com,https://admin.example.com")
    for origin in ("https://app.example.com", "https://admin.example.com", None):
        c = h.ws(origin=origin) if origin else h.ws()
        assert c.hello(new_cid())["type"] == "welcome", origin


def test_any_origin_connects_when_none_are_configured(herald):
    c = herald.ws(origin="https://anywhere.example.org")
    assert c.hello(new_cid())["type"] == "welcome"
