"""Single- and two-qubit operators, and applying them to a subset of an n-qubit state.

Qubit 0 is the most significant bit of the basis index (|q0 q1 ... q_{n-1}>).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

I2 = np.eye(2, dtype=complex)
X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, -1j], [1j, 0]], dtype=complex)
Z = np.array([[1, 0], [0, -1]], dtype=complex)
H = np.array([[1, 1], [1, -1]], dtype=complex) / np.sqrt(2)
S = np.array([[1, 0], [0, 1j]], dtype=complex)
CNOT = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=complex)
CZ = np.diag([1, 1, 1, -1]).astype(complex)

PAULIS: dict[str, np.ndarray] = {"I": I2, "X": X, "Y": Y, "Z": Z}

#: Unitary that maps the eigenbasis of each Pauli onto the computational basis
#: (applied before a Z readout to measure in that basis; outcome 0 <-> eigenvalue +1).
BASIS_CHANGE: dict[str, np.ndarray] = {"Z": I2, "X": H, "Y": H @ S.conj().T}


def rotation(axis: str | Sequence[float], angle: float) -> np.ndarray:
    """exp(-i angle/2 n.sigma) for an axis 'X', 'Y', 'Z' or a unit vector n."""
    if isinstance(axis, str):
        try:
            n = {"X": (1.0, 0.0, 0.0), "Y": (0.0, 1.0, 0.0), "Z": (0.0, 0.0, 1.0)}[axis.upper()]
        except KeyError:
            raise ValueError(f"rotation axis {axis!r}: expected 'X', 'Y', 'Z' or a vector") from None
    else:
        n = tuple(float(c) for c in axis)
        norm = np.sqrt(sum(c * c for c in n))
        if len(n) != 3 or norm == 0:
            raise ValueError(f"rotation axis {axis!r}: expected a non-zero 3-vector")
        n = tuple(c / norm for c in n)
    generator = n[0] * X + n[1] * Y + n[2] * Z
    return np.cos(angle / 2) * I2 - 1j * np.sin(angle / 2) * generator


def controlled(unitary: np.ndarray) -> np.ndarray:
    """|0><0| x 1 + |1><1| x U: the first qubit controls a single-qubit unitary."""
    out = np.eye(4, dtype=complex)
    out[2:, 2:] = unitary
    return out


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _einsum_letters(n: int, extra: int = 0) -> tuple[str, str, str]:
    """Index letters for the rows, the columns and ``extra`` fresh indices of an n-qubit rho."""
    if 2 * n + extra > len(_LETTERS):
        raise ValueError(f"{n} qubits in one group is more than this engine supports")
    return _LETTERS[:n], _LETTERS[n : 2 * n], _LETTERS[2 * n : 2 * n + extra]


def apply_operator(rho: np.ndarray, op: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """op rho op^dagger with ``op`` acting on the qubits ``targets`` of ``rho``."""
    n = int(round(np.log2(rho.shape[0])))
    k = len(targets)
    if k == n and list(targets) == list(range(n)):
        return op @ rho @ op.conj().T
    rows, cols, fresh = _einsum_letters(n, 2 * k)
    new_rows, new_cols = fresh[:k], fresh[k:]
    out_rows, out_cols = list(rows), list(cols)
    for i, t in enumerate(targets):
        out_rows[t] = new_rows[i]
        out_cols[t] = new_cols[i]
    old_rows = "".join(rows[t] for t in targets)
    old_cols = "".join(cols[t] for t in targets)
    spec = (
        f"{new_rows}{old_rows},{rows}{cols},{new_cols}{old_cols}"
        f"->{''.join(out_rows)}{''.join(out_cols)}"
    )
    shape_op = [2] * (2 * k)
    out = np.einsum(
        spec,
        op.reshape(shape_op),
        rho.reshape([2] * (2 * n)),
        op.conj().reshape(shape_op),
        optimize=True,
    )
    return out.reshape(rho.shape)


def apply_channel(
    rho: np.ndarray, kraus: Sequence[np.ndarray], targets: Sequence[int]
) -> np.ndarray:
    """sum_k K rho K^dagger with the Kraus operators acting on ``targets``."""
    return sum(apply_operator(rho, k, targets) for k in kraus)


def apply_schur(rho: np.ndarray, multiplier: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """Elementwise (Schur) multiplication of the ``targets`` block indices by ``multiplier``.

    rho'[i, j] = rho[i, j] * M[s(i), s(j)] where s(i) is the basis index of the target qubits
    in i. This is how spin-selective optical processes (emission, heralding) act on spins.
    """
    n = int(round(np.log2(rho.shape[0])))
    k = len(targets)
    if k == n and list(targets) == list(range(n)):
        return rho * multiplier
    rows, cols, _ = _einsum_letters(n)
    spec_m = "".join(rows[t] for t in targets) + "".join(cols[t] for t in targets)
    t_rho = rho.reshape([2] * (2 * n))
    t_m = multiplier.reshape([2] * (2 * k))
    out = np.einsum(f"{rows}{cols},{spec_m}->{rows}{cols}", t_rho, t_m)
    return out.reshape(rho.shape)


def partial_trace(rho: np.ndarray, keep: Sequence[int]) -> np.ndarray:
    """Reduced density matrix on the qubits ``keep`` (in that order)."""
    n = int(round(np.log2(rho.shape[0])))
    rows, cols, _ = _einsum_letters(n)
    col_list = list(cols)
    for q in range(n):
        if q not in keep:
            col_list[q] = rows[q]
    out_spec = "".join(rows[q] for q in keep) + "".join(cols[q] for q in keep)
    out = np.einsum(f"{rows}{''.join(col_list)}->{out_spec}", rho.reshape([2] * (2 * n)))
    d = 2 ** len(keep)
    return out.reshape(d, d)
