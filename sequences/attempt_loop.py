"""The attempt loops of heralded entanglement, declared once and compiled to the node's
instruments: the single-click loop here, Barrett-Kok in ``sequences.barrett_kok``; the parts
they share (time base, cut-offs on attempts and on time) in ``sequences.entanglement_loop``.

Single click: each repetition of the *attempt* waveform plays a microwave pulse that rotates
the communication spin to sqrt(1-alpha)|0> + sqrt(alpha)|1>, then raises marker 1, which
gates the excitation AOM for the optical pulse (Humphreys et al., Nature 558, 268 (2018),
Fig. 1). One click at the station heralds Psi+/-, with F ~ 1 - alpha and p ~ 2 alpha eta.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from drivers.hal import (
    AWG,
    AwgSequence,
    AwgWaveform,
    FrequencyConverter,
    Laser,
    MicrowaveSource,
    OpticalPhaseShifter,
    OpticalSwitch,
    PhotonDetector,
    TimeTagger,
)

from .barrett_kok import BarrettKokLoop, compile_barrett_kok
from .entanglement_loop import EntanglementLoop, LoopError, build_loop

SCHEMES = ("single_click", "barrett_kok")


class AttemptLoop(EntanglementLoop):
    """A single-click attempt loop: every field with its unit and range."""

    scheme: Literal["single_click"] = "single_click"
    alpha: float = Field(gt=0, le=0.5, description="bright-state population")
    optical_delay_ns: float = Field(
        0.0,
        ge=0,
        le=100_000,
        description="extra delay of the optical pulse after the microwave pulse (offsets this "
        "node's photon in time, e.g. to make two nodes' photons distinguishable)",
    )

    def rotation_amplitude_v(self) -> float:
        """AWG amplitude of the alpha rotation: theta = 2 asin(sqrt(alpha)), linear in V."""
        theta = 2 * math.asin(math.sqrt(self.alpha))
        return self.pi_pulse_amplitude_v * theta / math.pi


#: any attempt loop; ``scheme`` tells them apart (also in messages between processes)
AnyLoop = Annotated[AttemptLoop | BarrettKokLoop, Field(discriminator="scheme")]


def entanglement_loop(
    scheme: str = "single_click",
    *,
    alpha: float = 0.1,
    max_attempts: int = 0,
    max_time_us: float | None = None,
    **fields: object,
) -> AttemptLoop | BarrettKokLoop:
    """The attempt loop of ``scheme`` with its cut-offs, validated (``LoopError`` names the
    field, the value and what was expected). Barrett-Kok has no alpha: its first pulse is
    always pi/2, so ``alpha`` is ignored there."""
    common = {"max_attempts": max_attempts, "max_time_us": max_time_us, **fields}
    if scheme == "single_click":
        return build_loop(AttemptLoop, alpha=alpha, **common)  # type: ignore[return-value]
    if scheme == "barrett_kok":
        return build_loop(BarrettKokLoop, **common)  # type: ignore[return-value]
    raise LoopError(f"scheme={scheme!r}: expected one of {list(SCHEMES)}")


def compile_attempt_loop(loop: AttemptLoop | BarrettKokLoop) -> AwgSequence:
    """The AWG sequence of ``loop`` (either scheme)."""
    if isinstance(loop, BarrettKokLoop):
        return compile_barrett_kok(loop)
    return compile_single_click(loop)


def compile_single_click(loop: AttemptLoop) -> AwgSequence:
    """The AWG sequence of a single-click loop: the attempt waveform (alpha rotation, one
    optical pulse) in the steps of ``EntanglementLoop.attempt_steps``."""
    n = loop.samples(loop.attempt_duration_us * 1e3)
    mw = round(loop.microwave_pulse_ns * 1e-9 * loop.sample_rate_hz)
    optical = loop.samples(loop.optical_pulse_ns)
    delay = round(loop.optical_delay_ns * 1e-9 * loop.sample_rate_hz)
    if mw + delay + optical > n:
        raise LoopError(
            f"attempt_duration_us={loop.attempt_duration_us}: too short for a "
            f"{loop.microwave_pulse_ns} ns microwave and a {loop.optical_pulse_ns} ns optical pulse"
            + (f" after {loop.optical_delay_ns} ns" if delay else "")
        )
    theta = 2 * math.asin(math.sqrt(loop.alpha))
    level = loop.level(theta, f"alpha={loop.alpha}")
    samples = np.zeros(n)
    samples[:mw] = level
    marker1 = np.zeros(n, dtype=bool)
    marker1[mw + delay : mw + delay + optical] = True
    attempt = AwgWaveform("attempt", samples, marker1, np.zeros(n, dtype=bool))
    return loop.attempt_steps(attempt)


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


def run_attempt_loops(awgs: list[AWG], loop: AttemptLoop | BarrettKokLoop) -> None:
    """Upload ``loop`` to the AWGs of both nodes and start them."""
    sequence = compile_attempt_loop(loop)
    for awg in awgs:
        awg.upload_sequence(sequence)
    for awg in awgs:
        awg.run()
