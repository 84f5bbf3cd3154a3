"""The fused fast paths of the qubit physics against a plain reference: full-size Kraus
operators built with Kronecker products and a basis permutation, applied one channel at a
time (idle decoherence, then the gate, then its depolarising error), on random states of
1-4 qubit groups for every target position."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from sim_backend.params import MemoryParams, NodeParams, QubitParams
from sim_backend.physics.clock import SimClock
from sim_backend.physics.operators import (
    CNOT,
    H,
    X,
    Y,
    Z,
    apply_phase_covariant,
    partial_trace,
    rotation,
)
from sim_backend.physics.quantum_node import QuantumNode
from sim_backend.physics.registry import QubitRegistry, _kron, _trace_out
from sim_backend.physics.superoperators import (
    FusedGate,
    apply_superoperator,
    idle_superoperator,
    noisy_gate,
    unitary_superoperator,
)

TOL = 1e-12
PAULIS_1 = [np.eye(2), X, Y, Z]


# ------------------------------------------------------------------ reference
def full_operator(op: np.ndarray, targets: tuple[int, ...], n: int) -> np.ndarray:
    """op on ``targets`` of n qubits (qubit 0 most significant), identity elsewhere."""
    k = len(targets)
    others = [q for q in range(n) if q not in targets]
    big = np.kron(op, np.eye(2 ** (n - k))).reshape([2] * (2 * n))
    order = list(targets) + others  # axis m of big is qubit order[m]
    perm = [order.index(q) for q in range(n)]
    return big.transpose(perm + [n + p for p in perm]).reshape(2**n, 2**n)


def apply_kraus(rho: np.ndarray, kraus: list[np.ndarray], targets: tuple[int, ...]) -> np.ndarray:
    n = rho.shape[0].bit_length() - 1
    out = np.zeros_like(rho)
    for k in kraus:
        full = full_operator(k, targets, n)
        out += full @ rho @ full.conj().T
    return out


def idle_kraus(gamma: float, coherence: float) -> list[np.ndarray]:
    """Amplitude damping gamma, then pure dephasing to a total coherence factor."""
    pure = coherence / math.sqrt(1 - gamma)
    damping = [
        np.array([[1, 0], [0, math.sqrt(1 - gamma)]]),
        np.array([[0, math.sqrt(gamma)], [0, 0]]),
    ]
    flip = (1 - pure) / 2
    dephasing = [math.sqrt(1 - flip) * np.eye(2), math.sqrt(flip) * Z]
    return [d @ k for d in dephasing for k in damping]


def depolarizing_kraus(p: float, k: int) -> list[np.ndarray]:
    """rho -> (1-p) rho + p 1/d Tr rho on k qubits, as Pauli products."""
    d2 = 4**k
    ops = []
    for index, paulis in enumerate(itertools.product(PAULIS_1, repeat=k)):
        product = np.eye(1)
        for pauli in paulis:
            product = np.kron(product, pauli)
        weight = 1 - p + p / d2 if index == 0 else p / d2
        ops.append(math.sqrt(weight) * product)
    return ops


def reference_gate(rho, unitary, p, targets, idle):
    for t, (gamma, coherence) in zip(targets, idle, strict=True):
        rho = apply_kraus(rho, idle_kraus(gamma, coherence), (t,))
    rho = apply_kraus(rho, [unitary], targets)
    return apply_kraus(rho, depolarizing_kraus(p, len(targets)), targets)


# ------------------------------------------------------------------ helpers
def random_rho(rng: np.random.Generator, n: int) -> np.ndarray:
    d = 2**n
    a = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    rho = a @ a.conj().T
    return rho / np.trace(rho)


def random_unitary(rng: np.random.Generator, k: int) -> np.ndarray:
    d = 2**k
    q, r = np.linalg.qr(rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d)))
    return q * (np.diag(r) / abs(np.diag(r)))


def random_idle(rng: np.random.Generator) -> tuple[float, float]:
    gamma = rng.uniform(0, 0.4)
    return gamma, rng.uniform(0.2, 1.0) * math.sqrt(1 - gamma)  # T2 <= 2 T1


CASES = [
    (n, targets)
    for n in range(1, 5)
    for k in (1, 2)
    if k <= n
    for targets in itertools.permutations(range(n), k)
]


# ------------------------------------------------------------------ kernels
@pytest.mark.parametrize(("n", "targets"), CASES)
@pytest.mark.parametrize("noise", ["none", "depolarizing", "idle", "both"])
def test_fused_gate_matches_channel_by_channel(n: int, targets: tuple[int, ...], noise: str):
    rng = np.random.default_rng(hash((n, targets, noise)) % 2**32)
    k = len(targets)
    rho, unitary = random_rho(rng, n), random_unitary(rng, k)
    p = rng.uniform(0.01, 0.3) if noise in ("depolarizing", "both") else 0.0
    idle = [random_idle(rng) if noise in ("idle", "both") else (0.0, 1.0) for _ in targets]
    gate = noisy_gate(unitary, p)
    got = gate.apply(rho, targets, idle)
    assert np.abs(got - reference_gate(rho, unitary, p, targets, idle)).max() < TOL
    # a repeated application hits the cached full-size / gather data
    assert np.abs(gate.apply(rho, targets, idle) - got).max() == 0


@pytest.mark.parametrize(("n", "targets"), CASES)
def test_apply_superoperator_matches_kraus(n: int, targets: tuple[int, ...]):
    rng = np.random.default_rng(n * 100 + sum(targets))
    rho, unitary = random_rho(rng, n), random_unitary(rng, len(targets))
    got = apply_superoperator(rho, unitary_superoperator(unitary), targets)
    assert np.abs(got - apply_kraus(rho, [unitary], targets)).max() < TOL


def test_swap_as_three_noisy_cnots_is_one_channel():
    rng = np.random.default_rng(7)
    p = 0.05
    reversed_cnot = full_operator(CNOT, (1, 0), 2)
    forward, backward = noisy_gate(CNOT, p).superop, noisy_gate(reversed_cnot, p).superop
    swap = FusedGate(forward @ backward @ forward)
    for n in (2, 3, 4):
        for a, b in itertools.permutations(range(n), 2):
            rho, idle = random_rho(rng, n), [random_idle(rng), random_idle(rng)]
            expected = reference_gate(rho, CNOT, p, (a, b), idle)
            expected = reference_gate(expected, CNOT, p, (b, a), [(0.0, 1.0)] * 2)
            expected = reference_gate(expected, CNOT, p, (a, b), [(0.0, 1.0)] * 2)
            assert np.abs(swap.apply(rho, (a, b), idle) - expected).max() < TOL


@pytest.mark.parametrize(("n", "targets"), [c for c in CASES if len(c[1]) == 1])
def test_idle_superoperator_is_the_phase_covariant_channel(n: int, targets: tuple[int, ...]):
    rng = np.random.default_rng(n + 10 * targets[0])
    rho, (gamma, coherence) = random_rho(rng, n), random_idle(rng)
    got = apply_superoperator(rho, idle_superoperator(gamma, coherence), targets)
    assert np.abs(got - apply_phase_covariant(rho, targets[0], gamma, coherence)).max() < TOL
    assert np.abs(got - apply_kraus(rho, idle_kraus(gamma, coherence), targets)).max() < TOL


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_kron_and_trace_out_match_numpy(n: int):
    rng = np.random.default_rng(n)
    a, b = random_rho(rng, n), random_rho(rng, 1)
    assert np.array_equal(_kron(a, b), np.kron(a, b))
    if n > 1:
        for pos in range(n):
            keep = [q for q in range(n) if q != pos]
            assert np.abs(_trace_out(a, pos) - partial_trace(a, keep)).max() < TOL


# ------------------------------------------------------------------ registry
@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("damping", [0.0, 0.3])
def test_measure_with_damping_matches_damping_then_measure(n: int, damping: float):
    for pos in range(n):
        for seed in range(6):
            rho = random_rho(np.random.default_rng(seed + 10 * n), n)
            outcomes, states = [], []
            for fused in (True, False):
                registry = QubitRegistry()
                qubits = [registry.add_qubit(f"q{i}") for i in range(n)]
                registry.set_state(qubits, rho)
                rng = np.random.default_rng(seed)
                if fused:
                    outcomes.append(registry.measure_z(qubits[pos], rng, damping=damping))
                else:
                    registry.apply_damping_dephasing(qubits[pos], damping, 0.5)
                    outcomes.append(registry.measure_z(qubits[pos], rng))
                rest = [q for q in qubits if q != qubits[pos]]
                states.append(registry.density_matrix(rest) if rest else np.eye(1))
            assert outcomes[0] == outcomes[1]
            assert np.abs(states[0] - states[1]).max() < TOL


# ------------------------------------------------------------------ node
def _node(registry: QubitRegistry, clock: SimClock, seed: int = 0) -> QuantumNode:
    qubit = QubitParams(t1_s=1e-3, t2_s=5e-4, init_error=0.02, gate_depolarizing=0.01)
    params = NodeParams(
        communication_qubit=qubit,
        memory=MemoryParams(count=2, t1_s=None, t2_s=2e-3, gate_depolarizing=0.002),
        two_qubit_gate_depolarizing=0.03,
    )
    return QuantumNode("n", params, registry, clock, np.random.default_rng(seed))


def test_node_gates_match_the_channel_by_channel_reference():
    """Gates on a node with idle time between them: fused node operations against the
    reference applied to the joint state of the node's qubits."""
    registry, clock = QubitRegistry(), SimClock()
    node = _node(registry, clock)
    qubits = node.qubits
    rng = np.random.default_rng(3)
    rho = random_rho(rng, 3)
    registry.set_state(qubits, rho)
    params = {q: node._qubit_params[q] for q in qubits}
    last = dict.fromkeys(qubits, 0.0)

    def idle_of(q: int) -> tuple[float, float]:
        elapsed = clock.now - last[q]
        p = params[q]
        gamma = 0.0 if p.t1_s is None else -math.expm1(-elapsed / p.t1_s)
        last[q] = clock.now
        return gamma, math.exp(-elapsed / p.t2_s)

    steps = [
        ("gate", H, (0,)),
        ("gate", rotation("X", 0.7), (2,)),
        ("cnot", CNOT, (0, 1)),
        ("gate", rotation((0.3, -0.4, 0.5), 1.1), (1,)),
        ("cnot", CNOT, (2, 0)),
        ("swap", None, (1, 2)),
    ]
    for kind, unitary, positions in steps:
        clock.advance(float(rng.uniform(1e-5, 3e-4)))
        ids = [qubits[i] for i in positions]
        idle = [idle_of(q) for q in ids]
        if kind == "gate":
            node.apply_gate(unitary, ids[0])
            rho = reference_gate(rho, unitary, params[ids[0]].gate_depolarizing, positions, idle)
        elif kind == "cnot":
            node.cnot(*ids)
            rho = reference_gate(rho, CNOT, 0.03, positions, idle)
        else:
            node.swap(*ids)
            a, b = positions
            rho = reference_gate(rho, CNOT, 0.03, (a, b), idle)
            rho = reference_gate(rho, CNOT, 0.03, (b, a), [(0.0, 1.0)] * 2)
            rho = reference_gate(rho, CNOT, 0.03, (a, b), [(0.0, 1.0)] * 2)
        assert np.abs(registry.density_matrix(qubits) - rho).max() < TOL


def test_node_initialize_detaches_and_applies_the_init_error():
    registry, clock = QubitRegistry(), SimClock()
    node = _node(registry, clock)
    qubits = node.qubits
    rho = random_rho(np.random.default_rng(5), 3)
    registry.set_state(qubits, rho)
    node.initialize(qubits[0])  # the communication qubit (init error 0.02)
    assert registry.group_of(qubits[0]) == (qubits[0],)
    assert np.abs(registry.density_matrix([qubits[0]]) - np.diag([0.98, 0.02])).max() < TOL
    rest = registry.density_matrix([qubits[1], qubits[2]])
    assert np.abs(rest - partial_trace(rho, [1, 2])).max() < TOL


# ------------------------------------------------------------------ cross-group gates
PRODUCT_CASES = [
    (na, nb, pa, pb) for na in (1, 2, 3) for nb in (1, 2) for pa in range(na) for pb in range(nb)
]


@pytest.mark.parametrize(("na", "nb", "pa", "pb"), PRODUCT_CASES)
@pytest.mark.parametrize("order", ["ab", "ba"])
def test_gate_on_a_product_matches_the_gate_on_the_kronecker_product(na, nb, pa, pb, order):
    """``apply_to_product`` gathers from the outer product exactly what ``apply`` gathers
    from np.kron: the same numbers, and within TOL of the channel-by-channel reference."""
    rng = np.random.default_rng(hash((na, nb, pa, pb, order)) % 2**32)
    first, second = random_rho(rng, na), random_rho(rng, nb)
    unitary, p = random_unitary(rng, 2), float(rng.uniform(0.01, 0.3))
    idle = [random_idle(rng), random_idle(rng)]
    positions = (pa, na + pb) if order == "ab" else (na + pb, pa)
    gate = noisy_gate(unitary, p)
    got = gate.apply_to_product(first, second, positions, idle)
    joint = np.kron(first, second)
    assert np.array_equal(got, gate.apply(joint, positions, idle))
    assert np.abs(got - reference_gate(joint, unitary, p, positions, idle)).max() < TOL
    trivial = [(0.0, 1.0), (0.0, 1.0)]
    assert np.array_equal(
        gate.apply_to_product(first, second, positions, trivial),
        gate.apply(joint, positions, trivial),
    )


@pytest.mark.parametrize(("na", "nb"), [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1)])
def test_registry_gate_across_groups_matches_the_reference(na, nb):
    """A two-qubit gate on qubits of two groups: the merged group (first qubit's group,
    then the second's) holds the reference state; either qubit may come first."""
    for seed in range(4):
        rng = np.random.default_rng(seed + 100 * na + 10 * nb)
        registry = QubitRegistry()
        qa = [registry.add_qubit(f"a{i}") for i in range(na)]
        qb = [registry.add_qubit(f"b{i}") for i in range(nb)]
        ra, rb = random_rho(rng, na), random_rho(rng, nb)
        registry.set_state(qa, ra)
        registry.set_state(qb, rb)
        a, b = qa[seed % na], qb[(seed // 2) % nb]
        control, target = (a, b) if seed % 2 == 0 else (b, a)
        idle = [random_idle(rng), random_idle(rng)]
        registry.apply_gate(noisy_gate(CNOT, 0.05), (control, target), idle)
        first, second = (qa, qb) if seed % 2 == 0 else (qb, qa)
        members = first + second
        assert registry.group_of(a) == tuple(members) == registry.group_of(b)
        joint = np.kron(ra, rb) if seed % 2 == 0 else np.kron(rb, ra)
        positions = (members.index(control), members.index(target))
        expected = reference_gate(joint, CNOT, 0.05, positions, idle)
        assert np.abs(registry.density_matrix(members) - expected).max() < TOL


@pytest.mark.parametrize("na", [2, 3])
@pytest.mark.parametrize("traced", ["first", "second", "other", "used first"])
def test_a_gate_with_a_lone_qubit_is_formed_when_used(na: int, traced: str):
    """A two-qubit gate on a group and a lone qubit leaves its merged state unformed
    (``_GateResult``): read, it is the state the gate makes at once, bit for bit; its
    first target traced out (a memory swap's communication qubit at the next herald), the
    rest's state is the merged state's partial trace, without forming it."""
    from sim_backend.physics.quantum_node import _swap_as_cnots
    from sim_backend.physics.registry import _GateResult

    for seed in range(4):
        rng = np.random.default_rng(seed + 10 * na)
        first, lone = random_rho(rng, na), random_rho(rng, 1)
        lone.flags.writeable = False  # a shared initial state, as a node's init leaves it
        idle = [random_idle(rng), random_idle(rng)]
        gate = _swap_as_cnots(0.03) if seed % 2 else noisy_gate(CNOT, 0.05)
        registry = QubitRegistry()
        group = [registry.add_qubit(f"a{i}") for i in range(na)]
        b = registry.add_qubit("b")
        registry.set_state(group, first)
        registry.share_state([b], lone)
        a = group[seed % na]
        registry.apply_gate(gate, (a, b), idle)
        members = [*group, b]
        positions = (members.index(a), na)
        merged = gate.apply_to_product(first, lone, positions, idle)
        assert type(registry._groups[b]) is _GateResult
        if traced == "used first":  # formed, then traced as any group
            assert np.array_equal(registry._groups[b].rho, merged)
        q = {"first": a, "second": b, "other": next(q for q in group if q != a)}.get(traced, a)
        registry.share_state([q], random_rho(rng, 1))
        rest = [m for m in members if m != q]
        assert registry.group_of(rest[0]) == tuple(rest)
        expected = _trace_out(merged, members.index(q))
        got = registry.density_matrix(rest)
        if traced == "first":
            assert np.abs(got - expected).max() < 1e-14
        else:
            assert np.array_equal(got, expected)


@pytest.mark.parametrize("damping", [0.0, 0.3])
def test_measure_in_a_pair_matches_the_array_path(damping: float):
    """The plain-arithmetic readout of a qubit in a 2-qubit group: the same outcome and
    the same numbers as the array path (the measured pair as part of a 3-qubit group with
    a lone |0> qubit, which the array path handles), and the same draws."""
    for seed in range(40):
        rho = random_rho(np.random.default_rng(seed), 2)
        pos = seed % 2
        results = []
        for padded in (False, True):
            registry = QubitRegistry()
            qubits = [registry.add_qubit(f"q{i}") for i in range(3 if padded else 2)]
            registry.set_state(qubits, np.kron(rho, np.diag([1.0, 0.0])) if padded else rho)
            rng = np.random.default_rng(seed)
            outcome = registry.measure_z(qubits[pos], rng, damping=damping)
            other = qubits[1 - pos]
            results.append((outcome, registry.density_matrix([other]), rng.random()))
            assert registry.group_of(qubits[pos]) == (qubits[pos],)
        assert results[0][0] == results[1][0]
        assert results[0][2] == results[1][2]
        assert np.abs(results[0][1] - results[1][1]).max() < TOL


def test_a_shared_read_only_state_is_never_written():
    """set_state shares a read-only complex matrix (the link's heralded states): every
    later operation replaces the group's matrix, the shared one stays as it was."""
    rng = np.random.default_rng(7)
    shared = random_rho(rng, 2)
    shared.flags.writeable = False
    before = shared.copy()
    registry, clock = QubitRegistry(), SimClock()
    node = _node(registry, clock)
    a, b, c = node.qubits
    registry.set_state([a, b], shared)
    clock.advance(1e-4)
    node.apply_gate(H, a)
    node.cnot(b, c)
    registry.apply_damping_dephasing(a, 0.1, 0.8)
    registry.apply_depolarizing(0.1, [a, b])
    node.measure(a)
    registry.set_state([a, b], shared)
    node.swap(a, b)
    assert np.array_equal(shared, before)
    writable = random_rho(rng, 2)
    registry.set_state([a, b], writable)
    assert registry._groups[a].rho is not writable  # a caller's writable matrix is copied


def test_two_target_idle_weights_are_the_outer_products():
    from sim_backend.physics.superoperators import _idle_weights

    rng = np.random.default_rng(11)
    for _ in range(20):
        idle = [random_idle(rng), random_idle(rng)]
        expected = [1.0]
        for gamma, coherence in idle:
            expected = [w * x for w in expected for x in (1.0, coherence, gamma)]
        assert _idle_weights(idle) == expected


# ------------------------------------------------------------------ prepared operations
def test_prepared_operations_match_the_node_methods():
    """A node's prepared operations (resolved once, called again and again) leave the same
    states, report the same outcomes and draw the same random numbers as its methods."""
    runs = []
    for prepared in (False, True):
        registry, clock = QubitRegistry(), SimClock()
        node = _node(registry, clock, seed=5)
        a, b, c = node.qubits
        registry.set_state([a, b], random_rho(np.random.default_rng(9), 2))
        steps = [
            ("init", (c,)),
            ("gate", (H, a)),
            ("gate", (rotation("Y", 0.4), c)),
            ("cnot", (a, c)),
            ("swap", (b, a)),
            ("measure", (c, "X")),
            ("measure", (a, "Z")),
            ("measure", (b, (0.3, 1.2))),
        ]
        outcomes, states = [], []
        for _ in range(3):  # again and again: the prepared calls are reused
            calls = [_prepared(node, kind, args) if prepared else None for kind, args in steps]
            for (kind, args), call in zip(steps, calls, strict=True):
                clock.advance(1.7e-4)
                if call is not None:
                    outcomes.append(call())
                else:
                    method = {"init": "initialize", "gate": "apply_gate"}.get(kind, kind)
                    outcomes.append(getattr(node, method)(*args))
                states.append(registry.density_matrix([a, b, c]))
        runs.append((outcomes, states, node._rng.random()))
    assert runs[0][0] == runs[1][0]
    assert runs[0][2] == runs[1][2]
    for one, other in zip(runs[0][1], runs[1][1], strict=True):
        assert np.array_equal(one, other)


def _prepared(node: QuantumNode, kind: str, args: tuple):
    if kind == "init":
        return node.prepared_initialize(*args)
    if kind == "gate":
        unitary, qubit = args
        return node.prepared_gate(node.single_qubit_gate(unitary, qubit), (qubit,))
    if kind == "cnot":
        return node.prepared_gate(node.two_qubit_gate(CNOT), args)
    if kind == "swap":
        return node.prepared_gate(node.swap_gate(), args)
    return node.prepared_measure(*args)


def test_a_recurring_idle_channel_reuses_its_weighted_superoperator():
    """The remembered weighted superoperator is the one computed afresh, read-only."""
    rng = np.random.default_rng(21)
    gate = noisy_gate(random_unitary(rng, 2), 0.02)
    for n, positions in [(2, (1, 0)), (3, (0, 2)), (4, (3, 1))]:
        idle = ((0.01, 0.9), (0.0, 0.95))
        first = gate._weighted(n, positions, idle)
        assert np.array_equal(first, gate._weigh(n, positions, idle))
        assert gate._weighted(n, positions, [tuple(i) for i in idle]) is first
        assert not first.flags.writeable


def test_fidelity_to_a_bloch_state_matches_fidelity_to_pure():
    from sim_backend.physics.states import bloch_ket, fidelity_to_bloch_state, fidelity_to_pure

    rng = np.random.default_rng(4)
    for _ in range(50):
        rho = random_rho(rng, 1)
        theta, phi = rng.uniform(0, np.pi), rng.uniform(-np.pi, 2 * np.pi)
        expected = fidelity_to_pure(rho, bloch_ket(theta, phi))
        assert math.isclose(fidelity_to_bloch_state(rho, theta, phi), expected, rel_tol=1e-14)


def _hardware(seed: int):
    from sim_backend.hardware import SimulatedHardware
    from sim_backend.lab import SimulatedLab
    from sim_backend.params import LabParams
    from sim_backend.wiring import NodeWiring

    qubit = QubitParams(t1_s=1e-3, t2_s=5e-4, init_error=0.02, gate_depolarizing=0.01)
    params = NodeParams(
        communication_qubit=qubit,
        memory=MemoryParams(count=2, t1_s=None, t2_s=2e-3, gate_depolarizing=0.002),
        two_qubit_gate_depolarizing=0.03,
    )
    lab = SimulatedLab(LabParams(nodes={"n": params}), seed=seed)
    return SimulatedHardware(lab, [NodeWiring(node="n", qubit_controller="rtc")], [])


def test_qubit_operations_match_the_node_methods_and_keep_their_errors():
    """``qubit_operation``'s remembered steps against the node's methods and the clock,
    called by hand in the operation's order (init: the clock first)."""
    ops = [
        ("init", 1),
        ("rotate", 1, "Y", 0.7),
        ("gate", "H", 0),
        ("gate", "CNOT", 1, 0),
        ("gate", "SWAP", 1, 2),
        ("gate", "CZ", 2, 0),
        ("wait", 3e-4),
        ("measure", 1, "Y"),
        ("measure", 0, "Z"),
    ]
    hw, reference = _hardware(3), _hardware(3)
    node, clock = reference.lab.node("n"), reference.lab.clock
    t = reference.lab.params.nodes["n"].operation_times
    got, expected = [], []
    for _ in range(3):
        for op in ops:
            got.append(hw.qubit_operation("rtc", *op))
            kind, *args = op
            if kind == "init":
                clock.advance(t.init_us * 1e-6)
                expected.append(node.initialize(node.qubit(args[0])))
            elif kind == "rotate":
                expected.append(node.rotate(node.qubit(args[0]), *args[1:]))
                clock.advance(t.single_qubit_gate_us * 1e-6)
            elif kind == "gate" and args[0] == "H":
                expected.append(node.apply_gate(H, node.qubit(args[1])))
                clock.advance(t.single_qubit_gate_us * 1e-6)
            elif kind == "gate":
                name, *qubits = args
                ids = [node.qubit(q) for q in qubits]
                expected.append(getattr(node, name.lower())(*ids))
                clock.advance((3 if name == "SWAP" else 1) * t.two_qubit_gate_us * 1e-6)
            elif kind == "wait":
                expected.append(clock.advance(args[0]) and None)
            else:
                expected.append(node.measure(node.qubit(args[0]), args[1]))
                clock.advance(t.readout_us * 1e-6)
            assert hw.lab.clock.now == clock.now
            qubits = hw.lab.node("n").qubits
            assert np.array_equal(
                hw.lab.registry.density_matrix(qubits),
                reference.lab.registry.density_matrix(qubits),
            )
    assert got == expected
    for bad, error in [
        (("gate", "H", 3), IndexError),
        (("gate", "T", 0), KeyError),
        (("measure", 0, "W"), ValueError),
        (("jump",), ValueError),
    ]:
        for _ in range(2):  # a failed operation is not remembered
            with pytest.raises(error):
                hw.qubit_operation("rtc", *bad)
    before = hw.lab.clock.now
    with pytest.raises(IndexError):
        hw.qubit_operation("rtc", "init", 7)
    assert hw.lab.clock.now == before + t.init_us * 1e-6  # as before: the clock went first
    assert hw.qubit_operation("rtc", "rotate", 1, [0.0, 1.0, 0.0], 0.3) is None  # unhashable


def test_lone_entries_now_are_the_state_brought_up_to_date():
    """The fidelity probe's lone-qubit path: the same entries, and the same stored state
    and bookkeeping, as ``bring_up_to_date`` then the registry's matrix; None (nothing
    done) for a qubit sharing a group."""
    results = []
    for fast in (True, False):
        registry, clock = QubitRegistry(), SimClock()
        node = _node(registry, clock)
        comm, mem = node.qubits[0], node.qubits[1]
        node.rotate(mem, "Y", 1.1)
        node.apply_attempt_dephasing(7)
        clock.advance(3e-4)
        if fast:
            entries = node.lone_entries_now(mem)
        else:
            node.bring_up_to_date([mem])
            entries = tuple(registry.density_matrix([mem]).ravel().tolist())
        results.append((entries, registry.density_matrix([mem]), node._last_update[mem]))
        node.cnot(mem, comm)
        assert node.lone_entries_now(mem) is None
    (fast_entries, fast_rho, fast_time), (entries, rho, time) = results
    assert fast_entries == entries and fast_time == time
    np.testing.assert_array_equal(fast_rho, rho)
