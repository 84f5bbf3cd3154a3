"""The teleportation benchmark's own figures: the instrument messages it counts per
teleportation are the messages the drivers send (whichever pyvisa call sends them)."""

from __future__ import annotations

import pytest

from benchmarks.teleport_throughput import teleportations_per_second


@pytest.mark.parametrize(
    ("options", "messages"),
    [({}, 5.0), ({"batch": 4}, 5.0 / 4), ({"stepwise": True}, 18.0)],
)
def test_messages_per_teleportation_are_counted(options: dict, messages: float) -> None:
    result = teleportations_per_second(8, **options)
    assert result["instrument_messages_per_teleportation"] == pytest.approx(messages)
    assert result["shots"] == 8 and result["teleportations_per_s"] > 0
