"""Heralded entanglement runs: pairs delivered on one link, or between the ends of a chain by
entanglement swapping, each verified in XX, YY or ZZ and stored as it completes."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sequences.attempt_loop import entanglement_loop

from .backend import open_network
from .calibration_store import CalibrationStore
from .network_config import load_network
from .node import Pair
from .orchestrator import Orchestrator
from .recovery import ShotFaults
from .run_setup import (
    build_orchestrator,
    calibrated_alpha,
    chain_of,
    link_of,
    run_identity,
)
from .shot_columns import ENTANGLEMENT_COLUMNS
from .shot_loop import (
    CutoffTally,
    collect,
    elapsed_s,
    finish,
    open_store,
    plan_run_resume,
    recovering,
    resumed_totals,
)
from .storage import Durability


@dataclass(frozen=True)
class EntanglementShot:
    """One delivered and verified pair, as stored."""

    shot: int
    pair_id: str
    link: str
    bell_state: str
    attempts: int
    herald_time_s: float
    delivered_time_s: float
    basis: str
    outcome_a: int
    outcome_b: int
    exact_fidelity: float | None


VERIFICATION_BASES = ("XX", "YY", "ZZ")


def iter_entanglement(
    orchestrator: Orchestrator,
    a: str,
    b: str,
    shots: int,
    *,
    start: int = 0,
    shot_faults: ShotFaults | None = None,
) -> Iterator[EntanglementShot]:
    """Deliver pairs on a-b and measure each in the next of XX, YY, ZZ (shots ``start`` ..
    ``start + shots - 1``; a shot that meets a transient fault is run again)."""

    def one(shot: int) -> EntanglementShot:
        pair_id = orchestrator.entangle_until_herald(a, b)
        pair = orchestrator.nodes[a].pair(pair_id)
        return _verified_shot(orchestrator, shot, a, b, pair, pair.attempts)

    yield from recovering(one, orchestrator, shots, start, shot_faults)


def iter_swapped_pairs(
    orchestrator: Orchestrator,
    shots: int,
    *,
    start: int = 0,
    shot_faults: ShotFaults | None = None,
) -> Iterator[EntanglementShot]:
    """Entanglement swapping over the chain: each a-c pair is corrected to Phi+ at ``a``
    (Pauli frame) and measured in the next of XX, YY, ZZ."""
    a, b, c = chain_of(orchestrator.network)

    def one(shot: int) -> EntanglementShot:
        pair_id, _, attempts_ab, attempts_bc = orchestrator.swapped_pair(a, b, c)
        frame = orchestrator.nodes[a].pair(pair_id).frame
        pair = orchestrator.nodes[a].correct(pair_id, frame)
        orchestrator.nodes[c].rename(pair_id, pair_id, a, pair.frame)
        return _verified_shot(orchestrator, shot, a, c, pair, attempts_ab + attempts_bc)

    yield from recovering(one, orchestrator, shots, start, shot_faults)


def _verified_shot(
    orchestrator: Orchestrator, shot: int, a: str, b: str, pair: Pair, attempts: int
) -> EntanglementShot:
    """Measure a delivered pair (``pair`` as ``a`` holds it) in the next of XX, YY, ZZ, with
    the simulated state's exact fidelity taken just before (None in the lab)."""
    pair_id = pair.pair_id
    qubit_b = orchestrator.nodes[b].pair(pair_id).qubit
    exact = orchestrator.network.exact_pair_fidelity(a, pair.qubit, b, qubit_b, pair.bell_state)
    basis = VERIFICATION_BASES[shot % 3]
    delivered = orchestrator.nodes[a].now_s()
    out_a, out_b = orchestrator.verify(a, b, pair_id, basis)
    return EntanglementShot(
        shot=shot,
        pair_id=pair_id,
        link=f"{a}-{b}",
        bell_state=pair.bell_state,
        attempts=attempts,
        herald_time_s=pair.created_s,
        delivered_time_s=delivered,
        basis=basis,
        outcome_a=out_a,
        outcome_b=out_b,
        exact_fidelity=exact,
    )


def run_entangle(
    network_path: str | Path,
    shots: int | None,
    *,
    link: str | None = None,
    seed: int | None = None,
    alpha: float | None = None,
    max_attempts: int = 0,
    backend: str | None = None,
    db_path: str | Path | None = Path("runs/qnode.db"),
    progress: Callable[[int], None] | None = None,
    events_endpoint: str | None = None,
    swap: bool = False,
    cutoff_s: float | None = None,
    fibre_length_km: float | None = None,
    scheme: str = "single_click",
    max_time_us: float | None = None,
    faults: str | Path | None = None,
    resume: int | None = None,
    on_cutoffs: Callable[[int], None] | None = None,
    durability: Durability | None = None,
) -> dict[str, Any]:
    """Heralded entanglement on one link (or, with ``swap``, between the ends of a chain via
    entanglement swapping), every pair verified in XX/YY/ZZ and stored. ``scheme`` is the
    AWG program ('single_click' or 'barrett_kok'); an attempt loop ends without a herald
    after ``max_attempts`` (0: none) or ``max_time_us`` (None: none) and is started again.
    The calibration store beside the network file supplies the operating point
    (``calibration_in_force``); ``alpha`` None takes the link's calibrated alpha (else 0.1).
    ``faults``, ``resume``, ``durability`` and ``on_cutoffs`` (told the count of tries a
    cut-off ended, the summary's ``tries_cut_off``) as for :func:`run_teleport`."""
    from .summary import entanglement_summary

    name = "swap" if swap else "entangle"
    calibration = CalibrationStore.beside(network_path)
    loaded = load_network(network_path)
    if swap:
        a, mid, b = chain_of(loaded)
        links = [(a, mid), (mid, b)]
    else:
        links = [link_of(loaded, link)]
    alpha = calibrated_alpha(alpha, calibration, links, 0.1)
    loop = entanglement_loop(
        scheme, alpha=alpha, max_attempts=max_attempts, max_time_us=max_time_us
    )
    plan = plan_run_resume(resume, db_path, name, network_path, backend, loop, shots, seed)
    if plan is not None:
        shots, seed = plan.remaining, plan.continuation_seed
    elif shots is None or shots < 1:
        raise ValueError(f"shots={shots!r}: expected a positive integer")
    overrides = None if fibre_length_km is None else {"fibre_length_km": fibre_length_km}
    network = open_network(
        network_path, backend=backend, seed=seed, link_overrides=overrides, faults=faults
    )
    try:
        if swap:
            a, _, b = chain_of(network)
        else:
            a, b = link_of(network, link)
        orchestrator = build_orchestrator(
            network, loop, events_endpoint=events_endpoint, calibration=calibration
        )
        orchestrator.cutoff_s = cutoff_s
        cutoffs = orchestrator.on_event = CutoffTally(on_cutoffs)
        orchestrator.prepare()
        store = open_store(
            plan,
            network,
            db_path,
            name,
            ENTANGLEMENT_COLUMNS,
            loop,
            shots,
            calibration.snapshot(),
            durability,
        )
        shot_faults = ShotFaults()
        first = 0 if plan is None else plan.start_shot
        shot_source = (
            iter_swapped_pairs(orchestrator, shots, start=first, shot_faults=shot_faults)
            if swap
            else iter_entanglement(orchestrator, a, b, shots, start=first, shot_faults=shot_faults)
        )
        start = orchestrator.nodes[a].now_s()

        def row(record: EntanglementShot) -> dict[str, Any]:
            values = asdict(record)
            exact = values.pop("exact_fidelity")
            values["fidelity_exact"] = math.nan if exact is None else exact
            values["herald_time_s"] -= start
            values["delivered_time_s"] -= start
            return values

        collected = collect(shot_source, store, row, progress)
        records = collected.records
        summary = entanglement_summary(
            records,
            simulated_time_s=elapsed_s(orchestrator.nodes[a], start),
            readout_a=network.readout_calibration(a) or calibration.readout(a),
            readout_b=network.readout_calibration(b) or calibration.readout(b),
            parameters={
                "link": f"{a}-{b}",
                "scheme": loop.scheme,
                "alpha": alpha if loop.scheme == "single_click" else None,
                "max_attempts": max_attempts,
                "max_time_us": max_time_us,
                **({"swapped_at": chain_of(network)[1], "cutoff_s": cutoff_s} if swap else {}),
                **({"fibre_length_km": fibre_length_km} if fibre_length_km is not None else {}),
            },
            requested_shots=shots,
        )
        summary.update(
            **run_identity(network_path, network, calibration),
            wall_s=collected.wall_s,
            tries_cut_off=cutoffs.count,
        )
        resumed_totals(summary, plan)
        return finish(summary, collected, store, orchestrator, network, None, shot_faults)
    finally:
        network.close()
