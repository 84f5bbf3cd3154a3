"""A node's Bell-state measurement (CNOT, H, two Z readouts) as one quantum instrument, and
other recurring local operations as one step.

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

The same holds for a lone qubit's last gates and its Z readout (``readout_step``: P(1) is a
linear functional of its 2x2 state, ``readout_functionals``), and a qubit's preparation, an
init then gates (``preparation_step``), leaves a state that depends on the idle times only.
The node's steps draw the outcomes as the operations one by one do (the same draws in the
same order from the node's generator) and leave the same idle bookkeeping and clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from .channels import idle_parameters
from .operators import CNOT, H
from .superoperators import (
    _IDLE_BASIS,
    FusedGate,
    _cached_gather,
    _idle_weights,
    idle_superoperator,
)

#: ``idle_parameters`` remembered (as ``quantum_node`` does: the same idle times recur)
_idle_parameters = lru_cache(maxsize=1024)(idle_parameters)

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


# ------------------------------------------------------------------ a node's fused steps
# They use the node's idle bookkeeping (``QuantumNode._take_idle``, ``_last_update``) as its
# own operations do; ``QuantumNode.prepared_*`` checks the qubits and builds them.


def _idle(
    elapsed: float, lifetimes: tuple[float | None, float | None] | None
) -> tuple[float, float]:
    """``QuantumNode._take_idle`` of a qubit touched ``elapsed`` ago, nothing pending."""
    if elapsed > 0 and lifetimes is not None:
        return _idle_parameters(elapsed, *lifetimes)
    return 0.0, 1.0


def bell_measurement_step(
    node: Any, control: int, target: int, durations: tuple[float, float, float]
) -> Callable[[], tuple[int, int] | None]:
    """``cnot(control, target)``, ``apply_gate(H, control)``, ``measure(control)``,
    ``measure(target)`` with the clock advanced after each by the durations (two-qubit
    gate, single-qubit gate, readout; s) as one instrument (``bell_measurement``) when
    the two qubits are in different groups: the same random draws in the same order,
    the same states (to rounding), qubits' idle bookkeeping and clock. Returns the two
    reported outcomes, or None (nothing done) when the instrument does not apply (the
    qubits share a group, or events are scheduled on the clock: they would see the
    states between the operations)."""
    two, one, readout = durations
    cnot = node.two_qubit_gate(CNOT)
    hadamard = node.single_qubit_gate(H, control).superop
    pc, pt = node._qubit_params[control], node._qubit_params[target]
    fidelities = ((pc.readout_f0, pc.readout_f1), (pt.readout_f0, pt.readout_f1))
    lifetimes_c, lifetimes_t = node._lifetimes[control], node._lifetimes[target]
    instruments: dict[tuple[float, float, float], BellInstrument] = {}
    clock, registry, take_idle = node._clock, node._registry, node._take_idle
    last_update, random = node._last_update, node._rng.random

    def measure() -> tuple[int, int] | None:
        if clock._queue:
            return None
        states = registry.separate_states(control, target)
        if states is None:
            return None
        start = clock.now
        idle_c, idle_t = take_idle(control), take_idle(target)
        # the clock's readings at the H and at the readouts, as its advances make them
        at_h = start + two
        at_read_c = at_h + one
        at_read_t = at_read_c + readout
        key = (at_h - start, at_read_c - at_h, at_read_t - start)
        instrument = instruments.get(key)
        if instrument is None:
            if len(instruments) >= 64:
                instruments.clear()
            instrument = instruments[key] = BellInstrument(
                cnot,
                hadamard,
                _idle(key[0], lifetimes_c),
                _idle(key[1], lifetimes_c)[0],
                _idle(key[2], lifetimes_t)[0],
            )
        F = instrument.functionals(idle_c, idle_t)
        true_c, reported_c, true_t, reported_t, rest = measure_pair(
            F, states[0], states[1], random, fidelities
        )
        registry.set_pair_measured(control, true_c, target, true_t, rest)
        last_update[control], last_update[target] = at_read_c, at_read_t
        clock.advance(two)
        clock.advance(one)
        clock.advance(readout)
        clock.advance(readout)
        return reported_c, reported_t

    return measure


def preparation_step(
    node: Any, qubit: int, gates: Sequence[FusedGate], init_s: float, gate_s: float
) -> Callable[[], bool]:
    """``initialize(qubit)`` after the clock advances by ``init_s``, then each of the
    single-qubit ``gates`` followed by an advance of ``gate_s``, as one step: the qubit
    is alone in a known state after the init, so the state the gates leave depends only
    on their idle times (the clock's readings), and is remembered per idle times, made
    by the same arithmetic as the gates one by one. Returns False (nothing done) when
    events are scheduled on the clock."""
    states: dict[tuple[float, ...], np.ndarray] = {}
    clock, initial, lifetimes = node._clock, node._init_states[qubit], node._lifetimes[qubit]
    set_state, last_update = node._registry.set_state, node._last_update
    pending, qubits, positions = node._pending_coherence, [qubit], (0,)

    def prepare() -> bool:
        if clock._queue:
            return False
        clock.advance(init_s)
        now = start = clock.now
        elapsed = [0.0]  # the first gate right after the init (the qubit is fresh)
        for _ in gates[1:]:
            later = now + gate_s  # the clock's reading at the next gate
            elapsed.append(later - now)
            now = later
        key = tuple(elapsed)
        rho = states.get(key)
        if rho is None:
            rho = initial
            for gate, dt in zip(gates, key, strict=True):
                rho = gate.apply(rho, positions, (_idle(dt, lifetimes),))
            rho.flags.writeable = False  # shared by the groups it starts
            if len(states) >= 64:
                states.clear()
            states[key] = rho
        set_state(qubits, rho)
        last_update[qubit], pending[qubit] = now if gates else start, 1.0
        for _ in gates:
            clock.advance(gate_s)
        return True

    return prepare


def readout_step(
    node: Any, qubit: int, gates: Sequence[FusedGate], gate_s: float, readout_s: float
) -> Callable[[], int | None]:
    """Single-qubit ``gates``, each followed by an advance of ``gate_s``, then ``measure``
    (Z) and an advance of ``readout_s``, as one step when the qubit is alone: P(1) is
    a linear functional of its state (``readout_functionals``), and the readout leaves
    it in its measured state. None (nothing done): the qubit shares a group, or events
    are scheduled on the clock."""
    p = node._qubit_params[qubit]
    fidelities, lifetimes = (p.readout_f0, p.readout_f1), node._lifetimes[qubit]
    known: dict[tuple[float, ...], tuple[tuple[complex, ...], ...]] = {}
    clock, registry, take_idle = node._clock, node._registry, node._take_idle
    last_update, random = node._last_update, node._rng.random

    def read() -> int | None:
        rho = registry.lone_state(qubit)
        if rho is None or clock._queue:
            return None
        gamma, coherence = take_idle(qubit)
        now, elapsed = clock.now, []
        for _ in gates:  # the clock's readings at the next gates and the readout
            later = now + gate_s
            elapsed.append(later - now)
            now = later
        key = tuple(elapsed)
        f = known.get(key)
        if f is None:
            if len(known) >= 64:
                known.clear()
            idle = [_idle(dt, lifetimes) for dt in key]
            f = known[key] = readout_functionals(gates, idle[:-1], idle[-1][0])
        r0, r1, r2, r3 = rho.ravel().tolist()
        e, c, g = f
        p1 = (
            (e[0] + coherence * c[0] + gamma * g[0]) * r0
            + (e[1] + coherence * c[1] + gamma * g[1]) * r1
            + (e[2] + coherence * c[2] + gamma * g[2]) * r2
            + (e[3] + coherence * c[3] + gamma * g[3]) * r3
        ).real
        true, reported = draw_readout(p1, random, fidelities)
        registry.set_lone_measured(qubit, true)
        last_update[qubit] = now
        for _ in gates:
            clock.advance(gate_s)
        clock.advance(readout_s)
        return reported

    return read
