"""The real-time scheduler's order of operations on the shared clock, pinned: the lab hooks a
chain teleportation's programs call, in order, with the clock at each wait, as the scheduler
before its speed-ups ran them (its passes fix the order; a faster scheduler must keep it);
and its bookkeeping of waits: a blocked program's reason in words, a send waking the program
asleep on its empty box, a settled network asking the lab nothing more for results."""

from __future__ import annotations

from typing import Any

from sim_backend.realtime import RealTimeNetwork

ALICE = (
    ("entangle", "bob"),
    ("receive", "bob", 2),
    ("receive", "charlie", 2),
    ("pauli", 0, (4,), (5,)),
    ("probe", 0, 0.0, 0.0),
    ("measure", 0, "Z"),
)
BOB = (
    ("entangle", "alice"),
    ("init", 1),
    ("gate", "SWAP", 0, 1),
    ("entangle", "charlie"),
    ("gate", "CNOT", 1, 0),
    ("gate", "H", 1),
    ("measure", 1, "Z"),
    ("measure", 0, "Z"),
    ("send", "alice", ((0, 2, 5), (1, 3, 4))),
    ("send", "charlie", ((0, 2, 5), (1, 3, 4))),
)
CHARLIE = (
    ("entangle", "bob"),
    ("receive", "bob", 2),
    ("init", 1),
    ("gate", "CNOT", 1, 0),
    ("gate", "H", 1),
    ("measure", 1, "Z"),
    ("measure", 0, "Z"),
    ("send", "alice", ((2, 5), (3, 4))),
)
PROGRAMS = {"a_rtc": ALICE, "b_rtc": BOB, "c_rtc": CHARLIE}


class LoggingLab:
    """Trivial lab hooks that log every call the scheduler makes; each qubit operation
    takes 1 us, each attempt loop 100 us, each message 3 us."""

    def __init__(self, failing_loop: int | None = None) -> None:
        self.now, self.loops, self.failing_loop = 0.0, 0, failing_loop
        self.log: list[tuple[Any, ...]] = []
        self.controllers = {"alice": "a_rtc", "bob": "b_rtc", "charlie": "c_rtc"}

    def node_of_controller(self, controller: str) -> str:
        return {c: n for n, c in self.controllers.items()}[controller]

    def controller_of(self, node: str) -> str:
        return self.controllers[node]

    def now_s(self) -> float:
        return self.now

    def realtime_clock(self) -> LoggingLab:
        return self  # (its clock: ``now``)

    def advance_to(self, time_s: float) -> None:  # (as its clock)
        self.log.append(("advance", round(time_s * 1e6)))
        self.now = max(self.now, time_s)

    def qubit_blocks_version(self) -> object:
        return self

    def qubit_block(self, controller: str, block: tuple[Any, ...]) -> None:
        return None  # no fused blocks: each operation through ``qubit_operation``

    def qubit_operation(self, controller: str, operation: str, *args: Any) -> Any:
        self.log.append((controller, operation, *args))
        self.now += 1e-6
        return 1 if operation == "measure" else None

    def qubit_fidelity(self, node: str, qubit: int, theta: float, phi: float) -> float:
        self.log.append((node, "probe"))
        return 0.5

    def classical_delay_s(self, sender: str, receiver: str) -> float:
        return 3e-6

    def realtime_attempt_loop(self, node: str, peer: str) -> tuple[bool, str, int, float]:
        self.loops += 1
        self.now += 1e-4
        self.log.append(("loop", node, peer))
        heralded = self.loops != self.failing_loop
        return heralded, ("PSI+", "PHI-")[self.loops % 2], self.loops, self.now


def _run(order: tuple[str, ...], shots: tuple[int, ...], lab: LoggingLab) -> dict[str, Any]:
    network = RealTimeNetwork(lab)
    for controller in order:
        ops = PROGRAMS[controller]
        texts = tuple(op[0] for op in ops)
        network.start_batch(controller, [(shot, ops, texts) for shot in shots])
    return {
        c: [
            (r.state, round(r.ended_s * 1e6), r.aborted_at, r.items, r.registers)
            for r in network.results(c)
        ]
        for c in sorted(PROGRAMS)
    }


def _shot(first: str, t0: int) -> list[tuple[Any, ...]]:
    """One teleportation's hook calls: Bob's two loops and operations, Charlie's after
    Bob's message arrives (at ``t0`` us), Alice's feed-forward after Charlie's; ``first``
    started the loop between Alice and Bob."""
    bob = [("b_rtc", "init", 1), ("b_rtc", "gate", "SWAP", 0, 1), ("loop", "bob", "charlie")]
    bob += [("b_rtc", "gate", "CNOT", 1, 0), ("b_rtc", "gate", "H", 1)]
    bob += [("b_rtc", "measure", 1, "Z"), ("b_rtc", "measure", 0, "Z")]
    charlie = [("c_rtc", "init", 1), ("c_rtc", "gate", "CNOT", 1, 0), ("c_rtc", "gate", "H", 1)]
    charlie += [("c_rtc", "measure", 1, "Z"), ("c_rtc", "measure", 0, "Z")]
    alice = [("a_rtc", "gate", "X", 0), ("a_rtc", "gate", "Z", 0), ("alice", "probe")]
    alice += [("a_rtc", "measure", 0, "Z")]
    entangle = ("loop", first, "bob" if first == "alice" else "alice")
    return [entangle, *bob, ("advance", t0), *charlie, ("advance", t0 + 8), *alice]


def test_teleportation_batch_runs_in_the_pinned_order() -> None:
    lab = LoggingLab()
    results = _run(("a_rtc", "b_rtc", "c_rtc"), (7, 8), lab)
    assert lab.log == _shot("alice", 209) + _shot("alice", 429)
    assert results["a_rtc"] == [
        ("done", 220, None, ["PHI-:1:0.0001", "F0.5", "1"], [0, 1, 0, 0, 1, 1, 1]),
        ("done", 440, None, ["PHI-:3:0.00032", "F0.5", "1"], [0, 1, 0, 0, 1, 1, 1]),
    ]
    assert results["b_rtc"][1] == (
        "done",
        426,
        None,
        ["PHI-:3:0.00032", "PSI+:4:0.000422", "1", "1"],
        [0, 1, 1, 0, 1, 1],
    )
    assert results["c_rtc"][0] == (
        "done",
        214,
        None,
        ["PSI+:2:0.000202", "1", "1"],
        [1, 0, 0, 0, 1, 1],
    )


def test_shots_of_one_transaction_each_run_in_the_pinned_order() -> None:
    """As the orchestrator runs one shot per transaction: Alice's start, Bob's, Charlie's,
    then the results. Alice's start on the settled network runs no pass (her loop waits
    for Bob's program, and nothing else runs); her program, left alone, is reported
    blocked as a pass would have found it."""
    lab = LoggingLab()
    network = RealTimeNetwork(lab)
    for shot in (7, 8):
        for controller in ("a_rtc", "b_rtc", "c_rtc"):
            ops = PROGRAMS[controller]
            network.start_batch(controller, [(shot, ops, tuple(op[0] for op in ops))])
        assert [network.result(c).state for c in sorted(PROGRAMS)] == ["done"] * 3
    assert lab.log == _shot("alice", 209) + _shot("alice", 429)
    network.start_batch("a_rtc", [(9, ALICE, tuple(op[0] for op in ALICE))])
    assert network._settled and lab.log == _shot("alice", 209) + _shot("alice", 429)
    assert network.result("a_rtc").error == (
        -200,
        "blocked at operation 1 'entangle': bob's program has not reached its attempt loop "
        "with alice",
    )


def test_an_aborted_shot_ends_every_program_and_the_next_shot_runs_on() -> None:
    lab = LoggingLab(failing_loop=3)  # the second shot's first loop is cut off
    results = _run(("c_rtc", "b_rtc", "a_rtc"), (3, 4, 5), lab)
    assert lab.log == (
        _shot("bob", 209)
        + [("loop", "bob", "alice")]  # shot 4: cut off, all three programs abort
        + _shot("bob", 529)
    )
    assert [r[:4] for r in results["c_rtc"]] == [
        ("done", 214, None, ["PSI+:2:0.000202", "1", "1"]),
        ("aborted", 320, 1, []),
        ("done", 534, None, ["PHI-:5:0.000522", "1", "1"]),
    ]
    assert [r[:4] for r in results["a_rtc"]][1:] == [
        ("aborted", 320, 1, ["NONE:3:0.00032"]),
        ("done", 540, None, ["PSI+:4:0.00042", "F0.5", "1"]),
    ]


# ---- waits: a blocked program's reason, a send waking its reader, a settled network
class CountingLab(LoggingLab):
    """``LoggingLab`` counting its clock reads."""

    def __init__(self) -> None:
        self.reads = 0
        super().__init__()

    @property  # type: ignore[override]
    def now(self) -> float:
        self.reads += 1
        return self._now

    @now.setter
    def now(self, value: float) -> None:
        self._now = value


def _start(network: RealTimeNetwork, controller: str, ops: tuple[Any, ...], shot: int) -> None:
    network.start_batch(controller, [(shot, ops, tuple(op[0] for op in ops))])


def test_blocked_programs_say_what_they_wait_for() -> None:
    network = RealTimeNetwork(LoggingLab())
    _start(network, "a_rtc", (("entangle", "bob"), ("measure", 0, "Z")), 1)
    alice = network.result("a_rtc")
    network = RealTimeNetwork(LoggingLab())
    _start(network, "c_rtc", (("receive", "bob", 2),), 1)
    charlie = network.result("c_rtc")
    assert alice.state == charlie.state == "failed"
    assert alice.error == (
        -200,
        "blocked at operation 1 'entangle': bob's program has not reached its attempt loop "
        "with alice",
    )
    assert charlie.error is not None and charlie.error[1].endswith("no message from bob")


def test_a_send_wakes_the_program_asleep_on_its_empty_box() -> None:
    lab = LoggingLab()
    network = RealTimeNetwork(lab)
    _start(network, "c_rtc", (("receive", "bob", 1), ("measure", 0, "Z")), 3)
    assert network._runs["c_rtc"].wake_s == float("inf")  # asleep until a message is posted
    _start(network, "b_rtc", (("measure", 1, "Z"), ("send", "charlie", ((0,),))), 3)
    charlie = network.result("c_rtc")
    assert charlie.state == "done" and charlie.registers == [1, 1]
    # Bob's readout (1 us), the message's delay (3 us), then Charlie's readout
    assert lab.log == [("b_rtc", "measure", 1, "Z"), ("advance", 4), ("c_rtc", "measure", 0, "Z")]


def test_results_of_a_settled_network_ask_the_lab_nothing() -> None:
    lab = CountingLab()
    network = RealTimeNetwork(lab)
    for controller, ops in (("a_rtc", ALICE), ("b_rtc", BOB), ("c_rtc", CHARLIE)):
        network.start_batch(controller, [(s, ops, tuple(op[0] for op in ops)) for s in (1, 2)])
    reads, log = lab.reads, list(lab.log)
    for controller in ("a_rtc", "b_rtc", "c_rtc"):
        assert [r.state for r in network.results(controller)] == ["done", "done"]
    assert (lab.reads, lab.log) == (reads, log)


def test_started_runs_are_made_as_program_run_makes_them() -> None:
    from sim_backend.realtime_operations import ProgramRun

    network = RealTimeNetwork(LoggingLab())
    _start(network, "c_rtc", (("receive", "bob", 1),), 3)
    started = network._batches["c_rtc"][0]
    made = ProgramRun("c_rtc", "charlie", 3, started.ops, started.texts, started.runners, ())
    made.args = started.args
    made.waiting, made.wake_s = started.waiting, started.wake_s  # (it waits: asleep)
    assert {k: getattr(made, k) for k in ProgramRun.__slots__} == {
        k: getattr(started, k) for k in ProgramRun.__slots__
    }
