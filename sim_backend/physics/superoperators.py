"""Fused noisy gates: a node's gate and the noise around it as one superoperator.

A node's gate is idle decoherence of its qubits (T1/T2, pending attempt dephasing), then the
unitary, then the gate's depolarising error. All three are linear maps on the targets'
operator space, so their composition is one superoperator S (Wood, Biamonte & Cory, Quant.
Inf. Comp. 15, 759 (2015), sec. 3.1: the superoperator of a channel on a subsystem), applied
to a group's density matrix in one step: by plain arithmetic on a lone qubit's four entries,
as one 4^n x 4^n matrix on a flattened 2-qubit group, and on larger groups by gathering the
targets' entries into a (4^k, rest) matrix, one product, and the inverse gather.

Layout: a k-qubit superoperator acts on the interleaved index (i1 j1 i2 j2 ... ik jk), where
i_m / j_m are the row / column bit of the m-th target in rho. In that layout the
superoperator of a product of single-qubit channels is the Kronecker product of theirs, and
a unitary U is S[(i j), (k l)] = U[i, k] conj(U[j, l]).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

#: groups up to this size keep their gather index cached (4^n entries each)
_CACHED_GROUP_SIZE = 8


def idle_superoperator(gamma: float, coherence: float) -> np.ndarray:
    """Single-qubit phase-covariant channel (amplitude damping ``gamma``, coherence factor
    ``coherence``) in the (i j) layout: rho_00 += gamma rho_11, rho_11 *= 1 - gamma,
    rho_01 and rho_10 *= coherence (``operators.apply_phase_covariant``)."""
    return np.array(
        [
            [1.0, 0.0, 0.0, gamma],
            [0.0, coherence, 0.0, 0.0],
            [0.0, 0.0, coherence, 0.0],
            [0.0, 0.0, 0.0, 1.0 - gamma],
        ],
        dtype=complex,
    )


def unitary_superoperator(unitary: np.ndarray) -> np.ndarray:
    """rho -> U rho U^dagger on k qubits, as a 4^k x 4^k matrix in the interleaved layout."""
    d = unitary.shape[0]
    k = d.bit_length() - 1
    # t[I, J, K, L] = U[I, K] conj(U[J, L]) with I = (i1..ik), J = (j1..jk), ...
    t = np.einsum("ik,jl->ijkl", unitary, unitary.conj()).reshape([2] * (4 * k))
    rows = [a for m in range(k) for a in (m, k + m)]
    cols = [2 * k + a for a in rows]
    return np.ascontiguousarray(t.transpose(rows + cols).reshape(d * d, d * d))


def depolarizing_superoperator(p: float, k: int) -> np.ndarray:
    """rho -> (1-p) rho + p 1/d Tr(rho) on k qubits (d = 2^k; N&C eq. 8.102) in the
    interleaved layout: (1-p) 1 + (p/d) |vec 1><vec 1|."""
    d = 2**k
    identity = np.eye(2).reshape(-1)  # vec of the single-qubit identity in the (i j) layout
    vec = identity
    for _ in range(k - 1):
        vec = np.kron(vec, identity)
    return (1.0 - p) * np.eye(d * d, dtype=complex) + (p / d) * np.outer(vec, vec)


#: the single-qubit idle channel E + c C + gamma G (``idle_superoperator``)
_IDLE_BASIS = (
    np.diag([1.0, 0.0, 0.0, 1.0]).astype(complex),
    np.diag([0.0, 1.0, 1.0, 0.0]).astype(complex),
    np.array([[0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, -1]], dtype=complex),
)

#: groups up to this size get the gate as one full-size superoperator (no gather/scatter)
_FULL_GROUP_SIZE = 2

#: weighted superoperators a gate keeps for recurring idle channels (then it starts afresh)
_RECENT_IDLE = 64


class FusedGate:
    """A gate's channel on k qubits (unitary and its error) with the idle channel of each
    target folded in at application time.

    The idle channel of a qubit is E + c C + gamma G (``_IDLE_BASIS``), so the gate after
    the idle channels of its k targets is sum_x a_x S (B_x1 x ... x B_xk) with a_x products
    of (1, c, gamma): 3^k precomputed matrices and one weighted sum per application.
    """

    def __init__(self, superop: np.ndarray) -> None:
        self.k = superop.shape[0].bit_length() // 2
        self.superop = superop
        self.stack = np.stack([(superop @ b).reshape(-1) for b in _idle_basis_products(self.k)])
        self._full: dict[tuple[int, tuple[int, ...]], tuple[np.ndarray, np.ndarray]] = {}
        self._recent: dict[tuple[int, tuple[int, ...], tuple[tuple[float, float], ...]], np.ndarray]
        self._recent = {}
        # ``traced_product``'s (weighted superoperator, lone state, M) per their ids
        self._traced: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        # a lone qubit's 2x2 rho: four numbers, cheaper in Python than through numpy
        self._entries = tuple(superop.ravel().tolist()) if self.k == 1 else ()

    def apply(
        self,
        rho: np.ndarray,
        positions: tuple[int, ...],
        idle: Sequence[tuple[float, float]],
    ) -> np.ndarray:
        """The idle channels ``idle`` ((gamma, coherence) per target), then the gate, on
        the qubits ``positions`` of ``rho``."""
        n = rho.shape[0].bit_length() - 1
        if n == 1:
            return self._apply_to_lone_qubit(rho, idle[0])
        if n <= _FULL_GROUP_SIZE:
            return self._weighted(n, positions, idle).dot(rho.ravel()).reshape(rho.shape)
        index, inverse = (
            _cached_gather(n, positions) if n <= _CACHED_GROUP_SIZE else _gather(n, positions)
        )
        superop = self._weighted(n, positions, idle)
        return superop.dot(rho.ravel()[index]).ravel()[inverse].reshape(rho.shape)

    def apply_to_product(
        self,
        first: np.ndarray,
        second: np.ndarray,
        positions: tuple[int, ...],
        idle: Sequence[tuple[float, float]],
    ) -> np.ndarray:
        """``apply`` on np.kron(first, second) (two groups' states, merged by the gate),
        without forming the Kronecker product: each entry of the vector ``apply`` gathers
        from it is one entry of ``first`` times one of ``second``, so two cached indices
        gather the factors and one product makes that vector, entry for entry (beyond
        ``_CACHED_GROUP_SIZE`` qubits, from the outer product of the two states)."""
        na = first.shape[0].bit_length() - 1
        nb = second.shape[0].bit_length() - 1
        n = na + nb
        dim = 2**n
        if n <= _CACHED_GROUP_SIZE:
            # the gathered products straight from the two states' entries: no outer product
            first_index, second_index, inverse = _cached_product_factors(na, nb, positions)
            products = first.ravel()[first_index] * second.ravel()[second_index]
            superop = self._weighted(n, positions, idle)
            if inverse is None:
                return superop.dot(products).reshape(dim, dim)
            return superop.dot(products).ravel()[inverse]
        products = np.multiply.outer(first.ravel(), second.ravel()).ravel()
        index, inverse = _product_gather(na, nb, positions)
        superop = self._weighted(n, positions, idle)
        return superop.dot(products[index]).ravel()[inverse].reshape(dim, dim)

    def traced_product(
        self,
        first: np.ndarray,
        second: np.ndarray,
        positions: tuple[int, int],
        idle: Sequence[tuple[float, float]],
    ) -> np.ndarray:
        """``apply_to_product`` of a two-qubit gate on a group ``first`` (3 to
        ``_CACHED_GROUP_SIZE`` - 1 qubits with the second, first target at ``positions[0]``)
        and a lone qubit ``second`` (the second target), then the first target traced out:
        the state of the rest (``first``'s other qubits, then ``second``'s), without the
        merged state. A memory swap does this: the communication qubit's state goes to the
        memory, and the next herald traces the communication qubit out of the group.

        The rest's state is linear in R (``first``'s entries, the first target's index pair
        by the others' (a a')): M R, with M = (trace over the first target's output pair)
        S (1 x ``second``) a 4 x 4 matrix remembered per (S, ``second``): the gate's
        weighted superoperator (per idle channels) and the lone state recur (a fresh
        memory's initial state). The same sums as the merged state traced, reordered."""
        na = first.shape[0].bit_length() - 1
        superop = self._weighted(na + 1, positions, idle)
        key = (id(superop), id(second))
        entry = self._traced.get(key)
        if entry is None or entry[0] is not superop or entry[1] is not second:
            # S's rows (i1' j1' i2' j2'), columns (k1, k2): the trace keeps i1' = j1'
            blocks = superop.reshape(4, 4, 4, 4)
            entry = (superop, second, (blocks[0] + blocks[3]).dot(second.ravel()))
            if len(self._traced) >= _RECENT_IDLE:
                self._traced.clear()
            self._traced[key] = entry
        index, place = _traced_layout(na, positions[0])
        return entry[2].dot(first.ravel()[index]).ravel()[place]

    def _weighted(
        self, n: int, positions: tuple[int, ...], idle: Sequence[tuple[float, float]]
    ) -> np.ndarray:
        """``_weigh``, remembered for the idle channels seen lately: a node's programs
        repeat their timing, so the same (gamma, coherence) recur (a gate's idle time
        after the previous gate, an attempt loop's herald-to-gate delay)."""
        key = (n, positions, tuple(idle))
        superop = self._recent.get(key)
        if superop is None:
            superop = self._weigh(n, positions, idle)
            if len(self._recent) >= _RECENT_IDLE:
                self._recent.clear()
            self._recent[key] = superop
        return superop

    def _weigh(
        self, n: int, positions: tuple[int, ...], idle: Sequence[tuple[float, float]]
    ) -> np.ndarray:
        """The gate after the idle channels: the full-size (4^n x 4^n) superoperator for
        groups up to ``_FULL_GROUP_SIZE`` qubits, else the targets' 4^k x 4^k one."""
        trivial = True
        for gamma, coherence in idle:
            if gamma != 0.0 or coherence != 1.0:
                trivial = False
                break
        if n <= _FULL_GROUP_SIZE:
            superop, stack = self._full_size(n, positions)
        else:
            superop, stack = self.superop, self.stack
        if trivial:
            return superop
        weighted = np.dot(_idle_weights(idle), stack).reshape(superop.shape)
        weighted.flags.writeable = False  # shared by later applications
        return weighted

    def _apply_to_lone_qubit(self, rho: np.ndarray, idle: tuple[float, float]) -> np.ndarray:
        """The idle channel on the entries (r00, r01, r10, r11), then the gate's 4x4."""
        gamma, coherence = idle
        r00, r01, r10, r11 = rho.ravel().tolist()
        v0, v1, v2, v3 = r00 + gamma * r11, coherence * r01, coherence * r10, (1.0 - gamma) * r11
        s = self._entries
        return np.array(
            (
                (
                    s[0] * v0 + s[1] * v1 + s[2] * v2 + s[3] * v3,
                    s[4] * v0 + s[5] * v1 + s[6] * v2 + s[7] * v3,
                ),
                (
                    s[8] * v0 + s[9] * v1 + s[10] * v2 + s[11] * v3,
                    s[12] * v0 + s[13] * v1 + s[14] * v2 + s[15] * v3,
                ),
            ),
            dtype=complex,
        )

    def _full_size(self, n: int, positions: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(gate, weighted stack) as 4^n x 4^n superoperators on the flattened rho."""
        full = self._full.get((n, positions))
        if full is None:
            index = _gather_index(n, positions)
            dim = 4**n

            def embed(matrix: np.ndarray) -> np.ndarray:
                out = np.zeros((dim, dim), dtype=complex)
                for column in index.T:  # the gate acts alike on every other-qubit entry
                    out[np.ix_(column, column)] = matrix
                return out

            size = self.superop.shape[0]
            stack = np.stack([embed(m.reshape(size, size)).reshape(-1) for m in self.stack])
            full = self._full[(n, positions)] = (embed(self.superop), stack)
        return full


@lru_cache(maxsize=8)
def _idle_basis_products(k: int) -> tuple[np.ndarray, ...]:
    """The 3^k Kronecker products of the idle basis on k targets (``FusedGate``), made
    once per k: a gate with a new angle (an arbitrary input state) needs them again."""
    basis = [np.eye(1, dtype=complex)]
    for _ in range(k):
        basis = [np.kron(b, e) for b in basis for e in _IDLE_BASIS]
    for b in basis:
        b.flags.writeable = False
    return tuple(basis)


def _idle_weights(idle: Sequence[tuple[float, float]]) -> list[float]:
    """Weights of the idle basis products: (1, c, gamma) per target, outer-multiplied."""
    if len(idle) == 1:
        gamma, coherence = idle[0]
        return [1.0, coherence, gamma]
    if len(idle) == 2:  # the products below, written out (factors of 1.0 are exact)
        (g1, c1), (g2, c2) = idle
        return [1.0, c2, g2, c1, c1 * c2, c1 * g2, g1, g1 * c2, g1 * g2]
    weights = [1.0]
    for gamma, coherence in idle:
        weights = [w * x for w in weights for x in (1.0, coherence, gamma)]
    return weights


#: ``depolarizing_superoperator`` per (p, k), read-only: a node's gates share their error
@lru_cache(maxsize=64)
def _depolarizing(p: float, k: int) -> np.ndarray:
    channel = depolarizing_superoperator(p, k)
    channel.flags.writeable = False
    return channel


_FUSED_GATES: dict[tuple[bytes, str, int, float], FusedGate] = {}


def noisy_gate(unitary: np.ndarray, p: float) -> FusedGate:
    """``unitary`` followed by depolarising ``p`` on its qubits (cached by the unitary's
    entries and p: a node's gates repeat)."""
    key = (unitary.tobytes(), unitary.dtype.char, unitary.shape[0], p)
    gate = _FUSED_GATES.get(key)
    if gate is None:
        k = unitary.shape[0].bit_length() - 1
        superop = unitary_superoperator(unitary)
        if p:
            superop = _depolarizing(p, k) @ superop
        gate = FusedGate(superop)
        if len(_FUSED_GATES) >= 1024:
            _FUSED_GATES.clear()
        _FUSED_GATES[key] = gate
    return gate


def _gather_index(n: int, targets: tuple[int, ...]) -> np.ndarray:
    """Flat indices of an n-qubit rho as a (4^k, 4^(n-k)) array: row = the targets'
    interleaved (row bit, column bit) index, column = the other qubits' (rows, columns)."""
    if len(set(targets)) != len(targets) or not all(0 <= t < n for t in targets):
        raise ValueError(f"targets {list(targets)} must be distinct qubits of {n}")
    others = [q for q in range(n) if q not in targets]
    axes = [a for t in targets for a in (t, n + t)] + others + [n + q for q in others]
    index = np.arange(4**n, dtype=np.intp).reshape([2] * (2 * n)).transpose(axes)
    return np.ascontiguousarray(index.reshape(4 ** len(targets), -1))


def _gather(n: int, targets: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The gather index and its inverse permutation (to put the result back in place)."""
    index = _gather_index(n, targets)
    inverse = np.argsort(index.reshape(-1))
    index.flags.writeable = inverse.flags.writeable = False
    return index, inverse


_cached_gather = lru_cache(maxsize=256)(_gather)


def _product_gather(
    na: int, nb: int, targets: tuple[int, ...] | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Indices into the flattened outer product of an na- and an nb-qubit rho that give
    the flattened np.kron of the two (``targets`` None), or its gather for ``targets``
    (``_gather``) with the inverse permutation that puts the result back in place."""
    da, db = 2**na, 2**nb
    row, column = np.divmod(np.arange((da * db) ** 2, dtype=np.intp), da * db)
    ra, rb = np.divmod(row, db)
    ca, cb = np.divmod(column, db)
    kron_to_outer = (ra * da + ca) * (db * db) + rb * db + cb
    if targets is None:
        inverse = None
        index = kron_to_outer
    else:
        gather, inverse = _gather(na + nb, targets)
        index = kron_to_outer[gather]
    index.flags.writeable = False
    return index, inverse


_cached_product_gather = lru_cache(maxsize=256)(_product_gather)


@lru_cache(maxsize=256)
def _cached_product_factors(
    na: int, nb: int, targets: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``_product_gather`` as two indices, into the flattened na-qubit rho and into the
    flattened nb-qubit rho, whose entries' products are the gathered vector (a (4^k,
    rest) matrix, or the flattened np.kron for groups up to ``_FULL_GROUP_SIZE``
    qubits), and the inverse permutation shaped as the merged rho (or None: the kron
    is already in place)."""
    n = na + nb
    full = n <= _FULL_GROUP_SIZE
    index, inverse = _product_gather(na, nb, None if full else targets)
    if not full:  # the gate's layout: (4^k, rest)
        index = index.reshape(4 ** len(targets), -1)
        inverse = inverse.reshape(2**n, 2**n)  # type: ignore[union-attr]
    first_index, second_index = np.divmod(index, 4**nb)
    for array in (first_index, second_index, inverse):
        if array is not None:
            array.flags.writeable = False
    return first_index, second_index, inverse


@lru_cache(maxsize=64)
def _traced_layout(na: int, position: int) -> tuple[np.ndarray, np.ndarray]:
    """``FusedGate.traced_product``'s indices: into the flattened na-qubit rho, R (4, A^2)
    (the qubit at ``position``'s (i j) by the others' (a a'), A = 2^(na-1)); into the
    flattened (4, A^2) product M R [(i2 j2), (a a')], the rest's state [(a i2), (a' j2)]
    (the others, then the lone qubit)."""
    index = _cached_gather(na, (position,))[0]
    A = 2 ** (na - 1)
    a, i, a_, j = np.ix_(range(A), range(2), range(A), range(2))
    place = ((i * 2 + j) * A * A + a * A + a_).reshape(2 * A, 2 * A)
    place.flags.writeable = False
    return index, place


def apply_superoperator(rho: np.ndarray, superop: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """The channel ``superop`` (interleaved layout) on the qubits ``targets`` of ``rho``."""
    n = rho.shape[0].bit_length() - 1
    key = tuple(targets)
    index, inverse = _cached_gather(n, key) if n <= _CACHED_GROUP_SIZE else _gather(n, key)
    return superop.dot(rho.ravel()[index]).ravel()[inverse].reshape(rho.shape)
