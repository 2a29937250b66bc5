"""Sessions and status: connected / reconnected / disconnected events, takeover, service
disconnect, client status."""

from herald_it import new_cid, wait_until


def events_of(api, cid, n):
    """Waits until the client has at least n status events; returns them (newest first)."""
    return wait_until(lambda: (lambda ev: ev if len(ev) >= n else None)(api.events(cid)),
                      what=f"{n} status events for {cid}")


def test_unknown_client_status(herald):
    cid = new_cid()
    st = herald.api.status(cid)
    assert st == {"client_id": cid, "online": False, "instance": None, "session": None,
                  "connected_at": None, "last_seen": None, "pending": 0}
    assert herald.api.events(cid) == []


def test_connect_and_close_events(herald):
    api, cid = herald.api, new_cid()
    c = herald.ws()
    w = c.hello(cid)
    (ev,) = events_of(api, cid, 1)
    assert ev["type"] == "connected" and ev["client_id"] == cid
    assert ev["session"] == w["session"] and ev["instance"] == w["instance"]
    assert ev["remote"].startswith("127.0.0.1:") and isinstance(ev["ts"], int) and ev["id"]
    assert "reason" not in ev and "previous_instance" not in ev
    c.close()
    disc, conn = events_of(api, cid, 2)
    assert disc["type"] == "disconnected" and disc["reason"] == "client_closed"
    assert disc["session"] == w["session"] and disc["ts"] >= conn["ts"]
    st = api.status(cid)
    assert st["online"] is False and st["session"] is None and st["last_seen"] == disc["ts"]


def test_reconnect_after_close_is_a_reconnected_event(herald):
    api, cid = herald.api, new_cid()
    c = herald.ws()
    w1 = c.hello(cid)
    c.close()
    events_of(api, cid, 2)
    c2 = herald.ws()
    w2 = c2.hello(cid)
    assert w2["session"] != w1["session"]
    ev = events_of(api, cid, 3)
    assert [e["type"] for e in ev] == ["reconnected", "disconnected", "connected"]
    rec = ev[0]
    assert rec["session"] == w2["session"] and rec["previous_instance"] == w1["instance"]
    assert isinstance(rec["offline_ms"], int) and 0 <= rec["offline_ms"] <= 30000
    assert rec["offline_ms"] == rec["ts"] - ev[1]["ts"]
    assert len({e["id"] for e in ev}) == 3
    assert api.events(cid, limit=1) == [rec]


def test_takeover_closes_the_old_session_with_4001(herald):
    api, cid = herald.api, new_cid()
    old, new = herald.ws(), herald.ws()
    w1 = old.hello(cid)
    w2 = new.hello(cid)
    assert w1["session"] != w2["session"]
    old.expect_error_close("taken_over", 4001)

    nid = api.notify(cid, "to the new one")
    m = new.recv_json()
    assert m["id"] == nid and m["data"] == "to the new one"
    st = api.status(cid)
    assert st["online"] is True and st["session"] == w2["session"]

    ev = events_of(api, cid, 3)
    assert [e["type"] for e in ev] == ["disconnected", "reconnected", "connected"], ev
    assert ev[0]["session"] == w1["session"] and ev[0]["reason"] == "taken_over"
    assert ev[1]["session"] == w2["session"] and ev[1]["offline_ms"] == 0
    assert ev[1]["previous_instance"] == w1["instance"]
    assert ev[2]["session"] == w1["session"]
    # The old session going away did not take the new one's route with it.
    assert api.status(cid)["session"] == w2["session"]


def test_takeover_replays_what_the_old_session_did_not_ack(herald):
    api, cid = herald.api, new_cid()
    old = herald.ws()
    old.hello(cid)
    ids = [api.notify(cid, n) for n in range(3)]
    assert [m["id"] for m in old.recv_notifications(3)] == ids
    old.ack(ids[0])
    wait_until(lambda: api.pending(cid) == 2, what="ack of the first")
    new = herald.ws()
    new.hello(cid)
    assert [m["id"] for m in new.recv_notifications(2)] == ids[1:]
    old.expect_error_close("taken_over", 4001)


def test_service_disconnect(herald):
    api, cid = herald.api, new_cid()
    c = herald.ws()
    c.hello(cid)
    r = api.post(f"/v1/clients/{cid}/disconnect")
    assert r.status == 202 and r.body["disconnected"] is True, r
    c.expect_error_close("disconnected", 4000)
    ev = events_of(api, cid, 2)
    assert ev[0]["type"] == "disconnected" and ev[0]["reason"] == "disconnected_by_service"
    wait_until(lambda: not api.status(cid)["online"], what="offline after disconnect")
    r = api.post(f"/v1/clients/{cid}/disconnect")
    assert r.status == 404 and r.body["error"]["code"] == "not_found", r


def test_service_disconnect_without_reconnect(herald):
    api, cid = herald.api, new_cid()
    c = herald.ws()
    c.hello(cid)
    r = api.post(f"/v1/clients/{cid}/disconnect", {"reconnect": False})
    assert r.status == 202, r
    c.expect_error_close("disconnected_final", 4003)
    r = api.post(f"/v1/clients/{cid}/disconnect", {"reconnect": "no"})
    assert r.status == 400 and r.body["error"]["code"] == "bad_request", r


def test_events_limit(herald):
    api, cid = herald.api, new_cid()
    for _ in range(3):
        c = herald.ws()
        c.hello(cid)
        c.close()
    ev = events_of(api, cid, 6)
    assert [e["type"] for e in ev] == ["disconnected", "reconnected"] * 2 + ["disconnected", "connected"]
    assert api.events(cid, limit=2) == ev[:2]
    for bad in ("0", "1001", "x", "-1", "2.5"):
        r = api.get(f"/v1/clients/{cid}/events?limit={bad}")
        assert r.status == 400 and r.body["error"]["code"] == "bad_request", (bad, r)


def test_connection_dropped_without_close_frame(herald):
    api, cid = herald.api, new_cid()
    r = herald.raw()
    w = r.hello(cid)
    r.close()  # TCP gone, no close handshake
    ev = wait_until(lambda: [e for e in api.events(cid) if e["type"] == "disconnected"],
                    what="disconnected event")
    assert ev[0]["reason"] == "client_closed" and ev[0]["session"] == w["session"]
    assert api.status(cid)["online"] is False
    nid = api.notify(cid, "later")  # waits in the inbox for the next session
    c = herald.ws()
    c.hello(cid)
    assert c.recv_json()["id"] == nid
