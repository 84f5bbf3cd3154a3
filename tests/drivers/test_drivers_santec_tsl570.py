"""Santec TSL-570 against its pyvisa-sim file."""

from __future__ import annotations

import pytest

from drivers.errors import InstrumentValueError


@pytest.fixture
def laser(make_sim):
    return make_sim("santec_tsl570", name="laser_a")


def test_units_fixed_at_connect(laser) -> None:
    assert laser.ask(":WAV:UNIT?") == "0"
    assert laser.ask(":POW:UNIT?") == "0"


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("wavelength", 1560.1234),
        ("frequency", 192.17531),
        ("power", -3.5),
        ("output", True),
        ("output", False),
        ("coherence_control", True),
    ],
)
def test_parameter_round_trip(laser, param: str, value: object) -> None:
    getattr(laser, param).set(value)
    assert getattr(laser, param).get() == pytest.approx(value)


def test_measured_power(laser) -> None:
    assert laser.power_actual.get() == pytest.approx(0.98)


def test_laser_role(laser) -> None:
    laser.set_wavelength_nm(1550.5)
    assert laser.get_wavelength_nm() == pytest.approx(1550.5)
    laser.set_power_mw(10.0)
    assert laser.power.get() == pytest.approx(10.0)  # 10 mW = 10 dBm
    assert laser.get_power_mw() == pytest.approx(10.0)
    laser.set_output(True)
    assert laser.is_output_on() is True


def test_zero_power_is_refused(laser) -> None:
    with pytest.raises(InstrumentValueError, match=r"laser_a \(Santec TSL-570\).*0 mW"):
        laser.set_power_mw(0.0)


def test_power_above_range_in_mw_is_refused(laser) -> None:
    with pytest.raises(InstrumentValueError, match="expected -15..13 dBm"):
        laser.set_power_mw(50.0)  # 17 dBm


def test_wavelength_outside_variant_is_refused(laser) -> None:
    with pytest.raises(InstrumentValueError, match=r"1300 nm out of range .* 1480..1640 nm"):
        laser.wavelength.set(1300)


def test_safe_state_turns_the_diode_off(laser) -> None:
    laser.power.set(5.0)
    laser.output.set(True)
    laser.safe_state()
    assert laser.output.get() is False
    assert laser.power.get() == pytest.approx(5.0)
