"""Redis engine, several instances: delivery across instances, order under concurrent posts
through different instances (DESIGN §5 "order on the owner"), offline inboxes and resume."""

import itertools
import threading

from herald_it import id_key, new_cid, wait_until
from redis_it import Poster, heralds, redis_server, route_in_redis  # noqa: F401  (fixtures)


def strictly_increasing(ids):
    keys = [id_key(i) for i in ids]
    return all(x < y for x, y in zip(keys, keys[1:]))


def test_post_to_a_reaches_client_on_b_exactly_once(heralds):
    a, b = heralds.start_many("A", "B")
    cid = new_cid()
    c = b.ws()
    w = c.hello(cid)
    assert w["instance"] == "B"
    r = a.api.post("/v1/notifications", {"client_id": cid, "data": {"n": 1}})
    assert r.status == 202 and r.body["client_online"] is True, r
    (n,) = c.recv_notifications(1)
    assert n["id"] == r.body["id"] and n["data"] == {"n": 1} and isinstance(n["ts"], int)
    # Exactly once: the next frame is the next notification, not the first one again.
    id2 = a.api.notify(cid, {"n": 2})
    (n2,) = c.recv_notifications(1)
    assert n2["id"] == id2 and n2["data"] == {"n": 2}
    assert id_key(id2) > id_key(n["id"])


def _tagged(api, cid, tag, n):
    for k in range(n):
        yield api, cid, {"t": tag, "k": k}


def _posters(apis, cid, threads_per_api, per_thread):
    """threads_per_api threads per api, each posting per_thread notifications tagged (t, k)."""
    out = []
    for ai, api in enumerate(apis):
        for t in range(threads_per_api):
            tag = f"{ai}.{t}"
            items = [(api, cid, {"t": tag, "k": k}) for k in range(per_thread)]
            out.append(Poster(items, name=f"poster-{tag}"))
    return out


def _check_stream(received, posters):
    """received: notification frames in arrival order. Checks them against the 202 answers."""
    for p in posters:
        assert p.error is None, p.error
        bad = [r for r in p.results if r[1] != 202]
        assert not bad, bad[:5]
    accepted = [body["id"] for p in posters for _, body in p.accepted()]
    ids = [n["id"] for n in received]
    assert len(ids) == len(set(ids)), "duplicates delivered"
    assert strictly_increasing(ids), ids
    assert set(ids) == set(accepted), (sorted(set(accepted) - set(ids))[:5], sorted(set(ids) - set(accepted))[:5])
    # Each poster posts sequentially, so its own notifications arrive in its order.
    by_tag = {}
    for n in received:
        by_tag.setdefault(n["data"]["t"], []).append(n["data"]["k"])
    for tag, ks in by_tag.items():
        assert ks == sorted(ks), (tag, ks)


def test_concurrent_posts_through_a_and_b_arrive_in_order_on_c(heralds):
    a, b, c = heralds.start_many("A", "B", "C")
    cid = new_cid()
    ws = c.ws()
    ws.hello(cid)
    posters = _posters([a.api, b.api], cid, threads_per_api=2, per_thread=75)
    for p in posters:
        p.start()
    received = ws.recv_notifications(300, timeout=30)
    for p in posters:
        p.join(10)
        assert not p.is_alive()
    _check_stream(received, posters)
    for p in posters:
        assert all(body["client_online"] is True for _, body in p.accepted())


def test_concurrent_posts_while_the_client_connects_mid_stream(heralds):
    """The client connects while posts through A and B go on: what it gets is a replay of what
    was stored before its hello and live notifications after, with no gap and no duplicate."""
    a, b, c = heralds.start_many("A", "B", "C")
    cid = new_cid()
    stop = threading.Event()
    posters = []
    for ai, api in enumerate([a.api, b.api]):
        for t in range(2):
            tag = f"{ai}.{t}"
            items = _tagged(api, cid, tag, 5000)
            posters.append(Poster(items, stop=stop, name=f"poster-{tag}"))
    try:
        for p in posters:
            p.start()
        # Some are stored (offline) before the hello, so the session starts with a replay.
        wait_until(lambda: sum(p.count_202 for p in posters) >= 80, timeout=10, what="80 posts stored")
        ws = c.ws()
        ws.hello(cid)
        at_hello = sum(p.count_202 for p in posters)
        received = ws.recv_notifications(at_hello + 150, timeout=30)
        # Live posts went on during and after the replay.
        assert sum(p.count_202 for p in posters) > at_hello
    finally:
        stop.set()
        for p in posters:
            p.join(10)
    total = sum(p.count_202 for p in posters)
    received += ws.recv_notifications(total - len(received), timeout=15)
    _check_stream(received, posters)
    onl = [body["client_online"] for p in posters for _, body in p.accepted()]
    assert False in onl and True in onl


def test_offline_posts_to_a_and_b_replay_in_order_on_c_and_resume_with_last_id(heralds):
    a, b, c = heralds.start_many("A", "B", "C")
    cid = new_cid()
    ids = []
    for i, h in zip(range(40), itertools.cycle([a, b])):
        r = h.api.post("/v1/notifications", {"client_id": cid, "data": {"i": i}})
        assert r.status == 202 and r.body["client_online"] is False, r
        ids.append(r.body["id"])
    assert strictly_increasing(ids), ids
    assert a.api.pending(cid) == 40 and b.api.pending(cid) == 40

    ws = c.ws()
    ws.hello(cid)
    got = ws.recv_notifications(40)
    assert [n["id"] for n in got] == ids
    assert [n["data"]["i"] for n in got] == list(range(40))
    ws.close()
    wait_until(lambda: route_in_redis(heralds.redis, cid) is None, what="the C session to end")

    # Resume on A, having processed everything up to ids[19]: only the later ones come.
    ws2 = a.ws()
    ws2.hello(cid, last_id=ids[19])
    got2 = ws2.recv_notifications(20)
    assert [n["id"] for n in got2] == ids[20:]
    # Nothing else follows: the next frame is a notification posted now (through B).
    sentinel = b.api.notify(cid, {"sentinel": True})
    (n,) = ws2.recv_notifications(1)
    assert n["id"] == sentinel and n["data"] == {"sentinel": True}
    # last_id acknowledged everything up to it: 20 + the sentinel are pending.
    wait_until(lambda: b.api.pending(cid) == 21, what="pending == 21 after resume with last_id")


def test_idempotent_retry_through_another_instance_is_not_delivered_twice(heralds):
    """A service retries a notify (same idempotency key) and the load balancer sends the retry to
    another instance: same id, duplicate, and the online client does not get it again."""
    a, b, c = heralds.start_many("A", "B", "C")
    cid = new_cid()
    ws = c.ws()
    ws.hello(cid)
    body = {"client_id": cid, "data": {"order": 42}, "idempotency_key": "order-42"}
    r1 = a.api.post("/v1/notifications", body)
    assert r1.status == 202 and r1.body["client_online"] is True and "duplicate" not in r1.body, r1
    (n,) = ws.recv_notifications(1)
    assert n["id"] == r1.body["id"]
    r2 = b.api.post("/v1/notifications", body)
    assert r2.status == 202 and r2.body["id"] == r1.body["id"] and r2.body["duplicate"] is True, r2
    sentinel = b.api.notify(cid, {"sentinel": True})
    (n2,) = ws.recv_notifications(1)
    assert n2["id"] == sentinel
    assert a.api.pending(cid) == 2
