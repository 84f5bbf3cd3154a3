"""The cached operating point of a link: derived again whenever an instrument reading, an
attempt program, the drift step or the lab's parameters change (a value assigned from
Python, which does not notify the lab, included), the same as deriving it afresh."""

from __future__ import annotations

from pathlib import Path

import pytest
from qcodes.instrument import Instrument

from control.backend import open_network

TWO_NODE = Path(__file__).parents[1] / "lab_configs" / "two_node.network.yaml"
LINK = ("alice", "bob")


@pytest.fixture
def hardware():
    network = open_network(TWO_NODE, seed=3)
    try:
        yield network.simulated_lab
    finally:
        network.close()
        Instrument.close_all()


def _light_on(hardware) -> None:
    """Lasers, AOMs, converter pumps and detector bias on (assigned from Python), so the
    link can herald."""
    for node in LINK:
        wiring = hardware.nodes[node]
        hardware.instruments[wiring.laser].output_on = True
        channel = hardware.instruments[wiring.optical_switch].channels[
            wiring.optical_switch_channel
        ]
        channel.rf_on = channel.amplifier_on = True
        converter = hardware.instruments[wiring.frequency_converter]
        converter.pump_on, converter.pump_power_mw = True, 500.0
    detectors = hardware.instruments[hardware.stations[frozenset(LINK)].detectors]
    detectors.detector_enable = True
    for channel in (1, 2):
        detectors.channels[channel].bias_ua = 9.0


def _fresh(hardware, link=LINK):
    """The operating point with the cache emptied (derived from the instruments now)."""
    hardware.__dict__.pop("_static_points", None)
    return hardware.operating_point(link)


def test_unchanged_setup_reuses_the_point_and_its_model(hardware):
    _light_on(hardware)
    first = hardware._static_point(LINK, hardware._program("alice"), hardware._program("bob"))
    again = hardware._static_point(LINK, hardware._program("alice"), hardware._program("bob"))
    assert again is first
    assert hardware.link_model(LINK) is hardware.link_model(LINK)
    assert hardware.operating_point(LINK) == _fresh(hardware)


def test_settings_assigned_from_python_are_seen(hardware):
    """Python assignments do not call ``settings_changed``: the readings catch them."""
    _light_on(hardware)
    before = hardware.operating_point(LINK)
    wiring = hardware.nodes["alice"]
    laser = hardware.instruments[wiring.laser]
    laser.output_on = not laser.output_on
    assert hardware.operating_point(LINK) == _fresh(hardware)
    assert hardware.operating_point(LINK).emission_probability != before.emission_probability
    detectors = hardware.instruments[hardware.stations[frozenset(LINK)].detectors]
    detectors.channels[1].bias_ua += 1.0
    changed = hardware.operating_point(LINK)
    assert changed.dark_count_rate_hz != before.dark_count_rate_hz
    assert changed == _fresh(hardware)
    qfc = hardware.instruments[wiring.frequency_converter]
    qfc.pump_power_mw = qfc.pump_power_mw + 100.0
    assert hardware.operating_point(LINK) == _fresh(hardware)


def test_drift_step_and_parameters_are_part_of_the_key(hardware):
    first = hardware._static_point(LINK, None, None)
    hardware.lab.clock.advance(120.0)  # two drift steps later
    assert hardware._static_point(LINK, None, None) is not first
    second = hardware._static_point(LINK, None, None)
    hardware.lab.params = hardware.lab.params.model_copy()
    assert hardware._static_point(LINK, None, None) is not second


def test_the_phase_is_evaluated_on_every_use(hardware):
    """The interferometer phase is not cached: an AOM phase change shows at once."""
    _light_on(hardware)
    wiring = hardware.nodes["alice"]
    switch = hardware.instruments[wiring.optical_switch]
    before = hardware.operating_point(LINK).phase_offset_rad
    switch.channels[wiring.optical_switch_channel].phase_deg += 90.0
    after = hardware.operating_point(LINK).phase_offset_rad
    assert after != before
    assert hardware.link_model(LINK).operating_point.phase_offset_rad == after
