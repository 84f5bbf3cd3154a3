"""The orchestrator driving node controllers through their ZeroMQ RPC servers (one server
per node, loopback TCP), exactly as it drives them in-process."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from qcodes.instrument import Instrument

from control.backend import open_network
from control.node import NodeController, NodeInstruments, cardinal_states
from control.node_service import RemoteNode, serve_node
from control.orchestrator import Orchestrator
from control.rpc import RpcError
from sequences.attempt_loop import AttemptLoop, NodeOptics

CHAIN = Path(__file__).parents[1] / "lab_configs" / "three_node_chain.network.yaml"
OPTICS = NodeOptics(converter_pump_mw=500.0, converter_temperature_c=55.0)


@pytest.fixture
def remote_chain():
    network = open_network(CHAIN, seed=5)
    servers, remotes = [], {}
    for name in network.loaded.config.nodes:
        controller = NodeController(name, NodeInstruments.of(network, name), OPTICS)
        server = serve_node(controller, "tcp://127.0.0.1:*")
        server.start()
        servers.append(server)
        remotes[name] = RemoteNode(name, server.endpoint)
    orchestrator = Orchestrator(network, remotes, AttemptLoop(alpha=0.1, max_attempts=0))
    orchestrator.prepare()
    yield orchestrator
    for remote in remotes.values():
        remote.close()
    for server in servers:
        server.stop()
    network.close()
    Instrument.close_all()


def test_teleportation_over_rpc_agrees_with_the_simulated_state(remote_chain) -> None:
    states = cardinal_states()
    shots = [
        remote_chain.teleport_over_chain("alice", "bob", "charlie", i, states[i % 6])
        for i in range(120)
    ]
    qubit = remote_chain.network.simulated_lab.lab.params.nodes["alice"].communication_qubit
    exact = np.array([s.exact_fidelity for s in shots])
    expected = float(np.mean(exact * qubit.readout_f0 + (1 - exact) * (1 - qubit.readout_f1)))
    measured = float(np.mean([s.correct for s in shots]))
    assert abs(measured - expected) <= 3 * math.sqrt(expected * (1 - expected) / 120) + 0.01


def test_remote_errors_name_the_node_and_method(remote_chain) -> None:
    bob = remote_chain.nodes["bob"]
    with pytest.raises(RpcError) as info:
        bob.move_to_memory("no-such-pair")
    message = str(info.value)
    assert "move_to_memory" in message and "no pair 'no-such-pair'" in message
    with pytest.raises(RpcError, match="basis"):
        bob.measure_pair("x", "W")


def test_shot_programs_over_rpc_are_validated(remote_chain) -> None:
    """A shot program crosses the wire as operation lists: an unknown operation or a
    missing shot is refused naming it; a program the driver refuses names the operation."""
    from control.node_service import ProgramArgs
    from drivers.qubit_program import QubitProgram

    with pytest.raises(ValueError, match="operation 2 .*expected \\[kind, args...\\]"):
        ProgramArgs(ops=[["INIT", 0], ["FLIP", 1]])
    args = ProgramArgs(ops=[["ENT", "bob"], ["SEND", "bob", [0, 1]], ["PAULI", 0, [0], []]])
    assert args.program().ops == [("ENT", "bob"), ("SEND", "bob", (0, 1)), ("PAULI", 0, (0,), ())]
    alice = remote_chain.nodes["alice"]
    with pytest.raises(RpcError, match="shot: missing"):
        alice._call("start_programs", programs=[{"ops": [["INIT", 0]]}], first_shot=None)
    with pytest.raises(RpcError, match="operation 1 .*bits"):
        alice.run_shot_programs([QubitProgram().pauli(0, (3,), ())], first_shot=4)
    (result,) = alice.run_shot_programs([QubitProgram().init(0).measure(0)], first_shot=5)
    assert result.aborted is None and len(result.readouts) == 1


def test_a_teleport_batch_over_rpc(remote_chain) -> None:
    states = cardinal_states()
    records = remote_chain.teleport_batch(
        "alice", "bob", "charlie", [(i, states[i % 6]) for i in range(10)]
    )
    assert [r.shot for r in records] == list(range(10))
    assert all(r.exact_fidelity is not None and r.attempts_ab >= 1 for r in records)
