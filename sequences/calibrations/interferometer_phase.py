"""The optical phase between the two arms of a single-click link: measured from heralded
pairs, compensated with the RF phase of one node's excitation AOM, verified.

Physics: in the single-click scheme a click at the beam splitter heralds
(|01> +- e^{i Phi}|10>)/sqrt(2), where Phi is the optical phase difference of the two
excitation-and-emission paths (Cabrillo et al., PRA 59, 1025 (1999)). Fibre length changes
make Phi drift, so the Delft experiments stabilise it actively (Humphreys et al., Nature 558,
268 (2018); Pompili et al., Science 372, 259 (2021)). For the heralded state the X-basis
parity correlation is <X_A X_B> = +-C cos(Phi), with C <= 1 the state's coherence (alpha,
visibility, phase noise, readout), so the sign-corrected parity E = s <X_A X_B> (s = +1 for a
'+' herald, -1 for '-') traces a fringe as the phase is stepped.

Actuator: the excitation light of each node passes its AOM (the optical switch that gates the
excitation pulse); the first diffraction order carries the RF drive's phase (the field goes as
exp(i[(w + W) t + theta_RF])), the spin-photon state inherits the excitation light's phase, so
the RF phase theta of node A's AOM adds to Phi: Phi(theta) = Phi_0 + theta. It is set in
software, has no moving parts (unlike a fibre stretcher) and needs no extra hardware, which is
why it is the actuator here; the AOM drivers must share a reference clock. The routine steps
theta over a full turn, fits E(theta) = C cos(theta - theta*) (linear least squares in cos and
sin, binomial weights), sets theta* (Phi = 0: the heralded state is Psi+/- with the phase the
protocol assumes), and verifies with the quadrature points theta* +- 90 deg:
delta = atan2((E(theta* - 90) - E(theta* + 90)) / 2, E(theta*)).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from drivers.hal import AWG, OpticalPhaseShifter, QubitDevice
from sequences.attempt_loop import AttemptLoop, compile_attempt_loop

from ._common import CalibrationResult, Measured, judge


@dataclass
class HeraldedPairs:
    """Heralded single-click pairs on one link, measured at once by both nodes.

    ``awgs`` and ``qubits`` are the two nodes' AWGs and real-time controllers (link order),
    ``peers`` the two node names (each controller reports the herald with its peer)."""

    awgs: Sequence[AWG]
    qubits: Sequence[QubitDevice]
    peers: tuple[str, str]
    alpha: float = 0.1
    attempt_duration_us: float = 3.8
    max_attempts: int = 1_000_000
    run_timeout_s: float = 600.0
    _uploaded: bool = False

    def parity(self, basis_a: str = "X", basis_b: str = "X") -> int | None:
        """One herald, both communication qubits measured: s (-1)^(m_A + m_B), with
        s = +1 for a '+' (Psi+) herald and -1 for '-'; None if no herald came."""
        if not self._uploaded:  # the same loop every time: upload once, then only start
            loop = AttemptLoop(
                alpha=self.alpha,
                max_attempts=self.max_attempts,
                stop_at_herald=True,
                attempt_duration_us=self.attempt_duration_us,
            )
            sequence = compile_attempt_loop(loop)
            for awg in self.awgs:
                awg.upload_sequence(sequence)
            self._uploaded = True
        for awg in self.awgs:
            awg.run()
        deadline = time.monotonic() + self.run_timeout_s
        while any(awg.is_running() for awg in self.awgs):
            if time.monotonic() > deadline:
                for awg in self.awgs:
                    awg.stop()
                raise TimeoutError("the attempt loop did not finish")
            time.sleep(0.001)
        record = self.qubits[0].last_herald(self.peers[1])
        if not record.heralded or not record.bell_state:
            return None
        sign = -1 if record.bell_state.endswith("-") else 1  # <XX> of PSI-/PHI- is -1
        m_a = self.qubits[0].measure(0, basis_a)
        m_b = self.qubits[1].measure(0, basis_b)
        return sign * (1 - 2 * ((m_a + m_b) % 2))

    def correlation(self, pairs: int, basis_a: str = "X", basis_b: str = "X") -> Measured:
        """Mean sign-corrected parity of ``pairs`` heralds, with its binomial uncertainty."""
        values = []
        misses = 0
        while len(values) < pairs:
            value = self.parity(basis_a, basis_b)
            if value is None:
                misses += 1
                if misses > 3 + pairs // 10:
                    raise RuntimeError(
                        f"{misses} attempt loops of {self.max_attempts} attempts without a herald"
                    )
                continue
            values.append(value)
        mean = float(np.mean(values))
        return Measured(
            value=mean, uncertainty=math.sqrt(max(1 - mean**2, 1.0 / pairs) / pairs), unit=""
        )


def fit_fringe(
    theta_rad: np.ndarray, e: np.ndarray, sigma: np.ndarray
) -> tuple[float, float, float, float]:
    """Weighted least squares of E = a cos(theta) + b sin(theta) = C cos(theta - theta*):
    (C, sigma_C, theta*, sigma_theta*) with the covariance propagated."""
    design = np.column_stack([np.cos(theta_rad), np.sin(theta_rad)]) / sigma[:, None]
    coef, *_ = np.linalg.lstsq(design, e / sigma, rcond=None)
    cov = np.linalg.inv(design.T @ design)
    residuals = (e - np.column_stack([np.cos(theta_rad), np.sin(theta_rad)]) @ coef) / sigma
    dof = max(len(e) - 2, 1)
    cov *= max(float(np.sum(residuals**2)) / dof, 1.0)
    a, b = coef
    c = math.hypot(a, b)
    theta_star = math.atan2(b, a)
    grad_c = np.array([a, b]) / c
    grad_t = np.array([-b, a]) / c**2
    return c, math.sqrt(grad_c @ cov @ grad_c), theta_star, math.sqrt(grad_t @ cov @ grad_t)


def _wrap(phase: float) -> float:
    return (phase + math.pi) % (2 * math.pi) - math.pi


def calibrate_interferometer_phase(
    pairs: HeraldedPairs,
    actuator: OpticalPhaseShifter,
    actuator_channel: int = 1,
    points: int = 8,
    pairs_per_point: int = 100,
    verify_pairs: int | None = None,
    min_contrast: float = 0.3,
    max_residual_rad: float = 0.35,
) -> CalibrationResult:
    """Step node A's AOM phase over a full turn, fit the parity fringe, set the phase of
    maximal Psi+ correlation, verify with the quadrature points.

    Passes when the fringe contrast is at least ``min_contrast`` and the verified residual
    phase is within ``max_residual_rad`` (or two standard uncertainties, when larger). The
    AOM is left at the new phase only after a pass (otherwise at its previous phase).

    Quantities: ``phase_offset_rad`` (the interferometer phase with the AOM at 0 deg),
    ``aom_phase_deg`` (the compensating setting), ``contrast``, ``residual_phase_rad``.
    """
    if points < 3:
        raise ValueError(f"points={points}: expected at least 3 to fit a fringe")
    previous = actuator.get_phase_deg(actuator_channel)
    theta_deg = np.arange(points) * 360.0 / points
    e, sigma = [], []
    for theta in theta_deg:
        actuator.set_phase_deg(float(theta), actuator_channel)
        m = pairs.correlation(pairs_per_point)
        e.append(m.value)
        sigma.append(max(m.uncertainty, 1e-3))
    c, c_err, theta_star, theta_err = fit_fringe(
        np.radians(theta_deg), np.array(e), np.array(sigma)
    )
    setting = math.degrees(theta_star) % 360.0
    n_verify = verify_pairs or 2 * pairs_per_point  # the residual needs the finer estimate
    verify = []
    for shift in (0.0, 90.0, -90.0):
        actuator.set_phase_deg((setting + shift) % 360.0, actuator_channel)
        verify.append(pairs.correlation(n_verify))
    actuator.set_phase_deg(setting, actuator_channel)
    e0, e_plus, e_minus = verify
    quad = 0.5 * (e_minus.value - e_plus.value)
    quad_err = 0.5 * math.hypot(e_minus.uncertainty, e_plus.uncertainty)
    residual = math.atan2(quad, e0.value)
    r2 = quad**2 + e0.value**2
    residual_err = (
        math.sqrt((e0.value * quad_err) ** 2 + (quad * e0.uncertainty) ** 2) / r2
        if r2 > 0
        else math.pi
    )
    limit = max(max_residual_rad, 2 * residual_err)
    passed, reason = judge(
        [
            (
                c >= min_contrast,
                f"fringe contrast {c:.3f} ± {c_err:.3f} below {min_contrast} (no interference: "
                "check the photons' overlap and the phase noise)",
            ),
            (
                abs(residual) <= limit,
                f"residual phase {residual:.3f} ± {residual_err:.3f} rad after compensation, "
                f"more than {limit:.3f} rad (phase drifting faster than the calibration?)",
            ),
        ]
    )
    if not passed:
        actuator.set_phase_deg(previous, actuator_channel)
    quantities = {
        "phase_offset_rad": Measured(value=_wrap(-theta_star), uncertainty=theta_err, unit="rad"),
        "aom_phase_deg": Measured(value=setting, uncertainty=math.degrees(theta_err), unit="deg"),
        "contrast": Measured(value=c, uncertainty=c_err, unit=""),
        "residual_phase_rad": Measured(value=residual, uncertainty=residual_err, unit="rad"),
    }
    return CalibrationResult(
        routine="calibrate_interferometer_phase",
        quantities=quantities,
        passed=passed,
        reason=reason,
        scan={
            "aom_phase_deg": theta_deg.tolist(),
            "parity": e,
            "parity_error": sigma,
            "pairs_per_point": [float(pairs_per_point)],
        },
        fit={"contrast": c, "theta_star_rad": theta_star, "verify_parity": e0.value},
        applied={"aom_phase_deg": setting} if passed else {},
    )
