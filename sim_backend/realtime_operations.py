"""What each operation of a real-time program does in the simulated lab, and how a program
ends; when each runs is the scheduler's (``realtime.RealTimeNetwork``, whose module docstring
describes the network operations). A program's state while it runs is a ``ProgramRun``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from .instruments.scpi import ScpiError

Operation = tuple[Any, ...]
#: Pauli frame (x, z) of each heralded Bell state relative to Phi+ (X^x Z^z on one qubit).
BELL_FRAMES = {"PHI+": (0, 0), "PSI+": (1, 0), "PHI-": (0, 1), "PSI-": (1, 1)}
#: Aborted shots remembered (a program of an aborted shot started later aborts too).
_SHOT_MEMORY = 64
#: Mailboxes kept before those of finished shots are dropped.
MAILBOXES = 256
#: ``ProgramRun.wake_s`` of a program waiting for a message not yet sent
NEVER = math.inf
_BIT_TEXT = ("0", "1")  # a readout as a reply item


@dataclass(slots=True, eq=False)
class Channel:
    """The messages from one node's controller to another's: their delay (asked of the lab
    at the first message: the fibre between two nodes does not change during a run), and a
    box per shot of (arrival, bits), read in order."""

    sender: str
    receiver: str
    delay_s: float | None = None
    #: (a box holds a message or two: a list, cheaper to make than a deque)
    boxes: dict[int, list[tuple[float, tuple[int, ...]]]] = field(default_factory=dict)
    #: per shot, the receiver's program asleep (``NEVER``) on its empty box: woken by a
    #: send without looking at every program
    asleep: dict[int, ProgramRun] = field(default_factory=dict)


class Xors:
    """Bits, each the XOR of registers (a ``send``'s message, a ``pauli``'s X and Z). They
    are a function of the registers they read, and a controller reruns its program: they
    are computed once per combination of those registers' values (a few: readouts and
    frames are 0 or 1), then looked up."""

    __slots__ = ("bits", "read", "known")

    def __init__(self, bits: tuple[tuple[int, ...], ...]) -> None:
        self.bits = bits
        indices = [index for registers in bits for index in registers]
        # the values of every register the bits read, in one call (one index: the value)
        self.read: Any = itemgetter(*indices) if indices else _no_registers
        self.known: dict[Any, tuple[int, ...]] = {}

    def of(self, registers: list[int]) -> tuple[int, ...]:
        """The bits, for these registers."""
        values = self.read(registers)
        message = self.known.get(values)
        if message is None:
            message = tuple(_xor(registers, indices) for indices in self.bits)
            if len(self.known) >= MAILBOXES:  # registers other than bits: keep it bounded
                self.known.clear()
            self.known[values] = message
        return message


class Message(Xors):
    """What a ``send`` operation posts: its channel and bits."""

    __slots__ = ("channel",)

    def __init__(self, channel: Channel, bits: tuple[tuple[int, ...], ...]) -> None:
        super().__init__(bits)
        self.channel = channel


class QubitBlock:
    """A program's consecutive operations on its node's qubits (``ops``), and the entries
    the lab resolved them into (``qubit_block``) for the controller the program was
    resolved for (``RealTimeNetwork._resolve``), kept with the version of the lab's blocks
    they were resolved in: a program reruns, and while the version is the same its blocks
    are not asked for again."""

    __slots__ = ("ops", "entries", "version")

    def __init__(self, ops: tuple[Operation, ...]) -> None:
        self.ops = ops
        self.entries: Any = None
        self.version: Any = None  # (None: not resolved yet)


def _no_registers(registers: list[int]) -> tuple[()]:
    return ()


@dataclass(slots=True, init=False)
class ProgramRun:
    """One controller's program of one shot, and how far it got."""

    controller: str
    node: str
    shot: int
    ops: tuple[Operation, ...]
    texts: tuple[str, ...]  # each operation as sent, for reports
    runners: tuple[Any, ...]  # what runs each operation (see ``_OPERATIONS``), then the end
    args: tuple[Any, ...]  # what each runner is given (see ``RealTimeNetwork._resolve``)
    position: int  # index of the next operation
    registers: list[int]
    items: list[str]  # readouts and heralds, for the reply
    state: str  # running, done, aborted, failed
    aborted_at: int | None  # 1-based operation that ended it
    error: tuple[int, str] | None  # failed: SCPI code and reason
    first_herald_s: float | None
    ended_s: float | None  # controller clock when it ended
    #: what it waits on (see ``why``): the channel of a message, or the peer node of an
    #: attempt loop (None: it has not waited)
    waiting: Channel | str | None
    #: asleep until the clock reaches it (a message's arrival, always its box's first
    #: message's; ``NEVER``: until a message is posted or the shot aborts); 0: awake, its
    #: next operation is tried at every pass
    wake_s: float

    def __init__(
        self,
        controller: str,
        node: str,
        shot: int,
        ops: tuple[Operation, ...],
        texts: tuple[str, ...],
        runners: tuple[Any, ...],
        args: tuple[Any, ...],
    ) -> None:
        # written out (not dataclass-made); ``RealTimeNetwork.start_batch`` makes its runs
        # with these stores written out too (a test compares the two)
        self.controller, self.node, self.shot = controller, node, shot
        self.ops, self.texts, self.runners, self.args = ops, texts, runners, args
        self.position, self.registers, self.items, self.state = 0, [], [], "running"
        self.aborted_at = self.error = self.first_herald_s = self.ended_s = None
        self.waiting, self.wake_s = None, 0.0

    def where(self) -> str:
        return f"operation {self.position + 1} {self.texts[self.position]!r}"

    def why(self) -> str:
        """What it waits for, in words (built only when a blocked program is reported)."""
        waiting = self.waiting
        if isinstance(waiting, str):
            return f"{waiting}'s program has not reached its attempt loop with {self.node}"
        peer = None if waiting is None else waiting.sender
        if waiting is not None and 0.0 < self.wake_s < NEVER:
            return f"the message from {peer} arrives at {self.wake_s:.9g} s"
        return f"no message from {peer}"


class ProgramOperations:
    """The operations of the programs (and their endings), for ``RealTimeNetwork``, whose
    state they use."""

    _hw: Any
    _runs: dict[str, ProgramRun]
    _channels: dict[tuple[str, str], Channel]
    _boxes: int
    _aborted: dict[int, str]
    _controllers: dict[str, str]
    _floor: int | None
    _settled: bool
    #: the version of the lab's resolved qubit blocks (``qubit_blocks_version``), asked once
    #: per ``_advance`` (nothing within one changes the lab's parameters)
    _blocks: Any
    #: the lab's clock (``realtime_clock``): its ``now`` is read, an attribute (no call of
    #: ``now_s``, nor a copy of it to keep up to date: a shot reads it ~6 times); the
    #: scheduler runs it on to a message's arrival with its ``advance_to``
    _time: Any

    # Each runner returns whether the program goes on to its next operation at once
    # (False: it waits, or it ended); one past the last operation, ``_finished`` ends it.
    def _qubit_ops(self, run: ProgramRun, block: QubitBlock) -> bool:
        """Operations on the node's own qubits (init, rotate, gate, wait, measure: a readout
        goes into the next register and the reply): ``block``, this one and those right
        after it, in one go: as the passes would run them, since nothing else can end the
        shot meanwhile (an error ends the run at its operation). The hardware resolves the
        block once into steps (a Bell-state measurement fused into one); when it cannot,
        they run one by one."""
        entries = block.entries
        if block.version is not self._blocks:
            entries = self._resolve_block(run, block)
        if entries is None:
            self._qubit_ops_one_by_one(run, block.ops)
            position = run.position
        else:
            registers, items, position = run.registers, run.items, run.position
            try:
                for step, width, reads in entries:
                    outcome = step()
                    if reads == 1:
                        bit = int(outcome)
                        registers.append(bit)
                        items.append(_BIT_TEXT[bit])
                    elif reads == 2:  # (a Bell-state measurement's pair)
                        first, second = int(outcome[0]), int(outcome[1])
                        registers += (first, second)
                        items += (_BIT_TEXT[first], _BIT_TEXT[second])
                    position += width
            finally:
                run.position = position  # past the block, or where an error ends the run
        if position == len(run.ops):  # its last operations: it ends done (``_finished``)
            run.state = "done"
            run.ended_s = self._time.now
            self._floor = None
            return False
        return True

    def _resolve_block(self, run: ProgramRun, block: QubitBlock) -> Any:
        """The entries of ``block`` for ``run``'s controller, asked of the lab (the first run
        of the program, or the lab's blocks changed since) and kept."""
        block.entries = self._hw.qubit_block(run.controller, block.ops)
        block.version = self._blocks
        return block.entries

    def _qubit_ops_one_by_one(self, run: ProgramRun, block: tuple[Operation, ...]) -> None:
        """``_qubit_ops`` of a block the hardware did not resolve."""
        operation, controller = self._hw.qubit_operation, run.controller
        for op in block:
            outcome = operation(controller, *op)
            if op[0] == "measure":
                run.registers.append(int(outcome))
                run.items.append(_BIT_TEXT[int(outcome)])
            run.position += 1

    def _pauli(self, run: ProgramRun, feed: tuple[int, Xors, tuple[QubitBlock, ...]]) -> bool:
        """Feed-forward: X then Z, each when its XOR of registers is 1 (``feed``: the qubit,
        the two XORs, and the corrections as blocks of qubit operations, by ``2 x + z``:
        their steps resolved once, as the program's other blocks)."""
        qubit, xors, corrections = feed
        registers = run.registers  # (the known X and Z looked up here: ``Xors.of``)
        x, z = xors.known.get(xors.read(registers)) or xors.of(registers)
        if x or z:
            block = corrections[2 * x + z]
            entries = block.entries
            if block.version is not self._blocks:
                entries = self._resolve_block(run, block)
            if entries is None:  # (not resolved: the gates one by one)
                for op in block.ops:
                    self._hw.qubit_operation(run.controller, *op)
            else:
                for step, _, _ in entries:
                    step()
        run.position += 1
        return True

    def _probe(self, run: ProgramRun, op: Operation) -> bool:
        """The exact fidelity of a qubit to a pure state, as an item of the reply."""
        _, qubit, theta, phi = op
        fidelity = self._hw.qubit_fidelity(run.node, qubit, theta, phi)
        run.items.append(f"F{fidelity:.12g}")
        run.position += 1
        return True

    def _age(self, run: ProgramRun, op: Operation) -> bool:
        """The memory cut-off: abort when the first heralded pair is older than op[1]."""
        born = run.first_herald_s
        if born is not None and self._time.now - born > op[1]:
            self._end(run, "aborted")
            return False
        run.position += 1
        return True

    def _entangle(self, run: ProgramRun, link: tuple[str, Operation]) -> bool:
        """The attempt loop with the peer, once the peer's program has reached its own
        ``entangle`` towards this node (it is checked again at every pass until then);
        ``link``: the peer and that operation of its program."""
        peer, meeting = link
        controller = self._controllers.get(peer)
        if controller is None:
            controller = self._controllers[peer] = self._hw.controller_of(peer)
        other = self._runs.get(controller)
        if (
            other is None
            or other.shot != run.shot
            or other.state != "running"
            or other.ops[other.position] != meeting
        ):
            run.waiting = peer
            return False
        try:
            heralded, bell, attempts, when = self._hw.realtime_attempt_loop(run.node, peer)
        except ScpiError as exc:  # a loop the link cannot run: both programs fail
            for r in (run, other):
                self._fail(r, exc.code, f"{r.where()}: {exc.detail}")
            return False
        item = f"{bell if heralded else 'NONE'}:{attempts}:{when:.12g}"  # both report it
        if not heralded:
            for r in (run, other):
                r.items.append(item)
                self._end(r, "aborted")
            return False
        frame = BELL_FRAMES[bell]
        run.items.append(item)  # (both programs, written out: two a teleportation)
        run.registers.extend(frame)
        if run.first_herald_s is None:
            run.first_herald_s = when
        run.position += 1
        other.items.append(item)
        other.registers.extend(frame)
        if other.first_herald_s is None:
            other.first_herald_s = when
        other.position = position = other.position + 1
        if position == len(other.ops):  # the peer's program ends now, not at its pass
            self._done(other)
        return True  # (this program's end, if this was its last operation: ``_finished``)

    def _send(self, run: ProgramRun, message: Message) -> bool:
        """Post the bits (XORs of registers) to the peer; they arrive after the classical
        delay. The peer's program of this shot, asleep waiting for them, sleeps on until then."""
        channel, shot = message.channel, run.shot
        delay = channel.delay_s
        if delay is None:
            delay = channel.delay_s = self._hw.classical_delay_s(channel.sender, channel.receiver)
        now = self._time.now
        arrival = now + delay
        registers = run.registers  # the bits: known ones looked up here (``Xors.of``)
        bits = message.known.get(message.read(registers)) or message.of(registers)
        box = channel.boxes.get(shot)
        if box is None:  # (a box holds the message: made with it)
            channel.boxes[shot] = [(arrival, bits)]
            self._boxes += 1
            if self._boxes > MAILBOXES:
                self._drop_unread()
        else:
            box.append((arrival, bits))
        # the peer's program of this shot, if asleep on the empty box (still NEVER: not
        # woken since, by a message or its shot's end)
        reader = channel.asleep.pop(shot, None)
        if reader is not None and reader.wake_s == NEVER:
            reader.wake_s = arrival  # the box's first message: readable at its arrival
        run.position = position = run.position + 1
        if position == len(run.ops):  # its last operation: it ends done (``_finished``)
            run.state = "done"
            run.ended_s = now
            self._floor = None
            return False
        return True

    def _drop_unread(self) -> None:
        """Drop the mailboxes finished shots left unread (those of no running program)."""
        live = {r.shot for r in self._runs.values() if r.state == "running"}
        self._boxes = 0
        for channel in self._channels.values():
            boxes = channel.boxes
            for shot in [s for s in boxes if s not in live]:
                del boxes[shot]
            self._boxes += len(boxes)
            asleep = channel.asleep
            for shot in [s for s in asleep if s not in live]:
                del asleep[shot]

    def _receive(self, run: ProgramRun, receive: tuple[Channel, int]) -> bool:
        """Take the next message from the peer into registers; False (the program sleeps
        until the message's arrival, or until a message is posted) when there is none."""
        channel, count = receive
        box = channel.boxes.get(run.shot)
        if not box:
            run.waiting = channel
            run.wake_s = NEVER
            channel.asleep[run.shot] = run  # for the send that wakes it
            return False
        arrival, bits = box[0]
        # a program asleep till this message's arrival is only woken (by the pass) once
        # the clock has reached it: the clock is asked only of an awake one
        if not run.wake_s and arrival > self._time.now:
            run.waiting = channel
            run.wake_s = arrival
            return False
        run.wake_s = 0.0
        if len(box) == 1:  # its last message: the box goes (``_drop_unread`` finds fewer)
            del channel.boxes[run.shot]
            self._boxes -= 1
        else:
            del box[0]
        if len(bits) != count:
            self._fail(
                run, -230, f"{run.where()}: the message carries {len(bits)} bits, not {count}"
            )
            return False
        run.registers.extend(bits)
        run.position += 1
        return True

    # ------------------------------------------------------------------ endings
    def _finished(self, run: ProgramRun, _: None) -> bool:
        """The runner after a program's last operation: it ends done (``_done``, written
        out: it runs at the end of every program)."""
        run.state = "done"
        run.ended_s = self._time.now
        self._floor = None
        return False

    def _done(self, run: ProgramRun) -> None:
        run.state = "done"
        run.ended_s = self._time.now
        self._floor = None

    def _end(self, run: ProgramRun, state: str) -> None:
        """End ``run`` early, and with it its shot: the shot's sleeping programs wake to
        end at their next operation."""
        run.state = state
        run.ended_s = self._time.now
        run.aborted_at = run.position + 1
        self._floor = None
        self._settled = False
        self._aborted[run.shot] = run.node
        while len(self._aborted) > _SHOT_MEMORY:
            del self._aborted[next(iter(self._aborted))]
        for other in self._runs.values():
            if other.shot == run.shot:
                other.wake_s = 0.0

    def _fail(self, run: ProgramRun, code: int, reason: str) -> None:
        self._end(run, "failed")
        run.error = (code, reason)


def _xor(registers: list[int], bits: tuple[int, ...]) -> int:
    value = 0
    for index in bits:
        value ^= registers[index]
    return value


#: operations on the node's own qubits, run by the lab's ``qubit_operation``
QUBIT_KINDS = frozenset({"init", "rotate", "gate", "wait", "measure"})
