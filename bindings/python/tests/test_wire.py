"""A sluice channel against a raw socket peer: bytes a sluice peer never
sends (headers, odd encodings, unknown types, generic frames) arrive as the
documented callbacks, and typed sends put the specification's bytes on the
wire."""

from __future__ import annotations

import pytest

import sluice
from conftest import Recorder, pump, settle


def connect(raw_peer, **kw):
    rec = Recorder()
    ch = sluice.Channel("127.0.0.1", raw_peer.port, **rec.kwargs(), **kw)
    raw_peer.accept()
    pump(ch, until=lambda: rec.log == [("connect",)])
    rec.take()
    return ch, rec


def test_v1_worker_reads_what_engines_write(raw_peer):
    ch, rec = connect(raw_peer, dialect="v1")
    raw_peer.send(
        # heartbeat reply with the runtime's tracing headers (indexed, uint64 form)
        b"\x94\x01\x00\x90\x93" + b"".join(b"\xcf" + i.to_bytes(8, "big") for i in (80, 81, 82))
        # invoke with a str8 event name and a stored literal header, then a bin8 chunk and a str chunk
        + b"\x94\x02\x00\x91\xd9\x04http\x91\x93\xc3\xa4PING\xa1A"
        + b"\x93\x02\x00\x91\xc4\x03\x00\xff\x01"
        + b"\x93\x02\x00\x91\xa4ping"
        # unknown type on the control channel: dropped by the protocol → on_frame
        + b"\x93\x01\x07\x91\x2a"
        # error without a message, [[category, code]]
        + b"\x93\x02\x01\x91\x92\x0d\x02"
        # a late write on the finished channel 2 → on_frame
        + b"\x93\x02\x00\x91\xa4late"
        # a new channel not opened by invoke → on_frame
        + b"\x93\x05\x02\x90"
        # terminate with an engine error code (v1)
        + b"\x93\x01\x01\x92\x0c\xadslave is idle"
        # invalid UTF-8 in an event name survives (surrogateescape)
        + b"\x93\x06\x00\x91\xa2\xff\xfe"
    )
    pump(ch, until=lambda: len(rec.log) >= 10)
    assert rec.take() == [
        ("heartbeat",),
        ("invoke", 2, "http"),
        ("chunk", 2, b"\x00\xff\x01"),
        ("chunk", 2, b"ping"),
        ("frame", 1, 7, [42]),
        ("error", 2, 13, 2, None),
        ("frame", 2, 0, ["late"]),
        ("frame", 5, 2, []),
        ("terminate", 1, 12, "slave is idle"),
        ("invoke", 6, "\udcff\udcfe"),
    ]
    assert "\udcff\udcfe".encode("utf-8", "surrogateescape") == b"\xff\xfe"
    ch.close()


def test_v0_reads_every_type_and_reports_unknown_ones_as_frames(raw_peer):
    ch, rec = connect(raw_peer, dialect="v0")
    raw_peer.send(
        b"\x93\x01\x00\x90"  # heartbeat
        + b"\x93\x03\x01\x91\xa4http"  # invoke
        + b"\x93\x04\x01\x91\xa4ping"  # chunk
        + b"\x93\x05\x01\x92\xcd\x01\x9a\xa3bad"  # error(410, "bad")
        + b"\x93\x06\x01\x90"  # choke
        + b"\x93\x02\x00\x92\x01\xbbthe engine is shutting down"  # terminate
        + b"\x93\x09\x03\x92\xc0\xc3"  # unknown type 9 → on_frame with [None, True]
    )
    pump(ch, until=lambda: len(rec.log) >= 7)
    assert rec.take() == [
        ("heartbeat",),
        ("invoke", 1, "http"),
        ("chunk", 1, b"ping"),
        ("error", 1, None, 410, "bad"),
        ("choke", 1),
        ("terminate", 0, 1, "the engine is shutting down"),
        ("frame", 3, 9, [None, True]),
    ]
    ch.close()


def test_role_none_delivers_generic_frames_with_decoded_args(raw_peer):
    ch, rec = connect(raw_peer, dialect="v1", role=None)
    # A locator-style resolve answer: [[host, port], version, {id: name}].
    raw_peer.send(b"\x93\x01\x00\x93\x92\xa4node\xcd\x9d\x27\x01\x82\x00\xa4read\x01\xa5write")
    raw_peer.send(b"\x94\x01\x01\x92\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00\xc4\x02\x00\x01\x90")
    pump(ch, until=lambda: len(rec.log) >= 2)
    assert rec.take() == [
        ("frame", 1, 0, [["node", 40231], 1, {0: "read", 1: "write"}]),
        ("frame", 1, 1, [1.5, b"\x00\x01"]),
    ]
    ch.close()


@pytest.mark.parametrize(
    "dialect, send, expected",
    [
        ("v0", lambda c: c.send_handshake("6d0b"), b"\x93\x00\x00\x91\xa46d0b"),
        ("v0", lambda c: c.send_heartbeat(), b"\x93\x01\x00\x90"),
        ("v0", lambda c: c.send_terminate(1, "bye"), b"\x93\x02\x00\x92\x01\xa3bye"),
        ("v0", lambda c: c.send_invoke("http", 1), b"\x93\x03\x01\x91\xa4http"),
        ("v0", lambda c: c.send_chunk(1, b"ping"), b"\x93\x04\x01\x91\xa4ping"),
        ("v0", lambda c: c.send_error(1, 410, "no"), b"\x93\x05\x01\x92\xcd\x01\x9a\xa2no"),
        ("v0", lambda c: c.send_choke(1), b"\x93\x06\x01\x90"),
        ("v1", lambda c: c.send_handshake("6d0b"), b"\x93\x01\x00\x91\xa46d0b"),
        ("v1", lambda c: c.send_heartbeat(), b"\x93\x01\x00\x90"),
        ("v1", lambda c: c.send_terminate(1, "bye"), b"\x93\x01\x01\x92\x01\xa3bye"),
        ("v1", lambda c: c.send_chunk(2, b"pong"), b"\x93\x02\x00\x91\xa4pong"),
        ("v1", lambda c: c.send_error(2, 200, "no"), b"\x93\x02\x01\x92\x92\x2a\xcc\xc8\xa2no"),
        ("v1", lambda c: c.send_error(2, 5), b"\x93\x02\x01\x91\x92\x2a\x05"),
        ("v1", lambda c: c.send_choke(2), b"\x93\x02\x02\x90"),
        ("v1", lambda c: c.send_frame(7, 3, [1, "a", b"\x00", [None], {1: True}]), b"\x93\x07\x03\x95\x01\xa1a\xa1\x00\x91\xc0\x81\x01\xc3"),
        ("v1", lambda c: c.send(b"\x93\x01\x00\x90\x93\x01\x00\x90"), b"\x93\x01\x00\x90\x93\x01\x00\x90"),
    ],
)
def test_typed_sends_write_the_specified_bytes(raw_peer, dialect, send, expected):
    ch, _ = connect(raw_peer, dialect=dialect)
    send(ch)
    assert raw_peer.recv_exactly(len(expected)) == expected
    ch.close()


def test_send_invoke_picks_the_next_session(raw_peer):
    ch, _ = connect(raw_peer, dialect="v1", role="engine")
    assert ch.next_session() == 2
    s = ch.send_invoke("a")
    assert s == 2 and ch.next_session() == 3
    assert raw_peer.recv_exactly(6) == b"\x93\x02\x00\x91\xa1a"
    ch.close()


def test_modern_profile_sends_bin(raw_peer):
    ch, _ = connect(raw_peer, dialect="v1", profile="modern")
    ch.send_chunk(2, b"pong")
    assert raw_peer.recv_exactly(10) == b"\x93\x02\x00\x91\xc4\x04pong"
    ch.close()


def test_sends_before_connect_are_queued(raw_peer):
    ch = sluice.Channel("127.0.0.1", raw_peer.port)
    ch.send_heartbeat()
    raw_peer.accept()
    assert raw_peer.recv_exactly(4) == b"\x93\x01\x00\x90"
    ch.close()


def test_send_argument_types(raw_peer):
    ch, _ = connect(raw_peer)
    with pytest.raises(TypeError):
        ch.send_chunk(2, "text is not bytes")
    with pytest.raises(TypeError):
        ch.send_chunk(2, 5)
    with pytest.raises(OverflowError):
        ch.send_chunk(-1, b"x")
    with pytest.raises(TypeError):
        ch.send_frame(1, 1, [object()])
    ch.send_invoke(b"bytes-event", 9)
    settle(ch)
    ch.close()
