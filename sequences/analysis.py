"""Estimating fidelity and CHSH values from measured outcomes, as the lab does.

Pure statistics on outcome records: nothing here knows whether the outcomes came from the
simulated lab or from real detectors.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

#: Sign of <XX>, <YY>, <ZZ> for each Bell state (its stabilisers).
BELL_CORRELATOR_SIGNS: dict[str, tuple[int, int, int]] = {
    "PHI+": (1, -1, 1),
    "PHI-": (-1, 1, 1),
    "PSI+": (1, 1, -1),
    "PSI-": (-1, -1, -1),
}

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    """A value with its standard error; ``interval()`` gives a normal confidence interval."""

    value: float
    stderr: float

    def interval(self, z: float = Z_95) -> tuple[float, float]:
        return self.value - z * self.stderr, self.value + z * self.stderr


def readout_confusion(f0: float, f1: float) -> np.ndarray:
    """P(reported | true) for one qubit: columns true 0/1, rows reported 0/1."""
    return np.array([[f0, 1 - f1], [1 - f0, f1]])


def correlator(
    outcomes_a: np.ndarray,
    outcomes_b: np.ndarray,
    readout_a: tuple[float, float] | None = None,
    readout_b: tuple[float, float] | None = None,
) -> Estimate:
    """<P_A P_B> from paired outcomes (0 <-> +1, 1 <-> -1), optionally readout-corrected.

    Correction inverts each qubit's confusion matrix on the joint outcome frequencies
    (as in Hensen et al., Nature 526, 682 (2015), Methods); the standard error is scaled
    by the same factor.
    """
    a = np.asarray(outcomes_a, dtype=int)
    b = np.asarray(outcomes_b, dtype=int)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("need the same, non-zero number of outcomes on both qubits")
    n = a.size
    freq = np.array([np.mean((a == i) & (b == j)) for i in (0, 1) for j in (0, 1)])
    parity = np.array([1, -1, -1, 1])
    raw = float(parity @ freq)
    if readout_a is None and readout_b is None:
        return Estimate(raw, math.sqrt(max(1 - raw**2, 0.0) / n))
    ca = readout_confusion(*(readout_a or (1.0, 1.0)))
    cb = readout_confusion(*(readout_b or (1.0, 1.0)))
    corrected_freq = np.linalg.solve(np.kron(ca, cb), freq)
    value = float(parity @ corrected_freq)
    contrast = (ca[0, 0] + ca[1, 1] - 1) * (cb[0, 0] + cb[1, 1] - 1)
    return Estimate(value, math.sqrt(max(1 - raw**2, 0.0) / n) / contrast)


def bell_fidelity(correlators: dict[str, Estimate], bell_state: str) -> Estimate:
    """F = (1 + s_x<XX> + s_y<YY> + s_z<ZZ>)/4 for the target Bell state's signs s."""
    try:
        signs = BELL_CORRELATOR_SIGNS[bell_state]
    except KeyError:
        raise ValueError(
            f"bell_state={bell_state!r}: expected one of {sorted(BELL_CORRELATOR_SIGNS)}"
        ) from None
    missing = [b for b in ("XX", "YY", "ZZ") if b not in correlators]
    if missing:
        raise ValueError(f"fidelity needs correlators XX, YY and ZZ; missing {missing}")
    value = 0.25 * (
        1 + sum(s * correlators[b].value for s, b in zip(signs, ("XX", "YY", "ZZ"), strict=True))
    )
    err = 0.25 * math.sqrt(sum(correlators[b].stderr ** 2 for b in ("XX", "YY", "ZZ")))
    return Estimate(value, err)


def chsh_value(correlators: Iterable[Estimate], signs: Iterable[int] = (1, 1, 1, -1)) -> Estimate:
    """S = E(a,b) + E(a,b') + E(a',b) - E(a',b') (Clauser et al., PRL 23, 880 (1969))."""
    terms = list(zip(signs, correlators, strict=True))
    if len(terms) != 4:
        raise ValueError("CHSH needs exactly four correlators")
    value = sum(s * e.value for s, e in terms)
    return Estimate(value, math.sqrt(sum(e.stderr**2 for _, e in terms)))


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion."""
    if trials <= 0:
        raise ValueError("trials must be positive")
    p = successes / trials
    denom = 1 + z**2 / trials
    centre = (p + z**2 / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z**2 / (4 * trials**2)) / denom
    return centre - half, centre + half


def fidelity_from_outcomes(
    bell_states: Iterable[str],
    bases: Iterable[str],
    outcomes_a: Iterable[int],
    outcomes_b: Iterable[int],
    readout_a: tuple[float, float] | None = None,
    readout_b: tuple[float, float] | None = None,
) -> Estimate:
    """Fidelity to each shot's heralded Bell state, from shots measured in XX, YY or ZZ.

    Shots heralding different Bell states are analysed separately (each with its own
    stabiliser signs) and combined weighted by their counts.
    """
    bell = np.asarray(list(bell_states))
    basis = np.asarray(list(bases))
    a = np.asarray(list(outcomes_a), dtype=int)
    b = np.asarray(list(outcomes_b), dtype=int)
    if not (len(bell) == len(basis) == len(a) == len(b)) or len(bell) == 0:
        raise ValueError("need the same, non-zero number of heralds, bases and outcomes")
    index = {"XX": 0, "YY": 1, "ZZ": 2}
    unknown = set(basis.tolist()) - set(index)
    if unknown:
        raise ValueError(f"bases {sorted(unknown)}: expected 'XX', 'YY' or 'ZZ'")
    total = 0.25
    variance = 0.0
    for name, i in index.items():
        in_basis = basis == name
        n_basis = int(in_basis.sum())
        if n_basis == 0:
            raise ValueError(f"no shots measured in basis {name}: fidelity needs XX, YY and ZZ")
        for state in sorted(set(bell[in_basis].tolist())):
            sel = in_basis & (bell == state)
            weight = sel.sum() / n_basis
            est = correlator(a[sel], b[sel], readout_a, readout_b)
            sign = BELL_CORRELATOR_SIGNS[state][i]
            total += 0.25 * weight * sign * est.value
            variance += (0.25 * weight * est.stderr) ** 2
    return Estimate(total, math.sqrt(variance))
