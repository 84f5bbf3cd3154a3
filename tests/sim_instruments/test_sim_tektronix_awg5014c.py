"""The simulated Tektronix AWG5014C, driven by the real driver over the simulated VISA wire."""

from __future__ import annotations

import dataclasses
from unittest.mock import MagicMock

import numpy as np
import pytest

from drivers.errors import InstrumentErrorQueueError
from drivers.hal import AwgSequence, AwgSequenceStep, AwgWaveform
from drivers.tektronix_awg5014c import TektronixAWG5014C
from sim_backend.instruments.protocols import MessageHandler
from sim_backend.instruments.sim_tektronix_awg5014c import (
    SimSequenceStep,
    SimTektronixAWG5014C,
    SimWaveform,
)

ADDRESS = "TCPIP0::awg-a::4000::SOCKET"


@pytest.fixture
def sim(hooks: MagicMock) -> SimTektronixAWG5014C:
    return SimTektronixAWG5014C("awg", hooks=hooks)


@pytest.fixture
def awg(sim: SimTektronixAWG5014C, connect) -> TektronixAWG5014C:
    return connect(TektronixAWG5014C, sim, ADDRESS, "awg")


def _herald_sequence(n: int = 16) -> AwgSequence:
    rng = np.random.default_rng(5)
    pulse = AwgWaveform("pulse", np.linspace(-1, 1, n), np.ones(n, bool), rng.random(n) > 0.5)
    idle = AwgWaveform("idle", np.zeros(n))
    return AwgSequence(
        waveforms=[pulse, idle],
        steps=[
            AwgSequenceStep(
                {1: "pulse", 2: "idle"}, repetitions=0, wait_for_trigger=True, event_jump_to=3
            ),
            AwgSequenceStep({1: "idle"}, repetitions=100, goto=1),
            AwgSequenceStep({1: "pulse", 3: "pulse"}, repetitions=1),
        ],
    )


def test_is_a_message_handler(sim: SimTektronixAWG5014C) -> None:
    assert isinstance(sim, MessageHandler)


def test_identity_is_accepted(awg: TektronixAWG5014C) -> None:
    idn = awg.IDN()
    assert (idn["vendor"], idn["model"]) == ("TEKTRONIX", "AWG5014C")


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("sample_rate", 1.0e9),
        ("run_mode", "TRIG"),
        ("run_mode", "SEQ"),
        ("trigger_source", "INT"),
        ("trigger_source", "EXT"),
        ("trigger_level", -0.5),
        ("trigger_slope", "NEG"),
        ("trigger_interval", 2.5e-5),
        ("event_level", 0.8),
        ("event_jump_timing", "ASYNC"),
        ("sequence_length", 12),
    ],
)
def test_parameter_round_trip(awg: TektronixAWG5014C, param: str, value: object) -> None:
    getattr(awg, param).set(value)
    expected = pytest.approx(value) if isinstance(value, float) else value
    assert getattr(awg, param).get() == expected


@pytest.mark.parametrize("channel", [1, 2, 3, 4])
@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("amplitude", 1.25),
        ("offset", -0.3),
        ("output", True),
        ("marker1_high", 2.0),
        ("marker1_low", -0.5),
        ("marker2_high", 1.2),
        ("marker2_low", 0.1),
    ],
)
def test_channel_round_trip(
    awg: TektronixAWG5014C, channel: int, param: str, value: object
) -> None:
    ch = awg.channels[channel - 1]
    getattr(ch, param).set(value)
    assert getattr(ch, param).get() == pytest.approx(value)


def test_settings_are_the_attributes_the_lab_reads(
    awg: TektronixAWG5014C, sim: SimTektronixAWG5014C
) -> None:
    awg.sample_rate.set(1.0e9)
    awg.ch2.amplitude.set(1.5)
    awg.ch2.offset.set(0.25)
    awg.ch2.output.set(True)
    awg.ch2.marker2_high.set(1.8)
    awg.run_mode.set("SEQ")
    assert sim.sample_rate_hz == 1.0e9
    ch = sim.channels[2]
    assert (ch.amplitude_vpp, ch.offset_v, ch.output_on) == (1.5, 0.25, True)
    assert ch.marker_high_v[2] == 1.8
    assert sim.channels[1].output_on is False
    assert sim.run_mode == "SEQ"


def test_uploaded_waveforms_are_decoded(awg: TektronixAWG5014C, sim: SimTektronixAWG5014C) -> None:
    seq = _herald_sequence()
    awg.upload_sequence(seq)
    assert set(sim.waveforms) == {"pulse", "idle"}
    for original in seq.waveforms:
        decoded = sim.waveforms[original.name]
        assert isinstance(decoded, SimWaveform)
        assert decoded.samples.dtype == np.float64
        np.testing.assert_allclose(decoded.samples, original.samples, atol=0.5 / 8191)
        n = len(original.samples)
        m1 = original.marker1 if original.marker1 is not None else np.zeros(n, bool)
        m2 = original.marker2 if original.marker2 is not None else np.zeros(n, bool)
        np.testing.assert_array_equal(decoded.marker1, m1)
        np.testing.assert_array_equal(decoded.marker2, m2)


def test_block_bytes_that_look_like_terminators_survive(
    awg: TektronixAWG5014C, sim: SimTektronixAWG5014C
) -> None:
    # points whose bytes are LF, CR, ';', '"', ',' and '#': the block must arrive intact
    codes = np.array([0x0A0A, 0x0D0A, 0x3B3B, 0x222C, 0x2323, 0x0000, 0x3FFE, 0xFFFE], np.uint16)
    samples = ((codes & 0x3FFF).astype(float) - 8191) / 8191
    wf = AwgWaveform("tricky", samples, (codes >> 14 & 1).astype(bool), (codes >> 15).astype(bool))
    awg.upload_waveform(wf)
    decoded = sim.waveforms["tricky"]
    np.testing.assert_allclose(decoded.samples, samples, atol=1e-12)
    np.testing.assert_array_equal(decoded.marker1, wf.marker1)
    np.testing.assert_array_equal(decoded.marker2, wf.marker2)


def test_sequence_steps_are_decoded(awg: TektronixAWG5014C, sim: SimTektronixAWG5014C) -> None:
    seq = _herald_sequence()
    awg.upload_sequence(seq)
    assert all(isinstance(step, SimSequenceStep) for step in sim.sequence)
    assert [dataclasses.asdict(s) for s in sim.sequence] == [
        dataclasses.asdict(s) for s in seq.steps
    ]
    assert [awg.read_step(i) for i in (1, 2, 3)] == seq.steps
    assert awg.sequence_length.get() == 3
    assert sim.run_mode == "SEQ"


def test_run_and_stop_tell_the_lab(
    awg: TektronixAWG5014C, sim: SimTektronixAWG5014C, hooks: MagicMock
) -> None:
    awg.upload_sequence(_herald_sequence())
    hooks.awg_stopped.reset_mock()
    awg.run()
    hooks.awg_started.assert_called_once_with("awg")
    assert sim.running is True
    assert awg.is_running() is True
    assert awg.run_state.get() == 2
    awg.run()  # already running: no second start
    hooks.awg_started.assert_called_once()
    awg.stop()
    hooks.awg_stopped.assert_called_once_with("awg")
    assert sim.running is False
    assert awg.is_running() is False


def test_triggered_mode_waits_for_the_external_trigger(
    awg: TektronixAWG5014C, sim: SimTektronixAWG5014C
) -> None:
    awg.run_mode.set("TRIG")
    awg.trigger_source.set("EXT")
    awg.run()
    assert awg.run_state.get() == 1
    assert awg.is_running() is True


def test_out_of_range_amplitude_goes_to_the_error_queue(
    awg: TektronixAWG5014C, sim: SimTektronixAWG5014C
) -> None:
    with pytest.raises(InstrumentErrorQueueError) as info:
        awg.write("SOUR1:VOLT 9")
    message = str(info.value)
    assert message.startswith("awg (Tektronix AWG5014C): command 'SOUR1:VOLT 9' refused")
    assert "-222" in message
    assert sim.channels[1].amplitude_vpp == 0.5
    assert awg.read_error_queue() == []


@pytest.mark.parametrize(
    ("command", "code"),
    [
        ("SOUR5:VOLT 1", "-114"),
        ("SOUR1:FREQ 5e9", "-222"),
        ("SOUR2:FREQ 1e9", "-114"),
        ("AWGC:RMOD BURST", "-224"),
        ("SEQ:ELEM1:TWA 1", "-114"),  # the sequence is empty
        ("SEQ:LENG 9000", "-222"),
        ('WLIS:WAV:NEW "w",16,REAL', "-224"),
        ('WLIS:WAV:NEW "w",0,INT', "-222"),
        ('WLIS:WAV:DATA "nope",#14\x00\x00\x00\x00', "-224"),
        ('WLIS:WAV:DEL "nope"', "-224"),
    ],
)
def test_bad_commands_are_reported(awg: TektronixAWG5014C, command: str, code: str) -> None:
    with pytest.raises(InstrumentErrorQueueError, match=code):
        awg.write(command)


def test_sequence_table_checks(awg: TektronixAWG5014C, sim: SimTektronixAWG5014C) -> None:
    awg.upload_waveform(AwgWaveform("short", np.zeros(8)))
    awg.upload_waveform(AwgWaveform("long", np.zeros(16)))
    awg.sequence_length.set(2)
    awg.write('SEQ:ELEM1:WAV1 "short"')
    with pytest.raises(InstrumentErrorQueueError, match="-221"):
        awg.write('SEQ:ELEM1:WAV2 "long"')  # unequal lengths in one element
    with pytest.raises(InstrumentErrorQueueError, match="-224"):
        awg.write('SEQ:ELEM1:WAV2 "missing"')
    with pytest.raises(InstrumentErrorQueueError, match="-222"):
        awg.write("SEQ:ELEM1:JTAR:IND 3")  # beyond SEQ:LENG
    with pytest.raises(InstrumentErrorQueueError, match="-222"):
        awg.write("SEQ:ELEM1:LOOP:COUN 70000")
    awg.write("SEQ:ELEM2:JTAR:TYPE NEXT")
    assert sim.sequence[1].event_jump_to == 1  # NEXT after the last element wraps
    awg.write('WLIS:WAV:DEL "short"')  # deleting a waveform empties its elements
    assert sim.sequence[0].waveforms == {}


def test_partial_waveform_write(awg: TektronixAWG5014C, sim: SimTektronixAWG5014C) -> None:
    awg.write('WLIS:WAV:NEW "part",4,INT')
    np.testing.assert_array_equal(sim.waveforms["part"].samples, np.zeros(4))
    codes = np.array([16382 | 1 << 14, 0], dtype="<u2").tobytes()
    awg._write_block('WLIS:WAV:DATA "part",1,2,', codes)
    np.testing.assert_allclose(sim.waveforms["part"].samples, [0, 1, -1, 0])
    np.testing.assert_array_equal(sim.waveforms["part"].marker1, [False, True, False, False])
    with pytest.raises(InstrumentErrorQueueError, match="-222"):
        awg._write_block('WLIS:WAV:DATA "part",3,2,', codes)


def test_handler_never_raises_on_garbage(sim: SimTektronixAWG5014C) -> None:
    for message in ("", "WLIS:WAV:DATA", 'WLIS:WAV:DATA "x",#9', "SEQ:ELEM:WAV", "\x00\xff"):
        sim.handle(message)
    assert sim.handle("SYST:ERR?") != '0,"No error"'


def test_settings_changed_is_called_on_changes_only(
    awg: TektronixAWG5014C, hooks: MagicMock
) -> None:
    hooks.settings_changed.reset_mock()
    awg.ch1.amplitude.get()
    awg.sample_rate.get()
    awg.is_running()
    hooks.settings_changed.assert_not_called()
    awg.ch1.amplitude.set(1.0)
    hooks.settings_changed.assert_called_with("awg")
    hooks.settings_changed.reset_mock()
    awg.upload_sequence(_herald_sequence())
    hooks.settings_changed.assert_called_with("awg")


def test_safe_state_stops_and_switches_outputs_off(
    awg: TektronixAWG5014C, sim: SimTektronixAWG5014C, hooks: MagicMock
) -> None:
    for ch in awg.channels:
        ch.output.set(True)
    awg.run()
    awg.safe_state()
    hooks.awg_stopped.assert_called_with("awg")
    assert sim.running is False
    assert [ch.output_on for ch in sim.channels.values()] == [False] * 4
    assert [ch.output.get() for ch in awg.channels] == [False] * 4
