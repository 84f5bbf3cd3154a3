"""The live event stream (EventPublisher / EventSubscriber) and the terminal monitor."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable

import msgpack
import pytest
import zmq
from rich.console import Console

from control.events import EVENT_FORMAT, Event, EventPublisher, EventSubscriber
from control.messages import MessageError
from control.monitor import run_monitor

LOOPBACK = "tcp://127.0.0.1:*"


def _joined(publish: Callable[[], object], sub: EventSubscriber, timeout_s: float = 5.0) -> None:
    """PUB/SUB is a slow joiner: publish until the subscriber sees something, then drain."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        publish()
        if sub.recv(0.05) is not None:
            time.sleep(0.05)
            sub.drain()
            return
    raise AssertionError("the subscriber never received anything")


def _collect(sub: EventSubscriber, n: int, timeout_s: float = 5.0) -> list[Event]:
    events: list[Event] = []
    deadline = time.monotonic() + timeout_s
    while len(events) < n and time.monotonic() < deadline:
        events.extend(sub.poll(0.1))
    return events


def _event(node: str, seq: int, kind: str = "herald", **data: object) -> list:
    """An event as it travels: the fields of ``Event`` in their order."""
    return [node, kind, seq, 1.0, None, data]


def _batch(*events: object, version: object = EVENT_FORMAT) -> bytes:
    return msgpack.packb([version, list(events)])


def test_publish_and_subscribe() -> None:
    with (
        EventPublisher(LOOPBACK, "alice") as pub,
        EventSubscriber(pub.endpoint) as sub,
    ):
        _joined(lambda: pub.publish("state", state="idle"), sub)
        first = pub.seq
        pub.publish("herald", sim_time_s=1.5e-3, attempt=41, pattern="10")
        pub.publish("fault", message="laser unlocked")
        events = _collect(sub, 2)
    assert [e.kind for e in events] == ["herald", "fault"]
    herald = events[0]
    assert herald.node == "alice"
    assert herald.seq == first and events[1].seq == first + 1
    assert herald.sim_time_s == 1.5e-3
    assert herald.data == {"attempt": 41, "pattern": "10"}
    assert abs(herald.wall_time - time.time()) < 60
    assert sub.malformed == 0 and sub.dropped == 0


def _eventually(take: Callable[[], int], n: int, timeout_s: float = 5.0) -> int:
    total = 0
    deadline = time.monotonic() + timeout_s
    while total < n and time.monotonic() < deadline:
        total += take()
    return total


def test_non_blocking_poll_and_drain_take_what_is_queued() -> None:
    with EventPublisher(LOOPBACK, "alice") as pub, EventSubscriber(pub.endpoint) as sub:
        _joined(lambda: pub.publish("state", state="x"), sub)
        for _ in range(3):
            pub.publish("shot")
        assert _eventually(lambda: len(sub.poll(0.0)), 3) == 3
        for _ in range(4):
            pub.publish("shot")
        assert _eventually(sub.drain, 4) == 4
        assert sub.poll(0.0) == [] and sub.recv(0.0) is None


def test_node_filter_is_exact() -> None:
    with (
        EventPublisher(LOOPBACK, "alice") as alice,
        EventPublisher(LOOPBACK, "alice2") as alice2,
        EventPublisher(LOOPBACK, "bob") as bob,
        EventSubscriber([alice.endpoint, alice2.endpoint, bob.endpoint], nodes=["alice"]) as sub,
        EventSubscriber([alice.endpoint, alice2.endpoint, bob.endpoint]) as everyone,
    ):
        _joined(lambda: alice.publish("state", state="x"), sub)
        for pub in (alice2, bob):
            _joined(lambda pub=pub: pub.publish("state", state="x"), everyone)
        sub.drain()
        for i in range(5):
            for pub in (alice2, bob, alice):
                pub.publish("shot", i=i)
        got = _collect(sub, 5)
        seen_by_everyone = _collect(everyone, 15)
    assert [e.data["i"] for e in got] == [0, 1, 2, 3, 4]
    assert {e.node for e in got} == {"alice"}
    assert {e.node for e in seen_by_everyone} == {"alice", "alice2", "bob"}


def test_batching_and_json_format() -> None:
    with (
        EventPublisher(LOOPBACK, "charlie", max_batch=10, max_delay_s=60.0, fmt="json") as pub,
        EventSubscriber(pub.endpoint) as sub,
    ):
        _joined(lambda: (pub.publish("state", state="x"), pub.flush()), sub)
        start = pub.seq
        for i in range(25):
            pub.publish("shot", i=i)
        assert pub.flush() == 5  # two full batches went out on their own
        events = _collect(sub, 25)
    assert [e.data["i"] for e in events] == list(range(25))
    assert [e.seq for e in events] == list(range(start, start + 25))
    assert sub.dropped == 0


def test_publisher_refuses_bad_kinds_and_data() -> None:
    with EventPublisher(LOOPBACK, "alice") as pub:
        with pytest.raises(ValueError, match="kind 'Herald!'"):
            pub.publish("Herald!")
        with pytest.raises(MessageError, match="event 'shot' of 'alice'.*not JSON-compatible"):
            pub.publish("shot", when=object())
        assert pub.seq == 0  # refused events take no sequence number
    with pytest.raises(ValueError, match="node"):
        EventPublisher(LOOPBACK, "")


def test_malformed_messages_and_events_are_counted_and_skipped() -> None:
    ctx = zmq.Context.instance()
    raw = ctx.socket(zmq.PUB)
    raw.setsockopt(zmq.LINGER, 0)
    port = raw.bind_to_random_port("tcp://127.0.0.1")
    try:
        with EventSubscriber(f"tcp://127.0.0.1:{port}") as sub:
            seq = iter(range(1000))

            def good() -> None:
                raw.send_multipart([b"alice\0", _batch(_event("alice", next(seq)))])

            _joined(good, sub)
            before = sub.malformed
            bad_messages = [
                [b"alice\0"],  # one frame
                [b"alice\0", b"x", b"y"],  # three frames
                [b"alice", _batch(_event("alice", 0))],  # topic without terminator
                [b"\xff\0", _batch(_event("alice", 0))],  # topic not UTF-8
                [b"alice\0", b"\x00garbage"],
                [b"alice\0", _batch(_event("alice", 0))[:-3]],  # truncated
                [b"alice\0", msgpack.packb({"not": "an array"})],
                [b"alice\0", msgpack.packb([_event("alice", 0)])],  # format 1: no version
                [b"alice\0", _batch(_event("alice", 0), version=1)],  # another version
                [b"alice\0", _batch(["alice", "herald"])],  # missing fields
                [b"alice\0", _batch(_event("alice", 0, kind="Bad Kind"))],
                [b"alice\0", _batch(_event("mallory", 0))],  # node != topic
            ]
            for frames in bad_messages:
                raw.send_multipart(frames)
            # a batch with one bad event among good ones delivers the good ones
            n = next(seq)
            mixed = _batch(_event("alice", n), {"garbage": True}, _event("alice", n + 1))
            raw.send_multipart([b"alice\0", mixed])
            events = _collect(sub, 2)
            time.sleep(0.05)
            events += sub.poll(0.0)
    finally:
        raw.close(0)
    assert [e.seq for e in events] == [n, n + 1]
    assert sub.malformed - before == len(bad_messages) + 1
    assert sub.last_error is not None and "garbage" in sub.last_error


def test_sequence_gaps_and_restarts_are_detected() -> None:
    ctx = zmq.Context.instance()
    raw = ctx.socket(zmq.PUB)
    raw.setsockopt(zmq.LINGER, 0)
    port = raw.bind_to_random_port("tcp://127.0.0.1")
    try:
        with EventSubscriber(f"tcp://127.0.0.1:{port}") as sub:

            def send(*seqs: int) -> None:
                raw.send_multipart([b"bob\0", _batch(*(_event("bob", s) for s in seqs))])

            _joined(lambda: send(0), sub)
            sub.drain()
            base = sub.last_seq["bob"]
            send(base + 1, base + 2)
            send(base + 6)  # three missed
            send(base + 7, base + 9)  # one missed inside a batch
            got = _collect(sub, 5)
            assert sub.dropped == 4 and sub.restarts == 0
            send(0)  # the publisher restarted
            got += _collect(sub, 1)
    finally:
        raw.close(0)
    assert [e.seq for e in got] == [base + 1, base + 2, base + 6, base + 7, base + 9, 0]
    assert sub.restarts == 1
    assert sub.stats()["nodes"] == {"bob": 0}


def test_events_iterator_stops_when_idle_or_after_duration() -> None:
    with EventPublisher(LOOPBACK, "alice") as pub, EventSubscriber(pub.endpoint) as sub:
        _joined(lambda: pub.publish("state", state="x"), sub)
        pub.publish("shot")
        pub.publish("shot")
        assert [e.kind for e in sub.events(idle_timeout_s=0.3)] == ["shot", "shot"]
        assert list(sub.events(duration_s=0.05)) == []
        assert sub.recv(timeout_s=0.01) is None


def _feed(pubs: dict[str, EventPublisher], stop: threading.Event) -> None:
    i = 0
    while not stop.is_set():
        pubs["alice"].publish("herald", attempt=i)
        pubs["bob"].publish("shot", count=2)
        if i % 20 == 0:
            pubs["alice"].publish("state", state="entangling")
            pubs["bob"].publish("progress", done=i, total=1000)
        if i == 30:
            pubs["bob"].publish("fault", message="laser unlocked")
        i += 1
        time.sleep(0.002)


def test_monitor_shows_a_live_stream_and_returns_a_summary() -> None:
    pubs = {name: EventPublisher(LOOPBACK, name) for name in ("alice", "bob")}
    stop = threading.Event()
    feeder = threading.Thread(target=_feed, args=(pubs, stop))
    feeder.start()
    out = io.StringIO()
    try:
        summary = run_monitor(
            [p.endpoint for p in pubs.values()],
            duration_s=0.8,
            console=Console(file=out, width=160, force_terminal=False),
            refresh_per_s=10,
        )
    finally:
        stop.set()
        feeder.join()
        for pub in pubs.values():
            pub.close()
    assert not summary["interrupted"]
    assert summary["events"] > 0 and summary["malformed"] == 0
    alice, bob = summary["nodes"]["alice"], summary["nodes"]["bob"]
    assert alice["heralds"] > 0 and alice["state"] == "entangling"
    assert bob["shots"] > 0 and bob["shots"] % 2 == 0  # "count" is honoured
    assert bob["faults"] == 1 and bob["last_fault"] == "laser unlocked"
    assert bob["progress"].endswith("/1000")
    text = out.getvalue()
    assert "alice" in text and "laser unlocked" in text and "latest events" in text


def test_monitor_waits_when_nothing_arrives() -> None:
    with EventPublisher(LOOPBACK, "silent") as pub:
        out = io.StringIO()
        summary = run_monitor(pub.endpoint, duration_s=0.2, console=Console(file=out, width=120))
    assert summary["events"] == 0 and summary["nodes"] == {}
    assert "waiting for events" in out.getvalue()
    with pytest.raises(ValueError, match="endpoints"):
        run_monitor([], duration_s=0.1)


def test_a_refused_batch_or_event_is_described_by_version_or_field() -> None:
    with EventSubscriber("tcp://127.0.0.1:1") as sub:  # nobody there: messages fed directly
        sub._accept([b"alice\0", _batch(_event("alice", 0, kind="Bad Kind"))])
        assert sub.malformed == 1
        assert "field 'kind'" in sub.last_error and "'Bad Kind'" in sub.last_error
        sub._accept([b"alice\0", _batch(_event("alice", 0, n=1) + ["extra"])])
        assert sub.malformed == 2 and "at most 6 items" in sub.last_error
        sub._accept([b"alice\0", _batch(_event("alice", 0), version=1)])
        assert sub.malformed == 3
        assert f"format version 1, expected {EVENT_FORMAT}" in sub.last_error
        sub._accept([b"alice\0", _batch({"seq": 0})])
        assert sub.malformed == 4 and (  # a map per event was format 1's
            "the event: got {'seq': 0}; expected an array of [node, kind, seq, wall_time, "
            "sim_time_s, data]" in sub.last_error
        )
        sub._accept([b"alice\0", _batch(_event("alice", 0, n=1), _event("alice", 1, n=2))])
        assert sub.malformed == 4 and [e.data["n"] for e in sub.poll()] == [1, 2]
