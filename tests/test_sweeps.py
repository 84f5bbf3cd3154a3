"""Sweeps: points run in parallel, each with a seed derived from the run's seed, so the
result does not depend on where or in which order a point ran."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from control.cli import app
from control.runs import run_entangle
from control.sweeps import SweepSpec, point_seeds, run_sweep

NETWORK = Path(__file__).parents[1] / "lab_configs" / "two_node.network.yaml"
KEYS = ("shots", "attempts", "fidelity_estimate", "exact_fidelity_mean", "point_seed")


def test_parse_and_values() -> None:
    spec = SweepSpec.parse("alpha=0.05:0.25:3")
    assert spec.values() == pytest.approx([0.05, 0.15, 0.25])
    assert SweepSpec.parse("max_time_us=50:250:3").values() == pytest.approx([50, 150, 250])
    for bad in ("alpha", "alpha=1:2", "beta=0:1:3", "alpha=0:1:0"):
        with pytest.raises(ValueError, match="--sweep"):
            SweepSpec.parse(bad)


def test_point_seeds_are_reproducible_and_distinct() -> None:
    assert point_seeds(7, 4) == point_seeds(7, 4)
    assert len(set(point_seeds(7, 4))) == 4
    assert point_seeds(7, 4) != point_seeds(8, 4)


def test_results_do_not_depend_on_the_workers(tmp_path: Path) -> None:
    spec = SweepSpec.parse("alpha=0.05:0.25:3")
    base = {"network_path": NETWORK, "shots": 30, "db_path": None}
    serial = run_sweep(run_entangle, spec, base, seed=11, workers=1)
    parallel = run_sweep(run_entangle, spec, base, seed=11, workers=2)
    for a, b in zip(serial, parallel, strict=True):
        assert {k: a[k] for k in KEYS} == {k: b[k] for k in KEYS}
    # the physics shows the alpha trade-off: more attempts per pair at low alpha
    attempts = [r["attempts"] for r in serial]
    assert attempts[0] > attempts[2]


def test_each_point_stores_in_its_own_database(tmp_path: Path) -> None:
    spec = SweepSpec.parse("alpha=0.1:0.2:2")
    db = tmp_path / "runs.db"
    base = {"network_path": NETWORK, "shots": 10, "db_path": db}
    results = run_sweep(run_entangle, spec, base, seed=1, workers=2)
    assert [Path(r["database"]).name for r in results] == ["runs-alpha-p0.db", "runs-alpha-p1.db"]
    assert all(Path(r["database"]).exists() for r in results)


def test_a_fibre_length_sweep_changes_the_physics_of_each_point() -> None:
    """Longer fibre (8 dB/km at 637 nm, station at the midpoint): fewer successes per
    attempt (single click: linear in one arm's transmission): 0.06 vs 0.5 km node to node is
    a factor 10^(-8 x 0.22 / 10)."""
    spec = SweepSpec.parse("fibre_length_km=0.06:0.5:2")
    base = {"network_path": NETWORK, "shots": 200, "db_path": None}
    short, long = run_sweep(run_entangle, spec, base, seed=4, workers=2)
    assert short["parameters"]["fibre_length_km"] == pytest.approx(0.06)
    assert long["parameters"]["fibre_length_km"] == pytest.approx(0.5)
    ratio = long["success_probability_per_attempt"] / short["success_probability_per_attempt"]
    expected = 10 ** (-8.0 * (0.5 - 0.06) / 2 / 10)
    assert abs(ratio - expected) < 3 * ratio * (2 / 200) ** 0.5 + 0.02, (ratio, expected)


def test_a_bad_override_names_the_field() -> None:
    from control.network_config import NetworkConfigError

    with pytest.raises(NetworkConfigError, match="fibre_length_km"):
        run_entangle(NETWORK, 1, db_path=None, fibre_length_km=5000.0)


def test_a_dask_cluster_gives_the_same_points_as_local_workers() -> None:
    """The Dask path for real: a local cluster of two single-threaded worker processes on
    loopback (qcodes keeps one registry of instruments per process, so two points must not
    share one); the same seed gives the same per-point results as local workers."""
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed is not installed (pip install -e '.[dev]')"
    )
    spec = SweepSpec.parse("alpha=0.05:0.25:3")
    base = {"network_path": NETWORK, "shots": 30, "db_path": None}
    local = run_sweep(run_entangle, spec, base, seed=11, workers=2)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        seen: list[int] = []
        on_dask = run_sweep(
            run_entangle,
            spec,
            base,
            seed=11,
            dask_scheduler=address,
            on_point=lambda index, _: seen.append(index),
        )
        result = CliRunner().invoke(
            app,
            ["entangle", "--config", str(NETWORK), "--shots", "30", "--no-store", "--json"]
            + ["--seed", "11", "--sweep", "alpha=0.05:0.25:3", "--dask", address],
        )
    assert sorted(seen) == [0, 1, 2]
    assert [r["sweep_value"] for r in on_dask] == pytest.approx([0.05, 0.15, 0.25])
    for a, b in zip(local, on_dask, strict=True):
        assert {k: a[k] for k in KEYS} == {k: b[k] for k in KEYS}
    assert result.exit_code == 0, result.output
    from_cli = json.loads(result.stdout)
    for a, b in zip(local, from_cli, strict=True):
        assert {k: a[k] for k in KEYS} == {k: b[k] for k in KEYS}


def test_a_bad_dask_address_is_named() -> None:
    spec = SweepSpec.parse("alpha=0.1:0.2:2")
    base = {"network_path": NETWORK, "shots": 5, "db_path": None}
    with pytest.raises(ValueError, match=r"--dask 'scheduler:8786': expected a scheduler"):
        run_sweep(run_entangle, spec, base, seed=1, dask_scheduler="scheduler:8786")
    pytest.importorskip("distributed", reason="dask.distributed is not installed")
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ValueError, match=rf"--dask 'tcp://127.0.0.1:{port}': no Dask scheduler"):
        run_sweep(
            run_entangle,
            spec,
            base,
            seed=1,
            dask_scheduler=f"tcp://127.0.0.1:{port}",
            dask_timeout_s=1.0,
        )
