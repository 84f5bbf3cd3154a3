"""Tektronix AWG5014C arbitrary waveform generator (4 channels, 2 markers each).

Command set: Tektronix *AWG5000 and AWG7000 Series Arbitrary Waveform Generators
Programmer Manual* (077-0062-xx), sections "Command groups" -> AWG control, Output,
Source, Trigger, Event, Sequence, Waveform list, and "SYSTem:ERRor[:NEXT]?". Waveforms
are uploaded in INTEGER format: one little-endian uint16 per point, bits 0-13 the
14-bit sample (0 = -1, 8191 = 0, 16382 = +1), bit 14 marker 1, bit 15 marker 2, sent as
an IEEE 488.2 definite-length block.

======================================  ======================================  ====
command                                 meaning                                 unit
======================================  ======================================  ====
``*IDN?``                               ``TEKTRONIX,AWG5014C,<serial>,<fw>``
``SYST:ERR?``                           error queue, ``0,"No error"``
``SOUR1:FREQ <x>`` / ?                  sample rate                             Sa/s
``AWGC:RMOD CONT|TRIG|GAT|SEQ`` / ?     run mode
``AWGC:RUN`` / ``AWGC:STOP``            start / stop output
``AWGC:RST?``                           0 stopped, 1 waiting for trigger, 2 on
``TRIG:SOUR INT|EXT``, ``TRIG:LEV``     trigger source, level                   V
``TRIG:SLOP POS|NEG``, ``TRIG:TIM``     trigger slope, internal interval        s
``EVEN:LEV``, ``EVEN:JTIM SYNC|ASYNC``  event input level, jump timing          V
``SOUR<n>:VOLT``, ``SOUR<n>:VOLT:OFFS``  amplitude (Vpp), offset                 V
``SOUR<n>:MARK<m>:VOLT:HIGH|LOW``       marker levels                           V
``OUTP<n>:STAT 0|1``                    channel output
``WLIS:WAV:DEL ALL``                    clear the user waveform list
``WLIS:WAV:NEW "<name>",<N>,INT``       create a waveform
``WLIS:WAV:DATA "<name>",#<block>``     waveform data (binary block)
``SEQ:LENG <n>``                        number of sequence elements
``SEQ:ELEM<i>:WAV<n> "<name>"``         waveform of channel n in element i
``SEQ:ELEM<i>:LOOP:COUN|INF``           repetitions / loop forever
``SEQ:ELEM<i>:TWA 0|1``                 wait for trigger
``SEQ:ELEM<i>:JTAR:TYPE OFF|IND|NEXT``  event jump target type, ``:IND <j>``
``SEQ:ELEM<i>:GOTO:STAT 0|1``           goto enabled, ``:IND <j>``
======================================  ======================================  ====
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import qcodes.validators as vals
from qcodes.instrument import ChannelList

from drivers.base import QNodeChannel, QNodeVisaInstrument, on_off
from drivers.errors import InstrumentValueError
from drivers.hal import AwgSequence, AwgSequenceStep, AwgWaveform

CHANNELS = (1, 2, 3, 4)
MAX_ELEMENTS = 8000
MAX_LOOPS = 65_536


def encode_waveform(waveform: AwgWaveform) -> bytes:
    """INTEGER-format bytes of a waveform (see the module docstring)."""
    n = len(waveform.samples)
    codes = np.rint(8191 + 8191 * np.asarray(waveform.samples, dtype=float)).astype(np.uint16)
    for bit, marker in ((14, waveform.marker1), (15, waveform.marker2)):
        if marker is not None:
            codes |= np.asarray(marker, dtype=bool).astype(np.uint16) << np.uint16(bit)
    return codes[:n].astype("<u2").tobytes()


def decode_waveform(
    data: bytes,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Inverse of :func:`encode_waveform`: (samples, marker1, marker2)."""
    codes = np.frombuffer(data, dtype="<u2")
    samples = ((codes & 0x3FFF).astype(float) - 8191) / 8191
    return samples, (codes >> 14 & 1).astype(bool), (codes >> 15 & 1).astype(bool)


class AWG5014CChannel(QNodeChannel):
    """One analog output with its two markers."""

    def __init__(self, parent: TektronixAWG5014C, name: str, channel: int) -> None:
        super().__init__(parent, name)
        self.channel = n = channel
        self.amplitude = self.add_parameter(
            "amplitude",
            unit="Vpp",
            label="Amplitude",
            get_cmd=f"SOUR{n}:VOLT?",
            set_cmd=f"SOUR{n}:VOLT {{:.4f}}",
            get_parser=float,
            vals=vals.Numbers(0.02, 4.5),
        )
        self.offset = self.add_parameter(
            "offset",
            unit="V",
            label="Offset",
            get_cmd=f"SOUR{n}:VOLT:OFFS?",
            set_cmd=f"SOUR{n}:VOLT:OFFS {{:.4f}}",
            get_parser=float,
            vals=vals.Numbers(-2.25, 2.25),
        )
        self.output = self.add_parameter(
            "output",
            label="Output on",
            get_cmd=f"OUTP{n}:STAT?",
            set_cmd=f"OUTP{n}:STAT {{}}",
            val_mapping=on_off(),
        )
        for m in (1, 2):
            for level, bounds in (("high", (-0.9, 2.7)), ("low", (-1.0, 2.6))):
                cmd = f"SOUR{n}:MARK{m}:VOLT:{level.upper()}"
                self.add_parameter(
                    f"marker{m}_{level}",
                    unit="V",
                    label=f"Marker {m} {level} level",
                    get_cmd=f"{cmd}?",
                    set_cmd=f"{cmd} {{:.3f}}",
                    get_parser=float,
                    vals=vals.Numbers(*bounds),
                )


class TektronixAWG5014C(QNodeVisaInstrument):
    """Tektronix AWG5014C; fulfils :class:`drivers.hal.AWG`."""

    MODEL = "Tektronix AWG5014C"
    IDN_VENDOR = "TEKTRONIX"
    IDN_MODEL = "AWG5014C"
    ERROR_QUERY = "SYST:ERR?"
    NOT_REPEATABLE = ("AWGC:RUN", "WLIS:WAV:NEW", "*TRG")  # starts; creates (twice: refused)

    def __init__(self, name: str, address: str | None = None, **kwargs: Any) -> None:
        self._sequence: AwgSequence | None = None
        super().__init__(name, address, **kwargs)
        channels = ChannelList(self, "channels", AWG5014CChannel)
        for n in CHANNELS:
            channel = AWG5014CChannel(self, f"ch{n}", n)
            channels.append(channel)
            self.add_submodule(f"ch{n}", channel)
        self.channels = self.add_submodule("channels", channels.to_channel_tuple())
        self._param("sample_rate", "SOUR1:FREQ", "{:.1f}", "Sa/s", vals.Numbers(1e7, 1.2e9))
        self._param("run_mode", "AWGC:RMOD", "{}", "", vals.Enum("CONT", "TRIG", "GAT", "SEQ"))
        self._param("trigger_source", "TRIG:SOUR", "{}", "", vals.Enum("INT", "EXT"))
        self._param("trigger_level", "TRIG:LEV", "{:.3f}", "V", vals.Numbers(-5.0, 5.0))
        self._param("trigger_slope", "TRIG:SLOP", "{}", "", vals.Enum("POS", "NEG"))
        self._param("trigger_interval", "TRIG:TIM", "{:.6e}", "s", vals.Numbers(1e-6, 10.0))
        self._param("event_level", "EVEN:LEV", "{:.3f}", "V", vals.Numbers(-5.0, 5.0))
        self._param("event_jump_timing", "EVEN:JTIM", "{}", "", vals.Enum("SYNC", "ASYNC"))
        self._param("sequence_length", "SEQ:LENG", "{:d}", "", vals.Ints(0, MAX_ELEMENTS))
        self.run_state = self.add_parameter(
            "run_state",
            label="0 stopped, 1 waiting for trigger, 2 running",
            get_cmd="AWGC:RST?",
            set_cmd=False,
            get_parser=lambda s: int(float(s)),
        )

    def _param(self, name: str, cmd: str, fmt: str, unit: str, validator: Any) -> None:
        numeric = isinstance(validator, (vals.Numbers, vals.Ints))
        parser: Any = (int if isinstance(validator, vals.Ints) else float) if numeric else str
        self.add_parameter(
            name,
            unit=unit,
            get_cmd=f"{cmd}?",
            set_cmd=f"{cmd} {fmt}",
            get_parser=lambda s: parser(s.strip()),
            vals=validator,
        )

    # -- waveforms and sequences ----------------------------------------------------------
    def _write_block(self, header: str, payload: bytes) -> None:
        """Send ``header`` followed by an IEEE 488.2 definite-length block of ``payload``."""
        size = str(len(payload))
        message = header.encode() + f"#{len(size)}{size}".encode() + payload + b"\n"
        self._transact(header, lambda _: self.visa_handle.write_raw(message))
        self._after_write(header + "#<block>")

    def upload_waveform(self, waveform: AwgWaveform) -> None:
        """Create ``waveform`` in the user list and send its data."""
        n = len(waveform.samples)
        self.write(f'WLIS:WAV:NEW "{waveform.name}",{n},INT')
        self._write_block(f'WLIS:WAV:DATA "{waveform.name}",', encode_waveform(waveform))

    def _check_sequence(self, sequence: AwgSequence) -> None:
        lengths = {w.name: len(w.samples) for w in sequence.waveforms}
        count = len(sequence.steps)
        problems: list[str] = []
        if count > MAX_ELEMENTS:
            problems.append(f"{count} steps, at most {MAX_ELEMENTS}")
        for i, step in enumerate(sequence.steps, start=1):
            for ch, wname in step.waveforms.items():
                if ch not in CHANNELS:
                    problems.append(f"step {i}: channel {ch} not in {CHANNELS}")
                if wname not in lengths:
                    problems.append(f"step {i}: waveform {wname!r} not uploaded")
            if len({lengths.get(w) for w in step.waveforms.values()}) > 1:
                problems.append(f"step {i}: waveforms of unequal length")
            if not 0 <= step.repetitions <= MAX_LOOPS:
                problems.append(f"step {i}: repetitions {step.repetitions} not in 0..{MAX_LOOPS}")
            for what, target in (("event_jump_to", step.event_jump_to), ("goto", step.goto)):
                if target is not None and not 1 <= target <= count:
                    problems.append(f"step {i}: {what}={target} not in 1..{count}")
        if problems:
            raise InstrumentValueError(
                self.display_name,
                "refused sequence: " + "; ".join(problems),
                command="upload_sequence",
            )

    def upload_sequence(self, sequence: AwgSequence) -> None:
        """Stop, replace the waveform list and the sequence, and select sequence mode."""
        self._check_sequence(sequence)
        self.stop()
        self.write("WLIS:WAV:DEL ALL")
        for waveform in sequence.waveforms:
            self.upload_waveform(waveform)
        self.sequence_length.set(0)
        self.sequence_length.set(len(sequence.steps))
        for i, step in enumerate(sequence.steps, start=1):
            self._write_step(i, step)
        self.run_mode.set("SEQ")
        if sequence.sample_rate_hz is not None:
            self.sample_rate.set(sequence.sample_rate_hz)
        for ch in sequence.channels():
            channel = self.channels[ch - 1]
            if ch in sequence.amplitudes_vpp:
                channel.amplitude.set(sequence.amplitudes_vpp[ch])
            channel.output.set(True)
        self._sequence = sequence

    def restore_settings(self) -> int:
        """After a reboot the waveform list and sequence are gone too: upload the last
        sequence again, then re-apply the settings."""
        if self._sequence is not None:
            self.upload_sequence(self._sequence)
        return super().restore_settings()

    def _write_step(self, i: int, step: AwgSequenceStep) -> None:
        prefix = f"SEQ:ELEM{i}"
        for ch, wname in sorted(step.waveforms.items()):
            self.write(f'{prefix}:WAV{ch} "{wname}"')
        self.write(f"{prefix}:LOOP:INF {int(step.repetitions == 0)}")
        if step.repetitions:
            self.write(f"{prefix}:LOOP:COUN {step.repetitions}")
        self.write(f"{prefix}:TWA {int(step.wait_for_trigger)}")
        if step.event_jump_to is None:
            self.write(f"{prefix}:JTAR:TYPE OFF")
        else:
            self.write(f"{prefix}:JTAR:TYPE IND")
            self.write(f"{prefix}:JTAR:IND {step.event_jump_to}")
        self.write(f"{prefix}:GOTO:STAT {int(step.goto is not None)}")
        if step.goto is not None:
            self.write(f"{prefix}:GOTO:IND {step.goto}")

    def read_step(self, i: int) -> AwgSequenceStep:
        """Read sequence element ``i`` back from the instrument."""
        prefix = f"SEQ:ELEM{i}"
        waveforms = {}
        for ch in CHANNELS:
            name = self.ask(f"{prefix}:WAV{ch}?").strip().strip('"')
            if name:
                waveforms[ch] = name
        infinite = self.ask(f"{prefix}:LOOP:INF?").strip() == "1"
        jump = self.ask(f"{prefix}:JTAR:TYPE?").strip().upper().startswith("IND")
        goto = self.ask(f"{prefix}:GOTO:STAT?").strip() == "1"
        return AwgSequenceStep(
            waveforms=waveforms,
            repetitions=0 if infinite else int(self.ask(f"{prefix}:LOOP:COUN?")),
            wait_for_trigger=self.ask(f"{prefix}:TWA?").strip() == "1",
            event_jump_to=int(self.ask(f"{prefix}:JTAR:IND?")) if jump else None,
            goto=int(self.ask(f"{prefix}:GOTO:IND?")) if goto else None,
        )

    # -- hal.AWG ----------------------------------------------------------------------
    def run(self) -> None:
        self.write("AWGC:RUN")

    def stop(self) -> None:
        self.write("AWGC:STOP")

    def is_running(self) -> bool:
        """True while running or waiting for a trigger."""
        return int(self.run_state.get()) != 0

    def safe_state(self) -> None:
        """Stop the sequencer and switch every output off (markers then idle low)."""
        self.stop()
        for channel in self.channels:
            channel.output.set(False)
