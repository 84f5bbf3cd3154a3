"""Each fault injected during a teleportation run over the three-node chain: the run
completes (the fault absorbed by a retry, a reconnect or a repeated shot) or ends cleanly;
the instruments end safe; the dataset holds every completed shot; messages name the
instrument, the command and the fault. A soak test with random faults, and resuming."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from qcodes.instrument import Instrument

import control.run_teleport as run_teleport_module
from control.recovery import ResumeMismatchError, continuation_seed
from control.runs import run_teleport
from control.stored_runs import load_run, open_database, resume_info

ROOT = Path(__file__).parents[2]
CHAIN = ROOT / "lab_configs" / "three_node_chain.network.yaml"


@pytest.fixture(autouse=True)
def _close_all() -> Any:
    yield
    Instrument.close_all()


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The networks the runs opened (to inspect the simulated instruments afterwards)."""
    networks: list[Any] = []
    real = run_teleport_module.open_network

    def capture(*args: Any, **kwargs: Any) -> Any:
        networks.append(real(*args, **kwargs))
        return networks[-1]

    monkeypatch.setattr(run_teleport_module, "open_network", capture)
    return networks


def plan(tmp_path: Path, *rules: str, seed: int = 1) -> Path:
    path = tmp_path / "faults.yaml"
    path.write_text(f"seed: {seed}\nfaults:\n" + "".join(f"  - {{{r}}}\n" for r in rules))
    return path


def teleport(tmp_path: Path, faults: Path | None, shots: int = 30, **kw: Any) -> dict[str, Any]:
    return run_teleport(CHAIN, shots, db_path=tmp_path / "runs.db", faults=faults, **kw)


def stored_shots(db: Path, run_id: int) -> list[int]:
    conn = open_database(db, create=False, writer=False)
    try:
        table = load_run(conn, run_id).table_name
        return [r[0] for r in conn.execute(f'SELECT shot FROM "{table}" ORDER BY shot')]
    finally:
        conn.close()


def unsafe(network: Any) -> list[str]:
    """Simulated instruments still emitting, driving or biasing anything."""
    found = []
    for name, inst in network.simulated_lab.instruments.items():
        for attr in ("output_on", "pump_on", "running", "detector_enable", "acquisition_on"):
            if getattr(inst, attr, False) is True:
                found.append(f"{name}.{attr}")
        channels = getattr(inst, "channels", {})
        for channel in channels.values() if isinstance(channels, dict) else channels:
            if getattr(channel, "output_on", False) or getattr(channel, "is_open", False):
                found.append(f"{name}.channel")
    return found


def check_complete(summary: dict[str, Any], tmp_path: Path, shots: int) -> None:
    assert summary["aborted"] is None and summary["shots"] == shots
    assert stored_shots(tmp_path / "runs.db", summary["run_id"]) == list(range(shots))


def test_timeouts_on_the_real_time_controller_are_retried(tmp_path: Path, opened) -> None:
    faults = plan(tmp_path, "instrument: bob_rtc, kind: timeout, probability: 0.1, after: 10")
    summary = teleport(tmp_path, faults)
    check_complete(summary, tmp_path, 30)
    injected = summary["faults"]["injected"]["bob_rtc"]["timeout"]
    handled = summary["faults"]["handled"]["bob_rtc"]
    assert injected >= 5 and handled["faults"] == {"timeout": injected}
    # every timeout was retried, unless it hit a readout (its shot was run again instead)
    assert handled["retries"] + handled["not_repeated"] == injected
    assert handled["not_repeated"] == summary["faults"]["abandoned_shots"]
    assert handled["gave_up"] == 0 and handled["backoff_s"] == pytest.approx(
        0.05 * handled["retries"]
    )
    assert unsafe(opened[0]) == []


def test_dropped_connections_are_reopened(tmp_path: Path, opened) -> None:
    faults = plan(tmp_path, "instrument: charlie_rtc, kind: drop, probability: 0.25, after: 10")
    summary = teleport(tmp_path, faults)
    check_complete(summary, tmp_path, 30)
    injected = summary["faults"]["injected"]["charlie_rtc"]["drop"]
    handled = summary["faults"]["handled"]["charlie_rtc"]
    assert injected >= 3 and handled["reconnects"] == injected
    # a drop can be seen twice: by its command, and by the next one on the dead session
    assert injected <= handled["faults"]["connection lost"] <= 2 * injected
    # each drop is retried or (a program that acts on qubits) not repeated, unless it hit the
    # reconnect of an earlier one
    assert 0 < handled["retries"] + handled["not_repeated"] <= injected
    assert unsafe(opened[0]) == []


@pytest.mark.parametrize(("kind", "label"), [("garble", "garbled"), ("truncate", "truncated")])
def test_damaged_replies_are_detected_and_asked_again(
    tmp_path: Path, opened, kind: str, label: str
) -> None:
    faults = plan(tmp_path, f"instrument: alice_rtc, kind: {kind}, probability: 0.1, after: 10")
    summary = teleport(tmp_path, faults)
    check_complete(summary, tmp_path, 30)
    injected = summary["faults"]["injected"]["alice_rtc"][kind]
    handled = summary["faults"]["handled"]["alice_rtc"]
    assert injected >= 3 and handled["faults"] == {f"{label} reply": injected}
    for reason in summary["faults"]["reasons"]:  # programs acting on qubits are not sent twice
        assert reason.startswith("alice_rtc (qnode RTC v1): command 'QUB:PROG")
        assert "QUB:PROG:RES?" not in reason  # reading a result again is safe: it is retried
        assert "not repeated" in reason
        assert f"gave a {label} reply" in reason
    assert unsafe(opened[0]) == []


def test_a_rebooted_awg_gets_its_settings_and_sequence_back(tmp_path: Path, opened) -> None:
    # the AWGs get no message per shot (the real-time controllers trigger their attempt
    # sequences): bob's 50th message is the health check before shot 100
    faults = plan(tmp_path, "instrument: bob_awg, kind: reboot, at: [50]")
    summary = teleport(tmp_path, faults, shots=120)
    check_complete(summary, tmp_path, 120)
    handled = summary["faults"]["handled"]["bob_awg"]
    assert (handled["reboots"], handled["reconnects"]) == (1, 1)
    assert handled["reapplied"] >= 5
    awg = opened[0].simulated_lab.instruments["bob_awg"]
    assert len(awg.elements) > 0  # the attempt-loop sequence was uploaded again
    assert unsafe(opened[0]) == []


def test_a_rebooted_qubit_controller_costs_the_shot_not_the_run(tmp_path: Path, opened) -> None:
    faults = plan(tmp_path, "instrument: alice_rtc, kind: reboot, at: [50]")
    summary = teleport(tmp_path, faults)
    check_complete(summary, tmp_path, 30)
    assert summary["faults"]["abandoned_shots"] == 1
    (reason,) = summary["faults"]["reasons"]
    assert reason.startswith("alice_rtc (qnode RTC v1): command ")
    assert "rebooted" in reason and "qubit states were lost" in reason
    assert unsafe(opened[0]) == []


def test_a_slow_instrument_times_out_and_its_late_reply_is_dropped(tmp_path: Path) -> None:
    faults = plan(
        tmp_path, "instrument: bob_rtc, kind: slow, probability: 0.02, after: 10, delay_s: 20"
    )
    summary = teleport(tmp_path, faults)
    check_complete(summary, tmp_path, 30)
    injected = summary["faults"]["injected"]["bob_rtc"]["slow"]
    assert summary["faults"]["handled"]["bob_rtc"]["faults"] == {"timeout": injected}


def test_an_instrument_that_stops_answering_ends_the_run_cleanly(tmp_path: Path, opened) -> None:
    faults = plan(tmp_path, "instrument: charlie_rtc, kind: timeout, probability: 1, after: 60")
    summary = teleport(tmp_path, faults, shots=60)
    completed = summary["shots"]
    assert 0 < completed < 60
    aborted = summary["aborted"]
    assert aborted.startswith("InstrumentTimeoutError (timeout): charlie_rtc (qnode RTC v1): ")
    assert "timed out" in aborted
    assert stored_shots(tmp_path / "runs.db", summary["run_id"]) == list(range(completed))
    info = resume_info(summary["run_id"], tmp_path / "runs.db")
    assert info.status == "interrupted" and info.shots == completed
    # the controller itself cannot be re-initialised; everything else is safe
    assert set(summary["safe_state_failures"]) <= {"charlie_rtc"}
    assert unsafe(opened[0]) == []


def test_soak_a_thousand_shots_with_random_faults_loses_none(tmp_path: Path, opened) -> None:
    rules = [
        f"instrument: {node}_{role}, kind: {kind}, probability: {p}, after: 40"
        for node in ("alice", "bob", "charlie")
        for role, kind, p in (
            # a shot is 5 controller messages (shot programs) and none to the AWGs, whose
            # messages are set-up, health checks and safe state
            ("rtc", "timeout", 0.01),
            ("rtc", "drop", 0.003),
            ("rtc", "garble", 0.003),
            ("rtc", "truncate", 0.003),
            ("rtc", "slow", 0.002),
            ("awg", "reboot", 0.005),
            ("awg", "timeout", 0.01),
        )
    ]
    summary = teleport(tmp_path, plan(tmp_path, *rules, seed=6), shots=1000)
    check_complete(summary, tmp_path, 1000)
    faults = summary["faults"]
    injected = sum(n for kinds in faults["injected"].values() for n in kinds.values())
    seen = sum(n for h in faults["handled"].values() for n in h["faults"].values())
    assert injected >= 100
    assert seen >= injected  # each injected fault reached a driver (and some twice)
    handled = faults["handled"]
    assert all(h["gave_up"] == 0 for h in handled.values())
    by_kind: dict[str, int] = {}
    for name, kinds in faults["injected"].items():
        assert handled[name]["reboots"] == kinds.get("reboot", 0)  # every reboot noticed
        for kind, n in kinds.items():
            by_kind[kind] = by_kind.get(kind, 0) + n
    assert sum(h["reconnects"] for h in handled.values()) == by_kind["drop"] + by_kind["reboot"]
    assert faults["abandoned_shots"] >= 1
    assert unsafe(opened[0]) == []


def test_a_run_resumes_to_its_requested_shots_and_refuses_another_config(tmp_path: Path) -> None:
    faults = plan(tmp_path, "instrument: bob_rtc, kind: timeout, probability: 1, after: 80")
    first = teleport(tmp_path, faults, shots=40)
    stored = first["shots"]
    assert first["aborted"] and 0 < stored < 40
    with pytest.raises(ResumeMismatchError, match=r"attempt_loop.alpha was 0.1 .*, is 0.2 now"):
        run_teleport(CHAIN, None, db_path=tmp_path / "runs.db", resume=first["run_id"], alpha=0.2)
    with pytest.raises(ResumeMismatchError, match="requested 40 shots, this command 50"):
        run_teleport(CHAIN, 50, db_path=tmp_path / "runs.db", resume=first["run_id"])
    resumed = run_teleport(CHAIN, None, db_path=tmp_path / "runs.db", resume=first["run_id"])
    assert resumed["run_id"] == first["run_id"] and resumed["aborted"] is None
    assert (resumed["shots"], resumed["shots_this_session"]) == (40, 40 - stored)
    assert resumed["complete"] and resumed["continuation_seed"] == continuation_seed(
        first["seed"], stored
    )
    assert stored_shots(tmp_path / "runs.db", first["run_id"]) == list(range(40))
    assert resume_info(first["run_id"], tmp_path / "runs.db").completed
    with pytest.raises(ValueError, match="is completed"):
        run_teleport(CHAIN, None, db_path=tmp_path / "runs.db", resume=first["run_id"])


def test_a_killed_run_process_keeps_every_shot_and_resumes(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    command = [sys.executable, "-m", "control.cli", "teleport", "--config", str(CHAIN)]
    command += ["--shots", "300", "--db", str(db), "--no-progress", "--json"]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while _count(db) < 20:  # bounded by the run itself: it stores 300 and exits
            assert process.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    killed_at = _count(db)
    assert killed_at >= 20
    assert stored_shots(db, 1) == list(range(killed_at))  # every committed shot, no gap
    resumed = run_teleport(CHAIN, None, db_path=db, resume=1)
    assert resumed["shots"] == 300 and resumed["complete"]
    assert stored_shots(db, 1) == list(range(300))


def _count(db: Path) -> int:
    """Shots stored in run 1 so far (0 while the database or the run does not exist)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute("SELECT result_table_name FROM runs WHERE run_id = 1").fetchone()
            if row is None:
                return 0
            return int(conn.execute(f'SELECT COUNT(*) FROM "{row[0]}"').fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_an_idle_instrument_that_rebooted_is_noticed_by_the_health_check(
    tmp_path: Path, opened
) -> None:
    # the microwave source gets 10 messages during set-up and none per shot: its 11th is
    # the health check before shot 100, which finds it back at its power-on settings
    faults = plan(
        tmp_path,
        "instrument: alice_mw, kind: reset, at: [11]",
        "instrument: bob_qfc, kind: reboot, at: [11]",
    )
    summary = teleport(tmp_path, faults, shots=120)
    check_complete(summary, tmp_path, 120)
    handled = summary["faults"]["handled"]
    assert handled["alice_mw"]["reboots"] == handled["bob_qfc"]["reboots"] == 1
    assert handled["alice_mw"]["reapplied"] >= 5 and handled["bob_qfc"]["reconnects"] == 1
    network = opened[0]
    sim = network.simulated_lab.instruments["alice_mw"]
    # back at the prepared values, not the power-on ones (1 GHz, the lowest level)
    assert sim.frequency_hz == pytest.approx(2.88e9) and sim.power_dbm == pytest.approx(0.0)
    assert unsafe(network) == []
