"""Registry of every qubit in the simulated network and the density matrices they share.

Qubits that are correlated share one density matrix (a *group*). Groups merge when a gate or
a heralding process acts on qubits of different groups, and a measured qubit is split off
again, so the cost of an operation follows the size of its group, not of the whole network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from .operators import (
    apply_depolarizing,
    apply_operator,
    apply_phase_covariant,
    partial_trace,
)
from .superoperators import _CACHED_GROUP_SIZE, FusedGate

_GROUND = np.array([[1, 0], [0, 0]], dtype=complex)

#: the state a Z readout leaves, by outcome (shared: a group's matrix is replaced by every
#: operation, never written in place)
_MEASURED = (np.diag([1.0, 0.0]).astype(complex), np.diag([0.0, 1.0]).astype(complex))
for _state in _MEASURED:
    _state.flags.writeable = False

#: in a two-qubit rho, flat indices of the |0><0| and |1><1| blocks of the qubit at
#: position 0 or 1, each block in the other qubit's (row, column) order
_PAIR_BLOCKS = (((0, 1, 4, 5), (10, 11, 14, 15)), ((0, 2, 8, 10), (5, 7, 13, 15)))


@dataclass(eq=False)
class _Group:
    qubits: list[int]
    rho: np.ndarray

    def index(self, qubit: int) -> int:
        return self.qubits.index(qubit)


class _GateResult(_Group):
    """A group born of a two-qubit gate on a group of two or more qubits and a lone
    qubit, its state not formed yet: ``rho`` is made on first use (the same arithmetic
    as at the gate), and tracing the gate's first target out (``_detach``: a memory
    swap's communication qubit at the next herald) is done from the factors directly
    (``FusedGate.traced_product``), never forming the merged state."""

    def __init__(
        self,
        qubits: list[int],
        gate: FusedGate,
        factors: tuple[np.ndarray, np.ndarray],
        positions: tuple[int, int],
        idle: Sequence[tuple[float, float]],
    ) -> None:
        self.qubits = qubits
        self.pending = (gate, factors, positions, idle)

    def __getattr__(self, name: str) -> np.ndarray:
        if name != "rho":  # only ``rho`` is made on demand (it is not in __dict__ yet)
            raise AttributeError(name)
        gate, (first, second), positions, idle = self.pending
        rho = self.rho = gate.apply_to_product(first, second, positions, idle)
        return rho

    def traced_first_target(self) -> np.ndarray | None:
        """The rest's state after the gate's first target is traced out, when ``rho`` was
        not made (else None: it may have changed since)."""
        if "rho" in self.__dict__:
            return None
        gate, (first, second), positions, idle = self.pending
        return gate.traced_product(first, second, positions, idle)


@dataclass
class QubitRegistry:
    """All qubits of all nodes, grouped by shared density matrices."""

    _groups: dict[int, _Group] = field(default_factory=dict)
    _labels: dict[int, str] = field(default_factory=dict)

    # ----------------------------------------------------------------- bookkeeping
    def add_qubit(self, label: str) -> int:
        """Register a new qubit in |0> and return its id."""
        qubit = len(self._labels)
        self._labels[qubit] = label
        self._groups[qubit] = _Group([qubit], _GROUND.copy())
        return qubit

    def label(self, qubit: int) -> str:
        return self._labels[self._check(qubit)]

    def group_of(self, qubit: int) -> tuple[int, ...]:
        """The qubits that share a density matrix with ``qubit`` (including itself)."""
        return tuple(self._groups[self._check(qubit)].qubits)

    def group_sizes(self) -> list[int]:
        return [len(g.qubits) for g in {id(g): g for g in self._groups.values()}.values()]

    # ------------------------------------------------------------------- states
    def density_matrix(self, qubits: Sequence[int]) -> np.ndarray:
        """The (reduced) joint density matrix of ``qubits``, in that order."""
        if len(qubits) == 1:  # a lone qubit's own matrix, or traced out of its group
            group = self._groups[self._check(qubits[0])]
            if len(group.qubits) == 1:
                return group.rho.copy()
        group, positions = self._merged_view(qubits)
        return partial_trace(group.rho, positions)

    def set_state(self, qubits: Sequence[int], rho: np.ndarray) -> None:
        """Replace the state of ``qubits`` by ``rho`` (they are traced out of old groups)."""
        qubits = list(qubits)
        dim = 2 ** len(qubits)
        if rho.shape != (dim, dim):
            raise ValueError(f"state for {len(qubits)} qubits must be {dim}x{dim}, got {rho.shape}")
        for q in qubits:
            self._check(q)
        # a read-only complex matrix (the link's heralded states, a node's initial state)
        # is shared, not copied: a group's matrix is replaced by every operation, never
        # written in place
        if rho.flags.writeable or rho.dtype != complex:
            rho = np.array(rho, dtype=complex)
        self.share_state(qubits, rho)

    def share_state(self, qubits: list[int], rho: np.ndarray) -> None:
        """``set_state`` of a state the caller vouches for (known qubits, a read-only
        complex matrix of their size: a link's heralded states, a node's initial states),
        which is shared as it is (called per attempt loop: no checks, no copy)."""
        groups = self._groups
        for q in qubits:
            members = groups[q].qubits
            if len(members) > 1 and not set(qubits).issuperset(members):
                self._detach(q)
        group = _Group(qubits, rho)
        for q in qubits:
            groups[q] = group

    def reset(self, qubit: int) -> None:
        """Trace ``qubit`` out of its group and put it in |0>."""
        self.set_state([qubit], _GROUND)

    # --------------------------------------------------------------- operations
    def apply_unitary(self, unitary: np.ndarray, qubits: Sequence[int]) -> None:
        group, positions = self._merge(qubits)
        group.rho = apply_operator(group.rho, unitary, positions)

    def apply_damping_dephasing(self, qubit: int, gamma: float, coherence: float) -> None:
        """Amplitude damping ``gamma`` and coherence factor ``coherence`` on one qubit."""
        group = self._groups[self._check(qubit)]
        group.rho = apply_phase_covariant(group.rho, group.index(qubit), gamma, coherence)

    def apply_depolarizing(self, p: float, qubits: Sequence[int]) -> None:
        group, positions = self._merge(qubits)
        group.rho = apply_depolarizing(group.rho, positions, p)

    def apply_gate(
        self, gate: FusedGate, qubits: Sequence[int], idle: Sequence[tuple[float, float]]
    ) -> None:
        """A node's noisy gate on ``qubits``, after the idle channel (gamma, coherence) of
        each of them (``superoperators.FusedGate``). A two-qubit gate across two groups
        acts on their two states directly (``FusedGate.apply_to_product``): the merged
        group (the first qubit's group, then the second's) is born with the gate applied."""
        groups = self._groups
        if len(qubits) == 1:
            group = groups[self._check(qubits[0])]
            group.rho = gate.apply(group.rho, (group.qubits.index(qubits[0]),), idle)
            return
        if len(qubits) == 2:
            a, b = qubits
            first, second = groups[self._check(a)], groups[self._check(b)]
            if first is not second:
                members = first.qubits + second.qubits
                positions = (first.qubits.index(a), len(first.qubits) + second.qubits.index(b))
                if len(second.qubits) == 1 and 1 < len(first.qubits) < _CACHED_GROUP_SIZE:
                    # formed when used, or never (``_GateResult``)
                    factors = (first.rho, second.rho)
                    merged = _GateResult(members, gate, factors, positions, idle)
                else:
                    merged = _Group(
                        members, gate.apply_to_product(first.rho, second.rho, positions, idle)
                    )
                for member in members:
                    groups[member] = merged
                return
        group, indices = self._merge(qubits)
        group.rho = gate.apply(group.rho, tuple(indices), idle)

    def measure_z(self, qubit: int, rng: np.random.Generator, damping: float = 0.0) -> int:
        """Projective Z measurement sampled from the state; the qubit leaves its group.

        ``damping``: amplitude damping gamma applied to the qubit just before the readout
        (its idle T1 decay; a coherence factor cannot change a Z readout or the other
        qubits' post-measurement state, so it needs no argument). Only the qubit's diagonal
        blocks enter: |0><0| += gamma |1><1| and |1><1| *= 1 - gamma. Groups of one or two
        qubits are read in plain arithmetic on their entries (the same operations, in the
        same order, as the array path).
        """
        group = self._groups[self._check(qubit)]
        n = len(group.qubits)
        rho = group.rho
        if n == 1:
            p1 = rho[1, 1].real
        elif n == 2:
            return self._measure_in_pair(group, qubit, rng, damping)
        else:
            pos = group.qubits.index(qubit)
            p1 = float(rho.diagonal().real @ _excited_mask(n, pos))
        if damping:
            p1 *= 1.0 - damping
        p1 = min(1.0, max(0.0, float(p1)))
        outcome = int(rng.random() < p1)
        prob = p1 if outcome else 1.0 - p1
        if n > 1:
            rest = [q for q in group.qubits if q != qubit]
            blocks = _diagonal_block_index(n, pos)
            flat = rho.reshape(-1)
            block = flat[blocks[outcome]]  # the rest's (rows, columns), contiguous
            if damping:
                block = (1.0 - damping) * block if outcome else block + damping * flat[blocks[1]]
            rest_group = _Group(rest, block / prob)
            for q in rest:
                self._groups[q] = rest_group
        self._groups[qubit] = _Group([qubit], _MEASURED[outcome])
        return outcome

    def lone_state(self, qubit: int) -> np.ndarray | None:
        """The state of ``qubit`` when it is alone in its group (not to be written), else None."""
        group = self._groups[self._check(qubit)]
        return group.rho if len(group.qubits) == 1 else None

    def replace_lone_state(self, qubit: int, rho: np.ndarray) -> None:
        """A lone qubit's (``lone_state``) state replaced by ``rho`` (its idle channel
        applied: ``QuantumNode.lone_entries_now``)."""
        self._groups[qubit].rho = rho

    def set_lone_measured(self, qubit: int, outcome: int) -> None:
        """A lone qubit (``lone_state``) after a Z readout with ``outcome``."""
        self._groups[qubit] = _Group([qubit], _MEASURED[outcome])

    def separate_states(
        self, a: int, b: int
    ) -> tuple[tuple[np.ndarray, int], tuple[np.ndarray, int]] | None:
        """((rho, position of ``a``), (rho, position of ``b``)) of the two qubits' groups;
        None when they share one (per Bell-state measurement: the qubits were checked
        when the step was made, an unknown one fails at its lookup)."""
        groups = self._groups
        first, second = groups[a], groups[b]
        if first is second:
            return None
        return (first.rho, first.qubits.index(a)), (second.rho, second.qubits.index(b))

    def set_pair_measured(
        self, a: int, outcome_a: int, b: int, outcome_b: int, rest_state: np.ndarray | None
    ) -> None:
        """After a Z readout of ``a`` and of ``b`` (in separate groups, ``separate_states``)
        as one instrument: each is alone in its measured state, and the rest of the two
        groups share ``rest_state`` (a's group's other qubits, then b's; as ``measure_z``
        after the two-qubit gate that merged the groups leaves them)."""
        groups = self._groups
        # a's group's other qubits, then b's (a copy and two removals: cheaper than
        # filtering the members in a comprehension, same order)
        rest = groups[a].qubits + groups[b].qubits
        rest.remove(a)
        rest.remove(b)
        if rest:
            rest_group = _Group(rest, rest_state)
            for q in rest:
                groups[q] = rest_group
        groups[a] = _Group([a], _MEASURED[outcome_a])
        groups[b] = _Group([b], _MEASURED[outcome_b])

    def _measure_in_pair(
        self, group: _Group, qubit: int, rng: np.random.Generator, damping: float
    ) -> int:
        """``measure_z`` of a qubit sharing its state with one other qubit: the four
        entries of each of the measured qubit's diagonal blocks, in Python floats."""
        pos = group.qubits.index(qubit)
        other = group.qubits[1 - pos]
        e = group.rho.reshape(-1).tolist()
        # flat indices of the measured qubit's |o><o| block, (0 0), (0 1), (1 0), (1 1) of
        # the other qubit
        zero, one = _PAIR_BLOCKS[pos]
        p1 = e[one[0]].real + e[one[3]].real
        if damping:
            p1 *= 1.0 - damping
        p1 = min(1.0, max(0.0, p1))
        outcome = int(rng.random() < p1)
        prob = p1 if outcome else 1.0 - p1
        if outcome:
            block = [e[i] for i in one]
            if damping:
                block = [(1.0 - damping) * x for x in block]
        else:
            block = [e[i] for i in zero]
            if damping:
                block = [x + damping * e[i] for x, i in zip(block, one, strict=True)]
        # numpy divides a complex array by a real number as a product with its
        # reciprocal (Smith's method with a zero imaginary part): so here too
        scale = 1.0 / prob
        b00, b01, b10, b11 = (x * scale for x in block)
        self._groups[other] = _Group([other], np.array(((b00, b01), (b10, b11)), dtype=complex))
        self._groups[qubit] = _Group([qubit], _MEASURED[outcome])
        return outcome

    # ------------------------------------------------------------------ helpers
    def _check(self, qubit: int) -> int:
        if qubit not in self._labels:
            raise KeyError(f"unknown qubit id {qubit!r}")
        return qubit

    def _detach(self, qubit: int) -> None:
        """Trace ``qubit`` out of its group (of more than one qubit); the caller gives it
        its new group (``share_state``)."""
        group = self._groups[qubit]
        rest = group.qubits.copy()  # the other members, in order (cheaper than filtering)
        rest.remove(qubit)
        rho = None
        if type(group) is _GateResult and qubit == group.qubits[group.pending[2][0]]:
            rho = group.traced_first_target()
        if rho is None:
            rho = _trace_out(group.rho, group.qubits.index(qubit))
        rest_group = _Group(rest, rho)
        for q in rest:
            self._groups[q] = rest_group

    def _merge(self, qubits: Sequence[int]) -> tuple[_Group, list[int]]:
        """One group holding all ``qubits``; returns it and their positions in it."""
        if len(set(qubits)) != len(qubits):
            raise ValueError(f"qubits {list(qubits)} must be distinct")
        first = self._groups[self._check(qubits[0])]
        group = first
        for q in qubits[1:]:
            other = self._groups[self._check(q)]
            if other is group:
                continue
            merged = _Group(group.qubits + other.qubits, _kron(group.rho, other.rho))
            for member in merged.qubits:
                self._groups[member] = merged
            group = merged
        return group, [group.index(q) for q in qubits]

    def _merged_view(self, qubits: Sequence[int]) -> tuple[_Group, list[int]]:
        groups = {id(self._groups[self._check(q)]): self._groups[q] for q in qubits}
        if len(groups) == 1:
            group = next(iter(groups.values()))
            return group, [group.index(q) for q in qubits]
        rho = np.ones((1, 1), dtype=complex)
        members: list[int] = []
        for g in groups.values():
            rho = _kron(rho, g.rho)
            members += g.qubits
        view = _Group(members, rho)
        return view, [view.index(q) for q in qubits]


def _kron(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.kron of two square matrices (the same products) in one broadcast multiply."""
    da, db = a.shape[0], b.shape[0]
    return (a[:, None, :, None] * b[None, :, None, :]).reshape(da * db, da * db)


def _trace_out(rho: np.ndarray, position: int) -> np.ndarray:
    """rho with the qubit at ``position`` traced out: the sum of its two diagonal blocks
    (gathered by their flat indices: the same sums as slicing the blocks, in fewer numpy
    calls)."""
    zero, one = _diagonal_block_index(rho.shape[0].bit_length() - 1, position)
    flat = rho.reshape(-1)
    return flat[zero] + flat[one]


@lru_cache(maxsize=256)
def _diagonal_block_index(n: int, position: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the |0><0| and |1><1| blocks of the qubit at ``position`` in an
    n-qubit rho, each as the other qubits' (2^(n-1), 2^(n-1)) matrix."""
    left, right = 2**position, 2 ** (n - position - 1)
    t = np.arange(4**n, dtype=np.intp).reshape(left, 2, right, left, 2, right)
    half = 2 ** (n - 1)
    out = tuple(np.ascontiguousarray(t[:, bit, :, :, bit, :]).reshape(half, half) for bit in (0, 1))
    for index in out:
        index.flags.writeable = False
    return out  # type: ignore[return-value]


@lru_cache(maxsize=256)
def _excited_mask(n: int, position: int) -> np.ndarray:
    """1 where the qubit at ``position`` is |1> in the n-qubit basis, else 0 (the dot with
    rho's diagonal is that qubit's excited population)."""
    bits = (np.arange(2**n) >> (n - 1 - position)) & 1
    mask = bits.astype(float)
    mask.flags.writeable = False
    return mask
