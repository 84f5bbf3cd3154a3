"""What every run needs: the chain or link a network's file names, the node controllers and
their orchestrator at the calibrated operating point, and the calibration a run records."""

from __future__ import annotations

from typing import Any

from sequences.attempt_loop import AnyLoop, NodeOptics

from .backend import Network
from .calibrated import calibrated_optics, calibrated_tagger_delays
from .calibration_store import CalibrationStore
from .node import NodeController, NodeInstruments
from .orchestrator import Orchestrator


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


def calibrated_alpha(
    alpha: float | None, calibration: CalibrationStore, links: list[tuple[str, str]], default: float
) -> float:
    """The given alpha, else the calibrated one of the links (``CalibrationStore.alpha``),
    else ``default``."""
    if alpha is not None:
        return alpha
    calibrated = calibration.alpha(links)
    return calibrated if calibrated is not None else default


def run_identity(
    network_path: Any, network: Network, calibration: CalibrationStore
) -> dict[str, Any]:
    """What every run's summary says it ran on: the network file, backend, seed and the
    calibration in force."""
    return {
        "network": str(network_path),
        "backend": network.backend,
        "seed": network.seed,
        "calibration_in_force": calibration_versions(calibration),
    }


def calibration_versions(calibration: CalibrationStore) -> dict[str, int]:
    """Which calibration a run used: key -> version of the value in force."""
    return {key: record["version"] for key, record in calibration.snapshot().items()}
