"""/metrics: the counters move with what happens."""

import pytest

from herald_it import new_cid, wait_until


def delta(before, after, key):
    return after.get(key, 0) - before.get(key, 0)


def test_counters_move(herald):
    api, cid = herald.api, new_cid()
    m0 = api.metrics()
    assert m0["herald_connections"] == 0 and m0["herald_engine_ready"] == 1 and m0["herald_draining"] == 0

    nid = api.notify(cid, "stored")  # offline: accepted, pending
    api.post("/v1/notifications", {"client_id": cid, "data": 1, "durable": False})  # dropped
    api.post("/v1/notifications", raw=b"{")  # 400
    c = herald.ws()
    c.hello(cid)
    assert c.recv_json()["id"] == nid
    c.ack(nid)
    wait_until(lambda: api.pending(cid) == 0, what="ack")
    m1 = api.metrics()
    assert m1["herald_connections"] == 1
    assert delta(m0, m1, "herald_connections_total") == 1
    assert delta(m0, m1, 'herald_notifications_total{outcome="accepted"}') == 1
    assert delta(m0, m1, 'herald_notifications_total{outcome="delivered"}') == 1
    assert delta(m0, m1, 'herald_notifications_total{outcome="acked"}') == 1
    assert delta(m0, m1, 'herald_notifications_total{outcome="dropped"}') == 1
    assert m1["herald_pending_notifications"] == 0
    assert delta(m0, m1, 'herald_status_events_total{type="connected"}') == 1
    assert delta(m0, m1, 'herald_http_requests_total{route="notify",status="202"}') == 2
    assert delta(m0, m1, 'herald_http_requests_total{route="notify",status="400"}') == 1
    assert delta(m0, m1, 'herald_http_requests_total{route="websocket",status="101"}') == 1
    assert delta(m0, m1, 'herald_http_requests_total{route="client_status",status="200"}') >= 1

    c.send("not json")
    c.expect_error_close("invalid_json", 1008)
    wait_until(lambda: api.metrics()["herald_connections"] == 0, what="connection gauge back to 0")
    m2 = api.metrics()
    assert delta(m1, m2, 'herald_errors_total{code="invalid_json"}') == 1
    assert delta(m1, m2, 'herald_disconnects_total{reason="protocol_error"}') == 1
    assert delta(m1, m2, 'herald_status_events_total{type="disconnected"}') == 1

    api.notify(cid, "pending again")
    assert api.metrics()["herald_pending_notifications"] == 1


def test_api_errors_are_counted_by_code(herald):
    api = herald.api
    m0 = api.metrics()
    api.post("/v1/notifications", raw=b"{")
    api.post("/v1/notifications", {"client_id": "bad id!", "data": 1})
    m1 = api.metrics()
    assert delta(m0, m1, 'herald_errors_total{code="invalid_json"}') == 1
    assert delta(m0, m1, 'herald_errors_total{code="invalid_client_id"}') == 1
