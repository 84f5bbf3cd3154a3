"""The qubits of one node and the noisy operations the node can do on them.

Idle decoherence is applied lazily: each qubit remembers when its noise was last brought up
to date, and before any operation touches it the T1/T2 channel for the elapsed simulated time
is applied in one step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from ..params import NodeParams, QubitParams
from .bell_measurement import bell_measurement_step, preparation_step, readout_step
from .channels import attempt_dephasing_factor, idle_parameters
from .clock import SimClock
from .operators import BASIS_CHANGE, CNOT, CZ, X, controlled, phase_covariant_entries, rotation
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
        # the per-attempt coherence factor (1 - 2p) and the parameters it was taken from
        self._dephasing_base: float | None = None
        self._dephasing_for: NodeParams | None = None
        # the state initialisation leaves (|0> up to the init error), per qubit
        self._init_states = {q: _initial_state(p.init_error) for q, p in self._qubit_params.items()}
        # (T1, T2) per qubit, None when the qubit does not decay at all (the params are frozen)
        self._lifetimes = {
            q: None if p.t1_s is None and p.t2_s is None else (p.t1_s, p.t2_s)
            for q, p in self._qubit_params.items()
        }
        # fused Bell-state measurements by (control, target, durations): blocks of
        # operations that differ elsewhere (a rotation's angle) share one, and its instruments
        self._bell_steps: dict[tuple[int, int, tuple[float, ...]], Callable[[], Any]] = {}

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

    def lone_entries_now(self, qubit: int) -> tuple[complex, complex, complex, complex] | None:
        """``bring_up_to_date([qubit])`` of a qubit alone in its group, returning the
        entries (r00, r01, r10, r11) of its state now (the exact fidelity probe reads
        them: no copy of the matrix); None, with nothing done, when it shares a group."""
        rho = self._registry.lone_state(qubit)
        if rho is None:
            return None
        gamma, coherence = self._take_idle(qubit)
        r00, r01, r10, r11 = rho.ravel().tolist()
        if gamma or coherence != 1.0:
            r00, r01, r10, r11 = phase_covariant_entries((r00, r01, r10, r11), gamma, coherence)
            self._registry.replace_lone_state(qubit, np.array(((r00, r01), (r10, r11))))
        return r00, r01, r10, r11

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
        if attempts == 0 or not self.memory_qubits:
            return
        params = self.params
        if params is not self._dephasing_for:  # the factor's base, per parameters
            p = params.memory.dephasing_per_attempt
            # ``attempt_dephasing_factor``'s check, once
            self._dephasing_base = None if p == 0 else attempt_dephasing_factor(p, 1)
            self._dephasing_for = params
        base = self._dephasing_base
        if base is None:
            return
        # attempt_dephasing_factor(p, attempts): the same power of the same base
        coherence = base**attempts
        pending = self._pending_coherence
        for q in self.memory_qubits:
            pending[q] *= coherence

    # ----------------------------------------------------------- operations
    def initialize(self, qubit: int) -> None:
        """Reset to |0>, with the configured initialisation error."""
        self._own(qubit)
        self._registry.share_state([qubit], self._init_states[qubit])  # read-only, complex
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
        # the initial state is read-only and complex: shared as it is
        set_state, mark_fresh, clock = self._registry.share_state, self.mark_fresh, self._clock

        def initialize() -> None:
            set_state(qubits, state)
            mark_fresh(qubits, clock.now)

        return initialize

    # the node's fused operations (``bell_measurement``): several operations as one step,
    # with the same draws, states (to rounding), idle bookkeeping and clock
    def prepared_bell_measurement(
        self, control: int, target: int, durations: tuple[float, float, float]
    ) -> Callable[[], tuple[int, int] | None]:
        """``cnot(control, target)``, ``apply_gate(H, control)``, ``measure(control)``,
        ``measure(target)``, the clock advanced after each by ``durations`` (two-qubit gate,
        single-qubit gate, readout; s), as one instrument (``bell_measurement_step``)."""
        self._own(control)
        self._own(target)
        if control == target:
            raise ValueError(f"qubits {control} and {target} must be distinct")
        key = (control, target, durations)
        step = self._bell_steps.get(key)
        if step is None:
            step = self._bell_steps[key] = bell_measurement_step(self, control, target, durations)
        return step

    def prepared_preparation(
        self, qubit: int, gates: Sequence[FusedGate], init_s: float, gate_s: float
    ) -> Callable[[], bool]:
        """``initialize(qubit)`` after the clock advances by ``init_s``, then the single-qubit
        ``gates``, each followed by an advance of ``gate_s``, as one step
        (``preparation_step``)."""
        self._own(qubit)
        return preparation_step(self, qubit, gates, init_s, gate_s)

    def prepared_readout(
        self, qubit: int, gates: Sequence[FusedGate], gate_s: float, readout_s: float
    ) -> Callable[[], int | None]:
        """Single-qubit ``gates``, each followed by an advance of ``gate_s``, then ``measure``
        (Z) and an advance of ``readout_s``, as one step (``readout_step``)."""
        self._own(qubit)
        return readout_step(self, qubit, gates, gate_s, readout_s)

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
