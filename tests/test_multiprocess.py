"""One process per node over TCP on loopback, sharing one simulated lab (`qnode simlab`),
as a real network runs one PC per node: teleportation end to end, and a peer that dies."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from control.local_processes import LocalProcessError, local_node_processes
from control.runs import run_teleport

ROOT = Path(__file__).parents[1]
CHAIN = ROOT / "lab_configs" / "three_node_chain.network.yaml"
NODES = ("alice", "bob", "charlie")
CHAIN_FILE = CHAIN  # the secured copy the processes run (set by the fixture)


@pytest.fixture
def secured_chain(tmp_path: Path) -> Path:
    """The chain's files with CURVE keys configured and generated (`qnode keygen`)."""
    import shutil

    import yaml

    for f in CHAIN.parent.glob("*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    network = tmp_path / CHAIN.name
    data = yaml.safe_load(network.read_text())
    data["security"] = {"keys_dir": "keys"}
    network.write_text(yaml.safe_dump(data))
    keygen = subprocess.run(
        [sys.executable, "-m", "control.cli", "keygen", "--config", str(network)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert keygen.returncode == 0, keygen.stdout + keygen.stderr
    assert (tmp_path / "keys" / "allowed" / "orchestrator.key").exists()
    return network


@pytest.fixture
def network_processes(tmp_path: Path, secured_chain: Path):
    global CHAIN_FILE
    CHAIN_FILE = secured_chain
    with local_node_processes(secured_chain, tmp_path / "processes") as running:
        yield running.port_map, running.endpoints, running.processes


def test_teleportation_with_one_process_per_node(network_processes) -> None:
    port_map, endpoints, procs = network_processes
    summary = run_teleport(
        CHAIN_FILE, 40, remote_nodes=endpoints, simlab=port_map, db_path=None, node_timeout_s=20.0
    )
    assert summary["shots"] == 40 and summary["aborted"] is None
    low, high = summary["fidelity_ci95"]
    assert low <= summary["exact_fidelity_mean"] <= high + 0.1
    assert summary["safe_state_failures"] == {}
    # a loop with a cut-off on time crosses to the node processes (their controllers set
    # their real-time controllers' herald timeout in the shared simulated lab); the run
    # completes
    cut = run_teleport(
        CHAIN_FILE,
        6,
        remote_nodes=endpoints,
        simlab=port_map,
        db_path=None,
        node_timeout_s=20.0,
        max_time_us=3000.0,
    )
    assert cut["shots"] == 6 and cut["aborted"] is None
    assert cut["attempt_loop"]["max_time_us"] == 3000.0
    # a node process stops cleanly when asked
    procs["charlie"].send_signal(signal.SIGTERM)
    assert procs["charlie"].wait(timeout=30) == 0


def test_a_peer_that_dies_mid_run_ends_it_cleanly(network_processes) -> None:
    """Bob's process is killed during a run: the run stops with a message naming Bob's
    endpoint, keeps the shots it completed, and makes the other nodes' instruments safe."""
    import threading

    port_map, endpoints, procs = network_processes
    done_shots: list[int] = []
    result: dict = {}

    def run() -> None:
        result.update(
            run_teleport(
                CHAIN_FILE,
                100_000,
                remote_nodes=endpoints,
                simlab=port_map,
                db_path=None,
                node_timeout_s=1.0,
                progress=done_shots.append,
            )
        )

    runner = threading.Thread(target=run)
    runner.start()
    deadline = time.monotonic() + 60
    while len(done_shots) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    procs["bob"].kill()
    runner.join(timeout=120)
    assert not runner.is_alive()
    assert result["aborted"] and endpoints["bob"] in result["aborted"]
    assert result["shots"] >= 5 and not result["complete"]
    failures = result["safe_state_failures"]
    assert set(failures) == {"bob"}  # alice, charlie and the stations reached their safe state


def test_a_node_that_does_not_answer_at_start_is_named(network_processes) -> None:
    from control.rpc import RpcTimeout

    port_map, endpoints, procs = network_processes
    procs["bob"].kill()
    procs["bob"].wait(timeout=10)
    with pytest.raises(RpcTimeout) as info:
        run_teleport(
            CHAIN_FILE, 3, remote_nodes=endpoints, simlab=port_map, db_path=None, node_timeout_s=1.0
        )
    assert endpoints["bob"] in str(info.value) and "hello" in str(info.value)


def test_a_node_refuses_an_orchestrator_whose_key_it_does_not_know(
    network_processes, tmp_path: Path
) -> None:
    """The nodes run with CURVE: a client with its own, unknown key pair gets no answer,
    and a plaintext client none either; the configured orchestrator still gets through."""
    from control.node_service import RemoteNode
    from control.rpc import RpcTimeout
    from control.security import Security, generate_keypair

    _, endpoints, _ = network_processes
    keys = CHAIN_FILE.parent / "keys"
    _, intruder_secret = generate_keypair(tmp_path / "intruder", "intruder")
    intruder = Security(
        client_secret_key_file=intruder_secret, server_public_key_file=keys / "alice.key"
    )
    with pytest.raises(RpcTimeout):
        RemoteNode("alice", endpoints["alice"], timeout_s=1.0, security=intruder)
    with pytest.raises(RpcTimeout):
        RemoteNode("alice", endpoints["alice"], timeout_s=1.0, security=Security(plaintext=True))
    allowed = Security(
        client_secret_key_file=keys / "orchestrator.key_secret",
        server_public_key_file=keys / "alice.key",
    )
    node = RemoteNode("alice", endpoints["alice"], timeout_s=5.0, security=allowed)
    assert node.qubit_count() == 2
    node.close()


def test_without_keys_plaintext_must_be_asked_for() -> None:
    from control.keys import orchestrator_security
    from control.network_config import NetworkConfigError, load_network

    loaded = load_network(CHAIN)
    with pytest.raises(NetworkConfigError, match="pass --plaintext for a local dry run"):
        orchestrator_security(loaded, "alice", plaintext=False)
    assert orchestrator_security(loaded, "alice", plaintext=True).plaintext


def test_a_silent_node_is_declared_lost_and_the_others_made_safe_within_heartbeat_time(
    network_processes,
) -> None:
    """Heartbeats: Bob dies while the orchestrator waits on him with a long RPC timeout; the
    heartbeat declares him lost after ~2 s and Alice's laser is off well before the run's own
    timeout would have noticed (generous margin for this shared machine)."""
    import json
    import threading

    from drivers.newfocus_tlb6700 import NewFocusTLB6700

    port_map, endpoints, procs = network_processes
    address = json.loads(port_map.read_text())["instruments"]["alice_laser"]
    done_shots: list[int] = []
    result: dict = {}

    def run() -> None:
        result.update(
            run_teleport(
                CHAIN_FILE,
                100_000,
                remote_nodes=endpoints,
                simlab=port_map,
                db_path=None,
                node_timeout_s=15.0,
                heartbeat_s=2.0,
                progress=done_shots.append,
            )
        )

    runner = threading.Thread(target=run)
    runner.start()
    deadline = time.monotonic() + 60
    while len(done_shots) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    watcher = NewFocusTLB6700("watch_alice_laser", address=address, visalib="@py")
    try:
        assert watcher.is_output_on()
        procs["bob"].kill()
        killed = time.monotonic()
        while watcher.is_output_on() and time.monotonic() - killed < 12:
            time.sleep(0.05)
        safe_after = time.monotonic() - killed
        assert not watcher.is_output_on()
        assert safe_after < 2.0 + 0.5 + 2.0  # lost after 2 s, pings every 0.25 s, margin
    finally:
        watcher.close()
    runner.join(timeout=60)
    assert "node bob lost" in result["aborted"]
    assert "bob" in result["safe_state_failures"]


def test_a_node_process_that_cannot_start_is_named_with_its_log(tmp_path: Path) -> None:
    # the shipped chain has no keys: a node process refuses to serve unencrypted unless asked
    with (
        pytest.raises(LocalProcessError) as error,
        local_node_processes(CHAIN, tmp_path, start_timeout_s=60),
    ):
        pass
    message = str(error.value)
    assert "alice exited with code 2 before it was ready" in message
    assert "plaintext" in message  # the node's own reason, from its log


def test_qnode_teleport_processes_runs_one_process_per_node_with_the_same_physics() -> None:
    from typer.testing import CliRunner

    from control.cli import app

    runner = CliRunner()
    common = ["teleport", "--config", str(CHAIN), "--shots", "12", "--batch", "4", "--seed", "3"]
    common += ["--no-store", "--json", "--no-progress"]
    in_processes = runner.invoke(app, [*common, "--processes", "--plaintext"])
    assert in_processes.exit_code == 0, in_processes.output
    in_one = runner.invoke(app, common)
    assert in_one.exit_code == 0, in_one.output
    separate, together = json.loads(in_processes.stdout), json.loads(in_one.stdout)
    assert separate["shots"] == 12 and separate["safe_state_failures"] == {}
    for summary in (separate, together):
        summary.pop("teleportations_per_wall_s")
    assert separate == together  # the same seed: the same shots, in processes or not
    # it starts its own processes and lab: nothing else to connect to
    clash = runner.invoke(app, [*common, "--processes", "--remote", "alice=tcp://127.0.0.1:1"])
    assert clash.exit_code != 0
    assert "--processes starts its own node processes" in clash.output
