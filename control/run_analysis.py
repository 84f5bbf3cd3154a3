"""The numbers of a stored run (a QCoDeS dataset written by ``ShotStore``).

``load_shots`` reads the columns and metadata back; ``summary`` computes the numbers (per sweep
value when the run has a sweep): success probability per attempt (geometric maximum likelihood,
Wilson interval), heralded rate from the herald times, fidelity to the heralded Bell state and
the Bell-state-aligned correlator per basis (``sequences.analysis``), teleportation fidelity
per input state; ``format_summary`` renders them as text. ``control.report`` draws them.

Rates assume each sweep value was measured as one contiguous block of shots: the rate of a
block is (n - 1) / (t_last - t_first) over its herald times, which needs no time origin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sequences.analysis import (
    BELL_CORRELATOR_SIGNS,
    Z_95,
    correlator,
    fidelity_from_outcomes,
    wilson_interval,
)

from .stored_runs import (
    DEFAULT_DB_PATH,
    load_run,
    open_database,
    read_metadata,
    stored_columns,
)

BASES = ("XX", "YY", "ZZ")
BELL_STATES = tuple(BELL_CORRELATOR_SIGNS)

Columns = dict[str, np.ndarray]


def load_shots(
    run_id: int, db_path: str | Path = DEFAULT_DB_PATH
) -> tuple[Columns, dict[str, Any]]:
    """(columns, metadata) of a stored run: one array per column, in shot order (``shot``
    included; int columns as int64, float as float64, text as str), and the decoded metadata
    plus ``run_id``, ``run_name``, ``experiment``, ``sample``, ``completed``, ``guid``."""
    conn = open_database(db_path, create=False, writer=False)
    try:
        ds = load_run(conn, run_id)
        spec = stored_columns(ds)
        data = ds.get_parameter_data(*[c.name for c in spec]) if spec else {}
        meta = read_metadata(ds)
        meta.update(
            run_id=ds.run_id,
            run_name=ds.name,
            experiment=ds.exp_name,
            sample=ds.sample_name,
            completed=ds.completed,
            guid=ds.guid,
        )
    finally:
        conn.close()
    shot_arrays = [np.asarray(d["shot"]) for d in data.values()]
    shots = np.unique(np.concatenate(shot_arrays)) if shot_arrays else np.array([])
    columns: Columns = {"shot": shots.astype(np.int64)}
    for col in spec:
        values = np.asarray(data[col.name][col.name]) if col.name in data else np.array([])
        where = np.searchsorted(shots, np.asarray(data.get(col.name, {}).get("shot", [])))
        if col.kind == "text":
            full = np.full(shots.size, "", dtype=object)
        else:
            full = np.full(shots.size, np.nan)
        full[where] = values
        if col.kind == "text":
            full = full.astype(str)
        elif col.kind == "int" and where.size == shots.size:
            full = full.astype(np.int64)
        columns[col.name] = full
    return columns, meta


# -- numbers ------------------------------------------------------------------------------
def _ci(value: float, stderr: float) -> list[float]:
    return [value - Z_95 * stderr, value + Z_95 * stderr]


def _success_probability(attempts: np.ndarray) -> dict[str, Any]:
    """p = shots / attempts (geometric MLE), stderr p*sqrt((1-p)/n), Wilson 95% interval."""
    n, total = int(attempts.size), int(attempts.sum())
    if n == 0 or total < n:
        return {}  # not attempt counts (each success takes at least one attempt)
    p = n / total
    return {
        "attempts": total,
        "attempts_mean": total / n,
        "success_probability": p,
        "success_probability_stderr": p * math.sqrt(max(1 - p, 0.0) / n),
        "success_probability_ci95": list(wilson_interval(n, total)),
    }


def _rate(cols: Columns, sel: np.ndarray) -> dict[str, Any]:
    if "herald_time_s" not in cols or sel.sum() < 2:
        return {}
    order = np.argsort(cols["herald_time_s"][sel], kind="stable")
    t = cols["herald_time_s"][sel][order]
    gaps = np.diff(t)
    span = float(t[-1] - t[0])
    if span <= 0:
        return {}
    rate = gaps.size / span
    cv = float(np.std(gaps, ddof=1) / np.mean(gaps)) if gaps.size > 1 else 1.0
    out = {"heralded_rate_per_s": rate, "heralded_rate_stderr": rate * cv / math.sqrt(gaps.size)}
    if "attempts" in cols:
        out["attempt_rate_per_s"] = float(cols["attempts"][sel][order][1:].sum()) / span
    if "delivered_time_s" in cols:
        out["delivery_latency_s"] = float(
            np.mean(cols["delivered_time_s"][sel] - cols["herald_time_s"][sel])
        )
    return out


def _readout(cal: Mapping[str, Any], key: str) -> tuple[float, float] | None:
    value = cal.get(key)
    return None if value is None else (float(value[0]), float(value[1]))


def _fidelity(cols: Columns, sel: np.ndarray, cal: Mapping[str, Any]) -> dict[str, Any]:
    need = ("bell_state", "basis", "outcome_a", "outcome_b")
    if not all(k in cols for k in need):
        return {}
    sel = sel & np.isin(cols["basis"], BASES) & np.isin(cols["bell_state"], BELL_STATES)
    if not set(BASES) <= set(cols["basis"][sel].tolist()):
        return {}
    args = [cols[k][sel] for k in need]
    out: dict[str, Any] = {}
    est = fidelity_from_outcomes(*args)
    out.update(fidelity=est.value, fidelity_stderr=est.stderr, fidelity_ci95=list(est.interval()))
    ra, rb = _readout(cal, "readout_a"), _readout(cal, "readout_b")
    if ra or rb:
        est = fidelity_from_outcomes(*args, readout_a=ra, readout_b=rb)
        out.update(
            fidelity_corrected=est.value,
            fidelity_corrected_stderr=est.stderr,
            fidelity_corrected_ci95=list(est.interval()),
        )
    return out


def _correlators(cols: Columns, sel: np.ndarray) -> dict[str, Any]:
    """Per basis: P(same outcome) and the correlator aligned with each shot's heralded Bell
    state (sign of its stabiliser), combined over heralded states weighted by their counts as
    in ``fidelity_from_outcomes``, so F = (1 + sum of the three) / 4."""
    if not all(k in cols for k in ("bell_state", "basis", "outcome_a", "outcome_b")):
        return {}
    out: dict[str, Any] = {}
    a, b = cols["outcome_a"], cols["outcome_b"]
    for basis in BASES:
        in_basis = sel & (cols["basis"] == basis)
        n = int(in_basis.sum())
        if n == 0:
            continue
        same = float(np.mean(a[in_basis] == b[in_basis]))
        entry: dict[str, Any] = {
            "shots": n,
            "p_same": same,
            "p_same_ci95": list(wilson_interval(int(round(same * n)), n)),
            "per_bell_state": {},
        }
        value, var, weight_known = 0.0, 0.0, 0.0
        for state in sorted(set(cols["bell_state"][in_basis].tolist())):
            s = in_basis & (cols["bell_state"] == state)
            est = correlator(a[s], b[s])
            w = s.sum() / n
            entry["per_bell_state"][state] = {
                "shots": int(s.sum()),
                "correlator": est.value,
                "stderr": est.stderr,
            }
            if state in BELL_CORRELATOR_SIGNS:
                value += w * BELL_CORRELATOR_SIGNS[state][BASES.index(basis)] * est.value
                var += (w * est.stderr) ** 2
                weight_known += w
        if weight_known > 0:
            err = math.sqrt(var)
            entry.update(aligned=value, aligned_stderr=err, aligned_ci95=_ci(value, err))
        out[basis] = entry
    return out


def _teleportation(cols: Columns, sel: np.ndarray) -> dict[str, Any]:
    if "input_state" not in cols or "correct" not in cols or not sel.any():
        return {}
    per_state = {}
    for state in sorted(set(cols["input_state"][sel].tolist())):
        s = sel & (cols["input_state"] == state)
        n, k = int(s.sum()), int(np.sum(cols["correct"][s]))
        f = k / n
        per_state[state] = {
            "shots": n,
            "fidelity": f,
            "stderr": math.sqrt(f * (1 - f) / n),
            "ci95": list(wilson_interval(k, n)),
        }
    fids = [v["fidelity"] for v in per_state.values()]
    err = math.sqrt(sum(v["stderr"] ** 2 for v in per_state.values())) / len(fids)
    mean = float(np.mean(fids))
    return {
        "teleportation_fidelity": mean,
        "teleportation_fidelity_stderr": err,
        "teleportation_fidelity_ci95": _ci(mean, err),
        "per_input_state": per_state,
    }


def _group(cols: Columns, sel: np.ndarray, cal: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"shots": int(sel.sum())}
    if not sel.any():
        return out
    if "attempts" in cols:
        out.update(_success_probability(cols["attempts"][sel]))
    out.update(_rate(cols, sel))
    out.update(_fidelity(cols, sel, cal))
    if "fidelity_exact" in cols and np.isfinite(cols["fidelity_exact"][sel]).any():
        out["fidelity_exact_mean"] = float(np.nanmean(cols["fidelity_exact"][sel]))
    out["correlators"] = _correlators(cols, sel)
    tele = _teleportation(cols, sel)
    if tele:
        out["teleportation"] = tele
    return out


def _analyse(cols: Columns, meta: Mapping[str, Any]) -> dict[str, Any]:
    cal = meta.get("calibration") or {}
    everything = np.ones(cols["shot"].size, dtype=bool)
    out: dict[str, Any] = {
        k: meta.get(k)
        for k in ("run_id", "run_name", "config_name", "experiment", "sample", "backend", "seed")
    }
    out.update(
        status="completed" if meta.get("completed") else "interrupted",
        requested_shots=meta.get("requested_shots"),
        sweep=meta.get("sweep"),
        overall=_group(cols, everything, cal),
        points=[],
    )
    if "sweep_value" in cols:
        sweep_values = cols["sweep_value"]
        for v in np.unique(sweep_values[np.isfinite(sweep_values)]):
            out["points"].append({"sweep_value": float(v), **_group(cols, sweep_values == v, cal)})
    return out


def summary(run_id: int, db_path: str | Path = DEFAULT_DB_PATH) -> dict[str, Any]:
    """The numbers behind the report, JSON-serialisable: run identity, ``overall`` (all
    shots) and ``points`` (one per sweep value; empty without a sweep)."""
    cols, meta = load_shots(run_id, db_path)
    return _analyse(cols, meta)


# -- plots --------------------------------------------------------------------------------


def format_summary(s: Mapping[str, Any]) -> str:
    """``summary(...)`` as lines of text (overall, then one line per sweep value)."""

    def line(p: Mapping[str, Any]) -> str:
        parts = [f"{p['shots']} shots"]
        if "success_probability" in p:
            parts.append(
                f"p = {p['success_probability']:.4g} ± {p['success_probability_stderr']:.2g}"
            )
        if "heralded_rate_per_s" in p:
            rate, err = p["heralded_rate_per_s"], p["heralded_rate_stderr"]
            parts.append(f"rate = {rate:.4g} ± {err:.2g} /s")
        if "fidelity" in p:
            parts.append(f"F = {p['fidelity']:.4f} ± {p['fidelity_stderr']:.4f}")
        if "fidelity_corrected" in p:
            parts.append(f"F(readout-corrected) = {p['fidelity_corrected']:.4f}")
        if "fidelity_exact_mean" in p:
            parts.append(f"F(exact) = {p['fidelity_exact_mean']:.4f}")
        if "teleportation" in p:
            t = p["teleportation"]
            f, e = t["teleportation_fidelity"], t["teleportation_fidelity_stderr"]
            parts.append(f"F(teleportation) = {f:.4f} ± {e:.4f}")
        return ", ".join(parts)

    head = f"run {s['run_id']} ({s.get('config_name') or s.get('run_name')}, {s['status']}"
    lines = [f"{head}, backend {s.get('backend')}, seed {s.get('seed')}): {line(s['overall'])}"]
    sweep = s.get("sweep") or {}
    for p in s["points"]:
        unit = f" {sweep.get('unit')}" if sweep.get("unit") else ""
        lines.append(f"  {sweep.get('name', 'sweep')} = {p['sweep_value']:.4g}{unit}: {line(p)}")
    return "\n".join(lines)
