"""A small base for simulated SCPI instruments: a command table, an error queue, IEEE 488.2.

A concrete simulated instrument reads like the command table of its manual::

    class SimPowerSupply(ScpiInstrument):
        IDN = "Acme,PS-30,0001,1.0"

        voltage = Setting("[:SOURce]:VOLTage[:LEVel][:IMMediate][:AMPLitude]",
                          Number(0, 30, unit="V"), default=0.0)
        output = Setting("OUTPut#[:STATe]", Boolean(), default=False, suffixes=range(1, 3))

        @command("MEASure:CURRent?")
        def measured_current(self, call: Call) -> str:
            return f"{self.voltage / 100:.6g}"

* **Patterns** use the manuals' notation: ``SOURce`` matches ``SOUR`` or ``SOURCE`` (any case,
  nothing in between); ``[...]`` is optional; ``#`` (or ``<n>``) after a keyword is an optional
  numeric suffix (default 1, passed in ``call.suffixes``); a leading colon is optional; a
  trailing ``?`` makes the pattern a query. Arguments follow the header after white space.
* :class:`Setting` is a stored value with its set form and query form (``VOLT 5``,
  ``VOLT?``, ``VOLT? MAX``, ``VOLT DEF``); reading ``inst.voltage`` gives the value (a dict
  by suffix for patterns with ``#``). :func:`command` registers any other handler, called as
  ``handler(self, call) -> reply or None``.
* **Errors never raise out of** :meth:`ScpiInstrument.handle`: the argument helpers
  (:class:`Number`, :class:`Boolean`, :class:`Choice`, :class:`String`, ``call.number`` ...)
  raise :class:`ScpiError`, which aborts that command and queues its SCPI error, read by
  ``SYST:ERR?`` (``0,"No error"`` when empty): -113 undefined header, -114 suffix out of
  range, -108/-109 too many/missing parameters, -104 data type, -120 numeric data,
  -131 invalid unit, -222 data out of range, -224 illegal parameter value, -350 overflow.
  A Python exception of any other type is a bug of the simulator and propagates.
* Compound messages (``VOLT 5;:OUTP ON;*OPC?``) are split at ``;`` (not inside strings or
  blocks); a unit without leading ``:`` is tried relative to the previous header's path first,
  then from the root. Query replies are joined with ``;``.
* Common commands: ``*IDN? *RST *CLS *OPC *OPC? *WAI *TST? *TRG *ESR? *ESE[?] *SRE[?]
  *STB?`` and ``SYSTem:ERRor[:NEXT]? SYSTem:ERRor:COUNt? SYSTem:VERSion?``. ``*RST`` calls
  :meth:`ScpiInstrument.reset` (settings back to their defaults; extend it for other state).
  A setting changed over the wire calls :meth:`ScpiInstrument.setting_changed`, which tells
  the lab (``hooks.settings_changed``); values assigned from Python do not.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from .protocols import LabHooks, NullLabHooks
from .scpi_arguments import (
    ERROR_MESSAGES,
    Boolean,
    Choice,
    Integer,
    Number,
    ScpiError,
    String,
    _split,
    format_error,
    keyword_forms,
    parse_block,
)

_TOKEN = re.compile(r"\s*(?:(\[)|(\])|:?(\*?[A-Za-z][A-Za-z0-9_]*)(#|<[^>]*>)?)")


_NO_ERROR = format_error(0)
_new_call = object.__new__


# -- the command table (argument kinds and errors: ``scpi_arguments``) -------------------
class Call:
    """One received program message unit, as a command handler sees it.
    (:meth:`ScpiInstrument._execute` fills a new one field by field: keep it in step.)"""

    __slots__ = ("header", "params", "query", "suffixes", "_args")

    def __init__(self, header: str, params: str, query: bool, suffixes: tuple[int, ...]):
        self.header, self.params, self.query, self.suffixes = header, params, query, suffixes
        self._args: list[str] | None = None

    @property
    def suffix(self) -> int:
        """The first numeric suffix of the header (1 when absent)."""
        return self.suffixes[0] if self.suffixes else 1

    @property
    def args(self) -> list[str]:
        """The arguments, split at commas (not inside strings or blocks)."""
        if self._args is None:
            self._args = _split(self.params, ",") if self.params.strip() else []
        return self._args

    def expect_args(self, least: int, most: int | None = None) -> list[str]:
        """The arguments, if there are ``least``..``most`` (default: exactly ``least``)."""
        args, most = self.args, least if most is None else most
        if len(args) < least:
            raise ScpiError(-109, f"{self.header} takes {least} parameter(s)")
        if len(args) > most:
            raise ScpiError(-108, f"{self.header} takes at most {most} parameter(s)")
        return args

    def arg(self, index: int = 0) -> str:
        if index >= len(self.args):
            raise ScpiError(-109, f"{self.header}: parameter {index + 1} missing")
        return self.args[index]

    def number(
        self, lo: float = -math.inf, hi: float = math.inf, unit: str = "", index: int = 0
    ) -> float:
        return Number(lo, hi, unit).parse(self.arg(index))

    def integer(self, lo: float = -math.inf, hi: float = math.inf, index: int = 0) -> int:
        return int(Number(lo, hi, integer=True).parse(self.arg(index)))

    def boolean(self, index: int = 0) -> bool:
        return Boolean().parse(self.arg(index))

    def choice(self, *options: str, index: int = 0) -> str:
        return Choice(*options).parse(self.arg(index))

    def string(self, index: int = 0) -> str:
        return String().parse(self.arg(index))

    def block(self, index: int = 0) -> bytes:
        return parse_block(self.arg(index))


def compile_pattern(pattern: str) -> tuple[re.Pattern[str], bool]:
    """(regex matching a normalised header ``:KEY:KEY``, is-query) for a SCPI pattern."""
    body = pattern.strip()
    query = body.endswith("?")
    body = body.rstrip("?")
    parts: list[str] = []
    pos, depth = 0, 0
    while pos < len(body):
        m = _TOKEN.match(body, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"bad SCPI pattern {pattern!r} at {body[pos:]!r}")
        opening, closing, keyword, suffix = m.groups()
        if opening:
            parts.append("(?:")
            depth += 1
        elif closing:
            parts.append(")?")
            depth -= 1
            if depth < 0:
                raise ValueError(f"bad SCPI pattern {pattern!r}: unbalanced ']'")
        else:
            long, short = keyword_forms(keyword)
            forms = re.escape(long) if long == short else f"{re.escape(long)}|{re.escape(short)}"
            parts.append(f":(?:{forms})" + (r"(\d+)?" if suffix else ""))
        pos = m.end()
    if depth or not parts:
        raise ValueError(f"bad SCPI pattern {pattern!r}")
    return re.compile("".join(parts), re.IGNORECASE), query


@dataclass(frozen=True)
class _Entry:
    pattern: str
    regex: re.Pattern[str]
    query: bool
    attribute: str  # name of the handler method (called through getattr: overridable)
    setting: Setting | None
    suffixes: frozenset[int] | None


#: A resolved header: (entry or ``None``, suffixes, bare header, is-query, path after it,
#: SCPI error code when the entry is ``None``).
_Header = tuple[_Entry | None, tuple[int, ...], str, bool, str, int]
#: Distinct (path, header) resolutions remembered per instrument class.
_HEADER_CACHE_SIZE = 4096


def command(*patterns: str, suffixes: Iterable[int] | None = None) -> Callable[[Any], Any]:
    """Register the decorated method ``(self, call) -> str | None`` for each pattern;
    ``suffixes`` limits the numeric suffixes accepted (else -114)."""

    def register(fn: Any) -> Any:
        fn._scpi = (patterns, None if suffixes is None else frozenset(suffixes))
        return fn

    return register


class _PerSuffix(dict):
    """Values of a suffixed setting by suffix; unset suffixes read as the default."""

    def __init__(self, default: Any) -> None:
        super().__init__()
        self.default = default

    def __missing__(self, key: Any) -> Any:
        return self.default


class Setting:
    """A stored instrument setting with its set and query forms (see the module docstring).

    ``suffixes`` lists the valid suffixes of ``#`` keywords (others give -114);
    ``readonly`` registers the query form only (the simulation sets the value from Python).
    """

    def __init__(
        self,
        pattern: str,
        kind: Any,
        default: Any,
        *,
        suffixes: Iterable[int] | None = None,
        readonly: bool = False,
    ) -> None:
        self.pattern, self.kind, self.default, self.readonly = pattern, kind, default, readonly
        self.suffixes = None if suffixes is None else frozenset(suffixes)
        self.markers = compile_pattern(pattern)[0].groups
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, inst: Any, owner: type | None = None) -> Any:
        return self if inst is None else inst._values[self.name]

    def __set__(self, inst: Any, value: Any) -> None:
        if self.markers:
            raise AttributeError(f"{self.name} is per suffix: assign {self.name}[n] = value")
        inst._values[self.name] = value

    def initial(self) -> Any:
        if not self.markers:
            return self.default
        values = _PerSuffix(self.default)
        for key in itertools.product(sorted(self.suffixes or ()), repeat=self.markers):
            values[key[0] if self.markers == 1 else key] = self.default
        return values

    def run(self, inst: ScpiInstrument, call: Call) -> str | None:
        key = call.suffixes[0] if self.markers == 1 else call.suffixes
        if call.query:
            if not call.params.strip():
                value = inst._values[self.name][key] if self.markers else inst._values[self.name]
                return self.kind.format(value)
            arg = call.expect_args(1)[0].upper()
            if isinstance(self.kind, Number) and arg in ("MIN", "MINIMUM", "MAX", "MAXIMUM"):
                return self.kind.format(self.kind.parse(arg))
            raise ScpiError(-108, f"{call.header}? takes no parameter")
        text = call.expect_args(1)[0]
        value = self.default if text.upper() in ("DEF", "DEFAULT") else self.kind.parse(text)
        if self.markers:
            inst._values[self.name][key] = value
        else:
            inst._values[self.name] = value
        inst.setting_changed(self.name, key if self.markers else None, value)
        return None


class ScpiInstrument:
    """Base of simulated SCPI instruments; a :class:`~.protocols.MessageHandler`."""

    #: ``*IDN?`` reply: manufacturer, model, serial, firmware (copied to ``self.idn``).
    IDN: ClassVar[str] = "qnode,Simulated SCPI instrument,0,0.1"
    #: Message terminator (the visa library's ``attach`` uses it by default).
    termination: ClassVar[str] = "\n"
    #: Error-queue length; one more error replaces the last entry with -350.
    ERROR_QUEUE_SIZE: ClassVar[int] = 32

    _scpi_table: ClassVar[tuple[_Entry, ...]] = ()
    _scpi_settings: ClassVar[tuple[Setting, ...]] = ()
    _scpi_cache: ClassVar[dict[tuple[str, bool], tuple[_Entry, tuple[int, ...]] | None]]
    _scpi_headers: ClassVar[dict[str | tuple[str, str], _Header]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._build_table()

    @classmethod
    def _build_table(cls) -> None:
        """Collect the table, most derived class first: for each attribute name its most
        derived Setting or decorated method counts (an undecorated override inherits the
        patterns); for each pattern the first registration wins."""
        entries: list[_Entry] = []
        settings: list[Setting] = []
        names: set[str] = set()
        seen: set[tuple[str, bool]] = set()
        for klass in cls.__mro__:
            for name, value in vars(klass).items():
                setting = value if isinstance(value, Setting) else None
                specs = getattr(value, "_scpi", None)
                if setting is not None:
                    forms = [value.pattern + "?"] + ([] if value.readonly else [value.pattern])
                    specs = (forms, value.suffixes)
                if specs is None or name in names:
                    continue
                names.add(name)
                if setting is not None:
                    settings.append(setting)
                for pattern in specs[0]:
                    regex, query = compile_pattern(pattern)
                    if specs[1] is not None and not regex.groups:
                        raise ValueError(f"{pattern!r} has suffixes but no '#' suffix marker")
                    if (regex.pattern, query) not in seen:
                        seen.add((regex.pattern, query))
                        entries.append(_Entry(pattern, regex, query, name, setting, specs[1]))
        cls._scpi_table, cls._scpi_settings = tuple(entries), tuple(settings)
        cls._scpi_cache = {}
        cls._scpi_headers = {}

    def __init__(self, name: str, hooks: LabHooks | None = None) -> None:
        self.name = name
        self.hooks: LabHooks = hooks if hooks is not None else NullLabHooks()
        self.idn = self.IDN
        self.errors: deque[tuple[int, str]] = deque()
        self.esr = self.ese = self.sre = 0
        self._values: dict[str, Any] = {s.name: s.initial() for s in self._scpi_settings}

    # -- hooks for subclasses -----------------------------------------------------------------
    def reset(self) -> None:
        """``*RST``: settings back to their defaults (extend for the model's other state)."""
        self._values = {s.name: s.initial() for s in self._scpi_settings}

    def setting_changed(self, name: str, suffix: Any, value: Any) -> None:
        """A :class:`Setting` was changed over the wire; default: tell the lab."""
        self.hooks.settings_changed(self.name)

    def trigger(self) -> None:
        """``*TRG`` (and the VISA trigger); default: nothing."""

    # -- error queue and status ---------------------------------------------------------------
    def queue_error(self, code: int, detail: str = "") -> None:
        """Add an entry to the error queue (and the matching event status bit)."""
        if len(self.errors) >= self.ERROR_QUEUE_SIZE:
            self.errors[-1] = (-350, "")
        else:
            self.errors.append((code, detail))
        bit = {1: 0x20, 2: 0x10, 4: 0x04}.get(-code // 100, 0x08) if code else 0
        self.esr |= bit

    def next_error(self) -> str:
        """Pop the oldest error-queue entry, formatted (``0,"No error"`` when empty)."""
        return format_error(*self.errors.popleft()) if self.errors else _NO_ERROR

    def status_byte(self) -> int:
        """IEEE 488.2 status byte: EAV (4), ESB (32), MSS (64); the library adds MAV (16)."""
        stb = (0x04 if self.errors else 0) | (0x20 if self.esr & self.ese else 0)
        return stb | (0x40 if stb & self.sre else 0)

    # -- dispatch ------------------------------------------------------------------------------
    def handle(self, message: str) -> str | None:
        """Execute one program message (units separated by ``;``); return the replies."""
        if ";" not in message and "#" not in message:  # one unit: no splitting, no joining
            unit = message.strip()
            return self._execute(unit, "")[0] if unit else None
        replies: list[str] = []
        path = ""
        for unit in _split(message, ";"):
            if unit:
                reply, path = self._execute(unit, path)
                if reply is not None:
                    replies.append(reply)
        return ";".join(replies) if replies else None

    def _execute(self, unit: str, path: str) -> tuple[str | None, str]:
        words = unit.split(None, 1)  # (not ``header, *rest = ...``: a list a message)
        header = words[0]
        found = self._scpi_headers.get((path, header) if path else header)
        if found is None:
            found = self._header(header, path)
        entry, suffixes, bare, query, path, error = found
        if entry is None:
            self.queue_error(error, header)
            return None, path
        # ``Call(...)`` written out: a class with a Python ``__init__`` is made through the
        # slow generic call path (~2.5 k CPU instructions a message; ~0.5 k this way)
        call = _new_call(Call)
        call.header = bare
        call.params = words[1] if len(words) > 1 else ""
        call.query = query
        call.suffixes = suffixes
        call._args = None
        try:
            if entry.setting is not None:
                reply = entry.setting.run(self, call)
            else:
                reply = getattr(self, entry.attribute)(call)
        except ScpiError as exc:
            self.queue_error(exc.code, exc.detail)
            return None, path
        return (reply if reply is None or isinstance(reply, str) else str(reply)), path

    def _header(self, header: str, path: str) -> _Header:
        """What ``header`` (as received, after the previous unit's ``path``) resolves to,
        memoised per class: the same few headers arrive over and over."""
        key = (path, header) if path else header
        found = self._scpi_headers.get(key)
        if found is None:
            found = self._resolve_header(header, path)
            if len(self._scpi_headers) >= _HEADER_CACHE_SIZE:
                self._scpi_headers.clear()
            self._scpi_headers[key] = found
        return found

    def _resolve_header(self, header: str, path: str) -> _Header:
        """SCPI header resolution: short/long forms, optional parts, numeric suffixes; a unit
        without leading ``:`` is tried relative to ``path`` first. Gives the entry (``None``
        with error -113 or -114), suffixes, bare header, query flag and the path after it."""
        query = header.endswith("?")
        bare = header[:-1] if query else header
        rooted = bare if bare.startswith(":") else ":" + bare
        candidates = (rooted,)
        if path and not bare.startswith((":", "*")):
            candidates = (path + rooted, rooted)
        for candidate in candidates:
            found = self._resolve(candidate, query)
            if found is not None:
                break
        else:
            return None, (), bare, query, path, -113
        entry, suffixes = found
        if not bare.startswith("*"):
            path = candidate[: candidate.rfind(":")]
        if entry.suffixes is not None and not entry.suffixes.issuperset(suffixes):
            return None, suffixes, bare, query, path, -114
        return entry, suffixes, bare, query, path, 0

    def _resolve(self, header: str, query: bool) -> tuple[_Entry, tuple[int, ...]] | None:
        key = (header.upper(), query)
        cache = self._scpi_cache
        if key in cache:
            return cache[key]
        found = None
        for entry in self._scpi_table:
            if entry.query == query:
                m = entry.regex.fullmatch(header)
                if m is not None:
                    found = entry, tuple(int(g) if g else 1 for g in m.groups())
                    break
        if len(cache) > 4096:
            cache.clear()
        cache[key] = found
        return found

    # -- IEEE 488.2 common commands and SYSTem -------------------------------------------------
    @command("*IDN?")
    def _idn(self, call: Call) -> str:
        return self.idn

    @command("*RST")
    def _rst(self, call: Call) -> None:
        self.reset()
        self.hooks.settings_changed(self.name)

    @command("*CLS")
    def _cls(self, call: Call) -> None:
        self.errors.clear()
        self.esr = 0

    @command("*OPC?", "*TST?")
    def _opc_query(self, call: Call) -> str:
        return "0" if call.header.upper().endswith("TST") else "1"

    @command("*OPC", "*WAI")
    def _opc(self, call: Call) -> None:
        if call.header.upper().endswith("OPC"):
            self.esr |= 0x01

    @command("*TRG")
    def _trg(self, call: Call) -> None:
        self.trigger()

    @command("*ESR?")
    def _esr(self, call: Call) -> str:
        value, self.esr = self.esr, 0
        return str(value)

    @command("*STB?")
    def _stb(self, call: Call) -> str:
        return str(self.status_byte())

    @command("*ESE", "*SRE")
    def _enable_set(self, call: Call) -> None:
        setattr(self, "ese" if "ESE" in call.header.upper() else "sre", call.integer(0, 255))

    @command("*ESE?", "*SRE?")
    def _enable_get(self, call: Call) -> str:
        return str(self.ese if "ESE" in call.header.upper() else self.sre)

    @command("SYSTem:ERRor[:NEXT]?")
    def _syst_err(self, call: Call) -> str:
        return self.next_error()

    @command("SYSTem:ERRor:COUNt?")
    def _syst_err_count(self, call: Call) -> str:
        return str(len(self.errors))

    @command("SYSTem:VERSion?")
    def _syst_version(self, call: Call) -> str:
        return "1999.0"


ScpiInstrument._build_table()

__all__ = [
    "ERROR_MESSAGES",
    "Boolean",
    "Call",
    "Choice",
    "Integer",
    "Number",
    "ScpiError",
    "ScpiInstrument",
    "Setting",
    "String",
    "command",
    "compile_pattern",
    "format_error",
    "parse_block",
]
