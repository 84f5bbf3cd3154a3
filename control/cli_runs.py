"""`qnode` run commands: entangle, swap, chsh, teleport."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .cli import (
    DEFAULT_CHAIN,
    DEFAULT_NETWORK,
    AlphaOption,
    DbOption,
    Durability,
    DurabilityOption,
    JsonOption,
    LabOption,
    ProgressOption,
    SeedOption,
    StoreOption,
    _fail,
    _run_with_progress,
    _sweep,
    app,
)
from .cli_summaries import (
    print_chsh_summary,
    print_entangle_summary,
    print_teleport_summary,
    report,
)

if TYPE_CHECKING:
    from .local_processes import LocalNetwork
    from .storage import Durability as DurabilityName


class Scheme(StrEnum):
    """The heralding scheme of the attempt loop (the AWG program the nodes play)."""

    single_click = "single_click"
    barrett_kok = "barrett_kok"


SchemeOption = Annotated[
    Scheme,
    typer.Option(
        help="Heralding scheme: single_click (one photon, alpha trade-off) or barrett_kok "
        "(two rounds with a pi pulse; --alpha does not apply)."
    ),
]
MaxTimeOption = Annotated[
    float | None,
    typer.Option(
        "--max-time-us",
        help="Cut-off on time: an attempt loop without a herald ends after this many us of "
        "(simulated or lab) time and starts again (default: none).",
    ),
]
MaxAttemptsOption = Annotated[
    int, typer.Option(min=0, help="Attempts per link before giving up (0: no cut-off).")
]
EventsOption = Annotated[
    str | None, typer.Option(help="Publish live events here (watch with qnode monitor).")
]
SweepOption = Annotated[
    str | None, typer.Option(help="Sweep one parameter: NAME=START:STOP:POINTS.")
]
WorkersOption = Annotated[int | None, typer.Option(min=1, help="Worker processes for a sweep.")]
DaskOption = Annotated[
    str | None, typer.Option(help="Dask scheduler for a sweep, tcp://host:port.")
]
FaultsOption = Annotated[
    Path | None,
    typer.Option(help="Fault plan for a dry run: seeded faults in the simulated lab."),
]
ResumeOption = Annotated[
    int | None,
    typer.Option(help="Continue stored run N (not finished) up to its requested shots."),
]

#: what a sweep of entanglement or swapping runs shows per point
SWEEP_COLUMNS = [
    "shots",
    "heralded_rate_per_s",
    "attempts_per_success",
    "fidelity_estimate",
    "exact_fidelity_mean",
]


@app.command()
def entangle(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Network file (lab_configs/*.network.yaml).")
    ] = DEFAULT_NETWORK,
    link: Annotated[str | None, typer.Option(help="Link to run, e.g. alice-bob.")] = None,
    shots: Annotated[
        int | None, typer.Option(min=1, max=10_000_000, help="Pairs to deliver [default: 1000].")
    ] = None,
    seed: SeedOption = None,
    alpha: AlphaOption = None,
    max_attempts: MaxAttemptsOption = 0,
    max_time_us: MaxTimeOption = None,
    scheme: SchemeOption = Scheme.single_click,
    lab: LabOption = False,
    db: DbOption = Path("runs/qnode.db"),
    store: StoreOption = True,
    durability: DurabilityOption = None,
    as_json: JsonOption = False,
    progress: ProgressOption = True,
    events: EventsOption = None,
    sweep: SweepOption = None,
    workers: WorkersOption = None,
    dask: DaskOption = None,
    faults: FaultsOption = None,
    resume: ResumeOption = None,
) -> None:
    """Heralded entanglement on one link: deliver pairs, measure each in XX, YY or ZZ, and
    summarise rate and fidelity (every shot stored)."""
    if shots is None and resume is None:
        shots = 1000
    params = dict(
        network_path=config,
        shots=shots,
        link=link,
        alpha=alpha,
        max_attempts=max_attempts,
        max_time_us=max_time_us,
        scheme=scheme.value,
        backend="lab" if lab else None,
        db_path=db if store else None,
        durability=_durability(durability),
    )
    summary = _entangle_run(
        "entangle",
        params,
        sweep,
        seed,
        workers,
        dask,
        as_json,
        progress,
        faults,
        resume,
        db,
        events_endpoint=events,
    )
    if summary is not None:
        report(summary, as_json, print_entangle_summary)


@app.command()
def swap(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Network file of a three-node chain.")
    ] = DEFAULT_CHAIN,
    shots: Annotated[
        int | None, typer.Option(min=1, max=10_000_000, help="Swapped pairs [default: 300].")
    ] = None,
    seed: SeedOption = None,
    alpha: AlphaOption = None,
    cutoff: Annotated[
        float | None, typer.Option(min=0, help="Discard a stored pair older than this (s).")
    ] = None,
    max_time_us: MaxTimeOption = None,
    scheme: SchemeOption = Scheme.single_click,
    db: DbOption = Path("runs/qnode.db"),
    store: StoreOption = True,
    durability: DurabilityOption = None,
    as_json: JsonOption = False,
    progress: ProgressOption = True,
    sweep: SweepOption = None,
    workers: WorkersOption = None,
    dask: DaskOption = None,
    faults: FaultsOption = None,
    resume: ResumeOption = None,
) -> None:
    """Entanglement swapping at the middle node of a chain: pairs between the end nodes,
    each measured in XX, YY or ZZ; rate and fidelity."""
    if shots is None and resume is None:
        shots = 300
    params = dict(
        network_path=config,
        shots=shots,
        alpha=alpha,
        swap=True,
        cutoff_s=cutoff,
        max_time_us=max_time_us,
        scheme=scheme.value,
        db_path=db if store else None,
        durability=_durability(durability),
    )
    summary = _entangle_run(
        "swap", params, sweep, seed, workers, dask, as_json, progress, faults, resume, db
    )
    if summary is not None:
        report(summary, as_json, print_entangle_summary)


@app.command()
def chsh(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Network file (lab_configs/*.network.yaml).")
    ] = DEFAULT_NETWORK,
    link: Annotated[str | None, typer.Option(help="Link to test, e.g. alice-bob.")] = None,
    shots: Annotated[
        int | None, typer.Option(min=4, max=10_000_000, help="Pairs measured [default: 2000].")
    ] = None,
    seed: SeedOption = None,
    alpha: AlphaOption = None,
    scheme: SchemeOption = Scheme.single_click,
    db: DbOption = Path("runs/qnode.db"),
    store: StoreOption = True,
    durability: DurabilityOption = None,
    as_json: JsonOption = False,
    progress: ProgressOption = True,
    faults: FaultsOption = None,
    resume: ResumeOption = None,
) -> None:
    """A CHSH test on one link: S from outcomes at the four optimal settings, with its 95%
    interval (a quantum link violates the local bound S <= 2)."""
    from .runs import run_chsh

    if shots is None and resume is None:
        shots = 2000
    summary = _run_with_progress(
        "chsh",
        _resume_total(resume, db) if resume is not None else shots,
        progress,
        as_json,
        lambda tick: run_chsh(
            config,
            shots,
            faults=faults,
            resume=resume,
            link=link,
            seed=seed,
            alpha=alpha,
            scheme=scheme.value,
            db_path=db if store else None,
            durability=_durability(durability),
            progress=tick,
        ),
    )
    report(summary, as_json, print_chsh_summary)


@app.command()
def teleport(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Network file of a three-node chain.")
    ] = DEFAULT_CHAIN,
    shots: Annotated[
        int | None, typer.Option(min=1, max=10_000_000, help="Teleportations [default: 300].")
    ] = None,
    seed: SeedOption = None,
    alpha: AlphaOption = None,
    max_attempts: MaxAttemptsOption = 0,
    max_time_us: MaxTimeOption = None,
    scheme: SchemeOption = Scheme.single_click,
    lab: LabOption = False,
    db: DbOption = Path("runs/qnode.db"),
    store: StoreOption = True,
    durability: DurabilityOption = None,
    as_json: JsonOption = False,
    progress: ProgressOption = True,
    events: EventsOption = None,
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
    processes: Annotated[
        bool,
        typer.Option(
            help="One process per node on this machine, sharing one simulated lab (qnode "
            "simlab and qnode serve, started for this run and stopped after it)."
        ),
    ] = False,
    heartbeat_s: Annotated[
        float, typer.Option(min=0.5, max=60, help="A silent --remote node is lost after (s).")
    ] = 2.0,
    faults: FaultsOption = None,
    resume: ResumeOption = None,
    batch: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Shots per program transaction, as real-time controllers run many "
            "repetitions per upload (a fault then costs the whole batch).",
        ),
    ] = 1,
    stepwise: Annotated[
        bool,
        typer.Option(
            help="Drive each step from here, for real-time controllers without shot "
            "programs (ENT/SEND/RECV); the default runs each shot as one program per node."
        ),
    ] = False,
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

    if shots is None and resume is None:
        shots = 300
    if processes and (remote or simlab or lab or faults):
        _fail(
            "--processes starts its own node processes and simulated lab: it does not go "
            "with --remote, --simlab, --lab or --faults"
        )
    with _local_processes(processes, config, plaintext, seed) as local:
        if local is not None:
            remote_nodes, simlab = local.endpoints, local.port_map
        summary = _run_with_progress(
            "teleport",
            _resume_total(resume, db) if resume is not None else shots,
            progress,
            as_json,
            lambda tick: run_teleport(
                config,
                shots,
                faults=faults,
                resume=resume,
                events_endpoint=events,
                remote_nodes=remote_nodes,
                simlab=simlab,
                plaintext=plaintext,
                heartbeat_s=heartbeat_s,
                seed=seed,
                alpha=alpha,
                max_attempts=max_attempts,
                max_time_us=max_time_us,
                scheme=scheme.value,
                backend="lab" if lab else None,
                db_path=db if store else None,
                durability=_durability(durability),
                progress=tick,
                stepwise=stepwise,
                batch=batch,
                on_cutoffs=tick.cutoffs,
            ),
        )
    report(summary, as_json, print_teleport_summary)


@contextmanager
def _local_processes(
    wanted: bool, config: Path, plaintext: bool, seed: int | None
) -> Iterator[LocalNetwork | None]:
    """``--processes``: the simulated lab and one node process per node for the run."""
    if not wanted:
        yield None
        return
    from .local_processes import LocalProcessError, local_node_processes
    from .network_config import NetworkConfigError

    # the processes' logs are removed after a clean run and kept after a failure (the
    # error names them)
    workdir = tempfile.mkdtemp(prefix="qnode-processes-")
    try:
        with local_node_processes(config, workdir, plaintext=plaintext, seed=seed) as local:
            yield local
    except (LocalProcessError, NetworkConfigError) as exc:
        _fail(str(exc))
    shutil.rmtree(workdir, ignore_errors=True)


def _entangle_run(
    name: str,
    params: dict[str, Any],
    sweep: str | None,
    seed: int | None,
    workers: int | None,
    dask: str | None,
    as_json: bool,
    progress: bool,
    faults: Path | None,
    resume: int | None,
    db: Path,
    **run_only: Any,
) -> dict[str, Any] | None:
    """``run_entangle`` with ``params``: one point per sweep value (printed here, returns
    None), or one run with a progress bar (returns its summary). ``run_only``: options of a
    single run (not of sweep points)."""
    from .runs import run_entangle

    if sweep is not None:
        _sweep(run_entangle, sweep, params, seed, workers, dask, as_json, SWEEP_COLUMNS)
        return None
    total = _resume_total(resume, db) if resume is not None else params["shots"]
    return _run_with_progress(
        name,
        total,
        progress,
        as_json,
        lambda tick: run_entangle(
            **params,
            seed=seed,
            faults=faults,
            resume=resume,
            progress=tick,
            on_cutoffs=tick.cutoffs,
            **run_only,
        ),
    )


def _resume_total(run_id: int, db: Path) -> int:
    """Shots a resumed run still needs (for the progress bar)."""
    from .stored_runs import resume_info

    try:
        return resume_info(run_id, db).remaining or 0
    except (FileNotFoundError, ValueError) as exc:
        _fail(f"--resume {run_id}: {exc}")


def _durability(choice: Durability | None) -> DurabilityName | None:
    """The storage's name for a ``--durability`` choice."""
    return None if choice is None else choice.value  # type: ignore[return-value]  # a Literal
