"""The fast paths of the simulated wire keep its semantics: SCPI header resolution memoised
per (path, header), the in-process VISA library's one-chunk reads and CR/LF stripping, and
its ``ignore_warning`` (pyvisa wraps every ``read_raw`` in it)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
import pyvisa
from pyvisa.constants import StatusCode
from pyvisa.errors import VisaIOError, VisaIOWarning

from sim_backend.instruments import scpi
from sim_backend.instruments.faults import FaultyInstrument
from sim_backend.instruments.scpi import Call, Number, ScpiInstrument, Setting, command
from sim_backend.instruments.visa_library import SimulatedVisaLibrary


class Source(ScpiInstrument):
    IDN = "Acme,SRC-2,0001,1.0"
    voltage = Setting("[:SOURce#]:VOLTage[:LEVel]", Number(0, 30, unit="V"), 0.0, suffixes=(1, 2))
    current = Setting("[:SOURce#]:CURRent", Number(0, 3, unit="A"), 0.0, suffixes=(1, 2))

    @command("ECHO?")
    def _echo(self, call: Call) -> str:
        return call.params.strip()


@pytest.fixture
def src() -> Source:
    return Source("src")


# -- SCPI dispatch -----------------------------------------------------------------------------
def test_a_memoised_header_resolves_as_before_in_every_context(src: Source) -> None:
    for _ in range(3):  # first call resolves, the others hit the memo
        assert src.handle("SOUR2:VOLT 5;CURR 1.5") is None
        assert src.voltage[2] == 5.0 and src.current[2] == 1.5
        assert src.handle("CURR 0.5") is None  # no previous path: from the root, suffix 1
        assert src.current[1] == 0.5 and src.current[2] == 1.5
        assert src.handle("sour2:volt?;CURR?;:SOURCE1:VOLTAGE:LEVEL?") == "5;1.5;0"
        assert src.handle("*IDN?;volt?") == "Acme,SRC-2,0001,1.0;0"
    assert src.handle("SYST:ERR?") == '0,"No error"'


def test_memoised_errors_are_queued_every_time(src: Source) -> None:
    for _ in range(2):
        assert src.handle("SOUR:VOLTS 1") is None
        assert src.handle("SOUR3:VOLT 1") is None
        assert src.handle("VOLT 99") is None
    assert [src.next_error() for _ in range(7)] == [
        '-113,"Undefined header;SOUR:VOLTS"',
        '-114,"Header suffix out of range;SOUR3:VOLT"',
        '-222,"Data out of range;99 outside 0..30 V"',
    ] * 2 + ['0,"No error"']


def test_the_header_memo_is_bounded(src: Source, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scpi, "_HEADER_CACHE_SIZE", 4)
    for i in range(10):
        assert src.handle(f"ECHO? {i}") == str(i)
        assert src.handle(f"ECHO{i}?") is None  # distinct unknown headers
    assert len(Source._scpi_headers) <= 4
    assert src.handle("ECHO? again") == "again"


def test_each_class_has_its_own_memo(src: Source) -> None:
    class Other(ScpiInstrument):
        @command("ECHO?")
        def _other(self, call: Call) -> str:
            return "other"

    src.handle("ECHO? x")
    assert Other("o").handle("ECHO? x") == "other"
    assert src.handle("ECHO? x") == "x"


# -- the in-process VISA library ---------------------------------------------------------------
@pytest.fixture
def rm() -> Iterator[tuple[SimulatedVisaLibrary, pyvisa.ResourceManager]]:
    library = SimulatedVisaLibrary()
    manager = pyvisa.ResourceManager(library)
    yield library, manager
    manager.close()


def test_a_fitting_reply_is_read_whole_in_one_chunk(rm, src: Source) -> None:
    library, manager = rm
    library.attach("GPIB::5::INSTR", src)
    res = manager.open_resource("GPIB::5::INSTR", read_termination="\n", write_termination="\n")
    res.write("ECHO? hello world")
    assert library.read(res.session, 1024) == (
        b"hello world\n",
        StatusCode.success_termination_character_read,
    )
    res.read_termination = None  # no termination character: the reply ends with END
    res.write("ECHO? abc")
    assert library.read(res.session, 1024) == (b"abc\n", StatusCode.success)
    res.write("ECHO? abc")
    assert library.read(res.session, 4) == (b"abc\n", StatusCode.success)
    res.write("ECHO? abcdef")
    with res.ignore_warning(StatusCode.success_max_count_read):
        assert library.read(res.session, 4) == (b"abcd", StatusCode.success_max_count_read)
    assert library.read(res.session, 4) == (b"ef\n", StatusCode.success)
    with pytest.raises(VisaIOError):
        library.read(res.session, 4)


def test_terminators_are_stripped_as_before(rm) -> None:
    library, manager = rm
    received: list[str] = []

    class Recorder:
        name = "rec"
        termination = "\r\n"

        def handle(self, message: str) -> None:
            received.append(message)

    class SemicolonRecorder(Recorder):
        termination = ";"

    library.attach("GPIB::6::INSTR", Recorder())
    library.attach("GPIB::7::INSTR", SemicolonRecorder())
    crlf = manager.open_resource("GPIB::6::INSTR")
    semi = manager.open_resource("GPIB::7::INSTR")
    for raw in (b"A\r\n", b"B\n\r\n", b"C", b"D #13\r\n\r\n"):
        crlf.write_raw(raw)
    for raw in (b"E;", b"F;\n", b"G\r\n", b"H;;"):
        semi.write_raw(raw)
    assert received == ["A", "B", "C", "D #13\r\n\r", "E", "F;", "G", "H;"]


def test_non_latin1_and_bytes_replies_are_queued_as_before(rm) -> None:
    library, manager = rm

    class Replies:
        name = "replies"

        def handle(self, message: str) -> str | bytes:
            return b"\x00\xff" if message == "RAW?" else "µ≈"

    library.attach("GPIB::8::INSTR", Replies())
    res = manager.open_resource("GPIB::8::INSTR")
    res.write("RAW?")
    assert res.read_raw() == b"\x00\xff\n"
    res.write("TEXT?")
    assert res.read_raw() == "µ≈".encode() + b"\n"


def test_ignore_warning_behaves_like_pyvisas(rm, src: Source) -> None:
    library, manager = rm
    library.attach("GPIB::9::INSTR", src)
    res = manager.open_resource("GPIB::9::INSTR")
    ignored = library._ignore_warning_in_session[res.session]
    with res.ignore_warning(StatusCode.success_max_count_read):
        assert StatusCode.success_max_count_read in ignored
        res.write("ECHO? abcdef")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            library.read(res.session, 2)
    assert StatusCode.success_max_count_read not in ignored
    with pytest.warns(VisaIOWarning):
        library.read(res.session, 2)
    with pytest.raises(KeyError), res.ignore_warning(StatusCode.success_max_count_read):
        raise KeyError  # as pyvisa's: left ignored when the block raised
    assert StatusCode.success_max_count_read in ignored


def test_fault_injection_still_reaches_the_driver_side(rm, src: Source) -> None:
    library, manager = rm
    faulty = FaultyInstrument(src)
    library.attach("GPIB::10::INSTR", faulty)
    res = manager.open_resource("GPIB::10::INSTR", read_termination="\n")
    faulty.inject("truncate")
    res.write("ECHO? abcdef")
    with res.ignore_warning(StatusCode.success_max_count_read):
        assert res.read_raw() == b"abc"  # cut short, no terminator
    faulty.inject("slow", delay_s=60)
    res.write("ECHO? late")
    with pytest.raises(VisaIOError):
        res.read_raw()  # the late reply times out, and stays queued
    assert res.read() == "late"
    library.inject_timeout("GPIB::10::INSTR")
    res.write("ECHO? lost")
    with pytest.raises(VisaIOError):
        res.read_raw()
    res.write("ECHO? next")
    assert res.read() == "next"
