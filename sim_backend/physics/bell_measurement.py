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
formed: the four (A, C) blocks sigma_m = R_1^T F_m R_2 come from two small matrix products,
the outcome probabilities are their traces, Tr sigma_m = r_1^T F_m r_2 (r: the reduced
states of c and t), and the drawn outcome's block, normalised, is the rest's state. What
recurs is contracted once: F R_2 per c's idle basis element for a recurring t state and idle
channel (a link's heralded state, ``BellInstrument.product``), r_1 F for a recurring lone c
(a prepared input state, ``_lone_factor``), leaving one product and a weighted sum per shot.

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
    _RECENT_IDLE,
    FusedGate,
    _cached_gather,
    idle_superoperator,
)

#: ``idle_parameters`` remembered (as ``quantum_node`` does: the same idle times recur)
_idle_parameters = lru_cache(maxsize=1024)(idle_parameters)


def _readout_rows(decay: float) -> np.ndarray:
    """The |0><0| and |1><1| rows (a Z readout's outcomes 0, 1) of a qubit's T1 decay
    ``decay`` before its readout (``idle_superoperator(decay, 1.0)``, rows 0 and 3)."""
    return np.array([[1.0, 0.0, 0.0, decay], [0.0, 0.0, 0.0, 1.0 - decay]], dtype=complex)


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
        # (a coherence factor cannot change a Z readout: only the diagonal rows are kept).
        # Both act on one qubit each, so the rows of (decay_c H idle) x (decay_t) are the
        # products of c's rows and t's (the Kronecker product, without forming 16 x 16s)
        rows_c = _readout_rows(decay_c) @ (hadamard @ idle_superoperator(*idle_before_h))
        rows_t = _readout_rows(decay_t)
        rows = (rows_c[:, None, :, None] * rows_t[None, :, None, :]).reshape(4, 16)
        # cnot.stack[x] is the CNOT after the idle basis product x (3 x 3 of them): the rows
        # times each, as one batched matrix product (an einsum is ~50x slower here, and an
        # instrument is made again whenever the clock's rounding gives new durations)
        stack = np.matmul(rows, cnot.stack.reshape(9, 16, 16)).reshape(9, 4, 4, 4)
        # [idle basis product, ((i_c j_c), m, (i_t j_t))]: ``matrix``'s rows in the order
        # measure_pair contracts them (c's index first)
        self.stack = np.ascontiguousarray(stack.transpose(0, 2, 1, 3)).reshape(9, 64)
        self._recent: dict[tuple[tuple[float, float], tuple[float, float]], np.ndarray] = {}
        self._by_idle_t: dict[tuple[float, float], np.ndarray] = {}
        self._products: dict[tuple[tuple[float, float], int, int], tuple[np.ndarray, ...]]
        self._products = {}

    def functionals(self, idle_c: tuple[float, float], idle_t: tuple[float, float]) -> np.ndarray:
        """F as a (4, 4, 4) array [m, (i_c j_c), (i_t j_t)], after the incoming idle
        channels (gamma, coherence) of c and t."""
        return self.matrix(idle_c, idle_t).reshape(4, 4, 4).transpose(1, 0, 2)

    def matrix(self, idle_c: tuple[float, float], idle_t: tuple[float, float]) -> np.ndarray:
        """``functionals`` as a (16, 4) matrix [((i_c j_c), m), (i_t j_t)], remembered for
        the idle channels seen lately (a node's programs repeat their timing: the same
        incoming idle channels recur, e.g. at Alice's Bell-state measurement)."""
        key = (idle_c, idle_t)
        F = self._recent.get(key)
        if F is None:
            gamma, coherence = idle_c
            F = np.dot((1.0, coherence, gamma), self._after_idle_t(idle_t)).reshape(16, 4)
            F.flags.writeable = False
            if len(self._recent) >= _RECENT_IDLE:
                self._recent.clear()
            self._recent[key] = F
        return F

    def product(
        self,
        idle: tuple[tuple[float, float], tuple[float, float]],
        rho_2: np.ndarray,
        gather_2: np.ndarray,
    ) -> np.ndarray:
        """F R_2 [(i_c j_c), (m, b b')] (4, 4 C^2) for the incoming idle channels ``idle``
        of c and t, R_2 = ``rho_2`` gathered by ``gather_2``: sum_k w_k (F_k R_2) over c's
        idle basis (weights (1, c_c, gamma_c)), the three products F_k R_2 remembered per
        (t's idle channel, ``rho_2``): t's state recurs (a link's heralded states, shared
        read-only, never written in place) with t's idle channel (the herald-to-gate
        delay), while c's idle channel is new each shot (a memory's varying wait)."""
        idle_c, idle_t = idle
        # the gather too: one read-only state may hold t at another position (two links of
        # a node sharing a cached model's states)
        key = (idle_t, id(rho_2), id(gather_2))
        entry = self._products.get(key)
        if entry is None or entry[0] is not rho_2 or entry[1] is not gather_2:
            products = self._after_idle_t(idle_t).reshape(48, 4).dot(rho_2.ravel()[gather_2])
            entry = (rho_2, gather_2, products.reshape(3, -1))
            if len(self._products) >= _RECENT_IDLE:
                self._products.clear()
            self._products[key] = entry
        gamma, coherence = idle_c
        return np.dot((1.0, coherence, gamma), entry[2]).reshape(4, -1)

    def _after_idle_t(self, idle_t: tuple[float, float]) -> np.ndarray:
        """The instrument after t's idle channel, per idle basis element of c's (3, 64):
        the weights of the idle basis products are (1, c_c, gamma_c) x (1, c_t, gamma_t)
        (``_idle_weights``), and t's idle channels recur more than c's (a communication
        qubit is measured right after its herald, a memory after a varying wait)."""
        stack = self._by_idle_t.get(idle_t)
        if stack is None:
            gamma, coherence = idle_t
            stack = np.dot((1.0, coherence, gamma), self.stack.reshape(3, 3, 64))
            if len(self._by_idle_t) >= _RECENT_IDLE:
                self._by_idle_t.clear()
            self._by_idle_t[idle_t] = stack
        return stack


#: per (dimension, position) of c's group and of t's: ``_pair_layout``
_PAIR_LAYOUTS: dict[tuple[int, int, int, int], tuple[Any, ...]] = {}


def _pair_layout(
    d1: int, position_1: int, d2: int, position_2: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, ...] | None]:
    """Flat indices for ``measure_pair`` on c at ``position_1`` of a d1 x d1 rho_1 and t
    at ``position_2`` of a d2 x d2 rho_2, A and C the dimensions of their rests:

    * into rho_1: R_1^T [(a a'), (i_c j_c)] (A^2, 4), and into rho_2: R_2 [(i_t j_t),
      (b b')] (4, C^2) (R_1 transposed);
    * into S [(a a'), (m, b b')] (every outcome's sigma_m side by side): the diagonal
      entries (a = a', b = b') per outcome (4, A C), whose sum is Tr sigma_m, and a vector
      of A C ones to sum them;
    * into S, per outcome m: sigma_m as the rest's density matrix [(a b), (a' b')] (A's
      qubits, then C's), or None when both rests are empty."""
    key = (d1, position_1, d2, position_2)
    layout = _PAIR_LAYOUTS.get(key)
    if layout is None:
        A, C = d1 // 2, d2 // 2
        gather_1 = _gather_of(d1, position_1).T
        gather_2 = _gather_of(d2, position_2)
        a, b, a_, b_, m = np.ix_(range(A), range(C), range(A), range(C), range(4))
        flat = ((a * A + a_) * 4 + m) * C * C + b * C + b_  # S's index of sigma_m[(a b), (a' b')]
        # a = a' (axes 0, 2), then b = b': the diagonals go last, leaving (m, a, b)
        diagonal = np.diagonal(np.diagonal(flat, axis1=0, axis2=2), axis1=0, axis2=1)
        diagonal = np.ascontiguousarray(diagonal).reshape(4, A * C)
        states = None
        if A * C > 1:
            flat = flat.reshape(A * C, A * C, 4)
            states = tuple(np.ascontiguousarray(flat[:, :, m]) for m in range(4))
        ones = np.ones(A * C, dtype=complex)
        layout = (np.ascontiguousarray(gather_1), gather_2, diagonal, ones, states)
        for array in (*layout[:4], *(states or ())):
            array.flags.writeable = False
        _PAIR_LAYOUTS[key] = layout
    return layout


#: ``_lone_factor``'s (F, rho_1, r_1 F) per their ids
_LONE_FACTORS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _lone_factor(F: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """r_1 F [m, (i_t j_t)] (4, 4) of a lone c in the state ``rho``, remembered per (F,
    ``rho``) objects: a teleportation's input qubit is measured in a prepared state that
    recurs (``preparation_step`` shares the same matrix while its timing repeats), and F
    recurs with the idle channels (``BellInstrument.matrix``); states are never written
    in place."""
    key = (id(F), id(rho))
    entry = _LONE_FACTORS.get(key)
    if entry is None or entry[0] is not F or entry[1] is not rho:
        entry = (F, rho, rho.reshape(1, 4).dot(F.reshape(4, 16)).reshape(4, 4))
        if len(_LONE_FACTORS) >= _RECENT_IDLE:
            _LONE_FACTORS.clear()
        _LONE_FACTORS[key] = entry
    return entry[2]


def _gather_of(d: int, position: int) -> np.ndarray:
    """The flat indices of R (4, (d/2)^2) in a d x d rho: row = the (row, column) bits of
    the qubit at ``position``, column = the other qubits' (rows, columns)."""
    if d == 2:
        return np.arange(4).reshape(4, 1)
    return _cached_gather(d.bit_length() - 1, (position,))[0]


def measure_pair(
    instrument: BellInstrument,
    idle: tuple[tuple[float, float], tuple[float, float]],
    first: tuple[np.ndarray, int],
    second: tuple[np.ndarray, int],
    random: Callable[[], float],
    fidelities: tuple[tuple[float, float], tuple[float, float]],
) -> tuple[int, int, int, int, np.ndarray | None]:
    """Draw the instrument's outcomes on c (at ``first`` = (rho_1, position)) and t (at
    ``second``) as the op-by-op readouts draw them, in the same order from ``random``
    (a generator's ``random``): c's true outcome, c's readout error (only when its
    fidelity is below 1), t's true outcome given c's, t's readout error. ``idle``: the
    incoming idle channels of c and t. Returns (true c, reported c, true t, reported t,
    state of (A, C) or None when both are empty).

    Every outcome's sigma_m = R_1^T F_m R_2 comes from two matrix products, S = R_1^T
    (F R_2) with F R_2 laid out [(i_c j_c), (m, b b')] (``BellInstrument.product``), or
    S = (r_1 F) R_2 for a lone c (``_lone_factor``); Tr sigma_m sums S's diagonal
    entries, and the drawn outcome's sigma is gathered from S (``_pair_layout``)."""
    rho_1, position_1 = first
    rho_2, position_2 = second
    d1 = rho_1.shape[0]
    gather_1, gather_2, diagonal, ones, states = _pair_layout(
        d1, position_1, rho_2.shape[0], position_2
    )
    # (ravel()[index]: the cheapest gather numpy has for small arrays; ``take`` copies a
    # read-only index first)
    if d1 > 2:
        S = rho_1.ravel()[gather_1].dot(instrument.product(idle, rho_2, gather_2))
    else:  # c alone (an input state): S = (r_1 F) R_2, r_1 F remembered (``_lone_factor``)
        S = _lone_factor(instrument.matrix(*idle), rho_1).dot(rho_2.ravel()[gather_2])
    flat = S.ravel()
    p = flat[diagonal].dot(ones).tolist()  # Tr sigma_m, m = 2 m_c + m_t
    p1 = _clamped((p[2] + p[3]).real)
    true_c = int(random() < p1)
    prob_c = p1 if true_c else 1.0 - p1
    reported_c = _reported(true_c, fidelities[0], random)
    p1 = _clamped(p[2 * true_c + 1].real / prob_c)
    true_t = int(random() < p1)
    prob_t = p1 if true_t else 1.0 - p1
    reported_t = _reported(true_t, fidelities[1], random)
    if states is None:
        return true_c, reported_c, true_t, reported_t, None
    # a complex scale: numpy multiplies by a float as by float + 0j, and converts this faster
    scale = 1.0 / (prob_c * prob_t) + 0j
    return true_c, reported_c, true_t, reported_t, flat[states[2 * true_c + true_t]] * scale


def _clamped(p: float) -> float:
    """``min(1.0, max(0.0, p))`` (NaN included: 0.0), without the two builtin calls."""
    if 0.0 < p <= 1.0:
        return p
    return 1.0 if p > 1.0 else 0.0


def draw_readout(
    p1: float, random: Callable[[], float], fidelities: tuple[float, float]
) -> tuple[int, int]:
    """(true, reported) outcome of a Z readout with P(1) = ``p1`` (``QubitRegistry.measure_z``
    then ``QuantumNode._read_out``: the same draws)."""
    true = int(random() < _clamped(p1))
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


def _batched_draws(rng: Any, fidelities: tuple[tuple[float, float], ...]) -> Callable[[], Any]:
    """A callable giving, per Bell-state measurement, the ``random`` it draws from:
    ``rng.random`` itself, or, when the number of draws does not depend on the outcomes
    (each qubit's readout fidelities both below 1 or both 1) and ``rng`` is a numpy
    Generator, that many numbers drawn at once (``Generator.random(k)`` gives the numbers
    k calls of ``random()`` give, in order), handed out one by one."""
    count = 2  # the two true outcomes
    for f0, f1 in fidelities:
        if (f0 < 1.0) != (f1 < 1.0):
            count = 0  # a readout error draw for one outcome only
            break
        count += f0 < 1.0  # the readout error draw
    random = rng.random
    if not count or not isinstance(rng, np.random.Generator):
        return lambda: random
    return lambda: iter(random(count).tolist()).__next__


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
    clock, take_idle, last_update = node._clock, node._take_idle, node._last_update
    separate_states, set_measured = node._registry.separate_states, node._registry.set_pair_measured
    draws = _batched_draws(node._rng, fidelities)
    advances = (two, one, readout, readout) if min(durations) < 0 else ()  # they raise

    def measure() -> tuple[int, int] | None:
        if clock._queue:
            return None
        states = separate_states(control, target)
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
        true_c, reported_c, true_t, reported_t, rest = measure_pair(
            instrument, (idle_c, idle_t), states[0], states[1], draws(), fidelities
        )
        set_measured(control, true_c, target, true_t, rest)
        last_update[control], last_update[target] = at_read_c, at_read_t
        if advances:
            for duration in advances:
                clock.advance(duration)
        else:  # no events on the clock (checked above): its four advances, summed alike
            clock.advance_to(at_read_t + readout)
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
    # the states it sets are read-only complex 2x2 matrices of a known qubit: shared as
    # they are, without ``set_state``'s checks
    share_state, last_update = node._registry.share_state, node._last_update
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
        share_state(qubits, rho)
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
