"""What travels on the event stream (``control.events``): the ``Event`` fields, the
batch format and its version, and the checks a subscriber applies to every event.

A batch is ``[EVENT_FORMAT, [event, event, ...]]`` in msgpack (or JSON), each event the
array of the fields of ``Event`` in their order, ``[node, kind, seq, wall_time, sim_time_s,
data]``: no field names per event, which would be sent, decoded and matched again for every
event.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, NamedTuple

from pydantic import Field, Strict, TypeAdapter, ValidationError

from .wire_codec import dumps

#: Kinds the monitor knows; any lower-case identifier is accepted.
KINDS = ("herald", "swap", "shot", "fault", "state", "progress")
KIND_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
KIND_RE = re.compile(KIND_PATTERN)


class Event(NamedTuple):
    """One event of one node, validated field by field (``BATCH``) on arrival."""

    node: Annotated[str, Strict(), Field(min_length=1, max_length=128)]
    kind: Annotated[str, Strict(), Field(pattern=KIND_PATTERN)]
    seq: Annotated[int, Strict(), Field(ge=0)]
    wall_time: Annotated[float, Strict()]  # Unix time (s) at the publisher
    sim_time_s: Annotated[float | None, Strict()]  # simulated time, on the simulated lab
    data: Annotated[dict[str, Any], Strict()]


#: validators of one event and of a batch of events (strict, field by field)
EVENT = TypeAdapter(Event)
BATCH = TypeAdapter(list[Event])


def describe_event_error(exc: ValidationError) -> str:
    """A failed event's first problem, naming the field (an event is an array on the wire,
    so pydantic locates a problem by position)."""
    err = exc.errors(include_url=False, include_context=False)[0]
    where = err["loc"][0] if err["loc"] else None
    if isinstance(where, int) and where < len(Event._fields):
        field = f"field {Event._fields[where]!r}"
    elif isinstance(where, str):
        field = f"field {where!r}"
    else:
        field = "the event"
    value = repr(err.get("input"))
    value = value if len(value) <= 80 else value[:77] + "..."
    return f"{field}: got {value}; {err['msg']}"


def array_header(n: int) -> bytes:
    """The msgpack header of an array of ``n`` items (the items follow, already packed)."""
    if n < 16:
        return bytes((0x90 | n,))
    if n < 1 << 16:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


#: The version of the event stream's format, the first item of every batch. PUB/SUB has no
#: handshake, so a subscriber checks it on every batch. (Format 1 sent a map per event,
#: each with the RPC protocol's version as ``v``.)
EVENT_FORMAT = 2

#: the msgpack head of a batch: an array of two, the format version first
BATCH_HEAD = b"\x92" + dumps(EVENT_FORMAT)


def topic(node: str) -> bytes:
    """The topic frame of a node's events: its name and a NUL (see ``control.events``)."""
    return node.encode() + b"\0"
