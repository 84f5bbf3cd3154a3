"""The Bell-state measurement as one instrument (``physics.bell_measurement``) against the
four operations one by one: outcome probabilities, post-measurement states, random draws,
the fallbacks, and a whole teleportation batch."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

import sim_backend.hardware_blocks as blocks
from sim_backend.params import MemoryParams, NodeParams, QubitParams
from sim_backend.physics.bell_measurement import BellInstrument
from sim_backend.physics.channels import idle_parameters
from sim_backend.physics.clock import SimClock
from sim_backend.physics.operators import CNOT, H, rotation
from sim_backend.physics.quantum_node import QuantumNode
from sim_backend.physics.registry import QubitRegistry

CHAIN = Path(__file__).parents[1] / "lab_configs" / "three_node_chain.network.yaml"
#: two-qubit gate, single-qubit gate, readout (s)
DURATIONS = (5e-7, 1e-7, 3.7e-6)
COMM = QubitParams(
    t1_s=1e-3, t2_s=5e-4, init_error=0.02, gate_depolarizing=0.01, readout_f0=0.93, readout_f1=0.98
)
MEMORY = MemoryParams(count=1, t1_s=2e-3, t2_s=1e-3, gate_depolarizing=0.004, readout_f0=0.9)
PARAMS = NodeParams(communication_qubit=COMM, memory=MEMORY, two_qubit_gate_depolarizing=0.03)


def random_rho(rng: np.random.Generator, n: int) -> np.ndarray:
    d = 2**n
    g = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    rho = g @ g.conj().T
    return rho / np.trace(rho)


class Script:
    """A stand-in generator whose ``random`` returns the given numbers, then fresh ones."""

    def __init__(self, values: list[float], seed: int = 0) -> None:
        self.values = list(values)
        self._rng = np.random.default_rng(seed)

    def random(self) -> float:
        return self.values.pop(0) if self.values else float(self._rng.random())


class Setup:
    """A node (comm = qubit t, memory = qubit c) and other qubits in one registry: c in a
    group with ``na`` others, t in a group with ``nc`` others, with random states, random
    pending idle noise on c and t."""

    def __init__(self, seed: int, na: int, nc: int, rng: object) -> None:
        r = np.random.default_rng(seed)
        self.registry, self.clock = QubitRegistry(), SimClock()
        self.node = QuantumNode("n", PARAMS, self.registry, self.clock, rng)  # type: ignore
        self.t, self.c = self.node.qubits
        self.a = [self.registry.add_qubit(f"a{i}") for i in range(na)]
        self.rest_c = [self.registry.add_qubit(f"c{i}") for i in range(nc)]
        first = list(self.a)
        first.insert(int(r.integers(0, na + 1)), self.c)
        second = list(self.rest_c)
        second.insert(int(r.integers(0, nc + 1)), self.t)
        self.registry.set_state(first, random_rho(r, len(first)))
        self.registry.set_state(second, random_rho(r, len(second)))
        self.clock.advance(float(r.uniform(0, 3e-4)))
        self.node.mark_fresh([self.t], float(r.uniform(0, self.clock.now)))
        self.node.apply_attempt_dephasing(int(r.integers(0, 20)))  # the memory's pending
        self.first, self.second = first, second

    def op_by_op(self) -> tuple[int, int]:
        node, clock = self.node, self.clock
        two, one, readout = DURATIONS
        node.cnot(self.c, self.t)
        clock.advance(two)
        node.apply_gate(H, self.c)
        clock.advance(one)
        mc = node.measure(self.c)
        clock.advance(readout)
        mt = node.measure(self.t)
        clock.advance(readout)
        return mc, mt

    def fused(self) -> tuple[int, int] | None:
        return self.node.prepared_bell_measurement(self.c, self.t, DURATIONS)()

    def snapshot(self) -> tuple:
        rest = self.a + self.rest_c
        reg, node = self.registry, self.node
        state = reg.density_matrix(rest) if rest else None
        bookkeeping = (dict(node._last_update), dict(node._pending_coherence), self.clock.now)
        lone = [(reg.group_of(q), reg.density_matrix([q])) for q in (self.c, self.t)]
        return (reg.group_of(rest[0]) if rest else ()), state, bookkeeping, lone


def assert_same(a: tuple, b: tuple, tol: float = 1e-12) -> None:
    assert a[0] == b[0]  # the rest's group, in the same order
    if a[1] is not None:
        np.testing.assert_allclose(a[1], b[1], rtol=0, atol=tol)
    assert a[2] == b[2]  # idle bookkeeping and the clock, exactly
    for (group_a, rho_a), (group_b, rho_b) in zip(a[3], b[3], strict=True):
        assert group_a == group_b
        np.testing.assert_array_equal(rho_a, rho_b)


SIZES = [(na, nc) for na in range(3) for nc in range(3)]


@pytest.mark.parametrize(("na", "nc"), SIZES)
def test_outcome_probabilities_match_the_merged_state(na: int, nc: int) -> None:
    """Tr sigma_m of the instrument against the op-by-op path's merged state after the
    CNOT and the H, with each readout's T1 decay."""
    for seed in range(5):
        setup = Setup(seed, na, nc, Script([]))
        node = setup.node
        idle_c, idle_t = node._take_idle(setup.c), node._take_idle(setup.t)
        s1 = setup.registry.separate_states(setup.c, setup.t)
        assert s1 is not None
        # the op-by-op path to the readouts, then the diagonal of (c, t) with their decay
        two, one, readout = DURATIONS
        setup.registry.apply_gate(node.two_qubit_gate(CNOT), (setup.c, setup.t), (idle_c, idle_t))
        h_idle = idle_parameters(two, MEMORY.t1_s, MEMORY.t2_s)
        setup.registry.apply_gate(node.single_qubit_gate(H, setup.c), (setup.c,), (h_idle,))
        pair = setup.registry.density_matrix([setup.c, setup.t]).diagonal().real
        gc = idle_parameters(one, MEMORY.t1_s, MEMORY.t2_s)[0]
        gt = idle_parameters(two + one + readout, COMM.t1_s, COMM.t2_s)[0]
        decay_c = np.array([[1, gc], [0, 1 - gc]])
        decay_t = np.array([[1, gt], [0, 1 - gt]])
        expected = np.kron(decay_c, decay_t) @ pair  # P(m_c, m_t), m = 2 m_c + m_t
        instrument = BellInstrument(
            node.two_qubit_gate(CNOT), node.single_qubit_gate(H, setup.c).superop, h_idle, gc, gt
        )
        F = instrument.functionals(idle_c, idle_t)
        r1, r2 = _reduced(*s1[0]), _reduced(*s1[1])
        got = F.dot(r2).dot(r1)
        np.testing.assert_allclose(got.real, expected, rtol=0, atol=1e-12)
        np.testing.assert_allclose(got.imag, 0, atol=1e-12)
        assert math.isclose(float(got.real.sum()), 1.0, rel_tol=1e-12)


def test_products_are_remembered_per_state_and_position() -> None:
    """``BellInstrument.product`` (F R_2, remembered per t's state object) is F R_2 for
    each position of t in one read-only state (two links of a node may share their
    model's states), and for each c idle channel."""
    from sim_backend.physics.bell_measurement import _gather_of

    setup = Setup(0, 1, 1, Script([]))
    node, rng = setup.node, np.random.default_rng(11)
    h_idle = idle_parameters(DURATIONS[0], MEMORY.t1_s, MEMORY.t2_s)
    instrument = BellInstrument(
        node.two_qubit_gate(CNOT), node.single_qubit_gate(H, setup.c).superop, h_idle, 0.1, 0.2
    )
    shared = random_rho(rng, 2)
    shared.flags.writeable = False
    idle_t = (0.01, 0.9)
    for position, idle_c in [(0, (0.0, 1.0)), (1, (0.0, 1.0)), (0, (0.2, 0.5)), (1, (0.3, 0.1))]:
        gather = _gather_of(4, position)
        F = instrument.matrix(idle_c, idle_t)
        expected = F.dot(shared.ravel()[gather]).reshape(4, -1)
        got = instrument.product((idle_c, idle_t), shared, gather)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-14)


@pytest.mark.parametrize(("na", "nc"), SIZES)
@pytest.mark.parametrize(("mc", "mt"), [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_each_outcome_leaves_the_same_state(na: int, nc: int, mc: int, mt: int) -> None:
    """Each outcome pair, forced by the draws (true outcomes; no readout error), leaves the
    same (A, C) state, qubits, bookkeeping and clock as the four operations."""
    force = {0: 1.0 - 1e-12, 1: 0.0}  # random() < p1 draws 1: 0.0 always, ~1 never
    for seed in range(4):
        draws = [force[mc], 0.0, force[mt], 0.0]
        reference, fused = Setup(seed, na, nc, Script(draws)), Setup(seed, na, nc, Script(draws))
        assert reference.op_by_op() == (mc, mt)
        assert fused.fused() == (mc, mt)
        assert_same(fused.snapshot(), reference.snapshot())


@pytest.mark.parametrize(("na", "nc"), SIZES)
def test_seeded_draws_give_the_same_outcomes_and_states(na: int, nc: int) -> None:
    """With the same seeded generator, both paths draw the same outcomes (readout errors
    included) and leave the same states, shot after shot."""
    outcomes = set()
    for seed in range(40):
        reference = Setup(seed, na, nc, np.random.default_rng(seed))
        fused = Setup(seed, na, nc, np.random.default_rng(seed))
        expected = reference.op_by_op()
        assert fused.fused() == expected
        outcomes.add(expected)
        assert_same(fused.snapshot(), reference.snapshot())
        # the generators are where they were: the same number of draws
        assert reference.node._rng.random() == fused.node._rng.random()
    assert len(outcomes) == 4


def test_qubits_sharing_a_group_are_left_to_the_four_operations() -> None:
    setup = Setup(1, 1, 0, Script([]))
    setup.registry.apply_gate(setup.node.two_qubit_gate(CNOT), (setup.c, setup.t), ((0, 1),) * 2)
    before = setup.clock.now, setup.registry.density_matrix([setup.c, setup.t])
    assert setup.fused() is None
    assert setup.clock.now == before[0]
    np.testing.assert_array_equal(setup.registry.density_matrix([setup.c, setup.t]), before[1])
    # one fused step per qubits and durations (blocks that differ elsewhere share it)
    step = setup.node.prepared_bell_measurement(setup.c, setup.t, DURATIONS)
    assert setup.node.prepared_bell_measurement(setup.c, setup.t, DURATIONS) is step
    assert setup.node.prepared_bell_measurement(setup.t, setup.c, DURATIONS) is not step
    with pytest.raises(ValueError, match="distinct"):
        setup.node.prepared_bell_measurement(setup.c, setup.c, DURATIONS)
    with pytest.raises(ValueError, match="does not belong"):
        setup.node.prepared_bell_measurement(setup.c, setup.a[0], DURATIONS)


# ------------------------------------------------------------------ hardware blocks
def _hardware(seed: int):
    from sim_backend.hardware import SimulatedHardware
    from sim_backend.lab import SimulatedLab
    from sim_backend.params import LabParams
    from sim_backend.wiring import NodeWiring

    params = NodeParams(
        communication_qubit=COMM,
        memory=MemoryParams(count=2, t1_s=None, t2_s=2e-3, gate_depolarizing=0.002),
        two_qubit_gate_depolarizing=0.03,
    )
    lab = SimulatedLab(LabParams(nodes={"n": params}), seed=seed)
    return SimulatedHardware(lab, [NodeWiring(node="n", qubit_controller="rtc")], [])


BSM = (("gate", "CNOT", 1, 0), ("gate", "H", 1), ("measure", 1, "Z"), ("measure", 0, "Z"))
PREPARE = (("init", 0), ("init", 1), ("rotate", 1, "Y", 0.4), ("gate", "H", 0))


def _one_by_one(monkeypatch) -> None:
    """The real-time network runs qubit operations one by one, as before blocks."""
    from sim_backend.hardware import SimulatedHardware

    monkeypatch.setattr(SimulatedHardware, "qubit_block", lambda self, instrument, block: None)


def _run(ops: tuple, mode: str, monkeypatch) -> tuple:
    """``ops`` as one program of the real-time network, in blocks with the Bell-state
    measurement fused or not, or one by one; (registers, items, position, state, state of
    the qubits, clock, the error)."""
    with monkeypatch.context() as patch:
        patch.setattr(blocks, "FUSE_OPERATIONS", mode == "fused")
        if mode == "one by one":
            _one_by_one(patch)
        return _program(ops)


def _program(ops: tuple) -> tuple:
    hw = _hardware(7)
    texts = tuple(" ".join(map(str, op)) for op in ops)
    error = None
    try:
        hw.realtime.start("rtc", 0, ops, texts)
    except (IndexError, KeyError, ValueError) as exc:
        error = (type(exc), str(exc))
    run = hw.realtime._batches["rtc"][0]
    node = hw.lab.node("n")
    state = hw.lab.registry.density_matrix(node.qubits)
    return run.registers, run.items, run.position, run.state, state, hw.lab.clock.now, error


@pytest.mark.parametrize(
    "ops",
    [
        PREPARE + (("gate", "CNOT", 1, 2), ("gate", "CNOT", 1, 0)) + BSM,  # a separate pair
        PREPARE + (("gate", "CNOT", 1, 0),) + BSM + BSM,  # a shared group: one by one
        PREPARE + BSM[:3] + (("measure", 0, "X"),),  # another basis
        PREPARE + (("gate", "CZ", 1, 0),) + BSM[1:],  # another gate
        PREPARE + (("gate", "CNOT", 1, 1),) + BSM[1:],  # c == t: fails as before
        PREPARE + (("gate", "CNOT", 1, 0), ("gate", "H", 0)) + BSM[2:],  # H on the target
        PREPARE + BSM + (("gate", "H", 5),),  # fails after it, at the right operation
        (("init", 9),) + BSM,  # fails first (the clock advances as it does)
        PREPARE + BSM + (("rotate", 1, [0.0, 1.0, 0.0], 0.3),),  # an unhashable axis
        PREPARE + (("wait", 1e-5),) + BSM + (("gate", "H", 2),) + BSM,
        PREPARE + BSM + (("init", 1), ("rotate", 1, "Y", 0.3), ("rotate", 1, "Z", 2.0)) + BSM,
        PREPARE + (("gate", "CNOT", 1, 0), ("init", 1), ("gate", "S", 1), ("gate", "X", 0)),
        PREPARE + (("init", 2), ("gate", "H", 2), ("rotate", 2, "X", 0.1), ("gate", "H", 1)),
        PREPARE + (("init", 1), ("rotate", 1, "Y", 0.2), ("gate", "T", 1)),  # fails
        PREPARE + (("wait", 1e-5), ("gate", "H", 2), ("rotate", 2, "Y", 0.4), ("measure", 2, "Z")),
        PREPARE + (("gate", "CNOT", 1, 0), ("gate", "H", 1), ("measure", 1, "Z")),  # a group
        PREPARE + BSM + (("rotate", 0, "X", 0.5), ("measure", 0, "Z"), ("measure", 1, "Z")),
    ],
)
@pytest.mark.parametrize("mode", ["fused", "blocks"])
def test_blocks_run_as_the_operations_one_by_one(ops: tuple, mode: str, monkeypatch) -> None:
    got, expected = _run(ops, mode, monkeypatch), _run(ops, "one by one", monkeypatch)
    assert got[:4] == expected[:4]
    np.testing.assert_allclose(got[4], expected[4], rtol=0, atol=1e-12)
    assert got[5:] == expected[5:]


def test_a_preparation_leaves_exactly_the_state_of_its_operations() -> None:
    """init, then single-qubit gates, as one step: the same state, bit for bit, the same
    bookkeeping and clock, also when the qubit was in a group."""
    for seed in range(3):
        reference, fused = Setup(seed, 1, 1, Script([])), Setup(seed, 1, 1, Script([]))
        init_s, gate_s = 2e-6, 1e-7
        gates = [rotation("Y", 0.7), rotation("Z", -1.2), H]
        steps = fused.node.prepared_preparation(
            fused.c, [fused.node.single_qubit_gate(g, fused.c) for g in gates], init_s, gate_s
        )
        for _ in range(3):
            reference.clock.advance(init_s)
            reference.node.initialize(reference.c)
            for gate in gates:
                reference.node.apply_gate(gate, reference.c)
                reference.clock.advance(gate_s)
            assert steps()
            assert_same(fused.snapshot(), reference.snapshot(), tol=0)
            for setup in (reference, fused):
                setup.clock.advance(3e-5)
        fused.clock.schedule(1.0, lambda: None)
        assert not steps()  # an event on the clock: the operations one by one


@pytest.mark.parametrize("lifetimes", [True, False])
def test_gates_and_a_readout_on_a_lone_qubit_draw_as_one_by_one(lifetimes: bool) -> None:
    """Single-qubit gates then a Z readout as one step: P(1) as the gates one by one leave
    it, the same draws, the measured state, bookkeeping and clock."""
    from sim_backend.physics.bell_measurement import readout_functionals

    gate_s, readout_s = 1e-7, 3.7e-6
    outcomes = set()
    for seed in range(60):
        reference = Setup(seed, 0, 1, np.random.default_rng(seed))
        fused = Setup(seed, 0, 1, np.random.default_rng(seed))
        if not lifetimes:
            for setup in (reference, fused):
                setup.node._lifetimes[setup.c] = None
        unitaries = [rotation("Z", 0.4), rotation("Y", -1.1), H][: 1 + seed % 3]
        gates = [fused.node.single_qubit_gate(u, fused.c) for u in unitaries]
        step = fused.node.prepared_readout(fused.c, gates, gate_s, readout_s)
        # P(1) from the state the gates leave, one by one, and from the functionals
        idle = []
        for u in unitaries:  # each gate's idle channel first, recorded
            idle.append(reference.node._take_idle(reference.c))
            reference.registry.apply_damping_dephasing(reference.c, *idle[-1])
            reference.node.apply_gate(u, reference.c)
            reference.clock.advance(gate_s)
        idle.append(reference.node._take_idle(reference.c))
        rho = reference.registry.density_matrix([reference.c]).ravel()
        e, c, g = readout_functionals(gates, idle[1:-1], idle[-1][0])
        weights = np.array(e) + idle[0][1] * np.array(c) + idle[0][0] * np.array(g)
        expected = rho[3].real * (1 - idle[-1][0])
        assert math.isclose(
            float((weights @ fused.registry.lone_state(fused.c).ravel()).real),
            expected,
            rel_tol=1e-12,
            abs_tol=1e-14,
        )
        # the two paths, from the same start
        reference = Setup(seed, 0, 1, np.random.default_rng(seed))
        if not lifetimes:
            reference.node._lifetimes[reference.c] = None
        for u in unitaries:
            reference.node.apply_gate(u, reference.c)
            reference.clock.advance(gate_s)
        expected_outcome = reference.node.measure(reference.c)
        reference.clock.advance(readout_s)
        assert step() == expected_outcome
        outcomes.add(expected_outcome)
        assert_same(fused.snapshot(), reference.snapshot(), tol=0)
        assert reference.node._rng.random() == fused.node._rng.random()
    assert outcomes == {0, 1}
    # shared with another qubit: left to the operations one by one
    setup = Setup(1, 1, 0, Script([]))
    assert setup.node.prepared_readout(setup.c, gates, gate_s, readout_s)() is None


def test_bell_measurement_pattern() -> None:
    assert blocks._bell_measurement_width(BSM, 0) == 4
    assert blocks._bell_measurement_width((("init", 1),) + BSM, 1) == 4
    assert blocks._bell_measurement_width((("init", 1),) + BSM, 0) == 0
    assert blocks._bell_measurement_width(BSM[:3], 0) == 0
    assert blocks._bell_measurement_width((("gate", "CNOT", 1, 1), *BSM[1:]), 0) == 0
    assert blocks._bell_measurement_width((*BSM[:3], ("measure", 0, "X")), 0) == 0
    assert blocks._bell_measurement_width((("gate", "CNOT", 1.0, 0), *BSM[1:]), 0) == 0
    prepare = (("init", 1), ("rotate", 1, "Y", 0.3), ("gate", "H", 1), ("gate", "H", 0))
    assert blocks._preparation_width(prepare, 0) == 3
    assert blocks._preparation_width(prepare[:1] + prepare[3:], 0) == 0
    assert blocks._preparation_width(prepare, 1) == 0
    readout = (("rotate", 0, "Z", 0.3), ("gate", "H", 0), ("measure", 0, "Z"), ("init", 0))
    assert blocks._readout_width(readout, 0) == 3
    assert blocks._readout_width(readout, 2) == 0  # a readout alone is its own step
    assert blocks._readout_width(readout[:2], 0) == 0
    assert blocks._readout_width((readout[0], ("measure", 0, "X")), 0) == 0
    assert blocks._readout_width((readout[0], ("measure", 1, "Z")), 0) == 0


# ------------------------------------------------------------------ end to end
def _teleport_records(fuse: bool, monkeypatch) -> list[dict]:
    from qcodes.instrument import Instrument

    from control.backend import open_network
    from control.node import cardinal_states
    from control.runs import build_orchestrator
    from sequences.attempt_loop import AttemptLoop

    if not fuse:
        _one_by_one(monkeypatch)
    built = []
    original = BellInstrument.__init__

    def counted(self, *args):  # type: ignore[no-untyped-def]
        built.append(1)
        original(self, *args)

    monkeypatch.setattr(BellInstrument, "__init__", counted)
    network = open_network(CHAIN, seed=3)
    try:
        orchestrator = build_orchestrator(network, AttemptLoop(alpha=0.1, max_attempts=0))
        states = cardinal_states()
        records = []
        for first in range(0, 48, 16):
            items = [(s, states[s % 6]) for s in range(first, first + 16)]
            records += orchestrator.teleport_batch("alice", "bob", "charlie", items)
    finally:
        network.close()
        Instrument.close_all()
    assert bool(built) == fuse  # the instrument ran exactly when fused
    return [asdict(r) for r in records]


def test_teleport_batch_records_are_the_same_fused_or_not(monkeypatch) -> None:
    """Fused Bell-state measurements in blocks against every operation one by one."""
    fused = _teleport_records(True, monkeypatch)
    with monkeypatch.context() as patch:
        reference = _teleport_records(False, patch)
    assert len(fused) == len(reference) == 48
    for got, expected in zip(fused, reference, strict=True):
        assert got.keys() == expected.keys()
        for key, value in expected.items():
            if isinstance(value, float):
                assert math.isclose(got[key], value, rel_tol=1e-9, abs_tol=1e-12), key
            else:
                assert got[key] == value, key


def _reduced(rho: np.ndarray, position: int) -> np.ndarray:
    """The reduced state (r00, r01, r10, r11) of the qubit at ``position`` of ``rho`` (the
    others traced out), by a partial trace independent of the instrument's gathers."""
    n = rho.shape[0].bit_length() - 1
    t = np.moveaxis(rho.reshape((2,) * (2 * n)), (position, n + position), (0, 1))
    rest = 2 ** (n - 1)
    return np.trace(t.reshape(2, 2, rest, rest), axis1=2, axis2=3).reshape(4)
