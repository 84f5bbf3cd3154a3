"""Report of a stored run: synthetic shots from a known model, recovered within 3 sigma."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from control.report import format_summary, load_shots, summary, write_report
from control.shot_columns import TELEPORTATION_COLUMNS, Column, Sweep
from control.storage import ShotStore
from sequences.analysis import BELL_CORRELATOR_SIGNS

BASES = ("XX", "YY", "ZZ")
PERIOD_S = 5e-6  # attempt period
LATENCY_S = 2e-5  # herald to delivery
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: (sweep value, Werner fidelity F, success probability per attempt p)
POINTS = ((0.05, 0.92, 0.01), (0.10, 0.84, 0.02), (0.20, 0.68, 0.04))
SHOTS_PER_POINT = 1500
TELEPORT_FIDELITY = {"0": 0.95, "1": 0.93, "+": 0.85, "-": 0.86, "+i": 0.80, "-i": 0.82}


def werner_shots(rng: np.random.Generator, n: int, fidelity: float, p: float, t0: float):
    """n heralded pairs of a Werner state of fidelity F to the heralded Bell state (PSI+ or
    PSI-), measured in XX, YY, ZZ in turn: <PP> = sign(state, basis) (4F - 1)/3 (Werner,
    PRA 40, 4277 (1989)); attempts geometric in p, one attempt per PERIOD_S."""
    attempts = rng.geometric(p, n)
    herald = t0 + np.cumsum(attempts) * PERIOD_S
    states = rng.choice(["PSI+", "PSI-"], n)
    bases = np.array([BASES[i % 3] for i in range(n)])
    signs = np.array([BELL_CORRELATOR_SIGNS[s][i % 3] for i, s in enumerate(states)])
    same = rng.random(n) < (1 + signs * (4 * fidelity - 1) / 3) / 2
    a = rng.integers(0, 2, n)
    b = np.where(same, a, 1 - a)
    for i in range(n):
        yield dict(
            link="alice-bob",
            bell_state=str(states[i]),
            attempts=int(attempts[i]),
            herald_time_s=float(herald[i]),
            delivered_time_s=float(herald[i] + LATENCY_S),
            basis=str(bases[i]),
            outcome_a=int(a[i]),
            outcome_b=int(b[i]),
            fidelity_exact=fidelity,
        )


@pytest.fixture(scope="module")
def swept_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    rng = np.random.default_rng(2024)
    db = tmp_path_factory.mktemp("swept") / "runs.db"
    with ShotStore(
        db,
        sweep=Sweep("alpha", ""),
        config={"name": "synthetic_werner"},
        seed=2024,
        requested_shots=SHOTS_PER_POINT * len(POINTS),
        durability="batch",
    ) as store:
        t0 = 0.0
        for value, fidelity, p in POINTS:
            for shot in werner_shots(rng, SHOTS_PER_POINT, fidelity, p, t0):
                pair = f"alice-bob#{store.shots}"
                store.add_shot(sweep_value=value, pair_id=pair, **shot)
                t0 = shot["herald_time_s"]
    return db, store.run_id


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert len(data) > 10_000, f"{path}: {len(data)} bytes"
    image = imread(path)
    assert image.shape[0] > 200 and image.shape[1] > 400
    assert image.std() > 0.01, "not a blank image"


def test_swept_run_report_recovers_the_model(swept_run, tmp_path: Path) -> None:
    db, run_id = swept_run
    paths = write_report(run_id, db, tmp_path / "report")
    assert [p.name for p in paths] == [
        f"run{run_id}_fidelity_rate.png",
        f"run{run_id}_attempts.png",
        f"run{run_id}_correlators.png",
    ]
    for path in paths:
        assert_png(path)

    s = summary(run_id, db)
    assert s["status"] == "completed" and s["config_name"] == "synthetic_werner"
    assert s["sweep"] == {"name": "alpha", "unit": ""}
    assert [p["sweep_value"] for p in s["points"]] == [v for v, _, _ in POINTS]
    for point, (_, fidelity, p) in zip(s["points"], POINTS, strict=True):
        assert point["shots"] == SHOTS_PER_POINT
        assert abs(point["fidelity"] - fidelity) < 3 * point["fidelity_stderr"]
        sp, sp_err = point["success_probability"], point["success_probability_stderr"]
        assert abs(sp - p) < 3 * sp_err
        lo, hi = point["success_probability_ci95"]
        assert lo < sp < hi
        rate, rate_err = point["heralded_rate_per_s"], point["heralded_rate_stderr"]
        assert abs(rate - p / PERIOD_S) < 3 * rate_err
        assert point["delivery_latency_s"] == pytest.approx(LATENCY_S, rel=1e-6)
        assert point["fidelity_exact_mean"] == pytest.approx(fidelity)
        corr = point["correlators"]
        for basis in BASES:
            expected = (4 * fidelity - 1) / 3
            assert abs(corr[basis]["aligned"] - expected) < 3 * corr[basis]["aligned_stderr"]
        # the aligned correlators are the pieces of the fidelity estimate
        total = (1 + sum(corr[b]["aligned"] for b in BASES)) / 4
        assert total == pytest.approx(point["fidelity"], abs=1e-12)
    text = format_summary(s)
    assert f"run {run_id} (synthetic_werner, completed" in text
    assert text.count("alpha = ") == 3


def test_load_shots_columns_and_metadata(swept_run) -> None:
    db, run_id = swept_run
    cols, meta = load_shots(run_id, db)
    n = SHOTS_PER_POINT * len(POINTS)
    np.testing.assert_array_equal(cols["shot"], np.arange(n))
    assert cols["attempts"].dtype == np.int64 and cols["attempts"].min() >= 1
    assert cols["pair_id"][17] == "alice-bob#17" and cols["basis"][:3].tolist() == list(BASES)
    assert cols["sweep_value"].dtype == np.float64 and len(cols) == 12
    assert meta["run_id"] == run_id and meta["completed"] and meta["seed"] == 2024


def test_teleportation_run_without_sweep(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    db = tmp_path / "runs.db"
    per_state = 300
    with ShotStore(
        db,
        columns=TELEPORTATION_COLUMNS,
        run_name="teleport",
        config={"name": "synthetic_teleport"},
        calibration={"readout_a": [0.97, 0.99], "readout_b": [0.96, 0.98]},
        durability="batch",
    ) as store:
        shots = werner_shots(rng, per_state * len(TELEPORT_FIDELITY), 0.85, 0.03, 0.0)
        states = np.repeat(list(TELEPORT_FIDELITY), per_state)
        for state, shot in zip(states, shots, strict=True):
            correct = int(rng.random() < TELEPORT_FIDELITY[state])
            store.add_shot(pair_id="alice-bob#0", input_state=str(state), correct=correct, **shot)
    paths = write_report(store.run_id, db, tmp_path / "report")
    assert [p.name.split("_", 1)[1] for p in paths] == [
        "fidelity_rate.png",
        "attempts.png",
        "correlators.png",
        "teleportation.png",
    ]
    for path in paths:
        assert_png(path)
    s = summary(store.run_id, db)
    assert s["points"] == [] and s["sweep"] is None
    tele = s["overall"]["teleportation"]
    for state, fidelity in TELEPORT_FIDELITY.items():
        entry = tele["per_input_state"][state]
        assert entry["shots"] == per_state
        assert abs(entry["fidelity"] - fidelity) < 3 * entry["stderr"]
    mean = np.mean(list(TELEPORT_FIDELITY.values()))
    assert abs(tele["teleportation_fidelity"] - mean) < 3 * tele["teleportation_fidelity_stderr"]
    overall = s["overall"]
    assert abs(overall["fidelity"] - 0.85) < 3 * overall["fidelity_stderr"]
    # readout correction from the calibration in force raises the estimate
    assert overall["fidelity_corrected"] > overall["fidelity"]


def test_run_without_standard_columns_and_bad_run_ids(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    with ShotStore(db, columns=[Column("counts", "int", "1", "Counts")]) as store:
        for i in range(3):
            store.add_shot(counts=i)
    paths = write_report(store.run_id, db, tmp_path / "report")
    assert [p.name for p in paths] == [f"run{store.run_id}_fidelity_rate.png"]
    assert_png(paths[0])
    assert summary(store.run_id, db)["overall"]["shots"] == 3
    with pytest.raises(ValueError, match=r"run_id=42: no such run"):
        summary(42, db)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_report(1, tmp_path / "missing.db", tmp_path / "report")
