"""How instrument settings become physics in the simulated lab.

Each function maps what an instrument is set to onto a quantity of the link model
(``physics.link.OperatingPoint``); the hidden true parameters come from the lab config.
"""

from __future__ import annotations

import math

import numpy as np

from .params import ConverterPhysics, DetectorParams, ExcitationPhysics, SpinControlPhysics

SPEED_OF_LIGHT_M_PER_S = 299_792_458.0


def detuning_ghz(wavelength_nm: float, transition_wavelength_nm: float) -> float:
    """Laser detuning from the transition, GHz."""
    # c (1/lambda - 1/lambda0) with lambda in nm gives Hz x 1e9, i.e. GHz
    return SPEED_OF_LIGHT_M_PER_S * (1 / wavelength_nm - 1 / transition_wavelength_nm)


def excitation_probability(
    power_mw: float, wavelength_nm: float, light_on: bool, physics: ExcitationPhysics
) -> float:
    """Probability that the optical pulse excites the bright state.

    Two-level saturation with a Lorentzian detuning, s / (1 + s + (2 delta / Gamma)^2) with
    s = P / P_sat (Foot, Atomic Physics (OUP 2005), eq. 7.85), normalised to 1 at full
    saturation on resonance. Zero when the laser is off or the switch (AOM) is closed.
    """
    if not light_on or power_mw <= 0:
        return 0.0
    s = power_mw / physics.saturation_power_mw
    delta = detuning_ghz(wavelength_nm, physics.transition_wavelength_nm)
    return s / (1 + s + (2 * delta / physics.linewidth_ghz) ** 2)


def conversion_efficiency(
    pump_on: bool, pump_power_mw: float, temperature_c: float, physics: ConverterPhysics
) -> float:
    """Efficiency of a difference-frequency converter.

    Pump dependence sin^2(pi/2 sqrt(P/P_max)) (Albota & Wong, Opt. Lett. 29, 1449 (2004));
    phase matching sinc^2 in the temperature detuning (Boyd, Nonlinear Optics, 3rd ed.,
    sec. 2.2), with the FWHM of sinc^2 at x = +-1.3916.
    """
    if not pump_on or pump_power_mw <= 0:
        return 0.0
    pump = math.sin(math.pi / 2 * math.sqrt(pump_power_mw / physics.full_conversion_pump_mw)) ** 2
    x = (
        2
        * 1.39156
        * (temperature_c - physics.optimal_temperature_c)
        / physics.temperature_bandwidth_c
    )
    phase_matching = 1.0 if x == 0 else (math.sin(x) / x) ** 2
    return physics.max_efficiency * pump * phase_matching


def snspd_efficiency(bias_ua: float, enabled: bool, physics: DetectorParams) -> float:
    """Detection efficiency against bias: a sigmoid rising to the plateau (Marsili et al.,
    Nat. Photon. 7, 210 (2013), Fig. 3); zero without bias or above the switching current
    (the detector latches in the normal state)."""
    if not enabled or bias_ua <= 0 or bias_ua >= physics.switching_current_ua:
        return 0.0
    width = 0.08 * physics.plateau_current_ua
    onset = physics.plateau_current_ua - 2 * width
    return physics.efficiency / (1 + math.exp(-(bias_ua - onset) / width))


def snspd_dark_count_rate_hz(bias_ua: float, enabled: bool, physics: DetectorParams) -> float:
    """Dark-count rate against bias: the configured rate at the plateau onset, rising
    exponentially towards the switching current (Marsili et al. 2013, Fig. 3)."""
    if not enabled or bias_ua <= 0 or bias_ua >= physics.switching_current_ua:
        return 0.0
    scale = 0.05 * physics.switching_current_ua
    return physics.dark_count_rate_hz * math.exp((bias_ua - physics.plateau_current_ua) / scale)


def snspd_latched(bias_ua: float, enabled: bool, physics: DetectorParams) -> bool:
    """Biased at or above the switching current the nanowire stays normal: latched."""
    return enabled and bias_ua >= physics.switching_current_ua


def rotation_angle(
    awg_amplitude_v: float,
    mw_on: bool,
    mw_frequency_hz: float,
    mw_power_dbm: float,
    pulse_duration_s: float,
    physics: SpinControlPhysics,
) -> tuple[float, float]:
    """(angle, axis tilt) of a spin rotation driven by an AWG pulse through the MW source.

    The Rabi frequency scales with the drive amplitude, i.e. with the AWG amplitude and the
    square root of the MW power; a pulse of ``pi_pulse_amplitude_v`` at the reference power
    is a pi rotation when it lasts ``pi_pulse_duration_ns`` (the angle is the pulse area,
    Omega t). With detuning Delta the rotation is about a tilted axis with
    generalised Rabi frequency sqrt(Omega^2 + Delta^2) (Rabi formula; Foot eq. 7.24).
    Returns (rotation angle, probability amplitude factor Omega^2/(Omega^2+Delta^2)).
    """
    if not mw_on or awg_amplitude_v == 0:
        return 0.0, 1.0
    power_factor = 10 ** ((mw_power_dbm - physics.reference_power_dbm) / 20)
    angle = math.pi * abs(awg_amplitude_v) / physics.pi_pulse_amplitude_v * power_factor
    if pulse_duration_s <= 0:
        return angle, 1.0
    angle *= pulse_duration_s / (physics.pi_pulse_duration_ns * 1e-9)  # pulse area
    omega = angle / pulse_duration_s
    delta = 2 * math.pi * (mw_frequency_hz - physics.resonance_frequency_hz)
    general = math.hypot(omega, delta)
    return general * pulse_duration_s, (omega / general) ** 2


def bright_population(angle: float, resonance_factor: float) -> float:
    """Population moved to |1> by a rotation of ``angle`` (with the detuning factor)."""
    return resonance_factor * math.sin(angle / 2) ** 2


def temporal_overlap(delay_s: float, lifetime_s: float) -> float:
    """|<psi_A|psi_B>|^2 of two single photons with the same exponential envelope
    (spontaneous emission, lifetime tau) whose emission times differ by ``delay_s``:
    exp(-|dt| / tau). The two-photon (Hong-Ou-Mandel) visibility is the photons' intrinsic
    visibility times this overlap (Hong, Ou & Mandel, PRL 59, 2044 (1987); for exponential
    wavepackets see Legero et al., Adv. At. Mol. Opt. Phys. 53, 253 (2006))."""
    if lifetime_s <= 0:
        raise ValueError(f"lifetime_s={lifetime_s}: expected > 0")
    return math.exp(-abs(delay_s) / lifetime_s)


def aom_optical_phase_rad(rf_phase_deg: float) -> float:
    """Optical phase the AOM imprints on its first diffraction order: the RF drive's phase
    (the +1 order field goes as exp(i[(w + W) t + theta_RF]); e.g. Saleh & Teich, Fundamentals
    of Photonics (Wiley 2007), sec. 20.1), in radians."""
    return math.radians(rf_phase_deg)


def wrap_phase(phase_rad: float) -> float:
    """The phase in [-pi, pi)."""
    return (phase_rad + math.pi) % (2 * math.pi) - math.pi


def rabi_frequency_rad_s(drive_v: float, mw_power_dbm: float, physics: SpinControlPhysics) -> float:
    """Rabi frequency Omega (rad/s, signed with the drive) of an AWG level ``drive_v`` through
    the MW source: linear in the field amplitude, so in the AWG voltage and in
    10^(dP/20); a pulse of ``pi_pulse_amplitude_v`` lasting ``pi_pulse_duration_ns`` at the
    reference power has Omega t = pi."""
    power_factor = 10 ** ((mw_power_dbm - physics.reference_power_dbm) / 20)
    return (
        math.pi
        * drive_v
        / physics.pi_pulse_amplitude_v
        * power_factor
        / (physics.pi_pulse_duration_ns * 1e-9)
    )


def drive_segments(drive_v: np.ndarray, sample_rate_hz: float) -> list[tuple[float, float]]:
    """A piecewise-constant AWG waveform (volts per sample) as (level V, duration s) runs."""
    v = np.asarray(drive_v, dtype=float)
    if v.size == 0:
        return []
    edges = np.flatnonzero(np.diff(v)) + 1
    starts = np.concatenate(([0], edges))
    ends = np.concatenate((edges, [v.size]))
    return [(float(v[a]), (b - a) / sample_rate_hz) for a, b in zip(starts, ends, strict=True)]


def driven_spin_unitary(omega_rad_s: float, detuning_rad_s: float, duration_s: float) -> np.ndarray:
    """exp(-i H t) of a spin driven at Rabi frequency Omega with detuning Delta = w_mw - w_0,
    in the frame rotating at the MW frequency: H = (Omega sigma_x - Delta sigma_z) / 2
    (rotating-wave approximation; Foot, Atomic Physics, sec. 7.3). With Omega = 0 it is the
    free precession of a Ramsey gap, exp(+i Delta t sigma_z / 2)."""
    from .physics.operators import rotation

    rate = math.hypot(omega_rad_s, detuning_rad_s)
    if rate == 0 or duration_s <= 0:
        return np.eye(2, dtype=complex)
    axis = (omega_rad_s / rate, 0.0, -detuning_rad_s / rate)
    return rotation(axis, rate * duration_s)
