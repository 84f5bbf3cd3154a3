"""The lean transaction path of every driver (``QNodeVisaInstrument.ask_raw`` / ``write_raw``):
an interrupted query leaves the session clean, VISA traffic is logged at DEBUG, long messages
are never cut by an interrupt, and the garbled-reply check still catches line noise.

No wall-clock limits here: ``benchmarks/transaction_overhead.py`` measures the speed.
"""

from __future__ import annotations

import logging
import signal
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import pyvisa
from qcodes.instrument import Instrument
from qcodes.instrument.visa import VISA_LOGGER

import drivers.base
from drivers.base import ATOMIC_MESSAGE_CHARS, QNodeVisaInstrument
from drivers.errors import InstrumentErrorQueueError, InstrumentGarbledReplyError
from drivers.registry import lookup
from sim_backend.instruments.scpi import Call, Integer, ScpiInstrument, Setting, command
from sim_backend.instruments.visa_library import SimulatedVisaLibrary

ADDRESS = "TCPIP0::counter::5025::SOCKET"


class SimCounter(ScpiInstrument):
    """Every ``COUN?`` answers the next number, so a stale reply is told from a fresh one."""

    IDN = "Acme,CNT-1,0001,1.0"
    level = Setting("LEVel", Integer(0, 10), 0)

    def __init__(self, name: str = "counter") -> None:
        super().__init__(name)
        self.count = 0
        self.interrupt_on: str | None = None  # a message that raises SIGINT on arrival
        self.received: list[str] = []

    def handle(self, message: str) -> str | None:
        self.received.append(message)
        if message == self.interrupt_on:
            self.interrupt_on = None
            signal.raise_signal(signal.SIGINT)  # Ctrl-C while the instrument works
        return super().handle(message)

    @command("COUNt?")
    def _next(self, call: Call) -> str:
        self.count += 1
        return str(self.count)

    @command("TEXT?")
    def _text(self, call: Call) -> str:
        return call.params.strip()

    @command("DATA")
    def _data(self, call: Call) -> None:
        self.data = call.params


class CounterDriver(QNodeVisaInstrument):
    MODEL = "Acme CNT-1"
    IDN_VENDOR = "Acme"
    IDN_MODEL = "CNT-1"
    ERROR_QUERY = "SYST:ERR?"

    def safe_state(self) -> None:
        """Nothing to switch off."""


@pytest.fixture
def sim() -> SimCounter:
    return SimCounter()


@pytest.fixture
def library(sim: SimCounter) -> Iterator[SimulatedVisaLibrary]:
    lib = SimulatedVisaLibrary()
    lib.attach(ADDRESS, sim)
    yield lib
    Instrument.close_all()
    if lib.resource_manager is not None:
        lib.resource_manager.close()


@pytest.fixture
def counter(library: SimulatedVisaLibrary) -> CounterDriver:
    rm = pyvisa.ResourceManager(library)
    driver = CounterDriver("counter", resource=rm.open_resource(ADDRESS))
    driver.resilience.sleep = lambda seconds: None
    return driver


def _pending(library: SimulatedVisaLibrary, driver: QNodeVisaInstrument) -> int:
    """Bytes queued and unread on the driver's session."""
    handle = driver.visa_handle
    return library.get_attribute(
        handle.session, pyvisa.constants.ResourceAttribute.asrl_avalaible_number
    )[0]


def _interrupt_once(monkeypatch: pytest.MonkeyPatch, obj: Any, name: str) -> None:
    """Make the next ``obj.name(...)`` raise KeyboardInterrupt (Ctrl-C while it waits)."""
    original: Callable[..., Any] = getattr(obj, name)
    armed = [True]

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        if armed[0]:
            armed[0] = False
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(obj, name, interrupted)


@pytest.fixture
def default_sigint() -> None:
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not handled by Python's default handler here")


# -- interrupts ----------------------------------------------------------------------------
def test_an_interrupt_while_waiting_for_a_reply_drops_that_reply(
    counter, sim, library, monkeypatch
):
    assert counter.ask("COUN?") == "1"
    _interrupt_once(monkeypatch, counter.visa_handle.visalib, "read")
    with pytest.raises(KeyboardInterrupt):
        counter.ask("COUN?")
    assert sim.count == 2  # the query reached the instrument; its reply was drained
    assert _pending(library, counter) == 0
    assert counter.ask("COUN?") == "3"  # its own reply, not the stale "2"
    assert counter.resilience.stats.faults == {}


def test_an_interrupt_while_the_instrument_works_leaves_the_session_clean(
    counter, sim, library, default_sigint
):
    sim.interrupt_on = "COUN?"
    with pytest.raises(KeyboardInterrupt):
        counter.ask("COUN?")
    assert _pending(library, counter) == 0
    assert counter.ask("COUN?") == str(sim.count)
    assert counter.ask("TEXT? fresh") == "fresh"


def test_an_interrupted_error_check_does_not_leak_into_the_next_write(
    counter, sim, library, monkeypatch
):
    _interrupt_once(monkeypatch, counter.visa_handle.visalib, "read")
    with pytest.raises(KeyboardInterrupt):
        counter.write("LEV 3")  # interrupted while reading SYST:ERR?
    assert _pending(library, counter) == 0
    counter.write("LEV 4")
    assert sim.level == 4
    with pytest.raises(InstrumentErrorQueueError) as info:
        counter.write("LEV 11")
    assert "counter (Acme CNT-1)" in str(info.value) and "LEV 11" in str(info.value)


def test_the_rtc_per_step_query_is_the_base_path_and_interrupt_safe() -> None:
    rtc = lookup("qnode_rtc").create("rtc_io", address="GPIB::1::INSTR", simulated=True)
    try:
        with pytest.MonkeyPatch.context() as patch:
            assert type(rtc)._query is QNodeVisaInstrument.ask_raw
            sent: list[str] = []
            visalib = rtc.visa_handle.visalib
            base_write = visalib.write

            def write(session: int, data: bytes) -> Any:
                sent.append(data.decode().rstrip("\n"))
                return base_write(session, data)

            patch.setattr(visalib, "write", write)
            assert rtc.last_herald("bob").heralded
            assert sent == ["ENT:RES? bob"]
            _interrupt_once(patch, rtc.visa_handle.visalib, "read")
            with pytest.raises(KeyboardInterrupt):
                rtc.last_herald("bob")
            assert sent == ["ENT:RES? bob"] * 2
        assert rtc.time_s() == pytest.approx(0.001)  # not the stale herald record
    finally:
        rtc.close()


def test_a_reply_longer_than_a_chunk_is_read_whole_without_warnings(counter) -> None:
    """The driver reads one chunk itself; pyvisa's ``read_raw`` reads the rest, and the
    'more to read' status warns neither time (``read_raw`` ignores it too)."""
    counter.visa_handle.chunk_size = 8
    text = "abcdefghijklmnopqrstuvwxyz" * 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert counter.ask(f"TEXT? {text}") == text
        assert counter.ask("COUN?") == "1"


def test_a_long_message_is_sent_with_the_interrupt_deferred(counter, sim, monkeypatch):
    entered: list[str] = []
    real = drivers.base.DelayedKeyboardInterrupt

    class Recording(real):  # type: ignore[misc, valid-type]
        def __enter__(self) -> None:
            entered.append(str(self._context.get("reason")))
            super().__enter__()

    monkeypatch.setattr(drivers.base, "DelayedKeyboardInterrupt", Recording)
    payload = "x" * (ATOMIC_MESSAGE_CHARS + 1)
    counter.write(f"DATA {payload}")
    assert sim.data == payload
    assert entered == ["write"]
    counter.write("LEV 1")  # short: sent without deferring
    assert counter.ask(f"TEXT? {payload}") == payload
    assert entered == ["write", "write"]


# -- logging and reply checks -------------------------------------------------------------
def test_visa_traffic_is_logged_at_debug(counter, caplog):
    with caplog.at_level(logging.DEBUG, logger=VISA_LOGGER):
        counter.write("LEV 2")
        assert counter.ask("COUN?") == "1"
    # QCoDeS' instrument logger adapter prefixes "[counter(CounterDriver)] "
    messages = [r.getMessage().split("] ", 1)[1] for r in caplog.records if r.name == VISA_LOGGER]
    assert messages == [
        "Writing: LEV 2",
        "Querying: SYST:ERR?",
        'Response: 0,"No error"',
        "Querying: COUN?",
        "Response: 1",
    ]


def test_nothing_is_logged_above_debug(counter, caplog):
    with caplog.at_level(logging.INFO, logger=VISA_LOGGER):
        counter.write("LEV 2")
        counter.ask("COUN?")
    assert [r for r in caplog.records if r.name == VISA_LOGGER] == []


@pytest.mark.parametrize(
    ("reply", "clean"),
    [("1.5", True), ("a\tb", True), ("", True), ("a\x85b", False), ("a\x07b", False)],
)
def test_the_garbled_reply_check(counter, reply: str, clean: bool):
    def answer(cmd: str) -> str:
        return reply

    if clean:
        assert counter._attempt("X?", answer) == reply
    else:
        with pytest.raises(InstrumentGarbledReplyError, match="garbled reply"):
            counter._attempt("X?", answer)


@pytest.mark.parametrize(
    ("entry", "no_error"),
    [
        ('0,"No error"', True),
        ('+0,"No error"', True),
        (' 0 ,"x"', True),
        ('-113,"x"', False),
        ("junk", False),
    ],
)
def test_no_error_entries(counter, entry: str, no_error: bool):
    assert counter.is_no_error(entry) is no_error
