"""Slow clients: a connection whose outgoing queue passes --max-queue-bytes is closed with 1013
(backpressure); nothing it did not acknowledge is lost."""

from herald_it import new_cid, wait_until

PAD = "x" * 1000


def test_client_that_never_reads_is_closed_and_nothing_is_lost(herald_factory):
    h = herald_factory(max_queue_bytes=4096, max_message_bytes=2048)
    api, cid = h.api, new_cid()
    slow = h.raw(rcvbuf=4096)  # says hello, then never reads again
    slow.hello(cid)

    conn = api.conn()
    ids = []
    try:
        # Post until the server gives up on the reader (kernel buffers fill first; bounded).
        while api.metrics()['herald_errors_total{code="backpressure"}'] == 0:
            assert len(ids) < 20000, "never hit backpressure"
            for _ in range(100):
                r = api.post("/v1/notifications", {"client_id": cid, "data": {"n": len(ids), "pad": PAD}}, conn=conn)
                assert r.status == 202, r
                ids.append(r.body["id"])
    finally:
        conn.close()

    # If the slow client reads now, it finds what was queued for it, in order, then why it is
    # being closed. (Read before the server's close timeout ends the TCP connection.)
    code, reason, frames = slow.expect_close(timeout=10)
    assert (code, reason) == (1013, "backpressure")
    assert frames[-1]["type"] == "error" and frames[-1]["code"] == "backpressure", frames[-1]
    queued = [f["id"] for f in frames[:-1]]
    assert queued and all(f["type"] == "notification" for f in frames[:-1])
    assert queued == ids[:len(queued)], "the queued notifications are a prefix of the accepted ones"
    slow.close()

    ev = wait_until(lambda: [e for e in api.events(cid) if e["type"] == "disconnected"], timeout=8,
                    what="the slow client to be closed")
    assert ev[0]["reason"] == "backpressure"
    assert api.metrics()['herald_disconnects_total{reason="backpressure"}'] == 1
    st = api.status(cid)
    assert st["online"] is False and st["pending"] == len(ids)  # every unacked one is kept

    # A client that reads gets all of them, in order, through the same small queue.
    c = h.ws()
    c.hello(cid)
    got = c.recv_notifications(len(ids), timeout=30)
    assert [m["id"] for m in got] == ids
    assert [m["data"]["n"] for m in got] == list(range(len(ids)))
    assert api.status(cid)["online"] is True
