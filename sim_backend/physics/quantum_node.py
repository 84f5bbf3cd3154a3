"""The qubits of one node and the noisy operations the node can do on them.

Idle decoherence is applied lazily: each qubit remembers when its noise was last brought up
to date, and before any operation touches it the T1/T2 channel for the elapsed simulated time
is applied in one step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from ..params import NodeParams, QubitParams
from .bell_measurement import BellInstrument, draw_readout, measure_pair, readout_functionals
from .channels import attempt_dephasing_factor, idle_parameters
from .clock import SimClock
from .operators import BASIS_CHANGE, CNOT, CZ, H, X, controlled, rotation
from .registry import QubitRegistry
from .superoperators import FusedGate, noisy_gate

#: CNOT with the second qubit as control (the middle CNOT of a SWAP)
CNOT_REVERSED = np.array([[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0]], dtype=complex)

Basis = str  # 'X', 'Y' or 'Z'

#: ``idle_parameters`` remembered: a node's programs repeat their timing, so the same idle
#: durations recur (the gate before, the readout's wait)
_idle_parameters = lru_cache(maxsize=1024)(idle_parameters)


class QuantumNode:
    """A node's communication qubit (index 0) and memory qubits (1..n)."""

    def __init__(
        self,
        name: str,
        params: NodeParams,
        registry: QubitRegistry,
        clock: SimClock,
        rng: np.random.Generator,
    ) -> None:
        self.name = name
        self.params = params
        self._registry = registry
        self._clock = clock
        self._rng = rng
        self.communication_qubit = registry.add_qubit(f"{name}.comm")
        self.memory_qubits = [
            registry.add_qubit(f"{name}.mem{i}") for i in range(params.memory.count)
        ]
        self._qubit_params: dict[int, QubitParams] = {
            self.communication_qubit: params.communication_qubit
        }
        self._qubit_params.update({q: params.memory for q in self.memory_qubits})
        self._ids = (self.communication_qubit, *self.memory_qubits)
        self._last_update: dict[int, float] = {q: clock.now for q in self._ids}
        # coherence factor from entangling attempts not yet applied (commutes with idling)
        self._pending_coherence: dict[int, float] = {q: 1.0 for q in self._ids}
        # the state initialisation leaves (|0> up to the init error), per qubit
        self._init_states = {q: _initial_state(p.init_error) for q, p in self._qubit_params.items()}
        # (T1, T2) per qubit, None when the qubit does not decay at all (the params are frozen)
        self._lifetimes = {
            q: None if p.t1_s is None and p.t2_s is None else (p.t1_s, p.t2_s)
            for q, p in self._qubit_params.items()
        }

    @property
    def qubits(self) -> list[int]:
        return list(self._ids)

    @property
    def qubit_count(self) -> int:
        return len(self._ids)

    def qubit(self, index: int) -> int:
        """Qubit id by node-local index: 0 is the communication qubit, 1.. the memories."""
        if not 0 <= index < len(self._ids):
            raise IndexError(f"node {self.name!r} has qubits 0..{len(self._ids) - 1}, not {index}")
        return self._ids[index]

    # ------------------------------------------------------------------ time
    def bring_up_to_date(self, qubits: Sequence[int] | None = None) -> None:
        """Apply the idle decoherence each qubit accumulated since it was last touched."""
        for q in self._ids if qubits is None else qubits:
            gamma, coherence = self._take_idle(q)
            if gamma or coherence != 1.0:
                self._registry.apply_damping_dephasing(q, gamma, coherence)

    def _take_idle(self, qubit: int) -> tuple[float, float]:
        """(gamma, coherence) of the idle channel ``qubit`` accumulated since it was last
        touched (T1/T2 and pending attempt dephasing); the caller applies it: the qubit
        counts as up to date from now on."""
        now = self._clock.now
        elapsed = now - self._last_update[qubit]
        gamma, coherence = 0.0, self._pending_coherence[qubit]
        if elapsed > 0:
            lifetimes = self._lifetimes[qubit]
            if lifetimes is not None:
                gamma, idle_coherence = _idle_parameters(elapsed, *lifetimes)
                coherence *= idle_coherence
        self._last_update[qubit] = now
        self._pending_coherence[qubit] = 1.0
        return gamma, coherence

    def mark_fresh(self, qubits: Sequence[int], at_time: float) -> None:
        """Declare the state of ``qubits`` current as of ``at_time`` (no pending noise)."""
        for q in qubits:
            self._last_update[q] = at_time
            self._pending_coherence[q] = 1.0

    def apply_attempt_dephasing(self, attempts: int) -> None:
        """Dephasing of the memories by ``attempts`` entangling attempts, in closed form.

        Recorded now and applied with the next idle update (dephasing and idling commute).
        """
        p = self.params.memory.dephasing_per_attempt
        if p == 0 or attempts == 0:
            return
        coherence = attempt_dephasing_factor(p, attempts)
        for q in self.memory_qubits:
            self._pending_coherence[q] *= coherence

    # ----------------------------------------------------------- operations
    def initialize(self, qubit: int) -> None:
        """Reset to |0>, with the configured initialisation error."""
        self._own(qubit)
        self._registry.set_state([qubit], self._init_states[qubit])
        self.mark_fresh([qubit], self._clock.now)

    def rotate(self, qubit: int, axis: str | Sequence[float], angle: float) -> None:
        """Single-qubit rotation exp(-i angle/2 n.sigma) followed by its depolarising error."""
        self.apply_gate(rotation(axis, angle), qubit)

    def apply_gate(self, unitary: np.ndarray, qubit: int) -> None:
        """Any single-qubit unitary followed by the gate's depolarising error (with the
        qubit's pending idle noise before it: one fused channel, ``superoperators``)."""
        self._own(qubit)
        self._apply(self.single_qubit_gate(unitary, qubit), (qubit,))

    def cnot(self, control: int, target: int) -> None:
        self._two_qubit(CNOT, control, target)

    def cz(self, control: int, target: int) -> None:
        self._two_qubit(CZ, control, target)

    def swap(self, a: int, b: int) -> None:
        """SWAP as three CNOTs (a->b, b->a, a->b), each with its depolarising error, as a
        memory swap is done on an NV node; applied as one fused channel."""
        self._own(a)
        self._own(b)
        self._apply(self.swap_gate(), (a, b))

    def controlled_rotation(
        self, control: int, target: int, axis: str | Sequence[float], angle: float
    ) -> None:
        """Rotation of ``target`` conditioned on ``control`` being |1>."""
        self._two_qubit(controlled(rotation(axis, angle)), control, target)

    def measure(self, qubit: int, basis: Basis | tuple[float, float] = "Z") -> int:
        """Measure along 'X', 'Y', 'Z' or any Bloch axis (theta, phi); return the *reported*
        outcome (0 <-> eigenvalue +1 along the axis).

        The basis change is a gate (with its error); the Z readout reports the true outcome
        with probability F0 (for 0) or F1 (for 1), as an NV's spin-selective readout does.
        """
        change = None if type(basis) is str and basis == "Z" else _basis_change(basis)
        self._own(qubit)
        if change is not None:
            self.apply_gate(change, qubit)
        p = self._qubit_params[qubit]
        return self._read_out(qubit, p.readout_f0, p.readout_f1)

    def pauli(self, qubit: int, which: str) -> None:
        """Pauli-frame correction as a physical gate ('X', 'Y', 'Z' or 'I')."""
        ops = {"I": None, "X": X, "Y": rotation("Y", np.pi), "Z": rotation("Z", np.pi)}
        if which not in ops:
            raise ValueError(f"Pauli {which!r}: expected one of {sorted(ops)}")
        if ops[which] is not None:
            self.apply_gate(ops[which], qubit)

    # ---------------------------------------------------------- prepared operations
    # A real-time controller repeats a few operations on the same qubits: each is resolved
    # once (qubits checked, noisy gate looked up) into a callable that does the same as the
    # method above, in the same order, with the same random draws.
    def single_qubit_gate(self, unitary: np.ndarray, qubit: int) -> FusedGate:
        """``unitary`` followed by ``qubit``'s gate depolarising error."""
        return noisy_gate(unitary, self._qubit_params[qubit].gate_depolarizing)

    def two_qubit_gate(self, unitary: np.ndarray) -> FusedGate:
        """``unitary`` followed by the node's two-qubit gate depolarising error."""
        return noisy_gate(unitary, self.params.two_qubit_gate_depolarizing)

    def swap_gate(self) -> FusedGate:
        """SWAP as three noisy CNOTs (``swap``)."""
        return _swap_as_cnots(self.params.two_qubit_gate_depolarizing)

    def prepared_gate(self, gate: FusedGate, qubits: tuple[int, ...]) -> Callable[[], None]:
        """``gate`` on one or two of the node's ``qubits`` (``apply_gate``, ``cnot``,
        ``swap``), after each one's pending idle channel."""
        for q in qubits:
            self._own(q)
        apply, take_idle = self._registry.apply_gate, self._take_idle
        if len(qubits) == 1:
            (q,) = qubits
            return lambda: apply(gate, qubits, (take_idle(q),))
        if len(qubits) == 2:
            a, b = qubits
            return lambda: apply(gate, qubits, (take_idle(a), take_idle(b)))
        return lambda: self._apply(gate, qubits)

    def prepared_measure(
        self, qubit: int, basis: Basis | tuple[float, float] = "Z"
    ) -> Callable[[], int]:
        """``measure`` of ``qubit`` along ``basis``."""
        change = None if type(basis) is str and basis == "Z" else _basis_change(basis)
        self._own(qubit)
        p = self._qubit_params[qubit]
        read_out, f0, f1 = self._read_out, p.readout_f0, p.readout_f1
        if change is None:
            return lambda: read_out(qubit, f0, f1)
        rotate = self.prepared_gate(self.single_qubit_gate(change, qubit), (qubit,))

        def measure() -> int:
            rotate()
            return read_out(qubit, f0, f1)

        return measure

    def prepared_initialize(self, qubit: int) -> Callable[[], None]:
        """``initialize`` of ``qubit``."""
        self._own(qubit)
        qubits, state = [qubit], self._init_states[qubit]
        set_state, mark_fresh, clock = self._registry.set_state, self.mark_fresh, self._clock

        def initialize() -> None:
            set_state(qubits, state)
            mark_fresh(qubits, clock.now)

        return initialize

    def prepared_bell_measurement(
        self, control: int, target: int, durations: tuple[float, float, float]
    ) -> Callable[[], tuple[int, int] | None]:
        """``cnot(control, target)``, ``apply_gate(H, control)``, ``measure(control)``,
        ``measure(target)`` with the clock advanced after each by the durations (two-qubit
        gate, single-qubit gate, readout; s) as one instrument (``bell_measurement``) when
        the two qubits are in different groups: the same random draws in the same order,
        the same states (to rounding), qubits' idle bookkeeping and clock. Returns the two
        reported outcomes, or None (nothing done) when the instrument does not apply (the
        qubits share a group, or events are scheduled on the clock: they would see the
        states between the operations)."""
        self._own(control)
        self._own(target)
        if control == target:
            raise ValueError(f"qubits {control} and {target} must be distinct")
        two, one, readout = durations
        cnot = self.two_qubit_gate(CNOT)
        hadamard = self.single_qubit_gate(H, control).superop
        pc, pt = self._qubit_params[control], self._qubit_params[target]
        fidelities = ((pc.readout_f0, pc.readout_f1), (pt.readout_f0, pt.readout_f1))
        lifetimes_c, lifetimes_t = self._lifetimes[control], self._lifetimes[target]
        instruments: dict[tuple[float, float, float], BellInstrument] = {}
        clock, registry, take_idle = self._clock, self._registry, self._take_idle
        last_update, random = self._last_update, self._rng.random

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

    def prepared_preparation(
        self, qubit: int, gates: Sequence[FusedGate], init_s: float, gate_s: float
    ) -> Callable[[], bool]:
        """``initialize(qubit)`` after the clock advances by ``init_s``, then each of the
        single-qubit ``gates`` followed by an advance of ``gate_s``, as one step: the qubit
        is alone in a known state after the init, so the state the gates leave depends only
        on their idle times (the clock's readings), and is remembered per idle times, made
        by the same arithmetic as the gates one by one. Returns False (nothing done) when
        events are scheduled on the clock."""
        self._own(qubit)
        states: dict[tuple[float, ...], np.ndarray] = {}
        clock, initial, lifetimes = self._clock, self._init_states[qubit], self._lifetimes[qubit]
        set_state, last_update = self._registry.set_state, self._last_update
        pending, qubits, positions = self._pending_coherence, [qubit], (0,)

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

    def prepared_readout(
        self, qubit: int, gates: Sequence[FusedGate], gate_s: float, readout_s: float
    ) -> Callable[[], int | None]:
        """Single-qubit ``gates``, each followed by an advance of ``gate_s``, then ``measure``
        (Z) and an advance of ``readout_s``, as one step when the qubit is alone: P(1) is
        a linear functional of its state (``readout_functionals``), and the readout leaves
        it in its measured state. None (nothing done): the qubit shares a group, or events
        are scheduled on the clock."""
        self._own(qubit)
        p = self._qubit_params[qubit]
        fidelities, lifetimes = (p.readout_f0, p.readout_f1), self._lifetimes[qubit]
        known: dict[tuple[float, ...], tuple[tuple[complex, ...], ...]] = {}
        clock, registry, take_idle = self._clock, self._registry, self._take_idle
        last_update, random = self._last_update, self._rng.random

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

    # ------------------------------------------------------------------ helpers
    def _apply(self, gate: FusedGate, qubits: tuple[int, ...]) -> None:
        """``gate`` on the node's ``qubits`` after each one's pending idle channel."""
        self._registry.apply_gate(gate, qubits, [self._take_idle(q) for q in qubits])

    def _read_out(self, qubit: int, f0: float, f1: float) -> int:
        """Z readout of ``qubit`` reporting the true outcome with probability ``f0`` (for 0)
        or ``f1`` (for 1); the idle channel before it: only its damping can change it."""
        gamma, _ = self._take_idle(qubit)
        true_outcome = self._registry.measure_z(qubit, self._rng, damping=gamma)
        correct = f0 if true_outcome == 0 else f1
        if correct < 1.0 and self._rng.random() >= correct:
            return 1 - true_outcome
        return true_outcome

    def _two_qubit(self, unitary: np.ndarray, a: int, b: int) -> None:
        self._own(a)
        self._own(b)
        self._apply(self.two_qubit_gate(unitary), (a, b))

    def _own(self, qubit: int) -> None:
        if qubit not in self._last_update:
            raise ValueError(f"qubit {qubit} does not belong to node {self.name!r}")


def _idle(
    elapsed: float, lifetimes: tuple[float | None, float | None] | None
) -> tuple[float, float]:
    """``QuantumNode._take_idle`` of a qubit touched ``elapsed`` ago, nothing pending."""
    if elapsed > 0 and lifetimes is not None:
        return _idle_parameters(elapsed, *lifetimes)
    return 0.0, 1.0


def _initial_state(init_error: float) -> np.ndarray:
    state = np.diag([1.0 - init_error, init_error]).astype(complex)
    state.flags.writeable = False
    return state


@lru_cache(maxsize=64)
def _swap_as_cnots(p: float) -> FusedGate:
    """CNOT(a->b), CNOT(b->a), CNOT(a->b) on (a, b), each followed by two-qubit
    depolarising ``p`` (the channels compose: no idle time passes between them)."""
    forward = noisy_gate(CNOT, p).superop
    backward = noisy_gate(CNOT_REVERSED, p).superop
    return FusedGate(forward @ backward @ forward)


def _basis_change(basis: Basis | tuple[float, float]) -> np.ndarray | None:
    """Unitary taking the +1 eigenstate of the measured axis to |0> (None for Z)."""
    if isinstance(basis, str):
        if basis.upper() not in BASIS_CHANGE:
            raise ValueError(f"basis={basis!r}: expected 'X', 'Y', 'Z' or (theta, phi)")
        return None if basis.upper() == "Z" else BASIS_CHANGE[basis.upper()]
    try:
        theta, phi = (float(x) for x in basis)
    except (TypeError, ValueError):
        raise ValueError(f"basis={basis!r}: expected 'X', 'Y', 'Z' or (theta, phi)") from None
    return rotation("Y", -theta) @ rotation("Z", -phi)
