"""How the qnode RTC driver writes programs and reads their replies (qnode RTC protocol v1,
``QUB:PROG?``, ``QUB:PROG:STAR?``, ``QUB:PROG:RES?``; see ``docs/rtc-protocol.md``): every
operation validated before anything is sent, refusals naming the operation, each program
shape encoded once, and replies checked against what the program must return. A mixin of
:class:`drivers.qnode_rtc.RealTimeQubitController`."""

from __future__ import annotations

import math
import re
from typing import Any

from drivers.errors import InstrumentReplyError, InstrumentValueError
from drivers.qubit_program import ProgramResult, QubitProgram

from .qnode_rtc_replies import PROGRAM_REPLY, complete_replies, read_herald, segments

#: Longest program one ``QUB:PROG?`` carries.
MAX_PROGRAM_OPS = 64
#: Most programs one start carries (a batch of consecutive shots).
MAX_BATCH = 64
#: Most bits one real-time message carries.
MAX_MESSAGE_BITS = 16
PROGRAM_OPERATIONS = (
    "INIT q | ROT q,axis,angle | GATE name,q[,q2] | MEAS q,axis | WAIT s | ENT peer | "
    "SEND peer[,bits...] | RECV peer,n | PAULI q,xbits,zbits | AGE s | PROBE q,theta,phi"
)
_PEER = re.compile(r"[A-Za-z0-9_-]{1,64}")


#: a validated program: the program, its operations then, its text as sent and its shape
_ProgramEntry = tuple[QubitProgram, list[tuple[Any, ...]], str, tuple[int, int, int]]


def _shot(shot: int | None) -> str:
    """The optional ``<shot>,`` argument of a program command."""
    if shot is None:
        return ""
    if not isinstance(shot, int) or not 0 <= shot < 2**31:
        raise ValueError(f"shot={shot!r}: expected an integer 0..2**31-1")
    return f"{shot},"


class ProgramTransactions:
    """The program transactions of the RTC driver (a mixin; it uses the driver's
    ``display_name``, ``_transact``, ``_query``, ``_qubit``, ``_axis``, ``_gate_args`` and
    its caches ``_encoded`` and ``_encoded_programs`` of validated program texts)."""

    display_name: str
    #: validated program texts and shapes by operations, and by ``id`` of the program (with
    #: the program and its operations as they were validated)
    _encoded: dict[tuple[tuple[Any, ...], ...], tuple[str, tuple[int, int, int]]]
    _encoded_programs: dict[int, _ProgramEntry]
    _transact: Any
    _query: Any
    _qubit: Any
    _axis: Any
    _gate_args: Any

    def run_program(self, program: QubitProgram, shot: int | None = None) -> ProgramResult:
        """Run ``program`` in one ``QUB:PROG?`` transaction; return its readouts, heralds and
        the controller clock after it. Every operation is validated before anything is
        sent. ``shot``: the shot whose programs on other nodes this one meets (needed for
        network operations)."""
        text, shape = self._program_text(program)
        return self._program_replies([shape], f"QUB:PROG? {_shot(shot)}{text}")[0]

    def run_programs(self, programs: list[QubitProgram], first_shot: int) -> list[ProgramResult]:
        """Programs of consecutive shots from ``first_shot`` in one transaction, run one
        after the other (a batch); their results in order."""
        texts, shapes = self._batch(programs)
        return self._program_replies(shapes, f"QUB:PROG? {_shot(first_shot)}{texts}")

    def start_program(self, program: QubitProgram, shot: int) -> None:
        """Start ``program`` for ``shot`` without waiting for it (``QUB:PROG:STAR?``,
        acknowledged at once): a shot's programs on several nodes run together, meeting at
        their attempt loops and messages. Its result is read with :meth:`program_result`."""
        self.start_programs([program], shot)

    def start_programs(self, programs: list[QubitProgram], first_shot: int) -> None:
        """Start a batch of programs for consecutive shots from ``first_shot``, without
        waiting (:meth:`program_results` reads them)."""
        command = f"QUB:PROG:STAR? {_shot(first_shot)}{self._batch(programs)[0]}"
        reply = self._transact(command, self._query).strip()
        if reply != "0":
            raise self._refusal(reply, command, expected="0")

    def program_result(self, program: QubitProgram) -> ProgramResult:
        """The result of the program last started (``QUB:PROG:RES?``, waiting for it to
        end); ``program`` is what was started, to check the reply against."""
        return self.program_results([program])[0]

    def program_results(self, programs: list[QubitProgram]) -> list[ProgramResult]:
        """The results of the batch last started, in order (``programs``: what was
        started, to check the replies against)."""
        return self._program_replies(self._batch(programs)[1], "QUB:PROG:RES?")

    def _batch(self, programs: list[QubitProgram]) -> tuple[str, list[tuple[int, int, int]]]:
        """The programs' quoted texts joined for one command, and their shapes."""
        if not 0 < len(programs) <= MAX_BATCH:
            raise InstrumentValueError(
                self.display_name, f"batch of {len(programs)} programs, expected 1..{MAX_BATCH}"
            )
        known = self._encoded_programs
        texts, shapes = [], []  # (filled in the loop: no comprehension frames per batch)
        for program in programs:  # :meth:`_program_text`, inline: a batch is many programs
            entry = known.get(id(program))
            if entry is None or entry[0] is not program or entry[1] != program.ops:
                entry = self._validated_program(program)
            texts.append(entry[2])
            shapes.append(entry[3])
        return ",".join(texts), shapes

    def _program_text(self, program: QubitProgram) -> tuple[str, tuple[int, int, int]]:
        """The program as sent (quoted), validated (refused naming the operation), and its
        shape: how many readouts, heralds and probes a complete run returns."""
        entry = self._encoded_programs.get(id(program))
        if entry is None or entry[0] is not program or entry[1] != program.ops:
            entry = self._validated_program(program)
        return entry[2], entry[3]

    def _validated_program(self, program: QubitProgram) -> _ProgramEntry:
        """The program's entry in ``_encoded_programs``: programs are rerun (a batch repeats
        one per input state), and one whose operations are still those it had when it was
        validated (compared as the cache by operations compares them: equal tuples) is
        not looked at again. The entry holds the program, so no other takes its ``id``
        while the entry is there."""
        text, shape = self._validated(program)
        if len(self._encoded_programs) >= 512:
            self._encoded_programs.clear()
        entry = (program, list(program.ops), text, shape)
        self._encoded_programs[id(program)] = entry
        return entry

    def _validated(self, program: QubitProgram) -> tuple[str, tuple[int, int, int]]:
        """:meth:`_program_text` from the operations (encoded once per distinct ones)."""
        ops = program.ops
        if not 0 < len(ops) <= MAX_PROGRAM_OPS:
            raise InstrumentValueError(
                self.display_name,
                f"program of {len(ops)} operations, expected 1..{MAX_PROGRAM_OPS}",
            )
        key = tuple(ops)
        try:
            encoded = self._encoded.get(key)
        except TypeError:  # an unhashable argument: validation below names it
            key, encoded = None, None
        if encoded is None:  # steps repeat (same BSM, same input states): encode once
            registers = [0]
            text = "|".join(self._encode(i, op, registers) for i, op in enumerate(ops, 1))
            probes = sum(op[0] == "PROBE" for op in ops)
            encoded = (f'"{text}"', (program.readouts, program.heralds, probes))
            if key is not None:
                if len(self._encoded) >= 512:
                    self._encoded.clear()
                self._encoded[key] = encoded
        return encoded

    def _program_replies(
        self, shapes: list[tuple[int, int, int]], command: str
    ) -> list[ProgramResult]:
        """One transaction's replies, one per program (``;`` between them), each checked
        against its program's shape; an error reply for any program is raised."""
        reply = self._transact(command, self._query).strip()
        parts = segments(reply) if reply[:1] in ("0", "1") else [reply]
        if len(parts) != len(shapes):
            if len(parts) == 1 and parts[0][:1] not in ("0", "1"):
                raise self._refusal(parts[0], command, expected=PROGRAM_REPLY)
            raise self._bad_program_reply(reply, command)
        results = complete_replies(parts, shapes)
        if results is not None:
            return results
        return [self._one_reply(p, shape, command) for p, shape in zip(parts, shapes, strict=True)]

    def _one_reply(self, reply: str, shape: tuple[int, int, int], command: str) -> ProgramResult:
        """Parse ``0,<time_s>[,<item>...]`` or ``1,<time_s>,<op>[,<item>...]`` (aborted at
        operation ``op``); items in program order: a readout ``0``/``1``, a herald
        ``<bell>:<attempts>:<time_s>`` (bell ``NONE``: the loop's cut-off), a probe
        ``F<fidelity>`` (``F-``: a controller that cannot know it)."""
        status, _, rest = reply.partition(",")
        if status not in ("0", "1"):
            raise self._refusal(reply, command, expected=PROGRAM_REPLY)
        if status == "0":
            complete = complete_replies([reply], [shape])
            if complete is not None:
                return complete[0]
        fields = rest.split(",")
        try:
            time_s = float(fields[0])
            aborted = int(fields[1]) if status == "1" else None
            items = fields[2:] if status == "1" else fields[1:]
            readouts = tuple(int(r) for r in items if r[:1] in ("0", "1"))
            heralds = tuple(read_herald(r) for r in items if ":" in r)
            probes = tuple(None if r == "F-" else float(r[1:]) for r in items if r[:1] == "F")
        except (ValueError, IndexError):
            raise self._bad_program_reply(reply, command) from None
        if (
            len(readouts) + len(heralds) + len(probes) != len(items)
            or any(r not in (0, 1) for r in readouts)
            or (aborted is None and (len(readouts), len(heralds), len(probes)) != shape)
        ):
            raise self._bad_program_reply(reply, command)
        return ProgramResult(readouts, time_s, heralds, aborted, probes)

    def _refusal(self, reply: str, command: str, expected: str) -> InstrumentReplyError:
        status, _, rest = reply.partition(",")
        try:
            code = int(status)
        except ValueError:
            code = None
        if code is not None and code < 0 and rest.startswith('"'):
            return InstrumentReplyError(
                self.display_name, f"refused: error {code}, {rest.strip(chr(34))}", command
            )
        return InstrumentReplyError(
            self.display_name, f"answered {reply!r}, expected {expected}", command=command
        )

    def _bad_program_reply(self, reply: str, command: str) -> InstrumentReplyError:
        return InstrumentReplyError(
            self.display_name, f"answered {reply!r}, expected {PROGRAM_REPLY}", command=command
        )

    def _encode(self, index: int, op: tuple[Any, ...], registers: list[int]) -> str:
        """One program operation as text, validated as its single command would be;
        ``registers`` (one counter) counts the registers filled before it."""
        try:
            text = self._encode_checked(op, registers[0])
        except InstrumentValueError as exc:
            raise InstrumentValueError(
                self.display_name, f"program operation {index} {op!r}: {exc.detail}"
            ) from None
        kind = op[0]
        registers[0] += 1 if kind == "MEAS" else 2 if kind == "ENT" else 0
        if kind == "RECV":
            registers[0] += op[2]
        return text

    def _encode_checked(self, op: tuple[Any, ...], registers: int) -> str:
        kind, *args = op
        if kind == "INIT" and len(args) == 1:
            return f"INIT {self._qubit(args[0])}"
        if kind == "ROT" and len(args) == 3:
            qubit, axis, angle = args
            if not isinstance(angle, (int, float)) or not math.isfinite(angle):
                raise InstrumentValueError(self.display_name, f"angle {angle!r} is not finite")
            return f"ROT {self._qubit(qubit)},{self._axis(axis)},{angle:.12g}"
        if kind == "GATE" and args:
            name, qubits = self._gate_args(args[0], tuple(args[1:]))
            return f"GATE {name},{qubits}"
        if kind == "MEAS" and len(args) == 2:
            return f"MEAS {self._qubit(args[0])},{self._axis(args[1])}"
        if kind in ("WAIT", "AGE") and len(args) == 1:
            seconds = args[0]
            if not isinstance(seconds, (int, float)) or not 0 <= seconds <= 3600:
                raise InstrumentValueError(
                    self.display_name,
                    f"{kind.lower()} {seconds!r} s out of range, expected 0..3600 s",
                )
            return f"{kind} {seconds:.12g}"
        if kind == "ENT" and len(args) == 1:
            return f"ENT {self._peer(args[0])}"
        if kind == "SEND" and args:
            bits = [self._bits(b, registers) for b in args[1:]]
            return ",".join([f"SEND {self._peer(args[0])}", *bits])
        if kind == "RECV" and len(args) == 2:
            count = args[1]
            if not isinstance(count, int) or not 0 <= count <= MAX_MESSAGE_BITS:
                raise InstrumentValueError(
                    self.display_name,
                    f"message of {count!r} bits, expected 0..{MAX_MESSAGE_BITS}",
                )
            return f"RECV {self._peer(args[0])},{count}"
        if kind == "PROBE" and len(args) == 3:
            qubit, theta, phi = args
            if not all(isinstance(a, (int, float)) and math.isfinite(a) for a in (theta, phi)):
                raise InstrumentValueError(
                    self.display_name, f"probe angles {theta!r}, {phi!r} are not finite"
                )
            return f"PROBE {self._qubit(qubit)},{theta:.12g},{phi:.12g}"
        if kind == "PAULI" and len(args) == 3:
            x, z = (self._bits(b, registers) for b in args[1:])
            return f"PAULI {self._qubit(args[0])},{x},{z}"
        raise InstrumentValueError(self.display_name, f"expected {PROGRAM_OPERATIONS}")

    def _peer(self, peer: Any) -> str:
        if not isinstance(peer, str) or not _PEER.fullmatch(peer):
            raise InstrumentValueError(
                self.display_name, f"peer {peer!r} invalid, expected a node name ([A-Za-z0-9_-])"
            )
        return peer

    def _bits(self, bits: Any, registers: int) -> str:
        """A bit expression ``r<i>^r<j>...`` (``0`` for the empty XOR) over registers the
        program has filled before the operation."""
        if not isinstance(bits, tuple) or not all(
            isinstance(r, int) and 0 <= r < registers for r in bits
        ):
            filled = f"r0..r{registers - 1}" if registers else "none yet"
            raise InstrumentValueError(
                self.display_name,
                f"bits {bits!r} invalid, expected a tuple of registers filled before "
                f"this operation ({filled})",
            )
        return "^".join(f"r{r}" for r in bits) or "0"
