"""Heralded entanglement between two emitters: single-click and Barrett-Kok schemes.

Each node's spin emits a photon only from its bright state |1> (spin-selective optical
excitation), so for spins in basis state s = (s_A, s_B) the photons are in a definite state
|phi_s>. A detection pattern E with POVM element Pi_E therefore acts on the spins as a Schur
multiplier,  rho'[s, s'] = rho[s, s'] <phi_s'| Pi_E |phi_s>,  a completely positive map
(Kraus operators <E-outcome|U_s>), from which both the herald probability Tr(rho') and the
heralded state rho'/Tr(rho') follow. Loss, detector efficiency, dark counts, beam-splitter
interference, distinguishability, optical phase noise and double excitation all enter here;
the heralded state is computed, not assumed.

Schemes:
* single-click: Cabrillo et al., PRA 59, 1025 (1999); Humphreys et al., Nature 558, 268
  (2018). One round, spins prepared in sqrt(1-alpha)|0> + sqrt(alpha)|1>; exactly one
  detector clicks -> |Psi+-> (to first order: success 2 alpha eta, fidelity 1 - alpha).
* Barrett-Kok: Barrett & Kok, PRA 71, 060310 (2005); Bernien et al., Nature 497, 86 (2013).
  Two rounds with a pi pulse between; one click in each round -> |Psi+-> (success eta^2/2).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

from .operators import apply_schur
from .photonics import DetectorPair, FockSpace, click_pattern_operators, emitted_photon_states

SPIN_CONFIGS = [(0, 0), (0, 1), (1, 0), (1, 1)]  # basis order of the 4x4 spin state (A, B)


@dataclass(frozen=True)
class OpticalPath:
    """What one node's photon goes through on its way to the station's beam splitter."""

    transmission: float  # collection x conversion x fibre (detector efficiency excluded)
    double_excitation: float = 0.0


@dataclass(frozen=True)
class HeraldPattern:
    """A detection pattern that heralds success, and the Bell state the protocol assigns it."""

    clicks: tuple[str, ...]  # one entry per round: '+', '-', 'both' or 'none'
    bell_state: str | None  # None: the pattern does not herald (a failed attempt)
    rounds: tuple[np.ndarray, ...]  # Schur multiplier per round, without the optical phase


@dataclass(frozen=True)
class HeraldingSetup:
    """Everything that decides the photonic part of one attempt."""

    path_a: OpticalPath
    path_b: OpticalPath
    detectors: DetectorPair
    visibility: float
    phase_offset_rad: float = 0.0
    phase_noise_std_rad: float = 0.0


def round_multiplier(
    pattern_operator: np.ndarray,
    photons: dict[tuple[int, int], np.ndarray],
    setup: HeraldingSetup,
) -> np.ndarray:
    """4x4 Schur multiplier of one detection outcome in one round: <phi_s'|Pi|phi_s>.

    Double excitation: the bright state sometimes emits an extra photon early in the pulse,
    which is filtered out and lost; that record of "which node was bright" multiplies each
    bright/dark coherence by sqrt(1 - p_double) (environment-overlap model).
    """
    m = np.empty((4, 4), dtype=complex)
    keep = (
        math.sqrt(1 - setup.path_a.double_excitation),
        math.sqrt(1 - setup.path_b.double_excitation),
    )
    for i, s in enumerate(SPIN_CONFIGS):
        for j, t in enumerate(SPIN_CONFIGS):
            value = photons[t].conj() @ pattern_operator @ photons[s]
            for node in (0, 1):
                if s[node] != t[node]:
                    value *= keep[node]
            m[i, j] = value
    return m


def phase_multiplier(phase_rad: float) -> np.ndarray:
    """Optical phase of node A's arm relative to B's: rho[s, s'] *= e^{i phi (s_A - s'_A)}."""
    m = np.empty((4, 4), dtype=complex)
    for i, s in enumerate(SPIN_CONFIGS):
        for j, t in enumerate(SPIN_CONFIGS):
            m[i, j] = np.exp(1j * phase_rad * (s[0] - t[0]))
    return m


def single_click_patterns(setup: HeraldingSetup) -> list[HeraldPattern]:
    """Every click pattern of one attempt. Exactly one detector clicking heralds: '+' Psi+,
    '-' Psi-; 'both' and 'none' are failed attempts."""
    space = FockSpace()
    ops = click_pattern_operators(
        space, setup.detectors, setup.path_a.transmission, setup.path_b.transmission
    )
    photons = emitted_photon_states(space, setup.visibility)
    herald = {"+": "PSI+", "-": "PSI-"}
    return [
        HeraldPattern((c,), herald.get(c), (round_multiplier(ops[c], photons, setup),))
        for c in ("+", "-", "both", "none")
    ]


def barrett_kok_patterns(
    setup: HeraldingSetup, detector_dead_in_round_two: bool
) -> list[HeraldPattern]:
    """One click in each round: the same detector twice heralds Psi+, different ones Psi-.

    ``detector_dead_in_round_two``: the dead time outlasts the round separation, so the
    detector that clicked in round one is blind in round two (as in Bernien et al. 2013).
    """
    space = FockSpace()
    photons = emitted_photon_states(space, setup.visibility)
    t_a, t_b = setup.path_a.transmission, setup.path_b.transmission
    first = click_pattern_operators(space, setup.detectors, t_a, t_b)
    patterns = []
    outcomes = ("+", "-", "both", "none")
    for c1 in outcomes:
        clicked = (c1 in ("+", "both"), c1 in ("-", "both"))
        dead = clicked if detector_dead_in_round_two else (False, False)
        second = click_pattern_operators(space, setup.detectors, t_a, t_b, dead=dead)
        for c2 in outcomes:
            rounds = (
                round_multiplier(first[c1], photons, setup),
                round_multiplier(second[c2], photons, setup),
            )
            heralds = c1 in ("+", "-") and c2 in ("+", "-")
            bell = ("PSI+" if c1 == c2 else "PSI-") if heralds else None
            patterns.append(HeraldPattern((c1, c2), bell, rounds))
    return patterns


def heralded_states(
    pre_state: np.ndarray,
    patterns: list[HeraldPattern],
    setup: HeraldingSetup,
    between_rounds: Callable[[np.ndarray], np.ndarray] | None = None,
    quadrature_points: int = 24,
) -> list[tuple[HeraldPattern, float, np.ndarray]]:
    """For each pattern: its probability per attempt and the normalised heralded spin state.

    The interferometer phase is Gaussian (mean ``phase_offset_rad``, std
    ``phase_noise_std_rad``) and the same in every round of an attempt; its average is taken
    with Gauss-Hermite quadrature (exact to numerical precision for the smooth integrand).
    ``between_rounds`` maps the spin state between rounds (the pi pulse and the idle time).
    """
    if setup.phase_noise_std_rad > 0:
        nodes, weights = hermegauss(quadrature_points)
        weights = weights / weights.sum()
        phases = setup.phase_offset_rad + setup.phase_noise_std_rad * nodes
    else:
        phases, weights = np.array([setup.phase_offset_rad]), np.array([1.0])
    results = []
    for pattern in patterns:
        acc = np.zeros((4, 4), dtype=complex)
        for phase, weight in zip(phases, weights, strict=True):
            phase_m = phase_multiplier(phase)
            rho = pre_state
            for r, multiplier in enumerate(pattern.rounds):
                if r > 0 and between_rounds is not None:
                    rho = between_rounds(rho)
                rho = apply_schur(rho, multiplier * phase_m, [0, 1])
            acc += weight * rho
        probability = float(np.real(np.trace(acc)))
        state = acc / probability if probability > 0 else acc
        results.append((pattern, probability, state))
    return results
