"""`qnode`: the command line of the node controller.

qnode entangle --config lab_configs/nv_delft_link.yaml      # simulated dry run
qnode entangle --config ... --shots 5000 --seed 7 --json    # summary as JSON on stdout
qnode validate lab_configs/nv_delft_link.yaml               # check a config, touch nothing
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

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
JsonOption = Annotated[bool, typer.Option("--json", help="Summary as JSON on stdout.")]
ProgressOption = Annotated[bool, typer.Option(help="Show a progress bar on stderr.")]
LabOption = Annotated[bool, typer.Option("--lab/--sim", help="Real instruments or simulated lab.")]
AlphaOption = Annotated[float, typer.Option(min=1e-6, max=0.5, help="Bright-state population.")]

DEFAULT_NETWORK = Path("lab_configs/two_node.network.yaml")
DEFAULT_CHAIN = Path("lab_configs/three_node_chain.network.yaml")


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@app.command()
def entangle(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Network file (lab_configs/*.network.yaml).")
    ] = DEFAULT_NETWORK,
    link: Annotated[str | None, typer.Option(help="Link to run, e.g. alice-bob.")] = None,
    shots: Annotated[int, typer.Option(min=1, max=10_000_000, help="Pairs to deliver.")] = 1000,
    seed: SeedOption = None,
    alpha: AlphaOption = 0.1,
    max_attempts: Annotated[
        int, typer.Option(min=0, help="Attempts before giving up (0: no cut-off).")
    ] = 0,
    lab: LabOption = False,
    db: DbOption = Path("runs/qnode.db"),
    store: StoreOption = True,
    as_json: JsonOption = False,
    progress: ProgressOption = True,
    events: Annotated[
        str | None, typer.Option(help="Publish live events here (watch with qnode monitor).")
    ] = None,
    sweep: Annotated[
        str | None, typer.Option(help="Sweep one parameter: NAME=START:STOP:POINTS.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes for a sweep.")
    ] = None,
    dask: Annotated[
        str | None, typer.Option(help="Dask scheduler for a sweep, tcp://host:port.")
    ] = None,
) -> None:
    """Heralded entanglement on one link: deliver pairs, measure each in XX, YY or ZZ, and
    summarise rate and fidelity (every shot stored)."""
    from .runs import run_entangle

    if sweep is not None:
        _sweep(
            run_entangle,
            sweep,
            dict(
                network_path=config,
                shots=shots,
                link=link,
                alpha=alpha,
                max_attempts=max_attempts,
                backend="lab" if lab else None,
                db_path=db if store else None,
            ),
            seed,
            workers,
            dask,
            as_json,
            [
                "shots",
                "heralded_rate_per_s",
                "attempts_per_success",
                "fidelity_estimate",
                "exact_fidelity_mean",
            ],
        )
        return

    summary = _run_with_progress(
        "entangle",
        shots,
        progress,
        as_json,
        lambda tick: run_entangle(
            config,
            shots,
            events_endpoint=events,
            link=link,
            seed=seed,
            alpha=alpha,
            max_attempts=max_attempts,
            backend="lab" if lab else None,
            db_path=db if store else None,
            progress=tick,
        ),
    )
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2, default=float) + "\n")
    else:
        _print_summary(summary)
    if summary.get("interrupted"):
        raise typer.Exit(130)


def _run_with_progress(name: str, shots: int, progress: bool, as_json: bool, run) -> dict:
    """Run ``run(tick)`` under a progress bar; configuration errors end in a clear message."""
    import signal

    from .backend import InstrumentConnectionError
    from .network_config import NetworkConfigError
    from .rpc import RpcError

    def terminate(*_: object) -> None:  # SIGTERM (a scheduler, systemd) stops like Ctrl-C
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    bar = _progress_bar(progress, as_json)
    try:
        with bar:
            task = bar.add_task(name, total=shots, rate="")
            started = time.perf_counter()

            def tick(done: int) -> None:
                if done % 10 == 0 or done == shots:
                    rate = f"{done / max(time.perf_counter() - started, 1e-9):,.1f} shots/s"
                    bar.update(task, completed=done, rate=rate)

            return run(tick)
    except (NetworkConfigError, InstrumentConnectionError, ValueError) as exc:
        _fail(str(exc))
    except RpcError as exc:
        _fail(f"a node controller did not answer: {exc}", code=1)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _print_summary(s: dict[str, Any]) -> None:
    out = Console()
    if s["shots"] == 0:
        out.print("no shots completed")
        return
    table = Table(title=f"Heralded entanglement, {s['parameters']['link']} ({s['backend']} lab)")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_column("95% CI", justify="right")

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
    table.add_row("simulated time", f"{s['simulated_time_s']:.4g} s", "")
    if "run_id" in s:
        table.add_row("stored as", f"run {s['run_id']} in {s['database']}", "")
    out.print(table)
    params = Table(title="Parameters", show_header=False)
    for key, value in s["parameters"].items():
        params.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    params.add_row("seed", str(s["seed"]))
    params.add_row("network", s["network"])
    out.print(params)


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


@app.command()
def swap(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Network file of a three-node chain.")
    ] = DEFAULT_CHAIN,
    shots: Annotated[int, typer.Option(min=1, max=10_000_000, help="Swapped pairs.")] = 300,
    seed: SeedOption = None,
    alpha: AlphaOption = 0.1,
    cutoff: Annotated[
        float | None, typer.Option(min=0, help="Discard a stored pair older than this (s).")
    ] = None,
    db: DbOption = Path("runs/qnode.db"),
    store: StoreOption = True,
    as_json: JsonOption = False,
    progress: ProgressOption = True,
    sweep: Annotated[
        str | None, typer.Option(help="Sweep one parameter: NAME=START:STOP:POINTS.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes for a sweep.")
    ] = None,
    dask: Annotated[str | None, typer.Option(help="Dask scheduler for a sweep.")] = None,
) -> None:
    """Entanglement swapping at the middle node of a chain: pairs between the end nodes,
    each measured in XX, YY or ZZ; rate and fidelity."""
    from .runs import run_entangle

    if sweep is not None:
        _sweep(
            run_entangle,
            sweep,
            dict(
                network_path=config,
                shots=shots,
                alpha=alpha,
                swap=True,
                cutoff_s=cutoff,
                db_path=db if store else None,
            ),
            seed,
            workers,
            dask,
            as_json,
            [
                "shots",
                "heralded_rate_per_s",
                "attempts_per_success",
                "fidelity_estimate",
                "exact_fidelity_mean",
            ],
        )
        return

    summary = _run_with_progress(
        "swap",
        shots,
        progress,
        as_json,
        lambda tick: run_entangle(
            config,
            shots,
            seed=seed,
            alpha=alpha,
            swap=True,
            cutoff_s=cutoff,
            db_path=db if store else None,
            progress=tick,
        ),
    )
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2, default=float) + "\n")
    else:
        _print_summary(summary)


@app.command()
def chsh(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Network file (lab_configs/*.network.yaml).")
    ] = DEFAULT_NETWORK,
    link: Annotated[str | None, typer.Option(help="Link to test, e.g. alice-bob.")] = None,
    shots: Annotated[int, typer.Option(min=4, max=10_000_000, help="Pairs measured.")] = 2000,
    seed: SeedOption = None,
    alpha: Annotated[
        float, typer.Option(min=1e-6, max=0.5, help="Bright-state population.")
    ] = 0.05,
    db: DbOption = Path("runs/qnode.db"),
    store: StoreOption = True,
    as_json: JsonOption = False,
    progress: ProgressOption = True,
) -> None:
    """A CHSH test on one link: S from outcomes at the four optimal settings, with its 95%
    interval (a quantum link violates the local bound S <= 2)."""
    from .runs import run_chsh

    summary = _run_with_progress(
        "chsh",
        shots,
        progress,
        as_json,
        lambda tick: run_chsh(
            config,
            shots,
            link=link,
            seed=seed,
            alpha=alpha,
            db_path=db if store else None,
            progress=tick,
        ),
    )
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2, default=float) + "\n")
        return
    lo, hi = summary["chsh_ci95"]
    verdict = "violates" if summary["violates_local_bound"] else "does not violate"
    Console().print(
        f"CHSH on {summary['link']}: S = {summary['chsh_s']:.3f} (95% CI {lo:.3f} .. {hi:.3f}) "
        f"from {summary['shots']} pairs; {verdict} the local bound 2"
    )


@app.command()
def teleport(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Network file of a three-node chain.")
    ] = DEFAULT_CHAIN,
    shots: Annotated[int, typer.Option(min=1, max=10_000_000, help="Teleportations.")] = 300,
    seed: SeedOption = None,
    alpha: AlphaOption = 0.1,
    max_attempts: Annotated[
        int, typer.Option(min=0, help="Attempts per link before giving up (0: no cut-off).")
    ] = 0,
    lab: LabOption = False,
    db: DbOption = Path("runs/qnode.db"),
    store: StoreOption = True,
    as_json: JsonOption = False,
    progress: ProgressOption = True,
    events: Annotated[
        str | None, typer.Option(help="Publish live events here (watch with qnode monitor).")
    ] = None,
    remote: Annotated[
        list[str] | None,
        typer.Option(help="A node served by its own process: NODE=tcp://host:port (repeat)."),
    ] = None,
    simlab: Annotated[
        Path | None, typer.Option(help="Port map of a shared simulated lab (qnode simlab).")
    ] = None,
    plaintext: Annotated[
        bool, typer.Option(help="Unencrypted messages to --remote nodes (local dry runs only).")
    ] = False,
    heartbeat_s: Annotated[
        float, typer.Option(min=0.5, max=60, help="A silent --remote node is lost after (s).")
    ] = 2.0,
) -> None:
    """Teleport states from one end of a three-node chain to the other (Charlie's state
    arrives at Alice via a swap at Bob), every shot stored, with a summary at the end."""
    remote_nodes = None
    if remote:
        remote_nodes = {}
        for item in remote:
            name, sep, endpoint = item.partition("=")
            if not sep or not endpoint.startswith("tcp://"):
                _fail(f"--remote {item!r}: expected NODE=tcp://host:port")
            remote_nodes[name] = endpoint
    from .runs import run_teleport

    summary = _run_with_progress(
        "teleport",
        shots,
        progress,
        as_json,
        lambda tick: run_teleport(
            config,
            shots,
            events_endpoint=events,
            remote_nodes=remote_nodes,
            simlab=simlab,
            plaintext=plaintext,
            heartbeat_s=heartbeat_s,
            seed=seed,
            alpha=alpha,
            max_attempts=max_attempts,
            backend="lab" if lab else None,
            db_path=db if store else None,
            progress=tick,
        ),
    )
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2, default=float) + "\n")
    else:
        _print_teleport_summary(summary)
    if summary.get("aborted"):
        err.print(f"[bold red]run aborted:[/] {summary['aborted']}", soft_wrap=True)
        raise typer.Exit(1)
    if summary.get("interrupted"):
        raise typer.Exit(130)


def _progress_bar(enabled: bool, transient: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not enabled,
        transient=transient,
    )


def _print_teleport_summary(s: dict[str, Any]) -> None:
    out = Console()
    if s["shots"] == 0:
        out.print("no shots completed")
        return
    table = Table(title=f"Teleportation over the chain ({s['backend']} lab, {s['network']})")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_column("95% CI", justify="right")
    lo, hi = s["fidelity_ci95"]
    table.add_row("teleportations", f"{s['shots']} of {s['requested_shots']}", "")
    rate = s["teleportations_per_simulated_s"]
    table.add_row("rate (per simulated s)", f"{rate:.4g} /s" if rate else "-", "")
    table.add_row("attempts per link success", f"{s['attempts_per_success']:.4g}", "")
    table.add_row(
        "fidelity from outcomes", f"{s['fidelity_estimate']:.4f}", f"{lo:.4f} .. {hi:.4f}"
    )
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


@app.command()
def monitor(
    endpoints: Annotated[
        list[str], typer.Argument(help="Event endpoints, e.g. tcp://127.0.0.1:5556")
    ],
    node: Annotated[list[str] | None, typer.Option(help="Only these nodes (repeatable).")] = None,
    duration: Annotated[float | None, typer.Option(min=0.1, help="Stop after seconds.")] = None,
) -> None:
    """Watch what the nodes do, live: heralds, swaps, shots, faults (Ctrl-C to stop)."""
    from .monitor import run_monitor

    for endpoint in endpoints:
        if not endpoint.startswith(("tcp://", "ipc://", "inproc://")):
            _fail(f"endpoint {endpoint!r}: expected tcp://host:port, ipc://path or inproc://name")
    summary = run_monitor(endpoints, nodes=node, duration_s=duration)
    Console().print(
        f"{summary.get('events', 0)} events, {summary.get('dropped', 0)} missed, "
        f"{summary.get('malformed', 0)} malformed"
    )


@app.command()
def report(
    run_id: Annotated[int, typer.Argument(min=1, help="Run id in the database.")],
    db: Annotated[Path, typer.Option(help="QCoDeS database.")] = Path("runs/qnode.db"),
    out: Annotated[Path, typer.Option(help="Folder for the PNG plots.")] = Path("runs/reports"),
    as_json: JsonOption = False,
) -> None:
    """Summarise a stored run and draw its standard plots (PNG)."""
    from .report import format_summary, summary, write_report

    if not db.exists():
        _fail(f"--db {db}: no such database")
    try:
        numbers = summary(run_id, db)
        paths = write_report(run_id, db, out)
    except (ValueError, KeyError, LookupError) as exc:
        _fail(f"run {run_id} in {db}: {exc}")
    if as_json:
        numbers["plots"] = [str(p) for p in paths]
        sys.stdout.write(json.dumps(numbers, indent=2, default=float) + "\n")
        return
    Console().print(format_summary(numbers))
    for path in paths:
        Console().print(f"plot: {path}")


@app.command()
def validate(config: Annotated[Path, typer.Argument(help="Lab or network file to check.")]) -> None:
    """Check a lab config or a network file (and its station files) without touching any
    instrument."""
    import yaml

    try:
        head = yaml.safe_load(config.read_text()) if config.exists() else None
    except yaml.YAMLError:
        head = None
    if isinstance(head, dict) and "heralding_stations" in head:
        from .network_config import NetworkConfigError, load_network

        try:
            network = load_network(config)
        except NetworkConfigError as exc:
            _fail(str(exc))
        Console().print(
            f"[green]ok[/]: {config}: network '{network.config.name}', "
            f"backend {network.config.backend}, nodes {sorted(network.config.nodes)}, "
            f"links {[f'{a}-{b}' for a, b in network.links]}, "
            f"{len(network.instruments)} instruments in {len(network.station_files)} stations"
        )
        return
    from .backend import validate_lab_file
    from .network_config import NetworkConfigError

    try:
        lab_file = validate_lab_file(config)
    except NetworkConfigError as exc:
        _fail(str(exc))
    lab = lab_file.simulated_lab
    Console().print(
        f"[green]ok[/]: {config}: '{lab_file.name}', nodes {sorted(lab.nodes)}, "
        f"links {[lk.name for lk in lab.links]}"
    )


@app.command()
def calibrate(
    config: Annotated[Path, typer.Option("--config", "-c", help="Network file.")] = DEFAULT_NETWORK,
    node: Annotated[list[str] | None, typer.Option(help="Only these nodes (repeatable).")] = None,
    store: Annotated[
        Path | None, typer.Option(help="Calibration store (default: beside the network file).")
    ] = None,
    report_dir: Annotated[Path, typer.Option(help="Folder for the report and plots.")] = Path(
        "runs/calibration"
    ),
    seed: SeedOption = None,
    lab: LabOption = False,
) -> None:
    """Run the calibrations unattended in dependency order (detectors, laser resonance,
    converter phase matching; readout), retry a failure once, skip what depends on it, end
    safe, write a report with plots, and exit non-zero if anything failed (for cron or a
    systemd timer)."""
    from .calibrate import run_calibrations
    from .calibration_store import CalibrationStoreError
    from .network_config import NetworkConfigError

    try:
        report = run_calibrations(
            config,
            nodes=node or None,
            store_path=store,
            report_dir=report_dir,
            seed=seed,
            backend="lab" if lab else None,
        )
    except (NetworkConfigError, CalibrationStoreError, KeyError) as exc:
        _fail(str(exc))
    sys.stdout.write(report.summary_path.read_text())
    raise typer.Exit(report.exit_code)


@app.command()
def keygen(
    config: Annotated[Path, typer.Option("--config", "-c", help="Network file.")] = DEFAULT_CHAIN,
) -> None:
    """Generate the CURVE key pairs of every node and the orchestrator into the network
    file's `security.keys_dir` (existing keys are kept)."""
    from .keys import generate_network_keys
    from .network_config import NetworkConfigError, load_network

    try:
        written = generate_network_keys(load_network(config))
    except (NetworkConfigError, ValueError) as exc:
        _fail(str(exc))
    for path in written:
        Console().print(f"wrote {path}")
    if not written:
        Console().print("all keys exist already")


@app.command()
def simlab(
    config: Annotated[Path, typer.Option("--config", "-c", help="Network file.")] = DEFAULT_CHAIN,
    port_map: Annotated[Path, typer.Option(help="Where to write the port map (JSON).")] = Path(
        "runs/simlab.json"
    ),
    seed: SeedOption = None,
) -> None:
    """Serve one shared simulated lab for node controllers in separate processes: every
    simulated instrument on a loopback TCP port, plus the simulation oracle (Ctrl-C stops)."""
    import threading

    from .network_config import NetworkConfigError
    from .simlab import serve_simulated_lab

    try:
        server = serve_simulated_lab(config, port_map, seed=seed)
    except NetworkConfigError as exc:
        _fail(str(exc))
    err.print(
        f"simulated lab of {config} serving {len(server.port_map['instruments'])} instruments; "
        f"port map: {port_map}"
    )
    stop = threading.Event()
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        server.stop()


@app.command()
def serve(
    node: Annotated[str, typer.Option(help="The node this process controls.")],
    bind: Annotated[str, typer.Option(help="ZeroMQ endpoint to serve on.")] = "tcp://127.0.0.1:*",
    config: Annotated[Path, typer.Option("--config", "-c", help="Network file.")] = DEFAULT_CHAIN,
    simlab: Annotated[
        Path | None, typer.Option(help="Port map of a shared simulated lab (qnode simlab).")
    ] = None,
    lab: LabOption = False,
    ready_file: Annotated[Path | None, typer.Option(help="Write the bound endpoint here.")] = None,
    plaintext: Annotated[
        bool, typer.Option(help="Unencrypted control messages (local dry runs only).")
    ] = False,
) -> None:
    """Run one node controller: it opens its node's instruments and answers the
    orchestrator over ZeroMQ until stopped (its instruments then go to their safe state)."""
    from .backend import InstrumentConnectionError
    from .network_config import NetworkConfigError
    from .node_process import run_node_process

    try:
        run_node_process(
            config,
            node,
            bind,
            simlab=simlab,
            backend="lab" if lab else None,
            ready_file=ready_file,
            plaintext=plaintext,
        )
    except (NetworkConfigError, InstrumentConnectionError, KeyError) as exc:
        _fail(str(exc))


def main() -> None:  # pragma: no cover - console-script shim
    app()


if __name__ == "__main__":  # python -m control.cli ...
    app()
