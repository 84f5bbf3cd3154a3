"""CHSH runs: pairs on one link measured at the four optimal settings, S with its interval."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sequences.attempt_loop import entanglement_loop

from .backend import open_network
from .calibration_store import CalibrationStore
from .network_config import load_network
from .orchestrator import Orchestrator
from .recovery import ShotFaults
from .run_setup import build_orchestrator, calibrated_alpha, link_of, run_identity
from .shot_columns import Column
from .shot_loop import (
    collect,
    finish,
    open_store,
    plan_run_resume,
    recovering,
    resumed_totals,
)
from .storage import Durability

CHSH_COLUMNS: tuple[Column, ...] = (
    Column("setting", "int", label="CHSH setting (0..3)"),
    Column("outcome_a", "int", label="Outcome A"),
    Column("outcome_b", "int", label="Outcome B"),
    Column("attempts", "int", label="Attempts to success"),
)


def run_chsh(
    network_path: str | Path,
    shots: int | None,
    *,
    link: str | None = None,
    seed: int | None = None,
    alpha: float | None = None,
    backend: str | None = None,
    db_path: str | Path | None = Path("runs/qnode.db"),
    progress: Callable[[int], None] | None = None,
    scheme: str = "single_click",
    faults: str | Path | None = None,
    resume: int | None = None,
    durability: Durability | None = None,
) -> dict[str, Any]:
    """A CHSH test on one link, every shot stored; S with its 95% interval. ``faults``,
    ``resume`` and ``durability`` as for :func:`run_teleport` (the summary of a resumed run
    covers this session's shots)."""
    calibration = CalibrationStore.beside(network_path)
    links = [link_of(load_network(network_path), link)]
    alpha = calibrated_alpha(alpha, calibration, links, 0.05)
    loop = entanglement_loop(scheme, alpha=alpha)
    plan = plan_run_resume(resume, db_path, "chsh", network_path, backend, loop, shots, seed)
    if plan is not None:
        shots, seed = plan.remaining, plan.continuation_seed
    elif shots is None or shots < 4:
        raise ValueError(f"shots={shots!r}: a CHSH test needs at least 4 (one per setting)")
    network = open_network(network_path, backend=backend, seed=seed, faults=faults)
    try:
        a, b = link_of(network, link)
        orchestrator = build_orchestrator(network, loop, calibration=calibration)
        orchestrator.prepare()
        store = open_store(
            plan,
            network,
            db_path,
            "chsh",
            CHSH_COLUMNS,
            loop,
            shots,
            calibration.snapshot(),
            durability,
        )
        shot_faults = ShotFaults()
        first = 0 if plan is None else plan.start_shot
        shot_source = iter_chsh(orchestrator, a, b, shots, start=first, shot_faults=shot_faults)
        collected = collect(shot_source, store, dict, progress)
        summary = chsh_summary(collected.records)
        summary.update(
            requested_shots=shots,
            link=f"{a}-{b}",
            scheme=loop.scheme,
            alpha=alpha,
            **run_identity(network_path, network, calibration),
        )
        resumed_totals(summary, plan)
        return finish(summary, collected, store, orchestrator, network, None, shot_faults)
    finally:
        network.close()


def iter_chsh(
    orchestrator: Orchestrator,
    a: str,
    b: str,
    shots: int,
    *,
    start: int = 0,
    shot_faults: ShotFaults | None = None,
) -> Iterator[dict[str, Any]]:
    """CHSH on a link: each pair corrected to Phi+ and measured at one of the four optimal
    settings, a in {Z, X}, b in {(Z+X)/sqrt2, (Z-X)/sqrt2} (Clauser et al., PRL 23, 880
    (1969)); settings cycle shot by shot."""
    settings = [
        (0.0, math.pi / 4),
        (0.0, -math.pi / 4),
        (math.pi / 2, math.pi / 4),
        (math.pi / 2, -math.pi / 4),
    ]

    def one(shot: int) -> dict[str, Any]:
        pair_id = orchestrator.entangle_until_herald(a, b)
        frame = orchestrator.nodes[a].pair(pair_id).frame
        pair_a = orchestrator.nodes[a].correct(pair_id, frame)
        qubit_b = orchestrator.nodes[b].pair(pair_id).qubit
        theta_a, theta_b = settings[shot % 4]
        out_a = orchestrator.nodes[a].measure_along(pair_a.qubit, theta_a, 0.0)
        out_b = orchestrator.nodes[b].measure_along(qubit_b, theta_b, 0.0)
        orchestrator.nodes[a].discard_pair(pair_id)
        orchestrator.nodes[b].discard_pair(pair_id)
        return {
            "shot": shot,
            "setting": shot % 4,
            "outcome_a": out_a,
            "outcome_b": out_b,
            "attempts": pair_a.attempts,
        }

    yield from recovering(one, orchestrator, shots, start, shot_faults)


def chsh_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """S from the four settings' correlators (signs +, +, +, -)."""
    from sequences.analysis import chsh_value, correlator

    correlators = []
    for setting in range(4):
        rows = [r for r in records if r["setting"] == setting]
        if not rows:
            return {"shots": len(records)}
        correlators.append(
            correlator(
                np.array([r["outcome_a"] for r in rows]), np.array([r["outcome_b"] for r in rows])
            )
        )
    s = chsh_value(correlators, signs=(1, 1, 1, -1))
    return {
        "shots": len(records),
        "chsh_s": s.value,
        "chsh_ci95": list(s.interval()),
        "correlators": [c.value for c in correlators],
        "violates_local_bound": s.interval()[0] > 2.0,
    }
