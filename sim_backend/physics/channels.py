"""Noise channels as Kraus operators (Nielsen & Chuang, ch. 8.3).

Each function returns the Kraus operators of one channel; ``operators.apply_channel`` applies
them to chosen qubits of a group's density matrix.
"""

from __future__ import annotations

import math

import numpy as np

from .operators import I2, X, Y, Z


def depolarizing_kraus(p: float) -> list[np.ndarray]:
    """Single-qubit depolarising channel rho -> (1-p) rho + p 1/2 (N&C eq. 8.102)."""
    _check_probability("depolarizing probability", p)
    return [math.sqrt(1 - 3 * p / 4) * I2] + [math.sqrt(p / 4) * P for P in (X, Y, Z)]


def two_qubit_depolarizing_kraus(p: float) -> list[np.ndarray]:
    """Two-qubit depolarising channel rho -> (1-p) rho + p 1/4 (16 Pauli-product Kraus ops)."""
    _check_probability("depolarizing probability", p)
    paulis = (I2, X, Y, Z)
    ops = []
    for i, a in enumerate(paulis):
        for j, b in enumerate(paulis):
            weight = 1 - 15 * p / 16 if i == j == 0 else p / 16
            ops.append(math.sqrt(weight) * np.kron(a, b))
    return ops


def amplitude_damping_kraus(gamma: float) -> list[np.ndarray]:
    """Energy relaxation |1> -> |0> with probability gamma (N&C eq. 8.108)."""
    _check_probability("damping probability", gamma)
    k0 = np.array([[1, 0], [0, math.sqrt(1 - gamma)]], dtype=complex)
    k1 = np.array([[0, math.sqrt(gamma)], [0, 0]], dtype=complex)
    return [k0, k1]


def dephasing_kraus(coherence_factor: float) -> list[np.ndarray]:
    """Pure dephasing that multiplies the off-diagonal elements by ``coherence_factor``.

    Written as a phase flip with probability (1 - c)/2 (N&C eq. 8.127, with c = 1 - 2p).
    """
    if not 0.0 <= coherence_factor <= 1.0:
        raise ValueError(f"coherence factor={coherence_factor!r}: expected a value in [0, 1]")
    p_flip = (1 - coherence_factor) / 2
    return [math.sqrt(1 - p_flip) * I2, math.sqrt(p_flip) * Z]


def idle_parameters(
    duration_s: float, t1_s: float | None, t2_s: float | None
) -> tuple[float, float]:
    """(gamma, coherence) of idling for ``duration_s``: populations relax with
    gamma = 1 - exp(-t/T1) and coherences decay by exp(-t/T2) overall (Bloch equations;
    requires T2 <= 2 T1). ``None`` means infinite (no decay)."""
    if duration_s < 0:
        raise ValueError(f"idle duration={duration_s!r} s: expected >= 0")
    gamma = 0.0 if t1_s is None else -math.expm1(-duration_s / t1_s)
    coherence = 1.0 if t2_s is None else math.exp(-duration_s / t2_s)
    return gamma, coherence


def idle_kraus(duration_s: float, t1_s: float | None, t2_s: float | None) -> list[np.ndarray]:
    """Kraus form of ``idle_parameters``: amplitude damping (T1) then the pure dephasing
    exp(-t/T2 + t/(2 T1)) that brings the total coherence decay to exp(-t/T2)."""
    gamma, coherence = idle_parameters(duration_s, t1_s, t2_s)
    from_t1 = math.sqrt(1.0 - gamma)
    pure = min(1.0, coherence / from_t1) if from_t1 > 0 else 0.0
    damping = amplitude_damping_kraus(gamma)
    return [d @ k for k in dephasing_kraus(pure) for d in damping]


def attempt_dephasing_factor(p_per_attempt: float, attempts: int) -> float:
    """Coherence factor of a memory after ``attempts`` entangling attempts on its node.

    Each attempt dephases the memory with probability p (Kalb et al., Science 356, 928 (2017);
    Rozpedek et al., PRA 99, 052330 (2019), sec. III): coherence is multiplied by (1-2p)^n.
    """
    if not 0.0 <= p_per_attempt <= 1.0:  # ``_check_probability``, inline: called per loop
        _check_probability("dephasing probability per attempt", p_per_attempt)
    return (1.0 - 2.0 * p_per_attempt) ** attempts


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}={value!r}: expected a probability in [0, 1]")
