"""ShotStore: every shot in a QCoDeS dataset that QCoDeS' own load_by_id/plot_dataset read."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import qcodes
from qcodes.dataset import connect, load_by_id
from qcodes.dataset.sqlite.connection import AtomicConnection

from control.shot_columns import ENTANGLEMENT_COLUMNS, TELEPORTATION_COLUMNS, Column, Sweep
from control.storage import ShotStore
from control.stored_runs import read_metadata, resume_info


def shot_values(i: int) -> dict:
    return dict(
        pair_id=f"alice-bob#{i}",
        link="alice-bob",
        bell_state="PSI+" if i % 2 else "PSI-",
        attempts=3 + i,
        herald_time_s=1e-3 * i,
        delivered_time_s=1e-3 * i + 2e-5,
        basis=("XX", "YY", "ZZ")[i % 3],
        outcome_a=i % 2,
        outcome_b=(i // 2) % 2,
        fidelity_exact=0.9 - 1e-3 * i,
    )


@pytest.fixture
def conns() -> Iterator[list[AtomicConnection]]:
    opened: list[AtomicConnection] = []
    yield opened
    for c in opened:
        c.close()


def open_conn(path: Path, conns: list[AtomicConnection]) -> AtomicConnection:
    conn = connect(path)
    conns.append(conn)
    return conn


def test_shots_round_trip_through_load_by_id(tmp_path: Path, conns) -> None:
    db = tmp_path / "runs.db"
    with ShotStore(db, sweep=Sweep("alpha", "rad"), experiment="e", sample="s") as store:
        for i in range(12):
            store.add_shot(sweep_value=0.05 * (i // 4), **shot_values(i))
        run_id = store.run_id
    ds = load_by_id(run_id, conn=open_conn(db, conns))
    data = ds.get_parameter_data()
    assert ds.exp_name == "e" and ds.sample_name == "s" and ds.completed
    expected = [dict(shot_values(i), shot=i, sweep_value=0.05 * (i // 4)) for i in range(12)]
    for name, arrays in data.items():
        assert list(arrays) == [name, "shot"], "every column depends on the shot setpoint"
        np.testing.assert_array_equal(arrays["shot"], np.arange(12))
        want = [e[name] for e in expected]
        if isinstance(want[0], float):
            # stored exactly as REAL; QCoDeS' 'numeric' reader goes through SQLite's text
            # conversion, which keeps 15 significant digits
            np.testing.assert_allclose(arrays[name], want, rtol=1e-14, atol=0, err_msg=name)
        else:
            assert arrays[name].tolist() == want, name
    assert set(data) == {c.name for c in ENTANGLEMENT_COLUMNS} | {"sweep_value"}
    sweep_spec = ds.description.interdeps.graph.nodes["sweep_value"]["value"]
    assert (sweep_spec.label, sweep_spec.unit) == ("alpha", "rad")


def test_nan_default_text_and_int_columns(tmp_path: Path, conns) -> None:
    db = tmp_path / "runs.db"
    with ShotStore(db, columns=TELEPORTATION_COLUMNS, run_name="teleport") as store:
        values = shot_values(0)
        del values["fidelity_exact"]  # real hardware: not known
        store.add_shot(input_state="+i", correct=np.int64(1), **values)
    data = load_by_id(store.run_id, conn=open_conn(db, conns)).get_parameter_data()
    assert math.isnan(data["fidelity_exact"]["fidelity_exact"][0])
    assert data["input_state"]["input_state"].tolist() == ["+i"]
    assert data["correct"]["correct"].tolist() == [1]


def test_default_database_route_and_plot_dataset(tmp_path: Path, monkeypatch) -> None:
    """load_by_id(run_id) after initialise_or_create_database_at(path), then plot_dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from qcodes.dataset import initialise_or_create_database_at, plot_dataset

    monkeypatch.chdir(tmp_path)
    with ShotStore(columns=[Column("counts", "int", "1", "Counts")]) as store:
        for i in range(5):
            store.add_shot(counts=10 * i)
    assert (tmp_path / "runs" / "qnode.db").is_file(), "default: runs/qnode.db in the cwd"
    monkeypatch.setitem(qcodes.config["core"], "db_location", str(tmp_path / "unused.db"))
    initialise_or_create_database_at(tmp_path / "runs" / "qnode.db")
    ds = load_by_id(store.run_id)
    assert ds.get_parameter_data()["counts"]["counts"].tolist() == [0, 10, 20, 30, 40]
    try:
        axes, _ = plot_dataset(ds)
        assert [ax.get_ylabel() for ax in axes] == ["Counts (1)"]
        assert axes[0].get_xlabel() == "Shot"
    finally:
        plt.close("all")
        ds.conn.close()


def test_metadata_round_trip(tmp_path: Path, conns) -> None:
    db = tmp_path / "runs.db"
    config = {"name": "nv_delft_link", "links": [{"nodes": ["alice", "bob"]}], "alpha": 0.1}
    calibration = {"readout_a": [0.95, 0.99], "phase_rad": 0.12}
    store = ShotStore(
        db,
        config=config,
        seed=7,
        backend="lab",
        calibration=calibration,
        requested_shots=3,
        command_line=["qnode", "entangle", "--shots", "3"],
        extra_metadata={"operator": "ada"},
    )
    for i in range(3):
        store.add_shot(**shot_values(i))
    store.finish({"fidelity_estimate": 0.81, "heralded_rate_per_s": 12.5})
    store.close()
    meta = read_metadata(load_by_id(store.run_id, conn=open_conn(db, conns)))
    assert meta["config"] == config and meta["config_name"] == "nv_delft_link"
    assert meta["seed"] == 7 and meta["backend"] == "lab" and meta["calibration"] == calibration
    assert meta["command_line"] == "qnode entangle --shots 3"
    assert meta["software"]["qcodes"] == qcodes.__version__ and "qnode" in meta["software"]
    assert meta["started_at"] < meta["finished_at"]
    assert meta["requested_shots"] == 3 and meta["shots"] == 3 and meta["operator"] == "ada"
    assert meta["summary"] == {"fidelity_estimate": 0.81, "heralded_rate_per_s": 12.5}
    assert meta["status"] == "completed" and meta["sweep"] is None
    assert [c["name"] for c in meta["columns"]] == [c.name for c in ENTANGLEMENT_COLUMNS]
    raw = load_by_id(store.run_id, conn=open_conn(db, conns)).metadata
    assert json.loads(raw["qnode_config"]) == config, "stored as plain JSON strings"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"colour": "red"}, r"unknown column 'colour' = 'red': expected one of \['pair_id'"),
        ({"attempts": 2.5}, r"column 'attempts' = 2.5 \(float\): expected an integer"),
        ({"attempts": "7"}, r"column 'attempts' = '7' \(str\): expected an integer"),
        ({"basis": 3}, r"column 'basis' = 3 \(int\): expected a text value"),
        ({"herald_time_s": "soon"}, r"'herald_time_s' = 'soon' \(str\): expected a real number"),
        ({"herald_time_s": True}, r"'herald_time_s' = True \(bool\): expected a real number"),
        ({"basis": None}, r"column 'basis' = None \(NoneType\): expected a text value"),
    ],
)
def test_bad_values_name_column_value_and_expectation(tmp_path, values, message) -> None:
    with ShotStore(tmp_path / "runs.db") as store:
        with pytest.raises(ValueError, match=message):
            store.add_shot(**{**shot_values(0), **values})
        assert store.shots == 0


def test_missing_columns_shot_numbers_and_spec_errors(tmp_path: Path) -> None:
    with ShotStore(tmp_path / "runs.db") as store:
        values = shot_values(0)
        del values["basis"]
        with pytest.raises(ValueError, match=r"column 'basis' missing: expected a text value"):
            store.add_shot(**values)
        assert store.add_shot(shot=5, **shot_values(0)) == 5
        assert store.add_shot(**shot_values(1)) == 6
        with pytest.raises(ValueError, match=r"shot=6: expected a number above the last one, 6"):
            store.add_shot(shot=6, **shot_values(2))
    with pytest.raises(ValueError, match=r"backend='cloud': expected one of \['simulated', 'lab'"):
        ShotStore(tmp_path / "runs.db", backend="cloud")
    with pytest.raises(ValueError, match=r"durability='never': expected one of \['synced', 'shot'"):
        ShotStore(tmp_path / "runs.db", durability="never")
    with pytest.raises(ValueError, match=r"column name 'shot'"):
        Column("shot", "int")
    with pytest.raises(ValueError, match=r"column 'x': kind='complex'"):
        Column("x", "complex")
    with pytest.raises(ValueError, match=r"extra_metadata key 'seed': expected a Python identif"):
        ShotStore(tmp_path / "runs.db", extra_metadata={"seed": 3})
    with pytest.raises(ValueError, match=r"\['basis'\] declared more than once"):
        ShotStore(tmp_path / "runs.db", columns=[*ENTANGLEMENT_COLUMNS, Column("basis", "text")])


def test_finished_interrupted_and_resumed_runs(tmp_path: Path, conns) -> None:
    db = tmp_path / "runs.db"
    with ShotStore(db, requested_shots=2) as done:
        done.add_shot(**shot_values(0))
        done.add_shot(**shot_values(1))
    with pytest.raises(KeyboardInterrupt), ShotStore(db, requested_shots=10) as broken:
        for i in range(4):
            broken.add_shot(**shot_values(i))
        raise KeyboardInterrupt
    closed = ShotStore(db, requested_shots=5)
    closed.add_shot(**shot_values(0))
    closed.close()

    info = resume_info(done.run_id, db)
    assert (info.status, info.completed, info.shots, info.remaining) == ("completed", True, 2, 0)
    info = resume_info(broken.run_id, db)
    assert (info.status, info.completed, info.shots, info.last_shot) == ("interrupted", False, 4, 3)
    assert info.requested_shots == 10 and info.remaining == 6
    assert info.metadata["status"] == "interrupted"
    assert info.metadata["error"] == "KeyboardInterrupt: "
    assert resume_info(closed.run_id, db).status == "interrupted"

    with ShotStore.resume(broken.run_id, db) as store:
        assert store.shots == 4
        for i in range(4, 10):
            assert store.add_shot(**shot_values(i)) == i
    info = resume_info(broken.run_id, db)
    assert (info.status, info.shots, info.remaining) == ("completed", 10, 0)
    assert info.metadata["resumes"][0]["shots_before"] == 4
    data = load_by_id(broken.run_id, conn=open_conn(db, conns)).get_parameter_data()
    assert data["attempts"]["attempts"].tolist() == [3 + i for i in range(10)]

    with pytest.raises(ValueError, match=r"run 1 is completed"):
        ShotStore.resume(done.run_id, db)
    with pytest.raises(ValueError, match=r"run_id=99: no such run .*runs there: \[1, 2, 3\]"):
        resume_info(99, db)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resume_info(1, tmp_path / "nowhere.db")
    with pytest.raises(RuntimeError, match="run 1: the store is closed"):
        done.add_shot(**shot_values(2))


@pytest.mark.parametrize(
    ("backend", "durability", "synchronous"),
    [("lab", "synced", 2), ("simulated", "shot", 1)],  # SQLite: 2 FULL, 1 NORMAL
)
def test_the_default_durability_follows_the_backend(
    tmp_path: Path, backend: str, durability: str, synchronous: int
) -> None:
    """The lab's shots are synced to the disk one by one; the simulated lab's are committed
    one by one without the sync (its runs are reproduced from config and seed)."""
    db = tmp_path / "runs.db"
    store = ShotStore(db, backend=backend)
    assert store.durability == durability
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == synchronous
    store.add_shot(**shot_values(0))
    assert (store.shots, store.durable_shots) == (1, 1)  # committed before add_shot returns
    assert read_metadata(store.dataset)["durability"] == durability
    store.close(KeyboardInterrupt())
    resumed = ShotStore.resume(store.run_id, db)  # the stored run's backend decides again
    assert resumed.durability == durability
    assert resumed.conn.execute("PRAGMA synchronous").fetchone()[0] == synchronous
    resumed.close()
    explicit = ShotStore(db, backend=backend, durability="synced")
    assert explicit.conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    explicit.close()


def test_batch_durability_commits_in_batches_and_at_the_end(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    store = ShotStore(db, durability="batch", batch_size=5, batch_seconds=3600)
    for i in range(7):
        store.add_shot(**shot_values(i))
    assert (store.shots, store.durable_shots) == (7, 5)
    assert resume_info(store.run_id, db).shots == 5
    store.finish()
    store.close()
    assert resume_info(store.run_id, db).shots == 7


@pytest.mark.parametrize("committed", [True, False])
def test_ctrl_c_around_a_commit_neither_loses_nor_duplicates(tmp_path, conns, committed) -> None:
    """QCoDeS defers Ctrl-C until its transaction is done and raises it afterwards."""
    db = tmp_path / "runs.db"
    store = ShotStore(db, durability="batch", batch_size=3, batch_seconds=3600)
    real_add_results = store.dataset.add_results

    def interrupted_add_results(rows):
        if committed:
            real_add_results(rows)
        raise KeyboardInterrupt

    store.dataset.add_results = interrupted_add_results
    store.add_shot(**shot_values(0))
    store.add_shot(**shot_values(1))
    with pytest.raises(KeyboardInterrupt):
        store.add_shot(**shot_values(2))
    store.dataset.add_results = real_add_results
    assert store.durable_shots == (3 if committed else 0)
    store.close(error=KeyboardInterrupt())
    data = load_by_id(store.run_id, conn=open_conn(db, conns)).get_parameter_data()
    np.testing.assert_array_equal(data["attempts"]["shot"], [0, 1, 2])


WRITER = textwrap.dedent(
    """
    import sys
    from control.storage import ShotStore

    def shot_values(i):
        return dict(
            pair_id=f"alice-bob#{i}", link="alice-bob", bell_state="PSI+", attempts=3 + i,
            herald_time_s=1e-3 * i, delivered_time_s=1e-3 * i, basis="XX", outcome_a=0,
            outcome_b=1,
        )

    store = ShotStore(sys.argv[1], requested_shots=10**6)
    print(f"run {store.run_id}", flush=True)
    for i in range(10**6):
        store.add_shot(**shot_values(i))
        print(i + 1, flush=True)
    """
)


def test_every_returned_shot_survives_sigkill(tmp_path: Path, conns) -> None:
    db = tmp_path / "runs.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        run_id = int(proc.stdout.readline().split()[1])
        returned = 0
        while returned < 300:
            line = proc.stdout.readline()
            assert line, "the writer stopped early"
            returned = int(line)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        # lines printed before the kill landed: those add_shot calls returned as well
        returned = max([returned, *(int(x) for x in proc.stdout.read().split())])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    ds = load_by_id(run_id, conn=open_conn(db, conns))
    stored = ds.get_parameter_data()["attempts"]
    assert returned <= stored["shot"].size <= returned + 1, "at most the shot in flight is lost"
    np.testing.assert_array_equal(stored["shot"][:returned], np.arange(returned))
    assert stored["attempts"][:returned].tolist() == [3 + i for i in range(returned)]
    info = resume_info(run_id, db)
    assert info.status == "interrupted" and info.metadata["status"] == "running"
