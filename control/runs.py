"""Experiment runs: open a network, run a protocol shot by shot, store every shot as it
completes, and summarise. Used by the `qnode` command line and from notebooks."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sequences.analysis import wilson_interval
from sequences.attempt_loop import AttemptLoop, NodeOptics

from .backend import Network, open_network
from .calibration_store import CalibrationStore
from .node import NodeController, NodeError, NodeInstruments, cardinal_states
from .orchestrator import OrchestrationError, Orchestrator, TeleportShot
from .rpc import RpcError
from .storage import ENTANGLEMENT_COLUMNS, Column, ShotStore

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


def link_of(network: Network, link: str | None) -> tuple[str, str]:
    """The link named 'a-b' (or the only link of the network)."""
    links = network.loaded.links
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
    orchestrator: Orchestrator, a: str, b: str, shots: int
) -> Iterator[EntanglementShot]:
    """Deliver pairs on a-b and measure each in the next of XX, YY, ZZ."""
    network = orchestrator.network
    for shot in range(shots):
        pair_id = orchestrator.entangle_until_herald(a, b)
        pair = orchestrator.nodes[a].pair(pair_id)
        qubit_b = orchestrator.nodes[b].pair(pair_id).qubit
        exact = network.exact_pair_fidelity(a, pair.qubit, b, qubit_b, pair.bell_state)
        basis = VERIFICATION_BASES[shot % 3]
        delivered = orchestrator.nodes[a].now_s()
        out_a, out_b = orchestrator.verify(a, b, pair_id, basis)
        yield EntanglementShot(
            shot=shot,
            pair_id=pair_id,
            link=f"{a}-{b}",
            bell_state=pair.bell_state,
            attempts=pair.attempts,
            herald_time_s=pair.created_s,
            delivered_time_s=delivered,
            basis=basis,
            outcome_a=out_a,
            outcome_b=out_b,
            exact_fidelity=exact,
        )


def run_entangle(
    network_path: str | Path,
    shots: int,
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
) -> dict[str, Any]:
    """Heralded entanglement on one link (or, with ``swap``, between the ends of a chain via
    entanglement swapping), every pair verified in XX/YY/ZZ and stored. The calibration
    store beside the network file supplies the operating point (``calibration_in_force``);
    ``alpha`` None takes the link's calibrated alpha (else 0.1)."""
    from .summary import entanglement_summary

    if shots < 1:
        raise ValueError(f"shots={shots!r}: expected a positive integer")
    calibration = CalibrationStore.beside(network_path)
    overrides = None if fibre_length_km is None else {"fibre_length_km": fibre_length_km}
    network = open_network(network_path, backend=backend, seed=seed, link_overrides=overrides)
    try:
        if swap:
            a, mid, b = chain_of(network)
            links = [(a, mid), (mid, b)]
        else:
            a, b = link_of(network, link)
            links = [(a, b)]
        alpha = _alpha(alpha, calibration, links, 0.1)
        loop = AttemptLoop(alpha=alpha, max_attempts=max_attempts, stop_at_herald=True)
        orchestrator = build_orchestrator(
            network, loop, events_endpoint=events_endpoint, calibration=calibration
        )
        orchestrator.cutoff_s = cutoff_s
        orchestrator.prepare()
        name = "swap" if swap else "entangle"
        store = _store(network, db_path, name, ENTANGLEMENT_COLUMNS, loop, shots, calibration)
        shot_source = (
            iter_swapped_pairs(orchestrator, shots)
            if swap
            else iter_entanglement(orchestrator, a, b, shots)
        )
        start = orchestrator.nodes[a].now_s()

        def row(record: EntanglementShot) -> dict[str, Any]:
            values = asdict(record)
            exact = values.pop("exact_fidelity")
            values["fidelity_exact"] = math.nan if exact is None else exact
            values["herald_time_s"] -= start
            values["delivered_time_s"] -= start
            return values

        collected = _collect(shot_source, store, row, progress)
        records = collected.records
        summary = entanglement_summary(
            records,
            simulated_time_s=orchestrator.nodes[a].now_s() - start,
            readout_a=network.readout_calibration(a) or calibration.readout(a),
            readout_b=network.readout_calibration(b) or calibration.readout(b),
            parameters={
                "link": f"{a}-{b}",
                "alpha": alpha,
                "max_attempts": max_attempts,
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
            calibration_in_force=_versions(calibration),
        )
        return _finish(summary, collected, store, orchestrator, network)
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
    shots: int,
    *,
    link: str | None = None,
    seed: int | None = None,
    alpha: float | None = None,
    backend: str | None = None,
    db_path: str | Path | None = Path("runs/qnode.db"),
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """A CHSH test on one link, every shot stored; S with its 95% interval (``alpha`` None:
    the link's calibrated alpha, else 0.05)."""
    if shots < 4:
        raise ValueError(f"shots={shots!r}: a CHSH test needs at least 4 (one per setting)")
    calibration = CalibrationStore.beside(network_path)
    network = open_network(network_path, backend=backend, seed=seed)
    try:
        a, b = link_of(network, link)
        alpha = _alpha(alpha, calibration, [(a, b)], 0.05)
        loop = AttemptLoop(alpha=alpha, max_attempts=0, stop_at_herald=True)
        orchestrator = build_orchestrator(network, loop, calibration=calibration)
        orchestrator.prepare()
        store = _store(network, db_path, "chsh", CHSH_COLUMNS, loop, shots, calibration)
        collected = _collect(iter_chsh(orchestrator, a, b, shots), store, dict, progress)
        summary = chsh_summary(collected.records)
        summary.update(
            requested_shots=shots,
            link=f"{a}-{b}",
            alpha=alpha,
            network=str(network_path),
            backend=network.backend,
            seed=network.seed,
            calibration_in_force=_versions(calibration),
        )
        return _finish(summary, collected, store, orchestrator, network)
    finally:
        network.close()


@dataclass
class _Collected:
    """What a run's shot loop produced and how it ended."""

    records: list[Any]
    interrupted: bool = False
    aborted: str | None = None
    lost_node: str | None = None
    wall_s: float = 0.0

    @property
    def stopped_early(self) -> bool:
        return self.interrupted or self.aborted is not None


def _collect(
    shot_source: Iterator[Any],
    store: ShotStore | None,
    row: Callable[[Any], dict[str, Any]],
    progress: Callable[[int], None] | None,
    monitor: Any = None,
) -> _Collected:
    """Run the shots, storing each as it completes. Ctrl-C/SIGTERM ends the loop as
    interrupted; a protocol or peer failure as aborted, with the message (and the lost node,
    when the heartbeat monitor saw one); completed shots are kept either way."""
    out = _Collected(records=[])
    started = time.perf_counter()
    try:
        for record in shot_source:
            if monitor is not None:
                monitor.raise_if_lost()
            out.records.append(record)
            if store is not None:
                store.add_shot(**row(record))
            if progress is not None:
                progress(len(out.records))
    except KeyboardInterrupt:
        out.interrupted = True
    except (RpcError, OrchestrationError, NodeError) as exc:
        out.aborted = f"{type(exc).__name__}: {exc}"
        if monitor is not None and monitor.lost:
            out.lost_node, reason = next(iter(monitor.lost.items()))
            out.aborted = f"node {out.lost_node} lost: {reason}"
    finally:
        if monitor is not None:
            monitor.stop()
    out.wall_s = time.perf_counter() - started
    return out


def _finish(
    summary: dict[str, Any],
    collected: _Collected,
    store: ShotStore | None,
    orchestrator: Orchestrator,
    network: Network,
    monitor: Any = None,
) -> dict[str, Any]:
    """Record how the run ended, close its stored run, and make every instrument safe (not
    waiting on a lost node)."""
    summary.update(interrupted=collected.interrupted, aborted=collected.aborted)
    _close_store(store, summary, collected.stopped_early)
    if collected.lost_node is not None:
        from .heartbeat import make_others_safe

        failures = make_others_safe(orchestrator.nodes, collected.lost_node)
        failures[collected.lost_node] = f"lost: {monitor.lost[collected.lost_node]}"
        failures.update(network.safe_state())
    else:
        failures = orchestrator.safe_state()
    summary["safe_state_failures"] = failures
    return summary


def _store(
    network: Network,
    db_path: str | Path | None,
    name: str,
    columns: Any,
    loop: AttemptLoop,
    shots: int,
    calibration: CalibrationStore | None = None,
) -> ShotStore | None:
    if db_path is None:
        return None
    return ShotStore(
        db_path,
        run_name=name,
        columns=columns,
        config=network.loaded.config,
        seed=network.seed,
        backend=network.backend,
        requested_shots=shots,
        calibration=calibration.snapshot() if calibration is not None else None,
        extra_metadata={"attempt_loop": loop.model_dump()},
    )


def _alpha(
    alpha: float | None, calibration: CalibrationStore, links: list[tuple[str, str]], default: float
) -> float:
    """The given alpha, else the calibrated one of the links (``CalibrationStore.alpha``),
    else ``default``."""
    if alpha is not None:
        return alpha
    calibrated = calibration.alpha(links)
    return calibrated if calibrated is not None else default


def _versions(calibration: CalibrationStore | None) -> dict[str, int]:
    """Which calibration a run used: key -> version of the value in force."""
    if calibration is None:
        return {}
    return {key: record["version"] for key, record in calibration.snapshot().items()}


def _close_store(store: ShotStore | None, summary: dict[str, Any], interrupted: bool) -> None:
    if store is None:
        return
    summary["run_id"] = store.run_id
    summary["database"] = str(store.db_path)
    if interrupted:
        store.close(KeyboardInterrupt())
    else:
        store.finish(summary)
        store.close()


def iter_swapped_pairs(orchestrator: Orchestrator, shots: int) -> Iterator[EntanglementShot]:
    """Entanglement swapping over the chain: each a-c pair is corrected to Phi+ at ``a``
    (Pauli frame) and measured in the next of XX, YY, ZZ."""
    a, b, c = chain_of(orchestrator.network)
    network = orchestrator.network
    for shot in range(shots):
        pair_id, _, attempts_ab, attempts_bc = orchestrator.swapped_pair(a, b, c)
        frame = orchestrator.nodes[a].pair(pair_id).frame
        pair = orchestrator.nodes[a].correct(pair_id, frame)
        orchestrator.nodes[c].rename(pair_id, pair_id, a, pair.frame)
        qubit_c = orchestrator.nodes[c].pair(pair_id).qubit
        exact = network.exact_pair_fidelity(a, pair.qubit, c, qubit_c, pair.bell_state)
        basis = VERIFICATION_BASES[shot % 3]
        delivered = orchestrator.nodes[a].now_s()
        out_a, out_c = orchestrator.verify(a, c, pair_id, basis)
        yield EntanglementShot(
            shot=shot,
            pair_id=pair_id,
            link=f"{a}-{c}",
            bell_state=pair.bell_state,
            attempts=attempts_ab + attempts_bc,
            herald_time_s=pair.created_s,
            delivered_time_s=delivered,
            basis=basis,
            outcome_a=out_a,
            outcome_b=out_c,
            exact_fidelity=exact,
        )


def iter_chsh(orchestrator: Orchestrator, a: str, b: str, shots: int) -> Iterator[dict[str, Any]]:
    """CHSH on a link: each pair corrected to Phi+ and measured at one of the four optimal
    settings, a in {Z, X}, b in {(Z+X)/sqrt2, (Z-X)/sqrt2} (Clauser et al., PRL 23, 880
    (1969)); settings cycle shot by shot."""
    settings = [
        (0.0, math.pi / 4),
        (0.0, -math.pi / 4),
        (math.pi / 2, math.pi / 4),
        (math.pi / 2, -math.pi / 4),
    ]
    for shot in range(shots):
        pair_id = orchestrator.entangle_until_herald(a, b)
        frame = orchestrator.nodes[a].pair(pair_id).frame
        pair_a = orchestrator.nodes[a].correct(pair_id, frame)
        qubit_b = orchestrator.nodes[b].pair(pair_id).qubit
        theta_a, theta_b = settings[shot % 4]
        out_a = orchestrator.nodes[a].measure_along(pair_a.qubit, theta_a, 0.0)
        out_b = orchestrator.nodes[b].measure_along(qubit_b, theta_b, 0.0)
        orchestrator.nodes[a].discard_pair(pair_id)
        orchestrator.nodes[b].discard_pair(pair_id)
        yield {
            "shot": shot,
            "setting": shot % 4,
            "outcome_a": out_a,
            "outcome_b": out_b,
            "attempts": pair_a.attempts,
        }


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


def chain_of(network: Network) -> tuple[str, str, str]:
    """(end, middle, end) of a three-node chain network, from its heralding stations."""
    links = network.loaded.links
    if len(links) != 2:
        raise ValueError(
            f"{network.loaded.path}: teleportation over a chain needs two links, found {links}"
        )
    (a, b), (c, d) = links
    middle = ({a, b} & {c, d}).pop() if {a, b} & {c, d} else None
    if middle is None:
        raise ValueError(f"{network.loaded.path}: links {links} do not share a middle node")
    ends = [n for n in (a, b, c, d) if n != middle]
    return ends[0], middle, ends[1]


def build_orchestrator(
    network: Network,
    loop: AttemptLoop,
    optics: NodeOptics | None = None,
    events_endpoint: str | None = None,
    remote_nodes: dict[str, str] | None = None,
    node_timeout_s: float = 10.0,
    plaintext: bool = False,
    calibration: CalibrationStore | None = None,
) -> Orchestrator:
    """Node controllers for every node of ``network`` and their orchestrator; with
    ``remote_nodes`` (name -> endpoint) the nodes are processes of their own, reached over
    RPC; with ``events_endpoint`` the orchestrator publishes heralds, swaps and shots. With
    ``calibration`` each in-process node runs at its calibrated values in force (laser,
    converter, MW frequency, pi-pulse amplitude; ``CalibrationStore.node_optics``)."""
    optics = optics or NodeOptics(converter_pump_mw=500.0, converter_temperature_c=55.0)
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
                calibration.node_optics(name, optics) if calibration is not None else optics,
                pi_pulse_amplitude_v=(
                    calibration.pi_pulse_amplitude_v(name) if calibration is not None else None
                ),
            )
    events = None
    if events_endpoint is not None:
        from .events import EventPublisher

        events = EventPublisher(events_endpoint, node="orchestrator")
    return Orchestrator(network, nodes, loop, events=events)


def iter_teleportations(orchestrator: Orchestrator, shots: int) -> Iterator[TeleportShot]:
    """Teleport the six cardinal states in turn from one end of the chain to the other."""
    a, b, c = chain_of(orchestrator.network)
    states = cardinal_states()
    for shot in range(shots):
        yield orchestrator.teleport_over_chain(a, b, c, shot, states[shot % len(states)])


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
    shots: int,
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
) -> dict[str, Any]:
    """Teleportation over a three-node chain, every shot stored as it completes. With
    ``remote_nodes`` the node controllers run in their own processes (``qnode serve``) and
    this process opens only the heralding stations (``simlab``: the shared simulated lab).

    Stops cleanly on KeyboardInterrupt: the instruments go to their safe state, the shots so
    far are kept (the stored run is marked interrupted) and summarised.
    """
    if shots < 1:
        raise ValueError(f"shots={shots!r}: expected a positive integer")
    calibration = CalibrationStore.beside(network_path)
    only = None
    if remote_nodes:
        from .network_config import load_network

        only = list(load_network(network_path).config.heralding_stations)
    network = open_network(network_path, backend=backend, seed=seed, only=only, simlab=simlab)
    try:
        a, b, c = chain_of(network)
        alpha = _alpha(alpha, calibration, [(a, b), (b, c)], 0.1)
        loop = AttemptLoop(alpha=alpha, max_attempts=max_attempts, stop_at_herald=True)
        orchestrator = build_orchestrator(
            network,
            loop,
            events_endpoint=events_endpoint,
            remote_nodes=remote_nodes,
            node_timeout_s=node_timeout_s,
            plaintext=plaintext,
            calibration=calibration,
        )
        orchestrator.prepare()
        store = _store(network, db_path, "teleport", TELEPORT_COLUMNS, loop, shots, calibration)
        first = chain_of(network)[0]
        started_sim = orchestrator.nodes[first].now_s()
        monitor = _heartbeat(network, remote_nodes, plaintext, heartbeat_s)
        collected = _collect(
            iter_teleportations(orchestrator, shots),
            store,
            lambda record: _columns(record, started_sim),
            progress,
            monitor,
        )
        try:
            simulated = orchestrator.nodes[first].now_s() - started_sim
        except RpcError:  # the first node is the one that was lost
            simulated = float("nan")
        summary = teleport_summary(collected.records, simulated, collected.wall_s, shots)
        summary.update(
            network=str(network_path),
            backend=network.backend,
            seed=network.seed,
            attempt_loop=loop.model_dump(),
            calibration_in_force=_versions(calibration),
        )
        return _finish(summary, collected, store, orchestrator, network, monitor)
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
