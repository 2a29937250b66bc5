"""Delivery: online, offline + replay, resume, acks, non-durable, idempotency, batch, ttl,
inbox bound, legacy clients and the legacy notify call."""

import time

from herald_it import id_key, new_cid, wait_until


def assert_increasing(ids):
    keys = [id_key(i) for i in ids]
    assert keys == sorted(keys) and len(set(keys)) == len(keys), ids


def test_online_delivery(herald):
    api, cid = herald.api, new_cid()
    c = herald.ws()
    w = c.hello(cid)
    assert set(w) == {"type", "session", "instance", "heartbeat_ms"}
    assert w["heartbeat_ms"] == 20000 and w["session"] and w["instance"]

    data = {"title": "héllo ✓", "n": [1, 2.5, None, True], "nested": {"a": "b"}}
    before = int(time.time() * 1000)
    r = api.post("/v1/notifications", {"client_id": cid, "data": data})
    assert r.status == 202, r
    assert r.body["client_online"] is True and "dropped" not in r.body and "duplicate" not in r.body
    m = c.recv_json()
    assert m["type"] == "notification" and m["id"] == r.body["id"] and m["data"] == data
    assert set(m) == {"type", "id", "data", "ts"}
    assert before - 5000 <= m["ts"] <= int(time.time() * 1000) + 5000

    st = api.status(cid)
    assert st["online"] is True and st["session"] == w["session"] and st["instance"] == w["instance"]
    assert isinstance(st["connected_at"], int) and isinstance(st["last_seen"], int)
    assert st["pending"] == 1  # delivered, not acked


def test_offline_then_connect_replays_in_order(herald):
    api, cid = herald.api, new_cid()
    results = [api.post("/v1/notifications", {"client_id": cid, "data": {"n": n}}) for n in range(5)]
    assert all(r.status == 202 and r.body["client_online"] is False for r in results), results
    ids = [r.body["id"] for r in results]
    assert_increasing(ids)
    st = api.status(cid)
    assert st["online"] is False and st["pending"] == 5 and st["session"] is None

    c = herald.ws()
    c.hello(cid)
    got = c.recv_notifications(5)
    assert [m["id"] for m in got] == ids
    assert [m["data"] for m in got] == [{"n": n} for n in range(5)]
    # Live ones follow the replay in the same order.
    nid = api.notify(cid, {"n": 5})
    assert c.recv_json()["id"] == nid
    assert id_key(nid) > id_key(ids[-1])


def test_resume_with_last_id_skips_what_was_had(herald):
    api, cid = herald.api, new_cid()
    ids = [api.notify(cid, {"n": n}) for n in range(4)]
    c = herald.ws()
    c.hello(cid, last_id=ids[1])
    got = c.recv_notifications(2)
    assert [m["id"] for m in got] == ids[2:]
    # last_id says the client processed everything up to it: that part is trimmed.
    wait_until(lambda: api.pending(cid) == 2, what="pending == 2 after hello with last_id")
    marker = api.notify(cid, "marker")
    assert c.recv_json()["id"] == marker  # nothing else was replayed before it


def test_acks_trim_pending_cumulatively(herald):
    api, cid = herald.api, new_cid()
    ids = [api.notify(cid, n) for n in range(3)]
    c = herald.ws()
    c.hello(cid)
    assert [m["id"] for m in c.recv_notifications(3)] == ids
    assert api.pending(cid) == 3
    c.ack(ids[0])
    wait_until(lambda: api.pending(cid) == 2, what="pending 2 after ack of the first")
    c.ack(ids[2])  # cumulative: covers ids[1] too
    wait_until(lambda: api.pending(cid) == 0, what="pending 0 after ack of the last")
    c.ack(ids[1])  # an older ack, already covered: ignored, the session stays
    nid = api.notify(cid, "after")
    assert c.recv_json()["id"] == nid
    # A reconnecting client gets only what it did not ack.
    c.close()
    wait_until(lambda: not api.status(cid)["online"], what="offline")
    c2 = herald.ws()
    c2.hello(cid)
    assert c2.recv_json()["id"] == nid


def test_delete_pending(herald):
    api, cid = herald.api, new_cid()
    for n in range(3):
        api.notify(cid, n)
    r = api.delete(f"/v1/clients/{cid}/pending")
    assert r.status == 200 and r.body["deleted"] == 3, r
    assert api.pending(cid) == 0
    assert api.delete(f"/v1/clients/{cid}/pending").body["deleted"] == 0
    c = herald.ws()
    c.hello(cid)
    marker = api.notify(cid, "marker")
    assert c.recv_json()["id"] == marker


def test_non_durable_online_is_delivered_without_id(herald):
    api, cid = herald.api, new_cid()
    c = herald.ws()
    c.hello(cid)
    r = api.post("/v1/notifications", {"client_id": cid, "data": {"flash": 1}, "durable": False})
    assert r.status == 202 and r.body == {"client_online": True}, r
    m = c.recv_json()
    assert m["type"] == "notification" and m["data"] == {"flash": 1} and "id" not in m
    assert isinstance(m["ts"], int)
    assert api.pending(cid) == 0


def test_non_durable_offline_is_dropped(herald):
    api, cid = herald.api, new_cid()
    r = api.post("/v1/notifications", {"client_id": cid, "data": "gone", "durable": False})
    assert r.status == 202 and r.body == {"client_online": False, "dropped": True}, r
    assert api.pending(cid) == 0
    c = herald.ws()
    c.hello(cid)
    marker = api.notify(cid, "marker")
    m = c.recv_json()
    assert m["id"] == marker and m["data"] == "marker"


def test_idempotency_key_repeats_the_same_id(herald):
    api, cid = herald.api, new_cid()
    body = {"client_id": cid, "data": {"x": 1}, "idempotency_key": "order-42"}
    r1 = api.post("/v1/notifications", body)
    r2 = api.post("/v1/notifications", {**body, "data": {"x": 2}})
    assert r1.status == 202 and r2.status == 202
    assert "duplicate" not in r1.body
    assert r2.body["id"] == r1.body["id"] and r2.body["duplicate"] is True
    assert api.pending(cid) == 1
    # Another key, or the same key for another client, is a new notification.
    r3 = api.post("/v1/notifications", {**body, "idempotency_key": "order-43"})
    assert r3.status == 202 and r3.body["id"] != r1.body["id"] and "duplicate" not in r3.body
    other = new_cid()
    r4 = api.post("/v1/notifications", {**body, "client_id": other})
    assert r4.status == 202 and "duplicate" not in r4.body
    assert api.pending(cid) == 2 and api.pending(other) == 1

    c = herald.ws()
    c.hello(cid)
    got = c.recv_notifications(2)
    assert [m["id"] for m in got] == [r1.body["id"], r3.body["id"]]
    assert got[0]["data"] == {"x": 1}  # the first one stored wins
    m = herald.api.metrics()
    assert m['herald_notifications_total{outcome="duplicate"}'] == 1


def test_batch_with_valid_and_invalid_items(herald):
    api, cid = herald.api, new_cid()
    r = api.post("/v1/notifications/batch", {"notifications": [
        {"client_id": cid, "data": 1},
        {"client_id": "bad id!", "data": 2},
        {"client_id": cid},
        "not an object",
        {"client_id": cid, "data": 3, "ttl_s": 0},
        {"client_id": cid, "data": 4, "durable": False},
        {"client_id": cid, "data": 5},
    ]})
    assert r.status == 200, r
    res = r.body["results"]
    assert [x["status"] for x in res] == [202, 400, 400, 400, 400, 202, 202], res
    assert [x.get("error", {}).get("code") for x in res] == [
        None, "invalid_client_id", "bad_request", "bad_request", "bad_request", None, None]
    assert res[5] == {"status": 202, "client_online": False, "dropped": True}
    assert res[0]["client_online"] is False and res[6]["client_online"] is False
    assert id_key(res[0]["id"]) < id_key(res[6]["id"])
    assert api.pending(cid) == 2
    c = herald.ws()
    c.hello(cid)
    got = c.recv_notifications(2)
    assert [(m["id"], m["data"]) for m in got] == [(res[0]["id"], 1), (res[6]["id"], 5)]


def test_batch_delivers_to_online_clients(herald):
    api, a, b = herald.api, new_cid(), new_cid()
    ca, cb = herald.ws(), herald.ws()
    ca.hello(a)
    cb.hello(b)
    r = api.post("/v1/notifications/batch", {"notifications": [
        {"client_id": a, "data": "a1"}, {"client_id": b, "data": "b1"}, {"client_id": a, "data": "a2"}]})
    assert r.status == 200 and all(x["status"] == 202 and x["client_online"] for x in r.body["results"]), r
    ids = [x["id"] for x in r.body["results"]]
    assert [(m["id"], m["data"]) for m in ca.recv_notifications(2)] == [(ids[0], "a1"), (ids[2], "a2")]
    assert [(m["id"], m["data"]) for m in cb.recv_notifications(1)] == [(ids[1], "b1")]


def test_batch_refuses_bad_envelopes(herald_factory):
    h = herald_factory(max_batch=2)
    api = h.api
    for body in ({}, {"notifications": {}}, {"notifications": []}, [1],
                 {"notifications": [{"client_id": "a", "data": 1}] * 3}):
        r = api.post("/v1/notifications/batch", body)
        assert r.status == 400 and r.body["error"]["code"] == "bad_request", (body, r)
    r = api.post("/v1/notifications/batch", raw=b"{oops", headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.body["error"]["code"] == "invalid_json", r


def test_ttl_expiry_is_not_delivered(herald):
    api, cid = herald.api, new_cid()
    short = api.notify(cid, "short-lived", ttl_s=1)
    keep = api.notify(cid, "kept")
    assert api.pending(cid) == 2
    wait_until(lambda: api.pending(cid) == 1, timeout=5, what="the ttl_s=1 notification to expire")
    c = herald.ws()
    c.hello(cid)
    m = c.recv_json()
    assert m["id"] == keep and m["id"] != short and m["data"] == "kept"
    wait_until(lambda: herald.api.metrics()['herald_notifications_total{outcome="expired"}'] == 1,
               what="expired counter")


def test_inbox_max_keeps_the_newest(herald_factory):
    h = herald_factory(inbox_max=3)
    api, cid = h.api, new_cid()
    ids = [api.notify(cid, {"n": n}) for n in range(5)]
    assert api.pending(cid) == 3
    assert h.api.metrics()['herald_notifications_total{outcome="evicted"}'] == 2
    c = h.ws()
    c.hello(cid)
    got = c.recv_notifications(3)
    assert [m["id"] for m in got] == ids[2:]
    assert [m["data"]["n"] for m in got] == [2, 3, 4]
    marker = api.notify(cid, "marker")
    assert c.recv_json()["id"] == marker


def test_legacy_client_gets_bare_data_and_counts_as_acked(herald):
    api, cid = herald.api, new_cid()
    ids = [api.notify(cid, {"n": n}) for n in range(2)]
    c = herald.ws()
    c.send_json({"clientId": cid})
    # No welcome: the bare data of each notification, in order.
    assert c.recv_json() == {"n": 0}
    assert c.recv_json() == {"n": 1}
    wait_until(lambda: api.pending(cid) == 0, what="legacy deliveries to count as acked")
    st = api.status(cid)
    assert st["online"] is True
    api.notify(cid, [1, "two"])
    assert c.recv_json() == [1, "two"]
    wait_until(lambda: api.pending(cid) == 0, what="live legacy delivery to count as acked")
    r = api.post("/v1/notifications", {"client_id": cid, "data": "flash", "durable": False})
    assert r.body == {"client_online": True}
    assert c.recv_json() == "flash"
    assert ids  # ids were issued even though the legacy client never sees them


def test_legacy_notify_endpoint(herald):
    api, cid = herald.api, new_cid()
    r = api.post("/notify", {"clientId": cid, "data": {"legacy": True}})
    assert r.status == 202 and isinstance(r.body["id"], str) and r.body["client_online"] is False, r
    assert api.pending(cid) == 1  # durable
    c = herald.ws()
    c.hello(cid)
    m = c.recv_json()
    assert m["id"] == r.body["id"] and m["data"] == {"legacy": True}
    # its own field names; the new ones are not accepted there
    bad = api.post("/notify", {"client_id": cid, "data": 1})
    assert bad.status == 400 and bad.body["error"]["code"] == "bad_request", bad
    bad = api.post("/notify", {"clientId": cid})
    assert bad.status == 400 and bad.body["error"]["code"] == "bad_request", bad
    bad = api.post("/notify", {"clientId": "no spaces", "data": 1})
    assert bad.status == 400 and bad.body["error"]["code"] == "invalid_client_id", bad
