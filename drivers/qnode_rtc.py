"""A node's real-time qubit controller, speaking the qnode RTC protocol over VISA.

The microsecond work on a node's qubits (initialisation, gates as microwave/RF pulses,
single-shot readout, and the record of each herald that ended an attempt loop) belongs to the
node's real-time controller, not to Python (DESIGN.md, principle 3). In Delft-style NV nodes
this is an ADwin plus AWG; elsewhere a Quantum Machines OPX, a Zurich Instruments PQSC with
HDAWGs, or an FPGA. Their native interfaces differ, so qnode defines one small message
protocol, *qnode RTC protocol v1* (the table below), that the lab's real-time program serves
(typically a thin TCP server next to the vendor's API); the simulated lab serves it natively.
This driver is the QCoDeS side of that protocol. It is qnode's own protocol, not a vendor's.

=====================================  ===============================================
command                                meaning
=====================================  ===============================================
``*IDN?``                              ``QNODE,RTC1,<node>,<firmware>``
``SYST:ERR?``                          error queue, ``0,"No error"`` when empty
``SYST:TIME?``                         controller clock, s
``QUB:COUN?``                          number of qubits (0: communication qubit)
``QUB:INIT <q>``                       initialise qubit q in |0>
``QUB:ROT <q>,<X|Y|Z>,<rad>``          rotation exp(-i angle/2 sigma_axis)
``QUB:GATE <name>,<q>[,<q2>]``         H, X, Y, Z, S, CNOT, CZ, SWAP
``QUB:MEAS? <q>,<X|Y|Z>``              single-shot readout along the axis: 0 (+1) or 1
``QUB:WAIT <s>``                       idle for s seconds
``ENT:TIM <s>`` / ``?``                 longest wait for a herald before the attempt loop
                                       ends without one (cut-off on time), s
``ENT:RES? <peer>``                    last attempt loop with ``peer``:
                                       ``<heralded>,<clicks>,<bell>,<attempts>,<time_s>``
``QUB:PROG? [<shot>,]"<op>|..."``      run a compiled program (below) in one transaction:
                                       ``0,<time_s>[,<item>...]``, ``1,...`` (aborted)
                                       or ``<code>,"<why>"``
``QUB:PROG:STAR? <shot>,"<op>|..."``   start a shot's program without waiting: ``0``
``QUB:PROG:RES?``                      the started program's reply, once it has ended
=====================================  ===============================================

*Programs* (v1 extension). Real real-time controllers run compiled programs, not one remote
call per gate, so one node-controller step (a Bell-state measurement, a memory swap, a state
preparation) is one transaction. The program is a quoted string of at most
:data:`MAX_PROGRAM_OPS` operations separated by ``|``, each the argument list of the single
command it stands for:

======================  ==========================================
operation               meaning (as the single command)
======================  ==========================================
``INIT <q>``            ``QUB:INIT <q>``
``ROT <q>,<axis>,<a>``  ``QUB:ROT <q>,<axis>,<a>``
``GATE <name>,<q>...``  ``QUB:GATE <name>,<q>[,<q2>]``
``MEAS <q>,<axis>``     ``QUB:MEAS? <q>,<axis>`` (adds one readout to the reply)
``WAIT <s>``            ``QUB:WAIT <s>``
======================  ==========================================

and the network operations of a shot program (``ENT``, ``SEND``, ``RECV``, ``PAULI``,
``AGE``; see :mod:`drivers.qubit_program` and ``docs/rtc-protocol.md``), with which the nodes'
controllers run a whole protocol shot together. Program encoding and reply parsing live in
:mod:`drivers.qnode_rtc_program`.

The controller validates the whole program before running any of it. It always answers:
``0,<time_s>,<r1>,<r2>...`` (status, the controller clock after the last operation, the
readouts in program order) or, for a malformed program, ``<code>,"<reason>"`` with a SCPI
error code and a reason naming the operation (its position and text) and what was expected;
nothing ran then. The reply carries the error status, so no ``SYST:ERR?`` round trip follows
a program, and a program error is not queued. Operations take their usual time on the
controller, in order. ``docs/rtc-protocol.md`` describes the protocol for a lab implementing
it next to its ADwin, OPX or FPGA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import qcodes.validators as vals

from drivers.base import QNodeVisaInstrument
from drivers.errors import InstrumentReplyError, InstrumentValueError
from drivers.qnode_rtc_program import MAX_PROGRAM_OPS, ProgramTransactions
from drivers.qubit_program import ProgramResult, QubitProgram

AXES = ("X", "Y", "Z")
SINGLE_QUBIT_GATES = ("H", "X", "Y", "Z", "S")
TWO_QUBIT_GATES = ("CNOT", "CZ", "SWAP")
#: range of the herald timeout (``ENT:TIM``), s: one attempt at the shortest, an hour at most
MIN_HERALD_TIMEOUT_S = 1e-6
MAX_HERALD_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class HeraldRecord:
    """What ended the last attempt loop with a peer, as the real-time controller saw it."""

    heralded: bool
    clicks: str  # e.g. "+" or "+-" ; "" when not heralded
    bell_state: str | None
    attempts: int
    time_s: float


class RealTimeQubitController(ProgramTransactions, QNodeVisaInstrument):
    """qnode RTC protocol v1; fulfils :class:`drivers.hal.QubitDevice`."""

    MODEL = "qnode RTC v1"
    IDN_VENDOR = "QNODE"
    IDN_MODEL = "RTC1"
    ERROR_QUERY = "SYST:ERR?"
    NOT_REPEATABLE = (
        "QUB:PROG?",
        "QUB:PROG:STAR?",
        "QUB:ROT",
        "QUB:GATE",
        "QUB:MEAS?",
        "QUB:WAIT",
        "*TRG",
    )
    VOLATILE_STATE = "qubit states"

    def __init__(self, name: str, address: str | None = None, **kwargs: Any) -> None:
        super().__init__(name, address, **kwargs)
        self.clock = self.add_parameter(
            "clock", unit="s", get_cmd="SYST:TIME?", get_parser=float, set_cmd=False
        )
        self.qubits = self.add_parameter(
            "qubits", get_cmd="QUB:COUN?", get_parser=int, set_cmd=False
        )
        self.herald_timeout = self.add_parameter(
            "herald_timeout",
            unit="s",
            label="Longest wait for a herald",
            get_cmd="ENT:TIM?",
            set_cmd="ENT:TIM {:.12g}",
            get_parser=float,
            vals=vals.Numbers(MIN_HERALD_TIMEOUT_S, MAX_HERALD_TIMEOUT_S),
        )
        self._count = int(self.qubits.get())
        # validated program texts and shapes, by operations and by program
        self._encoded: dict[tuple[tuple[Any, ...], ...], tuple[str, tuple[int, int, int]]] = {}
        self._encoded_programs: dict[int, tuple[Any, ...]] = {}

    # -- hal.QubitDevice ---------------------------------------------------------------
    def qubit_count(self) -> int:
        return self._count

    def time_s(self) -> float:
        return float(self.clock.get())

    def initialize(self, qubit: int) -> None:
        self.write(f"QUB:INIT {self._qubit(qubit)}")

    def rotate(self, qubit: int, axis: str, angle: float) -> None:
        axis = self._axis(axis)
        if not math.isfinite(angle):
            raise InstrumentValueError(self.display_name, f"angle {angle!r} is not finite")
        self.write(f"QUB:ROT {self._qubit(qubit)},{axis},{angle:.12g}")

    def gate(self, name: str, *qubits: int) -> None:
        name, targets = self._gate_args(name, qubits)
        self.write(f"QUB:GATE {name},{targets}")

    def measure(self, qubit: int, basis: str = "Z") -> int:
        command = f"QUB:MEAS? {self._qubit(qubit)},{self._axis(basis)}"
        reply = self.ask(command).strip()
        if reply not in ("0", "1"):
            raise InstrumentReplyError(
                self.display_name, f"answered {reply!r}, expected 0 or 1", command=command
            )
        return int(reply)

    def wait(self, seconds: float) -> None:
        vals.Numbers(0, 3600).validate(seconds)
        self.write(f"QUB:WAIT {seconds:.12g}")

    def last_herald(self, peer: str) -> HeraldRecord:
        command = f"ENT:RES? {peer}"
        reply = self._transact(command, self._query).strip()
        parts = reply.split(",")
        try:
            heralded, clicks, bell, attempts, when = parts
            return HeraldRecord(
                heralded=heralded == "1",
                clicks=clicks,
                bell_state=bell or None,
                attempts=int(attempts),
                time_s=float(when),
            )
        except ValueError:
            raise InstrumentReplyError(
                self.display_name,
                f"answered {reply!r}, expected <heralded>,<clicks>,<bell>,<attempts>,<time>",
                command=command,
            ) from None

    def set_herald_timeout_s(self, seconds: float) -> None:
        """End an attempt loop that waits for a herald after ``seconds`` (the loop's cut-off
        on time); validated against the controller's range before it is sent."""
        self.herald_timeout.set(seconds)

    def safe_state(self) -> None:
        """Nothing to switch off on the controller itself: its outputs are the AWG's and the
        lasers', which have their own safe states. Re-initialise the communication qubit so no
        half-finished operation is left running."""
        self.initialize(0)

    # -- helpers ------------------------------------------------------------------------
    #: One query on the VISA session, for the per-step transactions (programs, herald
    #: records): the base driver's lean, logged, interrupt-safe
    #: :meth:`~drivers.base.QNodeVisaInstrument.ask_raw` itself (no call around it; tests
    #: replace ``_query`` to give replies)
    _query = QNodeVisaInstrument.ask_raw

    def is_repeatable(self, cmd: str) -> bool:
        """A program is safe to send again only when every operation is an initialisation
        (re-initialising a qubit gives the same state); gates, waits and readouts are not."""
        text = cmd.strip()
        if text.upper().startswith("QUB:PROG?"):
            body = text[len("QUB:PROG?") :].strip().strip('"')
            return bool(body) and all(op.strip().startswith("INIT ") for op in body.split("|"))
        return super().is_repeatable(cmd)

    def _gate_args(self, name: Any, qubits: tuple[Any, ...]) -> tuple[str, str]:
        name = str(name).upper()
        expected = 1 if name in SINGLE_QUBIT_GATES else 2 if name in TWO_QUBIT_GATES else 0
        if expected == 0:
            raise InstrumentValueError(
                self.display_name,
                f"unknown gate {name!r}; expected one of {SINGLE_QUBIT_GATES + TWO_QUBIT_GATES}",
            )
        if len(qubits) != expected:
            raise InstrumentValueError(
                self.display_name, f"gate {name} acts on {expected} qubit(s), got {qubits}"
            )
        if expected == 2 and qubits[0] == qubits[1]:
            raise InstrumentValueError(
                self.display_name, f"gate {name} needs two different qubits, got {qubits}"
            )
        return name, ",".join(str(self._qubit(q)) for q in qubits)

    def _qubit(self, qubit: int) -> int:
        if not isinstance(qubit, int) or not 0 <= qubit < self._count:
            raise InstrumentValueError(
                self.display_name, f"qubit {qubit!r} out of range, expected 0..{self._count - 1}"
            )
        return qubit

    def _axis(self, axis: str) -> str:
        if not isinstance(axis, str) or axis.upper() not in AXES:
            raise InstrumentValueError(
                self.display_name, f"axis {axis!r} invalid, expected one of {AXES}"
            )
        return axis.upper()


__all__ = [
    "MAX_PROGRAM_OPS",
    "HeraldRecord",
    "ProgramResult",
    "QubitProgram",
    "RealTimeQubitController",
]
