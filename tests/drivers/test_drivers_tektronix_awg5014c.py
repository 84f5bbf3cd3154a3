"""Tektronix AWG5014C against its pyvisa-sim file."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.errors import InstrumentErrorQueueError, InstrumentValueError
from drivers.hal import AwgSequence, AwgSequenceStep, AwgWaveform
from drivers.tektronix_awg5014c import decode_waveform, encode_waveform


@pytest.fixture
def awg(make_sim):
    return make_sim("tektronix_awg5014c", name="awg")


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("sample_rate", 1.0e9),
        ("run_mode", "TRIG"),
        ("trigger_source", "EXT"),
        ("trigger_level", -0.5),
        ("trigger_slope", "NEG"),
        ("trigger_interval", 2.5e-5),
        ("event_level", 0.8),
        ("event_jump_timing", "ASYNC"),
        ("sequence_length", 12),
    ],
)
def test_parameter_round_trip(awg, param: str, value: object) -> None:
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
def test_channel_round_trip(awg, channel: int, param: str, value: object) -> None:
    ch = awg.channels[channel - 1]
    getattr(ch, param).set(value)
    assert getattr(ch, param).get() == pytest.approx(value)


def test_waveform_encoding() -> None:
    wf = AwgWaveform(
        "w", np.array([-1.0, 0.0, 1.0]), np.array([1, 0, 0], bool), np.array([0, 0, 1], bool)
    )
    data = encode_waveform(wf)
    assert np.frombuffer(data, "<u2").tolist() == [0 | 1 << 14, 8191, 16382 | 1 << 15]
    samples, m1, m2 = decode_waveform(data)
    np.testing.assert_allclose(samples, [-1.0, 0.0, 1.0])
    assert m1.tolist() == [True, False, False]
    assert m2.tolist() == [False, False, True]


def _herald_sequence() -> AwgSequence:
    n = 8
    pulse = AwgWaveform("pulse", np.linspace(-1, 1, n), np.ones(n, bool))
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


def test_upload_sequence(awg, mocker) -> None:
    blocks = mocker.patch.object(awg, "_write_block")
    seq = _herald_sequence()
    awg.upload_sequence(seq)
    # waveform data: one binary block per waveform, in INTEGER format
    assert [c.args[0] for c in blocks.call_args_list] == [
        'WLIS:WAV:DATA "pulse",',
        'WLIS:WAV:DATA "idle",',
    ]
    samples, m1, _ = decode_waveform(blocks.call_args_list[0].args[1])
    np.testing.assert_allclose(samples, seq.waveforms[0].samples, atol=1 / 8191)
    assert m1.all()
    # sequence table read back from the instrument
    assert awg.sequence_length.get() == 3
    assert awg.run_mode.get() == "SEQ"
    assert [awg.read_step(i) for i in (1, 2, 3)] == seq.steps


def test_write_block_frames_ieee_block(awg, mocker) -> None:
    raw = mocker.patch.object(awg.visa_handle, "write_raw")
    mocker.patch.object(awg, "read_error_queue", return_value=[])
    awg._write_block('WLIS:WAV:DATA "w",', b"\x01\x02\x03")
    raw.assert_called_once_with(b'WLIS:WAV:DATA "w",#13\x01\x02\x03\n')


def test_write_block_error_is_reported(awg, mocker) -> None:
    mocker.patch.object(awg.visa_handle, "write_raw")
    mocker.patch.object(awg, "read_error_queue", return_value=['-225,"Out of memory"'])
    with pytest.raises(InstrumentErrorQueueError, match='-225,"Out of memory"'):
        awg._write_block('WLIS:WAV:DATA "w",', b"\x00\x00")


def test_invalid_sequence_is_refused_before_sending(awg, mocker) -> None:
    write = mocker.spy(awg, "write")
    bad = AwgSequence(
        waveforms=[AwgWaveform("a", np.zeros(4)), AwgWaveform("b", np.zeros(6))],
        steps=[
            AwgSequenceStep({1: "a", 2: "b"}, event_jump_to=4),
            AwgSequenceStep({5: "missing"}, repetitions=-1),
        ],
    )
    with pytest.raises(InstrumentValueError) as info:
        awg.upload_sequence(bad)
    message = str(info.value)
    for fragment in (
        "step 1: waveforms of unequal length",
        "step 1: event_jump_to=4",
        "step 2: channel 5",
        "'missing' not uploaded",
        "repetitions -1",
    ):
        assert fragment in message
    write.assert_not_called()


def test_waveform_validation() -> None:
    with pytest.raises(ValueError, match="-1..1"):
        AwgWaveform("loud", np.array([0.0, 1.5]))
    with pytest.raises(ValueError, match="marker length"):
        AwgWaveform("m", np.zeros(3), np.zeros(2, bool))


def test_run_stop_and_state(awg, mocker) -> None:
    awg.run()
    awg.stop()
    assert awg.is_running() is False  # the static simulation always reports 0
    mocker.patch.object(awg, "ask_raw", return_value="2")
    assert awg.is_running() is True


def test_safe_state_stops_and_switches_outputs_off(awg) -> None:
    for ch in awg.channels:
        ch.output.set(True)
    awg.safe_state()
    assert [ch.output.get() for ch in awg.channels] == [False] * 4
