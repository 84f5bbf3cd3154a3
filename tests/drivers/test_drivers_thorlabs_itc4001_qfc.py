"""Frequency converter on a Thorlabs ITC4001, against its pyvisa-sim file."""

from __future__ import annotations

import math

import pytest


@pytest.fixture
def qfc(make_sim):
    return make_sim("thorlabs_itc4001_qfc", name="qfc")


def test_constant_power_mode_at_connect(qfc) -> None:
    assert qfc.ask("SOUR:FUNC:MODE?") == "POW"


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("pump_power", 250.0),
        ("pump_current_limit", 0.75),
        ("pump_output", True),
        ("crystal_setpoint", 47.25),
        ("tec_output", True),
    ],
)
def test_parameter_round_trip(qfc, param: str, value: object) -> None:
    getattr(qfc, param).set(value)
    assert getattr(qfc, param).get() == pytest.approx(value)


def test_pump_power_is_sent_in_watts(qfc) -> None:
    qfc.pump_power.set(250.0)
    assert float(qfc.ask("SOUR:POW?")) == pytest.approx(0.25)


def test_measurements(qfc) -> None:
    assert qfc.pump_power_measured.get() == pytest.approx(299.8)
    assert qfc.get_crystal_temperature_c() == pytest.approx(45.012)


def test_converted_wavelength_nv_to_telecom(qfc) -> None:
    # 637 nm with a 1064 nm pump -> 1/(1/637 - 1/1064) = 1587.3 nm
    assert qfc.converted_wavelength_nm() == pytest.approx(1587.279, abs=1e-3)
    qfc.input_wavelength.set(780.0)
    qfc.pump_wavelength.set(1600.0)
    assert qfc.converted_wavelength_nm() == pytest.approx(1521.951, abs=1e-3)


def test_efficiency_model(qfc) -> None:
    qfc.max_efficiency.set(0.4)
    qfc.pump_power_at_max.set(300.0)
    qfc.phase_matching_temperature.set(45.0)
    qfc.temperature_acceptance.set(2.0)
    assert qfc.efficiency_model(300.0, 45.0) == pytest.approx(0.4)
    assert qfc.efficiency_model(75.0, 45.0) == pytest.approx(0.4 * 0.5)  # sin^2(pi/4)
    assert qfc.efficiency_model(300.0, 46.0) == pytest.approx(0.2, rel=1e-3)  # half width
    assert qfc.efficiency_model(0.0, 45.0) == 0.0


def test_frequency_converter_role(qfc) -> None:
    qfc.set_pump_power_mw(300.0)
    qfc.set_crystal_temperature_c(45.0)
    assert qfc.get_pump_power_mw() == pytest.approx(300.0)
    assert qfc.conversion_efficiency() == 0.0  # pump off
    qfc.set_pump_on(True)
    # measured 299.8 mW at 45.012 degC with the default calibration
    expected = 0.5 * math.sin(math.pi / 2 * math.sqrt(299.8 / 300.0)) ** 2
    x = 2 * 1.3916 * 0.012 / 2.0
    expected *= (math.sin(x) / x) ** 2
    assert qfc.conversion_efficiency() == pytest.approx(expected)


def test_safe_state_pump_off_tec_kept(qfc) -> None:
    qfc.set_pump_on(True)
    qfc.tec_output.set(True)
    qfc.safe_state()
    assert qfc.pump_output.get() is False
    assert qfc.tec_output.get() is True
