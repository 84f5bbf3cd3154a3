"""Hardware abstraction layer: the role contracts the upper layers program against.

Each role is a small ``typing.Protocol`` (runtime-checkable) with only what sequences and
the node controller need, plus ``safe_state()``. Drivers fulfil them directly. Roles are
methods, never properties: on Python 3.11 ``isinstance`` against a runtime-checkable
protocol evaluates properties, which would talk to the instrument.

Multi-channel roles (OpticalSwitch, PhotonDetector, TimeTagger) take a 1-based
``channel`` argument; single-channel instruments accept ``channel=1``.

The AWG contract takes an :class:`AwgSequence` (waveforms plus steps with repetitions,
wait-for-trigger, event jump and goto), so a sequence compiled once runs on any AWG.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from drivers.qubit_program import ProgramResult, QubitProgram

#: dtype of time tags returned by :meth:`TimeTagger.read_tags`.
TAG_DTYPE = np.dtype([("channel", np.int16), ("time_ps", np.int64)])


@runtime_checkable
class SafeStateful(Protocol):
    """Anything that can be put in a known safe state."""

    def safe_state(self) -> None: ...


@runtime_checkable
class Laser(Protocol):
    """A tunable CW laser: wavelength, power, emission on/off."""

    def set_wavelength_nm(self, wavelength_nm: float) -> None: ...
    def get_wavelength_nm(self) -> float: ...
    def set_power_mw(self, power_mw: float) -> None: ...
    def get_power_mw(self) -> float: ...
    def set_output(self, on: bool) -> None: ...
    def is_output_on(self) -> bool: ...
    def safe_state(self) -> None: ...


@runtime_checkable
class OpticalSwitch(Protocol):
    """An AOM (RF drive) or shutter gating a beam: open/closed and drive power."""

    def set_open(self, is_open: bool, channel: int = 1) -> None: ...
    def is_open(self, channel: int = 1) -> bool: ...
    def set_drive_power_dbm(self, power_dbm: float, channel: int = 1) -> None: ...
    def get_drive_power_dbm(self, channel: int = 1) -> float: ...
    def safe_state(self) -> None: ...


@runtime_checkable
class OpticalPhaseShifter(Protocol):
    """Sets the optical phase of a beam, e.g. the RF phase of an AOM driver, which the AOM's
    diffracted order carries (the actuator of interferometer-phase stabilisation)."""

    def set_phase_deg(self, phase_deg: float, channel: int = 1) -> None: ...
    def get_phase_deg(self, channel: int = 1) -> float: ...


@runtime_checkable
class PhotonDetector(Protocol):
    """A single-photon detector controller (e.g. SNSPD bias and counters)."""

    def channel_count(self) -> int: ...

    def set_bias_enabled(self, enabled: bool) -> None: ...

    def set_bias_current_ua(self, current_ua: float, channel: int = 1) -> None: ...
    def get_bias_current_ua(self, channel: int = 1) -> float: ...
    def count_rate_hz(self, channel: int = 1) -> float: ...
    def is_latched(self, channel: int = 1) -> bool: ...
    def reset_latch(self, channel: int = 1) -> None: ...
    def safe_state(self) -> None: ...


@runtime_checkable
class TimeTagger(Protocol):
    """A time tagger / time controller: input set-up, count rates and time tags."""

    def configure_channel(
        self, channel: int, threshold_v: float, delay_ps: int = 0, enabled: bool = True
    ) -> None: ...
    def count_rates_hz(self) -> dict[int, float]: ...
    def set_coincidence_window_ps(self, window_ps: int) -> None: ...
    def read_tags(self) -> npt.NDArray[np.void]: ...
    def safe_state(self) -> None: ...


@dataclass(frozen=True)
class AwgWaveform:
    """One named waveform: samples in volts-normalised units (-1..1) and two marker tracks."""

    name: str
    samples: npt.NDArray[np.float64]
    marker1: npt.NDArray[np.bool_] | None = None
    marker2: npt.NDArray[np.bool_] | None = None

    def __post_init__(self) -> None:
        n = len(self.samples)
        for marker in (self.marker1, self.marker2):
            if marker is not None and len(marker) != n:
                raise ValueError(
                    f"waveform {self.name!r}: marker length {len(marker)} != {n} samples"
                )
        if n and float(np.max(np.abs(self.samples))) > 1.0:
            raise ValueError(f"waveform {self.name!r}: samples must lie in -1..1")


@dataclass(frozen=True)
class AwgSequenceStep:
    """One sequence step.

    ``waveforms`` maps AWG channel -> waveform name. ``repetitions`` 0 means loop forever.
    ``event_jump_to`` (1-based step index) is taken when the event input fires;
    ``goto`` (1-based) replaces the default "next step" at the end of this step.
    """

    waveforms: dict[int, str]
    repetitions: int = 1
    wait_for_trigger: bool = False
    event_jump_to: int | None = None
    goto: int | None = None


@dataclass(frozen=True)
class AwgSequence:
    """Waveforms to upload, the steps that play them, and the output set-up they need.

    ``sample_rate_hz`` (None: leave the AWG's) fixes the time base of every waveform;
    ``amplitudes_vpp`` maps each channel the sequence plays on to its amplitude (None: leave
    it). Uploading switches the outputs of the channels the steps use on.
    """

    waveforms: list[AwgWaveform]
    steps: list[AwgSequenceStep] = field(default_factory=list)
    sample_rate_hz: float | None = None
    amplitudes_vpp: dict[int, float] = field(default_factory=dict)

    def channels(self) -> list[int]:
        """The channels any step plays a waveform on."""
        return sorted({ch for step in self.steps for ch in step.waveforms})


@runtime_checkable
class AWG(Protocol):
    """An arbitrary waveform generator running a sequence on its own clock."""

    def upload_sequence(self, sequence: AwgSequence) -> None: ...
    def run(self) -> None: ...
    def stop(self) -> None: ...
    def is_running(self) -> bool: ...
    def safe_state(self) -> None: ...


@runtime_checkable
class FrequencyConverter(Protocol):
    """A quantum frequency converter: pump power, crystal temperature, efficiency."""

    def set_pump_power_mw(self, power_mw: float) -> None: ...
    def get_pump_power_mw(self) -> float: ...
    def set_pump_on(self, on: bool) -> None: ...
    def set_crystal_temperature_c(self, temperature_c: float) -> None: ...
    def get_crystal_temperature_c(self) -> float: ...
    def conversion_efficiency(self) -> float: ...
    def converted_wavelength_nm(self) -> float: ...
    def safe_state(self) -> None: ...


@runtime_checkable
class MicrowaveSource(Protocol):
    """A microwave / RF signal generator with IQ and pulse modulation."""

    def set_frequency_hz(self, frequency_hz: float) -> None: ...
    def get_frequency_hz(self) -> float: ...
    def set_power_dbm(self, power_dbm: float) -> None: ...
    def get_power_dbm(self) -> float: ...
    def set_output(self, on: bool) -> None: ...
    def is_output_on(self) -> bool: ...
    def set_modulation(self, iq: bool, pulse: bool) -> None: ...
    def safe_state(self) -> None: ...


@runtime_checkable
class QubitDevice(Protocol):
    """A node's qubits as its real-time controller exposes them (see drivers.qnode_rtc):
    qubit 0 is the communication qubit, 1.. the memories."""

    def qubit_count(self) -> int: ...

    def time_s(self) -> float: ...

    def initialize(self, qubit: int) -> None: ...

    def rotate(self, qubit: int, axis: str, angle: float) -> None: ...

    def gate(self, name: str, *qubits: int) -> None: ...

    def measure(self, qubit: int, basis: str = "Z") -> int: ...

    def wait(self, seconds: float) -> None: ...

    def run_program(self, program: QubitProgram, shot: int | None = None) -> ProgramResult:
        """Run a compiled list of operations in one transaction; returns its readouts (and
        heralds) and the controller clock after it. ``shot``: the shot whose programs on
        other nodes its network operations meet."""
        ...

    def start_program(self, program: QubitProgram, shot: int) -> None:
        """Start a program of ``shot`` without waiting for it (see ``program_result``)."""
        ...

    def program_result(self, program: QubitProgram) -> ProgramResult:
        """The result of the program last started, once it has ended."""
        ...

    def run_programs(self, programs: list[QubitProgram], first_shot: int) -> list[ProgramResult]:
        """A batch: programs of consecutive shots, run one after the other."""
        ...

    def start_programs(self, programs: list[QubitProgram], first_shot: int) -> None: ...

    def program_results(self, programs: list[QubitProgram]) -> list[ProgramResult]: ...

    def last_herald(self, peer: str) -> Any: ...

    def set_herald_timeout_s(self, seconds: float) -> None:
        """Longest wait for a herald before the controller ends the attempt loop."""
        ...

    def safe_state(self) -> None: ...


ROLES: dict[str, type] = {
    "Laser": Laser,
    "OpticalSwitch": OpticalSwitch,
    "PhotonDetector": PhotonDetector,
    "TimeTagger": TimeTagger,
    "AWG": AWG,
    "FrequencyConverter": FrequencyConverter,
    "MicrowaveSource": MicrowaveSource,
    "QubitDevice": QubitDevice,
}
