"""What a run command prints at its end: the summary as JSON or as a table (entangle and
swap, CHSH, teleport), the faults a dry run met, and the exit code that tells scripts how
the run ended."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from .cli import err


def report(summary: dict[str, Any], as_json: bool, show: Any) -> None:
    """Print a run's summary (JSON or table); exit 1 if the run was aborted, 130 if it was
    interrupted, so scripts can tell."""
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2, default=float) + "\n")
    else:
        show(summary)
    if summary.get("aborted"):
        err.print(f"[bold red]run aborted:[/] {summary['aborted']}", soft_wrap=True)
        raise typer.Exit(1)
    if summary.get("interrupted"):
        raise typer.Exit(130)


def _summary_table(title: str) -> Table:
    """A run's summary table: quantity, value and its 95% confidence interval."""
    table = Table(title=title)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_column("95% CI", justify="right")
    return table


def _add_cutoff_row(table: Table, s: dict[str, Any]) -> None:
    """The tries a cut-off ended (and that were run again), when there were any."""
    if s.get("tries_cut_off"):
        table.add_row("tries ended at a cut-off (run again)", f"{s['tries_cut_off']:,}", "")


def print_entangle_summary(s: dict[str, Any]) -> None:
    out = Console()
    if s["shots"] == 0:
        out.print("no shots completed")
        return
    table = _summary_table(f"Heralded entanglement, {s['parameters']['link']} ({s['backend']} lab)")

    def ci(pair: list[float], fmt: str) -> str:
        return f"{pair[0]:{fmt}} .. {pair[1]:{fmt}}"

    rate = s["heralded_rate_per_s"]
    table.add_row("pairs delivered", f"{s['shots']} of {s['requested_shots']}", "")
    table.add_row("heralded rate (per simulated s)", f"{rate:.4g} /s" if rate else "-", "")
    table.add_row(
        "success probability per attempt",
        f"{s['success_probability_per_attempt']:.4g}",
        ci(s["success_probability_ci95"], ".4g"),
    )
    table.add_row("attempts per success", f"{s['attempts_per_success']:.4g}", "")
    if "fidelity_estimate" in s:
        table.add_row(
            "fidelity (readout-corrected)",
            f"{s['fidelity_estimate']:.4f}",
            ci(s["fidelity_ci95"], ".4f"),
        )
        table.add_row(
            "fidelity (raw outcomes)",
            f"{s['fidelity_estimate_raw']:.4f}",
            ci(s["fidelity_raw_ci95"], ".4f"),
        )
    if s.get("exact_fidelity_mean") is not None:
        table.add_row("fidelity of simulated state (exact)", f"{s['exact_fidelity_mean']:.4f}", "")
    _add_cutoff_row(table, s)
    table.add_row("simulated time", f"{s['simulated_time_s']:.4g} s", "")
    if "run_id" in s:
        table.add_row("stored as", f"run {s['run_id']} in {s['database']}", "")
    out.print(table)
    params = Table(title="Parameters", show_header=False)
    for key, value in s["parameters"].items():
        if value is None:  # e.g. alpha of Barrett-Kok, a cut-off not set
            continue
        params.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    params.add_row("seed", str(s["seed"]))
    params.add_row("network", s["network"])
    out.print(params)


def print_chsh_summary(summary: dict[str, Any]) -> None:
    if "chsh_s" not in summary:
        Console().print(f"{summary['shots']} pairs: too few to cover the four CHSH settings")
        return
    lo, hi = summary["chsh_ci95"]
    verdict = "violates" if summary["violates_local_bound"] else "does not violate"
    Console().print(
        f"CHSH on {summary['link']}: S = {summary['chsh_s']:.3f} (95% CI {lo:.3f} .. {hi:.3f}) "
        f"from {summary['shots']} pairs; {verdict} the local bound 2"
    )


def print_teleport_summary(s: dict[str, Any]) -> None:
    out = Console()
    if s["shots"] == 0:
        out.print("no shots completed")
        return
    table = _summary_table(f"Teleportation over the chain ({s['backend']} lab, {s['network']})")
    lo, hi = s["fidelity_ci95"]
    table.add_row("teleportations", f"{s['shots']} of {s['requested_shots']}", "")
    rate = s["teleportations_per_simulated_s"]
    table.add_row("rate (per simulated s)", f"{rate:.4g} /s" if rate else "-", "")
    table.add_row("attempts per link success", f"{s['attempts_per_success']:.4g}", "")
    table.add_row(
        "fidelity from outcomes", f"{s['fidelity_estimate']:.4f}", f"{lo:.4f} .. {hi:.4f}"
    )
    _add_cutoff_row(table, s)
    if s.get("exact_fidelity_mean") is not None:
        table.add_row("fidelity of simulated state (exact)", f"{s['exact_fidelity_mean']:.4f}", "")
    for name, value in s["per_input_state"].items():
        table.add_row(f"  input {name}", f"{value:.3f}", "")
    table.add_row("wall-clock rate", f"{s['teleportations_per_wall_s']:.1f} /s", "")
    if "run_id" in s:
        table.add_row("stored as", f"run {s['run_id']} in {s['database']}", "")
    out.print(table)
    if s.get("safe_state_failures"):
        out.print(
            f"[red]instruments that did not reach their safe state:[/] {s['safe_state_failures']}"
        )
    if s.get("faults"):
        _print_faults(out, s["faults"])


def _print_faults(out: Console, faults: dict[str, Any]) -> None:
    """Injected faults and what the drivers and the run did about them."""
    table = Table(title="Faults")
    for column in ("instrument", "injected", "retries", "reconnects", "reboots", "gave up"):
        table.add_column(column)
    names = sorted(set(faults["injected"]) | set(faults["handled"]))
    for name in names:
        injected = ", ".join(f"{k} x{v}" for k, v in faults["injected"].get(name, {}).items())
        h = faults["handled"].get(name, {})
        table.add_row(
            name,
            injected or "-",
            *(str(h.get(key, 0)) for key in ("retries", "reconnects", "reboots", "gave_up")),
        )
    out.print(table)
    out.print(f"shots abandoned and run again: {faults['abandoned_shots']}")
