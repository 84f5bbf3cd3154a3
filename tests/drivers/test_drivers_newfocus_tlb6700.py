"""New Focus TLB-6700 (TLB-6704 head) against its pyvisa-sim file."""

from __future__ import annotations

import pytest
from pyvisa.constants import StatusCode
from pyvisa.errors import VisaIOError

from drivers import hal
from drivers.errors import (
    InstrumentError,
    InstrumentErrorQueueError,
    InstrumentIdentityError,
    InstrumentReplyError,
    InstrumentTimeoutError,
    InstrumentValueError,
)
from drivers.newfocus_tlb6700 import NewFocusTLB6700
from drivers.registry import drivers_for_role, lookup

DRIVER = "newfocus_tlb6700"


@pytest.fixture
def laser(make_sim) -> NewFocusTLB6700:
    return make_sim(DRIVER, name="laser_nv")


def test_identity(laser: NewFocusTLB6700) -> None:
    idn = laser.IDN()
    assert idn == {
        "vendor": "New Focus",
        "model": "6700",
        "serial": "SN0637",
        "firmware": "v2.4 03/19/14",
    }
    assert laser.display_name == "laser_nv (New Focus TLB-6700)"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("New_Focus 6700 v2.4 03/19/14 SN1012", ("NewFocus", "6700")),
        ("NewFocus TLB-6700 v2.4 31/09/23 SN12345", ("NewFocus", "TLB-6700")),
        ("New Focus 6700 v2.4", ("NewFocus", "6700")),
        ("ACME LASER-9000", ("ACME", "LASER-9000")),
        ("garbage", ("", "garbage")),
    ],
)
def test_identity_parsing(laser: NewFocusTLB6700, reply: str, expected: tuple[str, str]) -> None:
    assert laser.parse_identity(reply) == expected


def test_remote_control_at_connect(laser: NewFocusTLB6700) -> None:
    assert laser.control_mode.get() == "REM"


def test_local_control_can_be_kept(make_sim) -> None:
    assert make_sim(DRIVER, name="local", remote_control=False).control_mode.get() == "LOC"


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


def test_measured_values(laser: NewFocusTLB6700) -> None:
    assert laser.wavelength_actual.get() == pytest.approx(637.002)
    assert laser.power_actual.get() == pytest.approx(0.985)
    assert laser.current_actual.get() == pytest.approx(62.4)
    assert laser.wavelength_actual.unit == "nm"
    assert (laser.power_actual.unit, laser.current_actual.unit) == ("mW", "mA")


def test_measured_values_are_read_only(laser: NewFocusTLB6700) -> None:
    for param in (laser.wavelength_actual, laser.power_actual, laser.current_actual):
        assert not param.settable


def test_laser_role(laser: NewFocusTLB6700) -> None:
    assert isinstance(laser, hal.Laser)
    laser.set_wavelength_nm(637.25)
    assert laser.get_wavelength_nm() == pytest.approx(637.25)
    laser.set_power_mw(3.0)
    assert laser.power.get() == pytest.approx(3.0)
    assert laser.get_power_mw() == pytest.approx(3.0)
    laser.set_output(True)
    assert laser.is_output_on() is True
    laser.set_output(False)
    assert laser.is_output_on() is False


def test_power_in_constant_current_mode_is_refused(laser: NewFocusTLB6700) -> None:
    laser.power.set(1.5)
    laser.constant_power.set(False)
    with pytest.raises(InstrumentError) as info:
        laser.set_power_mw(4.0)
    message = str(info.value)
    assert message.startswith("laser_nv (New Focus TLB-6700): command 'SOURce:POWer:DIODe 4.00'")
    assert "constant-current mode" in message
    assert laser.power.get() == pytest.approx(1.5)  # nothing was sent


def test_registry_entry() -> None:
    entry = lookup(DRIVER)
    assert entry.cls is NewFocusTLB6700
    assert entry.role is hal.Laser
    assert entry.sim_file == "drivers.sims:newfocus_tlb6700.yaml"
    assert DRIVER in drivers_for_role(hal.Laser)


def test_safe_state_turns_the_diode_off(laser: NewFocusTLB6700) -> None:
    laser.power.set(5.0)
    laser.output.set(True)
    laser.safe_state()
    assert laser.output.get() is False
    assert laser.power.get() == pytest.approx(5.0)
    assert isinstance(laser, hal.SafeStateful)


def test_wrong_identity_is_refused() -> None:
    with pytest.raises(InstrumentIdentityError) as info:
        lookup(DRIVER).create("impostor", address="GPIB::9::INSTR", simulated=True)
    message = str(info.value)
    assert message.startswith("impostor (New Focus TLB-6700): command '*IDN?' wrong identity")
    assert "expected vendor 'NewFocus' model '6700'" in message
    assert "received 'New_Focus 6300 v1.2 11/05/09 SN0077'" in message


@pytest.mark.parametrize(
    ("action", "command"),
    [
        (lambda laser: laser.wavelength.get(), "SOURce:WAVElength?"),
        (lambda laser: laser.output.set(True), "OUTPut:STATe 1"),
    ],
)
def test_timeout_names_instrument_and_command(laser, mocker, action, command: str) -> None:
    mocker.patch.object(
        laser.visa_handle.visalib, "read", side_effect=VisaIOError(StatusCode.error_timeout)
    )
    with pytest.raises(InstrumentTimeoutError) as info:
        action(laser)
    message = str(info.value)
    assert message.startswith(f"laser_nv (New Focus TLB-6700): command {command!r} timed out")
    assert isinstance(info.value, TimeoutError)


def test_io_error_is_a_communication_error(laser, mocker) -> None:
    mocker.patch.object(
        laser.visa_handle.visalib, "read", side_effect=VisaIOError(StatusCode.error_connection_lost)
    )
    with pytest.raises(ConnectionError, match=r"laser_nv .*'OUTPut:STATe\?' failed"):
        laser.output.get()


def test_error_reply_to_a_set_command(laser: NewFocusTLB6700) -> None:
    laser.power.set(1.0)
    with pytest.raises(InstrumentReplyError) as info:
        laser.write("SOURce:POWer:DIODe 50")
    message = str(info.value)
    assert message.startswith(
        "laser_nv (New Focus TLB-6700): command 'SOURce:POWer:DIODe 50' refused"
    )
    assert "'201, VALUE OUT OF RANGE'" in message
    assert laser.power.get() == pytest.approx(1.0)
    laser.ask("*IDN?")  # the next command goes through
    assert laser.read_error_queue() == []


def test_unknown_command_is_refused_and_the_buffer_drained(laser: NewFocusTLB6700) -> None:
    with pytest.raises(InstrumentReplyError, match="116, SYNTAX ERROR"):
        laser.write("LASER:EXPLODE 1")
    assert laser.read_error_queue() == []


def test_error_buffer_is_read_after_ok(laser: NewFocusTLB6700, mocker) -> None:
    mocker.patch.object(laser, "ask_raw", side_effect=["OK", "902, KEY ENABLE OFF", "0, NO ERROR"])
    with pytest.raises(InstrumentErrorQueueError) as info:
        laser.output.set(True)
    message = str(info.value)
    assert message.startswith("laser_nv (New Focus TLB-6700): command 'OUTPut:STATe 1' refused")
    assert "902, KEY ENABLE OFF" in message


def test_error_reply_to_a_query(laser: NewFocusTLB6700, mocker) -> None:
    mocker.patch.object(
        laser,
        "ask_raw",
        side_effect=["116, SYNTAX ERROR", "126, WRONG NUM OF PARAMS", "0, NO ERROR"],
    )
    with pytest.raises(InstrumentReplyError) as info:
        laser.power.get()
    message = str(info.value)
    assert "command 'SOURce:POWer:DIODe?' refused: instrument replied '116, SYNTAX ERROR'" in (
        message
    )
    assert "error buffer reports 126, WRONG NUM OF PARAMS" in message


def test_unexpected_reply_to_a_set_command(laser: NewFocusTLB6700, mocker) -> None:
    mocker.patch.object(laser, "ask_raw", side_effect=["whatever", "0, NO ERROR"])
    with pytest.raises(InstrumentReplyError, match="instrument replied 'whatever'"):
        laser.write("OUTPut:TRACk 1")


def test_out_of_range_value_names_instrument_command_and_value(laser: NewFocusTLB6700) -> None:
    before = laser.power.get()
    with pytest.raises(InstrumentValueError) as info:
        laser.power.set(25)
    message = str(info.value)
    assert message.startswith(
        "laser_nv (New Focus TLB-6700): command 'SOURce:POWer:DIODe 25.00' refused"
    )
    assert "25 mW out of range for 'power', expected 0..10 mW" in message
    assert isinstance(info.value, ValueError)
    assert laser.power.get() == before  # nothing was sent


@pytest.mark.parametrize(
    ("param", "value", "text"),
    [
        ("wavelength", 1550, "1550 nm out of range for 'wavelength', expected 632.5..639 nm"),
        ("current", 150, "150 mA out of range for 'current', expected 0..100 mA"),
        ("power", -1, "-1 mW out of range for 'power', expected 0..10 mW"),
    ],
)
def test_out_of_range_setpoints(laser: NewFocusTLB6700, param: str, value: float, text: str):
    with pytest.raises(InstrumentValueError, match=text):
        getattr(laser, param).set(value)


def test_telecom_wavelength_through_the_role_is_refused(laser: NewFocusTLB6700) -> None:
    with pytest.raises(InstrumentValueError, match=r"'SOURce:WAVElength 1550.000' refused"):
        laser.set_wavelength_nm(1550.0)


def test_wavelength_range_is_a_constructor_argument(make_sim) -> None:
    laser = make_sim(DRIVER, name="narrow", wavelength_range_nm=(635.0, 638.0))
    laser.wavelength.set(636.0)
    with pytest.raises(InstrumentValueError, match="expected 635..638 nm"):
        laser.wavelength.set(634.0)
