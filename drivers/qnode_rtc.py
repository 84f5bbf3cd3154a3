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
``ENT:TIM <s>`` / ``?``                 longest wait for a herald before giving up, s
``ENT:RES? <peer>``                    last attempt loop with ``peer``:
                                       ``<heralded>,<clicks>,<bell>,<attempts>,<time_s>``
=====================================  ===============================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import qcodes.validators as vals

from drivers.base import QNodeVisaInstrument
from drivers.errors import InstrumentReplyError, InstrumentValueError

AXES = ("X", "Y", "Z")
SINGLE_QUBIT_GATES = ("H", "X", "Y", "Z", "S")
TWO_QUBIT_GATES = ("CNOT", "CZ", "SWAP")


@dataclass(frozen=True)
class HeraldRecord:
    """What ended the last attempt loop with a peer, as the real-time controller saw it."""

    heralded: bool
    clicks: str  # e.g. "+" or "+-" ; "" when not heralded
    bell_state: str | None
    attempts: int
    time_s: float


class RealTimeQubitController(QNodeVisaInstrument):
    """qnode RTC protocol v1; fulfils :class:`drivers.hal.QubitDevice`."""

    MODEL = "qnode RTC v1"
    IDN_VENDOR = "QNODE"
    IDN_MODEL = "RTC1"
    ERROR_QUERY = "SYST:ERR?"
    NOT_REPEATABLE = ("QUB:ROT", "QUB:GATE", "QUB:MEAS?", "QUB:WAIT", "*TRG")  # act on qubits
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
            set_cmd="ENT:TIM {:.6g}",
            get_parser=float,
            vals=vals.Numbers(1e-3, 3600.0),
        )
        self._count = int(self.qubits.get())

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
        name = name.upper()
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
        targets = ",".join(str(self._qubit(q)) for q in qubits)
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
        reply = self.ask(command).strip()
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

    def safe_state(self) -> None:
        """Nothing to switch off on the controller itself: its outputs are the AWG's and the
        lasers', which have their own safe states. Re-initialise the communication qubit so no
        half-finished operation is left running."""
        self.initialize(0)

    # -- helpers ------------------------------------------------------------------------
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
