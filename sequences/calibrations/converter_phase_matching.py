"""Frequency-converter phase matching: find the crystal temperature of best conversion.

Physics fitted: the efficiency of difference-frequency conversion in a quasi-phase-matched
crystal goes as sinc^2(Delta k L / 2) (Boyd, Nonlinear Optics, 3rd ed., sec. 2.2), and
near the optimum the phase mismatch Delta k is linear in the crystal temperature. Writing
the curve with its FWHM W (sinc^2 falls to one half at +-1.39156):

    n(T) = A sinc^2(2 * 1.39156 (T - T0) / W) + B

for the clicks per attempt of the node's converted photons on a background B of dark
counts. The fit (``scipy.optimize.curve_fit``, Poisson weights) gives T0 with its standard
error; a scan that passes leaves the crystal at T0.
"""

from __future__ import annotations

import numpy as np

from drivers.hal import FrequencyConverter

from ._common import CalibrationResult, LinkProbe, Measured, fit_counts, judge

#: sinc^2(x) = 1/2 at x = +-1.39156: the half width at half maximum in x.
SINC2_HALF_WIDTH = 1.39156


def sinc2(t: np.ndarray, amplitude: float, t0: float, fwhm: float, background: float):
    """A sinc^2(2 * 1.39156 (t - t0) / fwhm) + B (numpy's sinc is sin(pi x)/(pi x))."""
    x = 2 * SINC2_HALF_WIDTH * (t - t0) / fwhm
    return amplitude * np.sinc(x / np.pi) ** 2 + background


def converter_phase_matching_scan(
    converter: FrequencyConverter,
    probe: LinkProbe,
    centre_guess_c: float,
    span_c: float = 3.0,
    step_c: float = 0.1,
    attempts_per_point: int = 100_000,
    max_uncertainty_c: float = 0.02,
    min_significance: float = 10.0,
    max_reduced_chi2: float = 4.0,
    max_setpoint_error_c: float = 0.05,
) -> CalibrationResult:
    """Scan the crystal temperature over ``centre_guess_c +- span_c/2`` and fit sinc^2.

    The converter's pump must be on, its crystal's temperature controller regulating (a
    crystal that does not reach a setpoint within ``max_setpoint_error_c`` fails the scan),
    and only its node lit (the partner's laser off), so the probe's clicks follow this
    converter's efficiency. Passes when the fit converged, the
    optimum lies inside the scan at least one step from its ends, its uncertainty is at most
    ``max_uncertainty_c``, the peak stands ``min_significance`` standard errors above the
    background and the reduced chi-square is at most ``max_reduced_chi2``. On a pass the
    crystal is left at the optimum; otherwise at its previous temperature.

    Quantities: ``optimal_temperature_c`` and ``temperature_bandwidth_c`` (FWHM).
    """
    if step_c <= 0 or span_c <= 0:
        raise ValueError(f"span_c={span_c}, step_c={step_c}: expected both > 0")
    original = converter.get_crystal_temperature_c()
    n = int(round(span_c / step_c)) + 1
    targets = centre_guess_c + (np.arange(n) - (n - 1) / 2) * step_c
    temps, counts = [], []
    for target in targets:
        converter.set_crystal_temperature_c(float(target))
        measured = converter.get_crystal_temperature_c()
        if abs(measured - target) > max_setpoint_error_c:
            converter.set_crystal_temperature_c(original)
            return CalibrationResult(
                routine="converter_phase_matching_scan",
                quantities={},
                passed=False,
                reason=f"crystal reads {measured:.3f} C at setpoint {target:.3f} C (more than "
                f"{max_setpoint_error_c} C off): is its temperature controller regulating?",
                scan={"temperature_c": temps, "clicks": counts},
            )
        temps.append(measured)
        (c1, c2), _ = probe.clicks(attempts_per_point)
        counts.append(c1 + c2)
    x = np.asarray(temps, dtype=float)
    y = np.asarray(counts, dtype=float)
    scan = {"temperature_c": x.tolist(), "clicks": y.tolist(), "attempts": [attempts_per_point]}

    xr = x - centre_guess_c
    peak = int(np.argmax(y))
    above = xr[y > (y.max() + y.min()) / 2]
    width0 = max(float(above.max() - above.min()), step_c) if above.size else span_c / 3
    p0 = [float(y.max() - y.min()), float(xr[peak]), width0, float(max(y.min(), 0.0))]
    bounds = (
        [0.0, float(xr.min()), step_c / 10, 0.0],
        [np.inf, float(xr.max()), 10 * span_c, np.inf],
    )
    try:
        fit = fit_counts(sinc2, ["amplitude", "t0", "fwhm", "background"], xr, y, p0, bounds)
    except (RuntimeError, ValueError) as exc:
        converter.set_crystal_temperature_c(original)
        return CalibrationResult(
            routine="converter_phase_matching_scan",
            quantities={},
            passed=False,
            reason=f"fit failed: {exc}",
            scan=scan,
        )
    t0 = centre_guess_c + fit.params["t0"]
    t0_err = fit.errors["t0"]
    passed, reason = judge(
        [
            (
                xr.min() + step_c <= fit.params["t0"] <= xr.max() - step_c,
                f"optimum {t0:.3f} C at the edge of the scan {x.min():.2f}..{x.max():.2f} C: "
                "re-centre the scan",
            ),
            (
                t0_err <= max_uncertainty_c,
                f"optimum uncertainty {t0_err:.3f} C above {max_uncertainty_c} C",
            ),
            (
                fit.params["amplitude"] >= min_significance * fit.errors["amplitude"],
                f"no clear phase-matching peak: {fit.params['amplitude']:.1f} +- "
                f"{fit.errors['amplitude']:.1f} clicks",
            ),
            (
                fit.reduced_chi2 <= max_reduced_chi2,
                f"reduced chi-square {fit.reduced_chi2:.2f} above {max_reduced_chi2}: "
                "the scan is not a sinc^2",
            ),
        ]
    )
    converter.set_crystal_temperature_c(t0 if passed else original)
    return CalibrationResult(
        routine="converter_phase_matching_scan",
        quantities={
            "optimal_temperature_c": Measured(value=t0, uncertainty=t0_err, unit="C"),
            "temperature_bandwidth_c": Measured(
                value=fit.params["fwhm"], uncertainty=fit.errors["fwhm"], unit="C"
            ),
        },
        passed=passed,
        reason=reason,
        scan=scan,
        fit={**fit.params, "reduced_chi2": fit.reduced_chi2},
        applied={"crystal_temperature_c": converter.get_crystal_temperature_c()},
    )
