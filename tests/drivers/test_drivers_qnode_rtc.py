"""The real-time qubit controller driver (qnode RTC protocol v1) against its pyvisa-sim file."""

from __future__ import annotations

import math

import pytest

from drivers import hal
from drivers.errors import InstrumentReplyError, InstrumentValueError
from drivers.qnode_rtc import QubitProgram


@pytest.fixture
def rtc(make_sim):
    return make_sim("qnode_rtc", name="rtc")


def test_identity_count_clock_and_role(rtc) -> None:
    assert rtc.qubit_count() == 2
    assert rtc.time_s() == pytest.approx(0.001)
    assert isinstance(rtc, hal.QubitDevice)


def test_operations_send_the_documented_commands(rtc) -> None:
    rtc.initialize(0)
    rtc.initialize(1)
    rtc.rotate(0, "x", math.pi)
    rtc.gate("h", 0)
    rtc.gate("CNOT", 0, 1)
    rtc.gate("SWAP", 0, 1)
    rtc.wait(0.001)
    assert rtc.measure(0, "Z") == 1
    assert rtc.measure(1, "x") == 0
    record = rtc.last_herald("bob")
    assert record.heralded and record.clicks == "+" and record.bell_state == "PSI+"
    assert record.attempts == 1234 and record.time_s == pytest.approx(0.5)
    rtc.herald_timeout(2.5)
    assert rtc.herald_timeout() == pytest.approx(2.5)
    rtc.safe_state()


@pytest.mark.parametrize(
    ("call", "text"),
    [
        (lambda r: r.initialize(2), "qubit 2 out of range, expected 0..1"),
        (lambda r: r.rotate(0, "W", 1.0), "axis 'W' invalid"),
        (lambda r: r.rotate(0, "X", math.inf), "not finite"),
        (lambda r: r.gate("TOFFOLI", 0, 1), "unknown gate 'TOFFOLI'"),
        (lambda r: r.gate("CNOT", 0), "gate CNOT acts on 2 qubit(s)"),
        (lambda r: r.measure(0, "Q"), "axis 'Q' invalid"),
    ],
)
def test_bad_arguments_are_refused_before_sending(rtc, call, text: str) -> None:
    with pytest.raises(InstrumentValueError) as info:
        call(rtc)
    assert str(info.value).startswith("rtc (qnode RTC v1)")
    assert text in str(info.value)


def test_garbled_readout_reply_names_the_command(rtc, mocker) -> None:
    mocker.patch.object(rtc, "ask_raw", return_value="maybe")
    with pytest.raises(InstrumentReplyError) as info:
        rtc.measure(0, "Z")
    assert "QUB:MEAS? 0,Z" in str(info.value) and "'maybe'" in str(info.value)


def test_a_program_is_sent_as_one_documented_query(rtc) -> None:
    program = (
        QubitProgram()
        .init(1)
        .rotate(1, "y", 1.5)
        .gate("cnot", 1, 0)
        .gate("H", 1)
        .measure(1, "Z")
        .measure(0, "z")
    )
    assert program.readouts == 2
    result = rtc.run_program(program)
    assert result.readouts == (1, 0) and result.time_s == pytest.approx(0.0125)
    assert rtc.run_program(QubitProgram().wait(0.5)).readouts == ()


def test_a_program_reply_with_the_wrong_readouts_is_refused(rtc, mocker) -> None:
    mocker.patch.object(rtc, "_query", return_value="0,0.1,1")
    with pytest.raises(InstrumentReplyError) as info:
        rtc.run_program(QubitProgram().measure(0).measure(1))
    assert "QUB:PROG? " in str(info.value) and "'0,0.1,1'" in str(info.value)
