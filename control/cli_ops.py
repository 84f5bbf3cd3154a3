"""`qnode` operations: monitor, report, validate, calibrate, keygen, simlab, serve."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .cli import (
    DEFAULT_CHAIN,
    DEFAULT_NETWORK,
    JsonOption,
    LabOption,
    SeedOption,
    _fail,
    app,
    err,
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
    converter phase matching, readout, spin Rabi and Ramsey; per link: time-tagger channel
    delays, two-photon visibility, interferometer phase, alpha), retry a failure once, skip
    what depends on it, end safe, write a report with plots, and exit non-zero if anything
    failed (for cron or a systemd timer). Runs use the values in force afterwards."""
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
