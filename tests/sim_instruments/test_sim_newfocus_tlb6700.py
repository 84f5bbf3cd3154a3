"""The simulated New Focus TLB-6700, driven by the real driver over the simulated VISA wire."""

from __future__ import annotations

from collections.abc import Iterator
from unittest.mock import MagicMock

import pytest
import pyvisa

from drivers import hal
from drivers.errors import (
    InstrumentError,
    InstrumentErrorQueueError,
    InstrumentReplyError,
    InstrumentTimeoutError,
)
from drivers.newfocus_tlb6700 import NewFocusTLB6700
from sim_backend.instruments.protocols import MessageHandler
from sim_backend.instruments.registry import simulated_model
from sim_backend.instruments.sim_newfocus_tlb6700 import SimNewFocusTLB6700
from sim_backend.instruments.visa_library import SimulatedVisaLibrary

ADDRESS = "USB0::0x104D::0x100A::SN0637::RAW"  # Newport USB vendor / Velocity product ID


@pytest.fixture
def sim(hooks: MagicMock) -> SimNewFocusTLB6700:
    return SimNewFocusTLB6700("laser_nv", hooks=hooks)


@pytest.fixture
def library(sim: SimNewFocusTLB6700) -> SimulatedVisaLibrary:
    library = SimulatedVisaLibrary()
    library.attach(ADDRESS, sim)
    return library


@pytest.fixture
def laser(library: SimulatedVisaLibrary) -> Iterator[NewFocusTLB6700]:
    rm = pyvisa.ResourceManager(library)
    driver = NewFocusTLB6700("laser_nv", resource=rm.open_resource(ADDRESS))
    yield driver
    driver.close()
    rm.close()


def test_is_a_message_handler(sim: SimNewFocusTLB6700) -> None:
    assert isinstance(sim, MessageHandler)
    assert sim.termination == "\r\n"
    assert simulated_model("newfocus_tlb6700") is SimNewFocusTLB6700


def test_identity_is_accepted(laser: NewFocusTLB6700) -> None:
    idn = laser.IDN()
    assert (idn["vendor"], idn["model"], idn["serial"]) == ("New Focus", "6700", "SN0637")
    assert isinstance(laser, hal.Laser)


def test_remote_control_at_connect(laser: NewFocusTLB6700, sim: SimNewFocusTLB6700) -> None:
    assert sim.remote is True
    assert laser.control_mode.get() == "REM"
    laser.control_mode.set("LOC")
    assert sim.remote is False


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("wavelength", 637.219),
        ("wavelength", 632.5),
        ("wavelength", 639.0),
        ("power", 2.5),
        ("power", 0.0),
        ("current", 71.5),
        ("constant_power", False),
        ("constant_power", True),
        ("output", True),
        ("output", False),
        ("track", True),
        ("track", False),
        ("control_mode", "LOC"),
        ("control_mode", "REM"),
    ],
)
def test_parameter_round_trip(laser: NewFocusTLB6700, param: str, value: object) -> None:
    getattr(laser, param).set(value)
    assert getattr(laser, param).get() == pytest.approx(value)


def test_settings_are_the_attributes_the_lab_reads(
    laser: NewFocusTLB6700, sim: SimNewFocusTLB6700
) -> None:
    laser.set_wavelength_nm(637.22)
    laser.set_power_mw(2.0)
    assert sim.output_on is False
    assert sim.emitted_power_mw == 0.0
    laser.set_output(True)
    assert sim.wavelength_nm == pytest.approx(637.22)
    assert sim.power_mw == pytest.approx(2.0)
    assert sim.output_on is True
    assert sim.emitted_power_mw == pytest.approx(2.0)
    laser.track.set(True)
    assert sim.track is True


def test_laser_role(laser: NewFocusTLB6700) -> None:
    laser.set_wavelength_nm(636.5)
    assert laser.get_wavelength_nm() == pytest.approx(636.5)
    laser.set_power_mw(4.25)
    assert laser.get_power_mw() == pytest.approx(4.25)
    laser.set_output(True)
    assert laser.is_output_on() is True


def test_measured_values_follow_the_diode(laser: NewFocusTLB6700, sim: SimNewFocusTLB6700) -> None:
    laser.wavelength.set(638.125)
    laser.power.set(3.0)
    assert laser.power_actual.get() == 0.0
    assert laser.current_actual.get() == 0.0
    assert laser.wavelength_actual.get() == pytest.approx(638.125)
    laser.output.set(True)
    assert laser.power_actual.get() == pytest.approx(3.0)
    # constant power: the current follows the light-current curve, I_th + P / eta
    expected_ma = sim.threshold_current_ma + 3.0 / sim.slope_efficiency_mw_per_ma
    assert laser.current_actual.get() == pytest.approx(expected_ma, abs=0.05)


def test_constant_current_mode_follows_the_light_current_curve(
    laser: NewFocusTLB6700, sim: SimNewFocusTLB6700
) -> None:
    laser.constant_power.set(False)
    laser.current.set(80.0)
    laser.output.set(True)
    # P = eta * (I - I_th) = 0.2 mW/mA * (80 - 30) mA
    assert sim.power_mw == pytest.approx(10.0)
    assert laser.power_actual.get() == pytest.approx(10.0)
    assert laser.current_actual.get() == pytest.approx(80.0)
    laser.current.set(20.0)  # below threshold: no laser light
    assert sim.power_mw == 0.0


def test_power_setpoint_is_refused_in_constant_current_mode(
    laser: NewFocusTLB6700, sim: SimNewFocusTLB6700
) -> None:
    laser.constant_power.set(False)
    with pytest.raises(InstrumentError, match="constant-current mode"):
        laser.set_power_mw(5.0)
    assert sim.power_setpoint_mw == 1.0


def test_mode_change_turns_the_diode_off(laser: NewFocusTLB6700, sim: SimNewFocusTLB6700) -> None:
    laser.output.set(True)
    with pytest.raises(InstrumentErrorQueueError) as info:
        laser.constant_power.set(False)
    message = str(info.value)
    assert message.startswith("laser_nv (New Focus TLB-6700): command 'SOURce:CPOWer 0' refused")
    assert "514, LDD MODE CHANGE" in message
    assert sim.output_on is False
    assert sim.constant_power is False
    assert laser.read_error_queue() == []
    laser.constant_power.set(True)  # with the diode off: no error


def test_key_switch_off_keeps_the_diode_off(hooks: MagicMock) -> None:
    sim = SimNewFocusTLB6700("laser_key", hooks=hooks, key_enabled=False)
    library = SimulatedVisaLibrary()
    library.attach(ADDRESS, sim)
    rm = pyvisa.ResourceManager(library)
    laser = NewFocusTLB6700("laser_key", resource=rm.open_resource(ADDRESS))
    try:
        with pytest.raises(InstrumentErrorQueueError, match="902, KEY ENABLE OFF"):
            laser.set_output(True)
        assert sim.output_on is False
        assert laser.is_output_on() is False
    finally:
        laser.close()
        rm.close()


def test_out_of_range_value_is_an_error_reply(
    laser: NewFocusTLB6700, sim: SimNewFocusTLB6700
) -> None:
    with pytest.raises(InstrumentReplyError) as info:
        laser.write("SOURce:POWer:DIODe 50")
    message = str(info.value)
    assert message.startswith(
        "laser_nv (New Focus TLB-6700): command 'SOURce:POWer:DIODe 50' refused"
    )
    assert "'201, VALUE OUT OF RANGE'" in message
    assert sim.power_setpoint_mw == 1.0
    assert laser.read_error_queue() == []  # drained by the driver
    laser.ask("*IDN?")  # the next command goes through


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("SOURce:WAVElength 1550", "201, VALUE OUT OF RANGE"),
        ("SOUR:WAVE 632.4", "201, VALUE OUT OF RANGE"),
        ("SOURce:CURRent:DIODe 150", "201, VALUE OUT OF RANGE"),
        ("OUTPut:STATe MAYBE", "201, VALUE OUT OF RANGE"),
        ("SYSTem:MCONtrol SOMETIMES", "201, VALUE OUT OF RANGE"),
        ("OUTPut:STATe", "126, WRONG NUM OF PARAMS"),
        ("OUTPut:TRACk 1,2", "126, WRONG NUM OF PARAMS"),
        ("SOURce:POWer:DIODe 5furlongs", "116, SYNTAX ERROR"),
        ("SOURce:WAVElength 637;OUTPut:STATe 1", "116, SYNTAX ERROR"),
        ("LASER:EXPLODE 1", "116, SYNTAX ERROR"),
        ("SYSTem:ERRor?", "116, SYNTAX ERROR"),  # SCPI's queue query is not this model's
    ],
)
def test_bad_commands_are_error_replies(laser: NewFocusTLB6700, command: str, reason: str) -> None:
    with pytest.raises(InstrumentReplyError, match=reason):
        laser.write(command)
    assert laser.read_error_queue() == []


def test_bad_query_is_an_error_reply(laser: NewFocusTLB6700) -> None:
    with pytest.raises(InstrumentReplyError, match=r"'OUTPut:STATe\? 1' refused.*126"):
        laser.ask("OUTPut:STATe? 1")


def test_short_forms_units_and_max(laser: NewFocusTLB6700, sim: SimNewFocusTLB6700) -> None:
    laser.write("sour:wave 636.75nm")
    laser.write("SOUR:POW:DIOD MAX")
    laser.write("outp:stat on")
    laser.write("SOURce:CURRent:DIODe 60mA;")  # a trailing ';' is accepted
    assert sim.wavelength_nm == pytest.approx(636.75)
    assert sim.power_setpoint_mw == pytest.approx(sim.power_range_mw[1])
    assert sim.output_on is True
    assert sim.current_setpoint_ma == pytest.approx(60.0)
    assert laser.ask("SENSe:WAVElength") == "636.750"  # also answered without '?'


def test_error_buffer_holds_entries_until_read(sim: SimNewFocusTLB6700) -> None:
    assert sim.handle("ERRSTR?") == "0, NO ERROR"
    assert sim.handle("SOURce:WAVElength 700") == "201, VALUE OUT OF RANGE"
    assert sim.handle("NOPE") == "116, SYNTAX ERROR"
    assert sim.handle("ERRSTR?") == "201, VALUE OUT OF RANGE"
    assert sim.handle("ERRSTR?") == "116, SYNTAX ERROR"
    assert sim.handle("ERRSTR?") == "0, NO ERROR"
    for _ in range(40):
        sim.handle("NOPE")
    assert len(sim.errors) == 16


def test_handler_never_raises_on_garbage(sim: SimNewFocusTLB6700) -> None:
    for message in ("", ";", "?", "\x00\xff", "SOUR:WAVE nan", "SOUR:WAVE 1e999", "*IDN? x"):
        reply = sim.handle(message)
        assert reply != "OK"
        assert reply[0].isdigit()
    assert sim.handle("ERRSTR?") != "0, NO ERROR"


def test_variant_ranges(hooks: MagicMock) -> None:
    sim = SimNewFocusTLB6700(
        "laser_b",
        hooks=hooks,
        wavelength_range_nm=[635.0, 638.0],  # as a station file's init gives it
        power_range_mw=(0.0, 5.0),
        current_range_ma=(0.0, 80.0),
    )
    assert sim.handle("SOURce:WAVElength 638.5") == "201, VALUE OUT OF RANGE"
    assert sim.handle("SOURce:WAVElength 637.5") == "OK"
    assert sim.wavelength_nm == pytest.approx(637.5)
    assert sim.handle("SOURce:POWer:DIODe 6") == "201, VALUE OUT OF RANGE"
    assert sim.handle("SOURce:CURRent:DIODe MAX") == "OK"
    assert sim.current_setpoint_ma == pytest.approx(80.0)


def test_settings_changed_is_called_on_changes_only(
    laser: NewFocusTLB6700, hooks: MagicMock
) -> None:
    hooks.settings_changed.reset_mock()
    laser.wavelength.get()
    laser.power_actual.get()
    laser.is_output_on()
    hooks.settings_changed.assert_not_called()
    with pytest.raises(InstrumentReplyError):
        laser.write("SOURce:WAVElength 700")
    hooks.settings_changed.assert_not_called()
    laser.wavelength.set(637.5)
    hooks.settings_changed.assert_called_with("laser_nv")
    hooks.settings_changed.reset_mock()
    laser.output.set(True)
    hooks.settings_changed.assert_called_with("laser_nv")


def test_safe_state_turns_the_diode_off(laser: NewFocusTLB6700, sim: SimNewFocusTLB6700) -> None:
    laser.power.set(5.0)
    laser.output.set(True)
    laser.safe_state()
    assert sim.output_on is False
    assert sim.emitted_power_mw == 0.0
    assert laser.output.get() is False
    assert laser.power.get() == pytest.approx(5.0)


def test_timeout_names_instrument_and_command(
    laser: NewFocusTLB6700, library: SimulatedVisaLibrary, sim: SimNewFocusTLB6700
) -> None:
    library.inject_timeout(ADDRESS, reads=4)  # the first try and its 3 retries
    laser.resilience.sleep = lambda seconds: None
    with pytest.raises(InstrumentTimeoutError, match=r"laser_nv .*'OUTPut:STATe 1' timed out"):
        laser.output.set(True)
    assert sim.output_on is True  # the command reached the instrument; its OK was lost
    laser.safe_state()
    assert sim.output_on is False


def test_lost_connection_is_a_communication_error(
    laser: NewFocusTLB6700, library: SimulatedVisaLibrary
) -> None:
    library.drop_connection(ADDRESS)  # and reconnecting fails until restored
    laser.resilience.sleep = lambda seconds: None
    with pytest.raises(ConnectionError, match=r"laser_nv .*'SOURce:WAVElength\?' failed"):
        laser.wavelength.get()
    library.restore_connection(ADDRESS)
