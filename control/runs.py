"""Experiment runs: open a network, run a protocol shot by shot, store every shot as it
completes, and summarise. Used by the `qnode` command line and from notebooks."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drivers.qnode_rtc_program import MAX_BATCH
from sequences.analysis import wilson_interval
from sequences.attempt_loop import AnyLoop, NodeOptics, entanglement_loop

from .backend import Network, open_network
from .calibrated import calibrated_optics, calibrated_tagger_delays
from .calibration_store import CalibrationStore
from .network_config import load_network
from .node import NodeController, NodeInstruments, Pair, cardinal_states
from .orchestrator import Orchestrator, TeleportShot
from .recovery import ShotFaults
from .shot_loop import (
    collect,
    elapsed_s,
    finish,
    open_store,
    plan_run_resume,
    recovering,
    recovering_batches,
    resumed_totals,
)
from .storage import ENTANGLEMENT_COLUMNS, Column

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


def link_of(network: Any, link: str | None) -> tuple[str, str]:
    """The link named 'a-b' (or the only link of the network); ``network``: an open
    ``Network`` or a loaded network file."""
    links = getattr(network, "loaded", network).links
    names = [f"{a}-{b}" for a, b in links]
    if link is None:
        if len(links) != 1:
            raise ValueError(f"the network has links {names}; name one, e.g. --link {names[0]}")
        return links[0]
    parts = tuple(link.split("-"))
    for candidate in links:
        if set(candidate) == set(parts) and len(parts) == 2:
            return parts  # type: ignore[return-value]
    raise ValueError(f"--link {link!r}: no such link; links: {names}")


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
) -> dict[str, Any]:
    """Heralded entanglement on one link (or, with ``swap``, between the ends of a chain via
    entanglement swapping), every pair verified in XX/YY/ZZ and stored. ``scheme`` is the
    AWG program ('single_click' or 'barrett_kok'); an attempt loop ends without a herald
    after ``max_attempts`` (0: none) or ``max_time_us`` (None: none) and is started again.
    The calibration store beside the network file supplies the operating point
    (``calibration_in_force``); ``alpha`` None takes the link's calibrated alpha (else 0.1).
    ``faults`` and ``resume`` as for :func:`run_teleport`."""
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
        orchestrator.prepare()
        store = open_store(
            plan, network, db_path, name, ENTANGLEMENT_COLUMNS, loop, shots, calibration.snapshot()
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
            network=str(network_path),
            backend=network.backend,
            seed=network.seed,
            wall_s=collected.wall_s,
            calibration_in_force=calibration_versions(calibration),
        )
        resumed_totals(summary, plan)
        return finish(summary, collected, store, orchestrator, network, None, shot_faults)
    finally:
        network.close()


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
) -> dict[str, Any]:
    """A CHSH test on one link, every shot stored; S with its 95% interval. ``faults`` and
    ``resume`` as for :func:`run_teleport` (the summary of a resumed run covers this
    session's shots)."""
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
            plan, network, db_path, "chsh", CHSH_COLUMNS, loop, shots, calibration.snapshot()
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
            network=str(network_path),
            backend=network.backend,
            seed=network.seed,
            calibration_in_force=calibration_versions(calibration),
        )
        resumed_totals(summary, plan)
        return finish(summary, collected, store, orchestrator, network, None, shot_faults)
    finally:
        network.close()


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


def chain_of(network: Any) -> tuple[str, str, str]:
    """(end, middle, end) of a three-node chain network, from its heralding stations;
    ``network``: an open ``Network`` or a loaded network file."""
    loaded = getattr(network, "loaded", network)
    links = loaded.links
    if len(links) != 2:
        raise ValueError(
            f"{loaded.path}: teleportation over a chain needs two links, found {links}"
        )
    (a, b), (c, d) = links
    middle = ({a, b} & {c, d}).pop() if {a, b} & {c, d} else None
    if middle is None:
        raise ValueError(f"{loaded.path}: links {links} do not share a middle node")
    ends = [n for n in (a, b, c, d) if n != middle]
    return ends[0], middle, ends[1]


def build_orchestrator(
    network: Network,
    loop: AnyLoop,
    optics: NodeOptics | None = None,
    events_endpoint: str | None = None,
    remote_nodes: dict[str, str] | None = None,
    node_timeout_s: float = 10.0,
    plaintext: bool = False,
    calibration: CalibrationStore | None = None,
) -> Orchestrator:
    """Node controllers for every node of ``network`` and their orchestrator; with
    ``remote_nodes`` (name -> endpoint) the nodes are processes of their own, reached over
    RPC; with ``events_endpoint`` the orchestrator publishes heralds, swaps and shots. Each
    in-process node runs at the calibrated values in force (``control.calibrated``) of
    ``calibration``, by default the store beside the network file (nominal values where
    nothing was calibrated)."""
    optics = optics or NodeOptics(converter_pump_mw=500.0, converter_temperature_c=55.0)
    config = network.loaded.config
    store = calibration if calibration is not None else CalibrationStore.beside(network.loaded.path)
    nodes: dict[str, Any] = {}
    for name in network.loaded.config.nodes:
        if remote_nodes and name in remote_nodes:
            from .keys import orchestrator_security
            from .node_service import RemoteNode

            security = orchestrator_security(network.loaded, name, plaintext)
            nodes[name] = RemoteNode(
                name, remote_nodes[name], timeout_s=node_timeout_s, security=security
            )
        else:
            nodes[name] = NodeController(
                name,
                NodeInstruments.of(network, name),
                calibrated_optics(store, config, name, optics),
                pi_pulse_amplitude_v=store.pi_pulse_amplitude_v(name),
            )
    events = None
    if events_endpoint is not None:
        from .events import EventPublisher

        events = EventPublisher(events_endpoint, node="orchestrator")
    delays = {hs: calibrated_tagger_delays(store, config, hs) for hs in config.heralding_stations}
    return Orchestrator(network, nodes, loop, events=events, tagger_delays_ps=delays)


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
) -> dict[str, Any]:
    """Teleportation over a three-node chain, every shot stored as it completes. With
    ``remote_nodes`` the node controllers run in their own processes (``qnode serve``) and
    this process opens only the heralding stations (``simlab``: the shared simulated lab).
    ``faults``: a fault plan file for a dry run; ``resume``: the id of a stored run that did
    not finish, continued to its requested shot count (``shots`` may then be None).
    ``stepwise``: the orchestrator drives each step (for real-time controllers that serve
    only the core protocol, without shot programs). ``batch``: shots per program
    transaction (1..64), as real-time controllers run many repetitions per upload.

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
            network=str(network_path),
            backend=network.backend,
            seed=network.seed,
            attempt_loop=loop.model_dump(),
            calibration_in_force=calibration_versions(calibration),
            protocol="stepwise" if stepwise else "shot programs",
            batch=batch,
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


def calibrated_alpha(
    alpha: float | None, calibration: CalibrationStore, links: list[tuple[str, str]], default: float
) -> float:
    """The given alpha, else the calibrated one of the links (``CalibrationStore.alpha``),
    else ``default``."""
    if alpha is not None:
        return alpha
    calibrated = calibration.alpha(links)
    return calibrated if calibrated is not None else default


def calibration_versions(calibration: CalibrationStore) -> dict[str, int]:
    """Which calibration a run used: key -> version of the value in force."""
    return {key: record["version"] for key, record in calibration.snapshot().items()}
