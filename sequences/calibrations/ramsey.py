"""Ramsey calibration: the spin resonance frequency and the dephasing time T2*.

Physics fitted: two pi/2 pulses separated by a free evolution tau, with the MW carrier
detuned by Delta from the spin, give P(|1>) = (1 + cos(2 pi Delta tau + phi) C(tau)) / 2.
Quasi-static (shot-to-shot) detuning noise from the nuclear-spin bath makes the
free-induction decay Gaussian, C(tau) = exp(-(tau/T2*)^2) (Childress et al., Science 314,
281 (2006); Doherty et al., Phys. Rep. 528, 1 (2013), sec. 6). With readout errors the read
fraction is

    p(tau) = B + A exp(-(tau/T2*)^2) cos(2 pi f tau + phi).

The fringe frequency f = |Delta| does not tell the sign of Delta, so the sweep is done twice,
with the carrier deliberately detuned by +d and by -d from the guess f_g: for a guess within
d of the resonance f_0, f(+) = d + (f_g - f_0) and f(-) = d - (f_g - f_0), hence
f_0 = f_g - (f(+) - f(-)) / 2, and (f(+) + f(-)) / 2 = d checks the assumption.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import CalibrationResult, Measured, judge
from ._spin import SpinDrive, fit_binomial


def ramsey_model(
    tau_us: np.ndarray,
    offset: float,
    amplitude: float,
    freq_mhz: float,
    phase: float,
    t2s_us: float,
) -> np.ndarray:
    """B + A exp(-(tau/T2*)^2) cos(2 pi f tau + phi) (tau in us, f in MHz)."""
    return offset + amplitude * np.exp(-((tau_us / t2s_us) ** 2)) * np.cos(
        2 * np.pi * freq_mhz * tau_us + phase
    )


def _fringe_fit(tau_us: np.ndarray, ones: np.ndarray, shots: int, max_freq_mhz: float):
    """Fit one fringe: frequency guess from the periodogram, then the weighted fit."""
    p = ones / shots
    centred = p - p.mean()
    step = float(np.min(np.diff(tau_us)))
    freqs = np.linspace(0.05 / (tau_us[-1] - tau_us[0]), min(max_freq_mhz, 0.5 / step), 2000)
    power = [abs(np.sum(centred * np.exp(-2j * np.pi * f * tau_us))) for f in freqs]
    f0 = float(freqs[int(np.argmax(power))])
    span = float(tau_us[-1] - tau_us[0])
    return fit_binomial(
        ramsey_model,
        ["offset", "amplitude", "freq_mhz", "phase", "t2s_us"],
        tau_us,
        ones,
        shots,
        [float(p.mean()), float(max(np.ptp(p) / 2, 0.05)), f0, 0.0, span / 2],
        ([0.0, 0.0, 0.0, -2 * np.pi, step / 2], [1.0, 1.0, 0.5 / step, 2 * np.pi, 100 * span]),
    )


def ramsey_fringes(
    drive: SpinDrive,
    centre_guess_hz: float,
    pi_amplitude_v: float,
    power_dbm: float = 0.0,
    pulse_ns: float = 50.0,
    detuning_hz: float = 2.0e6,
    max_wait_us: float = 4.0,
    step_us: float = 0.05,
    shots_per_point: int = 100,
    max_frequency_uncertainty_hz: float = 20e3,
    max_t2_star_relative_uncertainty: float = 0.3,
    max_reduced_chi2: float = 4.0,
) -> CalibrationResult:
    """pi/2 - tau - pi/2 fringes (pi/2: a ``pulse_ns`` pulse at ``pi_amplitude_v / 2``) for
    tau from 0 to ``max_wait_us`` in steps of ``step_us``, with the carrier at
    ``centre_guess_hz +- detuning_hz``; fits both (see the module docstring).

    Passes when both fits converged, the resonance's uncertainty is at most
    ``max_frequency_uncertainty_hz``, the mean fringe frequency agrees with ``detuning_hz``
    (within 4 standard errors and 2%: otherwise the guess was more than ``detuning_hz`` off),
    T2*'s relative uncertainty is at most ``max_t2_star_relative_uncertainty`` and each reduced
    chi-square is at most ``max_reduced_chi2``. On a pass the MW source is left on the found
    resonance; otherwise on the guess.

    Quantities: ``resonance_frequency_hz``, ``frequency_offset_hz`` (guess minus resonance)
    and ``t2_star_us``.
    """
    if step_us <= 0 or max_wait_us <= step_us * 5:
        raise ValueError(f"max_wait_us={max_wait_us}, step_us={step_us}: expected >= 6 points")
    if step_us >= 0.25 / (detuning_hz * 1e-6):
        raise ValueError(
            f"step_us={step_us}: too coarse for fringes at {detuning_hz:g} Hz (expected "
            f"< {0.25 / (detuning_hz * 1e-6):.3f} us)"
        )
    n_pulse = drive.samples(pulse_ns * 1e-9)
    half_pi = np.full(n_pulse, pi_amplitude_v / 2)
    taus = np.arange(0.0, max_wait_us + step_us / 2, step_us)
    scan: dict[str, list[float]] = {"tau_us": taus.tolist(), "shots": [float(shots_per_point)]}
    fits = {}
    try:
        for sign, label in ((1, "plus"), (-1, "minus")):
            drive.set_microwave(centre_guess_hz + sign * detuning_hz, power_dbm)
            ones = []
            for tau in taus:
                gap = np.zeros(drive.samples(tau * 1e-6))
                drive.upload(np.concatenate([half_pi, gap, half_pi]))
                ones.append(drive.ones(shots_per_point))
            k = np.asarray(ones, dtype=float)
            scan[f"ones_{label}"] = k.tolist()
            fits[label] = _fringe_fit(taus, k, shots_per_point, 4 * detuning_hz * 1e-6)
    except (RuntimeError, ValueError) as exc:
        drive.set_microwave(centre_guess_hz, power_dbm)
        return CalibrationResult(
            routine="ramsey_fringes",
            quantities={},
            passed=False,
            reason=f"fit failed: {exc}",
            scan=scan,
        )
    f_plus, f_minus = (fits[s].params["freq_mhz"] * 1e6 for s in ("plus", "minus"))
    e_plus, e_minus = (fits[s].errors["freq_mhz"] * 1e6 for s in ("plus", "minus"))
    offset = (f_plus - f_minus) / 2
    offset_err = math.hypot(e_plus, e_minus) / 2
    resonance = centre_guess_hz - offset
    mean_fringe = (f_plus + f_minus) / 2
    t2s = np.array([fits[s].params["t2s_us"] for s in ("plus", "minus")])
    t2s_err = np.array([fits[s].errors["t2s_us"] for s in ("plus", "minus")])
    weights = 1 / t2s_err**2
    t2_star = float(np.sum(weights * t2s) / np.sum(weights))
    t2_star_err = float(1 / math.sqrt(np.sum(weights)))
    chi2 = max(fits["plus"].reduced_chi2, fits["minus"].reduced_chi2)
    passed, reason = judge(
        [
            (
                offset_err <= max_frequency_uncertainty_hz,
                f"resonance uncertainty {offset_err:.0f} Hz above "
                f"{max_frequency_uncertainty_hz:.0f} Hz",
            ),
            (
                abs(mean_fringe - detuning_hz) <= 4 * offset_err + 0.02 * detuning_hz,
                f"mean fringe frequency {mean_fringe:.0f} Hz is not the set detuning "
                f"{detuning_hz:.0f} Hz: the guess is more than that off resonance (run a "
                "wider search) or the fringes are not resolved",
            ),
            (
                t2_star_err <= max_t2_star_relative_uncertainty * t2_star,
                f"T2* {t2_star:.2f} +- {t2_star_err:.2f} us not determined: sweep longer waits",
            ),
            (
                chi2 <= max_reduced_chi2,
                f"reduced chi-square {chi2:.2f} above {max_reduced_chi2}: not a decaying fringe",
            ),
        ]
    )
    drive.set_microwave(resonance if passed else centre_guess_hz, power_dbm)
    fit: dict[str, float] = {"detuning_hz": detuning_hz, "centre_guess_hz": centre_guess_hz}
    for label, f in fits.items():
        fit.update({f"{name}_{label}": value for name, value in f.params.items()})
        fit[f"reduced_chi2_{label}"] = f.reduced_chi2
    return CalibrationResult(
        routine="ramsey_fringes",
        quantities={
            "resonance_frequency_hz": Measured(value=resonance, uncertainty=offset_err, unit="Hz"),
            "frequency_offset_hz": Measured(value=offset, uncertainty=offset_err, unit="Hz"),
            "t2_star_us": Measured(value=t2_star, uncertainty=t2_star_err, unit="us"),
        },
        passed=passed,
        reason=reason,
        scan=scan,
        fit=fit,
        applied={"microwave_frequency_hz": resonance if passed else centre_guess_hz},
    )
