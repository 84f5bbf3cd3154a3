"""The real-time qubit controller driver against the simulated lab: its operations act on
the simulated qubits, take simulated time, and report heralds of the attempt loop."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from qcodes.instrument import Instrument

from control.backend import open_network
from sequences.attempt_loop import (
    AttemptLoop,
    NodeOptics,
    prepare_node,
    prepare_station,
    run_attempt_loops,
)

TWO_NODE = Path(__file__).parents[1] / "lab_configs" / "two_node.network.yaml"


@pytest.fixture
def net():
    network = open_network(TWO_NODE)
    yield network
    network.close()
    Instrument.close_all()


def test_pi_rotation_flips_the_spin_up_to_readout_fidelity(net) -> None:
    rtc = net.instrument("alice", "qubit_controller")
    f1 = net.simulated_lab.lab.params.nodes["alice"].communication_qubit.readout_f1
    shots = 400
    ones = 0
    for _ in range(shots):
        rtc.initialize(0)
        rtc.rotate(0, "X", math.pi)
        ones += rtc.measure(0, "Z")
    # init error 1%, gate depolarising 0.1%, F1: P(read 1) ~ 0.99 * F1
    expected = 0.99 * f1 + 0.01 * (
        1 - net.simulated_lab.lab.params.nodes["alice"].communication_qubit.readout_f0
    )
    assert abs(ones / shots - expected) <= 3 * math.sqrt(expected * (1 - expected) / shots) + 0.005


def test_swap_moves_the_state_into_the_memory(net) -> None:
    rtc = net.instrument("bob", "qubit_controller")
    assert rtc.qubit_count() == 2
    rtc.initialize(0)
    rtc.initialize(1)
    rtc.rotate(0, "X", math.pi)
    rtc.gate("SWAP", 0, 1)
    lab = net.simulated_lab.lab
    bob = lab.node("bob")
    rho_mem = lab.density_matrix([bob.qubit(1)])
    rho_comm = lab.density_matrix([bob.qubit(0)])
    assert rho_mem[1, 1].real > 0.9 and rho_comm[0, 0].real > 0.9


def test_operations_take_simulated_time(net) -> None:
    rtc = net.instrument("alice", "qubit_controller")
    times = net.simulated_lab.lab.params.nodes["alice"].operation_times
    t0 = rtc.time_s()
    rtc.gate("CNOT", 0, 1)
    rtc.wait(0.25)
    assert rtc.time_s() - t0 == pytest.approx(times.two_qubit_gate_us * 1e-6 + 0.25)


def test_herald_record_matches_the_attempt_loop(net) -> None:
    for node in ("alice", "bob"):
        prepare_node(
            NodeOptics(converter_pump_mw=500.0, converter_temperature_c=55.0),
            net.instrument(node, "laser"),
            net.instrument(node, "optical_switch"),
            net.instrument(node, "microwave"),
            net.instrument(node, "frequency_converter"),
        )
    prepare_station(
        net.instrument("h_ab", "detectors"),
        net.instrument("h_ab", "time_tagger"),
        (1, 2),
        (1, 2),
        9.0,
    )
    loop = AttemptLoop(alpha=0.1, max_attempts=0, stop_at_herald=True)
    run_attempt_loops([net.instrument("alice", "awg"), net.instrument("bob", "awg")], loop)
    run = net.simulated_lab.runs[-1]
    for node, peer in (("alice", "bob"), ("bob", "alice")):
        record = net.instrument(node, "qubit_controller").last_herald(peer)
        assert record.heralded and record.bell_state == run.last_bell_state
        assert record.attempts == run.attempts > 0
        assert record.clicks == "".join(run.last_clicks)
    # the heralded pair sits on the two communication qubits
    lab = net.simulated_lab.lab
    from sim_backend.physics.states import BELL_STATES, fidelity_to_pure

    rho = lab.density_matrix([lab.node("alice").qubit(0), lab.node("bob").qubit(0)])
    assert fidelity_to_pure(rho, BELL_STATES[run.last_bell_state]) > 0.6
