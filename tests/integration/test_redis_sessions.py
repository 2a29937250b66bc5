"""Redis engine, several instances: takeover across instances, status events and client status
readable from any instance, service disconnect through another instance."""

from herald_it import new_cid, wait_until
from redis_it import heralds, redis_server, route_in_redis, warm_up_close_script  # noqa: F401


def events_where(api, cid, pred, what):
    """Waits until the client's events (newest first) satisfy pred; returns them."""
    return wait_until(lambda: (lambda ev: ev if pred(ev) else None)(api.events(cid)), what=what)


def _takeover(heralds):
    """Client on A, then the same client id on B. Returns (a, b, cid, w1, w2, new client, events)
    once A has closed the old session and recorded it: A's compare-and-delete of the route and its
    `disconnected` event go in this order on the same Redis connection (the script being cached),
    so once the event is there, A's close has run."""
    a, b = heralds.start_many("A", "B")
    warm_up_close_script(a)
    cid = new_cid()
    old = a.ws()
    w1 = old.hello(cid)
    assert w1["instance"] == "A"
    new = b.ws()
    w2 = new.hello(cid)
    assert w2["instance"] == "B" and w2["session"] != w1["session"]
    # A closes exactly the old session.
    old.expect_error_close("taken_over", 4001)
    ev = events_where(b.api, cid, lambda ev: any(e["type"] == "disconnected" for e in ev),
                      "the disconnected event of the A session")
    return a, b, cid, w1, w2, new, ev


def test_takeover_across_instances(heralds):
    a, b, cid, w1, w2, new, ev = _takeover(heralds)
    # A's close did not delete B's route: either instance answers that the client is on B.
    assert route_in_redis(heralds.redis, cid) == f"B:{w2['session']}"
    for h in (a, b):
        st = h.api.status(cid)
        assert st["online"] is True and st["instance"] == "B" and st["session"] == w2["session"], (h.iid, st)

    by_type = {e["type"]: e for e in ev}
    assert sorted(by_type) == ["connected", "disconnected", "reconnected"], ev
    assert by_type["connected"]["session"] == w1["session"] and by_type["connected"]["instance"] == "A"
    rec = by_type["reconnected"]
    assert rec["session"] == w2["session"] and rec["instance"] == "B"
    assert rec["previous_instance"] == "A" and rec["offline_ms"] == 0, rec
    disc = by_type["disconnected"]
    assert disc["session"] == w1["session"] and disc["instance"] == "A" and disc["reason"] == "taken_over", disc
    assert a.api.events(cid) == ev

    # A notification now reaches B, once.
    r = a.api.post("/v1/notifications", {"client_id": cid, "data": {"after": "takeover"}})
    assert r.status == 202 and r.body["client_online"] is True, r
    (n,) = new.recv_notifications(1)
    assert n["id"] == r.body["id"] and n["data"] == {"after": "takeover"}
    sentinel = a.api.notify(cid, {"sentinel": True})
    (n2,) = new.recv_notifications(1)
    assert n2["id"] == sentinel
    assert route_in_redis(heralds.redis, cid) == f"B:{w2['session']}"


def test_rapid_takeovers_close_exactly_the_replaced_sessions(heralds):
    """The same client id says hello on A, B, A, B, A without waiting for any close: every kick
    names the session it replaced, so each older session is closed with 4001 and the newest one
    stays open, owns the route and receives."""
    a, b = heralds.start_many("A", "B")
    warm_up_close_script(a)
    warm_up_close_script(b)
    cid = new_cid()
    conns = []
    for h in (a, b, a, b, a):
        ws = h.ws()
        conns.append((h, ws, ws.hello(cid)))
    for h, ws, w in conns[:-1]:
        ws.expect_error_close("taken_over", 4001)
    h, last, w = conns[-1]
    ev = events_where(b.api, cid, lambda ev: sum(e["type"] == "disconnected" for e in ev) == 4, "4 disconnects")
    assert {e["session"] for e in ev if e["type"] == "disconnected"} == {w["session"] for _, _, w in conns[:-1]}
    assert all(e["reason"] == "taken_over" for e in ev if e["type"] == "disconnected"), ev
    assert route_in_redis(heralds.redis, cid) == f"A:{w['session']}"
    r = b.api.post("/v1/notifications", {"client_id": cid, "data": {"to": "newest"}})
    assert r.status == 202 and r.body["client_online"] is True, r
    (n,) = last.recv_notifications(1)
    assert n["id"] == r.body["id"]


def test_status_events_from_any_instance(heralds):
    a, b, c = heralds.start_many("A", "B", "C")
    redis = heralds.redis
    cid = new_cid()
    ws = a.ws()
    w1 = ws.hello(cid)
    ws.close()
    events_where(c.api, cid, lambda ev: len(ev) >= 2, "connected + disconnected")
    wait_until(lambda: route_in_redis(redis, cid) is None, what="the route of the closed session to go")

    ws2 = b.ws()
    w2 = ws2.hello(cid)
    ev = events_where(c.api, cid, lambda ev: len(ev) >= 3, "3 status events")
    assert [e["type"] for e in ev] == ["reconnected", "disconnected", "connected"], ev
    rec, disc, conn = ev
    assert (conn["instance"], conn["session"]) == ("A", w1["session"])
    assert (disc["instance"], disc["session"], disc["reason"]) == ("A", w1["session"], "client_closed")
    assert (rec["instance"], rec["session"], rec["previous_instance"]) == ("B", w2["session"], "A")
    assert rec["offline_ms"] == rec["ts"] - disc["ts"] and rec["offline_ms"] >= 0, ev
    assert len({e["id"] for e in ev}) == 3
    # The same from every instance.
    assert a.api.events(cid) == ev and b.api.events(cid) == ev
    assert c.api.events(cid, limit=1) == [rec]

    # The global stream has them too, for services to follow.
    entries = redis.cmd("XREVRANGE", "herald:events", "+", "-", "COUNT", "1000")
    mine = [e for e in entries if f'"client_id":"{cid}"' in e[1][1]]
    assert len(mine) == 3, mine

    # Client status reads the same from every instance.
    ids = [c.api.notify(cid, {"k": k}) for k in range(2)]
    got = ws2.recv_notifications(2)
    assert [n["id"] for n in got] == ids
    st = a.api.status(cid)
    assert st == {"client_id": cid, "online": True, "instance": "B", "session": w2["session"],
                  "connected_at": rec["ts"], "last_seen": rec["ts"], "pending": 2}, st
    assert b.api.status(cid) == st and c.api.status(cid) == st
    ws2.ack(ids[-1])
    wait_until(lambda: a.api.pending(cid) == 0, what="pending 0 after the ack")
    assert b.api.status(cid) == a.api.status(cid)


def test_disconnect_through_a_for_a_client_on_b(heralds):
    a, b = heralds.start_many("A", "B")
    redis = heralds.redis
    cid = new_cid()
    ws = b.ws()
    w = ws.hello(cid)
    r = a.api.post(f"/v1/clients/{cid}/disconnect")
    assert r.status == 202 and r.body == {"client_id": cid, "disconnected": True}, r
    ws.expect_error_close("disconnected", 4000)
    ev = events_where(a.api, cid, lambda ev: ev[0]["type"] == "disconnected", "disconnected event")
    assert ev[0]["reason"] == "disconnected_by_service" and ev[0]["session"] == w["session"]
    wait_until(lambda: route_in_redis(redis, cid) is None, what="the route to go")

    ws2 = b.ws()
    w2 = ws2.hello(cid)
    r = a.api.post(f"/v1/clients/{cid}/disconnect", {"reconnect": False})
    assert r.status == 202, r
    ws2.expect_error_close("disconnected_final", 4003)
    ev = events_where(a.api, cid, lambda ev: ev[0]["type"] == "disconnected" and ev[0]["session"] == w2["session"],
                      "second disconnected event")
    assert ev[0]["reason"] == "disconnected_by_service"
    wait_until(lambda: route_in_redis(redis, cid) is None, what="the route to go")
    # Nobody is connected now: 404.
    r = a.api.post(f"/v1/clients/{cid}/disconnect")
    assert r.status == 404, r
