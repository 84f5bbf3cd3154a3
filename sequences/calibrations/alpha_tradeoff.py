"""The single-click rate/fidelity trade-off: choose the bright-state population alpha.

Physics: in the single-click scheme each node prepares sqrt(1-alpha)|0> + sqrt(alpha)|1>;
the heralding probability grows as p ~ 2 alpha eta, while the chance that both nodes were
bright (one photon lost) grows with alpha too, so the heralded state's fidelity falls,
F ~ (1 - alpha)(1 + sqrt(V))/2 (Humphreys et al., Nature 558, 268 (2018), Fig. 2 and SI).
Near the operating point F is linear in alpha, F(alpha) = F_0 - k alpha; dark counts (at
small alpha), double excitation and phase noise shift F_0 and k, which is why they are
measured rather than computed.

The routine measures: at each alpha of a sweep, pairs are delivered through the node
controllers and measured in XX, YY and ZZ; the fidelity to each pair's heralded Bell state is
estimated from the correlations (``sequences.analysis.fidelity_from_outcomes``), readout
corrected with the calibrated F0, F1, and the heralded rate is pairs per elapsed second.
A weighted linear fit F(alpha) gives the largest alpha whose fitted fidelity *minus
``margin_sigmas`` standard errors* still meets the target, within the sweep: the margin
covers the fit's statistics and keeps an unattended choice on the safe side (readout
correction with assignment fidelities, which include preparation errors, slightly
over-corrects).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from sequences.analysis import fidelity_from_outcomes

from ._common import CalibrationResult, Measured, judge


@dataclass(frozen=True)
class PairBatch:
    """Pairs delivered at one alpha: each pair's heralded Bell state, measured basis and the
    two outcomes; the attempts made and the elapsed (simulated or lab) time."""

    bell_states: Sequence[str]
    bases: Sequence[str]
    outcomes_a: Sequence[int]
    outcomes_b: Sequence[int]
    attempts: int
    elapsed_s: float


#: Delivers ``pairs`` pairs at ``alpha`` (through the node controllers) and returns them.
PairSource = Callable[[float, int], PairBatch]


def alpha_tradeoff(
    source: PairSource,
    target_fidelity: float,
    alphas: Sequence[float] = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3),
    pairs_per_point: int = 600,
    readout_a: tuple[float, float] | None = None,
    readout_b: tuple[float, float] | None = None,
    min_slope_significance: float = 2.0,
    max_reduced_chi2: float = 4.0,
    margin_sigmas: float = 2.0,
) -> CalibrationResult:
    """Sweep ``alphas``, measure fidelity and rate at each, and choose alpha.

    Passes when the fidelity falls with alpha by at least ``min_slope_significance``
    standard errors of the slope, the linear model fits (reduced chi-square at most
    ``max_reduced_chi2``) and some alpha of the sweep meets ``target_fidelity`` with the
    ``margin_sigmas`` margin. If the whole sweep meets it, its largest alpha is chosen (extend the
    sweep for more rate).

    Quantities: ``alpha`` (chosen), ``fidelity`` (fitted at it), ``heralded_rate_hz`` (a fit
    rate = r alpha through the origin, at it) and ``fidelity_slope`` (dF/dalpha).
    """
    if len(alphas) < 3:
        raise ValueError(f"alphas={list(alphas)}: expected at least 3 values")
    if any(not 0 < a <= 0.5 for a in alphas):
        raise ValueError(f"alphas={list(alphas)}: expected each in (0, 0.5]")
    if not 0.5 < target_fidelity < 1:
        raise ValueError(f"target_fidelity={target_fidelity}: expected in (0.5, 1)")
    x = np.asarray(sorted(alphas), dtype=float)
    fid, fid_err, rate, rate_err, att = [], [], [], [], []
    for alpha in x:
        batch = source(float(alpha), pairs_per_point)
        est = fidelity_from_outcomes(
            batch.bell_states,
            batch.bases,
            batch.outcomes_a,
            batch.outcomes_b,
            readout_a=readout_a,
            readout_b=readout_b,
        )
        n = len(batch.bell_states)
        fid.append(est.value)
        fid_err.append(max(est.stderr, 1e-6))
        rate.append(n / batch.elapsed_s)
        rate_err.append(math.sqrt(n) / batch.elapsed_s)
        att.append(float(batch.attempts))
    f, sf = np.asarray(fid), np.asarray(fid_err)
    r, sr = np.asarray(rate), np.asarray(rate_err)
    scan = {
        "alpha": x.tolist(),
        "fidelity": f.tolist(),
        "fidelity_err": sf.tolist(),
        "rate_hz": r.tolist(),
        "rate_err_hz": sr.tolist(),
        "attempts": att,
        "pairs": [float(pairs_per_point)],
    }
    # weighted linear fit F = c0 + c1 alpha with its covariance
    w = 1 / sf**2
    design = np.column_stack([np.ones_like(x), x])
    cov = np.linalg.inv(design.T @ (design * w[:, None]))
    coef = cov @ design.T @ (w * f)
    chi2 = float(np.sum(w * (f - design @ coef) ** 2) / max(len(x) - 2, 1))
    cov = cov * max(chi2, 1.0)
    slope, slope_err = float(coef[1]), float(math.sqrt(cov[1, 1]))
    # rate = k alpha (weighted, through the origin)
    wr = 1 / sr**2
    k = float(np.sum(wr * x * r) / np.sum(wr * x * x))
    k_err = float(1 / math.sqrt(np.sum(wr * x * x)))

    grid = np.linspace(x[0], x[-1], 2001)
    g = np.column_stack([np.ones_like(grid), grid])
    fitted = g @ coef
    band = np.sqrt(np.einsum("ij,jk,ik->i", g, cov, g))
    meets = fitted - margin_sigmas * band >= target_fidelity
    fit = {
        "intercept": float(coef[0]),
        "slope": slope,
        "reduced_chi2": chi2,
        "rate_per_alpha": k,
        "target_fidelity": target_fidelity,
        "margin_sigmas": margin_sigmas,
    }
    checks = [
        (
            slope <= -min_slope_significance * slope_err,
            f"fidelity does not fall significantly with alpha (slope {slope:.3f} +- "
            f"{slope_err:.3f}): more pairs per point or a wider sweep",
        ),
        (
            chi2 <= max_reduced_chi2,
            f"reduced chi-square {chi2:.2f} above {max_reduced_chi2}: F(alpha) is not linear "
            "over the sweep",
        ),
        (
            bool(meets.any()),
            f"no alpha in {x[0]:g}..{x[-1]:g} meets the target fidelity {target_fidelity} "
            f"(fitted {fitted[0]:.3f} +- {band[0]:.3f} at alpha={x[0]:g}): check the lasers, "
            "the phase stabilisation and the visibility",
        ),
    ]
    passed, reason = judge(checks)
    if not meets.any():
        return CalibrationResult(
            routine="alpha_tradeoff", quantities={}, passed=False, reason=reason, scan=scan, fit=fit
        )
    i = int(np.flatnonzero(meets)[-1])
    chosen = float(grid[i])
    fit["chosen_alpha"] = chosen
    if passed and i == len(grid) - 1:
        reason = f"target met over the whole sweep: chose its largest alpha {chosen:g}"
    alpha_err = float(band[i] / abs(slope)) if slope else float("inf")
    return CalibrationResult(
        routine="alpha_tradeoff",
        quantities={
            "alpha": Measured(value=chosen, uncertainty=min(alpha_err, 0.5), unit=""),
            "fidelity": Measured(value=float(fitted[i]), uncertainty=float(band[i]), unit=""),
            "heralded_rate_hz": Measured(value=k * chosen, uncertainty=k_err * chosen, unit="Hz"),
            "fidelity_slope": Measured(value=slope, uncertainty=slope_err, unit=""),
        },
        passed=passed,
        reason=reason,
        scan=scan,
        fit=fit,
        applied={"alpha": chosen} if passed else {},
    )
