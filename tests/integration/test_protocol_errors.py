"""Bad input on the client socket: every protocol violation gets an error frame with its code,
then a close with the fitting close code (reason = the code word). Also frame-level rules:
fragmentation, size limit, UTF-8, binary frames, frames split across TCP reads."""

import json
import time

import pytest

from herald_it import (OP_CONT, OP_PING, OP_PONG, OP_TEXT, build_frame, new_cid, wait_until)

def collect_frames(r, done, timeout=5.0):
    """Reads (opcode, payload) frames from a raw client until done(frames) or the deadline."""
    frames = []
    deadline = time.monotonic() + timeout
    while not done(frames):
        _, op, payload = r.recv_frame(max(0.0, deadline - time.monotonic()))
        frames.append((op, payload))
    return frames


def has_welcome(frames):
    return any(op == OP_TEXT and json.loads(p)["type"] == "welcome" for op, p in frames)


BAD_FIRST_FRAMES = [
    pytest.param("{not json", "invalid_json", id="malformed-json"),
    pytest.param("", "invalid_json", id="empty"),
    pytest.param("[1,2]", "bad_request", id="array"),
    pytest.param('"hello"', "bad_request", id="string"),
    pytest.param("{}", "bad_request", id="no-type"),
    pytest.param('{"type":5}', "bad_request", id="type-not-string"),
    pytest.param('{"type":"subscribe","client_id":"u1"}', "unknown_type", id="unknown-type"),
    pytest.param('{"type":"hello"}', "bad_request", id="hello-no-client-id"),
    pytest.param('{"type":"hello","client_id":42}', "bad_request", id="hello-client-id-int"),
    pytest.param('{"type":"hello","client_id":"u1","token":7}', "bad_request", id="hello-token-int"),
    pytest.param('{"type":"hello","client_id":"u1","last_id":5}', "bad_request", id="hello-last-id-int"),
    pytest.param('{"type":"hello","client_id":"u1","last_id":"yesterday"}', "bad_request", id="hello-last-id-bad"),
    pytest.param('{"type":"hello","client_id":"bad id!"}', "invalid_client_id", id="client-id-charset"),
    pytest.param('{"type":"hello","client_id":""}', "invalid_client_id", id="client-id-empty"),
    pytest.param(json.dumps({"type": "hello", "client_id": "a" * 129}), "invalid_client_id", id="client-id-129"),
    pytest.param('{"clientId":"bad/id"}', "invalid_client_id", id="legacy-client-id-charset"),
    pytest.param('{"clientId":3}', "bad_request", id="legacy-client-id-int"),
    pytest.param('{"type":"ack","id":"1-0"}', "hello_required", id="ack-before-hello"),
    pytest.param('{"type":"ack"}', "bad_request", id="ack-no-id"),
]


@pytest.mark.parametrize("frame,code", BAD_FIRST_FRAMES)
def test_bad_first_frame_closes_1008(herald, frame, code):
    c = herald.ws()
    c.send(frame)
    c.expect_error_close(code, 1008)


@pytest.mark.parametrize("frame,code", [
    pytest.param('{"type":"hello","client_id":"other"}', "duplicate_hello", id="second-hello"),
    pytest.param('{"clientId":"other"}', "duplicate_hello", id="second-legacy-hello"),
    pytest.param('{"type":"ack","id":"abc"}', "bad_request", id="ack-id-malformed"),
    pytest.param('{"type":"ack","id":1}', "bad_request", id="ack-id-int"),
    pytest.param('{"type":"bye"}', "unknown_type", id="unknown-type"),
    pytest.param("nope", "invalid_json", id="malformed-json"),
])
def test_bad_frame_after_hello_closes_1008_and_is_recorded(herald, frame, code):
    api, cid = herald.api, new_cid()
    c = herald.ws()
    w = c.hello(cid)
    c.send(frame)
    c.expect_error_close(code, 1008)
    ev = wait_until(lambda: [e for e in api.events(cid) if e["type"] == "disconnected"],
                    what="disconnected event")
    assert ev[0]["reason"] == "protocol_error" and ev[0]["session"] == w["session"]
    wait_until(lambda: not api.status(cid)["online"], what="offline")


def test_ack_of_an_id_never_sent_closes_1008(herald):
    api, cid = herald.api, new_cid()
    ids = [api.notify(cid, n) for n in range(2)]
    c = herald.ws()
    c.hello(cid)
    assert [m["id"] for m in c.recv_notifications(2)] == ids
    ms, seq = ids[-1].split("-")
    c.ack(f"{ms}-{int(seq) + 1}")  # newer than the newest sent
    c.expect_error_close("unknown_ack_id", 1008)
    assert api.pending(cid) == 2  # the bad ack trimmed nothing


def test_ack_when_nothing_was_sent_closes_1008(herald):
    c = herald.ws()
    c.hello(new_cid())
    c.ack("1700000000000-0")
    c.expect_error_close("unknown_ack_id", 1008)


def test_client_id_of_128_characters_is_accepted(herald):
    cid = "aZ0._-@:" * 16
    assert len(cid) == 128
    c = herald.ws()
    c.hello(cid)
    nid = herald.api.notify(cid, 1)
    assert c.recv_json()["id"] == nid


def test_invalid_utf8_text_frame_closes_1007(herald):
    r = herald.raw()
    r.send_frame(OP_TEXT, b'{"type":"hello","client_id":"u\xff1"}')
    r.expect_error_close("invalid_utf8", 1007)


def test_invalid_utf8_across_fragments_closes_1007(herald):
    r = herald.raw()
    r.hello(new_cid())
    r.send_frame(OP_TEXT, b'{"type":"ack","id":"\xe2\x82', fin=False)  # a code point cut in two...
    r.send_frame(OP_CONT, b'"}', fin=True)  # ...whose end never comes
    r.expect_error_close("invalid_utf8", 1007)


def test_binary_frame_closes_1003(herald):
    c = herald.ws()
    c.hello(new_cid())
    c.send(b'{"type":"ack","id":"1-0"}')
    c.expect_error_close("unsupported_data", 1003)


def test_binary_frame_before_hello_closes_1003(herald):
    c = herald.ws()
    c.send(b"\x00\x01")
    c.expect_error_close("unsupported_data", 1003)


def test_oversize_frame_closes_1009_by_default_limit(herald):
    c = herald.ws()
    c.hello(new_cid())
    c.send(json.dumps({"type": "ack", "id": "1-0", "pad": "x" * 65536}))
    c.expect_error_close("message_too_big", 1009)


def test_max_message_bytes_is_the_exact_limit(herald_factory):
    h = herald_factory(max_message_bytes=1024)
    api, cid = h.api, new_cid()
    base = {"type": "hello", "client_id": cid, "pad": ""}
    at_limit = json.dumps({**base, "pad": "x" * (1024 - len(json.dumps(base)))})
    assert len(at_limit) == 1024
    c = h.ws()
    c.send(at_limit)
    assert c.recv_json()["type"] == "welcome"
    nid = api.notify(cid, "fits")
    assert c.recv_json()["id"] == nid
    c2 = h.ws()
    c2.send(json.dumps({**base, "pad": "x" * (1025 - len(json.dumps(base)))}))
    c2.expect_error_close("message_too_big", 1009)


def test_fragmented_message_over_the_limit_closes_1009(herald_factory):
    h = herald_factory(max_message_bytes=1024)
    r = h.raw()
    r.send_frame(OP_TEXT, b'{"type":"hello","client_id":"u1","pad":"' + b"x" * 600, fin=False)
    r.send_frame(OP_CONT, b"x" * 600 + b'"}', fin=True)
    r.expect_error_close("message_too_big", 1009)


def test_fragmented_hello_with_a_ping_in_between_is_accepted(herald):
    cid = new_cid()
    msg = json.dumps({"type": "hello", "client_id": cid}).encode()
    r = herald.raw()
    r.send_frame(OP_TEXT, msg[:5], fin=False)
    r.send_frame(OP_PING, b"between")
    r.send_frame(OP_CONT, msg[5:12], fin=False)
    r.send_frame(OP_CONT, msg[12:], fin=True)
    frames = collect_frames(r, lambda f: has_welcome(f) and (OP_PONG, b"between") in f)
    assert (OP_PONG, b"between") in frames, frames  # the control frame is answered mid-message
    (welcome,) = [json.loads(p) for op, p in frames if op == OP_TEXT]
    assert welcome["type"] == "welcome"
    nid = herald.api.notify(cid, "ok")
    assert r.recv_json()["id"] == nid


def test_continuation_without_a_message_is_a_protocol_error(herald):
    r = herald.raw()
    r.send_frame(OP_CONT, b"orphan", fin=True)
    r.expect_error_close("websocket_protocol", 1002)


def test_unmasked_client_frame_is_a_protocol_error(herald):
    r = herald.raw()
    r.send_frame(OP_TEXT, b'{"type":"hello","client_id":"u1"}', mask=False)
    r.expect_error_close("websocket_protocol", 1002)


def _frame_split_in_three_reads_gets_answered(h):
    """One text frame (a hello) sent in three TCP segments, each read by the server on its own."""
    cid = new_cid()
    frame = build_frame(OP_TEXT, json.dumps({"type": "hello", "client_id": cid, "pad": "x" * 200}))
    r = h.raw()
    # The pauses only make the kernel hand the server the frame in three separate reads (what a
    # slow network does); nothing is synchronised on them: the outcome is read from the socket.
    r.send_raw(frame[:40])
    time.sleep(0.15)
    r.send_raw(frame[40:120])
    time.sleep(0.15)
    r.send_raw(frame[120:])
    return r.recv_json(timeout=3), cid


# Regression guards for Decoder::feed's handling of a frame carried over between reads (tail_):
# it used to spin forever when the second read did not complete the frame, and to drop the frames
# that followed in the read that did.
def test_frame_split_across_three_tcp_reads(herald):
    try:
        welcome, cid = _frame_split_in_three_reads_gets_answered(herald)
    except BaseException:
        herald.kill()  # its loop thread may be spinning: a clean stop cannot work
        raise
    assert welcome["type"] == "welcome"
    nid = herald.api.notify(cid, "after a split hello")
    assert herald.clients[-1].recv_json()["id"] == nid


def test_frame_completed_in_the_same_read_as_the_next_frame(herald):
    cid = new_cid()
    hello = build_frame(OP_TEXT, json.dumps({"type": "hello", "client_id": cid, "pad": "x" * 200}))
    r = herald.raw()
    r.send_raw(hello[:60])
    time.sleep(0.15)  # only so that the server reads the first part on its own (see above)
    r.send_raw(hello[60:] + build_frame(OP_PING, b"after"))
    frames = collect_frames(r, lambda f: has_welcome(f) and (OP_PONG, b"after") in f, timeout=3)
    assert has_welcome(frames) and (OP_PONG, b"after") in frames, frames


def test_too_many_connections_closes_1013(herald_factory):
    h = herald_factory(max_connections=2)
    api = h.api
    a, b = h.ws(), h.ws()
    a.hello(new_cid())
    b.hello(new_cid())
    c = h.ws()
    c.expect_error_close("too_many_connections", 1013)
    a.close()
    wait_until(lambda: api.metrics()["herald_connections"] == 1, what="a slot to free up")
    d = h.ws()
    cid = new_cid()
    d.hello(cid)
    nid = api.notify(cid, "fits again")
    assert d.recv_json()["id"] == nid
    assert api.metrics()['herald_errors_total{code="too_many_connections"}'] == 1


FRAME_LEVEL_FAILURES = [
    pytest.param(lambda r: r.send_frame(OP_TEXT, b"\xff"), "invalid_utf8", 1007, id="invalid-utf8"),
    pytest.param(lambda r: r.send_frame(OP_TEXT, b"x" * 70000), "message_too_big", 1009, id="too-big"),
    pytest.param(lambda r: r.send_frame(OP_CONT, b"x"), "websocket_protocol", 1002, id="protocol"),
]


def test_json_error_then_close_reply_ends_the_connection_at_once(herald):
    # The reference for the two tests below: after a message-level error the client's close
    # reply completes the close handshake and the server drops the TCP connection right away.
    r = herald.raw()
    r.hello(new_cid())
    r.send_text("nope")
    r.expect_error_close("invalid_json", 1008)
    r.send_frame(0x8, b"\x03\xf0")  # close 1008
    r.wait_eof(timeout=1.0)
    assert herald.api.metrics()['herald_errors_total{code="invalid_json"}'] == 1


@pytest.mark.parametrize("violate,word,code", FRAME_LEVEL_FAILURES)
def test_frame_level_failure_then_close_reply_ends_the_connection_at_once(herald, violate, word, code):
    r = herald.raw()
    r.hello(new_cid())
    violate(r)
    r.expect_error_close(word, code)
    r.send_frame(0x8, code.to_bytes(2, "big"))
    r.wait_eof(timeout=1.0)


@pytest.mark.parametrize("violate,word,code", FRAME_LEVEL_FAILURES)
def test_one_frame_level_failure_counts_one_error(herald, violate, word, code):
    r = herald.raw()
    r.hello(new_cid())
    violate(r)
    r.expect_error_close(word, code)
    r.send_frame(0x8, code.to_bytes(2, "big"))
    r.close()
    wait_until(lambda: herald.api.metrics()["herald_connections"] == 0, timeout=6, what="session gone")
    assert herald.api.metrics()[f'herald_errors_total{{code="{word}"}}'] == 1
