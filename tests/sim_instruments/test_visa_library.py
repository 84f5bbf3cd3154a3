"""The in-process pyvisa backend, driven through pyvisa and a QCoDeS VisaInstrument."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import pyvisa
from pyvisa.constants import ResourceAttribute, StatusCode
from pyvisa.errors import VisaIOError
from qcodes.instrument import Instrument, VisaInstrument

from sim_backend.instruments.scpi import Boolean, Call, Number, ScpiInstrument, Setting, command
from sim_backend.instruments.visa_library import SimulatedVisaIOError, SimulatedVisaLibrary

PSU_ADDRESS = "TCPIP0::alice-psu::5025::SOCKET"


class SimPowerSupply(ScpiInstrument):
    """A toy simulated power supply."""

    IDN = "Acme,PS-30,0001,1.0"
    voltage = Setting("[:SOURce]:VOLTage[:LEVel]", Number(0, 30, unit="V"), 0.0)
    output = Setting("OUTPut[:STATe]", Boolean(), False)

    def __init__(self, name: str = "psu") -> None:
        super().__init__(name)
        self.waveform = b""

    @command("MEASure:CURRent?")
    def measure_current(self, call: Call) -> str:
        return f"{self.voltage / 10 if self.output else 0.0:.6g}"

    @command("WAVeform:DATA")
    def waveform_data(self, call: Call) -> None:
        self.waveform = call.block()


class PowerSupplyDriver(VisaInstrument):
    """A tiny QCoDeS driver for it, as in the lab."""

    default_terminator = "\n"

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.voltage = self.add_parameter(
            "voltage", get_cmd="VOLT?", set_cmd="VOLT {:.3f}", get_parser=float, unit="V"
        )
        self.output = self.add_parameter(
            "output", get_cmd="OUTP?", set_cmd="OUTP {}", val_mapping={True: "1", False: "0"}
        )
        self.current = self.add_parameter("current", get_cmd="MEAS:CURR?", get_parser=float)


class Recorder:
    """A bare MessageHandler: records what arrives, answers queries with ``ok``."""

    def __init__(self, name: str = "recorder", termination: str = "\n") -> None:
        self.name = name
        self.termination = termination
        self.messages: list[str] = []

    def handle(self, message: str) -> str | None:
        self.messages.append(message)
        return "ok" if message.endswith("?") else None

    def status_byte(self) -> int:
        return 0x04


@pytest.fixture
def library() -> Iterator[SimulatedVisaLibrary]:
    lib = SimulatedVisaLibrary()
    yield lib
    Instrument.close_all()
    if lib.resource_manager is not None:
        lib.resource_manager.close()


@pytest.fixture
def psu(library: SimulatedVisaLibrary) -> SimPowerSupply:
    sim = SimPowerSupply()
    library.attach(PSU_ADDRESS, sim)
    return sim


@pytest.fixture
def rm(library: SimulatedVisaLibrary) -> pyvisa.ResourceManager:
    return pyvisa.ResourceManager(library)


@pytest.fixture
def driver(psu: SimPowerSupply, rm: pyvisa.ResourceManager) -> PowerSupplyDriver:
    return PowerSupplyDriver("psu_driver", resource=rm.open_resource(PSU_ADDRESS))


# -- the QCoDeS driver does not notice the simulation ------------------------------------
def test_driver_set_get_round_trip(driver: PowerSupplyDriver, psu: SimPowerSupply):
    driver.voltage.set(12.5)
    assert driver.voltage.get() == 12.5
    assert psu.voltage == 12.5
    driver.output.set(True)
    assert driver.output.get() is True
    assert driver.current.get() == pytest.approx(1.25)
    assert psu.handle("SYST:ERR?") == '0,"No error"'


def test_driver_identity(driver: PowerSupplyDriver):
    assert driver.get_idn() == {
        "vendor": "Acme",
        "model": "PS-30",
        "serial": "0001",
        "firmware": "1.0",
    }
    assert driver.address == PSU_ADDRESS


def test_driver_timeout_parameter_is_stored(driver: PowerSupplyDriver):
    driver.timeout.set(0.25)
    assert driver.timeout.get() == 0.25
    assert driver.visa_handle.timeout == 250
    driver.timeout.set(None)
    assert driver.timeout.get() == float("inf")  # VI_TMO_INFINITE, stored and reported


def test_query_without_reply_times_out_at_once(driver: PowerSupplyDriver):
    with pytest.raises(VisaIOError) as info:
        driver.ask("VOLT 3")  # a set command: the instrument never answers
    assert info.value.error_code == StatusCode.error_timeout
    assert "sent nothing to read" in str(info.value)
    assert driver.voltage.get() == 3.0  # the write reached the instrument; nothing stale left


def test_bad_value_goes_to_the_instrument_error_queue(driver: PowerSupplyDriver):
    driver.write("VOLT 45")
    assert driver.ask("SYST:ERR?") == '-222,"Data out of range;45 outside 0..30 V"'
    assert driver.ask("SYST:ERR?") == '0,"No error"'


def test_device_clear_discards_unread_replies(driver: PowerSupplyDriver):
    handle = driver.visa_handle
    handle.write("*IDN?")
    driver.device_clear()
    with pytest.raises(VisaIOError) as info:
        handle.read()
    assert info.value.error_code == StatusCode.error_timeout
    handle.write("VOLT?")
    handle.flush(pyvisa.constants.BufferOperation.discard_read_buffer_no_io)
    with pytest.raises(VisaIOError):
        handle.read()


def test_injected_timeout_loses_one_reply_only(
    library: SimulatedVisaLibrary, driver: PowerSupplyDriver
):
    driver.voltage.set(7)
    library.inject_timeout(PSU_ADDRESS)
    with pytest.raises(VisaIOError) as info:
        driver.voltage.get()
    assert info.value.error_code == StatusCode.error_timeout
    assert "injected timeout" in str(info.value)
    assert driver.ask("*IDN?").startswith("Acme,PS-30")  # no stale reply


def test_dropped_connection(
    library: SimulatedVisaLibrary,
    rm: pyvisa.ResourceManager,
    driver: PowerSupplyDriver,
    psu: SimPowerSupply,
):
    driver.voltage.set(5)
    library.drop_connection(PSU_ADDRESS)
    for call in (driver.voltage.get, lambda: driver.voltage.set(1), driver.device_clear):
        with pytest.raises(VisaIOError) as info:
            call()
        assert info.value.error_code == StatusCode.error_connection_lost
    with pytest.raises(VisaIOError) as info:
        rm.open_resource(PSU_ADDRESS)
    assert info.value.error_code == StatusCode.error_resource_not_found
    assert "unreachable" in str(info.value)
    driver.close()  # closing a broken session works

    library.restore_connection(PSU_ADDRESS)
    again = PowerSupplyDriver("psu_again", resource=rm.open_resource(PSU_ADDRESS))
    assert again.voltage.get() == 5.0  # the instrument kept its state
    assert psu.voltage == 5.0


def test_clear_faults(library: SimulatedVisaLibrary, rm: pyvisa.ResourceManager, psu):
    library.inject_timeout(PSU_ADDRESS, reads=3)
    library.drop_connection(PSU_ADDRESS)
    library.clear_faults()
    assert rm.open_resource(PSU_ADDRESS).query("*IDN?").startswith("Acme")


def test_detach_breaks_open_sessions(library: SimulatedVisaLibrary, driver, psu):
    assert library.detach(PSU_ADDRESS) is psu
    with pytest.raises(VisaIOError) as info:
        driver.voltage.get()
    assert info.value.error_code == StatusCode.error_connection_lost
    assert library.resources == ()


# -- resource names ---------------------------------------------------------------------------
def test_unknown_resource_is_not_found(rm: pyvisa.ResourceManager, psu: SimPowerSupply):
    with pytest.raises(VisaIOError) as info:
        rm.open_resource("TCPIP::bob-psu::5025::SOCKET")
    err = info.value
    assert err.error_code == StatusCode.error_resource_not_found
    assert "TCPIP0::bob-psu::5025::SOCKET" in str(err)
    assert PSU_ADDRESS in str(err)  # says what is attached
    assert isinstance(pickle.loads(pickle.dumps(err)), SimulatedVisaIOError)


@pytest.mark.parametrize(
    ("attached", "opened", "attribute", "value"),
    [
        (
            "TCPIP::alice-laser::5025::SOCKET",
            "tcpip0::ALICE-LASER::5025::SOCKET",
            "tcpip_port",
            5025,
        ),
        ("TCPIP::10.0.0.5::INSTR", "TCPIP0::10.0.0.5::inst0::INSTR", "tcpip_device_name", "inst0"),
        ("GPIB::7::INSTR", "GPIB0::7::INSTR", "gpib_primary_address", 7),
        ("ASRL3::INSTR", "ASRL3::INSTR", "asrl_baud_rate", 9600),
        (
            "USB0::0x1234::0x5678::SN1::INSTR",
            "USB::0x1234::0x5678::SN1::INSTR",
            "manufacturer_id",
            0x1234,
        ),
    ],
)
def test_resource_kinds(
    library: SimulatedVisaLibrary,
    rm: pyvisa.ResourceManager,
    attached: str,
    opened: str,
    attribute: str,
    value: Any,
):
    recorder = Recorder()
    canonical = library.attach(attached, recorder)
    res = rm.open_resource(opened, read_termination="\n")
    assert isinstance(res, pyvisa.resources.MessageBasedResource)
    assert res.resource_name == canonical
    assert res.query("HELLO?") == "ok"
    assert res.get_visa_attribute(getattr(ResourceAttribute, attribute)) == value
    assert res.timeout == 2000 and res.send_end is True
    assert recorder.messages == ["HELLO?"]
    res.close()


def test_list_resources(library: SimulatedVisaLibrary, rm: pyvisa.ResourceManager, psu):
    assert rm.list_resources() == ()  # the default query lists ::INSTR only, like VISA
    library.attach("GPIB::1::INSTR", Recorder())
    assert rm.list_resources() == ("GPIB0::1::INSTR",)
    assert set(rm.list_resources("?*")) == {PSU_ADDRESS, "GPIB0::1::INSTR"}
    info = rm.resource_info(PSU_ADDRESS)
    assert info.resource_class == "SOCKET"


def test_attach_errors(library: SimulatedVisaLibrary, psu: SimPowerSupply):
    with pytest.raises(ValueError, match="already attached"):
        library.attach("TCPIP::alice-psu::5025::SOCKET", Recorder())
    with pytest.raises(ValueError, match="cannot attach 'recorder'"):
        library.attach("NOT A RESOURCE", Recorder())
    with pytest.raises(KeyError, match="no simulated instrument"):
        library.handler("GPIB::4::INSTR")
    assert library.handler(PSU_ADDRESS) is psu


def test_each_library_is_its_own_lab():
    one, two = SimulatedVisaLibrary(), SimulatedVisaLibrary()
    assert one is not two
    one.attach("GPIB::1::INSTR", Recorder())
    assert two.resources == ()
    assert SimulatedVisaLibrary("shared-lab") is SimulatedVisaLibrary("shared-lab")


# -- the wire -----------------------------------------------------------------------------------
def test_terminators_are_stripped_and_appended(library: SimulatedVisaLibrary, rm):
    recorder = Recorder(termination="\r")
    library.attach("ASRL1::INSTR", recorder)
    res = rm.open_resource("ASRL1::INSTR", read_termination="\r", write_termination="\r")
    assert res.query("A?") == "ok"
    res.write_raw(b"B\r\n")  # CR/LF white space after the message is ignored
    res.write_raw(b"C")  # no terminator: still one message
    res.write("D", termination="\n")
    assert recorder.messages == ["A?", "B", "C", "D"]
    res.write("E?")
    assert res.bytes_in_buffer == 3
    assert res.read_raw() == b"ok\r"
    assert res.bytes_in_buffer == 0


def test_reads_in_small_chunks_and_replies_in_order(library: SimulatedVisaLibrary, rm):
    library.attach("GPIB::2::INSTR", SimPowerSupply())
    res = rm.open_resource("GPIB::2::INSTR")
    res.write("*IDN?")
    res.write("VOLT?")
    assert res.read_raw(size=3) == b"Acme,PS-30,0001,1.0\n"
    assert res.read_bytes(2) == b"0\n"
    with pytest.raises(VisaIOError):
        res.read_raw()
    res.write("*IDN?")
    chunk, status = res.visalib.read(res.session, 4)
    assert (chunk, status) == (b"Acme", StatusCode.success_max_count_read)
    res.read_termination = ","
    chunk, status = res.visalib.read(res.session, 100)
    assert (chunk, status) == (b",", StatusCode.success_termination_character_read)
    res.read_termination = None
    chunk, status = res.visalib.read(res.session, 100)
    assert (chunk, status) == (b"PS-30,0001,1.0\n", StatusCode.success)


def test_binary_block_reaches_the_handler_intact(driver: PowerSupplyDriver, psu):
    payload = bytes(range(256)) + b"\r\n"  # every byte value, ending like a terminator
    size = str(len(payload))
    driver.visa_handle.write_raw(b"WAV:DATA #" + f"{len(size)}{size}".encode() + payload + b"\n")
    assert psu.waveform == payload
    values = [0, 10, 13, 35, 59, 255]
    driver.visa_handle.write_binary_values("WAV:DATA ", values, datatype="B")
    assert psu.waveform == bytes(values)
    assert psu.handle("SYST:ERR?") == '0,"No error"'


def test_binary_message_is_passed_as_latin1(library: SimulatedVisaLibrary, rm):
    recorder = Recorder()
    library.attach("GPIB::3::INSTR", recorder)
    res = rm.open_resource("GPIB::3::INSTR")
    raw = b"DATA #15\x00\xff\n\r\n\n"
    res.write_raw(raw)
    assert recorder.messages[-1].encode("latin-1") == raw[:-1]


def test_trigger_status_byte_lock(library: SimulatedVisaLibrary, rm):
    recorder = Recorder()
    library.attach("GPIB::5::INSTR", recorder)
    res = rm.open_resource("GPIB::5::INSTR", read_termination="\n")
    res.assert_trigger()
    assert recorder.messages == ["*TRG"]
    assert res.read_stb() == 0x04
    res.write("X?")
    assert res.stb == 0x04 | 0x10  # message available
    with res.lock_context():  # locks are accepted (nobody else is on the wire)
        assert res.read() == "ok"
    assert res.stb == 0x04


def test_closed_session_is_invalid(rm: pyvisa.ResourceManager, psu):
    res = rm.open_resource(PSU_ADDRESS)
    session = res.session
    res.close()
    with pytest.raises(VisaIOError) as info:
        rm.visalib.write(session, b"*IDN?\n")
    assert info.value.error_code == StatusCode.error_invalid_object


def test_sessions_of_one_instrument_may_be_used_from_several_threads(
    library: SimulatedVisaLibrary, rm: pyvisa.ResourceManager
):
    library.attach("GPIB::8::INSTR", SimPowerSupply())
    failures: list[str] = []

    def worker(n: int) -> None:
        res = rm.open_resource("GPIB::8::INSTR", read_termination="\n")
        for _ in range(200):
            reply = res.query(f"VOLT {n};*OPC?;VOLT?")
            if reply != f"1;{n}":  # each message is handled whole, replies per session
                failures.append(reply)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
