"""What travels on the event stream (``control.events``): the ``Event`` fields, the
batch format and its version, and the checks a subscriber applies to every event.

A batch is ``[EVENT_FORMAT, [event, event, ...]]`` in msgpack (or JSON), each event the
array of the fields of ``Event`` in their order, ``[node, kind, seq, wall_time, sim_time_s,
data]``: no field names per event, which would be sent, decoded and matched again for every
event.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Annotated, Any, NamedTuple

from pydantic import Field, InstanceOf, Strict, TypeAdapter, ValidationError

from .wire_codec import dumps

#: Kinds the monitor knows; any lower-case identifier is accepted.
KINDS = ("herald", "swap", "shot", "fault", "state", "progress")
KIND_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
KIND_RE = re.compile(KIND_PATTERN)


class Event(NamedTuple):
    """One event of one node; its fields are checked on arrival (``ROW``)."""

    node: str
    kind: str
    seq: int
    wall_time: float  # Unix time (s) at the publisher
    sim_time_s: float | None  # simulated time, on the simulated lab
    data: dict[str, Any]


#: The checks of an event's fields on the wire, in their order (strict: nothing converted).
#: ``data`` is checked to be a map and no further: the codec decodes nothing but
#: JSON-compatible data with string keys (``control.wire_codec``), so a pass over its items
#: would check what is known already, and copy the map (1.5 k instructions per event).
ROW = tuple[
    Annotated[str, Strict(), Field(min_length=1, max_length=128)],
    Annotated[str, Strict(), Field(pattern=KIND_PATTERN)],
    Annotated[int, Strict(), Field(ge=0)],
    Annotated[float, Strict()],
    Annotated[float | None, Strict()],
    InstanceOf[dict],
]

#: validators of one event's row and of a batch of rows
EVENT = TypeAdapter(ROW)
BATCH = TypeAdapter(list[ROW])

#: a checked row as an ``Event``: the tuple's own constructor, without the Python-level
#: ``__new__`` of a NamedTuple (2 k instructions per event)
as_event = partial(tuple.__new__, Event)


def describe_event_error(exc: ValidationError) -> str:
    """A failed event's first problem, naming the field (an event is an array on the wire,
    so pydantic locates a problem by position)."""
    err = exc.errors(include_url=False, include_context=False)[0]
    where = err["loc"][0] if err["loc"] else None
    value = repr(err.get("input"))
    value = value if len(value) <= 80 else value[:77] + "..."
    if where is None and err["type"] == "tuple_type":
        return f"the event: got {value}; expected an array of [{', '.join(Event._fields)}]"
    known = isinstance(where, int) and 0 <= where < len(Event._fields)
    field = f"field {Event._fields[where]!r}" if known else "the event"
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
