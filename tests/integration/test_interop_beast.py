"""Interop with Boost.Beast's WebSocket client (tests/interop/beast_client.cpp): Herald's own
framing and handshake against an independent implementation. The client sends its hello and its
ack as many small continuation frames, pings, reads notifications checking that ids strictly
increase, and closes with 1000; it prints one JSON line saying how it went.

The client binary: $BEAST_CLIENT, else build/tests/beast_interop_client."""

import json
import os
import subprocess

import pytest

from herald_it import REPO, id_key, new_cid, wait_until

CLIENT_TIMEOUT_S = 40  # the client's own watchdog is 30 s


def beast_client():
    b = os.environ.get("BEAST_CLIENT") or os.path.join(REPO, "build", "tests", "beast_interop_client")
    b = os.path.abspath(b)
    if not os.access(b, os.X_OK):
        pytest.fail(f"beast_interop_client not found at {b} (build it, or set BEAST_CLIENT)", pytrace=False)
    return b


_clients = []


@pytest.fixture(autouse=True)
def _reap_clients():
    """A client a failed test left running is killed, never orphaned."""
    yield
    while _clients:
        p = _clients.pop()
        if p.poll() is None:
            p.kill()
            p.wait(5)


def start_client(herald, cid, count):
    p = subprocess.Popen([beast_client(), str(herald.port), cid, str(count)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _clients.append(p)
    return p


def finish(proc):
    """Waits for the client and returns its JSON line, asserting it succeeded."""
    try:
        out, err = proc.communicate(timeout=CLIENT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"beast client hung\nstdout: {out}\nstderr: {err}", pytrace=False)
    lines = [line for line in out.splitlines() if line.strip()]
    assert proc.returncode == 0, f"beast client failed (rc={proc.returncode})\nstdout: {out}\nstderr: {err}"
    assert len(lines) == 1, out
    result = json.loads(lines[0])
    assert result["ok"] is True, result
    return result


def run_client(herald, cid, count):
    return finish(start_client(herald, cid, count))


def test_replay_of_stored_notifications(herald):
    api, cid = herald.api, new_cid("beast")
    ids = [api.notify(cid, {"n": i, "text": "x" * (i * 7)}) for i in range(50)]
    assert api.pending(cid) == 50

    r = run_client(herald, cid, 50)
    assert r["received"] == 50
    assert r["last_id"] == ids[-1]
    assert r["pongs"] >= 1 and r["close_code"] == 1000

    # The fragmented ack was understood: the inbox is empty.
    wait_until(lambda: api.pending(cid) == 0, what="pending 0 after the beast client's ack")
    status = api.status(cid)
    assert status["online"] is False
    events = api.events(cid)
    assert [e["type"] for e in events][:2] == ["disconnected", "connected"], events
    assert events[0]["reason"] == "client_closed", events[0]


def test_live_delivery(herald):
    """The client connects first; notifications arrive while it is reading."""
    api, cid = herald.api, new_cid("beast")
    proc = start_client(herald, cid, 100)
    wait_until(lambda: api.status(cid)["online"], what="beast client online")
    ids = [api.notify(cid, {"n": i}) for i in range(100)]
    assert [id_key(i) for i in ids] == sorted(id_key(i) for i in ids)
    r = finish(proc)
    assert r["received"] == 100 and r["last_id"] == ids[-1]
    wait_until(lambda: api.pending(cid) == 0, what="pending 0 after the ack")


def test_replay_then_live(herald):
    api, cid = herald.api, new_cid("beast")
    stored = [api.notify(cid, {"stored": i}) for i in range(20)]
    proc = start_client(herald, cid, 40)
    wait_until(lambda: api.status(cid)["online"], what="beast client online")
    live = [api.notify(cid, {"live": i}) for i in range(20)]
    r = finish(proc)
    assert r["received"] == 40
    assert r["last_id"] == live[-1]
    assert id_key(stored[-1]) < id_key(live[0])
    wait_until(lambda: api.pending(cid) == 0, what="pending 0 after the ack")


def test_hello_ping_close_only(herald):
    api, cid = herald.api, new_cid("beast")
    r = run_client(herald, cid, 0)
    assert r["received"] == 0 and r["close_code"] == 1000 and r["pongs"] >= 1
    wait_until(lambda: api.status(cid)["online"] is False, what="offline after the close")
