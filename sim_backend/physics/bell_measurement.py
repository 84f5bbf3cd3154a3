"""A node's Bell-state measurement (CNOT, H, two Z readouts) as one quantum instrument.

The teleportation's Bell-state measurement on a control qubit c and a target t is four
operations: CNOT(c -> t), H(c), the Z readout of c, the Z readout of t, each with its noise
(the idle decoherence since the qubit was last touched, the gate's depolarising error, the
readout's T1 decay) and its duration on the clock. When c and t are in different groups
(rho_1 on (A, c), rho_2 on (C, t)), done one by one the CNOT merges the two groups into one
density matrix of all their qubits, which the H and the readouts then act on.

Together the four are a quantum instrument on (c, t) (Nielsen & Chuang, sec. 2.4.2 and 8.2.3:
a measurement of a subsystem; the post-measurement state of the rest is the contraction of
the branch's operation with the state). Every channel in it is linear and acts on c and t
only, so for each outcome pair m = (m_c, m_t) the unnormalised state the four leave on
(A, C) is

    sigma_m[(a b), (a' b')] = sum_{x, y} F_m[x, y] R_1[x, (a a')] R_2[y, (b b')]

with x = (i_c j_c) and y = (i_t j_t) the (row, column) bits of c and t, R_1 / R_2 the groups'
states with c's / t's index pair gathered into one axis, and F_m[x, y] = <m_c m_t| Phi(
|i_c i_t><j_c j_t|) |m_c m_t>: the matching row of the channel Phi = (readout decay of c and
t) (H after c's idle) (CNOT, depolarised) (incoming idle of c and t), a superoperator in the
interleaved layout of ``superoperators`` (Wood, Biamonte & Cory, Quant. Inf. Comp. 15, 759
(2015)). The incoming idle channels vary per shot: they fold in through the idle basis
weights as in ``superoperators.FusedGate`` (9 precomputed functionals per outcome); the rest
of Phi depends only on the fixed durations of the operations. The merged state is never
formed: the outcome probabilities are the four numbers Tr sigma_m = r_1^T F_m r_2 (r: the
reduced states of c and t), and only the drawn outcome's sigma is built, R_1^T F_m R_2.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .superoperators import (
    _IDLE_BASIS,
    FusedGate,
    _cached_gather,
    _idle_weights,
    idle_superoperator,
)

#: rows of the interleaved (i_c j_c i_t j_t) index where both qubits read (m_c, m_t): the
#: outcomes in the order 00, 01, 10, 11 (m = 2 m_c + m_t)
_OUTCOME_ROWS = [0, 3, 12, 15]


class BellInstrument:
    """The instrument's functionals F_m for one set of idle times after the CNOT (the H's
    idle on c, each readout's T1 decay); the incoming idle channels of c and t at the CNOT
    are given per application (``functionals``)."""

    def __init__(
        self,
        cnot: FusedGate,
        hadamard: np.ndarray,
        idle_before_h: tuple[float, float],
        decay_c: float,
        decay_t: float,
    ) -> None:
        # after the CNOT: c idles then gets the noisy H; each readout sees only its T1 decay
        # (a coherence factor cannot change a Z readout: only the diagonal rows are kept)
        h_on_c = np.kron(hadamard @ idle_superoperator(*idle_before_h), np.eye(4))
        decay = np.kron(idle_superoperator(decay_c, 1.0), idle_superoperator(decay_t, 1.0))
        rows = (decay @ h_on_c)[_OUTCOME_ROWS]
        # cnot.stack[x] is the CNOT after the idle basis product x (3 x 3 of them)
        self.stack = np.einsum("mi,xij->xmj", rows, cnot.stack.reshape(9, 16, 16)).reshape(9, 64)

    def functionals(self, idle_c: tuple[float, float], idle_t: tuple[float, float]) -> np.ndarray:
        """F as a (4, 4, 4) array [m, (i_c j_c), (i_t j_t)], after the incoming idle
        channels (gamma, coherence) of c and t."""
        return np.dot(_idle_weights((idle_c, idle_t)), self.stack).reshape(4, 4, 4)


def split_state(rho: np.ndarray, position: int) -> tuple[np.ndarray, np.ndarray]:
    """(R, r): ``rho`` as a (4, d^2) matrix, row = the (row, column) bits of the qubit at
    ``position``, column = the other qubits' (rows, columns); and that qubit's reduced
    state (4 entries, the others traced out: their diagonal columns summed)."""
    n = rho.shape[0].bit_length() - 1
    if n == 1:
        blocks = rho.reshape(4, 1)
        return blocks, blocks[:, 0]
    blocks = rho.reshape(-1)[_cached_gather(n, (position,))[0]]
    if n == 2:
        return blocks, blocks[:, 0] + blocks[:, 3]
    d = 2 ** (n - 1)
    return blocks, np.add.reduce(blocks[:, :: d + 1], 1)


def measure_pair(
    F: np.ndarray,
    first: tuple[np.ndarray, int],
    second: tuple[np.ndarray, int],
    random: Callable[[], float],
    fidelities: tuple[tuple[float, float], tuple[float, float]],
) -> tuple[int, int, int, int, np.ndarray | None]:
    """Draw the instrument's outcomes on c (at ``first`` = (rho_1, position)) and t (at
    ``second``) as the op-by-op readouts draw them, in the same order from ``random``
    (a generator's ``random``): c's true outcome, c's readout error (only when its
    fidelity is below 1), t's true outcome given c's, t's readout error. Returns (true c,
    reported c, true t, reported t, state of (A, C) or None when both are empty)."""
    R1, r1 = split_state(*first)
    R2, r2 = split_state(*second)
    p = F.dot(r2).dot(r1).real.tolist()  # Tr sigma_m, m = 00, 01, 10, 11
    p1 = min(1.0, max(0.0, p[2] + p[3]))
    true_c = int(random() < p1)
    prob_c = p1 if true_c else 1.0 - p1
    reported_c = _reported(true_c, fidelities[0], random)
    p1 = min(1.0, max(0.0, p[2 * true_c + 1] / prob_c))
    true_t = int(random() < p1)
    prob_t = p1 if true_t else 1.0 - p1
    reported_t = _reported(true_t, fidelities[1], random)
    da, dc = R1.shape[1], R2.shape[1]
    if da == 1 and dc == 1:
        return true_c, reported_c, true_t, reported_t, None
    sigma = R1.T.dot(F[2 * true_c + true_t].dot(R2))  # [(a a'), (b b')]
    da, dc = 1 << (da.bit_length() - 1) // 2, 1 << (dc.bit_length() - 1) // 2  # d^2 -> d
    rho = sigma.reshape(da, da, dc, dc).transpose(0, 2, 1, 3).reshape(da * dc, da * dc)
    return true_c, reported_c, true_t, reported_t, rho * (1.0 / (prob_c * prob_t))


def draw_readout(
    p1: float, random: Callable[[], float], fidelities: tuple[float, float]
) -> tuple[int, int]:
    """(true, reported) outcome of a Z readout with P(1) = ``p1`` (``QubitRegistry.measure_z``
    then ``QuantumNode._read_out``: the same draws)."""
    p1 = min(1.0, max(0.0, p1))
    true = int(random() < p1)
    return true, _reported(true, fidelities, random)


def readout_functionals(
    gates: Sequence[FusedGate], idle: Sequence[tuple[float, float]], decay: float
) -> tuple[tuple[complex, ...], ...]:
    """P(1) of a lone qubit's Z readout after single-qubit ``gates`` with the idle channels
    ``idle`` between them and the readout's T1 ``decay``, as functionals of its state's
    entries (r00, r01, r10, r11), one per idle basis element (E, C, G) of the channel before
    the first gate (``superoperators.FusedGate``): P(1) = (f_E + c f_C + gamma f_G) . r.
    The same measurement of a subsystem as ``BellInstrument``, on one qubit."""
    channel = gates[0].superop
    for gate, (gamma, coherence) in zip(gates[1:], idle, strict=True):
        channel = gate.superop @ idle_superoperator(gamma, coherence) @ channel
    row = (idle_superoperator(decay, 1.0) @ channel)[3]  # the |1><1| entry after it all
    return tuple(tuple((row @ basis).tolist()) for basis in _IDLE_BASIS)


def _reported(true: int, fidelities: tuple[float, float], random: Callable[[], float]) -> int:
    """The readout's report: the true outcome with probability F0 (for 0) or F1 (for 1)
    (``QuantumNode._read_out``)."""
    correct = fidelities[true]
    if correct < 1.0 and random() >= correct:
        return 1 - true
    return true
