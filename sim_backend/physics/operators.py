"""Single- and two-qubit operators, and applying them to a subset of an n-qubit state.

Qubit 0 is the most significant bit of the basis index (|q0 q1 ... q_{n-1}>).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

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
    """exp(-i angle/2 n.sigma) for an axis 'X', 'Y', 'Z' or a unit vector n (read-only for
    a named axis: those are cached, a node's gates repeat their angles)."""
    if isinstance(axis, str):
        return _axis_rotation(axis.upper(), float(angle))
    return _rotation(axis, angle)


@lru_cache(maxsize=1024)
def _axis_rotation(axis: str, angle: float) -> np.ndarray:
    out = _rotation(axis, angle)
    out.flags.writeable = False
    return out


def _rotation(axis: str | Sequence[float], angle: float) -> np.ndarray:
    if isinstance(axis, str):
        try:
            n = {"X": (1.0, 0.0, 0.0), "Y": (0.0, 1.0, 0.0), "Z": (0.0, 0.0, 1.0)}[axis.upper()]
        except KeyError:
            raise ValueError(
                f"rotation axis {axis!r}: expected 'X', 'Y', 'Z' or a vector"
            ) from None
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


@lru_cache(maxsize=512)
def _basis_permutation(n: int, targets: tuple[int, ...]) -> np.ndarray:
    """Index map from the original qubit order to the order (targets..., others...)."""
    others = [q for q in range(n) if q not in targets]
    order = list(targets) + others
    idx = np.arange(2**n).reshape([2] * n).transpose(order).reshape(-1)
    out = np.empty_like(idx)
    out[idx] = np.arange(2**n)
    return out


def embed(op: np.ndarray, targets: Sequence[int], n: int) -> np.ndarray:
    """The 2^n x 2^n operator that applies ``op`` to ``targets`` and identity elsewhere."""
    k = len(targets)
    if k == n and list(targets) == list(range(n)):
        return op
    key = (op.tobytes(), op.shape, tuple(targets), n)
    full = _EMBEDDED.get(key)
    if full is None:
        full = np.kron(op, np.eye(2 ** (n - k)))
        idx = _basis_permutation(n, tuple(targets))
        full = full[np.ix_(idx, idx)]
        full.flags.writeable = False
        if len(_EMBEDDED) >= 1024:
            _EMBEDDED.clear()
        _EMBEDDED[key] = full
    return full


#: Embedded gates by (operator bytes, shape, targets, n): a gate's full-size operator is
#: built once, not per application (gates on grouped states repeat: CNOT, SWAP, CZ).
_EMBEDDED: dict[tuple[bytes, tuple[int, ...], tuple[int, ...], int], np.ndarray] = {}


def apply_operator(rho: np.ndarray, op: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """op rho op^dagger with ``op`` acting on the qubits ``targets`` of ``rho``."""
    n = rho.shape[0].bit_length() - 1
    if len(targets) == 1 and n > 1:
        return _apply_single_qubit(rho, op, targets[0], n)
    full = embed(op, targets, n)
    return full @ rho @ full.conj().T


def _apply_single_qubit(rho: np.ndarray, op: np.ndarray, target: int, n: int) -> np.ndarray:
    """op on one qubit by two batched 2x2 products (rows, then columns), no embedding."""
    dim = rho.shape[0]
    left, right = 2**target, 2 ** (n - target - 1)
    rows = np.matmul(op, rho.reshape(left, 2, right * dim))
    both = np.matmul(op.conj(), rows.reshape(dim * left, 2, right))
    return both.reshape(dim, dim)


@lru_cache(maxsize=256)
def _phase_covariant_masks(
    n: int, target: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Masks of one qubit's coherences and excited block, and the flat indices that move
    its |1><1| block onto its |0><0| block (for an n-qubit density matrix)."""
    dim = 2**n
    bit = (np.arange(dim) >> (n - 1 - target)) & 1
    off = (bit[:, None] != bit[None, :]).astype(float)
    excited = (bit[:, None] & bit[None, :]).astype(float)
    ones = np.nonzero(bit)[0]
    src = (ones[:, None] * dim + ones[None, :]).ravel()
    stride = 1 << (n - 1 - target)
    dst = ((ones - stride)[:, None] * dim + (ones - stride)[None, :]).ravel()
    return off, excited, src, dst


def phase_covariant_entries(
    entries: Sequence[complex], gamma: float, coherence: float
) -> tuple[complex, complex, complex, complex]:
    """``apply_phase_covariant`` on a lone qubit's entries (r00, r01, r10, r11)."""
    r00, r01, r10, r11 = entries
    return r00 + gamma * r11, coherence * r01, coherence * r10, (1.0 - gamma) * r11


def apply_phase_covariant(
    rho: np.ndarray, target: int, gamma: float, coherence: float
) -> np.ndarray:
    """Amplitude damping gamma and total coherence factor ``coherence`` on one qubit.

    rho_00 += gamma rho_11, rho_11 *= 1 - gamma, rho_01 and rho_10 *= coherence: the
    T1/T2 idle channel and pure dephasing (gamma = 0) in a few array operations.
    """
    n = rho.shape[0].bit_length() - 1
    if n == 1:
        r00, r01, r10, r11 = phase_covariant_entries(rho.ravel().tolist(), gamma, coherence)
        return np.array([[r00, r01], [r10, r11]])
    off, excited, src, dst = _phase_covariant_masks(n, target)
    out = rho * (1.0 + (coherence - 1.0) * off - gamma * excited)
    if gamma:
        flat = out.reshape(-1)
        flat[dst] += gamma * rho.reshape(-1)[src]
    return out


def apply_depolarizing(rho: np.ndarray, targets: Sequence[int], p: float) -> np.ndarray:
    """rho -> (1-p) rho + p (1/d on ``targets``) x Tr_targets(rho) (N&C eq. 8.102).

    Only the entries on the targets' diagonal blocks |s><s| mix: the partial trace is the sum
    of the d blocks and the maximally mixed part adds 1/d of it back to each. Both are done
    with one cached table of those entries' flat indices (no Kronecker product, no permuted
    copy of rho), so the cost is a few array operations whatever the group size."""
    n = rho.shape[0].bit_length() - 1
    blocks = _diagonal_blocks(n, tuple(targets))
    flat = rho.reshape(-1)
    out = (1.0 - p) * flat
    out[blocks] += (p / len(blocks)) * flat[blocks].sum(axis=0)
    return out.reshape(rho.shape)


@lru_cache(maxsize=256)
def _diagonal_blocks(n: int, targets: tuple[int, ...]) -> np.ndarray:
    """Flat indices of an n-qubit rho, shape (d, m): row s lists the entries of the targets'
    diagonal block |s><s| (s in the targets' basis), in the same order of the other qubits'
    (row, column) indices for every s."""
    if len(set(targets)) != len(targets) or not all(0 <= t < n for t in targets):
        raise ValueError(f"targets {list(targets)} must be distinct qubits of {n}")
    dim = 2**n
    order = _basis_permutation(n, targets)  # original index of (targets..., others...)
    inverse = np.argsort(order)
    d, rest = 2 ** len(targets), 2 ** (n - len(targets))
    index = inverse.reshape(d, rest)  # index[s, r]: basis state with targets s, others r
    table = index[:, :, None] * dim + index[:, None, :]
    table = table.reshape(d, rest * rest)
    table.flags.writeable = False
    return table


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
    n = rho.shape[0].bit_length() - 1
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
    n = rho.shape[0].bit_length() - 1
    if len(keep) == n and list(keep) == list(range(n)):
        return rho.copy()
    rows, cols, _ = _einsum_letters(n)
    col_list = list(cols)
    for q in range(n):
        if q not in keep:
            col_list[q] = rows[q]
    out_spec = "".join(rows[q] for q in keep) + "".join(cols[q] for q in keep)
    out = np.einsum(f"{rows}{''.join(col_list)}->{out_spec}", rho.reshape([2] * (2 * n)))
    d = 2 ** len(keep)
    return out.reshape(d, d)
