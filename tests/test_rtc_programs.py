"""Programs on the real-time qubit controller (``QUB:PROG?``, qnode RTC protocol v1): one
transaction per program, the same physics and simulated time as the single commands, and a
malformed program refused whole, naming the operation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from qcodes.instrument import Instrument

from control.backend import open_network
from control.node import NodeController, NodeInstruments, cardinal_states
from control.orchestrator import Orchestrator
from drivers.errors import InstrumentReplyError, InstrumentValueError
from drivers.qnode_rtc import MAX_PROGRAM_OPS, QubitProgram
from sequences.attempt_loop import AttemptLoop, NodeOptics
from sim_backend.instruments.scpi import Call

TWO_NODE = Path(__file__).parents[1] / "lab_configs" / "two_node.network.yaml"
CHAIN = Path(__file__).parents[1] / "lab_configs" / "three_node_chain.network.yaml"


@pytest.fixture
def lab():
    network = open_network(TWO_NODE, seed=5)
    yield network
    network.close()
    Instrument.close_all()


class _Sent:
    """The messages a driver sent: the library's writes on the driver's session."""

    def __init__(self, spy, session) -> None:
        self.spy, self.session = spy, session

    @property
    def messages(self) -> list[str]:
        calls = self.spy.call_args_list
        return [c.args[1].decode().rstrip("\n") for c in calls if c.args[0] == self.session]

    @property
    def call_count(self) -> int:
        return len(self.messages)


def _sent(mocker, rtc):
    handle = rtc.visa_handle
    spy = vars(handle.visalib).get("write")  # the lab's drivers share one library
    if not hasattr(spy, "call_args_list"):  # (not spied on yet)
        spy = mocker.spy(handle.visalib, "write")
    return _Sent(spy, handle.session)


def _run_on_a_fresh_lab(mocker, by_program: bool) -> tuple[list, np.ndarray, int]:
    """The same operations on bob's qubits, command by command or as programs, on a lab
    with a fixed seed; returns (readouts and clock per shot, final state, messages sent)."""
    network = open_network(TWO_NODE, seed=5)
    try:
        rtc = network.instrument("bob", "qubit_controller")
        sent = _sent(mocker, rtc)
        shots = []
        for shot in range(40):
            angle = 0.3 + 0.1 * shot
            if by_program:
                program = (
                    QubitProgram()
                    .init(0)
                    .init(1)
                    .rotate(0, "X", angle)
                    .gate("CNOT", 0, 1)
                    .gate("H", 0)
                    .wait(1e-3)
                    .measure(0, "Z")
                    .measure(1, "X")
                )
                result = rtc.run_program(program)
                shots.append((result.readouts, result.time_s))
            else:
                rtc.initialize(0)
                rtc.initialize(1)
                rtc.rotate(0, "X", angle)
                rtc.gate("CNOT", 0, 1)
                rtc.gate("H", 0)
                rtc.wait(1e-3)
                readouts = (rtc.measure(0, "Z"), rtc.measure(1, "X"))
                shots.append((readouts, network.simulated_lab.lab.clock.now))
        lab = network.simulated_lab.lab
        state = lab.density_matrix([lab.node("bob").qubit(0), lab.node("bob").qubit(1)])
        return shots, state, sent.call_count
    finally:
        network.close()
        Instrument.close_all()


def test_a_program_is_one_transaction_with_the_physics_of_single_commands(mocker) -> None:
    single, single_state, single_sent = _run_on_a_fresh_lab(mocker, by_program=False)
    programmed, programmed_state, programmed_sent = _run_on_a_fresh_lab(mocker, by_program=True)
    # the same seed gives the same outcomes, the same clock and the same state
    assert [r for r, _ in programmed] == [r for r, _ in single]
    np.testing.assert_allclose([t for _, t in programmed], [t for _, t in single], rtol=1e-9)
    np.testing.assert_allclose(programmed_state, single_state, atol=1e-12)
    assert len({r for r, _ in single}) > 1  # the outcomes do vary
    # one message on the wire per program, no error-queue round trip after it; the single
    # commands took 8 transactions and 6 error-queue queries per shot
    assert programmed_sent == 40
    assert single_sent == 40 * (8 + 6)


def test_a_program_takes_the_operation_times_of_its_operations(lab) -> None:
    network = lab
    rtc = network.instrument("alice", "qubit_controller")
    times = network.simulated_lab.lab.params.nodes["alice"].operation_times
    before = rtc.time_s()
    program = QubitProgram().init(1).rotate(1, "Y", 1.0).gate("SWAP", 0, 1).wait(2e-3).measure(0)
    result = rtc.run_program(program)
    expected = (
        times.init_us + times.single_qubit_gate_us + 3 * times.two_qubit_gate_us + times.readout_us
    ) * 1e-6 + 2e-3
    assert result.time_s - before == pytest.approx(expected, rel=1e-9)
    assert rtc.time_s() == pytest.approx(result.time_s, abs=1e-12)


@pytest.mark.parametrize(
    ("program", "code", "names"),
    [
        ('"INIT 0|ROT 0,Q,1"', -224, ["operation 2 'ROT 0,Q,1'", "expected one of X, Y, Z"]),
        ('"INIT 0|FLIP 1"', -113, ["operation 2 'FLIP 1'", "expected INIT q | ROT"]),
        ('"GATE CNOT,0"', -109, ["operation 1 'GATE CNOT,0'", "CNOT takes 2"]),
        ('"MEAS 7,Z"', -222, ["operation 1 'MEAS 7,Z'", "outside 0..1"]),
        ('"WAIT -1"', -222, ["operation 1 'WAIT -1'", "outside 0..3600"]),
        ('"GATE SWAP,1,1"', -224, ["operation 1", "two different qubits"]),
        ("", -109, ["expected [<shot>,]'<op>|<op>|...'"]),
        ('"' + "|".join(["WAIT 0"] * (MAX_PROGRAM_OPS + 1)) + '"', -224, ["expected 1..64"]),
    ],
)
def test_a_malformed_program_is_refused_whole_naming_the_operation(
    lab, program: str, code: int, names: list[str]
) -> None:
    rtc = lab.instrument("alice", "qubit_controller")
    physics = lab.simulated_lab.lab
    qubit = physics.node("alice").qubit(0)
    rtc.initialize(0)
    before = (rtc.time_s(), physics.density_matrix([qubit]).copy())
    reply = rtc.ask(f"QUB:PROG? {program}".strip())
    assert reply.startswith(f"{code},")
    for name in names:
        assert name in reply, reply
    # nothing ran, and the refusal is in the reply, not left in the error queue
    assert rtc.time_s() == before[0]
    np.testing.assert_array_equal(physics.density_matrix([qubit]), before[1])
    assert rtc.read_error_queue() == []


def test_the_driver_refuses_a_bad_operation_before_sending_and_names_it(lab, mocker) -> None:
    rtc = lab.instrument("alice", "qubit_controller")
    sent = _sent(mocker, rtc)
    cases = [
        (QubitProgram().init(0).rotate(5, "X", 1.0), "operation 2 ('ROT', 5, 'X', 1.0): qubit 5"),
        (QubitProgram().measure(0, "W"), "operation 1 ('MEAS', 0, 'W'): axis 'W' invalid"),
        (QubitProgram().gate("CNOT", 1, 1), "needs two different qubits"),
        (QubitProgram().wait(-1.0), "wait -1.0 s out of range"),
        (QubitProgram().rotate(0, "X", math.nan), "angle nan is not finite"),
        (QubitProgram(), "program of 0 operations, expected 1..64"),
        (QubitProgram().init([1]), "qubit [1] out of range"),
    ]
    for program, text in cases:
        with pytest.raises(InstrumentValueError) as info:
            rtc.run_program(program)
        assert str(info.value).startswith("alice_rtc (qnode RTC v1)") or "qnode RTC v1" in str(
            info.value
        )
        assert text in str(info.value)
    assert sent.call_count == 0


def test_an_error_reply_names_instrument_command_and_reason(lab, mocker) -> None:
    rtc = lab.instrument("alice", "qubit_controller")
    mocker.patch.object(
        rtc, "_query", return_value="-222,\"Data out of range;operation 1 'MEAS 0,Z': no\""
    )
    with pytest.raises(InstrumentReplyError) as info:
        rtc.run_program(QubitProgram().measure(0))
    text = str(info.value)
    assert "qnode RTC v1" in text and 'QUB:PROG? "MEAS 0,Z"' in text
    assert "error -222" in text and "operation 1 'MEAS 0,Z'" in text
    for garbled in ("0,1e-3", "0,abc,1", "0,1e-3,2", "maybe"):
        mocker.patch.object(rtc, "_query", return_value=garbled)
        with pytest.raises(InstrumentReplyError, match="expected 0,<time_s>"):
            rtc.run_program(QubitProgram().measure(0))


def test_every_step_of_a_teleportation_is_one_transaction(mocker) -> None:
    network = open_network(CHAIN, seed=3)
    try:
        optics = NodeOptics(converter_pump_mw=500.0, converter_temperature_c=55.0)
        nodes = {
            n: NodeController(n, NodeInstruments.of(network, n), optics)
            for n in network.loaded.config.nodes
        }
        chain = Orchestrator(network, nodes, AttemptLoop(alpha=0.1, max_attempts=0))
        chain.prepare()
        # a first shot uploads the attempt loop and sets its herald timeout (once per node)
        chain.teleport_over_chain("alice", "bob", "charlie", 0, cardinal_states()[0])
        sent = {n: _sent(mocker, node.instruments.qubits) for n, node in nodes.items()}
        shots = 12
        for shot in range(shots):
            chain.teleport_over_chain("alice", "bob", "charlie", shot, cardinal_states()[shot % 6])
        messages = {n: spy.messages for n, spy in sent.items()}
        # the shot runs on the controllers, one program each: alice starts hers (attempt
        # loop, both messages, feed-forward, readout) and reads it; bob starts his (two
        # loops, memory swap, BSM, messages) and reads it; charlie's runs in one
        # transaction (loop, message, preparation, BSM, message)
        assert {n: len(m) for n, m in messages.items()} == {
            "alice": 2 * shots,
            "bob": 2 * shots,
            "charlie": 1 * shots,
        }
        assert not any(
            "SYST:ERR?" in m or "SYST:TIME?" in m for ms in messages.values() for m in ms
        )
    finally:
        network.close()
        Instrument.close_all()


def _deferred_or_not(mocker, defer: bool) -> tuple[list[int], float, int]:
    network = open_network(TWO_NODE, seed=9)
    try:
        node = NodeController("alice", NodeInstruments.of(network, "alice"))
        sent = _sent(mocker, node.instruments.qubits)
        outcomes = []
        for shot in range(30):
            node.prepare_input(1, 1.0 + 0.05 * shot, 0.3)
            node.wait(2e-3, defer=defer)
            outcomes.append(node.measure_along(1, 1.0 + 0.05 * shot, 0.3))
        return outcomes, node.last_step_s(), sent.call_count
    finally:
        network.close()
        Instrument.close_all()


def test_a_deferred_wait_opens_the_next_step_with_the_same_physics(mocker) -> None:
    """A classical message's wait run as the first operation of the receiver's next program
    gives the same outcomes and clock as a wait of its own, one transaction fewer."""
    immediate, clock, sent = _deferred_or_not(mocker, defer=False)
    deferred, clock_deferred, sent_deferred = _deferred_or_not(mocker, defer=True)
    assert deferred == immediate and 0 < sum(immediate) < len(immediate)
    assert clock_deferred == pytest.approx(clock, rel=1e-12)
    assert (sent, sent_deferred) == (90, 60)


def test_a_deferred_wait_survives_a_step_refused_before_sending(lab) -> None:
    node = NodeController("alice", NodeInstruments.of(lab, "alice"))
    before = node.now_s()
    node.wait(1e-3, defer=True)
    with pytest.raises(InstrumentValueError, match="qubit 9 out of range"):
        node.measure_along(9, 0.0, 0.0)
    assert node.now_s() == pytest.approx(before + 1e-3, abs=1e-12)  # run when next asked


def test_only_initialisation_programs_are_sent_again_after_a_fault(lab) -> None:
    rtc = lab.instrument("alice", "qubit_controller")
    assert rtc.is_repeatable('QUB:PROG? "INIT 0|INIT 1"')
    for acts in ('QUB:PROG? "INIT 0|MEAS 0,Z"', 'QUB:PROG? "WAIT 1e-06"', 'QUB:PROG? ""'):
        assert not rtc.is_repeatable(acts)
    assert rtc.is_repeatable("ENT:RES? bob") and not rtc.is_repeatable("QUB:GATE H,0")


def test_a_program_compiles_once_whatever_batch_it_comes_in(lab) -> None:
    """The same program text is one compiled object in every batch (and twice in one), so
    what the real-time network derives per program serves all its runs."""
    hw = lab.simulated_lab
    sim = hw.instruments[hw.nodes["alice"].qubit_controller]
    first = sim.compile_programs(Call("QUB:PROG", '"INIT 0|MEAS 0,Z","INIT 1"', True, ()))[1]
    shot, later = sim.compile_programs(
        Call("QUB:PROG", '5,"INIT 1","INIT 0|MEAS 0,Z","INIT 1"', True, ())
    )
    assert shot == 5 and len(later) == 3
    assert later[0] is later[2] is first[1] and later[1] is first[0]
    assert [op[0] for op in later[1][0]] == ["init", "measure"]
