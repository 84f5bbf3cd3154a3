"""The single-click attempt loop, declared once and compiled to the node's instruments.

The loop runs on the AWG, not in Python (DESIGN.md, principle 3): each repetition of the
*attempt* waveform plays a microwave pulse that rotates the communication spin to
sqrt(1-alpha)|0> + sqrt(alpha)|1>, then raises marker 1, which gates the excitation AOM for
the optical pulse (Humphreys et al., Nature 558, 268 (2018), Fig. 1). The step repeats up
to ``max_attempts`` times; an event jump (the herald from the station) ends it early.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from drivers.hal import (
    AWG,
    AwgSequence,
    AwgSequenceStep,
    AwgWaveform,
    FrequencyConverter,
    Laser,
    MicrowaveSource,
    OpticalPhaseShifter,
    OpticalSwitch,
    PhotonDetector,
    TimeTagger,
)


class AttemptLoop(BaseModel):
    """A single-click attempt loop: every field with its unit and range."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alpha: float = Field(gt=0, le=0.5, description="bright-state population")
    max_attempts: int = Field(
        ge=0, le=2**31 - 1, description="attempts before giving up (0: until a herald)"
    )
    stop_at_herald: bool = True
    attempt_duration_us: float = Field(3.8, ge=0.1, le=1000)
    sample_rate_hz: float = Field(1.0e9, ge=1e6, le=1.2e9)
    microwave_pulse_ns: float = Field(50.0, gt=0, le=10_000)
    optical_pulse_ns: float = Field(10.0, gt=0, le=10_000)
    optical_delay_ns: float = Field(
        0.0,
        ge=0,
        le=100_000,
        description="extra delay of the optical pulse after the microwave pulse (offsets this "
        "node's photon in time, e.g. to make two nodes' photons distinguishable)",
    )
    pi_pulse_amplitude_v: float = Field(
        0.5, gt=0, le=5, description="calibrated AWG amplitude of a pi rotation"
    )
    awg_amplitude_vpp: float = Field(1.0, gt=0, le=4.5)
    max_repetitions_per_step: int = Field(
        65_536, ge=1, description="the AWG's largest repetition count of one sequence step"
    )

    def rotation_amplitude_v(self) -> float:
        """AWG amplitude of the alpha rotation: theta = 2 asin(sqrt(alpha)), linear in V."""
        theta = 2 * math.asin(math.sqrt(self.alpha))
        return self.pi_pulse_amplitude_v * theta / math.pi


def compile_attempt_loop(loop: AttemptLoop) -> AwgSequence:
    """The AWG sequence of ``loop``: 'attempt' steps (as many as the AWG's repetition limit
    needs for ``max_attempts``) and a 'done' step that the herald's event jump leads to."""
    n = round(loop.attempt_duration_us * 1e-6 * loop.sample_rate_hz)
    mw = round(loop.microwave_pulse_ns * 1e-9 * loop.sample_rate_hz)
    optical = max(1, round(loop.optical_pulse_ns * 1e-9 * loop.sample_rate_hz))
    delay = round(loop.optical_delay_ns * 1e-9 * loop.sample_rate_hz)
    if mw + delay + optical > n:
        raise ValueError(
            f"attempt_duration_us={loop.attempt_duration_us}: too short for a "
            f"{loop.microwave_pulse_ns} ns microwave and a {loop.optical_pulse_ns} ns optical pulse"
            + (f" after {loop.optical_delay_ns} ns" if delay else "")
        )
    level = loop.rotation_amplitude_v() / (loop.awg_amplitude_vpp / 2)
    if level > 1:
        raise ValueError(
            f"alpha={loop.alpha}: needs {loop.rotation_amplitude_v():.3f} V, more than the AWG's "
            f"{loop.awg_amplitude_vpp / 2:.3f} V at awg_amplitude_vpp={loop.awg_amplitude_vpp}"
        )
    samples = np.zeros(n)
    samples[:mw] = level
    marker1 = np.zeros(n, dtype=bool)
    marker1[mw + delay : mw + delay + optical] = True
    attempt = AwgWaveform("attempt", samples, marker1, np.zeros(n, dtype=bool))
    done = AwgWaveform("done", np.zeros(n), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool))
    if loop.max_attempts == 0:
        chunks = [0]  # repeat until the event (the herald) jumps out
    else:
        full, rest = divmod(loop.max_attempts, loop.max_repetitions_per_step)
        chunks = [loop.max_repetitions_per_step] * full + ([rest] if rest else [])
    done_index = len(chunks) + 1
    steps = [
        AwgSequenceStep(
            {1: "attempt"},
            repetitions=reps,
            event_jump_to=done_index if loop.stop_at_herald else None,
        )
        for reps in chunks
    ]
    steps.append(AwgSequenceStep({1: "done"}, repetitions=1))
    return AwgSequence(
        [attempt, done],
        steps,
        sample_rate_hz=loop.sample_rate_hz,
        amplitudes_vpp={1: loop.awg_amplitude_vpp},
    )


class NodeOptics(BaseModel):
    """Settings of a node's optical and microwave path for entanglement attempts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    laser_wavelength_nm: float = Field(637.0, gt=100, le=5000)
    laser_power_mw: float = Field(1.0, ge=0, le=1000)
    switch_channel: int = Field(1, ge=1, le=16)
    switch_power_dbm: float = Field(30.0, ge=-50, le=40)
    microwave_frequency_hz: float = Field(2.88e9, gt=0, le=1e11)
    microwave_power_dbm: float = Field(0.0, ge=-150, le=40)
    converter_pump_mw: float | None = Field(None, ge=0, le=1e5)
    converter_temperature_c: float | None = Field(None, ge=-50, le=250)
    switch_phase_deg: float | None = Field(
        None,
        ge=0,
        lt=360,
        description="RF phase of the excitation AOM (the calibrated interferometer phase); "
        "None leaves it as it is",
    )


def prepare_node(
    optics: NodeOptics,
    laser: Laser,
    switch: OpticalSwitch,
    microwave: MicrowaveSource,
    converter: FrequencyConverter | None = None,
) -> None:
    """Set a node's laser, switch, microwave source (and converter) for attempts."""
    laser.set_wavelength_nm(optics.laser_wavelength_nm)
    laser.set_power_mw(optics.laser_power_mw)
    laser.set_output(True)
    switch.set_drive_power_dbm(optics.switch_power_dbm, channel=optics.switch_channel)
    switch.set_open(True, channel=optics.switch_channel)
    if optics.switch_phase_deg is not None:
        if not isinstance(switch, OpticalPhaseShifter):
            raise TypeError(
                f"switch_phase_deg={optics.switch_phase_deg}: the optical switch "
                f"{type(switch).__name__} cannot set a phase (expected an OpticalPhaseShifter)"
            )
        switch.set_phase_deg(optics.switch_phase_deg, channel=optics.switch_channel)
    microwave.set_frequency_hz(optics.microwave_frequency_hz)
    microwave.set_power_dbm(optics.microwave_power_dbm)
    microwave.set_modulation(iq=True, pulse=False)
    microwave.set_output(True)
    if converter is not None and optics.converter_pump_mw is not None:
        if optics.converter_temperature_c is not None:
            converter.set_crystal_temperature_c(optics.converter_temperature_c)
        converter.set_pump_power_mw(optics.converter_pump_mw)
        converter.set_pump_on(True)


def prepare_station(
    detectors: PhotonDetector,
    tagger: TimeTagger,
    detector_channels: tuple[int, int],
    tagger_channels: tuple[int, int],
    bias_ua: float,
    threshold_v: float = 0.1,
    delays_ps: tuple[int, int] = (0, 0),
    coincidence_window_ps: int = 1000,
) -> None:
    """Bias both detectors and set up the two time-tagger inputs."""
    for channel in detector_channels:
        detectors.set_bias_current_ua(bias_ua, channel=channel)
    detectors.set_bias_enabled(True)
    for channel, delay in zip(tagger_channels, delays_ps, strict=True):
        tagger.configure_channel(channel, threshold_v=threshold_v, delay_ps=delay, enabled=True)
    tagger.set_coincidence_window_ps(coincidence_window_ps)


def run_attempt_loops(awgs: list[AWG], loop: AttemptLoop) -> None:
    """Upload ``loop`` to the AWGs of both nodes and start them."""
    sequence = compile_attempt_loop(loop)
    for awg in awgs:
        awg.upload_sequence(sequence)
    for awg in awgs:
        awg.run()
