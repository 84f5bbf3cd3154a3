"""Simulated real-time qubit controller: qnode RTC protocol v1 (see drivers/qnode_rtc.py),
executing every operation on the node's simulated qubits through the lab hooks.

Single commands and program operations (``QUB:PROG?``) share one parser per operation, so a
program operation is validated exactly as its single command is; a program is validated as a
whole before any of it runs, then its operations run in order (each taking its simulated
time, as the single commands do)."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

from .protocols import LabHooks
from .scpi import (
    Call,
    Choice,
    Number,
    ScpiError,
    ScpiInstrument,
    Setting,
    String,
    command,
    format_error,
)

GATES_1 = ("H", "X", "Y", "Z", "S")
GATES_2 = ("CNOT", "CZ", "SWAP")
MAX_PROGRAM_OPS = 64
PROGRAM_OPS = "INIT q | ROT q,axis,angle | GATE name,q[,q2] | MEAS q,axis | WAIT s"

Operation = tuple[Any, ...]  # (hook operation name, *arguments)

_AXIS = Choice("X", "Y", "Z")
_GATE = Choice(*GATES_1, *GATES_2)
_ANGLE = Number(-100.0, 100.0)
_SECONDS = Number(0.0, 3600.0)


@lru_cache(maxsize=16)
def _qubit_index(count: int) -> Number:
    return Number(0, count - 1, integer=True)


class SimRealTimeController(ScpiInstrument):
    """The far side of ``drivers.qnode_rtc.RealTimeQubitController`` in the simulated lab."""

    IDN = "QNODE,RTC1,sim,1.0"

    herald_timeout_s = Setting("ENTanglement:TIMeout", Number(1e-6, 3600.0, "S"), 10.0)

    def __init__(self, name: str, hooks: LabHooks | None = None, node: str = "sim") -> None:
        super().__init__(name, hooks)
        self.idn = f"QNODE,RTC1,{node},1.0"
        self.programs_run = 0  # programs executed (for inspection and tests)
        # compiled programs by (text, qubit count): a controller compiles a program shape
        # once (a BSM on the same qubits, a preparation of the same state) and reruns it
        self._compiled: dict[tuple[str, int], tuple[Operation, ...]] = {}

    def _count(self) -> int:
        return int(self.hooks.qubit_operation(self.name, "count"))

    def _qubit(self, call: Call, index: int, count: int | None = None) -> int:
        return int(_qubit_index(self._count() if count is None else count).parse(call.arg(index)))

    # -- one parser per operation: (hook operation, *args), or ScpiError ----------------
    def _parse_init(self, call: Call, count: int | None = None) -> Operation:
        call.expect_args(1, 1)
        return ("init", self._qubit(call, 0, count))

    def _parse_rotate(self, call: Call, count: int | None = None) -> Operation:
        call.expect_args(3, 3)
        qubit = self._qubit(call, 0, count)
        axis = _AXIS.parse(call.arg(1))
        angle = _ANGLE.parse(call.arg(2))
        if not math.isfinite(angle):
            raise ScpiError(-222, "angle is not finite")
        return ("rotate", qubit, axis, angle)

    def _parse_gate(self, call: Call, count: int | None = None) -> Operation:
        args = call.expect_args(2, 3)
        name = _GATE.parse(call.arg(0))
        wanted = 1 if name in GATES_1 else 2
        if len(args) - 1 != wanted:
            raise ScpiError(-109 if len(args) - 1 < wanted else -108, f"{name} takes {wanted}")
        qubits = [self._qubit(call, i, count) for i in range(1, wanted + 1)]
        if len(set(qubits)) != len(qubits):
            raise ScpiError(-224, f"{name} needs two different qubits")
        return ("gate", name, *qubits)

    def _parse_measure(self, call: Call, count: int | None = None) -> Operation:
        call.expect_args(2, 2)
        qubit = self._qubit(call, 0, count)
        return ("measure", qubit, _AXIS.parse(call.arg(1)))

    def _parse_wait(self, call: Call, count: int | None = None) -> Operation:
        call.expect_args(1, 1)
        return ("wait", _SECONDS.parse(call.arg(0)))

    def _run(self, op: Operation) -> Any:
        return self.hooks.qubit_operation(self.name, *op)

    # -- single commands ------------------------------------------------------------------
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
        self._run(self._parse_init(call))

    @command("QUBit:ROTate")
    def _rotate(self, call: Call) -> None:
        self._run(self._parse_rotate(call))

    @command("QUBit:GATE")
    def _gate(self, call: Call) -> None:
        self._run(self._parse_gate(call))

    @command("QUBit:MEASure?")
    def _measure(self, call: Call) -> str:
        return str(int(self._run(self._parse_measure(call))))

    @command("QUBit:WAIT")
    def _wait(self, call: Call) -> None:
        self._run(self._parse_wait(call))

    @command("ENTanglement:RESult?")
    def _result(self, call: Call) -> str:
        call.expect_args(1, 1)
        peer = call.arg(0).strip().strip('"')
        heralded, clicks, bell, attempts, when = self.hooks.last_herald(self.name, peer)
        return f"{int(heralded)},{clicks},{bell},{attempts},{when:.12g}"

    # -- programs -------------------------------------------------------------------------
    _PROGRAM_PARSERS = {
        "INIT": "_parse_init",
        "ROT": "_parse_rotate",
        "GATE": "_parse_gate",
        "MEAS": "_parse_measure",
        "WAIT": "_parse_wait",
    }

    @command("QUBit:PROGram?")
    def _program(self, call: Call) -> str:
        """Validate the whole program, then run it; always answer (status inline)."""
        try:
            ops = self.compile_program(call)
        except ScpiError as exc:
            return format_error(exc.code, exc.detail)
        readouts = []
        for op in ops:
            result = self._run(op)
            if op[0] == "measure":
                readouts.append(str(int(result)))
        self.programs_run += 1
        clock = format(float(self.hooks.qubit_operation(self.name, "time")), ".12g")
        return ",".join(["0", clock, *readouts])

    def compile_program(self, call: Call) -> tuple[Operation, ...]:
        """The operations of a ``QUB:PROG?`` call; ScpiError naming the operation if any is
        malformed (nothing has run then)."""
        if len(call.args) != 1:
            raise ScpiError(-109 if not call.args else -108, 'expected one "<op>|<op>|..."')
        text = String().parse(call.args[0])
        count = self._count()
        key = (text, count)
        ops = self._compiled.get(key)
        if ops is None:
            ops = self._compile(text, count)
            if len(self._compiled) >= 256:
                self._compiled.clear()
            self._compiled[key] = ops
        return ops

    def _compile(self, text: str, count: int) -> tuple[Operation, ...]:
        pieces = [p.strip() for p in text.split("|")]
        if not text.strip() or len(pieces) > MAX_PROGRAM_OPS:
            raise ScpiError(
                -224, f"program of {len(pieces)} operations, expected 1..{MAX_PROGRAM_OPS}"
            )
        ops = []
        for index, piece in enumerate(pieces, 1):
            kind, _, params = piece.partition(" ")
            parser = self._PROGRAM_PARSERS.get(kind.upper())
            if parser is None:
                raise ScpiError(
                    -113, f"operation {index} {piece!r}: unknown, expected {PROGRAM_OPS}"
                )
            try:
                ops.append(getattr(self, parser)(Call(kind, params, False, ()), count))
            except ScpiError as exc:
                raise ScpiError(exc.code, f"operation {index} {piece!r}: {exc.detail}") from None
        return tuple(ops)
