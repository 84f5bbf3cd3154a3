"""A real-time controller's program: a compiled list of qubit operations that runs in one
transaction, and what it returns. Part of the ``QubitDevice`` role's contract
(:mod:`drivers.hal`), independent of any controller's wire format: each driver encodes it in
its own protocol (the qnode RTC protocol's ``QUB:PROG?``, see ``docs/rtc-protocol.md``).

Besides qubit operations a program can hold the real-time network operations a whole shot of
a protocol needs, as real-time controllers of quantum networks run it (Pompili et al.,
Science 372, 259 (2021): heralding, memory swaps and feed-forward between nodes without
returning to the node's PC):

* ``ENT peer`` runs the attempt loop with a neighbour until its herald (or the loop's
  cut-off, which aborts the program) and stores the heralded Bell state's Pauli frame (x, z)
  in two registers;
* ``SEND peer`` / ``RECV peer`` carry bits over the real-time classical link; a received
  message's bits go into registers, and the receiver waits for its arrival;
* ``PAULI q`` applies X^x Z^z with x and z computed from registers (feed-forward);
* ``AGE s`` aborts when the program's first heralded pair is older than ``s`` (memory
  cut-off).

Registers are numbered in program order: each ``MEAS`` adds one (its readout), each ``ENT``
two (the frame's x then z), each ``RECV`` as many as the message carries. A bit expression is
the XOR of registers (a tuple of register numbers; the empty tuple is 0)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: A bit computed by the controller: the XOR of these registers (``()`` is 0).
Bits = tuple[int, ...]


@dataclass(frozen=True)
class Herald:
    """How an ``ENT`` operation ended: the heralded Bell state (None when the loop ended by
    its cut-off), the attempts it took, and the controller clock at the herald."""

    bell_state: str | None
    attempts: int
    time_s: float


@dataclass(frozen=True)
class ProgramResult:
    """What a program returned: its readouts and heralds in program order and the controller
    clock after its last operation. ``aborted`` (the operation's 1-based index) when an
    operation ended it early: an attempt loop's cut-off, the memory cut-off (``AGE``) or a
    peer's abort; what ran before is reported."""

    readouts: tuple[int, ...]
    time_s: float
    heralds: tuple[Herald, ...] = ()
    aborted: int | None = None
    #: simulated controllers only: the fidelity each ``PROBE`` found (None in a lab)
    probes: tuple[float | None, ...] = ()


@dataclass
class QubitProgram:
    """A compiled list of qubit operations, run by the controller in one transaction.

    Built with the methods below (each returns the program, so calls chain); validated
    against the controller by :meth:`RealTimeQubitController.run_program`."""

    ops: list[tuple[Any, ...]] = field(default_factory=list)

    def init(self, qubit: int) -> QubitProgram:
        self.ops.append(("INIT", qubit))
        return self

    def rotate(self, qubit: int, axis: str, angle: float) -> QubitProgram:
        self.ops.append(("ROT", qubit, axis, angle))
        return self

    def gate(self, name: str, *qubits: int) -> QubitProgram:
        self.ops.append(("GATE", name, *qubits))
        return self

    def measure(self, qubit: int, basis: str = "Z") -> QubitProgram:
        self.ops.append(("MEAS", qubit, basis))
        return self

    def wait(self, seconds: float) -> QubitProgram:
        self.ops.append(("WAIT", seconds))
        return self

    # -- real-time network operations ---------------------------------------------------
    def entangle(self, peer: str) -> QubitProgram:
        """Attempt loop with ``peer`` until its herald, on the communication qubit."""
        self.ops.append(("ENT", peer))
        return self

    def send(self, peer: str, *bits: Bits) -> QubitProgram:
        """A message to ``peer`` carrying these bits (none: a bare 'go')."""
        self.ops.append(("SEND", peer, *(tuple(b) for b in bits)))
        return self

    def receive(self, peer: str, bits: int) -> QubitProgram:
        """Wait for the next message from ``peer``, which carries ``bits`` bits."""
        self.ops.append(("RECV", peer, bits))
        return self

    def pauli(self, qubit: int, x: Bits, z: Bits) -> QubitProgram:
        """Feed-forward: X if the XOR of registers ``x`` is 1, then Z if that of ``z`` is."""
        self.ops.append(("PAULI", qubit, tuple(x), tuple(z)))
        return self

    def probe(self, qubit: int, theta: float, phi: float) -> QubitProgram:
        """Simulated controllers only: the fidelity of ``qubit`` to cos(theta/2)|0> +
        e^{i phi} sin(theta/2)|1> now, in the reply (a diagnostic only a simulation can
        give; a real controller answers ``F-``)."""
        self.ops.append(("PROBE", qubit, theta, phi))
        return self

    def max_age(self, seconds: float) -> QubitProgram:
        """Abort if the program's first heralded pair is older than ``seconds`` now."""
        self.ops.append(("AGE", seconds))
        return self

    @property
    def readouts(self) -> int:
        """How many readouts the program returns."""
        return sum(op[0] == "MEAS" for op in self.ops)

    @property
    def heralds(self) -> int:
        """How many attempt loops the program runs."""
        return sum(op[0] == "ENT" for op in self.ops)

    @property
    def registers(self) -> int:
        """How many registers the program fills."""
        sizes = {"MEAS": 1, "ENT": 2}
        return sum(op[2] if op[0] == "RECV" else sizes.get(op[0], 0) for op in self.ops)

    def __len__(self) -> int:
        return len(self.ops)


__all__ = ["Bits", "Herald", "ProgramResult", "QubitProgram"]
