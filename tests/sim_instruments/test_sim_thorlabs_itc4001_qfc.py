"""The simulated Thorlabs ITC4001 (frequency converter), driven by the real driver over the
simulated VISA wire."""

from __future__ import annotations

import math
from unittest.mock import MagicMock

import pytest

from drivers.errors import InstrumentErrorQueueError
from drivers.thorlabs_itc4001_qfc import ThorlabsITC4001FrequencyConverter
from sim_backend.instruments.protocols import MessageHandler
from sim_backend.instruments.sim_thorlabs_itc4001_qfc import SimThorlabsITC4001QFC

ADDRESS = "USB0::0x1313::0x8049::M00512345::INSTR"


@pytest.fixture
def sim(hooks: MagicMock) -> SimThorlabsITC4001QFC:
    return SimThorlabsITC4001QFC("qfc", hooks=hooks, ambient_temperature_c=21.5)


@pytest.fixture
def qfc(sim: SimThorlabsITC4001QFC, connect) -> ThorlabsITC4001FrequencyConverter:
    return connect(ThorlabsITC4001FrequencyConverter, sim, ADDRESS, "qfc")


def test_is_a_message_handler(sim: SimThorlabsITC4001QFC) -> None:
    assert isinstance(sim, MessageHandler)


def test_identity_is_accepted(qfc: ThorlabsITC4001FrequencyConverter) -> None:
    idn = qfc.IDN()
    assert (idn["vendor"], idn["model"]) == ("Thorlabs", "ITC4001")


def test_constant_power_mode_at_connect(
    qfc: ThorlabsITC4001FrequencyConverter, sim: SimThorlabsITC4001QFC
) -> None:
    assert qfc.ask("SOUR:FUNC:MODE?") == "POW"
    assert sim.ld_mode == "POW"


def test_empty_error_queue_reads_like_an_itc(sim: SimThorlabsITC4001QFC) -> None:
    assert sim.handle("SYST:ERR?") == '+0,"No error"'


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("pump_power", 250.0),
        ("pump_current_limit", 0.75),
        ("pump_output", True),
        ("pump_output", False),
        ("crystal_setpoint", 47.25),
        ("tec_output", True),
        ("tec_output", False),
    ],
)
def test_parameter_round_trip(
    qfc: ThorlabsITC4001FrequencyConverter, param: str, value: object
) -> None:
    getattr(qfc, param).set(value)
    assert getattr(qfc, param).get() == pytest.approx(value)


def test_pump_power_is_sent_in_watts(
    qfc: ThorlabsITC4001FrequencyConverter, sim: SimThorlabsITC4001QFC
) -> None:
    qfc.pump_power.set(250.0)
    assert float(qfc.ask("SOUR:POW?")) == pytest.approx(0.25)
    assert sim.pump_power_mw == pytest.approx(250.0)


def test_settings_are_the_attributes_the_lab_reads(
    qfc: ThorlabsITC4001FrequencyConverter, sim: SimThorlabsITC4001QFC
) -> None:
    qfc.set_pump_power_mw(300.0)
    qfc.set_crystal_temperature_c(45.0)
    qfc.set_pump_on(True)
    qfc.tec_output.set(True)
    qfc.pump_current_limit.set(0.8)
    assert (sim.pump_on, sim.pump_power_mw) == (True, pytest.approx(300.0))
    assert (sim.tec_on, sim.crystal_temperature_c) == (True, pytest.approx(45.0))
    assert sim.pump_current_limit_a == pytest.approx(0.8)


def test_readbacks_follow_the_regulation(
    qfc: ThorlabsITC4001FrequencyConverter, sim: SimThorlabsITC4001QFC
) -> None:
    qfc.set_pump_power_mw(300.0)
    qfc.crystal_setpoint.set(45.0)  # the setpoint alone, TEC still off
    assert qfc.pump_power_measured.get() == 0.0  # pump off
    assert qfc.get_crystal_temperature_c() == pytest.approx(21.5)  # TEC off: ambient
    qfc.set_pump_on(True)
    qfc.set_crystal_temperature_c(45.0)  # the HAL method holds the crystal: TEC on
    assert qfc.tec_output.get() is True
    assert qfc.pump_power_measured.get() == pytest.approx(300.0)
    assert qfc.get_crystal_temperature_c() == pytest.approx(45.0)
    assert sim.pump_power_measured_mw == pytest.approx(300.0)
    assert sim.crystal_temperature_measured_c == pytest.approx(45.0)
    qfc.write("SOUR:FUNC:MODE CURR")  # constant current at the (unset) 0 A setpoint
    assert qfc.pump_power_measured.get() == 0.0


def test_frequency_converter_role(qfc: ThorlabsITC4001FrequencyConverter) -> None:
    qfc.set_pump_power_mw(75.0)
    qfc.set_crystal_temperature_c(45.0)
    qfc.tec_output.set(True)
    assert qfc.get_pump_power_mw() == pytest.approx(75.0)
    assert qfc.conversion_efficiency() == 0.0  # pump off
    qfc.set_pump_on(True)
    assert qfc.conversion_efficiency() == pytest.approx(0.5 * math.sin(math.pi / 4) ** 2)


def test_out_of_range_temperature_goes_to_the_error_queue(
    qfc: ThorlabsITC4001FrequencyConverter, sim: SimThorlabsITC4001QFC
) -> None:
    with pytest.raises(InstrumentErrorQueueError) as info:
        qfc.write("SOUR2:TEMP 400")
    message = str(info.value)
    assert message.startswith("qfc (Thorlabs ITC4001 (QFC)): command 'SOUR2:TEMP 400' refused")
    assert "-222" in message
    assert sim.crystal_temperature_c == 25.0
    assert qfc.read_error_queue() == []


@pytest.mark.parametrize(
    ("command", "code"),
    [
        ("SOUR:POW 2", "-222"),
        ("SOUR:POW -0.1", "-222"),
        ("SOUR:CURR:LIM 1.5", "-222"),
        ("SOUR:FUNC:MODE VOLT", "-224"),
        ("SOUR2:POW 0.1", "-114"),
        ("SOUR:TEMP 30", "-114"),
        ("OUTP3:STAT 1", "-114"),
        ("MEAS:POW2", "-113"),
    ],
)
def test_bad_commands_are_reported(
    qfc: ThorlabsITC4001FrequencyConverter, command: str, code: str
) -> None:
    with pytest.raises(InstrumentErrorQueueError, match=code):
        qfc.write(command)


def test_pump_limit_is_the_instruments(hooks: MagicMock) -> None:
    sim = SimThorlabsITC4001QFC("qfc2", hooks=hooks, pump_power_max_w=0.2)
    sim.handle("SOUR:POW 0.25")
    assert sim.handle("SYST:ERR?").startswith("-222")
    assert sim.pump_power_mw == 0.0


def test_handler_never_raises_on_garbage(sim: SimThorlabsITC4001QFC) -> None:
    for message in ("", "SOUR:POW", "SOUR:POW abc", "OUTP:STAT 1,2", "\x00\xff"):
        sim.handle(message)
    assert sim.handle("SYST:ERR?") != '+0,"No error"'


def test_settings_changed_is_called_on_changes_only(
    qfc: ThorlabsITC4001FrequencyConverter, hooks: MagicMock
) -> None:
    hooks.settings_changed.reset_mock()
    qfc.pump_power.get()
    qfc.pump_power_measured.get()
    qfc.get_crystal_temperature_c()
    hooks.settings_changed.assert_not_called()
    qfc.set_pump_on(True)
    hooks.settings_changed.assert_called_with("qfc")
    hooks.settings_changed.reset_mock()
    qfc.set_crystal_temperature_c(40.0)
    hooks.settings_changed.assert_called_with("qfc")


def test_safe_state_pump_off_tec_kept(
    qfc: ThorlabsITC4001FrequencyConverter, sim: SimThorlabsITC4001QFC
) -> None:
    qfc.set_pump_on(True)
    qfc.tec_output.set(True)
    qfc.safe_state()
    assert (sim.pump_on, sim.tec_on) == (False, True)
    assert qfc.pump_output.get() is False
    assert qfc.tec_output.get() is True
