"""Order under concurrency: several services post to one client at once; the client must see
every accepted id exactly once, strictly increasing — whether it is online throughout, connects
in the middle (replay + live), or drops and resumes with last_id in the middle."""

import threading

from herald_it import id_key, new_cid, wait_until

POSTERS = 4
PER_POSTER = 125
TOTAL = POSTERS * PER_POSTER


class Posters:
    """POSTERS threads, each posting PER_POSTER notifications on its own keep-alive connection."""

    def __init__(self, api, cid):
        self.api, self.cid = api, cid
        self.accepted = {}  # id -> (poster, k)
        self.count = 0
        self.errors = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(p,), daemon=True) for p in range(POSTERS)]

    def run(self, p):
        conn = self.api.conn(timeout=10)
        last = None
        try:
            for k in range(PER_POSTER):
                r = self.api.post("/v1/notifications", {"client_id": self.cid, "data": {"p": p, "k": k}}, conn=conn)
                assert r.status == 202, r
                i = r.body["id"]
                assert last is None or id_key(i) > id_key(last), (last, i)  # one poster's ids increase
                last = i
                with self.lock:
                    assert i not in self.accepted, i
                    self.accepted[i] = (p, k)
                    self.count += 1
        except BaseException as e:  # reported by join()
            self.errors.append(e)
        finally:
            conn.close()

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def posted(self):
        with self.lock:
            return self.count

    def join(self):
        for t in self.threads:
            t.join(30)
            assert not t.is_alive(), "a poster is stuck"
        assert not self.errors, self.errors
        assert len(self.accepted) == TOTAL


def check_stream(received, posters):
    ids = [m["id"] for m in received]
    keys = [id_key(i) for i in ids]
    assert all(a < b for a, b in zip(keys, keys[1:])), "ids not strictly increasing"
    assert sorted(ids, key=id_key) == sorted(posters.accepted, key=id_key), "missing or extra ids"
    for m in received:
        p, k = posters.accepted[m["id"]]
        assert m["data"] == {"p": p, "k": k}, m


def test_concurrent_posters_online_client(herald):
    api, cid = herald.api, new_cid()
    c = herald.ws()
    c.hello(cid)
    posters = Posters(api, cid).start()
    received = c.recv_notifications(TOTAL, timeout=30)
    posters.join()
    check_stream(received, posters)
    marker = api.notify(cid, "end")  # nothing else was queued behind the 500
    assert c.recv_json()["id"] == marker


def test_concurrent_posters_client_connects_midstream(herald):
    api, cid = herald.api, new_cid()
    posters = Posters(api, cid).start()
    wait_until(lambda: posters.posted() >= TOTAL // 5, timeout=10, what="some notifications stored")
    c = herald.ws()
    c.hello(cid)
    received = []
    while len(received) < TOTAL:
        received += c.recv_notifications(1, timeout=30)
        if len(received) % 100 == 0:
            c.ack(received[-1]["id"])  # acks interleaved with replay and live delivery
    posters.join()
    check_stream(received, posters)
    wait_until(lambda: api.pending(cid) == 0, what="all acked")


def test_concurrent_posters_client_resumes_midstream(herald):
    api, cid = herald.api, new_cid()
    posters = Posters(api, cid).start()
    c = herald.ws()
    c.hello(cid)
    first = c.recv_notifications(TOTAL // 3, timeout=30)
    c.close()  # gone without acking; resumes below with last_id
    c2 = herald.ws()
    c2.hello(cid, last_id=first[-1]["id"])
    rest = c2.recv_notifications(TOTAL - len(first), timeout=30)
    posters.join()
    check_stream(first + rest, posters)
    marker = api.notify(cid, "end")
    assert c2.recv_json()["id"] == marker


def test_concurrent_posters_takeover_midstream(herald):
    api, cid = herald.api, new_cid()
    posters = Posters(api, cid).start()
    old = herald.ws()
    old.hello(cid)
    old.recv_notifications(TOTAL // 4, timeout=30)  # never acked
    new = herald.ws()
    new.hello(cid)  # takes over: replay of everything unacked, then live
    received = new.recv_notifications(TOTAL, timeout=30)
    posters.join()
    check_stream(received, posters)
    old.expect_error_close("taken_over", 4001, timeout=10)
