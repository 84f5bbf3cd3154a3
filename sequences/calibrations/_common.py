"""What the calibration routines share: the result model, a probe that counts clicks of
attempt loops on a link, and a least-squares fit with uncertainties.

Only HAL roles are used (``drivers.hal``): the same routines run on the simulated lab and in
the lab.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import curve_fit

from drivers.hal import AWG, QubitDevice, TimeTagger
from sequences.attempt_loop import AttemptLoop, run_attempt_loops
from sequences.time_tags import counts_per_channel


class Measured(BaseModel):
    """A calibrated quantity: value, standard uncertainty and unit."""

    model_config = ConfigDict(frozen=True)

    value: float
    uncertainty: float = Field(ge=0)
    unit: str


class CalibrationResult(BaseModel):
    """What a calibration routine found: its quantities, pass/fail and why, the raw scan
    (column name -> values) and the fit parameters (name -> value)."""

    model_config = ConfigDict(frozen=True)

    routine: str
    quantities: dict[str, Measured]
    passed: bool
    reason: str
    scan: dict[str, list[float]] = {}
    fit: dict[str, float] = {}
    applied: dict[str, float] = Field(
        {}, description="settings the routine left on the instruments (after a pass)"
    )

    def value(self, name: str) -> float:
        return self.quantities[name].value

    def uncertainty(self, name: str) -> float:
        return self.quantities[name].uncertainty


@dataclass
class LinkProbe:
    """Counts detector clicks of attempt loops on one link.

    Both nodes' AWGs play the single-click attempt loop (``sequences.attempt_loop``), not
    stopping at heralds; the station's time tagger records the clicks. The caller prepares
    the nodes and the station first (``prepare_node``, ``prepare_station``) and decides
    which node's light is on: with one node lit, clicks per attempt are proportional to that
    node's excitation probability times its conversion efficiency times each detector's
    efficiency (plus dark counts over the loop's duration).

    ``clock`` (a node's real-time controller) gives the elapsed time of each run when known.
    """

    awgs: Sequence[AWG]
    tagger: TimeTagger
    channels: tuple[int, int] = (1, 2)
    alpha: float = 0.5
    attempt_duration_us: float = 3.8
    clock: QubitDevice | None = None
    run_timeout_s: float = 600.0

    def clicks(self, attempts: int) -> tuple[tuple[int, int], float | None]:
        """Run ``attempts`` attempts; return (clicks on each channel, elapsed seconds or
        None without a clock)."""
        self.tagger.read_tags()  # discard whatever came before
        t0 = self.clock.time_s() if self.clock is not None else None
        loop = AttemptLoop(
            alpha=self.alpha,
            max_attempts=attempts,
            stop_at_herald=False,
            attempt_duration_us=self.attempt_duration_us,
        )
        run_attempt_loops(list(self.awgs), loop)
        deadline = time.monotonic() + self.run_timeout_s
        while any(awg.is_running() for awg in self.awgs):  # in the lab the loop takes time
            if time.monotonic() > deadline:
                for awg in self.awgs:
                    awg.stop()
                raise TimeoutError(f"attempt loop of {attempts} attempts did not finish")
            time.sleep(0.01)
        counts = counts_per_channel(self.tagger.read_tags())
        elapsed = self.clock.time_s() - t0 if self.clock is not None and t0 is not None else None
        return (counts.get(self.channels[0], 0), counts.get(self.channels[1], 0)), elapsed


@dataclass(frozen=True)
class Fit:
    """Least-squares fit: parameters, their standard errors, reduced chi-square."""

    params: dict[str, float]
    errors: dict[str, float]
    reduced_chi2: float


def fit_counts(
    model: Callable[..., np.ndarray],
    names: Sequence[str],
    x: np.ndarray,
    counts: np.ndarray,
    p0: Sequence[float],
    bounds: tuple[Sequence[float], Sequence[float]],
) -> Fit:
    """Weighted least squares of Poisson counts (sigma = sqrt(max(n, 1))); see
    ``weighted_fit``."""
    return weighted_fit(model, names, x, counts, np.sqrt(np.maximum(counts, 1.0)), p0, bounds)


def weighted_fit(
    model: Callable[..., np.ndarray],
    names: Sequence[str],
    x: np.ndarray,
    y: np.ndarray,
    sigma: np.ndarray,
    p0: Sequence[float],
    bounds: tuple[Sequence[float], Sequence[float]],
) -> Fit:
    """Weighted least squares of ``y`` (standard errors ``sigma``), with the covariance
    scaled by the reduced chi-square when it exceeds 1 (so a poor model widens the stated
    uncertainty instead of hiding it). Raises RuntimeError if the fit fails."""
    popt, pcov = curve_fit(
        model, x, y, p0=p0, sigma=sigma, absolute_sigma=True, bounds=bounds, maxfev=20_000
    )
    residuals = (y - model(x, *popt)) / sigma
    dof = max(len(x) - len(popt), 1)
    chi2 = float(np.sum(residuals**2) / dof)
    errors = np.sqrt(np.abs(np.diag(pcov))) * math.sqrt(max(chi2, 1.0))
    if not np.all(np.isfinite(errors)):
        raise RuntimeError("fit covariance is not finite (parameters not determined)")
    return Fit(
        params={n: float(v) for n, v in zip(names, popt, strict=True)},
        errors={n: float(e) for n, e in zip(names, errors, strict=True)},
        reduced_chi2=chi2,
    )


def judge(checks: Sequence[tuple[bool, str]]) -> tuple[bool, str]:
    """(passed, reason) from (ok, what failed) checks: every failure is named."""
    failures = [why for ok, why in checks if not ok]
    if failures:
        return False, "; ".join(failures)
    return True, "all checks passed"
