"""Shot programs on the real-time controllers (qnode RTC protocol v1, network operations):
programs of one shot on several nodes meet at their attempt loops and messages, messages
take the classical delay, feed-forward acts on received bits, and a cut-off aborts the whole
shot; the teleportation over the chain runs as one program per node."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from qcodes.instrument import Instrument

from control.backend import open_network
from control.events import EventPublisher
from control.node import NodeController, NodeInstruments, cardinal_states
from control.orchestrator import Orchestrator
from drivers.errors import InstrumentReplyError, InstrumentValueError
from drivers.qubit_program import QubitProgram
from sequences.attempt_loop import AttemptLoop, NodeOptics
from sequences.chain_teleport import chain_teleport
from sequences.pauli_frame import PauliFrame
from sim_backend.physics.states import BELL_STATES, fidelity_to_pure

TWO_NODE = Path(__file__).parents[1] / "lab_configs" / "two_node.network.yaml"
CHAIN = Path(__file__).parents[1] / "lab_configs" / "three_node_chain.network.yaml"
OPTICS = NodeOptics(converter_pump_mw=500.0, converter_temperature_c=55.0)


def _orchestrator(path: Path, seed: int, loop: AttemptLoop | None = None) -> Orchestrator:
    network = open_network(path, seed=seed)
    nodes = {
        n: NodeController(n, NodeInstruments.of(network, n), OPTICS)
        for n in network.loaded.config.nodes
    }
    orchestrator = Orchestrator(network, nodes, loop or AttemptLoop(alpha=0.1, max_attempts=0))
    orchestrator.prepare()
    for node in nodes.values():
        node.load_loop(orchestrator.loop)
    return orchestrator


class _Recorder(EventPublisher):
    """An event publisher without a socket: it keeps what would be published."""

    def __init__(self) -> None:
        self.published: list[tuple[str, dict]] = []

    def publish(self, kind: str, **data) -> None:
        self.published.append((kind, data))


def _record_events(orchestrator: Orchestrator) -> list[tuple[str, dict]]:
    orchestrator.events = _Recorder()
    return orchestrator.events.published


@pytest.fixture
def pair_lab():
    orchestrator = _orchestrator(TWO_NODE, seed=21)
    yield orchestrator
    orchestrator.network.close()
    Instrument.close_all()


def _rtcs(orchestrator: Orchestrator):
    return (orchestrator.network.instrument(n, "qubit_controller") for n in ("alice", "bob"))


def test_two_programs_of_a_shot_meet_at_their_attempt_loop(pair_lab) -> None:
    alice, bob = _rtcs(pair_lab)
    hardware = pair_lab.network.simulated_lab
    alice.start_program(QubitProgram().entangle("bob"), shot=5)
    at_bob = bob.run_program(QubitProgram().entangle("alice"), shot=5)
    at_alice = alice.program_result(QubitProgram().entangle("bob"))
    (h_alice,), (h_bob,) = at_alice.heralds, at_bob.heralds
    assert h_alice == h_bob  # one attempt loop, seen by both controllers
    assert h_alice.bell_state in ("PSI+", "PSI-") and h_alice.attempts >= 1
    run = hardware.runs[-1]
    assert (run.attempts, run.heralds) == (h_alice.attempts, 1)
    assert run.ended_at_s == pytest.approx(h_alice.time_s, rel=1e-11)
    rho = hardware.lab.density_matrix(
        [hardware.lab.node("alice").qubit(0), hardware.lab.node("bob").qubit(0)]
    )
    assert fidelity_to_pure(rho, BELL_STATES[h_alice.bell_state]) > 0.7


def test_a_message_arrives_after_the_classical_delay_and_drives_the_feed_forward(
    pair_lab,
) -> None:
    alice, bob = _rtcs(pair_lab)
    lab = pair_lab.network.simulated_lab.lab
    delay = pair_lab.network.classical_delay_s("bob", "alice")
    for shot, angle in enumerate((0.0, np.pi, np.pi, 0.0)):
        receiver = QubitProgram().init(0).receive("bob", 1).pauli(0, (0,), ())
        alice.start_program(receiver, shot=100 + shot)
        sender = QubitProgram().init(0).rotate(0, "Y", angle).measure(0).send("alice", (0,))
        sent = bob.run_program(sender, shot=100 + shot)
        got = alice.program_result(receiver)
        (bit,) = sent.readouts
        # alice waited for the message, then applied X when bob's readout was 1
        assert got.time_s - sent.time_s >= delay - 1e-12
        assert got.time_s - sent.time_s == pytest.approx(delay, abs=1e-6)
        rho = lab.density_matrix([lab.node("alice").qubit(0)])
        assert rho[bit, bit].real > 0.95


def test_a_cut_off_aborts_every_program_of_the_shot(pair_lab) -> None:
    alice, bob = _rtcs(pair_lab)
    for rtc in (alice, bob):
        rtc.set_herald_timeout_s(7e-6)  # one attempt: a herald is unlikely
    waiting = QubitProgram().entangle("bob").receive("bob", 1).measure(0)
    alice.start_program(waiting, shot=7)
    at_bob = bob.run_program(QubitProgram().entangle("alice").measure(0), shot=7)
    at_alice = alice.program_result(waiting)
    for result in (at_alice, at_bob):
        assert result.aborted == 1 and result.readouts == ()
        (herald,) = result.heralds
        assert herald.bell_state is None and herald.attempts >= 1
    # a program of the aborted shot started later ends at once; a new shot runs
    late = alice.run_program(QubitProgram().measure(0).entangle("bob"), shot=7)
    assert late.aborted == 1
    fresh = alice.run_program(QubitProgram().init(0).measure(0), shot=8)
    assert fresh.aborted is None and len(fresh.readouts) == 1


def test_a_program_waiting_for_what_never_comes_is_reported_blocked(pair_lab) -> None:
    alice, _ = _rtcs(pair_lab)
    with pytest.raises(InstrumentReplyError, match=r"blocked at operation 2 'RECV bob,1'"):
        alice.run_program(QubitProgram().init(0).receive("bob", 1), shot=9)
    with pytest.raises(InstrumentReplyError, match="has not reached its attempt loop"):
        alice.run_program(QubitProgram().entangle("bob"), shot=10)


def test_malformed_network_operations_are_refused_naming_them(pair_lab) -> None:
    alice, _ = _rtcs(pair_lab)
    with pytest.raises(InstrumentValueError, match=r"operation 2 .*registers filled before"):
        alice.run_program(QubitProgram().measure(0).pauli(0, (1,), ()), shot=1)
    with pytest.raises(InstrumentValueError, match="peer 'b,ob' invalid"):
        alice.run_program(QubitProgram().entangle("b,ob"), shot=1)
    with pytest.raises(InstrumentValueError, match="message of 99 bits"):
        alice.run_program(QubitProgram().receive("bob", 99), shot=1)
    for text, why in [
        ('1,"MEAS 0,Z|SEND bob,r1"', "register r1 not filled yet"),
        ('1,"RECV bob,x"', "operation 1 'RECV bob,x'"),
        ('1,"PAULI 0,q2,0"', "expected r<i>^r<j>... or 0"),
        ('1,"ENT b|ob"', "operation 2 'ob'"),
    ]:
        reply = alice.ask(f"QUB:PROG:STAR? {text}")
        assert reply.startswith("-") and why in reply, reply
    assert "no program started" in alice.ask("QUB:PROG:RES?")  # refused: nothing started


def test_the_chain_programs_compute_the_feed_forward_of_the_protocol() -> None:
    """The register arithmetic of ``chain_teleport`` is the Pauli-frame algebra of
    ``sequences.pauli_frame`` (checked on every combination of heralds and outcomes)."""
    programs = chain_teleport("a", "b", "c", 1.0, 0.5)
    swap_x, swap_z = programs.swapper.ops[-1][2:]
    total_x, total_z = programs.sender.ops[-1][2:]
    rng = np.random.default_rng(1)
    for _ in range(64):
        f_ab, f_bc = (PauliFrame(*rng.integers(0, 2, 2)) for _ in range(2))
        m_ab, m_bc, m_in, m_pair = rng.integers(0, 2, 4)
        bob = [f_ab.x, f_ab.z, f_bc.x, f_bc.z, m_ab, m_bc]
        swap = PauliFrame(_xor(bob, swap_x), _xor(bob, swap_z))
        assert swap == f_ab + f_bc + PauliFrame.from_bell_measurement(m_ab, m_bc)
        charlie = [f_bc.x, f_bc.z, swap.x, swap.z, m_in, m_pair]
        total = PauliFrame(_xor(charlie, total_x), _xor(charlie, total_z))
        assert total == swap + PauliFrame.from_bell_measurement(m_in, m_pair)


def _xor(registers: list[int], bits: tuple[int, ...]) -> int:
    value = 0
    for r in bits:
        value ^= int(registers[r])
    return value


def test_teleportation_over_the_chain_matches_the_simulated_state_and_its_events() -> None:
    orchestrator = _orchestrator(CHAIN, seed=4)
    published = _record_events(orchestrator)
    try:
        states = cardinal_states()
        shots = [
            orchestrator.teleport_over_chain("alice", "bob", "charlie", i, states[i % 6])
            for i in range(180)
        ]
        exact = np.array([s.exact_fidelity for s in shots])
        qubit = orchestrator.network.simulated_lab.lab.params.nodes["alice"].communication_qubit
        expected = float(np.mean(exact * qubit.readout_f0 + (1 - exact) * (1 - qubit.readout_f1)))
        measured = float(np.mean([s.correct for s in shots]))
        sigma = np.sqrt(expected * (1 - expected) / len(shots))
        assert abs(measured - expected) <= 3 * sigma + 0.01
        assert exact.mean() > 0.55
        assert all(s.attempts_ab >= 1 and s.attempts_bc >= 1 for s in shots)
        kinds = [k for k, _ in published]
        assert kinds.count("shot") == kinds.count("swap") == 180
        assert kinds.count("herald") == 360
        assert not any(node.pairs for node in orchestrator.nodes.values())
    finally:
        orchestrator.network.close()
        Instrument.close_all()


def test_the_memory_cut_off_discards_old_pairs_and_the_shot_is_run_again() -> None:
    orchestrator = _orchestrator(CHAIN, seed=6)
    published = _record_events(orchestrator)
    try:
        # without a cut-off: how long the stored pair waits for its partner
        ages = []
        for i in range(40):
            orchestrator.teleport_over_chain("alice", "bob", "charlie", i, cardinal_states()[0])
        heralds = [d for k, d in published if k == "herald"]
        assert len(heralds) == 80
        runs = list(orchestrator.network.simulated_lab.runs)
        ages = [b.ended_at_s - a.ended_at_s for a, b in zip(runs[::2], runs[1::2], strict=True)]
        orchestrator.cutoff_s = float(np.median(ages))
        published.clear()
        shots = [
            orchestrator.teleport_over_chain("alice", "bob", "charlie", i, cardinal_states()[0])
            for i in range(30)
        ]
        discards = [d for k, d in published if k == "discard"]
        assert len(shots) == 30 and discards
        assert all(d["age_s"] > orchestrator.cutoff_s for d in discards)
    finally:
        orchestrator.network.close()
        Instrument.close_all()


def test_a_new_program_preempts_an_abandoned_one_and_its_shot(pair_lab) -> None:
    """A node controller that abandons a shot (a fault on another node) starts the next one
    on a controller whose program still waits: that program and its shot are aborted."""
    alice, bob = _rtcs(pair_lab)
    alice.start_program(QubitProgram().init(0).receive("bob", 1), shot=30)
    fresh = alice.run_program(QubitProgram().init(0).measure(0), shot=31)
    assert fresh.aborted is None and len(fresh.readouts) == 1
    late = bob.run_program(QubitProgram().init(0).send("alice"), shot=30)
    assert late.aborted == 1


def test_shot_programs_and_the_stepwise_protocol_give_the_same_physics() -> None:
    """The same seed through both ways of running a teleportation: the same heralds,
    outcomes and (to the time the messages take) the same delivered states; the shot
    programs' messages overlap with other nodes' work, so their shots never end later."""
    results = {}
    for shot_programs in (True, False):
        orchestrator = _orchestrator(CHAIN, seed=11)
        orchestrator.shot_programs = shot_programs
        try:
            states = cardinal_states()
            results[shot_programs] = [
                orchestrator.teleport_over_chain("alice", "bob", "charlie", i, states[i % 6])
                for i in range(60)
            ]
        finally:
            orchestrator.network.close()
            Instrument.close_all()
    programs, stepwise = results[True], results[False]
    for p, s in zip(programs, stepwise, strict=True):
        assert (p.outcome, p.attempts_ab, p.attempts_bc, p.swap_outcomes, p.bsm_outcomes) == (
            s.outcome,
            s.attempts_ab,
            s.attempts_bc,
            s.swap_outcomes,
            s.bsm_outcomes,
        )
        assert p.exact_fidelity == pytest.approx(s.exact_fidelity, abs=1e-4)
        assert p.delivered_time_s <= s.delivered_time_s + 1e-12


def test_program_replies_are_parsed_and_damaged_ones_refused(pair_lab, mocker) -> None:
    alice, _ = _rtcs(pair_lab)
    program = QubitProgram().entangle("bob").measure(0)
    cases = {
        "0,0.5,PSI-:12:0.25,1": ((1,), "PSI-", 12, None),
        "1,0.5,1,NONE:40:0.5": ((), None, 40, 1),
    }
    for reply, (readouts, bell, attempts, aborted) in cases.items():
        mocker.patch.object(alice, "_query", return_value=reply)
        result = alice.program_result(program)
        assert result.readouts == readouts and result.aborted == aborted
        assert (result.heralds[0].bell_state, result.heralds[0].attempts) == (bell, attempts)
    for garbled in ("0,0.5,1", "0,0.5,PSI-:x:1,1", "0,0.5,WHAT:1:1,0", "1,0.5", "2,0.5,1"):
        mocker.patch.object(alice, "_query", return_value=garbled)
        with pytest.raises(InstrumentReplyError, match="expected 0,<time_s>"):
            alice.program_result(program)


def test_the_teleport_run_takes_either_protocol_with_the_same_results() -> None:
    from control.runs import run_teleport

    runs = {
        stepwise: run_teleport(CHAIN, 40, seed=3, db_path=None, stepwise=stepwise)
        for stepwise in (False, True)
    }
    assert runs[False]["protocol"] == "shot programs" and runs[True]["protocol"] == "stepwise"
    assert runs[False]["fidelity_estimate"] == runs[True]["fidelity_estimate"]
    assert runs[False]["exact_fidelity_mean"] == pytest.approx(
        runs[True]["exact_fidelity_mean"], abs=1e-4
    )


def test_a_shot_is_required_where_programs_meet(pair_lab) -> None:
    """Network operations need the shot they belong to; feed-forward on the node's own
    readouts runs without one."""
    alice, _ = _rtcs(pair_lab)
    assert "the shot is missing" in alice.ask('QUB:PROG:STAR? "INIT 0"')
    assert "needs the shot it belongs to" in alice.ask('QUB:PROG? "ENT bob"')
    lab = pair_lab.network.simulated_lab.lab
    # X on qubit 0 when qubit 1 read 1: qubit 0 ends in the state qubit 1 was read in
    program = QubitProgram().init(0).init(1).rotate(1, "Y", np.pi).measure(1).pauli(0, (0,), ())
    result = alice.run_program(program)
    assert result.aborted is None
    rho = lab.density_matrix([lab.node("alice").qubit(0)])
    assert rho[result.readouts[0], result.readouts[0]].real > 0.95


def test_a_batch_runs_its_shots_in_order_across_the_controllers(pair_lab) -> None:
    """Programs of consecutive shots in one start: a controller's program of a shot starts
    only once no program of an earlier shot runs anywhere (the shots are synchronised)."""
    alice, bob = _rtcs(pair_lab)
    first = [QubitProgram().receive("bob", 0).wait(1e-3), QubitProgram().init(0)]
    alice.start_programs(first, first_shot=200)
    second = [QubitProgram().send("alice"), QubitProgram().wait(1e-6)]
    at_bob = bob.run_programs(second, first_shot=200)
    at_alice = alice.program_results(first)
    assert [r.aborted for r in at_alice + at_bob] == [None] * 4
    # bob's shot-201 program waited for alice's shot-200 program (its 1 ms wait) to end
    assert at_bob[1].time_s >= at_alice[0].time_s + 1e-6 - 1e-12
    assert at_alice[0].time_s >= at_bob[0].time_s + 1e-3
    replies = alice.ask("QUB:PROG:RES?").split(";")
    assert len(replies) == 2 and all(r.startswith("0,") for r in replies)


def test_a_teleport_batch_gives_the_shots_one_at_a_time_would() -> None:
    results = {}
    for batch in (1, 12):
        orchestrator = _orchestrator(CHAIN, seed=12)
        try:
            states = cardinal_states()
            shots = [(i, states[i % 6]) for i in range(36)]
            results[batch] = [
                record
                for start in range(0, 36, batch)
                for record in orchestrator.teleport_batch(
                    "alice", "bob", "charlie", shots[start : start + batch]
                )
            ]
        finally:
            orchestrator.network.close()
            Instrument.close_all()
    assert [r.shot for r in results[12]] == list(range(36))
    assert results[12] == results[1]


def test_cut_offs_in_a_batch_rerun_only_their_shots() -> None:
    loop = AttemptLoop(alpha=0.1, max_attempts=4000)  # most loops end without a herald
    orchestrator = _orchestrator(CHAIN, seed=13, loop=loop)
    published = _record_events(orchestrator)
    try:
        states = cardinal_states()
        records = orchestrator.teleport_batch(
            "alice", "bob", "charlie", [(i, states[i % 6]) for i in range(8)]
        )
        assert [r.shot for r in records] == list(range(8))
        cutoffs = [d for k, d in published if k == "cutoff"]
        assert cutoffs and all(d["max_attempts"] == 4000 for d in cutoffs)
        # attempts since the last a-b herald, and on b-c over every loop of the shot
        assert all(r.attempts_ab >= 1 and r.attempts_bc >= 1 for r in records)
        assert max(r.attempts_bc for r in records) > 4000
        assert all(r.exact_fidelity is not None for r in records)
    finally:
        orchestrator.network.close()
        Instrument.close_all()


def test_a_batched_run_stores_every_shot_and_absorbs_faults(tmp_path: Path) -> None:
    from control.runs import run_teleport
    from control.stored_runs import load_run, open_database

    plain = run_teleport(CHAIN, 40, seed=5, db_path=None, batch=1)
    batched = run_teleport(CHAIN, 40, seed=5, db_path=None, batch=8)
    assert batched["batch"] == 8 and batched["fidelity_estimate"] == plain["fidelity_estimate"]
    plan = tmp_path / "faults.yaml"
    # charlie_rtc's 8th message is the third batch's program transaction (after *IDN?,
    # QUB:COUN?, its set-up and two batches)
    plan.write_text("seed: 3\nfaults:\n  - {instrument: charlie_rtc, kind: timeout, at: [8]}\n")
    db = tmp_path / "runs.db"
    summary = run_teleport(CHAIN, 40, seed=5, db_path=db, batch=8, faults=plan)
    assert summary["aborted"] is None and summary["shots"] == 40
    assert summary["faults"]["abandoned_shots"] >= 1  # a batch met a fault and ran again
    conn = open_database(db, create=False, writer=False)
    try:
        table = load_run(conn, summary["run_id"]).table_name
        stored = [r[0] for r in conn.execute(f'SELECT shot FROM "{table}" ORDER BY shot')]
    finally:
        conn.close()
    assert stored == list(range(40))
    with pytest.raises(ValueError, match="batch=0: expected 1..64"):
        run_teleport(CHAIN, 5, db_path=None, batch=0)
