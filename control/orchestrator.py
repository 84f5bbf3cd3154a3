"""The network orchestrator: which link to generate when, when to swap, when to teleport,
and the classical messages between the nodes.

The orchestrator drives `NodeController`s (in this process, or remote ones behind RPC with
the same methods) and the heralding stations. Classical messages take time: in the
simulated lab the receiving node idles for the message's flight (fibre delay plus
processing latency), so the qubits pay for it in memory decoherence, as in a real network.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sequences.attempt_loop import AnyLoop, prepare_station
from sequences.chain_teleport import ChainTeleport
from sequences.pauli_frame import PauliFrame

from .chain_shots import ChainShotsMixin, TeleportShot
from .node import NodeController, NodeError, Pair


class OrchestrationError(RuntimeError):
    """A protocol step that could not be completed (no herald within the cut-off, ...)."""


@dataclass
class Orchestrator(ChainShotsMixin):
    """Runs protocols across the nodes of one network."""

    network: Any  # control.backend.Network
    nodes: dict[str, NodeController]  # or RemoteNode proxies: the same methods
    loop: AnyLoop
    bias_ua: float = 9.0
    events: Any = None  # an EventPublisher, or None
    #: a local observer of the same events, (kind, data) (a run counts its cut-off tries);
    #: one with a ``KINDS`` attribute (a set of kinds) is told only of those
    on_event: Callable[[str, dict[str, Any]], None] | None = None
    cutoff_s: float | None = None  # a stored pair older than this is discarded and remade
    #: heralding station -> calibrated '+' and '-' time-tagger delays, ps (default 0, 0)
    tagger_delays_ps: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: teleportation runs as one real-time program per node (False: step by step)
    shot_programs: bool = True
    _prepared: bool = field(default=False, repr=False)
    _loaded: AnyLoop | None = field(default=None, repr=False)  # loop the AWGs hold
    _programs: dict[tuple[Any, ...], ChainTeleport] = field(default_factory=dict, repr=False)
    #: the next shot tag of the nodes' real-time programs: tags are unique and increase, so
    #: an aborted or stale shot's programs never meet a new one's (a random start: several
    #: orchestrators, one lab)
    _next_tag: int = field(default_factory=lambda: secrets.randbelow(2**30), repr=False)

    # ------------------------------------------------------------------ set-up
    def prepare(self) -> None:
        """Prepare every node and heralding station for attempts."""
        for node in self.nodes.values():
            node.prepare()
        for name, hs in self.network.loaded.config.heralding_stations.items():
            prepare_station(
                self.network.instrument(name, "detectors"),
                self.network.instrument(name, "time_tagger"),
                (hs.detectors.plus, hs.detectors.minus),
                (hs.time_tagger.plus, hs.time_tagger.minus),
                bias_ua=self.bias_ua,
                delays_ps=self.tagger_delays_ps.get(name, (0, 0)),
            )
        self._prepared = True

    def _publish(self, kind: str, **data: Any) -> None:
        if self.events is not None:
            self.events.publish(kind, **data)
        if self.on_event is not None and self._observes(kind):
            self.on_event(kind, data)

    def _observes(self, kind: str) -> bool:
        """Whether the local observer wants events of ``kind`` (all, unless it says)."""
        kinds = getattr(self.on_event, "KINDS", None)
        return self.on_event is not None and (kinds is None or kind in kinds)

    def send(self, sender: str, receiver: str, defer: bool = False) -> None:
        """A classical message from ``sender`` to ``receiver``: the receiver waits for it.
        ``defer``: the wait opens the receiver's next step (which must follow before any
        other node acts, see ``NodeController.wait``)."""
        delay = self.network.classical_delay_s(sender, receiver)
        self.nodes[receiver].wait(delay, defer=defer)

    # ---------------------------------------------------------------- protocols
    def entangle(self, a: str, b: str) -> str:
        """Heralded entanglement between neighbours ``a`` and ``b``; returns the pair id.

        Raises OrchestrationError when the attempt loop ends without a herald (its cut-off
        on attempts or on time)."""
        return self._entangle(a, b)[0].pair_id

    def _entangle(self, a: str, b: str) -> tuple[Pair, Pair]:
        """``entangle``, returning the pair as ``a`` and as ``b`` recorded it."""
        if not self._prepared:
            self.prepare()
        node_a, node_b = self.nodes[a], self.nodes[b]
        node_a.arm(self.loop)
        node_b.arm(self.loop)
        pair_id = node_a.new_pair_id(b)
        pair_a = node_a.collect_herald(b, pair_id)
        pair_b = node_b.collect_herald(a, pair_id)
        if pair_a is None or pair_b is None:
            raise OrchestrationError(
                f"no herald between {a} and {b} within {self.loop.cutoff_text()}"
            )
        self._publish(
            "herald",
            link=f"{a}-{b}",
            pair=pair_id,
            bell=pair_a.bell_state,
            attempts=pair_a.attempts,
        )
        return pair_a, pair_b

    def entangle_until_herald(self, a: str, b: str) -> str:
        """Attempt loops on a-b until one heralds: a loop ended by its attempt cut-off is
        started again (the cut-off bounds how long a stored partner pair waits, see
        ``swapped_pair``)."""
        return self._entangle_until_herald(a, b)[0].pair_id

    def _entangle_until_herald(self, a: str, b: str) -> tuple[Pair, Pair]:
        while True:
            try:
                return self._entangle(a, b)
            except OrchestrationError:
                self._publish(
                    "cutoff",
                    link=f"{a}-{b}",
                    attempts=self.loop.max_attempts,
                    max_time_us=self.loop.max_time_us,
                )

    def swap(
        self, a: str, b: str, c: str, pair_ab: str, pair_bc: str, defer_last: bool = False
    ) -> tuple[str, tuple[int, int]]:
        """Entanglement swapping at ``b``: BSM on its halves of a-b and b-c; the outcome goes
        to ``a`` and ``c``, whose halves become the pair a-c (Pauli frame updated).
        ``defer_last``: ``c`` waits for the message at the start of its next step (the
        caller's next action must be on ``c``)."""
        node_b = self.nodes[b]
        return self._swap(a, b, c, node_b.pair(pair_ab), node_b.pair(pair_bc), defer_last)

    def _swap(
        self, a: str, b: str, c: str, half_ab: Pair, half_bc: Pair, defer_last: bool
    ) -> tuple[str, tuple[int, int]]:
        """``swap`` with ``b``'s records of its two halves already at hand."""
        node_b = self.nodes[b]
        pair_ab, pair_bc = half_ab.pair_id, half_bc.pair_id
        frame_ab, frame_bc = half_ab.frame, half_bc.frame
        m_ab, m_bc = node_b.bell_measurement(pair_ab, pair_bc)
        frame = frame_ab + frame_bc + PauliFrame.from_bell_measurement(m_ab, m_bc)
        new_id = f"{a}-{c}#{pair_ab.rsplit('#', 1)[-1]}.{pair_bc.rsplit('#', 1)[-1]}"
        self.send(b, a)
        self.nodes[a].rename(pair_ab, new_id, c, frame)
        self.send(b, c, defer=defer_last)
        self.nodes[c].rename(pair_bc, new_id, a, frame)
        self._publish("swap", node=b, pair=new_id, outcomes=[m_ab, m_bc])
        return new_id, (m_ab, m_bc)

    def teleport(
        self, sender: str, receiver: str, pair_id: str, theta: float, phi: float
    ) -> tuple[tuple[int, int], int]:
        """Teleport cos(theta/2)|0> + e^{i phi} sin(theta/2)|1>, prepared at ``sender`` on a
        free memory qubit, to ``receiver`` over ``pair_id``; the receiver applies the
        feed-forward correction. Returns (BSM outcomes, the receiver's qubit index)."""
        node_s, node_r = self.nodes[sender], self.nodes[receiver]
        input_qubit = node_s.free_qubit()
        if input_qubit is None:
            raise NodeError(f"{sender}: no free qubit to prepare the input state on")
        frame = node_s.pair(pair_id).frame
        m_in, m_pair = node_s.teleport_input(input_qubit, theta, phi, pair_id)
        total = frame + PauliFrame.from_bell_measurement(m_in, m_pair)
        self.send(sender, receiver, defer=True)  # the correction waits for the message
        pair = node_r.correct(pair_id, total)
        return (m_in, m_pair), pair.qubit

    def swapped_pair(
        self, a: str, b: str, c: str, defer_last: bool = False
    ) -> tuple[str, tuple[int, int], int, int]:
        """A pair a-c made by swapping at b: a-b first (b moves it to memory), then b-c;
        if b-c does not herald within the attempt cut-off, or the stored a-b pair outlived
        the memory cut-off ``cutoff_s``, the stored pair is discarded and the procedure starts
        again. Returns (pair id, swap outcomes, attempts a-b, attempts b-c). ``defer_last``
        as for ``swap``. The nodes' records of each pair come back with the steps that made
        them (herald, memory move), so none is asked for again."""
        while True:
            at_a, _ = self._entangle_until_herald(a, b)
            p_ab, attempts_ab = at_a.pair_id, at_a.attempts
            stored = self.nodes[b].move_to_memory(p_ab)
            try:
                at_b, at_c = self._entangle(b, c)
            except OrchestrationError:  # the stored pair waited the whole cut-off: start again
                for node in (a, b):
                    self.nodes[node].release(p_ab)
                continue
            p_bc, attempts_bc = at_b.pair_id, at_c.attempts
            # the stored pair's age when its partner was heralded (b's clock)
            age = at_b.created_s - stored.created_s
            if self.cutoff_s is not None and age > self.cutoff_s:
                for node, pair in ((a, p_ab), (b, p_ab), (b, p_bc), (c, p_bc)):
                    self.nodes[node].release(pair)
                self._publish("discard", pair=p_ab, age_s=age, cutoff_s=self.cutoff_s)
                continue
            p_ac, outcomes = self._swap(a, b, c, stored, at_b, defer_last)
            return p_ac, outcomes, attempts_ab, attempts_bc

    def teleport_over_chain(
        self, a: str, b: str, c: str, shot: int, input_state: tuple[str, float, float]
    ) -> TeleportShot:
        """The main protocol: pairs a-b and b-c, swap at b, teleport c's input to a,
        measure a's qubit along the input's axis (correct when it reads 0).

        The nodes' real-time controllers run the shot themselves, one program each
        (``sequences.chain_teleport``): attempt loops, memory swap, Bell-state
        measurements, the classical messages, the feed-forward correction and a's readout.
        A shot a cut-off ended (an attempt loop's, or the memory's) is run again. With
        ``shot_programs`` off, the orchestrator drives the same protocol step by step
        (``teleport_stepwise``), for real-time controllers without network operations."""
        return self.teleport_batch(a, b, c, [(shot, input_state)])[0]

    def teleport_stepwise(
        self, a: str, b: str, c: str, shot: int, input_state: tuple[str, float, float]
    ) -> TeleportShot:
        """``teleport_over_chain`` driven step by step from here: each attempt loop, memory
        move, BSM, message wait and correction is its own transaction with a node."""
        _, theta, phi = input_state
        # c's next action is the teleportation: it waits for the swap outcome there
        p_ac, swap, attempts_ab, attempts_bc = self.swapped_pair(a, b, c, True)
        bsm, qubit = self.teleport(c, a, p_ac, theta, phi)
        self.nodes[a].discard_pair(p_ac)  # consumed by the readout
        return self._read_out(a, qubit, shot, input_state, (attempts_ab, attempts_bc), swap, bsm)

    def _read_out(
        self,
        a: str,
        qubit: int,
        shot: int,
        input_state: tuple[str, float, float],
        attempts: tuple[int, int],
        swap: tuple[int, int],
        bsm: tuple[int, int],
    ) -> TeleportShot:
        """Measure the teleported qubit along the input's axis (after the simulated lab's
        exact fidelity is taken) and record the shot."""
        name, theta, phi = input_state
        exact = self.network.exact_fidelity(a, qubit, theta, phi)
        node_a = self.nodes[a]
        outcome = node_a.measure_along(qubit, theta, phi)
        shot_record = TeleportShot(
            shot=shot,
            input_state=name,
            outcome=outcome,
            correct=int(outcome == 0),
            attempts_ab=attempts[0],
            attempts_bc=attempts[1],
            swap_outcomes=swap,
            bsm_outcomes=bsm,
            delivered_time_s=node_a.last_step_s(),  # the clock when the readout ended
            exact_fidelity=exact,
        )
        self._publish("shot", shot=shot, input=name, correct=shot_record.correct)
        return shot_record

    def verify(self, a: str, b: str, pair_id: str, basis: str) -> tuple[int, int]:
        """Measure a delivered pair: ``a``'s half along basis[0], ``b``'s along basis[1]
        (e.g. 'XX', 'YY', 'ZZ'), as the lab verifies a link; the pair is consumed."""
        if len(basis) != 2 or any(axis not in "XYZ" for axis in basis):
            raise ValueError(f"basis={basis!r}: expected two of X, Y, Z, e.g. 'XX'")
        return (
            self.nodes[a].measure_pair(pair_id, basis[0]),
            self.nodes[b].measure_pair(pair_id, basis[1]),
        )

    def safe_state(self) -> dict[str, str]:
        """Every node's instruments and every station to a safe state; failures returned."""
        failures = {}
        for name, node in self.nodes.items():
            try:
                failures.update({f"{name}.{k}": v for k, v in node.safe_state().items()})
            except Exception as exc:  # a lost node: report it, make the others safe
                failures[name] = f"{type(exc).__name__}: {exc}"
        failures.update(self.network.safe_state())
        return failures


__all__ = ["OrchestrationError", "Orchestrator", "TeleportShot"]
