"""How the qnode RTC driver reads the replies of its programs (qnode RTC protocol v1, see
``docs/rtc-protocol.md``): a batch reply split into its programs, the common reply (every
program complete, with the items of its shape) read in one pass, and herald items. The
checks that name what is wrong in any other reply are the driver's
(``drivers.qnode_rtc_program``)."""

from __future__ import annotations

from dataclasses import fields as dataclass_fields

from drivers.qubit_program import Herald, ProgramResult

#: what a program's reply looks like, for error messages
PROGRAM_REPLY = '0,<time_s>[,<readout 0|1 or herald bell:attempts:time>...] or <code>,"<reason>"'


def segments(reply: str) -> list[str]:
    """A batch reply split at the ``;`` between programs (not inside a quoted reason)."""
    if '"' not in reply:
        return reply.split(";")
    parts, quoted, last = [], False, 0
    for i, char in enumerate(reply):
        if char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            parts.append(reply[last:i])
            last = i + 1
    parts.append(reply[last:])
    return parts


def read_herald(item: str) -> Herald:
    """``<bell>:<attempts>:<time_s>`` of a program reply (``NONE``: no herald)."""
    bell, attempts, when = item.split(":")
    if bell != "NONE" and bell not in ("PHI+", "PHI-", "PSI+", "PSI-"):
        raise ValueError(bell)
    return Herald(None if bell == "NONE" else bell, int(attempts), float(when))


# The common reply is read into new ``Herald`` and ``ProgramResult`` objects without their
# generated ``__init__``: a frozen dataclass sets each field through ``object.__setattr__``,
# which made the objects the larger part of reading a reply. The values are the checked ones
# ``__init__`` would store; the field names are checked here, so a changed class fails at
# import rather than building incomplete objects. The fields go into the new instance's
# ``__dict__`` one by one: cheaper than handing it a whole new dict through
# ``object.__setattr__`` (a slot-wrapper call; 3.2k against 4.4k instructions an object).
_new = object.__new__
for _cls, _names in (
    (Herald, ("bell_state", "attempts", "time_s")),
    (ProgramResult, ("readouts", "time_s", "heralds", "aborted", "probes")),
):
    if tuple(f.name for f in dataclass_fields(_cls)) != _names or hasattr(_cls, "__post_init__"):
        raise TypeError(f"{_cls.__name__} changed: update drivers.qnode_rtc_replies")
#: the bell state of a herald item (``NONE``: the loop's cut-off), and a readout's bit
_BELLS = {"PHI+": "PHI+", "PHI-": "PHI-", "PSI+": "PSI+", "PSI-": "PSI-", "NONE": None}
_BITS = {"0": 0, "1": 1}


#: heralds read lately, by the text of their item: both nodes of a link report each one
#: (a frozen value: the same text gives the same ``Herald``, shared)
_HERALDS_READ: dict[str, Herald] = {}


def _read_common_herald(item: str) -> Herald:
    """A herald item of the common reply (``ValueError``, ``KeyError``: it is not one)."""
    bell, attempts, when = item.split(":")
    bell_state, count, time_s = _BELLS[bell], int(attempts), float(when)
    herald = _new(Herald)
    fields = herald.__dict__
    fields["bell_state"] = bell_state
    fields["attempts"] = count
    fields["time_s"] = time_s
    if len(_HERALDS_READ) >= 1024:
        _HERALDS_READ.clear()
    _HERALDS_READ[item] = herald
    return herald


def complete_replies(
    parts: list[str], shapes: list[tuple[int, int, int]]
) -> list[ProgramResult] | None:
    """The common batch reply, read in one pass: every program complete (``0,<time_s>``)
    with items of its shape, each item exactly ``0``, ``1``, a herald or a probe. None for
    anything else (each program's full parse then decides, and names what is wrong)."""
    if len(parts) != len(shapes):
        return None
    results = []
    try:
        for index, part in enumerate(parts):  # (not zip(..., strict=True): a keyword call)
            shape = shapes[index]
            items = part.split(",")
            if items[0] != "0":
                return None
            time_s = float(items[1])  # (none: IndexError)
            readouts: list[int] = []
            heralds: list[Herald] = []
            probes: list[float | None] = []
            for item in items[2:]:
                bit = _BITS.get(item)
                if bit is not None:
                    readouts.append(bit)
                elif item[:1] == "F":
                    probes.append(None if item == "F-" else float(item[1:]))
                else:
                    heralds.append(_HERALDS_READ.get(item) or _read_common_herald(item))
            if (len(readouts), len(heralds), len(probes)) != shape:
                return None
            result = _new(ProgramResult)
            fields = result.__dict__
            fields["readouts"] = tuple(readouts)
            fields["time_s"] = time_s
            fields["heralds"] = tuple(heralds)
            fields["aborted"] = None
            fields["probes"] = tuple(probes)
            results.append(result)
    except (ValueError, KeyError, IndexError):
        return None
    return results
