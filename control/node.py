"""The node controller: one per node, owning its instruments (through the HAL roles) and the
table of its live pairs and qubits.

Everything here talks to instruments through `drivers.hal` roles, so the same controller
runs a real node or a node of the simulated lab. Calls to the instruments happen one at a
time (the controller is driven by one thread: in-process by the orchestrator, or by its RPC
server's thread), which is what instruments need.

Every step on the node's qubits (a memory swap, a Bell-state measurement, a state
preparation, a correction, a readout, a wait) is compiled into one program for the node's
real-time controller and costs one transaction (qnode RTC protocol, ``QUB:PROG?``), as real
real-time controllers run compiled sequences rather than one remote call per gate.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace
from typing import Any

from drivers.errors import InstrumentValueError
from drivers.hal import AWG, FrequencyConverter, Laser, MicrowaveSource, OpticalSwitch, QubitDevice
from drivers.qubit_program import ProgramResult, QubitProgram
from sequences.attempt_loop import AnyLoop, NodeOptics, compile_attempt_loop, prepare_node
from sequences.pauli_frame import PauliFrame

COMMUNICATION = 0  # qubit index of the communication qubit


class NodeError(RuntimeError):
    """A node operation that cannot be done (no such pair, no free memory, ...)."""


@dataclass(frozen=True)
class Pair:
    """One half of an entangled pair held by this node."""

    pair_id: str
    peer: str  # the node holding the other half
    qubit: int  # where this node holds it (0: communication qubit)
    frame: PauliFrame  # the pair's state is Phi+ up to this frame
    created_s: float  # controller clock when it was heralded
    attempts: int = 0

    @property
    def bell_state(self) -> str:
        return self.frame.bell_state


@dataclass
class NodeInstruments:
    """The HAL roles of one node (from ``control.backend.Network``)."""

    qubits: QubitDevice
    awg: AWG
    laser: Laser
    optical_switch: OpticalSwitch
    microwave: MicrowaveSource
    frequency_converter: FrequencyConverter | None = None

    @classmethod
    def of(cls, network: Any, node: str) -> NodeInstruments:
        roles = dict(network.loaded.config.nodes[node].instruments)

        def role(name: str) -> Any:
            return network.instrument(node, name) if name in roles else None

        return cls(
            qubits=role("qubit_controller"),
            awg=role("awg"),
            laser=role("laser"),
            optical_switch=role("optical_switch"),
            microwave=role("microwave"),
            frequency_converter=role("frequency_converter"),
        )


@dataclass
class NodeController:
    """One node's controller: prepares its optics, runs its attempt loops, holds its pairs."""

    name: str
    instruments: NodeInstruments
    optics: NodeOptics = field(default_factory=NodeOptics)
    cutoff_s: float | None = None  # pairs older than this are discarded
    #: calibrated AWG amplitude of this node's pi pulse (Rabi); None: the loop's own
    pi_pulse_amplitude_v: float | None = None
    pairs: dict[str, Pair] = field(default_factory=dict)
    _uploaded: AnyLoop | None = field(default=None, repr=False)
    _unheralded_attempts: dict[str, int] = field(default_factory=dict, repr=False)
    _pending_wait_s: float = field(default=0.0, repr=False)  # deferred wait, see ``wait``
    _clock_s: float | None = field(default=None, repr=False)  # clock after the last step
    _counter: itertools.count = field(default_factory=itertools.count, repr=False)

    # -------------------------------------------------------------------- set-up
    def prepare(self) -> None:
        """Set the node's laser, switch, microwave source and converter for attempts."""
        i = self.instruments
        prepare_node(self.optics, i.laser, i.optical_switch, i.microwave, i.frequency_converter)
        program = QubitProgram()
        for q in range(self.qubit_count()):
            program.init(q)
        self._run(program)

    def qubit_count(self) -> int:
        return self.instruments.qubits.qubit_count()

    def now_s(self) -> float:
        """The controller clock now (one query; a deferred wait is run first)."""
        self._flush_wait()
        return self.instruments.qubits.time_s()

    def last_step_s(self) -> float:
        """The controller clock at the end of this node's last step on its qubits, as its
        program reported it (no query); the clock now if no step has run yet."""
        return self.now_s() if self._clock_s is None else self._clock_s

    # -------------------------------------------------------------- entanglement
    def arm(self, loop: AnyLoop) -> None:
        """Load the attempt loop (``load_loop``) and start the AWG."""
        if self.holds(COMMUNICATION):
            raise NodeError(
                f"{self.name}: the communication qubit still holds pair "
                f"{self.pair_on(COMMUNICATION).pair_id}; move or release it first"
            )
        self._flush_wait()
        self.load_loop(loop)
        self.instruments.awg.run()

    def load_loop(self, loop: AnyLoop) -> None:
        """Upload the attempt loop to the AWG (only when it changed) and set its cut-off on
        time as the real-time controller's herald timeout; the AWG is not started (``arm``
        starts it, or a shot program's attempt loop triggers it)."""
        if self.pi_pulse_amplitude_v is not None:
            loop = loop.model_copy(update={"pi_pulse_amplitude_v": self.pi_pulse_amplitude_v})
        if self._uploaded != loop:
            self.instruments.awg.upload_sequence(compile_attempt_loop(loop))
            self.instruments.qubits.set_herald_timeout_s(loop.herald_timeout_s)
            self._uploaded = loop

    def collect_herald(self, peer: str, pair_id: str) -> Pair | None:
        """Ask the real-time controller how the attempt loop with ``peer`` ended; on a herald
        the pair (on the communication qubit) enters the table. Its ``attempts`` include
        those of loops with ``peer`` that ended by a cut-off since the last herald."""
        record = self.instruments.qubits.last_herald(peer)
        attempts = self._unheralded_attempts.pop(peer, 0) + record.attempts
        if not record.heralded:
            self._unheralded_attempts[peer] = attempts
            return None
        pair = Pair(
            pair_id=pair_id,
            peer=peer,
            qubit=COMMUNICATION,
            frame=PauliFrame.of(record.bell_state),
            created_s=record.time_s,
            attempts=attempts,
        )
        self.pairs[pair_id] = pair
        return pair

    def new_pair_id(self, peer: str) -> str:
        return f"{self.name}-{peer}#{next(self._counter)}"

    # ------------------------------------------------------------------ memory
    def holds(self, qubit: int) -> bool:
        return any(p.qubit == qubit for p in self.pairs.values())

    def pair(self, pair_id: str) -> Pair:
        """The pair ``pair_id`` (as this node holds it)."""
        return self._pair(pair_id)

    def free_qubit(self) -> int | None:
        """A memory qubit holding no pair (for an input state), or None."""
        return next((q for q in range(1, self.qubit_count()) if not self.holds(q)), None)

    def discard_pair(self, pair_id: str) -> None:
        """Forget a pair whose qubit was consumed (measured) elsewhere in a protocol."""
        self.pairs.pop(pair_id, None)

    def pair_on(self, qubit: int) -> Pair:
        for pair in self.pairs.values():
            if pair.qubit == qubit:
                return pair
        raise NodeError(f"{self.name}: qubit {qubit} holds no pair")

    def move_to_memory(self, pair_id: str) -> Pair:
        """Swap a pair from the communication qubit into a free memory qubit."""
        pair = self._pair(pair_id)
        free = [q for q in range(1, self.qubit_count()) if not self.holds(q)]
        if not free:
            raise NodeError(f"{self.name}: no free memory qubit for pair {pair_id}")
        self._run(QubitProgram().init(free[0]).gate("SWAP", pair.qubit, free[0]))
        moved = replace(pair, qubit=free[0])
        self.pairs[pair_id] = moved
        return moved

    def release(self, pair_id: str) -> None:
        """Forget a pair and re-initialise its qubit."""
        pair = self.pairs.pop(pair_id, None)
        if pair is not None:
            self._run(QubitProgram().init(pair.qubit))

    def discard_expired(self) -> list[str]:
        """Release every pair older than the cut-off; return their ids."""
        if self.cutoff_s is None:
            return []
        now = self.now_s()
        expired = [p.pair_id for p in self.pairs.values() if now - p.created_s > self.cutoff_s]
        for pair_id in expired:
            self.release(pair_id)
        return expired

    # -------------------------------------------------------- measurements, gates
    def bell_measurement(self, pair_a: str, pair_b: str) -> tuple[int, int]:
        """BSM on the qubits of two pairs: CNOT(a -> b), H(a), Z readout of both. Both
        pairs leave the table; returns (outcome of a, outcome of b)."""
        a, b = self._pair(pair_a), self._pair(pair_b)
        m_a, m_b = self._run(_bsm(QubitProgram(), a.qubit, b.qubit)).readouts
        del self.pairs[pair_a], self.pairs[pair_b]
        return m_a, m_b

    def teleport_out(self, input_qubit: int, pair_id: str) -> tuple[int, int]:
        """BSM of a prepared input qubit with this node's half of a pair."""
        pair = self._pair(pair_id)
        m_in, m_pair = self._run(_bsm(QubitProgram(), input_qubit, pair.qubit)).readouts
        del self.pairs[pair_id]
        return m_in, m_pair

    def teleport_input(
        self, input_qubit: int, theta: float, phi: float, pair_id: str
    ) -> tuple[int, int]:
        """``prepare_input`` then ``teleport_out`` as one step (one program)."""
        pair = self._pair(pair_id)
        program = self._preparation(input_qubit, theta, phi)
        m_in, m_pair = self._run(_bsm(program, input_qubit, pair.qubit)).readouts
        del self.pairs[pair_id]
        return m_in, m_pair

    def correct(self, pair_id: str, frame: PauliFrame) -> Pair:
        """Apply the Pauli correction of ``frame`` to this node's half; the pair's frame
        changes by it."""
        pair = self._pair(pair_id)
        program = QubitProgram()
        for gate in frame.corrections():
            program.gate(gate, pair.qubit)
        if len(program) or self._pending_wait_s:
            self._run(program)
        updated = replace(pair, frame=pair.frame + frame)
        self.pairs[pair_id] = updated
        return updated

    def rename(self, pair_id: str, new_id: str, peer: str, frame: PauliFrame) -> Pair:
        """After a swap elsewhere, this half belongs to a new pair with a new peer."""
        pair = self.pairs.pop(pair_id)
        updated = replace(pair, pair_id=new_id, peer=peer, frame=frame)
        self.pairs[new_id] = updated
        return updated

    def prepare_input(self, qubit: int, theta: float, phi: float) -> None:
        """Prepare cos(theta/2)|0> + e^{i phi} sin(theta/2)|1> on a free qubit."""
        self._run(self._preparation(qubit, theta, phi))

    def _preparation(self, qubit: int, theta: float, phi: float) -> QubitProgram:
        if self.holds(qubit):
            raise NodeError(f"{self.name}: qubit {qubit} holds a pair")
        program = QubitProgram().init(qubit)
        if theta:
            program.rotate(qubit, "Y", theta)
        if phi:
            program.rotate(qubit, "Z", phi)
        return program

    def measure_pair(self, pair_id: str, basis: str) -> int:
        pair = self._pair(pair_id)
        (outcome,) = self._run(QubitProgram().measure(pair.qubit, basis)).readouts
        del self.pairs[pair_id]
        return outcome

    def measure_along(self, qubit: int, theta: float, phi: float) -> int:
        """Readout along the Bloch axis (theta, phi): rotate it onto Z, then Z readout."""
        program = QubitProgram()
        if phi:
            program.rotate(qubit, "Z", -phi)
        if theta:
            program.rotate(qubit, "Y", -theta)
        (outcome,) = self._run(program.measure(qubit, "Z")).readouts
        return outcome

    def wait(self, seconds: float, defer: bool = False) -> None:
        """Idle for ``seconds`` (e.g. for a classical message to arrive). ``defer``: the wait
        becomes the first operation of this node's next step, as a real-time controller
        starts its next program when the message arrives; only for a step that follows with
        no other node acting in between, so simulated time runs in the same order."""
        if seconds <= 0:
            return
        if defer:
            self._pending_wait_s += seconds
        else:
            self._run(QubitProgram().wait(seconds))

    def safe_state(self) -> dict[str, str]:
        failures = {}
        for role in ("awg", "laser", "optical_switch", "microwave", "frequency_converter"):
            inst = getattr(self.instruments, role)
            if inst is None:
                continue
            try:
                inst.safe_state()
            except Exception as exc:  # every instrument is tried
                failures[role] = f"{type(exc).__name__}: {exc}"
        return failures

    # ------------------------------------------------------------ shot programs
    def start_programs(self, programs: list[QubitProgram], first_shot: int) -> None:
        """Start this node's real-time programs of consecutive protocol shots from
        ``first_shot`` (each with its attempt loops, gates, messages and feed-forward, meeting
        the other nodes' programs of the same shot; one shot is a batch of one), run one
        after the other on the controller, without waiting for them; the node must hold no
        pair (the programs own its qubits)."""
        if self.pairs:
            self._check_no_pairs()
        if self._pending_wait_s:  # (none: the programs as given, no copy of the list)
            programs = [self._with_pending_wait(programs[0]), *programs[1:]]
        self.instruments.qubits.start_programs(programs, first_shot)

    def program_results(self, programs: list[QubitProgram]) -> list[ProgramResult]:
        """How the started batch's programs ended, in order."""
        results = self.instruments.qubits.program_results(programs)
        self._clock_s = results[-1].time_s
        return results

    def run_shot_programs(
        self, programs: list[QubitProgram], first_shot: int
    ) -> list[ProgramResult]:
        """``start_programs`` and ``program_results`` in one transaction."""
        if self.pairs:
            self._check_no_pairs()
        if self._pending_wait_s:
            programs = [self._with_pending_wait(programs[0]), *programs[1:]]
        results = self.instruments.qubits.run_programs(programs, first_shot)
        self._clock_s = results[-1].time_s
        return results

    def _check_no_pairs(self) -> None:
        if self.pairs:
            raise NodeError(
                f"{self.name}: holds pairs {sorted(self.pairs)}; a shot program needs the "
                "node's qubits free (release them first)"
            )

    def _with_pending_wait(self, program: QubitProgram) -> QubitProgram:
        pending, self._pending_wait_s = self._pending_wait_s, 0.0
        if not pending:
            return program
        return QubitProgram([("WAIT", pending), *program.ops])

    def _flush_wait(self) -> None:
        if self._pending_wait_s:
            self._run(QubitProgram())

    def _run(self, program: QubitProgram) -> ProgramResult:
        """One step on the qubits: the program (after any deferred wait), in one transaction
        with the controller."""
        pending, self._pending_wait_s = self._pending_wait_s, 0.0
        if pending:
            program.ops.insert(0, ("WAIT", pending))
        try:
            result = self.instruments.qubits.run_program(program)
        except InstrumentValueError:  # refused before it was sent: the wait is still due
            self._pending_wait_s = pending
            raise
        self._clock_s = result.time_s
        return result

    def _pair(self, pair_id: str) -> Pair:
        try:
            return self.pairs[pair_id]
        except KeyError:
            raise NodeError(
                f"{self.name}: no pair {pair_id!r}; live pairs: {sorted(self.pairs)}"
            ) from None


def _bsm(program: QubitProgram, first: int, second: int) -> QubitProgram:
    """``program`` followed by a Bell-state measurement: CNOT(first -> second), H(first),
    Z readout of both."""
    return (
        program.gate("CNOT", first, second)
        .gate("H", first)
        .measure(first, "Z")
        .measure(second, "Z")
    )


def cardinal_states() -> list[tuple[str, float, float]]:
    """The six cardinal input states (a 2-design) as (name, theta, phi)."""
    return [
        ("+Z", 0.0, 0.0),
        ("-Z", math.pi, 0.0),
        ("+X", math.pi / 2, 0.0),
        ("-X", math.pi / 2, math.pi),
        ("+Y", math.pi / 2, math.pi / 2),
        ("-Y", math.pi / 2, -math.pi / 2),
    ]
