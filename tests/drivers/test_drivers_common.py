"""Behaviour every driver shares: identity check, timeouts, error reporting, value
validation, safe state, HAL role and registry entry."""

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
from drivers.registry import DRIVERS, UnknownDriverError, drivers_for_role, known_drivers, lookup

# driver -> (command the simulated instrument rejects, error type, text in the message)
REJECTED = {
    "newfocus_tlb6700": ("SOURce:POWer:DIODe 50", InstrumentReplyError, "201, VALUE OUT OF RANGE"),
    "santec_tsl570": (":POW 25", InstrumentErrorQueueError, '-222,"Data out of range"'),
    "moglabs_qrf": ("POW,1,40dBm", InstrumentReplyError, "ERR: power out of range"),
    "singlequantum_eos": ("DET1:BIAS 500", InstrumentErrorQueueError, "-222"),
    "idq_id900": ("INPU1:THRE 5V", InstrumentReplyError, "SCPI_ERR_PARAM_RANGE"),
    "tektronix_awg5014c": ("SOUR1:VOLT 9", InstrumentErrorQueueError, "-222"),
    "thorlabs_itc4001_qfc": ("SOUR2:TEMP 400", InstrumentErrorQueueError, "-222"),
    "rs_sgs100a": ("SOUR:POW 40", InstrumentErrorQueueError, "-222"),
    "qnode_rtc": ("QUB:BOGUS 1", InstrumentErrorQueueError, "-113"),
}

# driver -> (parameter path, out-of-range value, command shown in the message)
OUT_OF_RANGE = {
    "newfocus_tlb6700": ("power", 25, "SOURce:POWer:DIODe 25.00"),
    "santec_tsl570": ("power", 25, ":POW 25.00"),
    "moglabs_qrf": ("ch2.power", 40, "POW,2,40.00dBm"),
    "singlequantum_eos": ("det1.bias_current", 80, "DET1:BIAS 80.000"),
    "idq_id900": ("input3.threshold", 2.5, "INPU3:THRE 2.500V"),
    "tektronix_awg5014c": ("ch4.offset", 3.0, "SOUR4:VOLT:OFFS 3.0000"),
    "thorlabs_itc4001_qfc": ("crystal_setpoint", 120, "SOUR2:TEMP 120.000"),
    "rs_sgs100a": ("frequency", 20e9, "SOUR:FREQ 20000000000.000"),
    "qnode_rtc": ("herald_timeout", 5000, "ENT:TIM 5000"),
}

ALL = sorted(DRIVERS)
IMPOSTOR_ADDRESS = "GPIB::9::INSTR"  # the wrong-identity device in every sim YAML


def _param(inst, path: str):
    obj = inst
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def test_every_driver_has_a_case() -> None:
    assert set(REJECTED) == set(DRIVERS) == set(OUT_OF_RANGE)


@pytest.mark.parametrize("driver", ALL)
def test_connects_and_identifies(make_sim, driver: str) -> None:
    inst = make_sim(driver, name="dut")
    idn = inst.IDN()
    assert idn["model"]
    assert inst.display_name == f"dut ({inst.MODEL})"


@pytest.mark.parametrize("driver", ALL)
def test_wrong_identity_is_refused(driver: str) -> None:
    entry = lookup(driver)
    with pytest.raises(InstrumentIdentityError) as info:
        entry.create("impostor", address=IMPOSTOR_ADDRESS, simulated=True)
    message = str(info.value)
    assert message.startswith(f"impostor ({entry.cls.MODEL})")
    assert repr(entry.cls.IDN_MODEL) in message
    assert "received" in message


@pytest.mark.parametrize("driver", ALL)
def test_timeout_names_instrument_and_command(make_sim, mocker, driver: str) -> None:
    inst = make_sim(driver, name="slow")
    mocker.patch.object(
        inst.visa_handle.visalib, "read", side_effect=VisaIOError(StatusCode.error_timeout)
    )
    inst.resilience.sleep = lambda s: None
    with pytest.raises(InstrumentTimeoutError) as info:
        inst.ask(inst.IDN_QUERY)
    message = str(info.value)
    assert message.startswith(f"slow ({inst.MODEL}): command {inst.IDN_QUERY!r}")
    assert "timed out" in message
    assert isinstance(info.value, TimeoutError)


@pytest.mark.parametrize("driver", ALL)
def test_rejected_command_is_reported(make_sim, driver: str) -> None:
    inst = make_sim(driver, name="dut")
    command, error_type, text = REJECTED[driver]
    with pytest.raises(error_type) as info:
        inst.write(command)
    message = str(info.value)
    assert message.startswith(f"dut ({inst.MODEL}): command {command!r} refused")
    assert text in message
    # the error was consumed: the next command goes through
    inst.ask(inst.IDN_QUERY)
    assert inst.read_error_queue() == []


@pytest.mark.parametrize("driver", ALL)
def test_out_of_range_value_names_parameter_and_value(make_sim, driver: str) -> None:
    inst = make_sim(driver, name="dut")
    path, value, command = OUT_OF_RANGE[driver]
    param = _param(inst, path)
    before = param.get()
    with pytest.raises(InstrumentValueError) as info:
        param.set(value)
    message = str(info.value)
    assert message.startswith(f"dut ({inst.MODEL}): command {command!r} refused")
    assert f"{value:g}" in message
    assert repr(param.name) in message
    assert isinstance(info.value, ValueError)
    assert param.get() == before  # nothing was sent


@pytest.mark.parametrize("driver", ALL)
def test_fulfils_its_role(make_sim, driver: str) -> None:
    entry = lookup(driver)
    inst = make_sim(driver)
    assert isinstance(inst, entry.role)
    assert isinstance(inst, hal.SafeStateful)
    assert entry.role in hal.ROLES.values()


def test_registry_unknown_name_lists_known_drivers() -> None:
    with pytest.raises(UnknownDriverError) as info:
        lookup("santec_tsl999")
    message = str(info.value)
    assert "'santec_tsl999'" in message
    for name in known_drivers():
        assert name in message


def test_registry_roles_cover_the_hal() -> None:
    for role in hal.ROLES.values():
        assert drivers_for_role(role), role
    assert drivers_for_role(hal.Laser) == ["newfocus_tlb6700", "santec_tsl570"]


def test_error_family() -> None:
    err = InstrumentErrorQueueError("laser_a (Santec TSL-570)", "refused: boom", command=":POW 1")
    assert isinstance(err, InstrumentReplyError)
    assert isinstance(err, InstrumentError)
    err.args = (*err.args, "setting laser_a_power to 1")  # what QCoDeS does on the way up
    assert str(err) == "laser_a (Santec TSL-570): command ':POW 1' refused: boom"
