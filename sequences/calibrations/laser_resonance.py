"""Laser resonance scan: find the optical transition the excitation laser must drive.

Physics fitted: the excitation probability of a two-level transition driven at saturation
parameter s = P/P_sat and detuning delta is s / (1 + s + (2 delta / Gamma)^2) (Foot, Atomic
Physics (OUP 2005), eq. 7.85): a Lorentzian in the detuning with the power-broadened width
Gamma sqrt(1 + s). Over a few picometres the detuning is linear in the wavelength
(delta = -c d_lambda / lambda^2), so the clicks per attempt of the node's photons are a
Lorentzian in the laser wavelength on a flat background of dark counts:

    n(lambda) = A / (1 + (2 (lambda - lambda0) / w)^2) + B

The fit (``scipy.optimize.curve_fit``, Poisson weights) gives the centre lambda0 with its
standard error; a scan that passes leaves the laser on the centre.
"""

from __future__ import annotations

import numpy as np

from drivers.hal import Laser

from ._common import CalibrationResult, LinkProbe, Measured, fit_counts, judge

SPEED_OF_LIGHT_M_PER_S = 299_792_458.0


def lorentzian(x: np.ndarray, amplitude: float, centre: float, fwhm: float, background: float):
    """A / (1 + (2 (x - x0) / w)^2) + B."""
    return amplitude / (1 + (2 * (x - centre) / fwhm) ** 2) + background


def laser_resonance_scan(
    laser: Laser,
    probe: LinkProbe,
    centre_guess_nm: float,
    span_nm: float = 0.016,
    step_nm: float = 0.001,
    attempts_per_point: int = 200_000,
    power_mw: float | None = None,
    max_uncertainty_nm: float = 2e-4,
    min_significance: float = 10.0,
    max_reduced_chi2: float = 4.0,
) -> CalibrationResult:
    """Scan ``laser`` over ``centre_guess_nm +- span_nm/2`` and fit the resonance.

    Only the node of ``laser`` should be lit (its partner's laser off): the clicks of the
    probe's attempt loop then follow this node's excitation probability. ``power_mw``
    (default: leave it) sets the laser power for the scan; high power broadens the line
    (width Gamma sqrt(1 + s)), which a coarse wavelength grid needs.

    Passes when the fit converged, the centre lies inside the scan at least one step from
    its ends, its uncertainty is at most ``max_uncertainty_nm``, the peak stands
    ``min_significance`` standard errors above the background, and the reduced chi-square is
    at most ``max_reduced_chi2``. On a pass the laser is left at the centre; otherwise at
    the wavelength it had before.

    Quantities: ``resonance_wavelength_nm`` and ``linewidth_ghz`` (the power-broadened
    FWHM seen at the scan's power).
    """
    if step_nm <= 0 or span_nm <= 0:
        raise ValueError(f"span_nm={span_nm}, step_nm={step_nm}: expected both > 0")
    original = laser.get_wavelength_nm()
    if power_mw is not None:
        laser.set_power_mw(power_mw)
    n = int(round(span_nm / step_nm)) + 1
    targets = centre_guess_nm + (np.arange(n) - (n - 1) / 2) * step_nm
    wavelengths, counts = [], []
    for target in targets:
        laser.set_wavelength_nm(float(target))
        wavelengths.append(laser.get_wavelength_nm())  # the setpoint the laser accepted
        (c1, c2), _ = probe.clicks(attempts_per_point)
        counts.append(c1 + c2)
    x = np.asarray(wavelengths, dtype=float)
    y = np.asarray(counts, dtype=float)
    scan = {"wavelength_nm": x.tolist(), "clicks": y.tolist(), "attempts": [attempts_per_point]}

    # fit in picometres from the guess (well-conditioned numbers)
    xp = (x - centre_guess_nm) * 1e3
    peak = int(np.argmax(y))
    above = xp[y > (y.max() + y.min()) / 2]
    width0 = max(float(above.max() - above.min()), step_nm * 1e3) if above.size else 1.0
    p0 = [float(y.max() - y.min()), float(xp[peak]), width0, float(max(y.min(), 0.0))]
    bounds = ([0.0, float(xp.min()), 1e-3, 0.0], [np.inf, float(xp.max()), 1e3, np.inf])
    try:
        fit = fit_counts(
            lorentzian, ["amplitude", "centre", "fwhm", "background"], xp, y, p0, bounds
        )
    except (RuntimeError, ValueError) as exc:
        laser.set_wavelength_nm(original)
        return CalibrationResult(
            routine="laser_resonance_scan",
            quantities={},
            passed=False,
            reason=f"fit failed: {exc}",
            scan=scan,
        )
    centre_nm = centre_guess_nm + fit.params["centre"] * 1e-3
    centre_err_nm = fit.errors["centre"] * 1e-3
    fwhm_nm = fit.params["fwhm"] * 1e-3
    to_ghz = SPEED_OF_LIGHT_M_PER_S / centre_nm**2  # GHz per nm at lambda (nm)
    margin = step_nm * 1e3
    passed, reason = judge(
        [
            (
                xp.min() + margin <= fit.params["centre"] <= xp.max() - margin,
                f"centre {centre_nm:.5f} nm at the edge of the scan "
                f"{x.min():.4f}..{x.max():.4f} nm: re-centre the scan",
            ),
            (
                centre_err_nm <= max_uncertainty_nm,
                f"centre uncertainty {centre_err_nm:.2e} nm above {max_uncertainty_nm:.2e} nm",
            ),
            (
                fit.params["amplitude"] >= min_significance * fit.errors["amplitude"],
                f"no clear resonance: peak {fit.params['amplitude']:.1f} +- "
                f"{fit.errors['amplitude']:.1f} clicks",
            ),
            (
                fit.reduced_chi2 <= max_reduced_chi2,
                f"reduced chi-square {fit.reduced_chi2:.2f} above {max_reduced_chi2}: "
                "the scan is not a Lorentzian",
            ),
        ]
    )
    laser.set_wavelength_nm(centre_nm if passed else original)
    return CalibrationResult(
        routine="laser_resonance_scan",
        quantities={
            "resonance_wavelength_nm": Measured(
                value=centre_nm, uncertainty=centre_err_nm, unit="nm"
            ),
            "linewidth_ghz": Measured(
                value=fwhm_nm * to_ghz, uncertainty=fit.errors["fwhm"] * 1e-3 * to_ghz, unit="GHz"
            ),
        },
        passed=passed,
        reason=reason,
        scan=scan,
        fit={**fit.params, "reduced_chi2": fit.reduced_chi2},
        applied={"wavelength_nm": laser.get_wavelength_nm()},
    )
