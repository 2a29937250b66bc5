"""Liveness: server pings, dead clients are terminated, silent connections must say hello in time."""

import time

from herald_it import OP_PING, OP_PONG, new_cid, wait_until


def disconnected(api, cid):
    return [e for e in api.events(cid) if e["type"] == "disconnected"]


def test_client_that_stops_answering_pings_is_terminated(herald_factory):
    h = herald_factory(heartbeat_ms=300)
    api = h.api
    dead_id, live_id = new_cid("dead"), new_cid("live")
    live = h.ws()  # the websockets library answers pings by itself
    assert live.hello(live_id)["heartbeat_ms"] == 300
    dead = h.raw()  # says hello, then never reads nor answers again
    dw = dead.hello(dead_id)

    ev = wait_until(lambda: disconnected(api, dead_id), timeout=5, what="the dead client to be terminated")
    assert ev[0]["reason"] == "heartbeat_timeout" and ev[0]["session"] == dw["session"]
    assert api.status(dead_id)["online"] is False
    # The live client, connected the whole time, is untouched.
    assert disconnected(api, live_id) == []
    assert api.status(live_id)["online"] is True
    nid = api.notify(live_id, "still here")
    assert live.recv_json()["id"] == nid
    assert api.metrics()['herald_disconnects_total{reason="heartbeat_timeout"}'] == 1


def test_pongs_keep_a_client_alive(herald_factory):
    h = herald_factory(heartbeat_ms=200)
    api, cid = h.api, new_cid()
    r = h.raw()
    r.hello(cid)
    # Without a pong a client is gone by the second ping round; answer four rounds.
    pings = 0
    deadline = time.monotonic() + 5
    while pings < 4:
        _, op, payload = r.recv_frame(max(0.0, deadline - time.monotonic()))
        if op == OP_PING:
            pings += 1
            r.send_frame(OP_PONG, payload)
    assert api.status(cid)["online"] is True
    assert disconnected(api, cid) == []
    nid = api.notify(cid, "alive")
    assert r.recv_json()["id"] == nid


def test_hello_timeout(herald_factory):
    h = herald_factory(hello_timeout_ms=300)
    api, cid = h.api, new_cid()
    silent = h.ws()
    polite = h.ws()
    polite.hello(cid)
    silent.expect_error_close("hello_timeout", 1008, timeout=5)
    # said hello in time: not affected
    nid = api.notify(cid, 1)
    assert polite.recv_json()["id"] == nid
    assert api.metrics()['herald_errors_total{code="hello_timeout"}'] == 1
