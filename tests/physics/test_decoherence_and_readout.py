"""Idle decoherence, per-attempt memory dephasing and readout errors, sampled."""

from __future__ import annotations

import math

import pytest

from sim_backend.lab import SimulatedLab
from sim_backend.params import LabParams, MemoryParams, NodeParams, QubitParams

from .helpers import assert_within, two_node_lab


def _single_node(qubit: QubitParams, seed: int = 21) -> SimulatedLab:
    node = NodeParams(communication_qubit=qubit)
    return SimulatedLab(LabParams(nodes={"alice": node}), seed=seed)


@pytest.mark.parametrize("wait_over_t2", [0.3, 1.0, 2.0])
def test_coherence_decays_as_exp_minus_t_over_t2(wait_over_t2: float) -> None:
    """|+> idle for t, measured in X: P(+) = (1 + e^{-t/T2})/2 (Bloch equations)."""
    t2 = 1e-3
    lab = _single_node(QubitParams(t1_s=1.0, t2_s=t2))
    node = lab.node("alice")
    q = node.communication_qubit
    shots, plus = 8000, 0
    for _ in range(shots):
        node.initialize(q)
        node.rotate(q, "Y", math.pi / 2)
        lab.clock.advance(wait_over_t2 * t2)
        plus += node.measure(q, "X") == 0
    expected = (1 + math.exp(-wait_over_t2)) / 2
    assert_within(plus / shots, expected, math.sqrt(expected * (1 - expected) / shots))


def test_population_relaxes_as_exp_minus_t_over_t1() -> None:
    t1 = 2e-3
    lab = _single_node(QubitParams(t1_s=t1, t2_s=t1))
    node = lab.node("alice")
    q = node.communication_qubit
    shots, ones = 8000, 0
    for _ in range(shots):
        node.initialize(q)
        node.rotate(q, "X", math.pi)
        lab.clock.advance(t1)
        ones += node.measure(q)
    expected = math.exp(-1)
    assert_within(ones / shots, expected, math.sqrt(expected * (1 - expected) / shots))


@pytest.mark.parametrize(("f0", "f1"), [(0.95, 0.995), (0.99, 0.9)])
def test_readout_errors_reproduce_f0_and_f1(f0: float, f1: float) -> None:
    lab = _single_node(QubitParams(readout_f0=f0, readout_f1=f1))
    node = lab.node("alice")
    q = node.communication_qubit
    shots = 10000
    zeros_given_0 = ones_given_1 = 0
    for _ in range(shots):
        node.initialize(q)
        zeros_given_0 += node.measure(q) == 0
        node.initialize(q)
        node.rotate(q, "X", math.pi)
        ones_given_1 += node.measure(q) == 1
    assert_within(zeros_given_0 / shots, f0, math.sqrt(f0 * (1 - f0) / shots))
    assert_within(ones_given_1 / shots, f1, math.sqrt(f1 * (1 - f1) / shots))


def test_memory_dephases_per_attempt_in_closed_form() -> None:
    """A memory in |+> on a node that makes n attempts keeps coherence (1-2p)^n
    (Kalb et al., Science 356, 928 (2017)); n comes from the sampled attempt count."""
    p = 1e-3
    node = NodeParams(memory=MemoryParams(count=1, dephasing_per_attempt=p))
    lab = two_node_lab(seed=23, node=node)
    alice = lab.node("alice")
    link = lab.link("alice", "bob")
    mem = alice.qubit(1)
    for _ in range(20):
        alice.initialize(mem)
        alice.rotate(mem, "Y", math.pi / 2)
        pair = link.generate()
        rho = lab.density_matrix([mem])
        coherence = 2 * abs(rho[0, 1])
        assert coherence == pytest.approx((1 - 2 * p) ** pair.attempts, rel=1e-9)


def test_initialisation_error_leaves_population_in_one() -> None:
    lab = _single_node(QubitParams(init_error=0.02))
    node = lab.node("alice")
    q = node.communication_qubit
    node.initialize(q)
    rho = lab.density_matrix([q])
    assert rho[1, 1].real == pytest.approx(0.02)


@pytest.mark.parametrize(("theta", "phi"), [(math.pi / 3, 0.0), (2.0, 1.1)])
def test_measurement_along_any_axis(theta: float, phi: float) -> None:
    """|0> measured along (theta, phi) gives +1 with probability cos^2(theta/2)."""
    lab = _single_node(QubitParams())
    node = lab.node("alice")
    q = node.communication_qubit
    shots, plus = 8000, 0
    for _ in range(shots):
        node.initialize(q)
        plus += node.measure(q, (theta, phi)) == 0
    expected = math.cos(theta / 2) ** 2
    assert_within(plus / shots, expected, math.sqrt(expected * (1 - expected) / shots))
    with pytest.raises(ValueError, match="expected 'X', 'Y', 'Z' or"):
        node.measure(q, "W")
