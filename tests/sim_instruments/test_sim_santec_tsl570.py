"""The simulated Santec TSL-570, driven by the real driver over the simulated VISA wire."""

from __future__ import annotations

from unittest.mock import MagicMock

import pytest

from drivers.errors import InstrumentErrorQueueError
from drivers.santec_tsl570 import SantecTSL570
from sim_backend.instruments.protocols import MessageHandler
from sim_backend.instruments.sim_santec_tsl570 import POWER_MONITOR_FLOOR_DBM, SimSantecTSL570

ADDRESS = "TCPIP0::laser-a::5000::SOCKET"


@pytest.fixture
def sim(hooks: MagicMock) -> SimSantecTSL570:
    return SimSantecTSL570("laser_a", hooks=hooks)


@pytest.fixture
def laser(sim: SimSantecTSL570, connect) -> SantecTSL570:
    return connect(SantecTSL570, sim, ADDRESS, "laser_a")


def test_is_a_message_handler(sim: SimSantecTSL570) -> None:
    assert isinstance(sim, MessageHandler)
    assert sim.termination == "\r"


def test_identity_is_accepted(laser: SantecTSL570) -> None:
    idn = laser.IDN()
    assert (idn["vendor"], idn["model"]) == ("SANTEC", "TSL-570")


def test_units_fixed_at_connect(laser: SantecTSL570, sim: SimSantecTSL570) -> None:
    assert laser.ask(":WAV:UNIT?") == "0"
    assert laser.ask(":POW:UNIT?") == "0"
    assert (sim.wavelength_unit, sim.power_unit) == (0, 0)


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("wavelength", 1560.1234),
        ("frequency", 192.17531),
        ("power", -3.5),
        ("output", True),
        ("output", False),
        ("coherence_control", True),
        ("coherence_control", False),
    ],
)
def test_parameter_round_trip(laser: SantecTSL570, param: str, value: object) -> None:
    getattr(laser, param).set(value)
    assert getattr(laser, param).get() == pytest.approx(value)


def test_settings_are_the_attributes_the_lab_reads(
    laser: SantecTSL570, sim: SimSantecTSL570
) -> None:
    laser.set_wavelength_nm(1550.5)
    laser.set_power_mw(10.0)
    laser.set_output(True)
    assert sim.wavelength_nm == pytest.approx(1550.5)
    assert sim.power_mw == pytest.approx(10.0)
    assert sim.power_dbm == pytest.approx(10.0)
    assert sim.output_on is True
    assert sim.emitted_power_mw == pytest.approx(10.0)
    laser.frequency.set(193.0)
    assert sim.wavelength_nm == pytest.approx(299_792.458 / 193.0)


def test_laser_role(laser: SantecTSL570) -> None:
    laser.set_wavelength_nm(1550.5)
    assert laser.get_wavelength_nm() == pytest.approx(1550.5)
    laser.set_power_mw(2.0)
    assert laser.get_power_mw() == pytest.approx(2.0, rel=1e-3)
    laser.set_output(True)
    assert laser.is_output_on() is True


def test_measured_power_follows_the_diode(laser: SantecTSL570) -> None:
    laser.power.set(4.25)
    assert laser.power_actual.get() == pytest.approx(POWER_MONITOR_FLOOR_DBM)
    laser.output.set(True)
    assert laser.power_actual.get() == pytest.approx(4.25)


def test_out_of_range_power_goes_to_the_error_queue(
    laser: SantecTSL570, sim: SimSantecTSL570
) -> None:
    laser.power.set(1.0)
    with pytest.raises(InstrumentErrorQueueError) as info:
        laser.write(":POW 25")
    message = str(info.value)
    assert message.startswith("laser_a (Santec TSL-570): command ':POW 25' refused")
    assert '-222,"Data out of range' in message
    assert sim.power_dbm == pytest.approx(1.0)
    assert laser.read_error_queue() == []


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (":WAV 1300", "-222"),
        (":WAV:FREQ 250", "-222"),
        (":POW:STAT MAYBE", "-224"),
        (":LASR", "-113"),
    ],
)
def test_bad_commands_are_reported(laser: SantecTSL570, command: str, code: str) -> None:
    with pytest.raises(InstrumentErrorQueueError, match=code):
        laser.write(command)


def test_handler_never_raises_on_garbage(sim: SimSantecTSL570) -> None:
    for message in ("", ":WAV", ":WAV abc", ":POW 1,2", "\x00\xff", ":POW:ACT? 3"):
        sim.handle(message)
    assert sim.handle(":SYST:ERR?") != '0,"No error"'


def test_units_change_what_is_written_and_read(laser: SantecTSL570, sim: SimSantecTSL570) -> None:
    laser.write(":POW:UNIT 1")
    laser.write(":POW 5")  # mW
    assert sim.power_dbm == pytest.approx(6.9897, abs=1e-4)
    assert float(laser.ask(":POW?")) == pytest.approx(5.0)
    with pytest.raises(InstrumentErrorQueueError, match="-222"):
        laser.write(":POW 50")  # 50 mW = 17 dBm
    laser.write(":POW:UNIT 0")
    laser.write(":WAV:UNIT 1")
    laser.write(":WAV 193.41449")  # THz
    assert sim.wavelength_nm == pytest.approx(1550.0, abs=1e-3)
    laser.write(":WAV:UNIT 0")
    assert laser.wavelength.get() == pytest.approx(1550.0, abs=1e-3)


def test_variant_range(hooks: MagicMock) -> None:
    sim = SimSantecTSL570("laser_b", hooks=hooks, wavelength_range_nm=(1500.0, 1600.0))
    sim.handle(":WAV 1620")
    assert sim.handle(":SYST:ERR?").startswith("-222")
    assert sim.wavelength_nm == 1550.0


def test_settings_changed_is_called_on_changes_only(laser: SantecTSL570, hooks: MagicMock) -> None:
    hooks.settings_changed.reset_mock()
    laser.wavelength.get()
    laser.power.get()
    hooks.settings_changed.assert_not_called()
    laser.wavelength.set(1555.0)
    hooks.settings_changed.assert_called_with("laser_a")
    hooks.settings_changed.reset_mock()
    laser.output.set(True)
    hooks.settings_changed.assert_called_with("laser_a")


def test_safe_state_turns_the_diode_off(laser: SantecTSL570, sim: SimSantecTSL570) -> None:
    laser.power.set(5.0)
    laser.output.set(True)
    laser.safe_state()
    assert sim.output_on is False
    assert laser.output.get() is False
    assert laser.power.get() == pytest.approx(5.0)


def test_reset_restores_defaults(laser: SantecTSL570, sim: SimSantecTSL570) -> None:
    laser.output.set(True)
    laser.wavelength.set(1600.0)
    laser.write("*RST")
    assert (sim.output_on, sim.wavelength_nm, sim.power_dbm) == (False, 1550.0, 0.0)
