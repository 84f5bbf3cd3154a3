"""The standard plots of a stored run, as PNG files.

``write_report`` draws what ``control.run_analysis.summary`` computes: fidelity and heralded
rate against the swept parameter with error bars, the histogram of attempts to success with
the geometric fit, the correlators per basis and the teleportation fidelity per input state.
Figures are made with matplotlib's Agg renderer without pyplot, so a notebook's backend and
figures are left alone. ``summary``, ``load_shots`` and ``format_summary`` are re-exported
for notebooks.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sequences.analysis import Z_95

from .run_analysis import (
    BASES,
    Columns,
    _analyse,
    format_summary,
    load_shots,
    summary,
)
from .stored_runs import DEFAULT_DB_PATH

__all__ = ["format_summary", "load_shots", "summary", "write_report"]


def _figure(nrows: int = 1, height: float = 4.0, width: float = 7.0) -> Figure:
    fig = Figure(figsize=(width, height * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _title(s: Mapping[str, Any], what: str) -> str:
    return f"run {s['run_id']} · {s.get('config_name') or s.get('run_name')}: {what}"


def _sweep_axis(s: Mapping[str, Any]) -> tuple[list[dict[str, Any]], np.ndarray, str]:
    if s["points"]:
        sweep = s.get("sweep") or {"name": "sweep value", "unit": ""}
        unit = f" ({sweep['unit']})" if sweep.get("unit") else ""
        xs = np.array([p["sweep_value"] for p in s["points"]])
        return s["points"], xs, f"{sweep['name']}{unit}"
    return [s["overall"]], np.array([0.0]), ""


def _errorbar(
    ax: Axes, xs: np.ndarray, pts: list[dict], key: str, err_key: str = "", **kw: Any
) -> bool:
    """Points ``key`` of each sweep point with 95% error bars from ``err_key`` (if any)."""
    err_key = err_key or f"{key}_stderr"
    have = [(x, p[key], p.get(err_key, 0.0)) for x, p in zip(xs, pts, strict=True) if key in p]
    if not have:
        return False
    x, y, e = (np.array(v) for v in zip(*have, strict=True))
    ax.errorbar(x, y, yerr=Z_95 * e, capsize=4, **kw)
    return True


def _plot_fidelity_rate(s: dict[str, Any], path: Path) -> Path:
    pts, xs, xlabel = _sweep_axis(s)
    fig = _figure(2, 3.2)
    ax_f, ax_r = fig.subplots(2, 1, sharex=True)
    if _errorbar(ax_f, xs, pts, "fidelity", fmt="o-", label="estimated from outcomes (95% CI)"):
        _errorbar(ax_f, xs, pts, "fidelity_corrected", fmt="s--", label="readout-corrected")
        _errorbar(ax_f, xs, pts, "fidelity_exact_mean", fmt="x:", label="exact (simulation)")
        ax_f.axhline(0.5, color="grey", lw=0.8, ls="--", label="classical limit 1/2")
        ax_f.set_ylabel("fidelity to heralded Bell state")
    elif any("teleportation" in p for p in pts):
        tele = [p.get("teleportation", {}) for p in pts]
        _errorbar(ax_f, xs, tele, "teleportation_fidelity", fmt="o-", label="mean over inputs")
        ax_f.axhline(2 / 3, color="grey", lw=0.8, ls="--", label="classical limit 2/3")
        ax_f.set_ylabel("teleportation fidelity")
    else:
        ax_f.text(0.5, 0.5, "no XX/YY/ZZ verification shots", ha="center", transform=ax_f.transAxes)
    if ax_f.get_legend_handles_labels()[0]:
        ax_f.legend(loc="best", fontsize="small")
    ax_f.set_title(_title(s, "fidelity and heralded rate"))
    rate_key, rate_err = "heralded_rate_per_s", "heralded_rate_stderr"
    if not _errorbar(ax_r, xs, pts, rate_key, rate_err, fmt="o-", label="95% CI"):
        ax_r.text(0.5, 0.5, "no herald times", ha="center", transform=ax_r.transAxes)
    ax_r.set_ylabel("heralded rate (1/s)")
    if s["points"]:
        ax_r.set_xlabel(xlabel)
    else:
        ax_r.set_xticks([0.0], [f"all {s['overall']['shots']} shots"])
    fig.savefig(path, dpi=100)
    return path


def _plot_attempts(s: dict[str, Any], cols: Columns, path: Path) -> Path:
    fig = _figure(width=10.0)
    ax = fig.add_subplot()
    attempts = cols["attempts"]
    kmax = int(attempts.max())
    edges = np.unique(np.floor(np.linspace(0, kmax, min(kmax, 40) + 1))) + 0.5
    if s["points"]:
        groups = [
            (cols["sweep_value"] == p["sweep_value"], p, f"{p['sweep_value']:.4g}")
            for p in s["points"]
        ]
        name = (s.get("sweep") or {}).get("name", "sweep")
    else:
        groups = [(np.ones(attempts.size, dtype=bool), s["overall"], "")]
        name = ""
    for i, (sel, p, label) in enumerate(groups):
        colour = f"C{i}"
        prob = p["success_probability"]
        prefix = f"{name} = {label}: " if label else ""
        ax.hist(attempts[sel], bins=edges, histtype="step", color=colour, label=f"{prefix}shots")
        k_lo, k_hi = np.ceil(edges[:-1]), np.floor(edges[1:])
        expected = sel.sum() * ((1 - prob) ** (k_lo - 1) - (1 - prob) ** k_hi)
        ax.plot(
            0.5 * (edges[:-1] + edges[1:]),
            expected,
            ls="--",
            color=colour,
            label=f"{prefix}geometric fit p = {prob:.3g} ± {p['success_probability_stderr']:.2g}",
        )
        ax.axvline(1 / prob, color=colour, ls=":", label=f"{prefix}expected 1/p = {1 / prob:.3g}")
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.3)
    ax.set_xlabel("attempts to success (attempts)")
    ax.set_ylabel("shots per bin (counts)")
    ax.set_title(_title(s, "attempts to success"))
    fig.legend(loc="outside right upper", fontsize="x-small")
    fig.savefig(path, dpi=100)
    return path


def _grouped_bars(ax: Axes, s: dict[str, Any], items: list[str], getter: Any) -> None:
    """Bars per item (x) and per sweep point (colour); getter(point, item) -> (value, lo, hi)."""
    pts = s["points"] or [s["overall"]]
    width = 0.8 / len(pts)
    name = (s.get("sweep") or {}).get("name", "")
    for i, p in enumerate(pts):
        found = [(j, getter(p, it)) for j, it in enumerate(items) if getter(p, it) is not None]
        if not found:
            continue
        x = np.array([j for j, _ in found]) - 0.4 + width * (i + 0.5)
        y = np.array([v[0] for _, v in found])
        err = np.array([[v[0] - v[1] for _, v in found], [v[2] - v[0] for _, v in found]])
        label = f"{name} = {p['sweep_value']:.4g}" if "sweep_value" in p else "all shots"
        ax.bar(x, y, width=width, yerr=err, capsize=3, color=f"C{i}", label=label)
    ax.set_xticks(range(len(items)), items)
    ax.legend(fontsize="small")


def _plot_correlators(s: dict[str, Any], path: Path) -> Path:
    fig = _figure()
    ax = fig.add_subplot()

    def get(p: dict[str, Any], basis: str) -> tuple[float, float, float] | None:
        c = p.get("correlators", {}).get(basis)
        if not c or "aligned" not in c:
            return None
        return (c["aligned"], *c["aligned_ci95"])

    _grouped_bars(ax, s, list(BASES), get)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("measurement basis")
    ax.set_ylabel("correlator × sign for heralded Bell state (1)")
    ax.set_title(_title(s, "outcome correlations per basis (95% CI)"))
    fig.savefig(path, dpi=100)
    return path


def _plot_teleportation(s: dict[str, Any], path: Path) -> Path:
    fig = _figure()
    ax = fig.add_subplot()
    states = sorted(
        {
            st
            for p in (s["points"] or [s["overall"]])
            for st in p["teleportation"]["per_input_state"]
        }
    )

    def get(p: dict[str, Any], state: str) -> tuple[float, float, float] | None:
        e = p.get("teleportation", {}).get("per_input_state", {}).get(state)
        return None if e is None else (e["fidelity"], *e["ci95"])

    _grouped_bars(ax, s, states, get)
    ax.axhline(2 / 3, color="grey", ls="--", lw=0.8, label="classical limit 2/3")
    ax.legend(fontsize="small")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("input state")
    ax.set_ylabel("teleportation fidelity (1)")
    ax.set_title(_title(s, "fidelity per input state (Wilson 95% CI)"))
    fig.savefig(path, dpi=100)
    return path


def write_report(
    run_id: int, db_path: str | Path = DEFAULT_DB_PATH, out_dir: str | Path = "runs/reports"
) -> list[Path]:
    """Write the standard PNG plots of a run into ``out_dir``; returns their paths: fidelity
    and heralded rate (vs the sweep, or one point), attempts histogram with the geometric fit,
    correlators per basis, and fidelity per input state for teleportation runs. A plot whose
    data the run lacks is skipped."""
    cols, meta = load_shots(run_id, db_path)
    s = _analyse(cols, meta)
    if s["overall"]["shots"] == 0:
        raise ValueError(f"run {run_id} holds no shots; nothing to plot")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"run{run_id}"
    paths = [_plot_fidelity_rate(s, out / f"{stem}_fidelity_rate.png")]
    if "success_probability" in s["overall"]:
        paths.append(_plot_attempts(s, cols, out / f"{stem}_attempts.png"))
    if s["overall"].get("correlators"):
        paths.append(_plot_correlators(s, out / f"{stem}_correlators.png"))
    if "teleportation" in s["overall"]:
        paths.append(_plot_teleportation(s, out / f"{stem}_teleportation.png"))
    return paths
