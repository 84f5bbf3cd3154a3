"""The simulated lab decodes an AWG's attempt program once per change of what it plays."""

from __future__ import annotations

from pathlib import Path

import pytest
from qcodes.instrument import Instrument

from control.backend import open_network
from sequences.attempt_loop import AttemptLoop, BarrettKokLoop, compile_attempt_loop
from sim_backend.attempt_program import ProgramCache

TWO_NODE = Path(__file__).parents[2] / "lab_configs" / "two_node.network.yaml"


@pytest.fixture
def awg():
    network = open_network(TWO_NODE, seed=1)
    driver = network.instrument("alice", "awg")
    yield driver, network.simulated_lab.instruments[driver.name]
    network.close()
    Instrument.close_all()


def test_a_program_is_decoded_again_only_when_the_awg_changes(awg) -> None:
    driver, sim = awg
    cache = ProgramCache()
    driver.upload_sequence(compile_attempt_loop(AttemptLoop(alpha=0.1, max_attempts=0)))
    first = cache.get(sim)
    assert first is not None and first.scheme == "single_click"
    assert cache.get(sim) is first  # nothing changed: the decoded program is reused

    sim.channels[1].amplitude_vpp /= 2  # the drive halves: the pulse must be read again
    halved = cache.get(sim)
    assert halved is not first
    assert halved.pulses[0].peak_v == pytest.approx(first.pulses[0].peak_v / 2)

    driver.upload_sequence(compile_attempt_loop(BarrettKokLoop(max_attempts=5)))
    assert cache.get(sim).scheme == "barrett_kok"  # a new upload is a new program

    sim.elements = []  # an emptied sequence plays no attempt loop
    assert cache.get(sim) is None
