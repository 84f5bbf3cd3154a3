"""Simulated real-time qubit controller: qnode RTC protocol v1 (see drivers/qnode_rtc.py),
executing every operation on the node's simulated qubits through the lab hooks."""

from __future__ import annotations

import math

from .protocols import LabHooks
from .scpi import Call, Number, ScpiError, ScpiInstrument, Setting, command

GATES_1 = ("H", "X", "Y", "Z", "S")
GATES_2 = ("CNOT", "CZ", "SWAP")


class SimRealTimeController(ScpiInstrument):
    """The far side of ``drivers.qnode_rtc.RealTimeQubitController`` in the simulated lab."""

    IDN = "QNODE,RTC1,sim,1.0"

    herald_timeout_s = Setting("ENTanglement:TIMeout", Number(1e-6, 3600.0, "S"), 10.0)

    def __init__(self, name: str, hooks: LabHooks | None = None, node: str = "sim") -> None:
        super().__init__(name, hooks)
        self.idn = f"QNODE,RTC1,{node},1.0"

    def _count(self) -> int:
        return int(self.hooks.qubit_operation(self.name, "count"))

    def _qubit(self, call: Call, index: int) -> int:
        return call.integer(0, self._count() - 1, index=index)

    @command("SYSTem:TIME?")
    def _time(self, call: Call) -> str:
        call.expect_args(0)
        return format(float(self.hooks.qubit_operation(self.name, "time")), ".12g")

    @command("QUBit:COUNt?")
    def _qubit_count(self, call: Call) -> str:
        call.expect_args(0)
        return str(self._count())

    @command("QUBit:INITialize")
    def _init(self, call: Call) -> None:
        call.expect_args(1, 1)
        self.hooks.qubit_operation(self.name, "init", self._qubit(call, 0))

    @command("QUBit:ROTate")
    def _rotate(self, call: Call) -> None:
        call.expect_args(3, 3)
        qubit = self._qubit(call, 0)
        axis = call.choice("X", "Y", "Z", index=1)
        angle = call.number(-100.0, 100.0, index=2)
        if not math.isfinite(angle):
            raise ScpiError(-222, "angle is not finite")
        self.hooks.qubit_operation(self.name, "rotate", qubit, axis, angle)

    @command("QUBit:GATE")
    def _gate(self, call: Call) -> None:
        args = call.expect_args(2, 3)
        name = call.choice(*GATES_1, *GATES_2, index=0)
        wanted = 1 if name in GATES_1 else 2
        if len(args) - 1 != wanted:
            raise ScpiError(-109 if len(args) - 1 < wanted else -108, f"{name} takes {wanted}")
        qubits = [self._qubit(call, i) for i in range(1, wanted + 1)]
        if len(set(qubits)) != len(qubits):
            raise ScpiError(-224, f"{name} needs two different qubits")
        self.hooks.qubit_operation(self.name, "gate", name, *qubits)

    @command("QUBit:MEASure?")
    def _measure(self, call: Call) -> str:
        call.expect_args(2, 2)
        qubit = self._qubit(call, 0)
        basis = call.choice("X", "Y", "Z", index=1)
        return str(int(self.hooks.qubit_operation(self.name, "measure", qubit, basis)))

    @command("QUBit:WAIT")
    def _wait(self, call: Call) -> None:
        call.expect_args(1, 1)
        self.hooks.qubit_operation(self.name, "wait", call.number(0.0, 3600.0, index=0))

    @command("ENTanglement:RESult?")
    def _result(self, call: Call) -> str:
        call.expect_args(1, 1)
        peer = call.arg(0).strip().strip('"')
        heralded, clicks, bell, attempts, when = self.hooks.last_herald(self.name, peer)
        return f"{int(heralded)},{clicks},{bell},{attempts},{when:.12g}"
