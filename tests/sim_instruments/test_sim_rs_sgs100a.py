"""The simulated R&S SGS100A, driven by the real driver over the simulated VISA wire."""

from __future__ import annotations

from unittest.mock import MagicMock

import pytest

from drivers.errors import InstrumentErrorQueueError
from drivers.rs_sgs100a import RohdeSchwarzSGS100A
from sim_backend.instruments.protocols import MessageHandler
from sim_backend.instruments.sim_rs_sgs100a import SimRsSGS100A

ADDRESS = "TCPIP0::mw-a::inst0::INSTR"


@pytest.fixture
def sim(hooks: MagicMock) -> SimRsSGS100A:
    return SimRsSGS100A("mw", hooks=hooks)


@pytest.fixture
def mw(sim: SimRsSGS100A, connect) -> RohdeSchwarzSGS100A:
    return connect(RohdeSchwarzSGS100A, sim, ADDRESS, "mw")


def test_is_a_message_handler(sim: SimRsSGS100A) -> None:
    assert isinstance(sim, MessageHandler)


def test_identity_is_accepted(mw: RohdeSchwarzSGS100A) -> None:
    idn = mw.IDN()
    assert (idn["vendor"], idn["model"]) == ("Rohde&Schwarz", "SGS100A")


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("frequency", 2.877e9),
        ("power", -7.25),
        ("phase", 90.5),
        ("phase", -45.0),
        ("output", True),
        ("output", False),
        ("iq_modulation", True),
        ("pulse_modulation", True),
        ("pulse_source", "EXT"),
        ("pulse_source", "INT"),
        ("reference_source", "EXT"),
        ("reference_source", "INT"),
    ],
)
def test_parameter_round_trip(mw: RohdeSchwarzSGS100A, param: str, value: object) -> None:
    getattr(mw, param).set(value)
    expected = pytest.approx(value) if isinstance(value, float) else value
    assert getattr(mw, param).get() == expected


def test_settings_are_the_attributes_the_lab_reads(
    mw: RohdeSchwarzSGS100A, sim: SimRsSGS100A
) -> None:
    mw.set_frequency_hz(1.5e9)
    mw.set_power_dbm(3.0)
    mw.set_output(True)
    mw.set_modulation(iq=True, pulse=False)
    assert (sim.frequency_hz, sim.power_dbm) == (1.5e9, 3.0)
    assert (sim.output_on, sim.iq_on, sim.pulse_modulation_on) == (True, True, False)
    assert mw.get_frequency_hz() == pytest.approx(1.5e9)
    assert mw.get_power_dbm() == pytest.approx(3.0)
    assert mw.is_output_on() is True


def test_units_are_understood(mw: RohdeSchwarzSGS100A, sim: SimRsSGS100A) -> None:
    mw.write("SOURCE:FREQUENCY:CW 2.87GHz")
    mw.write("POW -5dBm")
    assert sim.frequency_hz == pytest.approx(2.87e9)
    assert sim.power_dbm == -5.0


def test_out_of_range_power_goes_to_the_error_queue(
    mw: RohdeSchwarzSGS100A, sim: SimRsSGS100A
) -> None:
    mw.power.set(-3.0)
    with pytest.raises(InstrumentErrorQueueError) as info:
        mw.write("SOUR:POW 40")
    message = str(info.value)
    assert message.startswith("mw (R&S SGS100A): command 'SOUR:POW 40' refused")
    assert "-222" in message
    assert sim.power_dbm == -3.0
    assert mw.read_error_queue() == []


@pytest.mark.parametrize(
    ("command", "code"),
    [
        ("SOUR:FREQ 20e9", "-222"),
        ("SOUR:FREQ 100kHz", "-222"),
        ("SOUR:PHAS 400", "-222"),
        ("SOUR:PULM:SOUR AUTO", "-224"),
        ("SOUR:FREQ 1e9V", "-131"),
        ("SOUR:AM:STAT 1", "-113"),
    ],
)
def test_bad_commands_are_reported(mw: RohdeSchwarzSGS100A, command: str, code: str) -> None:
    with pytest.raises(InstrumentErrorQueueError, match=code):
        mw.write(command)


def test_frequency_option_sets_the_range(hooks: MagicMock) -> None:
    sim = SimRsSGS100A("mw6", hooks=hooks, frequency_range_hz=(1e6, 6e9))
    sim.handle("SOUR:FREQ 8e9")
    assert sim.handle("SYST:ERR?").startswith("-222")
    sim.handle("SOUR:FREQ 5.5e9")
    assert sim.handle("SYST:ERR?").startswith("0,")
    assert sim.frequency_hz == 5.5e9


def test_handler_never_raises_on_garbage(sim: SimRsSGS100A) -> None:
    for message in ("", "SOUR:FREQ", "SOUR:FREQ abc", "OUTP 1,2", "\x00\xff"):
        sim.handle(message)
    assert sim.handle("SYST:ERR?") != '0,"No error"'


def test_settings_changed_is_called_on_changes_only(
    mw: RohdeSchwarzSGS100A, hooks: MagicMock
) -> None:
    hooks.settings_changed.reset_mock()
    mw.get_frequency_hz()
    mw.is_output_on()
    hooks.settings_changed.assert_not_called()
    mw.set_frequency_hz(3e9)
    hooks.settings_changed.assert_called_with("mw")
    hooks.settings_changed.reset_mock()
    mw.set_output(True)
    hooks.settings_changed.assert_called_with("mw")


def test_safe_state_output_and_modulation_off(mw: RohdeSchwarzSGS100A, sim: SimRsSGS100A) -> None:
    mw.set_frequency_hz(2e9)
    mw.output.set(True)
    mw.set_modulation(iq=True, pulse=True)
    mw.safe_state()
    assert (sim.output_on, sim.iq_on, sim.pulse_modulation_on) == (False, False, False)
    assert sim.frequency_hz == 2e9  # kept
    assert mw.output.get() is False
