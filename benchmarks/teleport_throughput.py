"""End-to-end teleportations per wall-clock second over Alice - Bob - Charlie: node
controllers, orchestrator, drivers and simulated instruments, in one process (no storage),
and with the node controllers behind ZeroMQ RPC servers on loopback; as shot programs on the
real-time controllers (the default) or driven step by step by the orchestrator (the
baseline, ``stepwise=True``). Also counts the instrument transactions (VISA messages) per
teleportation, a figure the machine's load does not change."""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any

from qcodes.instrument import Instrument

from control.backend import open_network
from control.node import cardinal_states
from control.node_service import RemoteNode, serve_node
from control.runs import build_orchestrator
from sequences.attempt_loop import AttemptLoop

CHAIN = Path(__file__).parents[1] / "lab_configs" / "three_node_chain.network.yaml"


def teleportations_per_second(
    shots: int = 200, over_rpc: bool = False, stepwise: bool = False, batch: int = 1
) -> dict[str, float]:
    """Teleportations per wall-clock second (and instrument messages per teleportation),
    ``batch`` shots per program transaction (``Orchestrator.teleport_batch``)."""
    network = open_network(CHAIN, seed=1)
    servers, remotes = [], []
    try:
        orchestrator = build_orchestrator(network, AttemptLoop(alpha=0.1, max_attempts=0))
        orchestrator.shot_programs = not stepwise
        if over_rpc:
            for name, node in list(orchestrator.nodes.items()):
                server = serve_node(node, "tcp://127.0.0.1:*")
                server.start()
                servers.append(server)
                remote = RemoteNode(name, server.endpoint)
                remotes.append(remote)
                orchestrator.nodes[name] = remote  # type: ignore[assignment]
        orchestrator.prepare()
        states = cardinal_states()
        orchestrator.teleport_over_chain("alice", "bob", "charlie", 0, states[0])  # warm-up
        # the start-up's objects out of the collector's full passes, as in the instruction
        # count (``cpu_instructions``): one such pass (~0.1 s) comes every several thousand
        # shots of a long run, and landing in this window or not would swing the figure
        gc.collect()
        gc.freeze()
        try:
            started = time.perf_counter()
            teleport_shots(orchestrator, 0, shots, batch)
            wall = time.perf_counter() - started
        finally:
            gc.unfreeze()
        messages = _messages_per_teleportation(network, orchestrator, shots=32, batch=batch)
        return {
            "batch": batch,
            "shots": shots,
            "wall_s": wall,
            "teleportations_per_s": shots / wall,
            "instrument_messages_per_teleportation": messages,
        }
    finally:
        for remote in remotes:
            remote.close()
        for server in servers:
            server.stop()
        network.close()
        Instrument.close_all()


def teleport_shots(orchestrator: Any, first_shot: int, count: int, batch: int) -> None:
    """Teleport shots ``first_shot`` .. ``first_shot + count - 1`` over Alice - Bob - Charlie,
    ``batch`` per program transaction, cycling the six cardinal input states."""
    states = cardinal_states()
    end = first_shot + count
    for first in range(first_shot, end, batch):
        items = [(s, states[s % 6]) for s in range(first, min(first + batch, end))]
        orchestrator.teleport_batch("alice", "bob", "charlie", items)


def _messages_per_teleportation(
    network: Any, orchestrator: Any, shots: int, batch: int = 1
) -> float:
    """VISA messages written to all instruments per teleportation, over ``shots`` more
    teleportations (counted after the timed run so counting does not slow it). Counted as
    the VISA library's writes on the instruments' sessions: the drivers hand a query's
    message to the library directly (``QNodeVisaInstrument.ask_raw``), other messages go
    through pyvisa's ``write``, which ends there too."""
    handles = [inst.visa_handle for inst in network.instruments.values()]
    libraries = {id(h.visalib): h.visalib for h in handles}
    sessions = {h.session for h in handles}
    count = [0]

    def counting(write: Any) -> Any:
        def wrapper(session: Any, data: bytes) -> Any:
            if session in sessions:
                count[0] += 1
            return write(session, data)

        return wrapper

    for library in libraries.values():
        library.write = counting(library.write)
    try:
        teleport_shots(orchestrator, 0, shots, batch)
    finally:
        for library in libraries.values():
            del library.write
    return count[0] / shots
