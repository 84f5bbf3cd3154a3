"""Rabi calibration: the AWG amplitude of a pi pulse on the node's spin.

Physics fitted: a resonant drive of Rabi frequency Omega for a time t rotates the spin by
Omega t, so P(|1>) = sin^2(Omega t / 2) (Rabi oscillation; Foot, Atomic Physics (OUP 2005),
eq. 7.24). At a fixed pulse length Omega is linear in the AWG amplitude A (the MW field is),
so the fraction read 1 over a sweep of A is

    p(A) = c + a (1 - cos(pi A / A_pi)) / 2,

with c = 1 - F0 and c + a = F1 for readout fidelities F0, F1 (and initialisation errors).
The fit (``scipy.optimize.curve_fit``, binomial weights) gives A_pi with its standard error.
Cf. Jelezko et al., PRL 92, 076401 (2004) for NV electron-spin Rabi oscillations.
"""

from __future__ import annotations

import numpy as np

from ._common import CalibrationResult, Measured, judge
from ._spin import SpinDrive, fit_binomial


def rabi_model(a: np.ndarray, offset: float, contrast: float, a_pi: float) -> np.ndarray:
    """c + a (1 - cos(pi A / A_pi)) / 2."""
    return offset + contrast * (1 - np.cos(np.pi * a / a_pi)) / 2


def rabi_amplitude_sweep(
    drive: SpinDrive,
    frequency_hz: float,
    power_dbm: float = 0.0,
    pulse_ns: float = 50.0,
    max_amplitude_v: float = 1.25,
    points: int = 26,
    shots_per_point: int = 100,
    max_relative_uncertainty: float = 0.02,
    min_contrast: float = 0.5,
    max_reduced_chi2: float = 4.0,
) -> CalibrationResult:
    """Sweep the amplitude of a ``pulse_ns`` pulse from 0 to ``max_amplitude_v`` (``points``
    amplitudes, ``shots_per_point`` shots each) with the MW source at ``frequency_hz`` and
    ``power_dbm`` (the settings the runs' pulses use), and fit the Rabi oscillation.

    Passes when the fit converged, the pi amplitude lies inside the sweep (at most 80% of
    its end, so more than half a period is seen), its relative uncertainty is at most
    ``max_relative_uncertainty``, the contrast is at least ``min_contrast`` and the reduced
    chi-square is at most ``max_reduced_chi2``. Leaves the MW source set as given.

    Quantities: ``pi_pulse_amplitude_v`` (V, for a ``pulse_ns`` pulse) and ``rabi_contrast``.
    """
    if points < 6 or shots_per_point < 1:
        raise ValueError(f"points={points}, shots_per_point={shots_per_point}: expected >= 6, >= 1")
    if not 0 < max_amplitude_v <= drive.max_level_v:
        raise ValueError(
            f"max_amplitude_v={max_amplitude_v}: expected in (0, {drive.max_level_v}] (the AWG's "
            "range)"
        )
    n_pulse = drive.samples(pulse_ns * 1e-9)
    if n_pulse < 1:
        raise ValueError(f"pulse_ns={pulse_ns}: shorter than one AWG sample")
    drive.set_microwave(frequency_hz, power_dbm)
    amplitudes = np.linspace(0.0, max_amplitude_v, points)
    ones = []
    for amplitude in amplitudes:
        drive.upload(np.full(n_pulse, amplitude))
        ones.append(drive.ones(shots_per_point))
    k = np.asarray(ones, dtype=float)
    scan = {
        "amplitude_v": amplitudes.tolist(),
        "ones": k.tolist(),
        "shots": [float(shots_per_point)],
        "pulse_ns": [pulse_ns],
        "frequency_hz": [frequency_hz],
    }
    p = k / shots_per_point
    # the pi amplitude that explains the data best on a grid (model linear in c, a), then
    # the weighted non-linear fit from there
    best = (np.inf, max_amplitude_v / 2, 0.0, 1.0)
    for a_pi in np.linspace(max_amplitude_v / (points - 1), 2 * max_amplitude_v, 400):
        basis = np.column_stack(
            [np.ones_like(amplitudes), (1 - np.cos(np.pi * amplitudes / a_pi)) / 2]
        )
        coef, *_ = np.linalg.lstsq(basis, p, rcond=None)
        cost = float(np.sum((basis @ coef - p) ** 2))
        if cost < best[0]:
            best = (cost, float(a_pi), float(coef[0]), float(coef[1]))
    _, a0, c0, amp0 = best
    try:
        fit = fit_binomial(
            rabi_model,
            ["offset", "contrast", "a_pi"],
            amplitudes,
            k,
            shots_per_point,
            [min(max(c0, 0.0), 1.0), min(max(amp0, 0.0), 1.0), a0],
            ([0.0, 0.0, 1e-6], [1.0, 1.0, 10 * max_amplitude_v]),
        )
    except (RuntimeError, ValueError) as exc:
        return CalibrationResult(
            routine="rabi_amplitude_sweep",
            quantities={},
            passed=False,
            reason=f"fit failed: {exc}",
            scan=scan,
        )
    a_pi, a_err = fit.params["a_pi"], fit.errors["a_pi"]
    contrast = fit.params["contrast"]
    passed, reason = judge(
        [
            (
                a_pi <= 0.8 * max_amplitude_v,
                f"pi amplitude {a_pi:.3f} V beyond 80% of the sweep's {max_amplitude_v} V: "
                "extend the sweep (or raise the MW power)",
            ),
            (
                a_err <= max_relative_uncertainty * a_pi,
                f"pi amplitude uncertainty {a_err:.4f} V above {max_relative_uncertainty:.0%}",
            ),
            (
                contrast >= min_contrast,
                f"Rabi contrast {contrast:.2f} below {min_contrast}: is the MW on resonance "
                "and the readout working?",
            ),
            (
                fit.reduced_chi2 <= max_reduced_chi2,
                f"reduced chi-square {fit.reduced_chi2:.2f} above {max_reduced_chi2}: "
                "the sweep is not a Rabi oscillation",
            ),
        ]
    )
    return CalibrationResult(
        routine="rabi_amplitude_sweep",
        quantities={
            "pi_pulse_amplitude_v": Measured(value=a_pi, uncertainty=a_err, unit="V"),
            "rabi_contrast": Measured(value=contrast, uncertainty=fit.errors["contrast"], unit=""),
        },
        passed=passed,
        reason=reason,
        scan=scan,
        fit={**fit.params, "reduced_chi2": fit.reduced_chi2, "pulse_ns": pulse_ns},
    )
