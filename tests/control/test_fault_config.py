"""Fault plans from the configuration and from the command line (dry runs only), and the
run commands' --faults and --resume options as an operator uses them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from qcodes.instrument import Instrument
from typer.testing import CliRunner

from control.backend import open_network
from control.cli import app
from control.network_config import NetworkConfigError

ROOT = Path(__file__).parents[2]
CONFIGS = ROOT / "lab_configs"
CHAIN = CONFIGS / "three_node_chain.network.yaml"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _close_all() -> None:
    yield
    Instrument.close_all()


@pytest.fixture
def chain_with_faults(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the chain whose physics file has a ``faults:`` section."""
    for path in CONFIGS.glob("*.station.yaml"):
        shutil.copy(path, tmp_path)
    shutil.copy(CHAIN, tmp_path)
    physics = yaml.safe_load((CONFIGS / "nv_three_node_chain.yaml").read_text())
    physics["faults"] = {
        "seed": 4,
        "faults": [{"instrument": "bob_rtc", "kind": "timeout", "at": [60, 61, 62]}],
    }
    lab = tmp_path / "nv_three_node_chain.yaml"
    lab.write_text(yaml.safe_dump(physics))
    return tmp_path / CHAIN.name, lab


def test_the_physics_files_faults_section_is_applied(chain_with_faults) -> None:
    network_file, _ = chain_with_faults
    net = open_network(network_file)
    try:
        assert set(net.faulty) == {"bob_rtc"}
        rtc = net.instrument("bob", "qubit_controller")
        for _ in range(80):
            rtc.time_s()
        assert [f.number for f in net.faulty["bob_rtc"].log] == [60, 61, 62]
        report = net.fault_report()
        assert report["injected"] == {"bob_rtc": {"timeout": 3}}
        assert report["handled"]["bob_rtc"]["retries"] == 3
    finally:
        net.close()


def test_a_fault_plan_naming_an_unknown_instrument_is_refused(tmp_path: Path) -> None:
    plan = tmp_path / "faults.yaml"
    plan.write_text("faults:\n  - {instrument: alice_lazer, kind: drop, probability: 0.1}\n")
    with pytest.raises(NetworkConfigError) as info:
        open_network(CHAIN, faults=plan)
    message = str(info.value)
    assert message.startswith(f"{plan}.faults.0.instrument: no instrument 'alice_lazer'")
    with pytest.raises(NetworkConfigError, match="fault injection cannot be used on the lab"):
        open_network(CHAIN, backend="lab", faults=plan)


def test_teleport_with_faults_and_resume_from_the_command_line(tmp_path: Path) -> None:
    plan = tmp_path / "faults.yaml"
    plan.write_text(
        "seed: 2\nfaults:\n"
        "  - {instrument: charlie_rtc, kind: drop, probability: 0.02, after: 10}\n"
        "  - {instrument: alice_rtc, kind: timeout, probability: 1, after: 60}\n"
    )
    db = tmp_path / "runs.db"
    args = ["teleport", "--config", str(CHAIN), "--json", "--no-progress", "--db", str(db)]
    first = runner.invoke(app, [*args, "--shots", "40", "--faults", str(plan)])
    assert first.exit_code == 1, first.output  # aborted: alice_rtc stopped answering
    summary = json.loads(first.stdout)
    assert summary["aborted"].startswith("InstrumentTimeoutError (timeout): alice_rtc (qnode")
    assert "run aborted" in first.stderr and "alice_rtc" in first.stderr
    resumed = runner.invoke(app, [*args, "--resume", str(summary["run_id"])])
    assert resumed.exit_code == 0, resumed.output
    again = json.loads(resumed.stdout)
    assert again["run_id"] == summary["run_id"]
    assert again["shots"] == 40 and again["complete"]
    refused = runner.invoke(app, [*args, "--resume", str(summary["run_id"])])
    assert refused.exit_code == 2 and "is completed" in refused.output
    missing = runner.invoke(app, [*args, "--resume", "99"])
    assert missing.exit_code == 2 and "run_id=99" in missing.output


def test_entangle_and_chsh_runs_take_faults_and_resume(tmp_path: Path) -> None:
    from control.runs import run_chsh, run_entangle

    plan = tmp_path / "faults.yaml"
    plan.write_text(
        "faults:\n"
        "  - {instrument: alice_rtc, kind: drop, probability: 0.02, after: 10}\n"
        "  - {instrument: bob_rtc, kind: timeout, probability: 1, after: 250}\n"
    )
    network, db = CONFIGS / "two_node.network.yaml", tmp_path / "runs.db"
    first = run_entangle(network, 200, db_path=db, faults=plan)
    assert first["aborted"].startswith("InstrumentTimeoutError (timeout): bob_rtc")
    assert first["faults"]["handled"]["alice_rtc"]["reconnects"] >= 1
    resumed = run_entangle(network, None, db_path=db, resume=first["run_id"])
    assert (resumed["shots"], resumed["complete"]) == (200, True)
    assert resumed["shots_this_session"] == 200 - first["shots"]
    with pytest.raises(ValueError, match="is a 'entangle' run, not 'chsh'"):
        run_chsh(network, None, db_path=db, resume=first["run_id"])
