"""Simulated ID Quantique ID900 Time Controller.

Speaks the SCPI subset ``drivers/idq_id900.py`` uses (ID Quantique *ID900 Time Controller
User Manual*, chapter "Remote control / SCPI commands"). The unit's SCPI port is a
ZeroMQ REQ/REP socket, so **every** message is answered: queries with their value, set
commands with ``OK``, errors with ``SCPI_ERR_<kind>: <detail>`` (``SCPI_ERR_INVALID_CMD``,
``SCPI_ERR_PARAM_TYPE``, ``SCPI_ERR_PARAM_RANGE``); there is no error queue. Headers
accept the short (``INPU``) or long (``INPUT``) form, case-insensitively.

What it measures comes from the simulated lab (:class:`LabHooks`):

* ``INPU<n>:COUN?`` -- ``round(rate * integration time)`` with the rate of input ``n`` from
  ``hooks.input_count_rates_hz`` (a Poisson sample with that mean when the instrument is
  given an ``rng``); 0 for a disabled input.
* time tags -- drained from ``hooks.time_tags`` (delays already applied by the lab, from
  :attr:`ID900InputState.effective_delay_ps`) before every set command and every
  ``...:DATA?`` query is processed, so a tag is attributed to the settings in force when it
  arrived. Tags of disabled inputs are
  dropped. Each input keeps a bounded buffer (:data:`MAX_RAW_TAGS`, oldest dropped) that
  ``RAW<n>:DATA?`` returns as ``[t0,t1,...]`` (ps) and clears.
* histograms -- start-stop histograms accumulated from the same tags while the
  acquisition gate ``TSGE8`` is on: each stop event is binned at its delay after the most
  recent start event (``(dt - MIN) // BWID``, ``BCOU`` bins). Block ``STAR`` is the start
  input (tag channel 0), ``INPU<n>`` input ``n``; the combiner blocks ``TSCO5..7`` produce no
  events here. Changing a histogram's links or binning clears it, as does ``FLUS``.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .protocols import LabHooks, NullLabHooks

INPUTS = (1, 2, 3, 4)
HISTOGRAMS = (1, 2, 3, 4)
COMBINERS = (5, 6, 7)
GATE_GENERATOR = 8
BLOCKS = ("NONE", "STAR", "INPU1", "INPU2", "INPU3", "INPU4", "TSCO5", "TSCO6", "TSCO7")
#: Per-input bound of the time-tag buffer read by ``RAW<n>:DATA?`` (oldest tags dropped).
MAX_RAW_TAGS = 1_000_000

THRESHOLD_RANGE_V = (-2.0, 2.0)
INTEGRATION_RANGE_MS = (1, 65_535)
DELAY_RANGE_PS = (0, 10**12)
WINDOW_RANGE_PS = (0, 10**9)
HIST_MIN_RANGE_PS = (0, 10**12)
HIST_BWID_RANGE_PS = (1, 10**9)
HIST_BCOU_RANGE = (1, 16_384)


@dataclass
class ID900InputState:
    """One input with its discriminator, counter and delay block (block ``n`` of input ``n``)."""

    channel: int
    enabled: bool = False
    coupling: str = "DC"
    edge: str = "RISING"
    threshold_v: float = 0.5
    integration_time_ms: int = 1000
    delay_ps: int = 0
    delay_link: str = "NONE"

    @property
    def delay_linked(self) -> bool:
        """Delay block ``n`` is linked to this input (``DELAY<n>:INPO:LINK INPU<n>``)."""
        return self.delay_link == f"INPU{self.channel}"

    @property
    def effective_delay_ps(self) -> int:
        """Delay the lab must apply to this input's tags (0 unless the block is linked)."""
        return self.delay_ps if self.delay_linked else 0


@dataclass
class ID900HistogramState:
    """One start-stop histogram block and its accumulated counts."""

    reference: str = "NONE"
    stop: str = "NONE"
    minimum_ps: int = 0
    bin_width_ps: int = 100
    bin_count: int = 8
    counts: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(8, dtype=np.int64))
    last_start_ps: int | None = None

    def clear(self) -> None:
        self.counts = np.zeros(self.bin_count, dtype=np.int64)
        self.last_start_ps = None

    def accumulate(self, starts: npt.NDArray[np.int64], stops: npt.NDArray[np.int64]) -> None:
        """Bin every stop at its delay after the latest start at or before it (sorted input)."""
        if len(stops):
            if len(starts):
                idx = np.searchsorted(starts, stops, side="right") - 1
                previous = starts[np.maximum(idx, 0)]
                valid = idx >= 0
            else:
                previous = np.zeros_like(stops)
                valid = np.zeros(len(stops), dtype=bool)
            if self.last_start_ps is not None:
                previous = np.where(valid, previous, self.last_start_ps)
                valid = np.ones(len(stops), dtype=bool)
            dt = stops[valid] - previous[valid]
            bins = (dt - self.minimum_ps) // self.bin_width_ps
            bins = bins[(dt >= self.minimum_ps) & (bins < self.bin_count)]
            self.counts += np.bincount(bins, minlength=self.bin_count)[: self.bin_count]
        if len(starts):
            self.last_start_ps = int(starts[-1])


class _ScpiError(Exception):
    """Internal: becomes a ``SCPI_ERR_<kind>: <detail>`` reply."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"SCPI_ERR_{kind}" + (f": {detail}" if detail else ""))


def _header(spec: str) -> re.Pattern[str]:
    """``"INPUt#:ENABle"`` -> regex accepting ``INPU1:ENAB`` or ``INPUT1:ENABLE`` (any case);
    ``#`` is a numeric suffix (captured)."""
    parts = []
    for mnemonic in spec.split(":"):
        suffix = mnemonic.endswith("#")
        word = mnemonic.rstrip("#")
        short = "".join(c for c in word if not c.islower())
        rest = word[len(short) :].upper()
        regex = re.escape(short) + (f"(?:{re.escape(rest)})?" if rest else "")
        parts.append(regex + (r"(\d+)" if suffix else ""))
    return re.compile("^" + ":".join(parts) + "$", re.IGNORECASE)


Handler = Callable[[tuple[int, ...], str | None], str]


class SimIdqID900:
    """Simulated ID900; a :class:`~sim_backend.instruments.protocols.MessageHandler`.

    Args:
        name: instrument name (passed to the lab hooks).
        hooks: the simulated lab: count rates, time tags, change notifications.
        serial: serial number shown by ``*IDN?``.
        rng: if given, counter values are Poisson samples around ``rate * integration
            time`` (seed it for a reproducible dry run); else the rounded mean.
    """

    def __init__(
        self,
        name: str,
        hooks: LabHooks | None = None,
        serial: str = "1701B0042",
        rng: np.random.Generator | None = None,
    ) -> None:
        self.name = name
        self.termination = "\n"
        self.hooks: LabHooks = hooks if hooks is not None else NullLabHooks()
        self.serial = serial
        self.rng = rng
        self.firmware = "6.1.2"
        self.inputs: dict[int, ID900InputState] = {n: ID900InputState(n) for n in INPUTS}
        self.histograms: dict[int, ID900HistogramState] = {
            m: ID900HistogramState() for m in HISTOGRAMS
        }
        self.coincidence_windows_ps: dict[int, tuple[int, int]] = {c: (0, 1000) for c in COMBINERS}
        self.acquisition_on = False
        self._raw: dict[int, deque[npt.NDArray[np.int64]]] = {n: deque() for n in INPUTS}
        self._raw_count: dict[int, int] = dict.fromkeys(INPUTS, 0)
        self._commands: list[tuple[re.Pattern[str], Handler]] = [
            (_header("*IDN"), self._idn),
            (_header("INPUt#:ENABle"), self._input_enable),
            (_header("INPUt#:COUPling"), self._input_coupling),
            (_header("INPUt#:EDGE"), self._input_edge),
            (_header("INPUt#:THREshold"), self._input_threshold),
            (_header("INPUt#:COUNter:INTEgrationtime"), self._input_integration),
            (_header("INPUt#:COUNter"), self._input_counts),
            (_header("DELAY#:INPOrt:LINK"), self._delay_link),
            (_header("DELAY#:VALUe"), self._delay_value),
            (_header("TSCOmbiner#:WINDow:BEGIN:DELAY"), self._window_begin),
            (_header("TSCOmbiner#:WINDow:END:DELAY"), self._window_end),
            (_header("TSGEnerator#:ENABle"), self._gate),
            (_header("HISTogram#:INPOrt:REF:LINK"), self._hist_reference),
            (_header("HISTogram#:INPOrt:STOP:LINK"), self._hist_stop),
            (_header("HISTogram#:MINimum"), self._hist_minimum),
            (_header("HISTogram#:BWIDth"), self._hist_bin_width),
            (_header("HISTogram#:BCOUnt"), self._hist_bin_count),
            (_header("HISTogram#:DATA"), self._hist_data),
            (_header("HISTogram#:FLUSh"), self._hist_flush),
            (_header("RAW#:DATA"), self._raw_data),
        ]

    # -- what the physics reads -----------------------------------------------------------
    @property
    def coincidence_window_ps(self) -> int:
        """Width of the TSCO5 coincidence window (end - begin), ps."""
        begin, end = self.coincidence_windows_ps[5]
        return end - begin

    # -- MessageHandler -----------------------------------------------------------------------
    def handle(self, message: str) -> str | None:
        text = message.strip()
        header, _, argument = text.partition(" ")
        query = header.endswith("?")
        if not query or header.upper().endswith(":DATA?"):
            # tags that arrived before a setting changes (or before they are read) are
            # attributed to the settings in force until now
            self._collect_tags()
        header = header.removesuffix("?")
        arg = argument.strip() if argument.strip() else None
        try:
            if query and arg is not None:
                raise _ScpiError("INVALID_CMD", f"unexpected parameter in query {text!r}")
            for pattern, handler in self._commands:
                match = pattern.match(header)
                if match:
                    suffixes = tuple(int(g) for g in match.groups())
                    return handler(suffixes, None if query else (arg or ""))
            raise _ScpiError("INVALID_CMD", f"unknown command {text!r}")
        except _ScpiError as exc:
            return str(exc)

    # -- helpers ------------------------------------------------------------------------------
    def _changed(self) -> str:
        self.hooks.settings_changed(self.name)
        return "OK"

    @staticmethod
    def _index(value: int, allowed: tuple[int, ...], what: str) -> int:
        if value not in allowed:
            raise _ScpiError("INVALID_CMD", f"no {what} {value}")
        return value

    def _input(self, suffixes: tuple[int, ...]) -> ID900InputState:
        return self.inputs[self._index(suffixes[0], INPUTS, "input")]

    def _histogram(self, suffixes: tuple[int, ...]) -> ID900HistogramState:
        return self.histograms[self._index(suffixes[0], HISTOGRAMS, "histogram")]

    @staticmethod
    def _require(arg: str | None) -> str:
        if not arg:
            raise _ScpiError("PARAM_TYPE", "missing parameter")
        return arg

    @staticmethod
    def _on_off(arg: str) -> bool:
        value = arg.upper()
        if value in ("ON", "1"):
            return True
        if value in ("OFF", "0"):
            return False
        raise _ScpiError("PARAM_TYPE", f"expected ON or OFF, got {arg!r}")

    @staticmethod
    def _choice(arg: str, choices: tuple[str, ...], what: str) -> str:
        value = arg.strip().strip('"').upper()
        if value not in choices:
            raise _ScpiError("PARAM_TYPE", f"{what} {arg!r} not one of {', '.join(choices)}")
        return value

    @staticmethod
    def _integer(arg: str, bounds: tuple[int, int], what: str, unit: str = "") -> int:
        try:
            number = float(arg)
        except ValueError:
            raise _ScpiError("PARAM_TYPE", f"{what} {arg!r} is not a number") from None
        if not math.isfinite(number) or number != int(number):
            raise _ScpiError("PARAM_TYPE", f"{what} {arg!r} is not an integer")
        lo, hi = bounds
        if not lo <= number <= hi:
            raise _ScpiError("PARAM_RANGE", f"{what} {arg}{unit} out of range {lo}..{hi}{unit}")
        return int(number)

    # -- identity -----------------------------------------------------------------------------
    def _idn(self, suffixes: tuple[int, ...], arg: str | None) -> str:
        if arg is not None:
            raise _ScpiError("INVALID_CMD", "*IDN is a query")
        return f"ID Quantique,ID900,{self.serial},{self.firmware}"

    # -- inputs -------------------------------------------------------------------------------
    def _input_enable(self, suffixes: tuple[int, ...], arg: str | None) -> str:
        inp = self._input(suffixes)
        if arg is None:
            return "ON" if inp.enabled else "OFF"
        inp.enabled = self._on_off(self._require(arg))
        return self._changed()

    def _input_coupling(self, suffixes: tuple[int, ...], arg: str | None) -> str:
        inp = self._input(suffixes)
        if arg is None:
            return inp.coupling
        inp.coupling = self._choice(self._require(arg), ("AC", "DC"), "coupling")
        return self._changed()

    def _input_edge(self, suffixes: tuple[int, ...], arg: str | None) -> str:
        inp = self._input(suffixes)
        if arg is None:
            return inp.edge
        edge = self._require(arg).upper()
        edge = {"RIS": "RISING", "FALL": "FALLING"}.get(edge, edge)
        inp.edge = self._choice(edge, ("RISING", "FALLING"), "edge")
        return self._changed()

    def _input_threshold(self, suffixes: tuple[int, ...], arg: str | None) -> str:
        inp = self._input(suffixes)
        if arg is None:
            return f"{inp.threshold_v:.3f}V"
        text = self._require(arg).upper().replace(" ", "")
        scale = 1e-3 if text.endswith("MV") else 1.0
        text = text.removesuffix("MV").removesuffix("V")
        try:
            value = float(text) * scale
        except ValueError:
            raise _ScpiError("PARAM_TYPE", f"threshold {arg!r} is not a voltage") from None
        lo, hi = THRESHOLD_RANGE_V
        if not lo <= value <= hi:
            raise _ScpiError("PARAM_RANGE", f"threshold {value:g} V out of range {lo:g}..{hi:g} V")
        inp.threshold_v = value
        return self._changed()

    def _input_integration(self, suffixes: tuple[int, ...], arg: str | None) -> str:
        inp = self._input(suffixes)
        if arg is None:
            return str(inp.integration_time_ms)
        inp.integration_time_ms = self._integer(
            self._require(arg), INTEGRATION_RANGE_MS, "integration time", " ms"
        )
        return self._changed()

    def _input_counts(self, suffixes: tuple[int, ...], arg: str | None) -> str:
        inp = self._input(suffixes)
        if arg is not None:
            raise _ScpiError("INVALID_CMD", "counter value is read-only")
        if not inp.enabled:
            return "0"
        rate = float(self.hooks.input_count_rates_hz(self.name).get(inp.channel, 0.0))
        mean = max(rate, 0.0) * inp.integration_time_ms / 1e3
        return str(int(self.rng.poisson(mean)) if self.rng is not None else round(mean))

    # -- delay blocks -------------------------------------------------------------------------
    def _delay_link(self, suffixes: tuple[int, ...], arg: str | None) -> str:
        inp = self.inputs[self._index(suffixes[0], INPUTS, "delay block")]
        if arg is None:
            return inp.delay_link
        inp.delay_link = self._choice(self._require(arg), BLOCKS, "block")
        return self._changed()

    def _delay_value(self, suffixes: tuple[int, ...], arg: str | None) -> str:
        inp = self.inputs[self._index(suffixes[0], INPUTS, "delay block")]
        if arg is None:
            return str(inp.delay_ps)
        inp.delay_ps = self._integer(self._require(arg), DELAY_RANGE_PS, "delay", " ps")
        return self._changed()

    # -- coincidence window and acquisition gate -----------------------------------------------
    def _window(self, suffixes: tuple[int, ...], arg: str | None, end: bool) -> str:
        combiner = self._index(suffixes[0], COMBINERS, "combiner")
        begin_ps, end_ps = self.coincidence_windows_ps[combiner]
        if arg is None:
            return str(end_ps if end else begin_ps)
        value = self._integer(self._require(arg), WINDOW_RANGE_PS, "window delay", " ps")
        self.coincidence_windows_ps[combiner] = (begin_ps, value) if end else (value, end_ps)
        return self._changed()

    def _window_begin(self, suffixes: tuple[int, ...], arg: str | None) -> str:
        return self._window(suffixes, arg, end=False)

    def _window_end(self, suffixes: tuple[int, ...], arg: str | None) -> str:
        return self._window(suffixes, arg, end=True)

    def _gate(self, suffixes: tuple[int, ...], arg: str | None) -> str:
        self._index(suffixes[0], (GATE_GENERATOR,), "timestamp generator")
        if arg is None:
            return "ON" if self.acquisition_on else "OFF"
        self.acquisition_on = self._on_off(self._require(arg))
        return self._changed()

    # -- histograms ---------------------------------------------------------------------------
    def _hist_link(self, suffixes: tuple[int, ...], arg: str | None, attr: str) -> str:
        hist = self._histogram(suffixes)
        if arg is None:
            return str(getattr(hist, attr))
        setattr(hist, attr, self._choice(self._require(arg), BLOCKS, "block"))
        hist.clear()
        return self._changed()

    def _hist_reference(self, suffixes: tuple[int, ...], arg: str | None) -> str:
        return self._hist_link(suffixes, arg, "reference")

    def _hist_stop(self, suffixes: tuple[int, ...], arg: str | None) -> str:
        return self._hist_link(suffixes, arg, "stop")

    def _hist_number(
        self, suffixes: tuple[int, ...], arg: str | None, attr: str, bounds: tuple[int, int]
    ) -> str:
        hist = self._histogram(suffixes)
        if arg is None:
            return str(getattr(hist, attr))
        what = attr.removesuffix("_ps").replace("_", " ")
        setattr(hist, attr, self._integer(self._require(arg), bounds, what))
        hist.clear()
        return self._changed()

    def _hist_minimum(self, suffixes: tuple[int, ...], arg: str | None) -> str:
        return self._hist_number(suffixes, arg, "minimum_ps", HIST_MIN_RANGE_PS)

    def _hist_bin_width(self, suffixes: tuple[int, ...], arg: str | None) -> str:
        return self._hist_number(suffixes, arg, "bin_width_ps", HIST_BWID_RANGE_PS)

    def _hist_bin_count(self, suffixes: tuple[int, ...], arg: str | None) -> str:
        return self._hist_number(suffixes, arg, "bin_count", HIST_BCOU_RANGE)

    def _hist_data(self, suffixes: tuple[int, ...], arg: str | None) -> str:
        hist = self._histogram(suffixes)
        if arg is not None:
            raise _ScpiError("INVALID_CMD", "histogram data is read-only")
        return _format_list(hist.counts)

    def _hist_flush(self, suffixes: tuple[int, ...], arg: str | None) -> str:
        hist = self._histogram(suffixes)
        if arg is None or arg:
            raise _ScpiError("INVALID_CMD", "FLUS takes no parameter and is not a query")
        hist.clear()
        return "OK"

    # -- time tags ----------------------------------------------------------------------------
    def _raw_data(self, suffixes: tuple[int, ...], arg: str | None) -> str:
        channel = self._index(suffixes[0], INPUTS, "input")
        if arg is not None:
            raise _ScpiError("INVALID_CMD", "RAW data is read-only")
        chunks = self._raw[channel]
        times = np.concatenate(list(chunks)) if chunks else np.empty(0, dtype=np.int64)
        chunks.clear()
        self._raw_count[channel] = 0
        return _format_list(times)

    def _collect_tags(self) -> None:
        """Drain the lab's new tags into the RAW buffers and (gate on) the histograms."""
        tags = np.asarray(self.hooks.time_tags(self.name), dtype=np.int64).reshape(-1, 2)
        if not len(tags):
            return
        tags = tags[np.argsort(tags[:, 1], kind="stable")]
        channels, times = tags[:, 0], tags[:, 1]
        per_block: dict[str, npt.NDArray[np.int64]] = {"STAR": times[channels == 0]}
        for n, inp in self.inputs.items():
            selected = times[channels == n] if inp.enabled else times[:0]
            per_block[f"INPU{n}"] = selected
            if len(selected):
                self._append_raw(n, selected)
        if not self.acquisition_on:
            return
        empty = times[:0]
        for hist in self.histograms.values():
            if hist.reference == "NONE" or hist.stop == "NONE":
                continue
            hist.accumulate(per_block.get(hist.reference, empty), per_block.get(hist.stop, empty))

    def _append_raw(self, channel: int, times: npt.NDArray[np.int64]) -> None:
        chunks = self._raw[channel]
        chunks.append(times.copy())
        self._raw_count[channel] += len(times)
        while self._raw_count[channel] > MAX_RAW_TAGS:
            excess = self._raw_count[channel] - MAX_RAW_TAGS
            oldest = chunks[0]
            if len(oldest) <= excess:
                chunks.popleft()
                self._raw_count[channel] -= len(oldest)
            else:
                chunks[0] = oldest[excess:]
                self._raw_count[channel] -= excess


def _format_list(values: npt.NDArray[np.int64]) -> str:
    return "[" + ",".join(str(int(v)) for v in values) + "]"
