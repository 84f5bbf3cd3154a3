"""R&S SGS100A against its pyvisa-sim file."""

from __future__ import annotations

import pytest


@pytest.fixture
def mw(make_sim):
    return make_sim("rs_sgs100a", name="mw")


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("frequency", 2.877e9),
        ("power", -7.25),
        ("phase", 90.5),
        ("output", True),
        ("iq_modulation", True),
        ("pulse_modulation", True),
        ("pulse_source", "EXT"),
        ("reference_source", "EXT"),
    ],
)
def test_parameter_round_trip(mw, param: str, value: object) -> None:
    getattr(mw, param).set(value)
    expected = pytest.approx(value) if isinstance(value, float) else value
    assert getattr(mw, param).get() == expected


def test_microwave_role(mw) -> None:
    mw.set_frequency_hz(1.5e9)
    mw.set_power_dbm(3.0)
    mw.set_output(True)
    mw.set_modulation(iq=True, pulse=False)
    assert mw.get_frequency_hz() == pytest.approx(1.5e9)
    assert mw.get_power_dbm() == pytest.approx(3.0)
    assert mw.is_output_on() is True
    assert mw.iq_modulation.get() is True
    assert mw.pulse_modulation.get() is False


def test_safe_state_output_and_modulation_off(mw) -> None:
    mw.output.set(True)
    mw.set_modulation(iq=True, pulse=True)
    mw.safe_state()
    assert mw.output.get() is False
    assert mw.iq_modulation.get() is False
    assert mw.pulse_modulation.get() is False
