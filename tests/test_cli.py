"""The `qnode` command line as an operator uses it."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from control.cli import app

ROOT = Path(__file__).parents[1]
CONFIGS = ROOT / "lab_configs"
NV = str(CONFIGS / "nv_delft_link.yaml")
NETWORK = str(CONFIGS / "two_node.network.yaml")
runner = CliRunner()


def _entangle(*args: str):
    return runner.invoke(
        app, ["entangle", "--config", NETWORK, "--no-progress", "--no-store", *args]
    )


def test_entangle_json_summary_reports_rate_and_fidelity() -> None:
    result = _entangle("--shots", "300", "--json", "--seed", "4", "--alpha", "0.05")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["shots"] == 300 and summary["complete"]
    assert summary["backend"] == "simulated" and summary["seed"] == 4
    assert summary["heralded_rate_per_s"] > 0
    assert summary["attempts_per_success"] == summary["attempts"] / 300
    low, high = summary["fidelity_ci95"]
    assert low < summary["fidelity_estimate"] < high
    # the estimate from outcomes agrees with the simulated state (within the 95% interval,
    # widened to two half-widths)
    half_width = (high - low) / 2
    assert abs(summary["fidelity_estimate"] - summary["exact_fidelity_mean"]) < 2 * half_width
    assert summary["parameters"] == {
        "link": "alice-bob",
        "scheme": "single_click",
        "alpha": 0.05,
        "max_attempts": 0,
        "max_time_us": None,
    }
    assert summary["safe_state_failures"] == {}


def test_same_seed_gives_the_same_summary() -> None:
    first = json.loads(_entangle("--shots", "60", "--json", "--seed", "9").stdout)
    second = json.loads(_entangle("--shots", "60", "--json", "--seed", "9").stdout)
    for volatile in ("wall_s",):
        first.pop(volatile), second.pop(volatile)
    assert first == second


def test_table_output_names_the_figures() -> None:
    result = _entangle("--shots", "60")
    assert result.exit_code == 0, result.output
    for text in ("heralded rate", "success probability per attempt", "fidelity", "alpha"):
        assert text in result.stdout


def _copy_configs(tmp_path: Path) -> Path:
    for f in CONFIGS.glob("*.yaml"):
        (tmp_path / f.name).write_text(f.read_text())
    return tmp_path


def test_bad_config_value_is_reported_without_traceback(tmp_path: Path) -> None:
    folder = _copy_configs(tmp_path)
    physics = folder / "nv_delft_link.yaml"
    data = yaml.safe_load(physics.read_text())
    data["simulated_lab"]["links"][0]["alpha"] = 0.9
    physics.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["entangle", "--config", str(folder / "two_node.network.yaml")])
    assert result.exit_code == 2
    assert "nv_delft_link.yaml: simulated_lab.links.0.alpha" in result.output
    assert "0.9" in result.output
    assert "Traceback" not in result.output


def test_unknown_link_and_missing_file() -> None:
    result = _entangle("--link", "alice-carol")
    assert result.exit_code == 2
    assert "alice-carol" in result.output and "alice-bob" in result.output
    result = runner.invoke(app, ["entangle", "--config", "no/such.yaml"])
    assert result.exit_code == 2 and "no/such.yaml: no such file" in result.output


def test_shots_must_be_positive() -> None:
    result = _entangle("--shots", "0")
    assert result.exit_code == 2
    assert "--shots" in result.output


def test_validate() -> None:
    result = runner.invoke(app, ["validate", NV])
    assert result.exit_code == 0
    assert "ok" in result.output and "alice-bob" in result.output


def test_validate_a_network_file_and_its_stations(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["validate", str(ROOT / "lab_configs" / "three_node_chain.network.yaml")]
    )
    assert result.exit_code == 0, result.output
    assert "three-node-chain" in result.output and "bob-charlie" in result.output
    network = yaml.safe_load((ROOT / "lab_configs" / "two_node.network.yaml").read_text())
    network["nodes"]["alice"]["station"] = "nowhere.station.yaml"
    bad = tmp_path / "two_node.network.yaml"
    bad.write_text(yaml.safe_dump(network))
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    assert "nowhere.station.yaml: no such file" in result.output


def test_teleport_runs_stores_every_shot_and_summarises(tmp_path: Path) -> None:
    from qcodes.dataset import load_by_id

    from control.stored_runs import open_database

    db = tmp_path / "runs.db"
    chain = str(ROOT / "lab_configs" / "three_node_chain.network.yaml")
    args = ["teleport", "--config", chain, "--shots", "30", "--json", "--no-progress"]
    result = runner.invoke(app, [*args, "--db", str(db), "--seed", "3"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["shots"] == 30 and summary["complete"] and not summary["interrupted"]
    low, high = summary["fidelity_ci95"]
    assert low <= summary["fidelity_estimate"] <= high
    assert 0.25 < summary["exact_fidelity_mean"] <= 1.0
    assert summary["safe_state_failures"] == {}
    conn = open_database(db)
    data = load_by_id(summary["run_id"], conn=conn).get_parameter_data()
    assert len(data["correct"]["correct"]) == 30
    conn.close()


def test_durability_option_is_applied_and_recorded(tmp_path: Path) -> None:
    from qcodes.dataset import load_by_id

    from control.stored_runs import open_database, read_metadata

    db = tmp_path / "runs.db"
    chain = str(CONFIGS / "three_node_chain.network.yaml")
    base = ["teleport", "--config", chain, "--shots", "12", "--json", "--no-progress"]
    runs = {}
    for extra in ([], ["--durability", "batch"], ["--durability", "synced"]):
        result = runner.invoke(app, [*base, "--db", str(db), *extra])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        runs[summary["durability"]] = summary["run_id"]
    assert sorted(runs) == ["batch", "shot", "synced"]  # the simulated lab's default: shot
    conn = open_database(db)
    for durability, run_id in runs.items():
        dataset = load_by_id(run_id, conn=conn)
        assert read_metadata(dataset)["durability"] == durability
        assert len(dataset.get_parameter_data()["correct"]["correct"]) == 12  # all stored
    conn.close()
    refused = runner.invoke(app, [*base, "--db", str(db), "--durability", "fast"])
    assert refused.exit_code == 2
    assert "--durability" in refused.output and "'fast'" in refused.output
    assert "synced" in refused.output and "batch" in refused.output


def test_swap_delivers_end_to_end_pairs_that_match_the_simulated_state() -> None:
    chain = str(CONFIGS / "three_node_chain.network.yaml")
    result = runner.invoke(
        app, ["swap", "--config", chain, "--shots", "60", "--json", "--no-progress", "--no-store"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["parameters"]["link"] == "alice-charlie"
    assert summary["parameters"]["swapped_at"] == "bob"
    low, high = summary["fidelity_ci95"]
    assert low - 0.05 <= summary["exact_fidelity_mean"] <= high + 0.05


def test_chsh_reports_s_with_an_interval() -> None:
    result = runner.invoke(
        app,
        [
            "chsh",
            "--config",
            NETWORK,
            "--shots",
            "200",
            "--json",
            "--no-progress",
            "--no-store",
            "--seed",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    low, high = summary["chsh_ci95"]
    assert low < summary["chsh_s"] < high
    assert 0.5 < summary["chsh_s"] < 2 * 2**0.5 + 0.3
    assert len(summary["correlators"]) == 4


def test_a_cut_off_on_attempts_restarts_the_loop_instead_of_failing_the_run() -> None:
    result = _entangle("--shots", "3", "--max-attempts", "50", "--json", "--seed", "1")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["shots"] == 3 and summary["aborted"] is None
    assert summary["parameters"]["max_attempts"] == 50


def test_default_network_files_are_found_outside_the_project(tmp_path, monkeypatch) -> None:
    """Run from another directory, the default network file is the project's own copy; a
    file of that name in the working directory takes precedence; an unknown name stays as
    given (so the error names it)."""
    from control.cli import _shipped_config

    relative = "lab_configs/three_node_chain.network.yaml"
    monkeypatch.chdir(tmp_path)
    shipped = _shipped_config(relative)
    assert shipped.is_absolute()
    assert shipped.resolve() == (CONFIGS / "three_node_chain.network.yaml").resolve()
    (tmp_path / "lab_configs").mkdir()
    (tmp_path / relative).write_text("nodes: {}\n")
    assert _shipped_config(relative) == Path(relative)
    assert _shipped_config("lab_configs/missing.yaml") == Path("lab_configs/missing.yaml")
