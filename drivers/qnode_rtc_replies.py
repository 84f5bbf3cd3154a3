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
    results = []
    try:
        for part, shape in zip(parts, shapes, strict=True):
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


#: the item an operation leaves in a complete reply: a readout (``R``), a herald (``H``) or a
#: probe (``F``); a program's layout is the string of its items' kinds in program order
LAYOUT_KINDS = {"MEAS": "R", "ENT": "H", "PROBE": "F"}
_bit = _BITS.__getitem__
#: a herald item's values: the ``Herald`` fields (bell state, attempts, time_s) as a tuple
HeraldValues = tuple[str | None, int, float]
#: herald items read lately by :func:`read_table`, as their values (both nodes of a link
#: report each herald: the second reads none)
_HERALD_VALUES: dict[str, HeraldValues] = {}


def _herald_values(items: tuple[str, ...]) -> list[HeraldValues]:
    """The values of a column of herald items (``ValueError``, ``KeyError``: an item is not
    one), read as :func:`_read_common_herald` reads them. A tuple, not a ``Herald``: a
    caller of the columns reads a field or two, and an object costs more than reading it."""
    known = _HERALD_VALUES
    if len(known) >= 1024:  # (before the look-up: the items found stay found)
        known.clear()
    values = list(map(known.get, items))
    if None in values:
        for index, item in enumerate(items):
            if values[index] is None:
                bell, attempts, when = item.split(":")
                values[index] = known[item] = (_BELLS[bell], int(attempts), float(when))
    return values


def _herald(values: HeraldValues) -> Herald:
    """A ``Herald`` of a herald item's values (as ``Herald``'s ``__init__`` would build)."""
    herald = _new(Herald)
    fields = herald.__dict__
    fields["bell_state"], fields["attempts"], fields["time_s"] = values
    return herald


class ReplyTable:
    """A batch's replies. When every program completed with the items of the batch's one
    layout (``complete``), as columns over the programs: ``time_s``, and per item position
    of the layout, in program order, its ``readouts``, ``heralds`` (each a ``Herald``'s
    values, :data:`HeraldValues`) or ``probes`` column (a caller reading a few fields of
    many programs reads them there, without a ``ProgramResult`` per program). Else only as
    the :meth:`results`."""

    __slots__ = ("complete", "time_s", "readouts", "heralds", "probes", "_results")

    def __init__(
        self,
        time_s: list[float],
        readouts: list[list[int]],
        heralds: list[list[HeraldValues]],
        probes: list[list[float | None]],
        results: list[ProgramResult] | None = None,
    ) -> None:
        self.complete = results is None
        self.time_s, self.readouts, self.heralds, self.probes = time_s, readouts, heralds, probes
        self._results = results

    @classmethod
    def of(cls, results: list[ProgramResult]) -> ReplyTable:
        """The table of replies read program by program (no columns)."""
        return cls([], [], [], [], results)

    @property
    def last_time_s(self) -> float:
        """The controller clock after the batch's last program."""
        return self.time_s[-1] if self.complete else self.results()[-1].time_s

    def results(self) -> list[ProgramResult]:
        """A ``ProgramResult`` per program, in order (built from the columns once)."""
        if self._results is None:
            self._results = _program_results(self)
        return self._results


def _program_results(table: ReplyTable) -> list[ProgramResult]:
    """A complete table's programs as the values ``ProgramResult``'s ``__init__`` would
    build."""
    results = []
    none: list[tuple[()]] = [()] * len(table.time_s)
    readouts, probes = table.readouts, table.probes
    heralds = [list(map(_herald, column)) for column in table.heralds]
    for program_readouts, time_s, program_heralds, program_probes in zip(
        zip(*readouts, strict=True) if readouts else none,
        table.time_s,
        zip(*heralds, strict=True) if heralds else none,
        zip(*probes, strict=True) if probes else none,
        strict=True,
    ):
        result = _new(ProgramResult)
        values = result.__dict__
        values["readouts"] = program_readouts
        values["time_s"] = time_s
        values["heralds"] = program_heralds
        values["aborted"] = None
        values["probes"] = program_probes
        results.append(result)
    return results


def read_table(parts: list[str], layout: str) -> ReplyTable | None:
    """The common reply of a batch whose programs share one ``layout`` (see
    :data:`LAYOUT_KINDS`), read column by column: every program complete (``0,<time_s>``)
    with exactly its items, in program order. A batch repeats a few programs of one
    protocol, so their replies line up: the items at one position, over all programs, are
    one column, converted by one C-level ``map`` instead of a Python loop per item. None
    for anything else (:func:`complete_replies`, then each program's full parse decide).
    What it reads is what :func:`complete_replies` would read from the same parts."""
    rows = [part.split(",") for part in parts]
    if set(map(len, rows)) != {len(layout) + 2}:
        return None
    status, times, *columns = zip(*rows, strict=True)
    if status.count("0") != len(parts):
        return None
    readouts: list[list[int]] = []
    heralds: list[list[HeraldValues]] = []
    probes: list[list[float | None]] = []
    try:
        time_s = list(map(float, times))
        for kind, column in zip(layout, columns, strict=True):
            if kind == "R":
                readouts.append(list(map(_bit, column)))
            elif kind == "H":
                heralds.append(_herald_values(column))
            else:  # (``F-``: a controller that cannot know it)
                read = [None if i == "F-" else float(i[1:]) for i in column if i[:1] == "F"]
                if len(read) != len(column):
                    return None
                probes.append(read)
    except (ValueError, KeyError):
        return None
    return ReplyTable(time_s, readouts, heralds, probes)
