"""A real-time controller's program: a compiled list of qubit operations that runs in one
transaction, and what it returns. Part of the ``QubitDevice`` role's contract
(:mod:`drivers.hal`), independent of any controller's wire format: each driver encodes it in
its own protocol (the qnode RTC protocol's ``QUB:PROG?``, see ``docs/rtc-protocol.md``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ProgramResult:
    """What a program returned: its readouts in program order and the controller clock after
    its last operation."""

    readouts: tuple[int, ...]
    time_s: float


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

    @property
    def readouts(self) -> int:
        """How many readouts the program returns."""
        return sum(op[0] == "MEAS" for op in self.ops)

    def __len__(self) -> int:
        return len(self.ops)


__all__ = ["ProgramResult", "QubitProgram"]
