"""`qnode`: the command line of the node controller.

qnode entangle --config lab_configs/nv_delft_link.yaml      # simulated dry run
qnode entangle --config ... --shots 5000 --seed 7 --json    # summary as JSON on stdout
qnode validate lab_configs/nv_delft_link.yaml               # check a config, touch nothing
"""

from __future__ import annotations

import json
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

app = typer.Typer(
    name="qnode",
    help="Run quantum-network sequences on real instruments or on the simulated lab.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
err = Console(stderr=True)

#: options shared by the run commands
SeedOption = Annotated[int | None, typer.Option(min=0, help="Seed (default: the file's).")]
StoreOption = Annotated[bool, typer.Option(help="Store every shot in the database.")]
DbOption = Annotated[Path, typer.Option(help="QCoDeS database for the shots.")]


class Durability(StrEnum):
    """How each stored shot reaches the disk (``control.storage``)."""

    synced = "synced"
    shot = "shot"
    batch = "batch"


DurabilityOption = Annotated[
    Durability | None,
    typer.Option(
        help="How each shot reaches the disk: synced (survives a power cut), shot (survives "
        "a crash of qnode), batch (committed every 1000 shots or second; fastest) "
        "[default: synced in the lab, shot in the simulated lab].",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Summary as JSON on stdout.")]
ProgressOption = Annotated[bool, typer.Option(help="Show a progress bar on stderr.")]
LabOption = Annotated[bool, typer.Option("--lab/--sim", help="Real instruments or simulated lab.")]
AlphaOption = Annotated[
    float | None,
    typer.Option(
        min=1e-6,
        max=0.5,
        help="Bright-state population (default: the link's calibrated alpha from qnode "
        "calibrate, else 0.1; 0.05 for chsh).",
    ),
]


def _shipped_config(relative: str) -> Path:
    """A default network file: ``relative`` to the working directory when it is there (the
    project's root, as the README runs it), else the project's own copy beside the
    installed package (an editable install run from another directory)."""
    path = Path(relative)
    if path.exists():
        return path
    shipped = Path(__file__).resolve().parent.parent / relative
    return shipped if shipped.exists() else path


DEFAULT_NETWORK = _shipped_config("lab_configs/two_node.network.yaml")
DEFAULT_CHAIN = _shipped_config("lab_configs/three_node_chain.network.yaml")


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _run_with_progress(name: str, shots: int, progress: bool, as_json: bool, run) -> dict:
    """Run ``run(tick)`` under a progress bar; configuration errors end in a clear message."""
    import signal

    from .backend import InstrumentConnectionError
    from .network_config import NetworkConfigError
    from .rpc import RpcError

    def terminate(*_: object) -> None:  # SIGTERM (a scheduler, systemd) stops like Ctrl-C
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    tick = _Tick(_progress_bar(progress, as_json), name, shots)
    try:
        try:
            return run(tick)
        finally:
            if tick.bar.live.is_started:
                tick.bar.stop()
    except (NetworkConfigError, InstrumentConnectionError, ValueError) as exc:
        _fail(str(exc))
    except RpcError as exc:
        _fail(f"a node controller did not answer: {exc}", code=1)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _sweep(run, text, base, seed, workers, dask, as_json, keys) -> None:
    """Run a sweep's points in parallel and print one row per point."""
    from .sweeps import SweepSpec, run_sweep

    try:
        spec = SweepSpec.parse(text)
    except ValueError as exc:
        _fail(str(exc))
    if base.get("backend") == "lab":
        _fail("--sweep runs simulated points in parallel; it cannot be combined with --lab")
    base_seed = seed if seed is not None else 0
    err.print(f"sweeping {spec.name} over {spec.values()} ({len(spec.values())} points)")
    try:
        results = run_sweep(
            run,
            spec,
            base,
            base_seed,
            workers=workers,
            dask_scheduler=dask,
            on_point=lambda i, r: err.print(f"  point {i}: {spec.name}={r['sweep_value']:g} done"),
        )
    except ValueError as exc:
        _fail(str(exc))
    if as_json:
        sys.stdout.write(json.dumps(results, indent=2, default=float) + "\n")
        return
    table = Table(title=f"Sweep of {spec.name} (seed {base_seed})")
    table.add_column(spec.name, justify="right")
    for key in keys:
        table.add_column(key.replace("_", " "), justify="right")
    for r in results:
        table.add_row(
            f"{r['sweep_value']:g}",
            *(f"{r.get(k):.4g}" if isinstance(r.get(k), float) else str(r.get(k)) for k in keys),
        )
    Console().print(table)


class _Tick:
    """A run's progress: ``tick(done)`` after each shot; ``tick.cutoffs(n)`` while tries
    end at a cut-off (shown with the tries each shot took so far). The bar appears at the
    first call: a bad config is told plainly, without a bar."""

    def __init__(self, bar: Progress, name: str, shots: int) -> None:
        self.bar, self.shots, self.done = bar, shots, 0
        self.task = bar.add_task(name, total=shots, rate="", note="")
        self.started = time.perf_counter()

    def __call__(self, done: int) -> None:
        self._show()
        self.done = done
        if done % 10 == 0 or done == self.shots:
            rate = f"{done / max(time.perf_counter() - self.started, 1e-9):,.1f} shots/s"
            self.bar.update(self.task, completed=done, rate=rate)

    def cutoffs(self, count: int) -> None:
        self._show()
        note = f"{count:,} tries cut off"
        if self.done:
            note += f", ~{(count + self.done) / self.done:,.0f} tries per shot"
        self.bar.update(self.task, note=note)

    def _show(self) -> None:
        if not self.bar.live.is_started:
            self.bar.start()


def _progress_bar(enabled: bool, transient: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not enabled,
        transient=transient,
    )


# the commands live in their own modules; importing them registers them on `app` (run
# commands first, so `qnode --help` lists them first)
from . import cli_runs  # noqa: E402, F401, I001
from . import cli_ops  # noqa: E402, F401


def main() -> None:  # pragma: no cover - console-script shim
    app()


if __name__ == "__main__":  # python -m control.cli ...: the registered app is the package's
    from control.cli import app as registered_app

    registered_app()
