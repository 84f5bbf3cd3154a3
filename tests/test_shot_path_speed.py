"""The lean per-shot path of a teleportation batch keeps what it returns and publishes: program
replies read in one pass into the same ``ProgramResult``/``Herald`` values the dataclasses'
own ``__init__`` builds (with the full parse deciding anything else), records built without
the frozen dataclass ``__init__``, a batch's repeated programs encoded once, and the events of
each shot in their order when a subscriber listens.

No wall-clock limits here: ``benchmarks/teleport_throughput.py`` measures the speed."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pytest
from qcodes.instrument import Instrument

from control.backend import open_network
from control.chain_shots import TeleportShot
from control.events import EventPublisher
from control.node import cardinal_states
from control.runs import build_orchestrator
from drivers.errors import InstrumentReplyError
from drivers.qnode_rtc_replies import complete_replies
from drivers.qubit_program import Herald, ProgramResult, QubitProgram
from sequences.attempt_loop import AttemptLoop

CHAIN = Path(__file__).parents[1] / "lab_configs" / "three_node_chain.network.yaml"


class _Recorder(EventPublisher):
    """An event publisher without a socket: it keeps what would be published."""

    def __init__(self) -> None:
        self.published: list[tuple[str, dict]] = []

    def publish(self, kind: str, **data) -> None:
        self.published.append((kind, data))


@pytest.fixture(scope="module")
def chain():
    network = open_network(CHAIN, seed=7)
    orchestrator = build_orchestrator(network, AttemptLoop(alpha=0.1, max_attempts=0))
    orchestrator.prepare()
    yield orchestrator
    network.close()
    Instrument.close_all()


def test_a_complete_batch_reply_gives_the_values_init_would_build() -> None:
    parts = ["0,0.5,PSI-:12:0.25,F0.75,1", "0,0.75,NONE:40:0.5,F-,0,1", "0,1e-3,PHI+:1:0.5"]
    results = complete_replies(parts, [(1, 1, 1), (2, 1, 1), (0, 1, 0)])
    expected = [
        ProgramResult((1,), 0.5, (Herald("PSI-", 12, 0.25),), None, (0.75,)),
        ProgramResult((0, 1), 0.75, (Herald(None, 40, 0.5),), None, (None,)),
        ProgramResult((), 1e-3, (Herald("PHI+", 1, 0.5),), None, ()),
    ]
    assert results == expected
    for got, want in zip(results, expected, strict=True):
        assert type(got) is ProgramResult and repr(got) == repr(want)
        assert hash(got) == hash(want) and dataclasses.asdict(got) == dataclasses.asdict(want)
        assert pickle.loads(pickle.dumps(got)) == want
        with pytest.raises(dataclasses.FrozenInstanceError):
            got.time_s = 0.0  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            got.heralds[0].attempts = 0  # type: ignore[misc]


@pytest.mark.parametrize(
    "parts",
    [
        ["0,0.5,PSI-:12:0.25,1", "1,0.5,1,NONE:40:0.5"],  # an aborted program
        ["0,0.5,PSI-:12:0.25,1", "0,0.5,PSI-:12:0.25"],  # a readout missing
        ["0,0.5,1,PSI-:12:0.25", "0,0.5,WHAT:1:1,0"],  # an unknown bell state
        ["0,0.5,PSI-:x:0.25,1", "0,0.5,PSI-:1:0.25,01"],  # not numbers, not a bit
        ["0,0.5,PSI-:1:0.25,1", " 0,0.5,PSI-:1:0.25,1"],  # white space before the status
    ],
)
def test_anything_else_is_left_to_the_full_parse(chain, parts) -> None:
    alice = chain.network.instrument("alice", "qubit_controller")
    assert complete_replies(parts, [(1, 1, 0)] * len(parts)) is None
    program = QubitProgram().entangle("bob").measure(0)
    expected = []
    for part in parts:  # one program at a time: the per-program parse
        try:
            expected.append(alice._one_reply(part, (1, 1, 0), "QUB:PROG:RES?"))
        except InstrumentReplyError as exc:
            expected.append(str(exc))
    alice._query = lambda command: ";".join(parts)
    try:
        got = alice.program_results([program] * len(parts))
    except InstrumentReplyError as exc:
        got = str(exc)
        assert got in expected  # the first program the full parse refuses, named the same
    else:
        assert got == expected
    finally:
        del alice._query


def test_a_record_is_the_frozen_dataclass_it_was(chain) -> None:
    values = dict(
        shot=3,
        input_state="+X",
        outcome=1,
        correct=0,
        attempts_ab=5,
        attempts_bc=7,
        swap_outcomes=(0, 1),
        bsm_outcomes=(1, 1),
        delivered_time_s=0.25,
        exact_fidelity=None,
    )
    record = TeleportShot(**values)
    assert record == TeleportShot(*values.values())
    assert dataclasses.asdict(record) == values
    assert repr(record).startswith("TeleportShot(shot=3, input_state='+X', outcome=1,")
    assert dataclasses.replace(record, outcome=0).outcome == 0
    assert pickle.loads(pickle.dumps(record)) == record and hash(record) == hash(
        TeleportShot(**values)
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.outcome = 0  # type: ignore[misc]
    with pytest.raises(TypeError):
        TeleportShot(**{**values, "unknown": 1})


def test_a_batch_of_repeated_programs_is_sent_as_each_one_alone(chain) -> None:
    bob = chain.network.instrument("bob", "qubit_controller")
    first, second = QubitProgram().init(0).measure(0), QubitProgram().init(1).entangle("alice")
    programs = [first, second, first, first, second]
    text, shapes = bob._batch(programs)
    alone = [bob._program_text(p) for p in programs]
    assert text == ",".join(t for t, _ in alone) and shapes == [s for _, s in alone]
    assert text.startswith('"INIT 0|MEAS 0,Z","INIT 1|ENT alice",')


def test_the_events_of_each_shot_come_in_order_with_its_record(chain) -> None:
    states = cardinal_states()
    quiet = chain.teleport_batch("alice", "bob", "charlie", [(i, states[i]) for i in range(2)])
    assert [r.shot for r in quiet] == [0, 1]
    chain.events = _Recorder()
    try:
        shots = [(10 + i, states[i % 6]) for i in range(5)]
        records = chain.teleport_batch("alice", "bob", "charlie", shots)
        published = chain.events.published
    finally:
        chain.events = None
    assert [k for k, _ in published] == ["herald", "herald", "swap", "shot"] * 5
    for record, k in zip(records, range(0, 20, 4), strict=True):
        (_, ab), (_, bc), (_, swap), (_, shot) = published[k : k + 4]
        tag = ab["pair"].rsplit("#", 1)[1]
        assert ab == {
            "link": "alice-bob",
            "pair": f"alice-bob#{tag}",
            "bell": ab["bell"],
            "attempts": record.attempts_ab,
        }
        assert bc["link"] == "bob-charlie" and bc["attempts"] == record.attempts_bc
        assert bc["pair"] == f"bob-charlie#{tag}"
        assert swap == {
            "node": "bob",
            "pair": f"alice-charlie#{tag}",
            "outcomes": list(record.swap_outcomes),
        }
        assert shot == {"shot": record.shot, "input": record.input_state, "correct": record.correct}
