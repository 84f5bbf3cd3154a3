"""The simulated lab's real-time network: the nodes' real-time controllers running the
programs of one shot together, as the controllers of a quantum network do (Pompili et al.,
Science 372, 259 (2021): the attempt loops, memory swaps and feed-forward of a protocol run
between the nodes' real-time controllers, over their own classical links, without returning
to the nodes' PCs).

A program is started on a controller for a *shot* (a number the node controllers agree on)
and runs at once as far as it can. Its network operations meet the other controllers' programs
of the same shot:

* ``entangle`` waits until the peer's program reaches its ``entangle`` towards this node,
  then the link's attempt loop runs (the controllers trigger their AWGs) until the herald or
  the loop's cut-off; both programs store the heralded Bell state's Pauli frame;
* ``send`` posts bits (XORs of registers) to a peer; they arrive after the classical delay
  between the nodes (fibre along the links plus processing latency), and ``receive`` waits
  for them;
* a program that cannot finish (its attempt loop was cut off, its pair outlived the memory
  cut-off, an operation failed) aborts the whole shot: every program of that shot, running
  or started later, ends at its next operation.

All controllers share the lab's one simulated clock, so operations on different nodes take
their time one after the other; when no program can go on, the clock runs on to the next
message's arrival. A shot's program that waits for something that never comes is reported as
blocked when its result is asked for.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from .instruments.scpi import ScpiError

Operation = tuple[Any, ...]
#: Pauli frame (x, z) of each heralded Bell state relative to Phi+ (X^x Z^z on one qubit).
BELL_FRAMES = {"PHI+": (0, 0), "PSI+": (1, 0), "PHI-": (0, 1), "PSI-": (1, 1)}
#: Aborted shots remembered (a program of an aborted shot started later aborts too).
_SHOT_MEMORY = 64
#: Mailboxes kept before those of finished shots are dropped.
_MAILBOXES = 256
#: ``ProgramRun.wake_s`` of a program waiting for a message not yet sent
_NEVER = math.inf
#: ``_due_or_arrival``: a pass would run something (times are never negative)
_DUE = -1.0
_BIT_TEXT = ("0", "1")  # a readout as a reply item


@dataclass(slots=True, init=False)
class ProgramRun:
    """One controller's program of one shot, and how far it got."""

    controller: str
    node: str
    shot: int
    ops: tuple[Operation, ...]
    texts: tuple[str, ...]  # each operation as sent, for reports
    runners: tuple[Any, ...]  # what runs each operation (see ``_OPERATIONS``)
    position: int  # index of the next operation
    registers: list[int]
    items: list[str]  # readouts and heralds, for the reply
    state: str  # running, done, aborted, failed
    aborted_at: int | None  # 1-based operation that ended it
    error: tuple[int, str] | None  # failed: SCPI code and reason
    first_herald_s: float | None
    ended_s: float | None  # controller clock when it ended
    waiting: tuple[str, Any]  # what a blocked program waits for (see ``why``)
    #: asleep until the clock reaches it (a message's arrival, always its box's first
    #: message's; ``_NEVER``: until a message is posted or the shot aborts); 0: awake, its
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
    ) -> None:
        # written out (not dataclass-made): three are made per teleportation
        self.controller, self.node, self.shot = controller, node, shot
        self.ops, self.texts, self.runners = ops, texts, runners
        self.position, self.registers, self.items, self.state = 0, [], [], "running"
        self.aborted_at = self.error = self.first_herald_s = self.ended_s = None
        self.waiting, self.wake_s = ("", None), 0.0

    def where(self) -> str:
        return f"operation {self.position + 1} {self.texts[self.position]!r}"

    def why(self) -> str:
        """What it waits for, in words (built only when a blocked program is reported)."""
        kind, detail = self.waiting
        if kind == "entangle":
            return f"{detail}'s program has not reached its attempt loop with {self.node}"
        if kind == "arrival":
            peer, arrival = detail
            return f"the message from {peer} arrives at {arrival:.9g} s"
        return f"no message from {detail}"


class RealTimeNetwork:
    """The programs of the lab's real-time controllers; see the module docstring. Built by
    :class:`~sim_backend.hardware.SimulatedHardware` (``hardware``: its qubit operations,
    attempt loops, wiring and classical delays)."""

    def __init__(self, hardware: Any) -> None:
        self._hw = hardware
        self._runs: dict[str, ProgramRun] = {}  # each controller's current program
        self._queued: dict[str, deque[ProgramRun]] = {}  # its later programs of the batch
        self._batches: dict[str, list[ProgramRun]] = {}  # every program of its last start
        self._mail: dict[tuple[int, str, str], deque[tuple[float, tuple[int, ...]]]] = {}
        self._aborted: dict[int, str] = {}
        self._delays: dict[tuple[str, str], float] = {}
        self._private = 0  # shots of programs that meet no other (negative, lab-wide)
        # the earliest running shot; None: a program ended (or started) since the queues
        # were last looked at, so they are looked at again and it is found again
        self._floor: int | None = None
        # each program's runners, by the id of its operations (the entry keeps them alive,
        # so the id stays theirs): the controllers rerun a few compiled programs
        self._runners: dict[int, tuple[tuple[Operation, ...], tuple[Any, ...]]] = {}
        # controller_of per peer node while one ``_advance`` runs (nothing rewires the lab
        # meanwhile; it is asked again at the next one)
        self._controllers: dict[str, str] = {}

    # ------------------------------------------------------------------ interface
    def start(
        self, controller: str, shot: int, ops: tuple[Operation, ...], texts: tuple[str, ...]
    ) -> None:
        """Start a program (``start_batch`` of one)."""
        self.start_batch(controller, [(shot, ops, texts)])

    def start_batch(
        self,
        controller: str,
        programs: list[tuple[int, tuple[Operation, ...], tuple[str, ...]]],
    ) -> None:
        """Start programs of consecutive shots, run one after the other: a controller's
        program of a shot starts once no program of an earlier shot runs anywhere (the
        nodes' shots are synchronised). Programs still running or waiting on this
        controller (a batch its node controller abandoned), and programs of earlier shots
        left waiting on any controller, are aborted first, with their shots."""
        first = programs[0][0]
        for stale in [self._runs.pop(controller, None), *self._queued.pop(controller, ())]:
            if stale is not None and stale.state == "running":
                self._end(stale, "aborted")
        for other in self._runs.values():  # a program of an earlier shot left waiting
            if other.state == "running" and 0 <= other.shot < first:
                self._end(other, "aborted")
        node = self._hw.node_of_controller(controller)
        known = self._runners
        runs = []
        for shot, ops, texts in programs:
            entry = known.get(id(ops))
            if entry is None or entry[0] is not ops:
                entry = self._resolve(ops)
            runs.append(ProgramRun(controller, node, shot, ops, texts, entry[1]))
        self._batches[controller] = runs
        self._runs[controller] = runs[0]
        self._queued[controller] = deque(runs[1:])
        self._floor = None
        self._advance()

    def private_shot(self) -> int:
        """A shot number no client sends (they are >= 0), for a program that meets no
        other program."""
        self._private -= 1
        return self._private

    def result(self, controller: str) -> ProgramRun:
        """The controller's last program (``results`` of a start of one)."""
        return self.results(controller)[-1]

    def results(self, controller: str) -> list[ProgramRun]:
        """The programs of the controller's last start, after running them as far as they
        go; one that still cannot finish is failed as blocked, and so are those after it."""
        batch = self._batches.get(controller)
        if batch is None:
            raise ScpiError(-200, "no program started")
        self._advance()
        for run in batch:
            if run.state == "running":
                self._fail(run, -200, f"blocked at {run.where()}: {run.why()}")
        self._queued.pop(controller, None)
        return batch

    # ------------------------------------------------------------------ scheduling
    def _advance(self) -> None:
        """Run every program as far as it can go, in passes over the controllers; when a
        pass moves none, let simulated time run to the next message's arrival and try
        again. The order of the passes fixes the order of the operations on the shared
        clock, so it is kept exactly; a sleeping program is only skipped where its step
        would have waited anyway."""
        self._controllers.clear()
        moved = False  # the last pass ran something
        while True:
            floor = self._floor
            if floor is None:
                floor = self._dequeue()
            # after a pass that ran something, another pass follows; one that would run
            # nothing (every program of the shot asleep) is not made, time runs on at once
            arrival = self._due_or_arrival(floor) if moved else _DUE
            if arrival == _DUE:
                moved = self._pass(floor)
                if moved:
                    continue
                # a pass that ran nothing leaves nothing changed (not even the clock), so
                # a further pass would run nothing either: time runs on at once
                arrival = self._next_arrival()
            if arrival is None:
                return
            self._hw.clock_advance_to(arrival)
            moved = False

    def _dequeue(self) -> int:
        """Each controller whose program ended takes its next queued one; returns the
        earliest running shot (the floor: shots run in order), found in the same look."""
        runs, queued = self._runs, self._queued
        floor = None
        for controller, run in runs.items():  # values only change: iteration is safe
            if run.state != "running":
                waiting = queued.get(controller)
                if not waiting:
                    continue
                run = runs[controller] = waiting.popleft()
                if run.state != "running":
                    continue
            if floor is None or run.shot < floor:
                floor = run.shot
        self._floor = floor = 0 if floor is None else floor
        return floor

    def _pass(self, floor: int) -> bool:
        """One pass: each controller's program of shot ``floor`` runs until it waits; True
        if any operation ran. A program of an aborted shot ends at its next operation, one
        whose operation fails (ScpiError) fails there."""
        progressed = False
        now_s = self._hw.now_s
        now = None  # the clock, once asked, until an operation runs
        aborted = self._aborted
        for run in self._runs.values():  # steps never add or remove controllers
            if run.shot != floor or run.state != "running":
                continue
            wake = run.wake_s
            if wake:
                if now is None:
                    now = now_s()
                if wake > now:  # its message is not there yet
                    continue
            now = None
            if floor in aborted:
                self._end(run, "aborted")
                progressed = True
                continue
            # Once it runs, a program stays awake and its shot unaborted for as long as it
            # runs (only its own receive puts it to sleep, and waits; an operation that
            # ends its shot ends it too): only its state is looked at between operations.
            ops, runners = run.ops, run.runners
            while True:
                position = run.position
                try:
                    if not runners[position](self, run, ops[position]):
                        break  # it waits
                except ScpiError as exc:
                    self._fail(run, exc.code, f"{run.where()}: {exc.detail}")
                progressed = True
                if run.state != "running":
                    break
        return progressed

    def _next_arrival(self) -> float | None:
        """The earliest arrival, after now, of a message a running program waits for."""
        now = self._hw.now_s()
        pending = []
        for run in self._runs.values():
            if run.state != "running" or run.ops[run.position][0] != "receive":
                continue
            if run.wake_s:  # asleep: its wake time is the message's arrival (inf: none)
                arrival = run.wake_s if run.wake_s != _NEVER else None
            else:
                box = self._mail.get((run.shot, run.ops[run.position][1], run.node))
                arrival = box[0][0] if box else None
            if arrival is not None and arrival > now:
                pending.append(arrival)
        return min(pending, default=None)

    def _due_or_arrival(self, floor: int) -> float | None:
        """``_DUE`` when a pass over shot ``floor`` now would step a program (one awake, or
        asleep till now or earlier), else ``_next_arrival`` (found in the same look)."""
        now = self._hw.now_s()
        earliest = None
        for run in self._runs.values():
            if run.state != "running":
                continue
            wake = run.wake_s
            if run.shot == floor and (not wake or wake <= now):
                return _DUE
            op = run.ops[run.position]
            if op[0] != "receive":
                continue
            if wake:  # asleep: its wake time is the message's arrival (inf: none)
                if wake == _NEVER:
                    continue
                arrival = wake
            else:
                box = self._mail.get((run.shot, op[1], run.node))
                if not box:
                    continue
                arrival = box[0][0]
            if arrival > now and (earliest is None or arrival < earliest):
                earliest = arrival
        return earliest

    def _resolve(self, ops: tuple[Operation, ...]) -> tuple[tuple[Operation, ...], tuple[Any, ...]]:
        """The entry of ``_runners`` for a program's operations (made now)."""
        if len(self._runners) >= _MAILBOXES:
            self._runners.clear()
        runners = tuple(_OPERATIONS.get(op[0], _QUBIT_OPERATION) for op in ops)
        entry = self._runners[id(ops)] = (ops, runners)
        return entry

    # ------------------------------------------------------------------ operations
    # (the network operations below write ``_next``'s lines out: they run at every one)
    def _qubit_ops(self, run: ProgramRun, op: Operation) -> bool:
        """Operations on the node's own qubits (init, rotate, gate, wait, measure: a readout
        goes into the next register and the reply), this one and those right after it, in
        one go: as the passes would run them, since nothing else can end the shot
        meanwhile (an error ends the run at its operation). The hardware resolves the block
        once into steps (a Bell-state measurement fused into one); when it cannot, they run
        one by one."""
        hw, ops = self._hw, run.ops
        start, count = run.position, len(ops)
        end = start + 1
        while end < count and ops[end][0] in _QUBIT_KINDS:
            end += 1
        block = getattr(hw, "qubit_block", None)
        entries = block(run.controller, ops[start:end]) if block is not None else None
        if entries is not None:
            registers, items, position = run.registers, run.items, start
            for step, width, reads in entries:
                run.position = position  # where an error would end the run
                outcome = step()
                if reads == 1:
                    registers.append(int(outcome))
                    items.append(_BIT_TEXT[int(outcome)])
                elif reads == 2:
                    for bit in outcome:
                        registers.append(int(bit))
                        items.append(_BIT_TEXT[int(bit)])
                position += width
            run.position = position - 1
            self._next(run)
            return True
        operation, last = hw.qubit_operation, count - 1
        while True:
            outcome = operation(run.controller, *op)
            if op[0] == "measure":
                run.registers.append(int(outcome))
                run.items.append(_BIT_TEXT[int(outcome)])
            if run.position == last or ops[run.position + 1][0] not in _QUBIT_KINDS:
                self._next(run)
                return True
            run.position += 1
            op = ops[run.position]

    def _pauli(self, run: ProgramRun, op: Operation) -> bool:
        """Feed-forward: X then Z, each when its XOR of registers is 1."""
        _, qubit, x, z = op
        for gate, bits in (("X", x), ("Z", z)):
            if _xor(run.registers, bits):
                self._hw.qubit_operation(run.controller, "gate", gate, qubit)
        run.position += 1
        if run.position == len(run.ops):
            self._done(run)
        return True

    def _probe(self, run: ProgramRun, op: Operation) -> bool:
        """The exact fidelity of a qubit to a pure state, as an item of the reply."""
        _, qubit, theta, phi = op
        fidelity = self._hw.qubit_fidelity(run.node, qubit, theta, phi)
        run.items.append(f"F{fidelity:.12g}")
        run.position += 1
        if run.position == len(run.ops):
            self._done(run)
        return True

    def _age(self, run: ProgramRun, op: Operation) -> bool:
        """The memory cut-off: abort when the first heralded pair is older than op[1]."""
        born = run.first_herald_s
        if born is not None and self._hw.now_s() - born > op[1]:
            self._end(run, "aborted")
        else:
            self._next(run)
        return True

    def _entangle(self, run: ProgramRun, op: Operation) -> bool:
        """The attempt loop with ``op[1]``, once the peer's program has reached its own
        ``entangle`` towards this node (it is checked again at every pass until then)."""
        peer = op[1]
        controller = self._controllers.get(peer)
        if controller is None:
            controller = self._controllers[peer] = self._hw.controller_of(peer)
        other = self._runs.get(controller)
        ready = (
            other is not None
            and other.shot == run.shot
            and other.state == "running"
            and other.ops[other.position] == ("entangle", run.node)
        )
        if not ready:
            run.waiting = ("entangle", peer)
            return False
        assert other is not None
        try:
            heralded, bell, attempts, when = self._hw.realtime_attempt_loop(run.node, peer)
        except ScpiError as exc:  # a loop the link cannot run: both programs fail
            for r in (run, other):
                self._fail(r, exc.code, f"{r.where()}: {exc.detail}")
            return True
        item = f"{bell if heralded else 'NONE'}:{attempts}:{when:.12g}"  # both report it
        if not heralded:
            for r in (run, other):
                r.items.append(item)
                self._end(r, "aborted")
            return True
        frame = BELL_FRAMES[bell]
        for r in (run, other):
            r.items.append(item)
            r.registers.extend(frame)
            if r.first_herald_s is None:
                r.first_herald_s = when
            r.position += 1
            if r.position == len(r.ops):
                self._done(r)
        return True

    def _send(self, run: ProgramRun, op: Operation) -> bool:
        """Post the bits (XORs of registers) to the peer; they arrive after the classical
        delay. The peer's program of this shot, asleep waiting for them, sleeps on until then."""
        _, peer, bits = op
        node, shot = run.node, run.shot
        delay = self._delays.get((node, peer))
        if delay is None:  # the fibre between two nodes does not change during a run
            delay = self._delays[(node, peer)] = self._hw.classical_delay_s(node, peer)
        arrival = self._hw.now_s() + delay
        registers, message = run.registers, []
        for indices in bits:  # each bit: the XOR of its registers
            value = 0
            for index in indices:
                value ^= registers[index]
            message.append(value)
        mail = self._mail
        box = mail.get((shot, node, peer))
        if box is None:
            box = mail[(shot, node, peer)] = deque()
            if len(mail) > _MAILBOXES:  # drop what finished shots left unread
                live = {r.shot for r in self._runs.values() if r.state == "running"}
                for key in [k for k in mail if k[0] not in live]:
                    del mail[key]
        box.append((arrival, tuple(message)))
        for reader in self._runs.values():  # the peer's program, asleep on an empty box
            if (
                reader.wake_s == _NEVER
                and reader.node == peer
                and reader.shot == shot
                and reader.ops[reader.position][1] == node
            ):
                reader.wake_s = arrival  # the box's first message: readable at its arrival
        run.position += 1
        if run.position == len(run.ops):
            self._done(run)
        return True

    def _receive(self, run: ProgramRun, op: Operation) -> bool:
        """Take the next message from the peer into registers; False (the program sleeps
        until the message's arrival, or until a message is posted) when there is none."""
        _, peer, count = op
        box = self._mail.get((run.shot, peer, run.node))
        if not box:
            run.waiting = ("message", peer)
            run.wake_s = _NEVER
            return False
        arrival, bits = box[0]
        # a program asleep till this message's arrival is only woken (by the pass) once
        # the clock has reached it: the clock is asked only of an awake one
        if not run.wake_s and arrival > self._hw.now_s():
            run.waiting = ("arrival", (peer, arrival))
            run.wake_s = arrival
            return False
        run.wake_s = 0.0
        box.popleft()
        if len(bits) != count:
            self._fail(
                run, -230, f"{run.where()}: the message carries {len(bits)} bits, not {count}"
            )
            return True
        run.registers.extend(bits)
        run.position += 1
        if run.position == len(run.ops):
            self._done(run)
        return True

    # ------------------------------------------------------------------ endings
    def _next(self, run: ProgramRun) -> None:
        run.position += 1
        if run.position == len(run.ops):
            self._done(run)

    def _done(self, run: ProgramRun) -> None:
        run.state = "done"
        run.ended_s = self._hw.now_s()
        self._floor = None

    def _end(self, run: ProgramRun, state: str) -> None:
        """End ``run`` early, and with it its shot: the shot's sleeping programs wake to
        end at their next operation."""
        run.state = state
        run.ended_s = self._hw.now_s()
        run.aborted_at = run.position + 1
        self._floor = None
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
_QUBIT_KINDS = frozenset({"init", "rotate", "gate", "wait", "measure"})
#: what runs each kind of operation (anything else is an operation on the node's qubits)
_QUBIT_OPERATION = RealTimeNetwork._qubit_ops
_OPERATIONS = {
    "pauli": RealTimeNetwork._pauli,
    "probe": RealTimeNetwork._probe,
    "age": RealTimeNetwork._age,
    "entangle": RealTimeNetwork._entangle,
    "send": RealTimeNetwork._send,
    "receive": RealTimeNetwork._receive,
}
