"""Teleportation over a three-node chain a - b - c as one real-time program per node.

The protocol (Bennett et al., PRL 70, 1895 (1993), over a pair made by entanglement swapping,
Zukowski et al., PRL 71, 4287 (1993)), as the nodes' real-time controllers run it for one
shot (Pompili et al., Science 372, 259 (2021), ran their GHZ and swapping protocols this
way):

* **b** (the middle node): attempt loop with a; the pair moves to its memory (qubit 1);
  attempt loop with c; the memory cut-off is checked; Bell-state measurement on memory
  (control) and communication qubit; the swapped pair's Pauli frame goes to a and c;
* **c** (the sender): attempt loop with b; waits for b's frame; prepares the input on its
  memory, measures it in the Bell basis with its half, and sends the total frame to a;
* **a** (the receiver): attempt loop with b; waits for b's and then c's message; applies
  X^x Z^z from c's frame (feed-forward) on its communication qubit, which then holds the
  input state, and reads it out along the input's axis.

Frames are XORs of register bits (``sequences.pauli_frame``): a heralded pair contributes its
Bell state's (x, z); a BSM done as CNOT(control -> target), H(control) contributes (x, z) =
(target's readout, control's readout). An attempt loop cut off, or the stored pair older than
the memory cut-off when b-c is heralded, aborts the shot on every node.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.qubit_program import QubitProgram

COMMUNICATION, MEMORY = 0, 1


@dataclass(frozen=True)
class ChainTeleport:
    """The three programs of one teleportation shot, and where b's program can abort."""

    receiver: QubitProgram  # a
    swapper: QubitProgram  # b
    sender: QubitProgram  # c
    #: b's operations (1-based) that end a shot early, and why
    swapper_aborts: dict[int, str]


def chain_teleport(
    a: str,
    b: str,
    c: str,
    theta: float,
    phi: float,
    memory_cutoff_s: float | None = None,
    probe: bool = False,
) -> ChainTeleport:
    """The programs teleporting cos(theta/2)|0> + e^{i phi} sin(theta/2)|1> from ``c`` to
    ``a`` over a pair swapped at ``b``; ``a`` then reads its qubit out along the input's
    axis (0: the state arrived). ``probe``: in the simulated lab, ``a`` first reports the
    exact fidelity of what arrived (``PROBE``)."""
    # b: registers r0 r1 (frame a-b), r2 r3 (frame b-c), r4 (memory readout), r5 (comm)
    swapper = QubitProgram().entangle(a).init(MEMORY).gate("SWAP", COMMUNICATION, MEMORY)
    swapper.entangle(c)
    aborts = {1: f"cut-off {a}-{b}", len(swapper): f"cut-off {b}-{c}"}
    if memory_cutoff_s is not None:
        swapper.max_age(memory_cutoff_s)
        aborts[len(swapper)] = "memory cut-off"
    swapper.gate("CNOT", MEMORY, COMMUNICATION).gate("H", MEMORY)
    swapper.measure(MEMORY).measure(COMMUNICATION)
    swap_frame = ((0, 2, 5), (1, 3, 4))  # x: frames + comm readout; z: frames + memory's
    swapper.send(a, *swap_frame).send(c, *swap_frame)

    # c: r0 r1 (frame b-c), r2 r3 (swapped frame from b), r4 (input readout), r5 (comm)
    sender = QubitProgram().entangle(b).receive(b, 2).init(MEMORY)
    if theta:
        sender.rotate(MEMORY, "Y", theta)
    if phi:
        sender.rotate(MEMORY, "Z", phi)
    sender.gate("CNOT", MEMORY, COMMUNICATION).gate("H", MEMORY)
    sender.measure(MEMORY).measure(COMMUNICATION)
    sender.send(a, (2, 5), (3, 4))

    # a: r0 r1 (frame a-b), r2 r3 (swapped frame from b), r4 r5 (total frame from c)
    receiver = QubitProgram().entangle(b).receive(b, 2).receive(c, 2)
    receiver.pauli(COMMUNICATION, (4,), (5,))
    if probe:
        receiver.probe(COMMUNICATION, theta, phi)
    if phi:  # the input's axis onto Z, then a Z readout
        receiver.rotate(COMMUNICATION, "Z", -phi)
    if theta:
        receiver.rotate(COMMUNICATION, "Y", -theta)
    receiver.measure(COMMUNICATION)
    return ChainTeleport(receiver, swapper, sender, aborts)
