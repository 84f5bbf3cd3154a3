"""The qubit registry: groups merge on interaction and split after measurement."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from sim_backend.physics.operators import CNOT, I2, H, X, Y, Z, apply_depolarizing, embed
from sim_backend.physics.registry import QubitRegistry
from sim_backend.physics.states import BELL_STATES, density_matrix


def test_groups_merge_on_a_gate_and_split_on_measurement() -> None:
    reg = QubitRegistry()
    a, b, c = (reg.add_qubit(n) for n in "abc")
    assert reg.group_sizes() == [1, 1, 1]
    reg.apply_unitary(H, [a])
    reg.apply_unitary(CNOT, [a, b])
    assert reg.group_of(a) == reg.group_of(b) == (a, b)
    assert reg.group_of(c) == (c,)
    assert np.allclose(reg.density_matrix([a, b]), density_matrix(BELL_STATES["PHI+"]))
    outcome = reg.measure_z(a, np.random.default_rng(0))
    assert reg.group_of(a) == (a,) and reg.group_of(b) == (b,)
    assert reg.density_matrix([b])[outcome, outcome].real == pytest.approx(1.0)


def test_cost_follows_group_size_not_network_size() -> None:
    reg = QubitRegistry()
    qubits = [reg.add_qubit(f"q{i}") for i in range(40)]
    for i in range(0, 40, 2):
        reg.apply_unitary(H, [qubits[i]])
        reg.apply_unitary(CNOT, [qubits[i], qubits[i + 1]])
    assert sorted(reg.group_sizes()) == [2] * 20  # 20 groups of 4x4, not one 2^40 matrix


def test_reduced_state_and_set_state() -> None:
    reg = QubitRegistry()
    a, b = reg.add_qubit("a"), reg.add_qubit("b")
    reg.set_state([a, b], density_matrix(BELL_STATES["PSI-"]))
    assert np.allclose(reg.density_matrix([a]), np.eye(2) / 2)
    assert np.allclose(reg.density_matrix([b, a]), density_matrix(BELL_STATES["PSI-"]))
    reg.reset(a)
    assert reg.group_of(b) == (b,)
    assert np.allclose(reg.density_matrix([b]), np.eye(2) / 2)
    with pytest.raises(ValueError, match="must be 4x4"):
        reg.set_state([a, b], np.eye(2))
    with pytest.raises(KeyError, match="unknown qubit id 99"):
        reg.label(99)


def test_measurement_statistics_follow_the_state() -> None:
    reg = QubitRegistry()
    q = reg.add_qubit("q")
    rng = np.random.default_rng(1)
    theta = 2 * math.asin(math.sqrt(0.3))
    ket = np.array([math.cos(theta / 2), math.sin(theta / 2)])
    ones = 0
    for _ in range(10000):
        reg.set_state([q], density_matrix(ket))
        ones += reg.measure_z(q, rng)
    assert abs(ones / 10000 - 0.3) < 3 * math.sqrt(0.21 / 10000)


@pytest.mark.parametrize("targets", [[0], [2], [3, 1], [0, 3], [2, 0, 1]])
def test_depolarizing_matches_its_pauli_kraus_form(targets: list[int]) -> None:
    """rho -> (1 - p) rho + p I/d x Tr_targets rho equals the Pauli-twirl Kraus sum
    (1 - p) rho + p/d^2 sum_P P rho P over all Paulis P on the targets (N&C eq. 8.102)."""
    n, p = 4, 0.3
    rng = np.random.default_rng(11)
    a = rng.normal(size=(2**n, 2**n)) + 1j * rng.normal(size=(2**n, 2**n))
    rho = a @ a.conj().T
    rho /= np.trace(rho)
    d2 = 4 ** len(targets)
    expected = (1 - p) * rho
    for paulis in itertools.product((I2, X, Y, Z), repeat=len(targets)):
        op = paulis[0]
        for other in paulis[1:]:
            op = np.kron(op, other)
        full = embed(op, targets, n)
        expected = expected + (p / d2) * full @ rho @ full.conj().T
    before = rho.copy()
    out = apply_depolarizing(rho, targets, p)
    np.testing.assert_allclose(out, expected, atol=1e-12)
    np.testing.assert_array_equal(rho, before)  # the input is left alone
    assert np.trace(out).real == pytest.approx(1.0)
