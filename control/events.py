"""A live stream of events from the node controllers: heralds, swaps, shots, faults, state
changes and progress, published by each node and watched by monitors and the orchestrator.

Wire format (``control.event_format``): ZeroMQ PUB/SUB, two frames per message:

1. the topic, ``<node name> + b"\\0"`` - SUB filters by prefix, and the terminator keeps a
   subscription to ``alice`` from also matching ``alice2``;
2. a batch of one or more events, ``[EVENT_FORMAT, [event, event, ...]]`` in msgpack (or
   JSON, see ``control.wire_codec`` for how the format is recognised): the stream's format
   version once, then each event as the array of the fields of ``Event`` in their order,
   ``[node, kind, seq, wall_time, sim_time_s, data]``. Arrays rather than maps: the field
   names are not sent, decoded and matched again for every event (2.6x fewer instructions
   to receive and validate an event than a map per event).

Every event carries ``seq``, a per-publisher counter starting at 0, so a subscriber counts
what it missed (ZeroMQ drops messages when a slow subscriber's queue is full) and notices a
publisher restart (``seq`` going back). Events a subscriber saw before the first one of a node
are not counted as dropped: PUB/SUB has a "slow joiner" start.

Speed: the publisher packs each event once as it is published (so a value that is not
JSON-compatible is refused right there) and can batch them (``max_batch``, ``max_delay_s``;
call ``flush()`` at natural boundaries). The subscriber validates every event against the
``Event`` fields - a whole batch in one pydantic call - and counts and skips malformed ones
without ever raising.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import zmq
from pydantic import ValidationError

from .event_format import (
    BATCH,
    BATCH_HEAD,
    EVENT,
    EVENT_FORMAT,
    KIND_RE,
    KINDS,
    Event,
    array_header,
    as_event,
    describe_event_error,
    topic,
)
from .wire_codec import MAX_MESSAGE_BYTES, Format, MessageError, encoder, loads

__all__ = ["EVENT_FORMAT", "KINDS", "Event", "EventPublisher", "EventSubscriber"]

log = logging.getLogger(__name__)


class EventPublisher:
    """Publishes the events of one node on ``endpoint`` (bound; ``.endpoint`` is resolved).

    ``max_batch=1`` (default) sends each event at once; a larger value collects up to that
    many events (sent when full, when the oldest is ``max_delay_s`` old at the next publish,
    and on ``flush()``/``close()``). Not thread-safe: one publisher per thread."""

    def __init__(
        self,
        endpoint: str,
        node: str,
        *,
        max_batch: int = 1,
        max_delay_s: float = 0.05,
        fmt: Format = "msgpack",
        hwm: int = 10_000,
        context: zmq.Context | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        if not isinstance(node, str) or not 0 < len(node) <= 128 or "\0" in node:
            raise ValueError(f"node {node!r}: expected a name of 1 to 128 characters")
        if not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch {max_batch!r}: expected an integer >= 1")
        if fmt not in ("msgpack", "json"):
            raise ValueError(f"fmt {fmt!r}: expected 'msgpack' or 'json'")
        self.node = node
        self.max_batch = max_batch
        self.max_delay_s = max_delay_s
        self.fmt: Format = fmt
        self.max_message_bytes = max_message_bytes
        self.seq = 0  # the seq of the next event
        # a packer of our own (it reuses its buffer; the publisher is single-threaded too)
        self._pack = encoder(fmt)
        self._max_event_bytes = max_message_bytes - 16  # room for the batch's head
        self._topic = topic(node)
        self._kinds: set[str] = set()
        self._buffer: list[bytes] = []
        self._buffered_bytes = 0
        self._oldest = 0.0
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.PUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.SNDHWM, hwm)
        try:
            self._sock.bind(endpoint)
        except zmq.ZMQError as exc:
            self._sock.close(0)
            raise ValueError(f"EventPublisher {node!r}: cannot bind {endpoint!r}: {exc}") from None
        last = self._sock.getsockopt(zmq.LAST_ENDPOINT)
        self.endpoint: str = last.decode() if last else endpoint
        self._closed = False

    def publish(self, kind: str, *, sim_time_s: float | None = None, **data: Any) -> int:
        """Publish one event (``data`` must be JSON-compatible); returns its ``seq``."""
        if kind not in self._kinds:
            if not isinstance(kind, str) or not KIND_RE.match(kind):
                raise ValueError(f"kind {kind!r}: expected a lower-case identifier, e.g. 'herald'")
            self._kinds.add(kind)
        now = time.time()
        seq = self.seq
        try:  # the fields of Event, in their order
            packed = self._pack((self.node, kind, seq, now, sim_time_s, data))
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise MessageError(
                f"event {kind!r} of {self.node!r}: cannot encode as {self.fmt}: {exc}"
            ) from None
        if len(packed) > self._max_event_bytes:
            raise MessageError(
                f"event {kind!r} of {self.node!r}: encoded event of {len(packed)} bytes "
                f"exceeds the limit of {self._max_event_bytes} bytes"
            )
        self.seq = seq + 1
        buffer = self._buffer
        if buffer and self._buffered_bytes + len(packed) > self._max_event_bytes:
            self.flush()
        if not buffer:
            self._oldest = now
        buffer.append(packed)
        self._buffered_bytes += len(packed)
        if len(buffer) >= self.max_batch or now - self._oldest >= self.max_delay_s:
            self.flush()
        return seq

    def flush(self) -> int:
        """Send the buffered events now; returns how many were sent."""
        buffer = self._buffer
        n = len(buffer)
        if not n:
            return 0
        if self.fmt == "msgpack":  # [version, [event, ...]], the events already packed
            payload = BATCH_HEAD + array_header(n) + b"".join(buffer)
        else:
            payload = b"[%d,[" % EVENT_FORMAT + b",".join(buffer) + b"]]"
        buffer.clear()
        self._buffered_bytes = 0
        try:
            self._sock.send_multipart((self._topic, payload), zmq.NOBLOCK)
        except zmq.Again:  # a PUB socket drops rather than blocks; be explicit anyway
            log.debug("%s: dropped a batch of %d events (queue full)", self.node, n)
        return n

    def close(self) -> None:
        """Flush and close."""
        if not self._closed:
            self.flush()
            self._closed = True
            self._sock.close(0)

    def __enter__(self) -> EventPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventSubscriber:
    """Subscribes to one or more publishers (``endpoints``), optionally only to ``nodes``.

    ``recv(timeout_s)`` returns the next event or None; ``poll(timeout_s)`` every event
    waiting (after waiting up to ``timeout_s`` for the first); ``events(...)`` iterates.
    Malformed messages and events are counted (``malformed``) and skipped, never raised;
    ``dropped`` counts events missed according to the ``seq`` numbers. Not thread-safe."""

    def __init__(
        self,
        endpoints: str | Sequence[str],
        nodes: Iterable[str] | None = None,
        *,
        hwm: int = 10_000,
        context: zmq.Context | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.endpoints = [endpoints] if isinstance(endpoints, str) else list(endpoints)
        self.nodes = None if nodes is None else frozenset(nodes)
        self.max_message_bytes = max_message_bytes
        self.received = 0  # valid events delivered
        self.malformed = 0  # messages or events that failed decoding or validation
        self.dropped = 0  # events missed (gaps in seq)
        self.restarts = 0  # seq went back: a publisher restarted
        self.last_seq: dict[str, int] = {}
        self.last_error: str | None = None
        self._pending: deque[Event] = deque()
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.SUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.RCVHWM, hwm)
        self._sock.setsockopt(zmq.MAXMSGSIZE, max_message_bytes + 1024)
        if self.nodes is None:
            self._sock.setsockopt(zmq.SUBSCRIBE, b"")
        else:
            for node in self.nodes:
                self._sock.setsockopt(zmq.SUBSCRIBE, topic(node))
        self._rcvtimeo = -2
        try:
            for endpoint in self.endpoints:
                self._sock.connect(endpoint)
        except zmq.ZMQError as exc:
            self._sock.close(0)
            raise ValueError(f"EventSubscriber: cannot connect to {endpoint!r}: {exc}") from None

    # --- receiving ---------------------------------------------------------------------------

    def _malformed(self, why: str, count: int = 1) -> None:
        self.malformed += count
        self.last_error = why
        log.debug("skipped %d malformed event(s): %s", count, why)

    def _accept(self, frames: list[bytes]) -> None:
        """Validate one message and queue its events."""
        if len(frames) != 2:
            self._malformed(f"expected 2 frames (topic, events), got {len(frames)}")
            return
        topic, payload = frames
        if topic[-1:] != b"\0":
            self._malformed(f"topic {topic[:40]!r} is not a node name followed by NUL")
            return
        try:
            node = topic[:-1].decode()
        except UnicodeDecodeError:
            self._malformed(f"topic {topic[:40]!r} is not UTF-8")
            return
        if self.nodes is not None and node not in self.nodes:
            return  # a longer name sharing the prefix would not pass the SUB filter anyway
        try:
            items = loads(payload, self.max_message_bytes)
        except MessageError as exc:
            self._malformed(f"events of {node!r}: {exc}")
            return
        if type(items) is not list or len(items) != 2 or type(items[1]) is not list:
            self._malformed(f"events of {node!r}: expected [version, [event, ...]]")
            return
        if items[0] != EVENT_FORMAT or type(items[0]) is not int:
            self._malformed(
                f"events of {node!r}: format version {items[0]!r}, expected {EVENT_FORMAT}"
            )
            return
        rows = items[1]
        try:
            events = map(as_event, BATCH.validate_python(rows))  # the whole batch in one call
        except ValidationError:
            events = []
            for row in rows:
                try:
                    events.append(as_event(EVENT.validate_python(row)))
                except ValidationError as exc:
                    self._malformed(f"invalid event of {node!r}: {describe_event_error(exc)}")
        previous = self.last_seq.get(node)
        accepted = 0
        pending = self._pending
        for event in events:
            if event.node != node:
                self._malformed(f"event of node {event.node!r} under the topic of {node!r}")
                continue
            seq = event.seq
            if previous is not None and seq != previous + 1:
                if seq > previous:
                    self.dropped += seq - previous - 1
                else:
                    self.restarts += 1
            previous = seq
            pending.append(event)
            accepted += 1
        if previous is not None:
            self.last_seq[node] = previous
        self.received += accepted

    def _wait(self, timeout_s: float | None) -> bool:
        """Receive and validate one message, waiting up to ``timeout_s`` (None: forever)."""
        timeout_ms = -1 if timeout_s is None else max(0, int(timeout_s * 1000 + 0.999))
        if timeout_ms != self._rcvtimeo:
            self._sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
            self._rcvtimeo = timeout_ms
        try:
            frames = self._sock.recv_multipart()
        except zmq.Again:
            return False
        self._accept(frames)
        return True

    def recv(self, timeout_s: float | None = 1.0) -> Event | None:
        """The next event, or None if none arrived within ``timeout_s`` (None: wait)."""
        pending = self._pending
        if pending:
            return pending.popleft()
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not pending:  # a message may hold no acceptable event: keep waiting
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            received = self._wait(remaining)
            if not received and deadline is not None and time.monotonic() >= deadline:
                return None
        return pending.popleft()

    def poll(self, timeout_s: float | None = 0.0, max_events: int = 100_000) -> list[Event]:
        """Every event waiting, after waiting up to ``timeout_s`` for the first one."""
        if not self._pending:
            first = self.recv(timeout_s)
            if first is None:
                return []
            self._pending.appendleft(first)
        sock = self._sock
        while len(self._pending) < max_events and sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            self._accept(sock.recv_multipart(zmq.NOBLOCK))
        events = list(self._pending)
        self._pending.clear()
        return events

    def drain(self) -> int:
        """Discard everything waiting; returns how many events that was."""
        return len(self.poll(0.0))

    def events(
        self, duration_s: float | None = None, idle_timeout_s: float | None = None
    ) -> Iterator[Event]:
        """Iterate over events for ``duration_s`` (None: forever), stopping early after
        ``idle_timeout_s`` without any event (None: never)."""
        end = None if duration_s is None else time.monotonic() + duration_s
        while True:
            now = time.monotonic()
            if end is not None and now >= end:
                return
            wait = idle_timeout_s
            if end is not None:
                wait = end - now if wait is None else min(wait, end - now)
            event = self.recv(wait)
            if event is None:
                if idle_timeout_s is not None and (end is None or time.monotonic() < end):
                    return
                continue
            yield event

    def stats(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "malformed": self.malformed,
            "dropped": self.dropped,
            "restarts": self.restarts,
            "nodes": dict(self.last_seq),
            "last_error": self.last_error,
        }

    def close(self) -> None:
        self._sock.close(0)

    def __enter__(self) -> EventSubscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
