"""A real-time controller's consecutive qubit operations resolved once into one block.

The real-time network runs a program's consecutive operations on the node's own qubits in
one go (``RealTimeNetwork._qubit_ops``); the simulated hardware resolves each such block
(per controller and block of operations) into entries: the operations' own steps
(``SimulatedHardware.qubit_operation``), except that a Bell-state measurement, CNOT(c -> t),
H(c), Z readout of c, Z readout of t, becomes one step: the node's fused instrument
(``QuantumNode.prepared_bell_measurement``), which never forms the merged state of the two
qubits' groups and draws the same outcomes in the same order; an init followed by
single-qubit gates on the same qubit becomes one step that sets the state they leave
(``QuantumNode.prepared_preparation``); single-qubit gates followed by the Z readout of
their (lone) qubit become one step (``QuantumNode.prepared_readout``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: Fuse a Bell-state measurement into one instrument, a qubit's preparation and its gates
#: before a readout into one step each. False: every operation its own step (tests compare
#: the two; blocks resolved with the other setting are not reused).
FUSE_OPERATIONS = True

#: (step, operations it covers, readouts it returns: 0, 1 (an outcome) or 2 (a pair))
Entry = tuple[Callable[[], Any], int, int]

#: resolved blocks kept (then they are resolved afresh)
_BLOCKS = 1024


def qubit_block(hw: Any, instrument: str, block: tuple[tuple[Any, ...], ...]) -> Any:
    """The entries of ``block`` (consecutive operations of ``instrument``'s program), or
    None when an operation does not resolve (the caller runs them one by one, so the error
    ends the program at that operation) or has an unhashable argument."""
    cache = blocks_version(hw)
    fuse = cache[1]
    # the real-time network passes the same block object at every run of a compiled
    # program: found by identity first, it is not hashed and compared operation by operation
    # (the entry keeps the block alive, so its id stays its own)
    seen = cache[3].get(id(block))
    if seen is not None and seen[0] is block and seen[1] == instrument:
        return seen[2]
    entries = _entries_by_value(hw, instrument, block, fuse, cache[2])
    if len(cache[3]) >= _BLOCKS:
        cache[3].clear()
    cache[3][id(block)] = (block, instrument, entries)
    return entries


def blocks_version(hw: Any) -> Any:
    """The cache of ``hw``'s resolved blocks (made anew when the lab's parameters or
    ``FUSE_OPERATIONS`` changed): the blocks ``qubit_block`` returns stay valid while it is
    the same object, so a caller may keep them as long (the real-time network asks for it
    once per run of its programs)."""
    cache = hw.__dict__.get("_qubit_blocks")
    if cache is None or cache[0] is not hw.lab.params or cache[1] is not FUSE_OPERATIONS:
        cache = hw.__dict__["_qubit_blocks"] = (hw.lab.params, FUSE_OPERATIONS, {}, {})
    return cache


def _entries_by_value(
    hw: Any, instrument: str, block: tuple[tuple[Any, ...], ...], fuse: bool, known: dict
) -> tuple[Entry, ...] | None:
    """The entries of ``block`` as resolved for an equal block before (``known``, by
    value), else resolved now; None for a block with an unhashable argument."""
    key = (instrument, block)
    try:
        entries = known.get(key, False)
    except TypeError:  # an unhashable argument (an axis as a list)
        return None
    if entries is False:
        entries = _resolve(hw, instrument, block, fuse)
        if len(known) >= _BLOCKS:
            known.clear()
        known[key] = entries
    return entries


def _resolve(
    hw: Any, instrument: str, block: tuple[tuple[Any, ...], ...], fuse: bool
) -> tuple[Entry, ...] | None:
    """Each operation's own step first: if one does not resolve (an invalid operation,
    whichever error it raises), None, and they run one by one so that the error ends the
    program at that operation. Only then the fused steps, built from valid operations (an
    error there is a bug, and raises)."""
    try:
        node = hw.lab.node(hw._node_of_controller(instrument))
        for op in block:
            if op[0] == "init":
                node.qubit(op[1])  # an invalid init advances the clock as it fails: not here
            hw.qubit_step(instrument, op[0], op[1:])
    except Exception:
        return None
    entries: list[Entry] = []
    i = 0
    while i < len(block):
        entry = _fused_entry(hw, instrument, node, block, i) if fuse else None
        if entry is None:
            op = block[i]
            entry = (hw.qubit_step(instrument, op[0], op[1:]), 1, int(op[0] == "measure"))
        entries.append(entry)
        i += entry[1]
    return tuple(entries)


def _fused_entry(
    hw: Any, instrument: str, node: Any, block: tuple[tuple[Any, ...], ...], i: int
) -> Entry | None:
    """The fused step of the pattern that starts at ``block[i]``, or None (no pattern)."""
    for width_at, make_step, reads in _FUSIONS:
        width = width_at(block, i)
        if width:
            return (make_step(hw, instrument, node, block[i : i + width]), width, reads)
    return None


def _bell_measurement_width(block: tuple[tuple[Any, ...], ...], i: int) -> int:
    """4 if CNOT(c, t), H(c), Z readout of c, Z readout of t are at ``block[i:]``, c != t;
    else 0."""
    if len(block) < i + 4:
        return 0
    cnot, h, read_c, read_t = block[i : i + 4]
    if len(cnot) != 4 or cnot[:2] != ("gate", "CNOT"):
        return 0
    c, t = cnot[2], cnot[3]
    matches = (
        type(c) is int
        and type(t) is int
        and c != t
        and h == ("gate", "H", c)
        and read_c == ("measure", c, "Z")
        and read_t == ("measure", t, "Z")
    )
    return 4 if matches else 0


def _single_qubit_gate(op: tuple[Any, ...], index: int) -> bool:
    """A rotation or a named single-qubit gate of the qubit ``index``."""
    from .hardware import _SINGLE_GATES  # (hardware imports this module)

    if op[0] == "rotate":
        return len(op) == 4 and op[1] == index and type(op[1]) is int
    return op[0] == "gate" and len(op) == 3 and op[1] in _SINGLE_GATES and op[2] == index


def _preparation_width(block: tuple[tuple[Any, ...], ...], i: int) -> int:
    """How many operations from ``block[i]`` are an init of a qubit and the single-qubit
    gates right after it on that qubit (0: not an init followed by a gate)."""
    if len(block[i]) != 2 or block[i][0] != "init" or type(block[i][1]) is not int:
        return 0
    end = i + 1
    while end < len(block) and _single_qubit_gate(block[end], block[i][1]):
        end += 1
    return end - i if end > i + 1 else 0


def _readout_width(block: tuple[tuple[Any, ...], ...], i: int) -> int:
    """How many operations from ``block[i]`` are single-qubit gates on one qubit and its Z
    readout right after them (0: not at least one gate and the readout)."""
    index = block[i][1] if len(block[i]) > 1 else None
    if type(index) is not int:
        return 0
    end = i
    while end < len(block) and _single_qubit_gate(block[end], index):
        end += 1
    if end == i or end == len(block) or block[end] != ("measure", index, "Z"):
        return 0
    return end + 1 - i


def _gates(node: Any, qubit: int, ops: tuple[tuple[Any, ...], ...]) -> list[Any]:
    """The node's noisy gates of single-qubit operations (rotate, or a named gate)."""
    from .hardware import _SINGLE_GATES
    from .physics.operators import rotation

    return [
        node.single_qubit_gate(
            rotation(op[2], op[3]) if op[0] == "rotate" else _SINGLE_GATES[op[1]], qubit
        )
        for op in ops
    ]


def _readout_step(
    hw: Any, instrument: str, node: Any, ops: tuple[tuple[Any, ...], ...]
) -> Callable[[], int]:
    """The fused gates and readout; their steps one by one when the qubit shares a group
    or events are scheduled on the clock (``QuantumNode.prepared_readout``)."""
    steps = [hw.qubit_step(instrument, op[0], op[1:]) for op in ops]
    t = hw.lab.params.nodes[node.name].operation_times
    qubit = node.qubit(ops[-1][1])
    fused = node.prepared_readout(
        qubit, _gates(node, qubit, ops[:-1]), t.single_qubit_gate_us * 1e-6, t.readout_us * 1e-6
    )
    *gates, read = steps

    def step() -> int:
        outcome = fused()
        if outcome is None:
            for gate in gates:
                gate()
            return read()
        return outcome

    return step


def _preparation_step(
    hw: Any, instrument: str, node: Any, ops: tuple[tuple[Any, ...], ...]
) -> Callable[[], None]:
    """The fused preparation; its steps one by one when events are scheduled on the
    clock (``QuantumNode.prepared_preparation``)."""
    steps = [hw.qubit_step(instrument, op[0], op[1:]) for op in ops]
    t = hw.lab.params.nodes[node.name].operation_times
    qubit = node.qubit(ops[0][1])
    gates = _gates(node, qubit, ops[1:])
    fused = node.prepared_preparation(qubit, gates, t.init_us * 1e-6, t.single_qubit_gate_us * 1e-6)

    def step() -> None:
        if not fused():
            for one in steps:
                one()

    return step


def _bell_step(
    hw: Any, instrument: str, node: Any, ops: tuple[tuple[Any, ...], ...]
) -> Callable[[], tuple[int, int]]:
    """The fused Bell-state measurement; its four steps when it does not apply (the two
    qubits share a group: ``QuantumNode.prepared_bell_measurement``)."""
    steps = [hw.qubit_step(instrument, op[0], op[1:]) for op in ops]
    t = hw.lab.params.nodes[node.name].operation_times
    _, _, c, target = ops[0]
    fused = node.prepared_bell_measurement(
        node.qubit(c),
        node.qubit(target),
        (t.two_qubit_gate_us * 1e-6, t.single_qubit_gate_us * 1e-6, t.readout_us * 1e-6),
    )
    cnot, hadamard, read_c, read_t = steps

    def step() -> tuple[int, int]:
        outcomes = fused()
        if outcomes is None:
            cnot()
            hadamard()
            return read_c(), read_t()
        return outcomes

    return step


#: the fused patterns, tried in this order at each operation: (width of the pattern at an
#: index, 0 if it is not there; its step; readouts the step returns)
_FUSIONS: tuple[tuple[Callable[..., int], Callable[..., Any], int], ...] = (
    (_bell_measurement_width, _bell_step, 2),
    (_preparation_width, _preparation_step, 0),
    (_readout_width, _readout_step, 1),
)
