"""The base class on its own: abstract safe state, validation messages, QCoDeS Station."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest
import pyvisa
import qcodes.validators as vals
from pyvisa.constants import StatusCode
from pyvisa.errors import VisaIOError
from pyvisa_sim.highlevel import SimVisaLibrary
from qcodes.instrument import Instrument
from qcodes.station import Station

from drivers.base import QNodeVisaInstrument
from drivers.errors import InstrumentTimeoutError, InstrumentValueError
from drivers.santec_tsl570 import SantecTSL570

SIM = "drivers.sims:santec_tsl570.yaml"


class _NoSafeState(QNodeVisaInstrument):
    MODEL = "Santec TSL-570"
    IDN_VENDOR = "SANTEC"
    IDN_MODEL = "TSL-570"


def test_safe_state_is_required() -> None:
    with pytest.raises(TypeError, match="safe_state"):
        _NoSafeState("incomplete", address="GPIB::1::INSTR", pyvisa_sim_file=SIM)


def test_close_is_not_safe_state(mocker) -> None:
    safe = mocker.spy(SantecTSL570, "safe_state")
    laser = SantecTSL570("laser_c", address="GPIB::1::INSTR", pyvisa_sim_file=SIM)
    laser.close()
    safe.assert_not_called()


def test_enum_value_error_names_parameter(make_sim) -> None:
    laser = make_sim("santec_tsl570", name="laser_d")
    laser.add_parameter("mode", get_cmd=False, set_cmd=":MODE {}", vals=vals.Enum("A", "B"))
    with pytest.raises(InstrumentValueError) as info:
        laser.mode.set("C")
    message = str(info.value)
    assert message.startswith("laser_d (Santec TSL-570): command ':MODE C' refused")
    assert "'mode'" in message and "'C'" in message


def test_loads_from_a_qcodes_station_config(tmp_path: Path) -> None:
    config = tmp_path / "station.yaml"
    config.write_text(
        "instruments:\n"
        "  laser_e:\n"
        "    type: drivers.santec_tsl570.SantecTSL570\n"
        "    address: GPIB::1::INSTR\n"
        "    init:\n"
        f"      pyvisa_sim_file: '{SIM}'\n"
        "      wavelength_range_nm: [1500.0, 1600.0]\n"
    )
    station = Station(config_file=str(config))
    laser = station.load_instrument("laser_e")
    assert isinstance(laser, SantecTSL570)
    assert laser.wavelength.vals.max_value == 1600.0
    laser.close()


def test_timeout_during_identity_check_closes_and_reports(mocker) -> None:
    mocker.patch.object(SimVisaLibrary, "read", side_effect=VisaIOError(StatusCode.error_timeout))
    with pytest.raises(InstrumentTimeoutError) as info:
        SantecTSL570("laser_f", address="GPIB::1::INSTR", pyvisa_sim_file=SIM)
    assert str(info.value).startswith("laser_f (Santec TSL-570): command '*IDN?' timed out")
    assert not Instrument.exist("laser_f")


def test_timeout_in_parameter_get_keeps_a_clean_message(make_sim, mocker) -> None:
    laser = make_sim("santec_tsl570", name="laser_g")
    mocker.patch.object(
        laser.visa_handle.visalib, "read", side_effect=VisaIOError(StatusCode.error_timeout)
    )
    laser.resilience.sleep = lambda s: None
    with pytest.raises(InstrumentTimeoutError) as info:
        laser.power.get()
    assert str(info.value) == (
        "laser_g (Santec TSL-570): command ':POW?' timed out: no answer within 5 s; "
        "gave up after 3 retries (0.35 s of back-off)"
    )


def test_accepts_an_already_opened_resource() -> None:
    """The simulated lab plugs in this way: the driver wraps a resource it is given."""
    path = files("drivers.sims") / "santec_tsl570.yaml"
    resource = pyvisa.ResourceManager(f"{path}@sim").open_resource("GPIB::1::INSTR")
    laser = SantecTSL570("laser_h", resource=resource)
    laser.power.set(2.5)
    assert laser.power.get() == pytest.approx(2.5)
    laser.close()
