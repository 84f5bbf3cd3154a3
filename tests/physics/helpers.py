"""Building small simulated labs and sampling them, shared by the physics tests."""

from __future__ import annotations

import math

import numpy as np

from sequences.analysis import Estimate, fidelity_from_outcomes
from sim_backend.lab import SimulatedLab
from sim_backend.params import DetectorParams, LabParams, LinkParams, NodeParams


def two_node_lab(
    seed: int = 1,
    node: NodeParams | None = None,
    detectors: DetectorParams | None = None,
    **link_fields,
) -> SimulatedLab:
    """Alice and Bob, ideal unless told otherwise, one link between them."""
    node = node or NodeParams()
    link = LinkParams(
        nodes=("alice", "bob"),
        detectors=detectors or DetectorParams(efficiency=1.0),
        **link_fields,
    )
    params = LabParams(nodes={"alice": node, "bob": node}, links=[link], classical_latency_us=0.0)
    return SimulatedLab(params, seed=seed)


def ideal_nodes_lab(names: list[str], memories: int = 1, seed: int = 1) -> SimulatedLab:
    node = NodeParams(memory={"count": memories})
    return SimulatedLab(LabParams(nodes={n: node for n in names}), seed=seed)


def sample_link_fidelity(lab: SimulatedLab, shots: int) -> tuple[Estimate, float, int]:
    """Generate ``shots`` pairs, measure them in XX/YY/ZZ; return the fidelity estimate,
    the per-attempt success probability estimate and the total attempts."""
    link = lab.link("alice", "bob")
    a, b = lab.node("alice"), lab.node("bob")
    bells, bases, out_a, out_b = [], [], [], []
    attempts = 0
    for shot in range(shots):
        pair = link.generate()
        attempts += pair.attempts
        basis = "XYZ"[shot % 3]
        bells.append(pair.bell_state)
        bases.append(basis * 2)
        out_a.append(a.measure(pair.qubits[0], basis))
        out_b.append(b.measure(pair.qubits[1], basis))
    return fidelity_from_outcomes(bells, bases, out_a, out_b), shots / attempts, attempts


def geometric_p_stderr(p: float, pairs: int) -> float:
    """Standard error of the estimate pairs/attempts of a geometric success probability."""
    return p * math.sqrt((1 - p) / pairs)


def assert_within(measured: float, expected: float, sigma: float, slack: float = 0.0) -> None:
    """|measured - expected| <= 3 sigma (+ a stated model slack)."""
    assert abs(measured - expected) <= 3 * sigma + slack, (
        f"measured {measured:.5g}, expected {expected:.5g} +- 3*{sigma:.3g} + {slack:.3g}"
    )


def random_state_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)
