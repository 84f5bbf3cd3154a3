"""A run counts the tries a cut-off ended and tells the operator while they pile up."""

from __future__ import annotations

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
