"""Teleportation runs over a three-node chain: every shot stored as it completes, a summary
at the end; node controllers in this process or in their own (``qnode serve``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from drivers.qnode_rtc_program import MAX_BATCH
from sequences.analysis import wilson_interval
from sequences.attempt_loop import entanglement_loop

from .backend import Network, open_network
from .calibration_store import CalibrationStore
from .network_config import load_network
from .node import cardinal_states
from .orchestrator import Orchestrator, TeleportShot
from .recovery import ShotFaults
from .run_setup import (
    build_orchestrator,
    calibrated_alpha,
    chain_of,
    run_identity,
)
from .shot_columns import Column
from .shot_loop import (
    CutoffTally,
    collect,
    elapsed_s,
    finish,
    open_store,
    plan_run_resume,
    recovering,
    recovering_batches,
    resumed_totals,
)
from .storage import Durability

#: What one teleportation over the chain stores.
TELEPORT_COLUMNS: tuple[Column, ...] = (
    Column("input_state", "text", label="Input state"),
    Column("outcome", "int", label="Receiver outcome along the input axis"),
    Column("correct", "int", label="Correct outcome"),
    Column("attempts_ab", "int", label="Attempts, first link"),
    Column("attempts_bc", "int", label="Attempts, second link"),
    Column("swap_m1", "int", label="Swap BSM outcome 1"),
    Column("swap_m2", "int", label="Swap BSM outcome 2"),
    Column("bsm_m1", "int", label="Teleport BSM outcome 1"),
    Column("bsm_m2", "int", label="Teleport BSM outcome 2"),
    Column("delivered_time_s", "float", "s", "Delivery time"),
    Column("fidelity_exact", "float", label="Exact fidelity (simulation only)", default=math.nan),
)


def iter_teleportations(
    orchestrator: Orchestrator,
    shots: int,
    *,
    start: int = 0,
    shot_faults: ShotFaults | None = None,
    batch: int = 1,
) -> Iterator[TeleportShot]:
    """Teleport the six cardinal states in turn from one end of the chain to the other
    (shots ``start`` .. ``start + shots - 1``); a shot that meets a transient instrument
    fault is abandoned and run again (``control.recovery.attempt_shot``). ``batch``: shots
    per program transaction (``Orchestrator.teleport_batch``; a fault then costs the
    batch)."""
    a, b, c = chain_of(orchestrator.network)
    states = cardinal_states()
    if batch > 1:

        def batch_of(first: int, count: int) -> list[TeleportShot]:
            items = [(s, states[s % len(states)]) for s in range(first, first + count)]
            return orchestrator.teleport_batch(a, b, c, items)

        yield from recovering_batches(batch_of, orchestrator, shots, start, batch, shot_faults)
        return

    def one(shot: int) -> TeleportShot:
        state = states[shot % len(states)]
        return orchestrator.teleport_over_chain(a, b, c, shot, state)

    yield from recovering(one, orchestrator, shots, start, shot_faults)


def teleport_summary(
    shots: list[TeleportShot], simulated_s: float, wall_s: float, requested: int
) -> dict[str, Any]:
    """Rate, attempts and fidelity of a teleportation run."""
    n = len(shots)
    out: dict[str, Any] = {"shots": n, "requested_shots": requested, "complete": n == requested}
    if n == 0:
        return out
    correct = int(sum(s.correct for s in shots))
    low, high = wilson_interval(correct, n)
    exact = [s.exact_fidelity for s in shots if s.exact_fidelity is not None]
    out.update(
        fidelity_estimate=correct / n,
        fidelity_ci95=[low, high],
        exact_fidelity_mean=float(np.mean(exact)) if exact else None,
        teleportations_per_simulated_s=n / simulated_s if simulated_s > 0 else None,
        teleportations_per_wall_s=n / wall_s if wall_s > 0 else None,
        attempts_per_success=float(np.mean([(s.attempts_ab + s.attempts_bc) / 2 for s in shots])),
        simulated_time_s=simulated_s,
        per_input_state={
            name: float(np.mean([s.correct for s in shots if s.input_state == name]))
            for name in sorted({s.input_state for s in shots})
        },
    )
    return out


def run_teleport(
    network_path: str | Path,
    shots: int | None,
    *,
    seed: int | None = None,
    alpha: float | None = None,
    max_attempts: int = 0,
    backend: str | None = None,
    db_path: str | Path | None = Path("runs/qnode.db"),
    progress: Callable[[int], None] | None = None,
    events_endpoint: str | None = None,
    remote_nodes: dict[str, str] | None = None,
    simlab: str | Path | None = None,
    node_timeout_s: float = 10.0,
    plaintext: bool = False,
    heartbeat_s: float = 2.0,
    scheme: str = "single_click",
    max_time_us: float | None = None,
    faults: str | Path | None = None,
    resume: int | None = None,
    stepwise: bool = False,
    batch: int = 1,
    on_cutoffs: Callable[[int], None] | None = None,
    durability: Durability | None = None,
) -> dict[str, Any]:
    """Teleportation over a three-node chain, every shot stored as it completes. With
    ``remote_nodes`` the node controllers run in their own processes (``qnode serve``) and
    this process opens only the heralding stations (``simlab``: the shared simulated lab).
    ``faults``: a fault plan file for a dry run; ``resume``: the id of a stored run that did
    not finish, continued to its requested shot count (``shots`` may then be None).
    ``stepwise``: the orchestrator drives each step (for real-time controllers that serve
    only the core protocol, without shot programs). ``batch``: shots per program
    transaction (1..64), as real-time controllers run many repetitions per upload.
    ``on_cutoffs``: told, every half second while it grows, how many tries a cut-off has
    ended so far (the summary's ``tries_cut_off``). ``durability``: how each stored shot
    reaches the disk (``control.storage``: "synced", "shot" or "batch"; None: the backend's
    default, synced in the lab and per shot in the simulated lab).

    Stops cleanly on KeyboardInterrupt: the instruments go to their safe state, the shots so
    far are kept (the stored run is marked interrupted) and summarised. ``alpha`` None takes
    the links' calibrated alpha (else 0.1); the run records the calibration in force.
    """
    if not isinstance(batch, int) or not 1 <= batch <= MAX_BATCH:
        raise ValueError(f"batch={batch!r}: expected 1..{MAX_BATCH} shots per transaction")
    calibration = CalibrationStore.beside(network_path)
    a, b, c = chain_of(load_network(network_path))
    alpha = calibrated_alpha(alpha, calibration, [(a, b), (b, c)], 0.1)
    loop = entanglement_loop(
        scheme, alpha=alpha, max_attempts=max_attempts, max_time_us=max_time_us
    )
    plan = plan_run_resume(resume, db_path, "teleport", network_path, backend, loop, shots, seed)
    if plan is not None:
        shots, seed = plan.remaining, plan.continuation_seed
    elif shots is None or shots < 1:
        raise ValueError(f"shots={shots!r}: expected a positive integer")
    only = None
    if remote_nodes:
        only = list(load_network(network_path).config.heralding_stations)
    network = open_network(
        network_path, backend=backend, seed=seed, only=only, simlab=simlab, faults=faults
    )
    try:
        orchestrator = build_orchestrator(
            network,
            loop,
            events_endpoint=events_endpoint,
            remote_nodes=remote_nodes,
            node_timeout_s=node_timeout_s,
            plaintext=plaintext,
            calibration=calibration,
        )
        orchestrator.shot_programs = not stepwise
        cutoffs = orchestrator.on_event = CutoffTally(on_cutoffs)
        orchestrator.prepare()
        store = open_store(
            plan,
            network,
            db_path,
            "teleport",
            TELEPORT_COLUMNS,
            loop,
            shots,
            calibration.snapshot(),
            durability,
        )
        first = chain_of(network)[0]
        started_sim = orchestrator.nodes[first].now_s()
        monitor = _heartbeat(network, remote_nodes, plaintext, heartbeat_s)
        shot_faults = ShotFaults()
        start = 0 if plan is None else plan.start_shot
        collected = collect(
            iter_teleportations(
                orchestrator, shots, start=start, shot_faults=shot_faults, batch=batch
            ),
            store,
            lambda record: _columns(record, started_sim),
            progress,
            monitor,
        )
        simulated = elapsed_s(orchestrator.nodes[first], started_sim)
        summary = teleport_summary(collected.records, simulated, collected.wall_s, shots)
        summary.update(
            **run_identity(network_path, network, calibration),
            attempt_loop=loop.model_dump(),
            protocol="stepwise" if stepwise else "shot programs",
            batch=batch,
            tries_cut_off=cutoffs.count,
        )
        resumed_totals(summary, plan)
        return finish(summary, collected, store, orchestrator, network, monitor, shot_faults)
    finally:
        network.close()


def _heartbeat(
    network: Network, remote_nodes: dict[str, str] | None, plaintext: bool, lost_after_s: float
) -> Any:
    """Heartbeats to node processes: a silent node is declared lost within ``lost_after_s``
    and the other nodes are made safe at once (by the monitor's own connections)."""
    if not remote_nodes:
        return None
    from .heartbeat import HeartbeatMonitor
    from .keys import orchestrator_security

    return HeartbeatMonitor(
        remote_nodes,
        lost_after_s=lost_after_s,
        security_for=lambda n: orchestrator_security(network.loaded, n, plaintext),
        on_lost=lambda node, reason: None,
        safe_on_loss=True,
    ).start()


def _columns(record: TeleportShot, start_s: float) -> dict[str, Any]:
    d = asdict(record)
    return {
        "shot": d["shot"],
        "input_state": d["input_state"],
        "outcome": d["outcome"],
        "correct": d["correct"],
        "attempts_ab": d["attempts_ab"],
        "attempts_bc": d["attempts_bc"],
        "swap_m1": d["swap_outcomes"][0],
        "swap_m2": d["swap_outcomes"][1],
        "bsm_m1": d["bsm_outcomes"][0],
        "bsm_m2": d["bsm_outcomes"][1],
        "delivered_time_s": d["delivered_time_s"] - start_s,
        "fidelity_exact": math.nan if d["exact_fidelity"] is None else d["exact_fidelity"],
    }
