"""A run counts the tries a cut-off ended and tells the operator while they pile up."""

from __future__ import annotations

from pathlib import Path

from control.shot_loop import CutoffTally


def test_only_cutoff_and_discard_events_count() -> None:
    told: list[int] = []
    tally = CutoffTally(told.append, every_s=0.0)
    for kind in ("herald", "cutoff", "swap", "discard", "shot", "cutoff"):
        tally(kind, {})
    assert tally.count == 3
    assert told == [1, 2, 3]


def test_the_operator_is_told_at_most_every_interval(monkeypatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("control.shot_loop.time.monotonic", lambda: clock[0])
    told: list[int] = []
    tally = CutoffTally(told.append, every_s=0.5)
    for _ in range(4):  # within the first half second: counted, not told
        tally("cutoff", {"link": "alice-bob"})
    clock[0] += 0.6
    tally("cutoff", {"link": "alice-bob"})
    tally("cutoff", {"link": "alice-bob"})
    assert tally.count == 6 and told == [5]


def test_without_a_listener_it_only_counts() -> None:
    tally = CutoffTally()
    tally("discard", {"pair": "alice-bob#1"})
    assert tally.count == 1


def test_a_local_observer_sees_every_event_of_a_shot_program_batch() -> None:
    """Without an event publisher, ``Orchestrator.on_event`` still sees each completed
    shot's heralds, swap and shot events (the batch skips building them only when nobody
    listens)."""
    from qcodes.instrument import Instrument

    from control.backend import open_network
    from control.node import cardinal_states
    from control.runs import build_orchestrator
    from sequences.attempt_loop import AttemptLoop

    chain = Path(__file__).parents[2] / "lab_configs" / "three_node_chain.network.yaml"
    network = open_network(chain, seed=2)
    try:
        orchestrator = build_orchestrator(network, AttemptLoop(alpha=0.1, max_attempts=0))
        seen: list[str] = []
        orchestrator.on_event = lambda kind, data: seen.append(kind)
        states = cardinal_states()
        orchestrator.teleport_batch("alice", "bob", "charlie", [(0, states[0]), (1, states[1])])
    finally:
        network.close()
        Instrument.close_all()
    assert seen == ["herald", "herald", "swap", "shot"] * 2


def test_an_observer_that_names_its_kinds_is_told_only_of_those() -> None:
    """A ``CutoffTally`` wants cut-offs and discards only, so a batch of shot programs does
    not build the heralds, swaps and shots of every shot for it."""
    from qcodes.instrument import Instrument

    from control.backend import open_network
    from control.node import cardinal_states
    from control.runs import build_orchestrator
    from sequences.attempt_loop import AttemptLoop

    chain = Path(__file__).parents[2] / "lab_configs" / "three_node_chain.network.yaml"
    network = open_network(chain, seed=2)
    built: list[str] = []
    try:
        orchestrator = build_orchestrator(network, AttemptLoop(alpha=0.1, max_attempts=0))
        orchestrator._published_shot = lambda *args: built.append("shot events")
        seen: list[str] = []

        class Picky:
            KINDS = frozenset({"cutoff"})

            def __call__(self, kind: str, data: dict) -> None:
                seen.append(kind)

        orchestrator.on_event = Picky()
        states = cardinal_states()
        orchestrator.teleport_batch("alice", "bob", "charlie", [(0, states[0]), (1, states[1])])
        orchestrator._publish("herald", link="alice-bob")
        orchestrator._publish("cutoff", link="alice-bob")
    finally:
        network.close()
        Instrument.close_all()
    assert built == [] and seen == ["cutoff"]
