"""Standard states and figures of merit for qubits and Bell pairs."""

from __future__ import annotations

import cmath
import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

KET_0 = np.array([1.0, 0.0], dtype=complex)
KET_1 = np.array([0.0, 1.0], dtype=complex)

_S = 1.0 / np.sqrt(2.0)

#: The four Bell states in the basis |00>, |01>, |10>, |11> (qubit order: first, second).
BELL_STATES: dict[str, np.ndarray] = {
    "PHI+": np.array([_S, 0, 0, _S], dtype=complex),
    "PHI-": np.array([_S, 0, 0, -_S], dtype=complex),
    "PSI+": np.array([0, _S, _S, 0], dtype=complex),
    "PSI-": np.array([0, _S, -_S, 0], dtype=complex),
}


def density_matrix(ket: np.ndarray) -> np.ndarray:
    """|ket><ket| for a normalised state vector."""
    ket = np.asarray(ket, dtype=complex)
    return np.outer(ket, ket.conj())


def bell_density_matrix(name: str) -> np.ndarray:
    """Density matrix of the Bell state called ``name`` (e.g. ``"PSI+"``)."""
    try:
        return density_matrix(BELL_STATES[name])
    except KeyError:
        raise ValueError(
            f"unknown Bell state {name!r}; expected one of {sorted(BELL_STATES)}"
        ) from None


def werner_state(fidelity: float, bell: str = "PHI+") -> np.ndarray:
    """Werner state F|B><B| + (1-F)/3 (1 - |B><B|) (Werner, PRA 40, 4277 (1989))."""
    if not 0.0 <= fidelity <= 1.0:
        raise ValueError(f"fidelity={fidelity!r}: expected a value in [0, 1]")
    target = bell_density_matrix(bell)
    return fidelity * target + (1.0 - fidelity) / 3.0 * (np.eye(4) - target)


def fidelity_to_pure(rho: np.ndarray, ket: np.ndarray) -> float:
    """Fidelity <psi|rho|psi> of a density matrix to a pure state."""
    ket = np.asarray(ket, dtype=complex)
    return float(np.real(ket.conj() @ rho @ ket))


def bloch_ket(theta: float, phi: float) -> np.ndarray:
    """cos(theta/2)|0> + e^{i phi} sin(theta/2)|1>."""
    return np.array([np.cos(theta / 2), np.exp(1j * phi) * np.sin(theta / 2)], dtype=complex)


def fidelity_to_bloch_state(rho: np.ndarray, theta: float, phi: float) -> float:
    """``fidelity_to_pure(rho, bloch_ket(theta, phi))`` of a one-qubit ``rho``, on its four
    entries in plain arithmetic (the same products and sums: <psi| rho first, then |psi>)."""
    return fidelity_to_bloch_entries(rho.ravel().tolist(), theta, phi)


@lru_cache(maxsize=256)
def _bloch_amplitudes(theta: float, phi: float) -> tuple[float, complex]:
    """(cos(theta/2), e^{i phi} sin(theta/2)): remembered, a run probes a few states."""
    return math.cos(theta / 2), cmath.exp(1j * phi) * math.sin(theta / 2)


def fidelity_to_bloch_entries(entries: Sequence[complex], theta: float, phi: float) -> float:
    """``fidelity_to_bloch_state`` of the one-qubit state with entries (r00, r01, r10,
    r11)."""
    a, b = _bloch_amplitudes(theta, phi)
    r00, r01, r10, r11 = entries
    bra0, bra1 = a, b.conjugate()
    row0 = bra0 * r00 + bra1 * r10
    row1 = bra0 * r01 + bra1 * r11
    return (row0 * a + row1 * b).real
