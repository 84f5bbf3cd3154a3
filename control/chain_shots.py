"""Teleportation over a chain as shot programs on the nodes' real-time controllers: one
program per node per shot (``sequences.chain_teleport``), started and read in one
transaction per node for one shot or a batch of them, with the shots a cut-off ended run
again, and the events and record of each completed shot. A mixin of
:class:`control.orchestrator.Orchestrator`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drivers.qubit_program import ProgramResult
from sequences.chain_teleport import ChainTeleport, chain_teleport


@dataclass(frozen=True, init=False)
class TeleportShot:
    """One teleportation over the chain, as stored."""

    shot: int
    input_state: str
    outcome: int
    correct: int
    attempts_ab: int
    attempts_bc: int
    swap_outcomes: tuple[int, int]
    bsm_outcomes: tuple[int, int]
    delivered_time_s: float
    exact_fidelity: float | None

    def __init__(
        self,
        shot: int,
        input_state: str,
        outcome: int,
        correct: int,
        attempts_ab: int,
        attempts_bc: int,
        swap_outcomes: tuple[int, int],
        bsm_outcomes: tuple[int, int],
        delivered_time_s: float,
        exact_fidelity: float | None,
    ) -> None:
        # the generated frozen ``__init__`` sets each field through ``object.__setattr__``
        # (a record per shot: it cost as much as reading a program's reply); the fields go
        # into the instance's ``__dict__`` instead (frozen only refuses attribute writes)
        fields = self.__dict__
        fields["shot"] = shot
        fields["input_state"] = input_state
        fields["outcome"] = outcome
        fields["correct"] = correct
        fields["attempts_ab"] = attempts_ab
        fields["attempts_bc"] = attempts_bc
        fields["swap_outcomes"] = swap_outcomes
        fields["bsm_outcomes"] = bsm_outcomes
        fields["delivered_time_s"] = delivered_time_s
        fields["exact_fidelity"] = exact_fidelity


class ChainShotsMixin:
    """``teleport_batch`` and its helpers (for :class:`~control.orchestrator.Orchestrator`,
    whose nodes, network, loop, cut-off, events and stepwise path it uses)."""

    nodes: Any
    network: Any
    loop: Any
    cutoff_s: float | None
    events: Any
    on_event: Any
    shot_programs: bool
    _prepared: bool
    _loaded: Any
    _programs: dict[tuple[Any, ...], ChainTeleport]
    _next_tag: int
    prepare: Any
    _publish: Any
    _observes: Any
    teleport_stepwise: Any

    def teleport_batch(
        self, a: str, b: str, c: str, shots: list[tuple[int, tuple[str, float, float]]]
    ) -> list[TeleportShot]:
        """``teleport_over_chain`` for several shots at once: each controller gets the
        programs of all of them in one transaction and runs them one after the other, as
        real-time controllers run many repetitions per upload; shots a cut-off ended are
        run again in a further batch. Records in the order of ``shots``."""
        if not self.shot_programs:
            return [self.teleport_stepwise(a, b, c, shot, state) for shot, state in shots]
        if not self._prepared:
            self.prepare()
        nodes = self.nodes
        node_a, node_b, node_c = nodes[a], nodes[b], nodes[c]
        if self._loaded is not self.loop:
            for node in (node_a, node_b, node_c):
                node.load_loop(self.loop)
            self._loaded = self.loop
        probe = self.network.backend != "lab"  # only a simulation knows the exact fidelity
        # (no local observer: none is asked for each kind)
        publishing = self.events is not None or (
            self.on_event is not None
            and any(self._observes(kind) for kind in ("herald", "swap", "shot"))
        )
        count = len(shots)
        pending_ab = [0] * count
        attempts_bc = [0] * count
        done: list[Any] = [None] * count  # each shot's record, once it completed
        todo = list(range(count))
        while todo:
            programs, receivers, swappers, senders = self._batch_programs(
                a, b, c, shots, todo, probe
            )
            first = self._next_tag
            self._next_tag = first + len(todo)
            node_a.start_programs(receivers, first)
            node_b.start_programs(swappers, first)
            at_c = node_c.run_shot_programs(senders, first)
            at_a = node_a.program_results(receivers)
            at_b = node_b.program_results(swappers)
            again = []
            for k, (i, ra, rb, rc) in enumerate(zip(todo, at_a, at_b, at_c, strict=True)):
                herald_ab = ra.heralds[0] if ra.heralds else None
                attempts_ab = pending_ab[i] + (herald_ab.attempts if herald_ab else 0)
                pending_ab[i] = 0 if herald_ab and herald_ab.bell_state else attempts_ab
                attempts_bc[i] += rc.heralds[0].attempts if rc.heralds else 0
                if ra.aborted is not None or rb.aborted is not None or rc.aborted is not None:
                    self._shot_aborted(a, b, c, rb, programs[k].swapper_aborts, attempts_ab)
                    again.append(i)
                    continue
                shot, state = shots[i]
                attempts = (attempts_ab, attempts_bc[i])
                record = self._record(shot, state, ra, rb, rc, attempts)
                if publishing:  # (nobody listening: skip building the events)
                    self._published_shot(a, b, c, first + k, rb, attempts)
                    self._publish("shot", shot=shot, input=state[0], correct=record.correct)
                done[i] = record
            todo = again
        return done

    def _record(
        self,
        shot: int,
        input_state: tuple[str, float, float],
        at_a: ProgramResult,
        at_b: ProgramResult,
        at_c: ProgramResult,
        attempts: tuple[int, int],
    ) -> TeleportShot:
        """A shot as stored, from the three programs' results (a's readout is its last)."""
        outcome = at_a.readouts[-1]
        return TeleportShot(
            shot,
            input_state[0],
            outcome,
            int(outcome == 0),
            attempts[0],
            attempts[1],
            (at_b.readouts[0], at_b.readouts[1]),
            (at_c.readouts[0], at_c.readouts[1]),
            at_a.time_s,  # the clock when a's readout ended
            at_a.probes[0] if at_a.probes else None,  # the exact fidelity
        )

    def _published_shot(
        self, a: str, b: str, c: str, tag: int, at_b: ProgramResult, attempts: tuple[int, int]
    ) -> None:
        """The events of a completed shot: both heralds (as b saw them) and the swap."""
        for link, herald, count in (
            (f"{a}-{b}", at_b.heralds[0], attempts[0]),
            (f"{b}-{c}", at_b.heralds[1], attempts[1]),
        ):
            self._publish(
                "herald", link=link, pair=f"{link}#{tag}", bell=herald.bell_state, attempts=count
            )
        self._publish("swap", node=b, pair=f"{a}-{c}#{tag}", outcomes=list(at_b.readouts))

    def _batch_programs(
        self,
        a: str,
        b: str,
        c: str,
        shots: list[tuple[int, tuple[str, float, float]]],
        todo: list[int],
        probe: bool,
    ) -> tuple[list[ChainTeleport], list[Any], list[Any], list[Any]]:
        """The programs of the shots ``todo`` (indices into ``shots``), by input state (a
        batch repeats a few), and a's, b's and c's programs of each, in order."""
        known: dict[int, ChainTeleport] = {}  # by the state's identity, within this call
        compiled, cutoff = self._programs, self.cutoff_s
        programs: list[ChainTeleport] = []
        receivers: list[Any] = []
        swappers: list[Any] = []
        senders: list[Any] = []
        for i in todo:
            state = shots[i][1]
            shot_programs = known.get(id(state))
            if shot_programs is None:
                key = (a, b, c, state[1], state[2], cutoff, probe)  # ``chain_teleport``'s
                shot_programs = compiled.get(key) or self._compiled(key)
                known[id(state)] = shot_programs
            programs.append(shot_programs)
            receivers.append(shot_programs.receiver)
            swappers.append(shot_programs.swapper)
            senders.append(shot_programs.sender)
        return programs, receivers, swappers, senders

    def _compiled(self, key: tuple[Any, ...]) -> ChainTeleport:
        """The programs ``chain_teleport(*key)``, compiled now and kept in ``_programs``
        (by chain, input state, memory cut-off and probe: a run repeats a few)."""
        if len(self._programs) >= 64:
            self._programs.clear()
        programs = self._programs[key] = chain_teleport(*key)
        return programs

    def _shot_aborted(
        self, a: str, b: str, c: str, at_b: ProgramResult, aborts: dict[int, str], ab: int
    ) -> None:
        """Report why a shot ended early (b's program knows: its attempt loops and the
        memory cut-off are where a shot can end)."""
        reason = aborts.get(at_b.aborted or 0, "aborted")
        if reason == "memory cut-off":
            (h_ab, h_bc) = at_b.heralds
            self._publish(
                "discard", pair=f"{a}-{b}", age_s=h_bc.time_s - h_ab.time_s, cutoff_s=self.cutoff_s
            )
        elif reason.startswith("cut-off"):
            link = reason.removeprefix("cut-off ")
            attempts = ab if link == f"{a}-{b}" else at_b.heralds[-1].attempts
            self._publish(
                "cutoff",
                link=link,
                attempts=attempts,
                max_attempts=self.loop.max_attempts,
                max_time_us=self.loop.max_time_us,
            )
