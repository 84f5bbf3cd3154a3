"""Fuzzing a running RpcServer through a raw DEALER socket (hypothesis).

Every malformed, truncated, oversized or type-confused message must get an ``error`` reply
or be dropped; the server never dies, and a normal ``RpcClient`` call still succeeds after
each one. A probe ``ping`` sent right behind each fuzz message delimits its replies (one
server thread answers in order), so no example waits for a timeout.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from control.messages import PROTOCOL_VERSION, Error, ErrorCode, Ok, decode
from control.rpc import RpcClient, RpcServer

MAX_BYTES = 64 * 1024  # small limit, so "oversized" stays cheap (ZeroMQ drops > 4x this)
FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,  # write nothing into the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Echo(BaseModel):
    value: int = Field(ge=-1000, le=1000)
    label: str = ""


def _boom() -> None:
    raise RuntimeError("handler failure")


METHODS = {"echo": (Echo, lambda a: {"value": a.value, "label": a.label}), "boom": (None, _boom)}


class Harness:
    def __init__(self) -> None:
        self.ctx = zmq.Context()
        self.server = RpcServer(
            "fuzz-node", "tcp://127.0.0.1:*", METHODS, context=self.ctx, max_message_bytes=MAX_BYTES
        ).start()
        self.client = RpcClient(self.server.endpoint, "fuzz-client", context=self.ctx)
        self.raw = self._dealer()
        self.probes = 0

    def _dealer(self) -> zmq.Socket:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.server.endpoint)
        return sock

    def throw(self, frames: list[bytes]) -> list[Any]:
        """Send ``frames`` as one message, then a probe ping; returns the decoded replies that
        came before the probe's answer (the replies to the fuzz message)."""
        self.probes += 1
        probe_id = f"probe-{self.probes}"
        self.raw.send_multipart(frames)
        self.raw.send(msgpack.packb({"v": PROTOCOL_VERSION, "id": probe_id, "type": "ping"}))
        replies = []
        while True:
            if not self.raw.poll(5000):
                pytest.fail(f"no answer to the probe ping after {frames!r:.200}")
            parts = self.raw.recv_multipart()
            reply = decode(parts[-1], 16 * MAX_BYTES)
            if reply.id == probe_id and isinstance(reply, Ok):
                return replies
            replies.append(reply)

    def check_alive(self) -> None:
        assert self.server._thread is not None and self.server._thread.is_alive()
        assert self.client.call("echo", value=7, label="ok") == {"value": 7, "label": "ok"}

    def close(self) -> None:
        self.raw.close(0)
        self.client.close()
        self.server.stop()
        self.ctx.term()


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.close()


# --- strategies --------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
# msgpack allows more than JSON: big ints, binary, non-string keys, NaN
msgpack_values = st.recursive(
    st.one_of(json_scalars, st.binary(max_size=20), st.floats()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.text(max_size=5), st.integers(-9, 9)), inner, max_size=5),
    ),
    max_leaves=20,
)

huge_strings = st.integers(min_value=1_000, max_value=3 * MAX_BYTES).map(lambda n: "x" * n)
types = st.one_of(
    st.sampled_from(["hello", "ping", "call", "ok", "error", "", "CALL", "Ping", "event"]),
    st.text(max_size=20),
    json_scalars,
)
versions = st.one_of(
    st.just(PROTOCOL_VERSION),
    st.sampled_from([0, 2, -1, True, False, 1.0, "1", None, 2**64 - 1]),
    json_values,
)
field_values = st.one_of(json_values, huge_strings, st.just(None))


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """Message-shaped maps with wrong, missing, extra or ill-typed fields."""
    msg: dict[str, Any] = {}
    if draw(st.booleans()):
        msg["v"] = draw(versions)
    if draw(st.integers(0, 9)):
        msg["id"] = draw(st.one_of(st.text(max_size=70), field_values))
    if draw(st.integers(0, 9)):
        msg["type"] = draw(types)
    for field in ("method", "args", "owner", "name", "version", "result", "error"):
        if draw(st.integers(0, 2)) == 0:
            msg[field] = draw(
                st.one_of(
                    st.sampled_from(["echo", "boom", "lock", "unlock", "nope"]),
                    field_values,
                    st.dictionaries(
                        st.sampled_from(["value", "label", "owner", "force", "x"]),
                        field_values,
                        max_size=3,
                    ),
                )
            )
    extra = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=2))
    return {**extra, **msg}


def _pack(obj: Any, fmt: str) -> bytes:
    if fmt == "json":
        return json.dumps(obj).encode()
    return msgpack.packb(obj, use_bin_type=True)


def _deep(depth: int, fmt: str, in_envelope: bool) -> bytes:
    if fmt == "json":
        inner = "[" * depth + "]" * depth
        if not in_envelope:
            return inner.encode()
        head = '{"v":1,"id":"deep","type":"call","method":"echo","args":{"value":'
        return (head + inner + "}}").encode()
    inner = b"\x91" * depth + b"\xc0"  # fixarray of one element, nested
    if not in_envelope:
        return inner
    head = msgpack.packb({"v": 1, "id": "deep", "type": "call", "method": "echo"})
    head = bytes([head[0] + 1]) + head[1:]  # one more map entry: args
    return head + msgpack.packb("args") + b"\x81" + msgpack.packb("value") + inner


valid_calls = st.builds(
    lambda rid, value, label: {
        "v": PROTOCOL_VERSION,
        "id": rid,
        "type": "call",
        "method": "echo",
        "args": {"value": value, "label": label},
    },
    st.text(min_size=1, max_size=10),
    st.integers(-1000, 1000),
    st.text(max_size=10),
)
formats = st.sampled_from(["msgpack", "json"])

payloads = st.one_of(
    st.binary(max_size=2048),  # random bytes
    st.builds(_pack, msgpack_values, st.just("msgpack")),  # valid msgpack, wrong shape
    st.builds(_pack, json_values, formats),  # valid msgpack/JSON, wrong shape
    st.builds(_pack, envelopes(), formats),  # envelopes with wrong field types
    st.builds(  # truncated valid messages
        lambda b, cut: b[: max(0, len(b) - 1 - cut)],
        st.builds(_pack, valid_calls, formats),
        st.integers(0, 200),
    ),
    st.builds(  # a valid message with junk appended
        lambda b, junk: b + junk,
        st.builds(_pack, valid_calls, formats),
        st.binary(min_size=1, max_size=20),
    ),
    st.builds(_deep, st.integers(1, 100_000), formats, st.booleans()),  # deep nesting
    st.builds(  # oversized (up to 3x the limit, below ZeroMQ's 4x cut-off)
        lambda n, fmt: _pack({"v": 1, "id": "big", "type": "ping", "pad": "x" * n}, fmt),
        st.integers(MAX_BYTES - 64, 3 * MAX_BYTES),
        formats,
    ),
    st.builds(_pack, valid_calls, formats),  # now and then a valid call
)
frame_lists = st.one_of(
    payloads.map(lambda p: [p]),
    st.lists(payloads, min_size=2, max_size=3),  # multipart: envelope frames + payload
    st.just([b""]),
)


# --- tests -------------------------------------------------------------------------------------


@FUZZ
@given(frames=frame_lists)
def test_server_survives_fuzzed_messages(harness: Harness, frames: list[bytes]) -> None:
    replies = harness.throw(frames)
    assert len(replies) <= 1
    for reply in replies:
        assert isinstance(reply, Error | Ok)
        if isinstance(reply, Error):
            assert reply.error.code in set(ErrorCode) - {ErrorCode.timeout}
            assert reply.error.message
    harness.check_alive()


@settings(max_examples=40, deadline=None, database=None)
@given(value=st.integers(-1000, 1000), fmt=formats)
def test_valid_calls_between_fuzz_get_answers(harness: Harness, value: int, fmt: str) -> None:
    frame = _pack(
        {"v": 1, "id": "v", "type": "call", "method": "echo", "args": {"value": value}}, fmt
    )
    (reply,) = harness.throw([frame])
    assert isinstance(reply, Ok) and reply.result == {"value": value, "label": ""}


def test_specific_nasty_messages_get_error_replies(harness: Harness) -> None:
    cases: list[tuple[bytes, ErrorCode]] = [
        (b"", ErrorCode.bad_message),
        (b"\xc1", ErrorCode.bad_message),
        (_pack({"v": 2, "id": "a", "type": "ping"}, "msgpack"), ErrorCode.version_mismatch),
        (_pack({"v": True, "id": "a", "type": "ping"}, "json"), ErrorCode.bad_message),
        (_pack({"v": 1, "id": "a", "type": "shutdown"}, "msgpack"), ErrorCode.bad_message),
        (_pack({"v": 1, "id": "a", "type": "ok"}, "msgpack"), ErrorCode.bad_message),
        (_pack({"v": 1, "id": "a", "type": "call", "method": "nope"}, "json"),
         ErrorCode.unknown_method),
        (_pack({"v": 1, "id": "a", "type": "call", "method": "echo", "args": {"value": "x"}},
               "msgpack"), ErrorCode.bad_arguments),
        (_pack({"v": 1, "id": "a", "type": "call", "method": "boom"}, "msgpack"), ErrorCode.failed),
        (_pack({"v": 1, "id": "x" * 100_000, "type": "ping"}, "msgpack"), ErrorCode.bad_message),
        (_deep(100_000, "json", True), ErrorCode.bad_message),
        (_deep(100_000, "msgpack", True), ErrorCode.bad_message),
    ]  # fmt: skip
    for frame, code in cases:
        replies = harness.throw([frame])
        assert len(replies) == 1, frame[:80]
        reply = replies[0]
        assert isinstance(reply, Error), frame[:80]
        assert reply.error.code == code, (frame[:80], reply.error)
    harness.check_alive()


def test_frame_beyond_zmq_limit_is_dropped_and_server_keeps_serving(harness: Harness) -> None:
    """A frame over 4x max_message_bytes is cut off by ZeroMQ (MAXMSGSIZE): that peer is
    disconnected, nothing reaches the handler, and everyone else is still served."""
    sock = harness._dealer()
    try:
        sock.send(b"\x80" + b"x" * (4 * MAX_BYTES + 10))
        assert sock.poll(300) == 0
    finally:
        sock.close(0)
    harness.check_alive()
    with RpcClient(harness.server.endpoint, "after", context=harness.ctx) as c:
        assert c.call("echo", value=1)["value"] == 1
