"""Delivered heralded pairs per wall-clock second of the physics engine.

Scenario: a two-node NV-like link with full density matrices and every noise source on
(T1/T2 idling of the communication qubits during the herald delay, a memory qubit per node
holding a state and dephasing per attempt, initialisation and gate errors, visibility,
phase noise, dark counts). The per-attempt success probability is set to 1e-2, 1e-4 and 1e-6
by the photon collection efficiency. A pair counts as delivered when it is heralded, its
state is on the two communication qubits and its decoherence up to the herald time is
applied.
"""

from __future__ import annotations

import math
import time

from sim_backend.lab import SimulatedLab
from sim_backend.params import (
    DetectorParams,
    LabParams,
    LinkParams,
    MemoryParams,
    NodeParams,
    QubitParams,
)
from sim_backend.physics.link import LinkModel

ALPHA = 0.05
DETECTOR = DetectorParams(efficiency=0.8, dark_count_rate_hz=10.0, detection_window_ns=25.0)


def _node(collection_efficiency: float) -> NodeParams:
    return NodeParams(
        communication_qubit=QubitParams(
            t1_s=3600.0, t2_s=0.5, init_error=0.01, gate_depolarizing=1e-3
        ),
        memory=MemoryParams(count=1, t2_s=0.01, dephasing_per_attempt=2e-4),
        collection_efficiency=collection_efficiency,
        double_excitation_probability=0.04,
    )


def _link() -> LinkParams:
    return LinkParams(
        nodes=("alice", "bob"),
        scheme="single_click",
        alpha=ALPHA,
        fibre_length_km=(0.5, 0.5),
        fibre_attenuation_db_per_km=0.2,
        visibility=0.9,
        phase_noise_std_rad=0.2,
        detectors=DETECTOR,
    )


def lab_for_success_probability(p_target: float, seed: int = 1) -> SimulatedLab:
    """A lab whose link succeeds with probability ``p_target`` per attempt (+-1%), found by
    bisection on the collection efficiency (log scale)."""
    link = _link()
    lo, hi = math.log(1e-9), math.log(1.0)
    for _ in range(60):
        mid = (lo + hi) / 2
        p = LinkModel(link, _node(math.exp(mid)), _node(math.exp(mid))).success_probability
        lo, hi = (mid, hi) if p < p_target else (lo, mid)
    node = _node(math.exp(hi))
    params = LabParams(nodes={"alice": node, "bob": node}, links=[link])
    return SimulatedLab(params, seed=seed)


def pairs_per_second(p_target: float, min_time_s: float = 1.5, seed: int = 1) -> dict[str, float]:
    """Deliver pairs for at least ``min_time_s`` of wall time; return the rate and context."""
    lab = lab_for_success_probability(p_target, seed)
    link = lab.link("alice", "bob")
    alice, bob = lab.node("alice"), lab.node("bob")
    for node in (alice, bob):  # memories hold a state that every attempt dephases
        node.rotate(node.qubit(1), "Y", math.pi / 2)
    pairs = attempts = 0
    started = time.perf_counter()
    elapsed = 0.0
    while elapsed < min_time_s:
        for _ in range(1000):
            pair = link.generate()
            alice.bring_up_to_date([pair.qubits[0]])
            bob.bring_up_to_date([pair.qubits[1]])
            attempts += pair.attempts
        pairs += 1000
        elapsed = time.perf_counter() - started
    return {
        "success_probability": link.model.success_probability,
        "pairs": pairs,
        "attempts": attempts,
        "wall_s": elapsed,
        "pairs_per_s": pairs / elapsed,
        "simulated_s": lab.clock.now,
    }
