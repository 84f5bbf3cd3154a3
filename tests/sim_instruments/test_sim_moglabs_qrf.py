"""The simulated MOGLabs QRF, driven by the real driver over the simulated VISA wire."""

from __future__ import annotations

from unittest.mock import MagicMock

import pytest

from drivers.errors import InstrumentReplyError
from drivers.moglabs_qrf import MOGLabsQRF
from sim_backend.instruments.protocols import MessageHandler
from sim_backend.instruments.sim_moglabs_qrf import SimMoglabsQRF

ADDRESS = "TCPIP0::aom-a::7802::SOCKET"


@pytest.fixture
def sim(hooks: MagicMock) -> SimMoglabsQRF:
    return SimMoglabsQRF("aom", hooks=hooks)


@pytest.fixture
def qrf(sim: SimMoglabsQRF, connect) -> MOGLabsQRF:
    return connect(MOGLabsQRF, sim, ADDRESS, "aom")


def test_is_a_message_handler(sim: SimMoglabsQRF) -> None:
    assert isinstance(sim, MessageHandler)
    assert sim.termination == "\r\n"


def test_identity_from_info(qrf: MOGLabsQRF) -> None:
    idn = qrf.IDN()
    assert idn["vendor"] == "MOGLabs"
    assert "QRF" in idn["firmware"]


@pytest.mark.parametrize("channel", [1, 2, 3, 4])
@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("frequency", 110.25),
        ("power", 27.5),
        ("power_limit", 31.0),
        ("phase", 45.5),
        ("output", True),
        ("output", False),
    ],
)
def test_channel_round_trip(qrf: MOGLabsQRF, channel: int, param: str, value: object) -> None:
    ch = qrf.channel(channel)
    getattr(ch, param).set(value)
    assert getattr(ch, param).get() == pytest.approx(value)


def test_settings_are_the_attributes_the_lab_reads(qrf: MOGLabsQRF, sim: SimMoglabsQRF) -> None:
    qrf.ch3.frequency.set(200.0)
    qrf.set_drive_power_dbm(25.0, channel=3)
    qrf.ch3.phase.set(90.0)
    qrf.set_open(True, channel=3)
    state = sim.channels[3]
    assert (state.frequency_mhz, state.power_dbm, state.phase_deg) == (200.0, 25.0, 90.0)
    assert state.rf_on is True and state.amplifier_on is True
    assert sim.is_open(3) is True
    assert [sim.is_open(n) for n in (1, 2, 4)] == [False] * 3
    assert sim.channels[1].frequency_mhz == 80.0  # channels are independent


def test_optical_switch_role(qrf: MOGLabsQRF) -> None:
    qrf.set_drive_power_dbm(25.0, channel=2)
    qrf.set_open(True, channel=2)
    assert qrf.get_drive_power_dbm(channel=2) == pytest.approx(25.0)
    assert qrf.is_open(channel=2) is True
    assert qrf.is_open(channel=1) is False


def test_signal_without_amplifier_is_not_open(qrf: MOGLabsQRF, sim: SimMoglabsQRF) -> None:
    qrf.write("ON,1,SIG")
    assert sim.channels[1].rf_on is True
    assert sim.is_open(1) is False
    assert qrf.is_open(channel=1) is False
    qrf.write("ON,1,POW")
    assert qrf.is_open(channel=1) is True
    qrf.write("OFF,1,POW")
    assert sim.is_open(1) is False and sim.channels[1].rf_on is True


def test_power_is_clamped_to_the_limit(qrf: MOGLabsQRF, sim: SimMoglabsQRF) -> None:
    qrf.ch1.power_limit.set(20.0)
    qrf.ch1.power.set(25.0)
    assert qrf.ch1.power.get() == pytest.approx(20.0)
    qrf.ch1.power_limit.set(10.0)
    assert sim.channels[1].power_dbm == pytest.approx(10.0)


def test_units_are_understood(qrf: MOGLabsQRF, sim: SimMoglabsQRF) -> None:
    qrf.write("FREQ,2,120000kHz")
    qrf.write("POW,2,100mW")
    qrf.write("PHASE,2,3.14159265rad")
    assert sim.channels[2].frequency_mhz == pytest.approx(120.0)
    assert sim.channels[2].power_dbm == pytest.approx(20.0)
    assert sim.channels[2].phase_deg == pytest.approx(180.0, abs=1e-5)


def test_out_of_range_value_is_an_error_reply(qrf: MOGLabsQRF, sim: SimMoglabsQRF) -> None:
    with pytest.raises(InstrumentReplyError) as info:
        qrf.write("POW,1,40dBm")
    message = str(info.value)
    assert message.startswith("aom (MOGLabs QRF): command 'POW,1,40dBm' refused")
    assert "ERR: power out of range" in message
    assert sim.channels[1].power_dbm == 0.0
    qrf.ask("INFO")  # the next command goes through


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("FREQ,1,5MHz", "frequency out of range"),
        ("PHASE,1,400deg", "phase out of range"),
        ("FREQ,5,80MHz", "invalid channel 5"),
        ("FREQ,1,eightyMHz", "invalid frequency"),
        ("POW,1,3furlongs", "invalid power"),
        ("ON,1,LASER", "invalid target"),
        ("HELLO", "Command not defined"),
    ],
)
def test_bad_commands_are_error_replies(qrf: MOGLabsQRF, command: str, reason: str) -> None:
    with pytest.raises(InstrumentReplyError, match=reason):
        qrf.write(command)


def test_handler_never_raises_on_garbage(sim: SimMoglabsQRF) -> None:
    for message in ("", ",", "FREQ", "FREQ,,", "POW,1,-inf", "STATUS,1,2,3", "\x00\xff"):
        assert sim.handle(message).startswith("ERR")


def test_status_reply(sim: SimMoglabsQRF) -> None:
    assert sim.handle("ON,4,ALL") == "OK"
    assert sim.handle("STATUS,4").startswith("SIG: on, POW: on")


def test_settings_changed_is_called_on_changes_only(qrf: MOGLabsQRF, hooks: MagicMock) -> None:
    hooks.settings_changed.reset_mock()
    qrf.ch1.frequency.get()
    qrf.is_open(channel=1)
    hooks.settings_changed.assert_not_called()
    qrf.ch1.frequency.set(90.0)
    hooks.settings_changed.assert_called_with("aom")
    hooks.settings_changed.reset_mock()
    qrf.set_open(True, channel=1)
    hooks.settings_changed.assert_called_with("aom")


def test_safe_state_switches_every_channel_off(qrf: MOGLabsQRF, sim: SimMoglabsQRF) -> None:
    for n in (1, 2, 3, 4):
        qrf.set_open(True, channel=n)
    qrf.safe_state()
    assert [sim.is_open(n) for n in (1, 2, 3, 4)] == [False] * 4
    assert [qrf.is_open(channel=n) for n in (1, 2, 3, 4)] == [False] * 4
