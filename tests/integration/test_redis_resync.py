"""Found by the chaos test (tests/chaos/): a notification stored while an instance's subscriber was
away from Redis (Redis restarted, the instance had not resubscribed yet) was published to nobody.
The client, still connected to that instance, got it only when a later notification for it showed
the gap, or when it reconnected: an online client could wait for ever. Now every live session
reads its inbox again once the instance is subscribed again."""

import os
import signal

from herald_it import new_cid
from redis_it import heralds, redis_persistent, redis_server, route_in_redis, wait_ready  # noqa: F401  (fixtures)


def test_a_notification_published_while_the_subscriber_was_away_reaches_the_online_client(
        redis_persistent, heralds):
    a, b = heralds.start_many("A", "B")
    redis = heralds.redis
    cid = new_cid("resync")
    ws = a.ws()
    w = ws.hello(cid)
    first = b.api.post("/v1/notifications", {"client_id": cid, "data": {"n": 1}})
    assert first.status == 202 and first.body["client_online"] is True, first
    (n1,) = ws.recv_notifications(1)
    assert n1["id"] == first.body["id"]

    # A is frozen while Redis dies and comes back from its AOF, so A's subscriber is still gone
    # when B, already back, stores the next notification and publishes it to A's channel.
    os.kill(a.proc.pid, signal.SIGSTOP)
    try:
        redis.stop(signal.SIGKILL)
        redis.start()
        wait_ready(b, timeout=15)
        second = b.api.post("/v1/notifications", {"client_id": cid, "data": {"n": 2}})
        assert second.status == 202, second
        assert second.body["client_online"] is False, second  # nobody listened on A's channel
    finally:
        os.kill(a.proc.pid, signal.SIGCONT)
    wait_ready(a, timeout=15)
    assert route_in_redis(redis, cid) == f"A:{w['session']}"

    # Nothing else is posted and the client stays on its connection: it still gets it.
    (n2,) = ws.recv_notifications(1, timeout=10)
    assert n2["id"] == second.body["id"] and n2["data"] == {"n": 2}
    assert a.api.pending(cid) == 2  # nothing acked: both wait in the inbox until the client acks


def test_a_notification_published_while_redis_dropped_the_subscriber_reaches_the_online_client(heralds):
    """Only the subscriber's connection goes (Redis drops a subscriber over its output-buffer
    limit, or a blip): the per-loop connections stay up, so only the resubscription can tell the
    sessions to look at their inboxes."""
    a, b = heralds.start_many("A", "B")
    redis = heralds.redis
    cid = new_cid("drop")
    ws = a.ws()
    ws.hello(cid)
    os.kill(a.proc.pid, signal.SIGSTOP)
    try:
        assert redis.cmd("CLIENT", "KILL", "TYPE", "pubsub") == 2  # A's and B's subscribers
        r = b.api.post("/v1/notifications", {"client_id": cid, "data": {"n": 1}})
        assert r.status == 202 and r.body["client_online"] is False, r  # A's channel: nobody
    finally:
        os.kill(a.proc.pid, signal.SIGCONT)
    (n,) = ws.recv_notifications(1, timeout=10)
    assert n["id"] == r.body["id"] and n["data"] == {"n": 1}
