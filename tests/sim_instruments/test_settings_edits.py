"""The simulated instruments count their edits (``instruments.edits``), so the lab may keep
what it derived from their settings; a change made any way (SCPI, an attribute assigned
from Python, a container changed in place) is seen by the very next use."""

from __future__ import annotations

from pathlib import Path

import pytest
from qcodes.instrument import Instrument

from control.backend import open_network
from sequences.attempt_loop import AttemptLoop, BarrettKokLoop, compile_attempt_loop
from sim_backend.instruments.edits import WatchedDict, WatchedList, edits
from sim_backend.instruments.sim_moglabs_qrf import QrfChannelState
from sim_backend.instruments.sim_tektronix_awg5014c import AwgElementState

TWO_NODE = Path(__file__).parents[2] / "lab_configs" / "two_node.network.yaml"
LINK = ("alice", "bob")


@pytest.fixture
def hardware():
    network = open_network(TWO_NODE, seed=3)
    try:
        yield network
    finally:
        network.close()
        Instrument.close_all()


def _fresh_point(hw):
    """The operating point derived from the instruments now (caches emptied)."""
    hw.__dict__.pop("_static_points", None)
    return hw.operating_point(LINK)


def test_containers_count_their_changes() -> None:
    d, lst = WatchedDict(a=1), WatchedList([1])
    for change in (
        lambda: d.__setitem__("b", 2),
        lambda: d.update(c=3),
        lambda: d.pop("a"),
        lambda: d.setdefault("e", {}),
        lambda: d.clear(),
        lambda: lst.append(2),
        lambda: lst.extend([3]),
        lambda: lst.__setitem__(0, 5),
        lambda: lst.sort(),
        lambda: lst.pop(),
    ):
        before = edits()
        change()
        assert edits() > before
    d["x"] = {"nested": [1]}
    assert isinstance(d["x"], WatchedDict) and isinstance(d["x"]["nested"], WatchedList)


def test_settings_changed_from_python_are_seen_at_once(hardware) -> None:
    hw = hardware.simulated_lab
    wiring = hw.nodes["alice"]
    hw.operating_point(LINK)
    laser = hw.instruments[wiring.laser]
    laser.output_on = not laser.output_on  # an attribute
    assert hw.operating_point(LINK) == _fresh_point(hw)
    switch = hw.instruments[wiring.optical_switch]
    channel = wiring.optical_switch_channel
    laser.output_on = True
    switch.channels[channel].rf_on = False
    replacement = QrfChannelState(rf_on=True, amplifier_on=True)
    before = hw.operating_point(LINK)
    switch.channels[channel] = replacement  # only a dict item changes, no attribute
    after = hw.operating_point(LINK)
    assert after == _fresh_point(hw) and after.emission_probability != before.emission_probability
    detectors = hw.instruments[hw.stations[frozenset(LINK)].detectors]
    detectors.detector_enable = True
    detectors.channels[1].bias_ua = 9.0
    assert hw.operating_point(LINK) == _fresh_point(hw)


def test_an_awg_program_edited_in_place_is_decoded_again(hardware) -> None:
    driver = hardware.instrument("alice", "awg")
    hw = hardware.simulated_lab
    sim = hw.instruments[driver.name]
    driver.upload_sequence(compile_attempt_loop(AttemptLoop(alpha=0.1, max_attempts=0)))
    first = hw._program("alice")
    assert first is not None and hw._program("alice") is first
    sim.elements[0].waveforms.clear()  # in place: the element plays nothing
    sim.elements[1:] = [AwgElementState()]
    assert hw._program("alice") is None
    driver.upload_sequence(compile_attempt_loop(BarrettKokLoop(max_attempts=5)))
    assert hw._program("alice").scheme == "barrett_kok"


def test_running_the_awg_is_no_edit(hardware) -> None:
    hw = hardware.simulated_lab
    sim = hw.instruments[hw.nodes["alice"].awg]
    before = edits()
    sim.running = True
    sim.running = False
    assert edits() == before
