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

from collections import deque
from typing import Any

from .instruments.scpi import ScpiError
from .realtime_operations import (
    MAILBOXES,
    NEVER,
    QUBIT_KINDS,
    Channel,
    Message,
    Operation,
    ProgramOperations,
    ProgramRun,
    QubitBlock,
    Xors,
)

#: a program's operations, controller, runners and their arguments (``RealTimeNetwork._resolve``)
Resolved = tuple[tuple[Operation, ...], str, tuple[Any, ...], tuple[Any, ...]]


class RealTimeNetwork(ProgramOperations):
    """The programs of the lab's real-time controllers; see the module docstring. Built by
    :class:`~sim_backend.hardware.SimulatedHardware` (``hardware``: its qubit operations
    and blocks of them, attempt loops, wiring and classical delays)."""

    def __init__(self, hardware: Any) -> None:
        self._hw = hardware
        self._runs: dict[str, ProgramRun] = {}  # each controller's current program
        self._queued: dict[str, deque[ProgramRun]] = {}  # its later programs of the batch
        self._batches: dict[str, list[ProgramRun]] = {}  # every program of its last start
        # the messages between the nodes, per (sender, receiver); mailboxes in all of them
        self._channels: dict[tuple[str, str], Channel] = {}
        self._boxes = 0
        self._messages: dict[tuple[str, str, Any], Message] = {}  # see ``_argument``
        self._feeds: dict[tuple[str, Operation], Any] = {}  # see ``_feed``
        self._aborted: dict[int, str] = {}
        self._private = 0  # shots of programs that meet no other (negative, lab-wide)
        # the earliest running shot; None: a program ended (or started) since the queues
        # were last looked at, so they are looked at again and it is found again
        self._floor: int | None = None
        # each program's runners and their arguments, by the id of its operations (the
        # entry keeps them alive, so the id stays theirs) and its node: the controllers
        # rerun a few compiled programs
        self._runners: dict[int, Resolved] = {}
        # controller_of per peer node, and node_of_controller per controller: the lab's
        # wiring is fixed (``SimulatedHardware._node_of_controller`` keeps it too), so they
        # are asked once per network, not in every transaction
        self._controllers: dict[str, str] = {}
        self._nodes: dict[str, str] = {}
        # see ``ProgramOperations._time``: the lab's one clock (made with the lab), asked once
        self._time: Any = hardware.realtime_clock()
        self._blocks: Any = None  # see ``ProgramOperations._blocks``
        # ``_advance`` found no program can go on, and none started or ended since: its
        # next call would change nothing (no program waits for a time, so not even the
        # clock running on wakes one), so ``results`` does not make it (a node asks for
        # each controller's results after a batch)
        self._settled = False

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
        stale = self._runs.pop(controller, None)
        if stale is not None and stale.state == "running":
            self._end(stale, "aborted")
        for stale in self._queued.pop(controller, ()):
            if stale.state == "running":
                self._end(stale, "aborted")
        alone = True  # no other controller's program runs on
        for other in self._runs.values():
            if other.state == "running":
                if 0 <= other.shot < first:  # a program of an earlier shot left waiting
                    self._end(other, "aborted")
                else:
                    alone = False
        node = self._nodes.get(controller)
        if node is None:
            node = self._nodes[controller] = self._hw.node_of_controller(controller)
        known = self._runners
        runs = []
        new = object.__new__
        for shot, ops, texts in programs:
            entry = known.get(id(ops))
            if entry is None or entry[0] is not ops or entry[1] is not controller:
                entry = self._resolve(ops, controller, node)
            # ``ProgramRun(controller, node, shot, ops, texts, runners, args)`` written out
            # (three a teleportation: the type's call of ``__init__`` costs a fifth more)
            run = new(ProgramRun)
            run.controller, run.node, run.shot = controller, node, shot
            run.ops, run.texts, run.runners, run.args = ops, texts, entry[2], entry[3]
            run.position, run.registers, run.items, run.state = 0, [], [], "running"
            run.aborted_at = run.error = run.first_herald_s = run.ended_s = None
            run.waiting, run.wake_s = None, 0.0
            runs.append(run)
        self._batches[controller] = runs
        self._runs[controller] = runs[0]
        if len(runs) > 1:  # (a start of one queues nothing: no empty deque made)
            self._queued[controller] = deque(runs[1:])
        self._floor = None
        run = runs[0]
        if (
            alone
            and self._settled
            and run.runners[0] is _ENTANGLE
            and run.args[0][0] != node
            and run.shot not in self._aborted
        ):
            # Nothing could go on before this start (settled: no abort since), and no other
            # program runs: this one's first operation, an attempt loop, waits for its
            # peer's program, and a pass would only find that (the network stays settled)
            run.waiting = run.args[0][0]
            return
        self._settled = False
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
        if not self._settled:  # (settled: a further look would change nothing)
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
        would have waited anyway.

        Before a pass, a look over the controllers: each whose program ended takes its
        next queued one (nothing else changes the queues: with ``_floor`` set, none ended
        since the last look); it finds the earliest running shot (the floor: shots run in
        order) and whether a pass over it now would step a program (one awake, or asleep
        till now or earlier), else the earliest arrival a program sleeps till. A pass:
        each controller's program of the floor runs until it waits; a program of an
        aborted shot ends at its next operation, one whose operation fails (ScpiError)
        fails there. Both are written out in this loop (three of each a shot: no calls)."""
        runs, queued, aborted = self._runs, self._queued, self._aborted
        time, receive = self._time, _RECEIVE
        self._blocks = self._hw.qubit_blocks_version()
        moved = False  # the last pass ran something
        earliest = NEVER  # the look's earliest arrival (NEVER: none; unknown after time ran)
        looked = False  # the pass follows a look (not the clock running on)
        while True:
            if moved or self._floor is None:
                # the look: after a pass that ran something (or a program's start); when
                # no pass is due (every program of the shot asleep) none is made, time
                # runs on at once
                now = time.now
                floor = due = None  # due: the earliest shot of a program a pass would step
                earliest = NEVER
                for run in runs.values():  # values only change: iteration is safe
                    if run.state != "running":
                        if not queued:  # (starts of one queue nothing)
                            continue
                        waiting = queued.get(run.controller)  # (keyed by their controller)
                        if not waiting:
                            continue
                        runs[run.controller] = run = waiting.popleft()
                        if run.state != "running":
                            continue
                    shot = run.shot
                    if floor is None or shot < floor:
                        floor = shot
                    wake = run.wake_s
                    if wake > now:  # asleep till a later arrival (inf: till a message)
                        if wake < earliest:
                            earliest = wake
                        continue
                    if due is None or shot < due:  # awake (0; times are never negative)
                        due = shot
                    if not wake and run.runners[run.position] is receive:  # (at a receive)
                        box = run.args[run.position][0].boxes.get(shot)
                        if box and now < box[0][0] < earliest:
                            earliest = box[0][0]
                self._floor = floor = 0 if floor is None else floor
                due_now, looked = due == floor, True
            else:  # the clock has just run on to an arrival: a pass follows
                floor, due_now, looked = self._floor, True, False
            if due_now:
                moved = False
                for run in runs.values():  # steps never add or remove controllers
                    if run.shot != floor or run.state != "running":
                        continue
                    if run.wake_s and run.wake_s > time.now:  # its message is not there yet
                        continue
                    if floor in aborted:
                        self._end(run, "aborted")
                        moved = True
                        continue
                    # Once it runs, a program stays awake and its shot unaborted for as
                    # long as it runs (only its own receive puts it to sleep, and waits;
                    # an operation that ends its shot ends it too): each runner says
                    # whether the program goes on. Every operation that runs moves the
                    # program on or ends it, so whether any ran is read off its position
                    # and state afterwards (not tracked per step).
                    runners, args, start = run.runners, run.args, run.position
                    try:
                        while runners[run.position](self, run, args[run.position]):
                            pass
                    except ScpiError as exc:
                        self._fail(run, exc.code, f"{run.where()}: {exc.detail}")
                    if not moved and (run.position != start or run.state != "running"):
                        moved = True
                if moved:
                    continue
                # a pass that ran nothing leaves nothing changed (not even the clock), so
                # a further pass would run nothing either: time runs on at once, to the
                # earliest arrival the look found (what it saw has not changed: only a
                # receive that found its message not there yet put a program to sleep, till
                # that arrival, which the look counted) or, after the clock ran on, sought
                if looked:
                    arrival = None if earliest == NEVER else earliest
                else:
                    arrival = self._next_arrival()
            else:
                arrival = None if earliest == NEVER else earliest
            if arrival is None:
                self._settled = True
                return
            time.advance_to(arrival)
            moved = False

    def _next_arrival(self) -> float | None:
        """The earliest arrival, after now, of a message a running program waits for."""
        now = self._time.now
        pending = []
        for run in self._runs.values():
            if run.state != "running" or run.ops[run.position][0] != "receive":
                continue
            if run.wake_s:  # asleep: its wake time is the message's arrival (inf: none)
                arrival = run.wake_s if run.wake_s != NEVER else None
            else:
                box = run.args[run.position][0].boxes.get(run.shot)
                arrival = box[0][0] if box else None
            if arrival is not None and arrival > now:
                pending.append(arrival)
        return min(pending, default=None)

    def _resolve(self, ops: tuple[Operation, ...], controller: str, node: str) -> Resolved:
        """The entry of ``_runners`` for a program's operations on ``controller`` (of
        ``node``; made now): what runs each operation, and what it is given (made once for
        every run of the program): a block of qubit operations the whole block, its steps
        resolved at its first run (a ``QubitBlock``: ``_qubit_ops`` runs it in one go), a
        ``send`` its message, a ``receive`` its channel and bit count, a ``pauli`` its
        qubit, XORs and corrections (blocks too), an ``entangle`` its peer and the peer's
        operation it meets, any other operation itself; then ``_finished``."""
        if len(self._runners) >= MAILBOXES:
            self._runners.clear()
            self._messages.clear()
            self._feeds.clear()
        runners = tuple(_OPERATIONS.get(op[0], _QUBIT_OPERATION) for op in ops)
        args = tuple(self._argument(ops, i, controller, node, runners[i]) for i in range(len(ops)))
        # one past the last operation, the runner that ends the program done (the
        # operations' runners need not look for the end)
        runners, args = (*runners, RealTimeNetwork._finished), (*args, None)
        entry = self._runners[id(ops)] = (ops, controller, runners, args)
        return entry

    def _argument(
        self, ops: tuple[Operation, ...], i: int, controller: str, node: str, runner: Any
    ) -> Any:
        """What ``runner`` is given to run ``ops[i]`` (see ``_resolve``)."""
        op = ops[i]
        if runner is _QUBIT_OPERATION:
            return QubitBlock(_qubit_block_at(ops, i))
        if runner is RealTimeNetwork._send:
            return self._message(node, op[1], op[2])
        if runner is RealTimeNetwork._receive:
            return (self._channel(op[1], node), op[2])
        if runner is RealTimeNetwork._pauli:
            return self._feed(controller, op)
        if runner is RealTimeNetwork._entangle:  # the peer, and its operation to meet
            return (op[1], ("entangle", node))
        return op

    def _feed(self, controller: str, op: Operation) -> Any:
        """A ``pauli``'s qubit, X and Z, and its corrections as blocks of qubit operations;
        one per controller and operation, shared by the programs that have it, so that
        its X and Z and its blocks are learnt and resolved once for all."""
        try:
            feed = self._feeds.get((controller, op))
        except TypeError:  # registers given as lists: not shared
            return _pauli_feed(op)
        if feed is None:
            feed = self._feeds[(controller, op)] = _pauli_feed(op)
        return feed

    def _message(self, sender: str, receiver: str, bits: Any) -> Message:
        """One per channel and bits, shared by the programs that send them (a batch's
        programs are equal, but compiled one by one), so that it learns their bits for all."""
        try:
            message = self._messages.get((sender, receiver, bits))
        except TypeError:  # bits given as lists: not shared
            return Message(self._channel(sender, receiver), bits)
        if message is None:
            message = Message(self._channel(sender, receiver), bits)
            self._messages[(sender, receiver, bits)] = message
        return message

    def _channel(self, sender: str, receiver: str) -> Channel:
        channel = self._channels.get((sender, receiver))
        if channel is None:
            channel = self._channels[(sender, receiver)] = Channel(sender, receiver)
        return channel


def _pauli_feed(op: Operation) -> tuple[Any, Xors, tuple[QubitBlock, ...]]:
    """A ``pauli``'s qubit, X and Z, and its corrections by ``2 x + z``."""
    x, z = ("gate", "X", op[1]), ("gate", "Z", op[1])
    corrections = ((), (z,), (x,), (x, z))
    return (op[1], Xors((op[2], op[3])), tuple(map(QubitBlock, corrections)))


def _qubit_block_at(ops: tuple[Operation, ...], start: int) -> tuple[Operation, ...]:
    """``ops[start]`` and the operations on the qubits right after it."""
    end = start + 1
    while end < len(ops) and ops[end][0] in QUBIT_KINDS:
        end += 1
    return ops[start:end]


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
_RECEIVE = RealTimeNetwork._receive
_ENTANGLE = RealTimeNetwork._entangle
