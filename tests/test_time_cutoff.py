"""The cut-off on time: an attempt loop without a herald ends after ``max_time_us`` (the
real-time controllers' herald timeout, ENT:TIM), after floor(time / attempt period) attempts
in the simulated lab; the orchestrator starts the loop again (discarding a stored partner
pair when swapping), and the run goes on to deliver every requested pair."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from entanglement_helpers import clean_network
from qcodes.instrument import Instrument
from typer.testing import CliRunner

from control.backend import open_network
from control.cli import app
from control.orchestrator import OrchestrationError
from control.runs import (
    build_orchestrator,
    iter_entanglement,
    iter_swapped_pairs,
    run_entangle,
    run_teleport,
)
from control.stored_runs import read_metadata
from drivers.errors import InstrumentErrorQueueError
from sequences.attempt_loop import AttemptLoop, entanglement_loop, run_attempt_loops
from sequences.barrett_kok import BarrettKokLoop
from sequences.entanglement_loop import LoopError

LINK = ("alice", "bob")


@pytest.fixture(scope="module")
def network_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clean_network(tmp_path_factory.mktemp("cutoff"))


@pytest.fixture
def network(network_path: Path):
    opened = open_network(network_path, seed=12)
    yield opened
    opened.close()
    Instrument.close_all()


def _period_s(network, link=LINK) -> float:
    return network.simulated_lab.link_model(link).timing.attempt_period_s


@pytest.mark.parametrize("scheme", ["single_click", "barrett_kok"])
def test_a_loop_ends_at_the_time_cutoff_and_the_run_goes_on(network, scheme: str) -> None:
    max_time_us = 40.0
    loop = entanglement_loop(scheme, alpha=0.1, max_time_us=max_time_us)
    orchestrator = build_orchestrator(network, loop)
    orchestrator.prepare()
    shots = 40
    records = list(iter_entanglement(orchestrator, *LINK, shots))
    assert len(records) == shots  # every cut-off restarted the loop
    for node in LINK:  # the cut-off is the real-time controllers' herald timeout
        rtc = network.instrument(node, "qubit_controller")
        assert rtc.herald_timeout() == pytest.approx(max_time_us * 1e-6)
    period = _period_s(network)
    limit = math.floor(max_time_us * 1e-6 / period)
    assert limit >= 2
    runs = network.simulated_lab.runs
    cut = [r for r in runs if not r.heralds]
    assert len(cut) > shots  # p ~ 1/50 per attempt here: most loops end at the cut-off
    for run in cut:
        assert run.cutoff == "time" and run.attempts == limit
        assert run.ended_at_s - run.started_at_s == pytest.approx(limit * period, rel=1e-9)
    assert all(r.attempts <= limit and r.cutoff is None for r in runs if r.heralds)
    # a pair's attempts count the loops that ended without a herald before it
    assert sum(r.attempts for r in records) == sum(r.attempts for r in runs)


def test_the_earlier_cutoff_ends_the_loop(network) -> None:
    orchestrator = build_orchestrator(
        network, AttemptLoop(alpha=0.01, max_attempts=3, max_time_us=40.0)
    )
    orchestrator.prepare()
    with pytest.raises(OrchestrationError, match="within 3 attempts or 40 us"):
        for _ in range(200):  # p ~ 2e-3 per attempt: a loop of 3 rarely heralds
            pair = orchestrator.entangle(*LINK)
            for node in LINK:
                orchestrator.nodes[node].release(pair)
    assert network.simulated_lab.runs[-1].cutoff == "attempts"
    assert network.simulated_lab.runs[-1].attempts == 3


def test_a_herald_timeout_shorter_than_an_attempt_is_refused(network) -> None:
    build_orchestrator(network, AttemptLoop(alpha=0.1)).prepare()
    for node in LINK:
        network.instrument(node, "qubit_controller").set_herald_timeout_s(2e-6)
    awgs = [network.instrument(node, "awg") for node in LINK]
    with pytest.raises(InstrumentErrorQueueError, match="shorter than one attempt period"):
        run_attempt_loops(awgs, AttemptLoop(alpha=0.1))
    assert not any(awg.is_running() for awg in awgs)


def test_the_rtc_driver_validates_the_timeout(network) -> None:
    rtc = network.instrument("alice", "qubit_controller")
    with pytest.raises(ValueError, match="herald_timeout"):
        rtc.set_herald_timeout_s(0.0)
    rtc.set_herald_timeout_s(123.456789e-6)  # sent with enough digits for microseconds
    assert rtc.herald_timeout() == pytest.approx(123.456789e-6, rel=1e-9)


@pytest.mark.parametrize(
    ("max_time_us", "message"),
    [
        (0.0, "max_time_us=0.0: Input should be greater than 0"),
        (math.inf, "max_time_us=inf"),
        (3.0, "max_time_us=3: shorter than one attempt (attempt_duration_us=3.8)"),
        (4e9, "max_time_us=4000000000.0: Input should be less than or equal to 3600000000"),
    ],
)
def test_bad_cutoffs_are_named(max_time_us: float, message: str) -> None:
    for scheme in ("single_click", "barrett_kok"):
        with pytest.raises(LoopError, match=message.replace("(", r"\(").replace(")", r"\)")):
            entanglement_loop(scheme, max_time_us=max_time_us)


def test_swapping_discards_the_stored_pair_at_the_time_cutoff(tmp_path: Path) -> None:
    """Bob stores the a-b pair while b-c attempts; a b-c loop ended by the cut-off on time
    discards it, so every such loop costs one more a-b herald."""
    network = open_network(clean_network(tmp_path, chain=True), seed=3)
    try:
        orchestrator = build_orchestrator(network, BarrettKokLoop(max_time_us=300.0))
        orchestrator.prepare()
        shots = 15
        records = list(iter_swapped_pairs(orchestrator, shots))
        assert len(records) == shots
        runs = network.simulated_lab.runs
        ab = [r for r in runs if r.link == "alice-bob"]
        bc = [r for r in runs if r.link == "bob-charlie"]
        bc_cut = [r for r in bc if r.cutoff == "time"]
        assert bc_cut, "the cut-off never ended a b-c loop: make it shorter"
        limit = math.floor(300e-6 / _period_s(network, ("bob", "charlie")))
        assert all(r.attempts == limit for r in bc_cut)
        assert sum(1 for r in ab if r.heralds) == shots + len(bc_cut)
        assert not any(orchestrator.nodes[n].pairs for n in ("alice", "bob", "charlie"))
    finally:
        network.close()
        Instrument.close_all()


def test_cli_takes_the_scheme_and_the_time_cutoff(network_path: Path) -> None:
    runner = CliRunner()
    base = ["entangle", "--config", str(network_path), "--no-progress", "--no-store"]
    result = runner.invoke(
        app,
        [*base, "--shots", "30", "--json", "--scheme", "barrett_kok", "--max-time-us", "100"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["shots"] == 30 and summary["complete"]
    assert summary["parameters"]["scheme"] == "barrett_kok"
    assert summary["parameters"]["max_time_us"] == 100.0
    bad = runner.invoke(app, [*base, "--shots", "3", "--max-time-us", "-1"])
    assert bad.exit_code == 2
    assert "max_time_us=-1.0: Input should be greater than 0" in bad.output
    unknown = runner.invoke(app, [*base, "--shots", "3", "--scheme", "two_click"])
    assert unknown.exit_code == 2 and "two_click" in unknown.output
    Instrument.close_all()


def test_teleportation_runs_barrett_kok_with_a_time_cutoff(tmp_path: Path) -> None:
    chain = clean_network(tmp_path, chain=True)
    summary = run_teleport(
        chain, 12, seed=4, scheme="barrett_kok", max_time_us=300.0, db_path=tmp_path / "t.db"
    )
    Instrument.close_all()
    assert summary["shots"] == 12 and summary["complete"] and summary["aborted"] is None
    assert summary["attempt_loop"]["scheme"] == "barrett_kok"
    assert summary["attempt_loop"]["max_time_us"] == 300.0
    # the stored run carries the loop in its metadata
    from qcodes.dataset import initialise_or_create_database_at, load_by_id

    initialise_or_create_database_at(tmp_path / "t.db")
    stored = read_metadata(load_by_id(summary["run_id"]))
    assert stored["attempt_loop"]["max_time_us"] == 300.0
    assert stored["attempt_loop"]["scheme"] == "barrett_kok"


def test_teleportation_counts_the_tries_a_cutoff_ended(tmp_path: Path) -> None:
    """Tries that a cut-off ended are run again, counted, and shown to the operator: live
    while they pile up, and in the summary (0 without a cut-off)."""
    chain = clean_network(tmp_path, chain=True)
    told: list[int] = []
    short = run_teleport(chain, 6, seed=4, db_path=None, max_time_us=100.0, on_cutoffs=told.append)
    Instrument.close_all()
    assert short["shots"] == 6 and short["complete"]
    assert short["tries_cut_off"] > 0
    assert told == sorted(told) and all(n <= short["tries_cut_off"] for n in told)
    # each try that ended at the cut-off ran at least one attempt on its links
    assert short["tries_cut_off"] <= 6 * 2 * short["attempts_per_success"]
    unlimited = run_teleport(chain, 6, seed=4, db_path=None)
    Instrument.close_all()
    assert unlimited["tries_cut_off"] == 0
    table = CliRunner().invoke(
        app,
        ["teleport", "--config", str(chain), "--shots", "4", "--seed", "4"]
        + ["--no-progress", "--no-store", "--max-time-us", "40"],
    )
    Instrument.close_all()
    assert table.exit_code == 0, table.output
    assert "tries ended at a cut-off" in table.output


@pytest.mark.parametrize("swap", [False, True])
def test_entanglement_and_swap_runs_count_the_tries_a_cutoff_ended(
    tmp_path: Path, swap: bool
) -> None:
    """As teleportation runs do: counted live and in the summary (0 without a cut-off), and
    shown in the table."""
    network = clean_network(tmp_path, chain=swap)
    told: list[int] = []
    short = run_entangle(
        network, 6, seed=5, db_path=None, swap=swap, max_time_us=100.0, on_cutoffs=told.append
    )
    Instrument.close_all()
    assert short["shots"] == 6 and short["complete"]
    assert short["tries_cut_off"] > 0
    assert told == sorted(told) and all(n <= short["tries_cut_off"] for n in told)
    links = 2 if swap else 1
    assert short["tries_cut_off"] <= 6 * links * short["attempts_per_success"]
    unlimited = run_entangle(network, 6, seed=5, db_path=None, swap=swap)
    Instrument.close_all()
    assert unlimited["tries_cut_off"] == 0
    table = CliRunner().invoke(
        app,
        ["swap" if swap else "entangle", "--config", str(network), "--shots", "3"]
        + ["--seed", "5", "--no-progress", "--no-store", "--max-time-us", "40"],
    )
    Instrument.close_all()
    assert table.exit_code == 0, table.output
    assert "tries ended at a cut-off" in table.output
