"""SeQUeNCe baseline: Barrett-Kok pairs per wall-clock second on a fixed two-router link.

The benchmark runner prints "our pairs/s over SeQUeNCe's pairs/s"; this module supplies the
denominator by running the open-source simulator SeQUeNCe (PyPI package ``sequence``, an
optional extra: ``pip install .[bench]``) on exactly the scenario below, which our engine
replicates.

Scenario (SeQUeNCe's standard router-to-router set-up, as in its "SeQUeNCe in 3 minutes" two-node
tutorial and the ``two_node_eg`` example, but with Barrett-Kok generation and stock hardware):

* ``router_0 --(d/2)-- BSM node --(d/2)-- router_1``, built by ``RouterNetTopo`` from a
  generated configuration: two ``QuantumRouter`` nodes with one memory each, one ``BSMNode``
  (``SingleAtomBSM``) at the midpoint, quantum channels at 0.2 dB/km, classical channels
  between every pair of nodes with the pure fibre delay ``length / (2e8 m/s)``.
* Entanglement generation is SeQUeNCe's ``EntanglementGenerationA`` / ``B`` of type
  ``BARRET_KOK`` (``BarretKokA`` on the routers, ``BarretKokB`` on the BSM node).
* A ``RequestApp`` on ``router_0`` reserves the link to ``router_1`` for the simulated window.
  The reservation installs generation rules on both routers; every delivered pair is counted
  and released back to the RAW state, which makes the rules start the next generation attempt
  at once, so generation runs back to back for the whole window (no idle time).
* Only ``tl.run()`` is timed (``time.perf_counter``); building the network is excluded, and a
  short untimed warm-up simulation is run first so that one-off lazy initialisation inside
  SeQUeNCe/QuTiP is not billed to the measured run.

Per attempt (two Barrett-Kok rounds) SeQUeNCe's success probability is exactly
``eta**2 / 2`` with ``eta = memory_efficiency * 10**(-0.2 * (d/2) / 10) * detector_efficiency``
(see ``SCENARIO_PARAMETERS["bsm_model"]`` and :func:`success_probability_per_attempt`).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import math
import os
import tempfile
import time
from typing import Any

import numpy as np

ROUTER_A = "router_0"
ROUTER_B = "router_1"
BSM_NODE = "BSM_router_0_router_1"

#: Light speed in fibre used by SeQUeNCe (``sequence.constants.SPEED_OF_LIGHT`` = 2e-4 m/ps).
_LIGHT_SPEED_M_PER_S = 2e8
_PS_PER_S = 1e12

#: Physical and protocol parameters of the scenario. These are SeQUeNCe's own component
#: defaults (``MemoryArray``/``Memory``, ``Detector``, ``SingleAtomBSM``, ``QuantumChannel``,
#: ``sequence.constants``) as of sequence 0.8.5; they are also written explicitly into the
#: generated network configuration, so a change of defaults in SeQUeNCe cannot silently change
#: the scenario. ``run_sequence_barrett_kok`` reads them back from the built components and
#: returns them under ``"parameters"``.
SCENARIO_PARAMETERS: dict[str, Any] = {
    "simulator": "SeQUeNCe (PyPI 'sequence'), RouterNetTopo + RequestApp",
    "protocol": "Barrett-Kok (EntanglementGenerationA/B, type 'barret_kok'), two rounds",
    "topology": "QuantumRouter -- BSMNode (SingleAtomBSM) -- QuantumRouter, BSM at midpoint",
    "arm_fraction": 0.5,  # each router-BSM fibre is distance_km / 2
    "memories_per_router": 1,
    # Memory (sequence.components.memory.MemoryArray / Memory defaults)
    "memory_efficiency": 1.0,  # probability that an excitation emits a photon
    "memory_fidelity": 0.85,  # raw_fidelity: fidelity assigned to every heralded pair
    "memory_frequency_hz": 80e6,  # max excitation rate (next_excite_time = now + 1/f)
    "memory_coherence_time_s": -1.0,  # -1: infinite, no decoherence, no expiry events
    "memory_wavelength_nm": 500.0,
    # BSM detectors (sequence.components.detector.Detector defaults, 2 per SingleAtomBSM)
    "detector_efficiency": 0.9,
    "detector_dark_count_per_s": 0.0,
    "detector_count_rate_hz": 25e6,  # dead time 40 ns
    "detector_time_resolution_ps": 150,
    "bsm_phase_error": 0.0,
    # Fibre (sequence.components.optical_channel.QuantumChannel)
    "fibre_attenuation_db_per_km": 0.2,  # configured as 0.0002 dB/m
    "fibre_light_speed_m_per_s": _LIGHT_SPEED_M_PER_S,
    "quantum_channel_frequency_hz": 8e7,  # emission time bins of 12.5 ns
    "classical_delay": "fibre length / 2e8 m/s, no processing overhead; "
    "router<->BSM d/2, router<->router d",
    # Photons / quantum state
    "photon_wavelength_nm": 500.0,  # photons carry the memory wavelength
    "photon_frequency_hz": 2.998e8 / 500e-9,  # c / 500 nm, about 6.0e14 Hz (not used by BK)
    "formalism": "ket_vector",
    "gate_fidelity": 1.0,
    "measurement_fidelity": 1.0,
    # Request
    "request_target_fidelity": 0.8,  # below memory_fidelity, so no purification is scheduled
    "success_probability_per_attempt": "eta**2 / 2, eta = memory_efficiency "
    "* 10**(-attenuation_db_per_km * distance_km / 2 / 10) * detector_efficiency",
    "bsm_model": (
        "Memories prepared in |+>, each excitation emits a photon entangled with its memory; "
        "photons are never dropped but carry a loss probability 1-(1-loss_mem)(1-loss_fibre). "
        "SingleAtomBSM measures both photons in Z: if exactly one is |1>, a random detector "
        "clicks with probability (1-loss)*detector_efficiency and the memories are projected "
        "to psi+/psi-; if both are |1>, each survives and clicks a random detector "
        "independently (clicks on both detectors void the round, two on the same detector "
        "count once because of the dead time). After round 1 both memories get an X flip and "
        "round 2 repeats the measurement; success needs one valid click in each round. False "
        "round-1 heralds from |11> become |00> and never click in round 2, so P(success) = "
        "eta**2/2 exactly (no dark counts). The delivered pair is psi+ with probability "
        "memory_fidelity, else one of the other three Bell states (each (1-F)/3); its "
        "reported fidelity is memory_fidelity."
    ),
    "attempt_schedule": (
        "No fixed clock: each attempt is driven by messages. On a failure both memories go "
        "RAW, router_0's rule creates a new BarretKokA and sends a REQUEST to router_1 "
        "(one-way router-router delay L = d / 2e8 m/s); router_1 pairs, answers and, being "
        "the primary (name order), sends NEGOTIATE (L); router_0 schedules emission one more "
        "L later (emission times land on the 80 MHz channel time bins); photons fly d/2, the "
        "BSM result comes back d/2. A round-1 failure therefore costs about 4L of simulated "
        "time, a heralded round 1 adds about 3L for round 2 (NEGOTIATE, emission, result)."
    ),
}

#: Simulated window (seconds) per distance, chosen for roughly 2-10 s of ``tl.run()`` wall
#: time on a shared 2-core machine. SeQUeNCe spends about 1.6 ms of wall time per attempt at
#: 1 km (many attempts succeed and run round 2) and about 0.8 ms at 100 km.
DEFAULT_SIM_TIME_S: dict[float, float] = {1.0: 0.06, 100.0: 20.0}

_APP_CLASS: type | None = None


def sequence_available() -> bool:
    """Return True if SeQUeNCe (the optional ``sequence`` package) can be imported."""
    try:
        importlib.import_module("sequence")
        importlib.import_module("sequence.kernel")
    except Exception:  # ImportError, or a broken install of an optional extra
        return False
    return True


def sequence_version() -> str | None:
    """Return the installed SeQUeNCe version string, or None if it is not installed."""
    try:
        return importlib.metadata.version("sequence")
    except importlib.metadata.PackageNotFoundError:
        return None


def link_efficiency(distance_km: float) -> float:
    """Return eta: the probability that one emitted photon produces a detector click.

    Product of memory efficiency, transmission of one arm (``distance_km / 2``) and detector
    efficiency, with the parameters of :data:`SCENARIO_PARAMETERS`.
    """
    p = SCENARIO_PARAMETERS
    arm_km = distance_km * p["arm_fraction"]
    fibre = 10 ** (-p["fibre_attenuation_db_per_km"] * arm_km / 10)
    return p["memory_efficiency"] * fibre * p["detector_efficiency"]


def success_probability_per_attempt(distance_km: float) -> float:
    """Return SeQUeNCe's Barrett-Kok success probability per attempt, ``eta**2 / 2``."""
    return link_efficiency(distance_km) ** 2 / 2


def default_sim_time_s(distance_km: float) -> float:
    """Return the simulated window used for ``distance_km`` by default.

    Uses :data:`DEFAULT_SIM_TIME_S` when the distance is listed, otherwise scales the window so
    that about 4000 attempts (a few wall seconds) are simulated, with the attempt period of
    ``SCENARIO_PARAMETERS["attempt_schedule"]``.
    """
    if float(distance_km) in DEFAULT_SIM_TIME_S:
        return DEFAULT_SIM_TIME_S[float(distance_km)]
    one_way_s = distance_km * 1e3 / _LIGHT_SPEED_M_PER_S
    eta = link_efficiency(distance_km)
    herald_round1 = eta - 3 * eta**2 / 8
    period_s = (4 + 3 * herald_round1) * one_way_s + 20e-9
    return 4000 * period_s


def _network_config(distance_km: float, seed: int, stop_time_ps: int) -> dict[str, Any]:
    """Build the RouterNetTopo configuration dictionary of the scenario."""
    p = SCENARIO_PARAMETERS
    total_m = distance_km * 1e3
    arm_m = total_m * p["arm_fraction"]
    detector = {
        "efficiency": p["detector_efficiency"],
        "dark_count": p["detector_dark_count_per_s"],
        "count_rate": p["detector_count_rate_hz"],
        "time_resolution": p["detector_time_resolution_ps"],
    }
    templates = {
        "router": {
            "MemoryArray": {
                "fidelity": p["memory_fidelity"],
                "frequency": p["memory_frequency_hz"],
                "efficiency": p["memory_efficiency"],
                "coherence_time": p["memory_coherence_time_s"],
                "wavelength": p["memory_wavelength_nm"],
            }
        },
        "bsm": {
            "encoding_type": "single_atom",
            "SingleAtomBSM": {"phase_error": p["bsm_phase_error"], "detectors": [detector] * 2},
        },
    }
    router = {
        "type": "QuantumRouter",
        "memo_size": p["memories_per_router"],
        "template": "router",
        "gate_fidelity": p["gate_fidelity"],
        "measurement_fidelity": p["measurement_fidelity"],
    }
    nodes = [
        {**router, "name": ROUTER_A, "seed": seed},
        {**router, "name": ROUTER_B, "seed": seed + 1},
        {"name": BSM_NODE, "type": "BSMNode", "seed": seed + 2, "template": "bsm"},
    ]
    attenuation_db_per_m = p["fibre_attenuation_db_per_km"] / 1e3
    qchannels = [
        {
            "source": r,
            "destination": BSM_NODE,
            "distance": arm_m,
            "attenuation": attenuation_db_per_m,
        }
        for r in (ROUTER_A, ROUTER_B)
    ]
    cchannels = []
    for a, b, length_m in (
        (ROUTER_A, BSM_NODE, arm_m),
        (ROUTER_B, BSM_NODE, arm_m),
        (ROUTER_A, ROUTER_B, total_m),
    ):
        delay_ps = round(length_m / _LIGHT_SPEED_M_PER_S * _PS_PER_S)
        for src, dst in ((a, b), (b, a)):
            cchannels.append(
                {"source": src, "destination": dst, "distance": length_m, "delay": delay_ps}
            )
    return {
        "templates": templates,
        "nodes": nodes,
        "qchannels": qchannels,
        "cchannels": cchannels,
        "formalism": p["formalism"],
        "stop_time": stop_time_ps,
    }


def _counting_app_class() -> type:
    """Return a RequestApp subclass that also records the fidelity of delivered pairs.

    Counting is left to the stock ``RequestApp.memory_counter``; the subclass only adds, per
    delivered pair, the fidelity SeQUeNCe reports and the overlap of the actual two-memory
    state with psi+ (a few microseconds per pair).
    """
    global _APP_CLASS
    if _APP_CLASS is not None:
        return _APP_CLASS
    from sequence.app.request_app import RequestApp

    class _CountingRequestApp(RequestApp):
        def __init__(self, node: Any) -> None:
            super().__init__(node)
            self.nominal_fidelities: list[float] = []
            self.state_fidelities: list[float] = []

        def get_memory(self, info: Any) -> None:
            if (
                info.state == "ENTANGLED"
                and info.remote_node == self.responder
                and info.index in self.memo_to_reservation
            ):
                self.nominal_fidelities.append(float(info.fidelity))
                overlap = _psi_plus_overlap(
                    self.node.timeline.quantum_manager, info.memory.qstate_key
                )
                if overlap is not None:
                    self.state_fidelities.append(overlap)
            super().get_memory(info)

    _APP_CLASS = _CountingRequestApp
    return _APP_CLASS


def _psi_plus_overlap(quantum_manager: Any, key: int) -> float | None:
    """Return <psi+|rho|psi+> of the two-qubit state holding ``key``, or None if not 2-qubit.

    psi+ is symmetric under exchange, so the order of the two keys does not matter.
    """
    state = quantum_manager.get(key)
    if len(state.keys) != 2:
        return None
    arr = np.asarray(state.state, dtype=complex)
    if arr.ndim == 1:
        return float(abs(arr[1] + arr[2]) ** 2 / 2)
    if arr.shape == (4, 4):
        return float((arr[1, 1] + arr[2, 2] + arr[1, 2] + arr[2, 1]).real / 2)
    return None


def _force_barrett_kok() -> None:
    """Select Barrett-Kok generation (a process-wide class setting in SeQUeNCe >= 0.8)."""
    from sequence.entanglement_management import generation

    for cls_name in ("EntanglementGenerationA", "EntanglementGenerationB"):
        cls = getattr(generation, cls_name, None)
        if cls is not None and hasattr(cls, "set_global_type"):
            cls.set_global_type("barret_kok")


def _build(distance_km: float, sim_time_s: float, seed: int) -> dict[str, Any]:
    """Build the network, apps and request; return everything needed to run and read it."""
    from sequence.topology.router_net_topo import RouterNetTopo

    _force_barrett_kok()
    # The reservation must be approved (one router-router round trip) before it starts.
    one_way_ps = distance_km * 1e3 / _LIGHT_SPEED_M_PER_S * _PS_PER_S
    start_ps = int(1e9 + 4 * one_way_ps)  # 1 ms + 2 round trips
    end_ps = start_ps + int(round(sim_time_s * _PS_PER_S))
    config = _network_config(distance_km, seed, end_ps)

    # RouterNetTopo in sequence 0.8.x only accepts a file name (1.x also takes a dict).
    fd, path = tempfile.mkstemp(prefix="sequence_baseline_", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(config, fh)
        topo = RouterNetTopo(path)
    finally:
        os.unlink(path)
    tl = topo.get_timeline()
    routers = {r.name: r for r in topo.get_nodes_by_type(RouterNetTopo.QUANTUM_ROUTER)}
    app_cls = _counting_app_class()
    apps = {name: app_cls(node) for name, node in routers.items()}

    # Count attempts on router_0: every finished BarretKokA reports RAW (failure) or ENTANGLED
    # (success) to its resource manager. Wrapping that one bound method costs one extra Python
    # call per attempt.
    from sequence.entanglement_management.generation import EntanglementGenerationA

    outcomes = {"fail": 0, "success": 0}
    resource_manager = routers[ROUTER_A].resource_manager
    original_update = resource_manager.update

    def counting_update(protocol: Any, memory: Any, state: str) -> None:
        if isinstance(protocol, EntanglementGenerationA):
            if state == "ENTANGLED":
                outcomes["success"] += 1
            elif state == "RAW":
                outcomes["fail"] += 1
        original_update(protocol, memory, state)

    resource_manager.update = counting_update

    tl.init()
    apps[ROUTER_A].start(
        ROUTER_B,
        start_ps,
        end_ps,
        SCENARIO_PARAMETERS["memories_per_router"],
        SCENARIO_PARAMETERS["request_target_fidelity"],
    )
    return {"tl": tl, "topo": topo, "routers": routers, "apps": apps, "outcomes": outcomes}


def _read_back_parameters(built: dict[str, Any]) -> dict[str, Any]:
    """Read the physical parameters actually used from the built SeQUeNCe components."""
    topo = built["topo"]
    router = built["routers"][ROUTER_A]
    memory = router.get_components_by_type("MemoryArray")[0][0]
    bsm_node = topo.get_nodes_by_type("BSMNode")[0]
    bsm = bsm_node.get_components_by_type("SingleAtomBSM")[0]
    det = bsm.detectors[0]
    qc = router.qchannels[BSM_NODE]
    return {
        "memory_efficiency": memory.efficiency,
        "memory_fidelity": memory.raw_fidelity,
        "memory_frequency_hz": memory.frequency,
        "memory_coherence_time_s": memory.coherence_time,
        "memory_wavelength_nm": memory.wavelength,
        "detector_efficiency": det.efficiency,
        "detector_dark_count_per_s": det.dark_count,
        "detector_count_rate_hz": det.count_rate,
        "detector_time_resolution_ps": det.time_resolution,
        "fibre_attenuation_db_per_km": qc.attenuation * 1e3,
        "arm_length_m": qc.distance,
        "arm_loss": qc.loss,
        "fibre_light_speed_m_per_s": qc.light_speed * _PS_PER_S,
        "quantum_channel_frequency_hz": qc.frequency,
        "qc_delay_ps": qc.delay,
        "cc_router_router_delay_ps": router.cchannels[ROUTER_B].delay,
        "cc_router_bsm_delay_ps": router.cchannels[BSM_NODE].delay,
        "protocol_type": _protocol_type(),
    }


def _protocol_type() -> str:
    from sequence.entanglement_management import generation

    cls = generation.EntanglementGenerationA
    return cls.get_global_type() if hasattr(cls, "get_global_type") else "barret_kok"


def run_sequence_barrett_kok(
    distance_km: float,
    sim_time_s: float,
    seed: int = 0,
    *,
    warmup: bool = True,
) -> dict[str, Any]:
    """Run SeQUeNCe's Barrett-Kok router-to-router scenario and time ``tl.run()``.

    Args:
        distance_km: total fibre length between the two routers (BSM node at the midpoint).
        sim_time_s: simulated duration of the entanglement request window, in seconds.
        seed: seed of the routers' (``seed``, ``seed + 1``) and BSM node's (``seed + 2``)
            random generators; results are reproducible for a given seed.
        warmup: run a short untimed simulation first (lazy initialisation in SeQUeNCe and
            QuTiP otherwise inflates the first ``tl.run()`` of a process by up to ~2x).

    Returns:
        ``pairs`` (pairs delivered to router_0's RequestApp), ``wall_s`` (wall time of
        ``tl.run()``), ``pairs_per_s`` (pairs per wall second), ``sim_time_s``,
        ``distance_km``, ``mean_fidelity`` (mean fidelity SeQUeNCe attaches to the delivered
        pairs, None without pairs), ``state_fidelity`` (mean overlap of the delivered states
        with psi+), ``attempts`` (finished Barrett-Kok attempts), ``success_probability``
        (pairs per attempt), ``success_probability_model`` (``eta**2 / 2``),
        ``attempt_period_s`` (simulated seconds per attempt), ``attempts_per_s`` and
        ``events_per_s`` (per wall second), ``pairs_per_s_model`` (``attempts_per_s`` times
        the model probability: a lower-variance estimate of ``pairs_per_s`` when few pairs
        are delivered, e.g. at 100 km), ``events`` (executed SeQUeNCe events),
        ``sim_pairs_per_s`` (pairs per simulated second), ``seed``, ``sequence_version`` and
        ``parameters`` (values read back from the built components).

    Raises:
        ImportError: if SeQUeNCe is not installed (check :func:`sequence_available` first).
    """
    if distance_km <= 0 or sim_time_s <= 0:
        raise ValueError("distance_km and sim_time_s must be positive")
    if warmup:
        warm = _build(1.0, 2e-3, seed + 1000)
        warm["tl"].run()

    built = _build(float(distance_km), float(sim_time_s), seed)
    tl = built["tl"]
    t0 = time.perf_counter()
    tl.run()
    wall_s = time.perf_counter() - t0

    app = built["apps"][ROUTER_A]
    pairs = int(app.memory_counter)
    attempts = built["outcomes"]["fail"] + built["outcomes"]["success"]
    nominal = app.nominal_fidelities
    states = app.state_fidelities
    return {
        "pairs": pairs,
        "wall_s": wall_s,
        "pairs_per_s": pairs / wall_s if wall_s > 0 else math.nan,
        "sim_time_s": float(sim_time_s),
        "distance_km": float(distance_km),
        "mean_fidelity": sum(nominal) / len(nominal) if nominal else None,
        "state_fidelity": sum(states) / len(states) if states else None,
        "attempts": attempts,
        "success_probability": pairs / attempts if attempts else None,
        "success_probability_model": success_probability_per_attempt(distance_km),
        "attempt_period_s": sim_time_s / attempts if attempts else None,
        "attempts_per_s": attempts / wall_s if wall_s > 0 else math.nan,
        "events": int(tl.run_counter),
        "events_per_s": tl.run_counter / wall_s if wall_s > 0 else math.nan,
        "pairs_per_s_model": (
            success_probability_per_attempt(distance_km) * attempts / wall_s
            if wall_s > 0
            else math.nan
        ),
        "sim_pairs_per_s": pairs / sim_time_s,
        "seed": seed,
        "sequence_version": sequence_version(),
        "parameters": _read_back_parameters(built),
    }


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def main(argv: list[str] | None = None) -> int:
    """Print SeQUeNCe's Barrett-Kok figures for the given distances (default 1 and 100 km)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--distances",
        type=float,
        nargs="+",
        default=[1.0, 100.0],
        help="router-router distances in km (default: 1 100)",
    )
    parser.add_argument(
        "--sim-time",
        type=float,
        default=None,
        help="simulated seconds per run (default: per-distance table)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    if not sequence_available():
        print("SeQUeNCe is not installed (pip install sequence); no baseline measured.")
        return 1
    print(
        f"SeQUeNCe {sequence_version()}: Barrett-Kok, two routers, BSM at midpoint, "
        f"{SCENARIO_PARAMETERS['fibre_attenuation_db_per_km']} dB/km"
    )
    for distance in args.distances:
        sim_time = args.sim_time if args.sim_time is not None else default_sim_time_s(distance)
        r = run_sequence_barrett_kok(distance, sim_time, seed=args.seed)
        print(
            f"{distance:7.1f} km  sim {sim_time:g} s  pairs {r['pairs']:6d}  "
            f"wall {r['wall_s']:6.2f} s  -> {r['pairs_per_s']:8.1f} pairs/s "
            f"(model {r['pairs_per_s_model']:.1f})  "
            f"F {_fmt(r['mean_fidelity'], '.3f')} (state {_fmt(r['state_fidelity'], '.3f')})  "
            f"attempts {r['attempts']} (p {_fmt(r['success_probability'], '.4f')}, "
            f"model {r['success_probability_model']:.4f}, "
            f"period {_fmt(r['attempt_period_s'], '.3e')} s)  "
            f"{r['attempts_per_s']:.0f} attempts/s  {r['events_per_s']:.0f} events/s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
