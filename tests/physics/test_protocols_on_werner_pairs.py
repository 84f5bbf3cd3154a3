"""Swapping, teleportation and CHSH on Werner pairs, executed gate by gate on the simulated
nodes and estimated from sampled measurement outcomes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sequences.analysis import chsh_value, correlator, fidelity_from_outcomes
from sim_backend.physics.operators import H
from sim_backend.physics.states import werner_state

from .helpers import assert_within, ideal_nodes_lab


def _bell_measurement_and_correction(lab, middle: str, q1: int, q2: int, end: str, q_end: int):
    """BSM on (q1, q2) at ``middle``; Pauli correction X^m2 Z^m1 on ``q_end`` (Phi+ frame)."""
    node = lab.node(middle)
    node.cnot(q1, q2)
    node.apply_gate(H, q1)
    m1, m2 = node.measure(q1), node.measure(q2)
    if m2:
        lab.node(end).pauli(q_end, "X")
    if m1:
        lab.node(end).pauli(q_end, "Z")


@pytest.mark.parametrize(("f1", "f2"), [(0.9, 0.8), (0.75, 0.95)])
def test_swapping_two_werner_pairs(f1: float, f2: float) -> None:
    """F = F1 F2 + (1-F1)(1-F2)/3 (Dur, Briegel, Cirac & Zoller, PRA 59, 169 (1999))."""
    lab = ideal_nodes_lab(["alice", "bob", "charlie"], memories=1, seed=11)
    alice, bob, charlie = (lab.node(n) for n in ("alice", "bob", "charlie"))
    bells, bases, out_a, out_c = [], [], [], []
    shots = 9000
    for shot in range(shots):
        qa, qb1, qb2, qc = alice.qubit(0), bob.qubit(0), bob.qubit(1), charlie.qubit(0)
        lab.registry.set_state([qa, qb1], werner_state(f1, "PHI+"))
        lab.registry.set_state([qb2, qc], werner_state(f2, "PHI+"))
        _bell_measurement_and_correction(lab, "bob", qb1, qb2, "charlie", qc)
        basis = "XYZ"[shot % 3]
        bells.append("PHI+")
        bases.append(basis * 2)
        out_a.append(alice.measure(qa, basis))
        out_c.append(charlie.measure(qc, basis))
    fidelity = fidelity_from_outcomes(bells, bases, out_a, out_c)
    expected = f1 * f2 + (1 - f1) * (1 - f2) / 3
    assert_within(fidelity.value, expected, fidelity.stderr)


CARDINAL_STATES = [  # (rotation axis, angle) preparing |0>,|1>,|+>,|->,|+i>,|-i>; basis
    (("X", 0.0), "Z", 0),
    (("X", math.pi), "Z", 1),
    (("Y", math.pi / 2), "X", 0),
    (("Y", -math.pi / 2), "X", 1),
    (("X", -math.pi / 2), "Y", 0),
    (("X", math.pi / 2), "Y", 1),
]


@pytest.mark.parametrize("f", [0.9, 0.7])
def test_teleportation_over_a_werner_pair(f: float) -> None:
    """Average fidelity (2F + 1)/3 (Horodecki, Horodecki & Horodecki, PRA 60, 1888 (1999)),
    averaged over the six cardinal input states (a 2-design)."""
    lab = ideal_nodes_lab(["alice", "charlie"], memories=1, seed=13)
    alice, charlie = lab.node("alice"), lab.node("charlie")
    shots = 12000
    correct = 0
    for shot in range(shots):
        (axis, angle), basis, expected_outcome = CARDINAL_STATES[shot % 6]
        q_in, q_a, q_c = alice.qubit(1), alice.qubit(0), charlie.qubit(0)
        alice.initialize(q_in)
        alice.rotate(q_in, axis, angle)
        lab.registry.set_state([q_a, q_c], werner_state(f, "PHI+"))
        _bell_measurement_and_correction(lab, "alice", q_in, q_a, "charlie", q_c)
        correct += charlie.measure(q_c, basis) == expected_outcome
    estimate = correct / shots
    assert_within(estimate, (2 * f + 1) / 3, math.sqrt(estimate * (1 - estimate) / shots))


@pytest.mark.parametrize("f", [0.95, 0.8])
def test_chsh_on_a_werner_pair(f: float) -> None:
    """S = 2 sqrt(2) (4F - 1)/3 at the optimal settings for Phi+ (Horodecki et al.,
    PLA 200, 340 (1995)); settings a = Z, a' = X, b, b' = (Z +- X)/sqrt(2)."""
    lab = ideal_nodes_lab(["alice", "bob"], memories=0, seed=17)
    alice, bob = lab.node("alice"), lab.node("bob")
    settings = [
        (0.0, math.pi / 4),
        (0.0, -math.pi / 4),
        (math.pi / 2, math.pi / 4),
        (math.pi / 2, -math.pi / 4),
    ]
    shots = 6000
    correlators = []
    for theta_a, theta_b in settings:
        out_a, out_b = np.empty(shots, int), np.empty(shots, int)
        for i in range(shots):
            qa, qb = alice.qubit(0), bob.qubit(0)
            lab.registry.set_state([qa, qb], werner_state(f, "PHI+"))
            # measuring along an axis at angle theta from Z in the X-Z plane = Ry(-theta), Z
            alice.rotate(qa, "Y", -theta_a)
            bob.rotate(qb, "Y", -theta_b)
            out_a[i], out_b[i] = alice.measure(qa), bob.measure(qb)
        correlators.append(correlator(out_a, out_b))
    s = chsh_value(correlators, signs=(1, 1, 1, -1))
    assert_within(s.value, 2 * math.sqrt(2) * (4 * f - 1) / 3, s.stderr)
