"""Simulated Tektronix AWG5014C arbitrary waveform generator (4 channels, 2 markers each).

Speaks the SCPI subset ``drivers/tektronix_awg5014c.py`` uses (Tektronix *AWG5000 and
AWG7000 Series Programmer Manual*); errors go to ``SYST:ERR?`` (-222 out of range, -224
illegal value, -221 settings conflict, -161 bad block, -114 no such channel/element, -113
unknown header).

Waveforms (``WLIS:WAV:NEW "<name>",<N>,INT`` then ``WLIS:WAV:DATA "<name>",#<block>``) are
decoded from the INTEGER format of the manual: one little-endian uint16 per point, bits
0-13 the 14-bit sample (0 = -1, 8191 = 0, 16382 = +1; 16383 reads as +1), bit 14 marker 1,
bit 15 marker 2. ``WLIS:WAV:DATA "<name>",<start>,<size>,#<block>`` writes part of a waveform.
A new waveform holds zeros. Deleting a waveform removes it from the sequence elements that
use it.

The sequence table (``SEQ:LENG``, ``SEQ:ELEM<i>:WAV<n>``, ``:LOOP:COUN``, ``:LOOP:INF``,
``:TWA``, ``:JTAR:TYPE``, ``:JTAR:IND``, ``:GOTO:STAT``, ``:GOTO:IND``) is kept per element
and exposed to the lab as :attr:`SimTektronixAWG5014C.sequence`, a list of
:class:`SimSequenceStep`. An element index outside ``1..SEQ:LENG`` is -114; jump and goto
targets outside it -222; the waveforms of one element must have equal lengths (-221).

``AWGC:RUN`` / ``AWGC:STOP`` start / stop the sequencer and call ``hooks.awg_started`` /
``hooks.awg_stopped`` (on the transition only); the real-time playback itself is the
lab's business (DESIGN.md, principle 3). ``AWGC:RST?`` reads 0 stopped, 1 waiting for a
trigger (triggered or gated mode with the external trigger, which this instrument cannot
see), 2 running.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .edits import Watched
from .protocols import LabHooks
from .scpi import (
    Boolean,
    Call,
    Choice,
    Integer,
    Number,
    ScpiError,
    ScpiInstrument,
    Setting,
    String,
    command,
)

CHANNELS = (1, 2, 3, 4)
MARKERS = (1, 2)
MAX_ELEMENTS = 8000
MAX_LOOPS = 65_536
MAX_POINTS = 16_200_000
MAX_NAME_LENGTH = 32
SAMPLE_RATE_RANGE_HZ = (1e7, 1.2e9)
AMPLITUDE_RANGE_VPP = (0.02, 4.5)
OFFSET_RANGE_V = (-2.25, 2.25)
MARKER_RANGE_V = {"HIGH": (-0.9, 2.7), "LOW": (-1.0, 2.6)}
_CODE_ZERO = 8191


@dataclass(frozen=True)
class SimWaveform:
    """A waveform in the user list: normalised samples (-1..1) and two marker tracks."""

    samples: npt.NDArray[np.float64]
    marker1: npt.NDArray[np.bool_]
    marker2: npt.NDArray[np.bool_]

    @classmethod
    def zeros(cls, points: int) -> SimWaveform:
        return cls.from_codes(np.full(points, _CODE_ZERO, dtype=np.uint16))

    @classmethod
    def from_codes(cls, codes: npt.NDArray[np.uint16]) -> SimWaveform:
        """Decode INTEGER-format points (see the module docstring)."""
        samples = np.minimum((codes & 0x3FFF).astype(np.float64) - _CODE_ZERO, _CODE_ZERO)
        arrays = (samples / _CODE_ZERO, (codes >> 14 & 1).astype(bool), (codes >> 15).astype(bool))
        for array in arrays:
            array.setflags(write=False)
        return cls(*arrays)

    def codes(self) -> npt.NDArray[np.uint16]:
        """Re-encode (used for partial writes)."""
        codes = np.rint(_CODE_ZERO + _CODE_ZERO * self.samples).astype(np.uint16)
        return codes | self.marker1.astype(np.uint16) << 14 | self.marker2.astype(np.uint16) << 15

    def __len__(self) -> int:
        return len(self.samples)


@dataclass(frozen=True)
class SimSequenceStep:
    """One sequence element as the lab sees it (same meaning as ``hal.AwgSequenceStep``):
    ``repetitions`` 0 is forever; ``event_jump_to`` / ``goto`` are 1-based element indices."""

    waveforms: dict[int, str]
    repetitions: int = 1
    wait_for_trigger: bool = False
    event_jump_to: int | None = None
    goto: int | None = None


@dataclass
class AwgChannelState(Watched):
    """One analog output and its two markers."""

    amplitude_vpp: float = 0.5
    offset_v: float = 0.0
    output_on: bool = False
    marker_high_v: dict[int, float] = field(default_factory=lambda: dict.fromkeys(MARKERS, 1.0))
    marker_low_v: dict[int, float] = field(default_factory=lambda: dict.fromkeys(MARKERS, 0.0))


@dataclass
class AwgElementState(Watched):
    """One sequence element as the instrument stores it."""

    waveforms: dict[int, str] = field(default_factory=dict)
    loop_count: int = 1
    loop_infinite: bool = False
    wait_trigger: bool = False
    jump_type: str = "OFF"
    jump_index: int = 1
    goto_state: bool = False
    goto_index: int = 1


class SimTektronixAWG5014C(Watched, ScpiInstrument):
    """Simulated AWG5014C; a :class:`~sim_backend.instruments.protocols.MessageHandler`.

    Attributes read by the lab: :attr:`sample_rate_hz`, ``channels[n]``
    (:class:`AwgChannelState`: ``amplitude_vpp``, ``offset_v``, ``output_on``, marker
    levels), :attr:`waveforms` (name -> :class:`SimWaveform`), :attr:`sequence`
    (list of :class:`SimSequenceStep`), :attr:`running`, :attr:`run_mode` and the trigger
    and event settings.
    """

    IDN = "TEKTRONIX,AWG5014C,B012345,SCPI:99.0 FW:4.6.0.7"
    #: starting and stopping the sequence is no edit of what it plays (``edits``)
    _UNWATCHED = frozenset({"running"})

    run_mode = Setting(
        "AWGControl:RMODe", Choice("CONTinuous", "TRIGgered", "GATed", "SEQuence"), "CONT"
    )
    trigger_source = Setting(
        "TRIGger[:SEQuence]:SOURce", Choice("INTernal", "EXTernal"), default="EXT"
    )
    trigger_level_v = Setting(
        "TRIGger[:SEQuence]:LEVel", Number(-5.0, 5.0, "V", fmt=".3f"), default=1.4
    )
    trigger_slope = Setting(
        "TRIGger[:SEQuence]:SLOPe", Choice("POSitive", "NEGative"), default="POS"
    )
    trigger_interval_s = Setting(
        "TRIGger[:SEQuence]:TIMer", Number(1e-6, 10.0, "s", fmt=".6e"), default=1e-3
    )
    event_level_v = Setting("EVENt[:SEQuence]:LEVel", Number(-5.0, 5.0, "V", fmt=".3f"), 1.4)
    event_jump_timing = Setting(
        "EVENt[:SEQuence]:JTIMing", Choice("SYNChronous", "ASYNChronous"), default="SYNC"
    )

    def __init__(self, name: str, hooks: LabHooks | None = None, serial: str = "B012345") -> None:
        super().__init__(name, hooks)
        self.idn = f"TEKTRONIX,AWG5014C,{serial},SCPI:99.0 FW:4.6.0.7"
        self.sample_rate_hz = 1.2e9
        self.channels: dict[int, AwgChannelState] = {n: AwgChannelState() for n in CHANNELS}
        self.waveforms: dict[str, SimWaveform] = {}
        self.elements: list[AwgElementState] = []
        self.running = False

    def reset(self) -> None:
        """``*RST``: stop, default settings, empty sequence; the user waveform list stays."""
        super().reset()
        self._set_running(False)
        self.sample_rate_hz = 1.2e9
        self.channels = {n: AwgChannelState() for n in CHANNELS}
        self.elements = []

    # -- what the lab reads ----------------------------------------------------------------------
    @property
    def sequence(self) -> list[SimSequenceStep]:
        """The sequence table as steps (``repetitions`` 0 = loop forever)."""
        count = len(self.elements)
        steps = []
        for i, e in enumerate(self.elements, start=1):
            jump = {"IND": e.jump_index, "NEXT": i % count + 1}.get(e.jump_type)
            steps.append(
                SimSequenceStep(
                    waveforms=dict(sorted(e.waveforms.items())),
                    repetitions=0 if e.loop_infinite else e.loop_count,
                    wait_for_trigger=e.wait_trigger,
                    event_jump_to=jump,
                    goto=e.goto_index if e.goto_state else None,
                )
            )
        return steps

    @property
    def run_state(self) -> int:
        """0 stopped, 1 waiting for trigger, 2 running (``AWGC:RST?``)."""
        if not self.running:
            return 0
        waiting = self.run_mode in ("TRIG", "GAT") and self.trigger_source == "EXT"
        return 1 if waiting else 2

    # -- run control ------------------------------------------------------------------------------
    def _set_running(self, running: bool) -> None:
        if running == self.running:
            return
        self.running = running
        if running:
            self.hooks.awg_started(self.name)
        else:
            self.hooks.awg_stopped(self.name)

    @command("AWGControl:RUN[:IMMediate]")
    def _run(self, call: Call) -> None:
        call.expect_args(0)
        self._set_running(True)

    @command("AWGControl:STOP[:IMMediate]")
    def _stop(self, call: Call) -> None:
        call.expect_args(0)
        self._set_running(False)

    @command("AWGControl:RSTate?")
    def _run_state(self, call: Call) -> str:
        call.expect_args(0)
        return str(self.run_state)

    # -- clock and outputs ------------------------------------------------------------------------
    @command("SOURce#:FREQuency[:CW]", suffixes=(1,))
    def _sample_rate(self, call: Call) -> None:
        kind = Number(*SAMPLE_RATE_RANGE_HZ, "Hz")
        self.sample_rate_hz = float(kind.parse(call.expect_args(1)[0]))
        self.setting_changed("sample_rate_hz", None, self.sample_rate_hz)

    @command("SOURce#:FREQuency[:CW]?", suffixes=(1,))
    def _sample_rate_query(self, call: Call) -> str:
        call.expect_args(0)
        return f"{self.sample_rate_hz:.10E}"

    def _channel_value(self, call: Call, attr: str, kind: Number | Boolean) -> str | None:
        channel = self.channels[call.suffix]
        if call.query:
            call.expect_args(0)
            value = getattr(channel, attr)
            return kind.format(value)
        value = kind.parse(call.expect_args(1)[0])
        setattr(channel, attr, float(value) if isinstance(kind, Number) else bool(value))
        self.setting_changed(attr, call.suffix, value)
        return None

    @command(
        "SOURce#:VOLTage[:LEVel][:IMMediate][:AMPLitude]",
        "SOURce#:VOLTage[:LEVel][:IMMediate][:AMPLitude]?",
        suffixes=CHANNELS,
    )
    def _amplitude(self, call: Call) -> str | None:
        return self._channel_value(
            call, "amplitude_vpp", Number(*AMPLITUDE_RANGE_VPP, "V", fmt=".4f")
        )

    @command(
        "SOURce#:VOLTage[:LEVel][:IMMediate]:OFFSet",
        "SOURce#:VOLTage[:LEVel][:IMMediate]:OFFSet?",
        suffixes=CHANNELS,
    )
    def _offset(self, call: Call) -> str | None:
        return self._channel_value(call, "offset_v", Number(*OFFSET_RANGE_V, "V", fmt=".4f"))

    @command("OUTPut#[:STATe]", "OUTPut#[:STATe]?", suffixes=CHANNELS)
    def _output(self, call: Call) -> str | None:
        return self._channel_value(call, "output_on", Boolean())

    @command(
        "SOURce#:MARKer#:VOLTage[:LEVel][:IMMediate]:HIGH",
        "SOURce#:MARKer#:VOLTage[:LEVel][:IMMediate]:HIGH?",
        "SOURce#:MARKer#:VOLTage[:LEVel][:IMMediate]:LOW",
        "SOURce#:MARKer#:VOLTage[:LEVel][:IMMediate]:LOW?",
    )
    def _marker_level(self, call: Call) -> str | None:
        n, m = call.suffixes
        if n not in CHANNELS or m not in MARKERS:
            raise ScpiError(-114, f"no channel {n} marker {m}")
        level = "HIGH" if call.header.upper().rstrip("?").endswith("HIGH") else "LOW"
        channel = self.channels[n]
        levels = channel.marker_high_v if level == "HIGH" else channel.marker_low_v
        kind = Number(*MARKER_RANGE_V[level], "V", fmt=".3f")
        if call.query:
            call.expect_args(0)
            return kind.format(levels[m])
        levels[m] = float(kind.parse(call.expect_args(1)[0]))
        self.setting_changed(f"marker_{level.lower()}_v", (n, m), levels[m])
        return None

    # -- waveform list ----------------------------------------------------------------------------
    def _existing(self, name: str) -> SimWaveform:
        waveform = self.waveforms.get(name)
        if waveform is None:
            raise ScpiError(-224, f"waveform {name!r} does not exist")
        return waveform

    @command("WLISt:WAVeform:NEW")
    def _new_waveform(self, call: Call) -> None:
        args = call.expect_args(3)
        name = String(MAX_NAME_LENGTH).parse(args[0])
        points = int(Integer(1, MAX_POINTS).parse(args[1]))
        if Choice("INTeger", "REAL").parse(args[2]) != "INT":
            raise ScpiError(-224, "only INTeger waveforms are simulated")
        if not name or name in self.waveforms:
            raise ScpiError(-224, f"waveform name {name!r} is empty or already in use")
        self.waveforms[name] = SimWaveform.zeros(points)
        self.setting_changed("waveforms", name, points)

    @command("WLISt:WAVeform:DATA")
    def _waveform_data(self, call: Call) -> None:
        args = call.expect_args(2, 4)
        if len(args) == 3:
            raise ScpiError(-109, "WLIS:WAV:DATA takes name[,start[,size]],block")
        name = String().parse(args[0])
        waveform = self._existing(name)
        data = call.block(len(args) - 1)
        if len(data) % 2:
            raise ScpiError(-161, f"INTeger data needs 2 bytes per point, got {len(data)} bytes")
        codes = np.frombuffer(data, dtype="<u2").astype(np.uint16)
        start = int(Integer(0, len(waveform) - 1).parse(args[1])) if len(args) == 4 else 0
        size = int(Integer(1, len(waveform)).parse(args[2])) if len(args) == 4 else len(codes)
        if size != len(codes) or start + size > len(waveform):
            raise ScpiError(
                -222,
                f"{len(codes)} points from {start} do not fit waveform {name!r} "
                f"of {len(waveform)} points",
            )
        if start == 0 and size == len(waveform):
            new = codes
        else:
            new = waveform.codes()
            new[start : start + size] = codes
        self.waveforms[name] = SimWaveform.from_codes(new)
        self.setting_changed("waveforms", name, len(codes))

    @command("WLISt:WAVeform:DELete")
    def _delete_waveform(self, call: Call) -> None:
        arg = call.expect_args(1)[0]
        if arg.strip().upper() == "ALL":
            names = list(self.waveforms)
        else:
            name = String().parse(arg)
            self._existing(name)
            names = [name]
        for name in names:
            del self.waveforms[name]
        for element in self.elements:
            for ch in [c for c, w in element.waveforms.items() if w in names]:
                del element.waveforms[ch]
        self.setting_changed("waveforms", None, names)

    # -- sequence table ---------------------------------------------------------------------------
    @command("SEQuence:LENGth")
    def _length(self, call: Call) -> None:
        count = int(Integer(0, MAX_ELEMENTS).parse(call.expect_args(1)[0]))
        self.elements = self.elements[:count] + [
            AwgElementState() for _ in range(count - len(self.elements))
        ]
        self.setting_changed("sequence", None, count)

    @command("SEQuence:LENGth?")
    def _length_query(self, call: Call) -> str:
        call.expect_args(0)
        return str(len(self.elements))

    def _element(self, call: Call) -> AwgElementState:
        i = call.suffixes[0]
        if not 1 <= i <= len(self.elements):
            raise ScpiError(-114, f"element {i} outside 1..{len(self.elements)} (SEQ:LENG)")
        return self.elements[i - 1]

    def _index_kind(self) -> Number:
        return Integer(1, max(len(self.elements), 1))

    @command("SEQuence:ELEMent#:WAVeform#", "SEQuence:ELEMent#:WAVeform#?")
    def _element_waveform(self, call: Call) -> str | None:
        element = self._element(call)
        channel = call.suffixes[1]
        if channel not in CHANNELS:
            raise ScpiError(-114, f"no channel {channel}")
        if call.query:
            call.expect_args(0)
            return String().format(element.waveforms.get(channel, ""))
        name = String().parse(call.expect_args(1)[0])
        if not name:
            element.waveforms.pop(channel, None)
        else:
            length = len(self._existing(name))
            others = {
                len(self.waveforms[w])
                for c, w in element.waveforms.items()
                if c != channel and w in self.waveforms
            }
            if others and others != {length}:
                raise ScpiError(
                    -221,
                    f"waveform {name!r} ({length} points) differs in length from the "
                    f"element's other waveforms ({sorted(others)[0]} points)",
                )
            element.waveforms[channel] = name
        self.setting_changed("sequence", call.suffixes, name)
        return None

    def _element_value(self, call: Call, attr: str, kind: Number | Boolean | Choice) -> str | None:
        element = self._element(call)
        if call.query:
            call.expect_args(0)
            return kind.format(getattr(element, attr))
        value = kind.parse(call.expect_args(1)[0])
        setattr(element, attr, value)
        self.setting_changed("sequence", call.suffixes, value)
        return None

    @command("SEQuence:ELEMent#:LOOP:COUNt", "SEQuence:ELEMent#:LOOP:COUNt?")
    def _loop_count(self, call: Call) -> str | None:
        return self._element_value(call, "loop_count", Integer(1, MAX_LOOPS))

    @command("SEQuence:ELEMent#:LOOP:INFinite", "SEQuence:ELEMent#:LOOP:INFinite?")
    def _loop_infinite(self, call: Call) -> str | None:
        return self._element_value(call, "loop_infinite", Boolean())

    @command("SEQuence:ELEMent#:TWAit", "SEQuence:ELEMent#:TWAit?")
    def _wait_trigger(self, call: Call) -> str | None:
        return self._element_value(call, "wait_trigger", Boolean())

    @command("SEQuence:ELEMent#:JTARget:TYPE", "SEQuence:ELEMent#:JTARget:TYPE?")
    def _jump_type(self, call: Call) -> str | None:
        return self._element_value(call, "jump_type", Choice("INDex", "NEXT", "OFF"))

    @command("SEQuence:ELEMent#:JTARget:INDex", "SEQuence:ELEMent#:JTARget:INDex?")
    def _jump_index(self, call: Call) -> str | None:
        return self._element_value(call, "jump_index", self._index_kind())

    @command("SEQuence:ELEMent#:GOTO:STATe", "SEQuence:ELEMent#:GOTO:STATe?")
    def _goto_state(self, call: Call) -> str | None:
        return self._element_value(call, "goto_state", Boolean())

    @command("SEQuence:ELEMent#:GOTO:INDex", "SEQuence:ELEMent#:GOTO:INDex?")
    def _goto_index(self, call: Call) -> str | None:
        return self._element_value(call, "goto_index", self._index_kind())
