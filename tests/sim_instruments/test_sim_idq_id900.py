"""The simulated ID Quantique ID900, driven by the real driver over the simulated VISA wire."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.errors import InstrumentReplyError
from drivers.hal import TAG_DTYPE
from drivers.idq_id900 import IDQuantiqueID900
from sim_backend.instruments import sim_idq_id900
from sim_backend.instruments.protocols import MessageHandler
from sim_backend.instruments.sim_idq_id900 import SimIdqID900

ADDRESS = "TCPIP0::tagger::5555::SOCKET"


class FakeLab:
    """Lab hooks of a time tagger: fixed rates, queued tag batches drained per call."""

    def __init__(self) -> None:
        self.rates: dict[int, float] = {}
        self.batches: list[np.ndarray] = []
        self.changes: list[str] = []
        self.tag_calls: list[str] = []

    def push(self, *tags: tuple[int, int]) -> None:
        self.batches.append(np.array(tags, dtype=np.int64).reshape(-1, 2))

    def now_s(self) -> float:
        return 0.0

    def settings_changed(self, instrument: str) -> None:
        self.changes.append(instrument)

    def awg_started(self, instrument: str) -> None:
        raise AssertionError("a time tagger starts no AWG")

    awg_stopped = awg_started

    def detector_count_rate_hz(self, instrument: str, channel: int) -> float:
        raise AssertionError("a time tagger has no SNSPD channels")

    def detector_latched(self, instrument: str, channel: int) -> bool:
        raise AssertionError("a time tagger has no SNSPD channels")

    def time_tags(self, instrument: str) -> np.ndarray:
        self.tag_calls.append(instrument)
        tags = np.concatenate(self.batches) if self.batches else np.empty((0, 2), np.int64)
        self.batches.clear()
        return tags

    def input_count_rates_hz(self, instrument: str) -> dict[int, float]:
        return dict(self.rates)


@pytest.fixture
def lab() -> FakeLab:
    return FakeLab()


@pytest.fixture
def sim(lab: FakeLab) -> SimIdqID900:
    return SimIdqID900("tc", hooks=lab)


@pytest.fixture
def tc(sim: SimIdqID900, connect) -> IDQuantiqueID900:
    return connect(IDQuantiqueID900, sim, ADDRESS, "tc")


def test_is_a_message_handler(sim: SimIdqID900) -> None:
    assert isinstance(sim, MessageHandler)


def test_identity_is_accepted(tc: IDQuantiqueID900) -> None:
    idn = tc.IDN()
    assert (idn["vendor"], idn["model"]) == ("ID Quantique", "ID900")


@pytest.mark.parametrize("channel", [1, 2, 3, 4])
@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("enabled", True),
        ("enabled", False),
        ("coupling", "AC"),
        ("edge", "FALLING"),
        ("threshold", -0.125),
        ("integration_time", 250),
        ("delay", 12_500),
    ],
)
def test_input_round_trip(tc: IDQuantiqueID900, channel: int, param: str, value: object) -> None:
    inp = tc.input(channel)
    getattr(inp, param).set(value)
    expected = pytest.approx(value) if isinstance(value, float) else value
    assert getattr(inp, param).get() == expected


@pytest.mark.parametrize("index", [1, 2, 3, 4])
@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("reference", "INPU1"),
        ("stop", "INPU2"),
        ("reference", "STAR"),
        ("minimum", 2_000),
        ("bin_width", 250),
        ("bin_count", 4096),
    ],
)
def test_histogram_round_trip(tc: IDQuantiqueID900, index: int, param: str, value: object) -> None:
    hist = tc.histograms[index - 1]
    getattr(hist, param).set(value)
    assert getattr(hist, param).get() == value


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("coincidence_begin", 100),
        ("coincidence_end", 2_000),
        ("acquisition", True),
        ("acquisition", False),
    ],
)
def test_global_round_trip(tc: IDQuantiqueID900, param: str, value: object) -> None:
    getattr(tc, param).set(value)
    assert getattr(tc, param).get() == value


def test_settings_are_the_attributes_the_lab_reads(tc: IDQuantiqueID900, sim: SimIdqID900) -> None:
    tc.configure_channel(2, threshold_v=0.2, delay_ps=3_000)
    inp = sim.inputs[2]
    assert (inp.enabled, inp.threshold_v, inp.delay_ps) == (True, pytest.approx(0.2), 3_000)
    assert inp.delay_linked and inp.effective_delay_ps == 3_000
    assert tc.ask("DELAY2:INPO:LINK?") == "INPU2"
    assert sim.inputs[1].effective_delay_ps == 0  # delay block 1 not linked
    tc.set_coincidence_window_ps(1_500)
    assert sim.coincidence_window_ps == 1_500
    tc.acquisition.set(True)
    assert sim.acquisition_on is True


def test_count_rates_come_from_the_lab(tc: IDQuantiqueID900, lab: FakeLab) -> None:
    lab.rates = {1: 1234.0, 2: 800.0, 3: 5.0}
    tc.configure_channel(1, threshold_v=0.2)
    tc.configure_channel(2, threshold_v=0.2)
    tc.input2.integration_time.set(250)
    assert tc.input1.counts.get() == 1234
    assert tc.input2.counts.get() == 200
    assert tc.count_rates_hz() == {1: pytest.approx(1234.0), 2: pytest.approx(800.0)}
    assert tc.input3.counts.get() == 0  # disabled input counts nothing


def test_poisson_counts_with_an_rng(lab: FakeLab) -> None:
    lab.rates = {1: 1234.0}
    sim = SimIdqID900("tc2", hooks=lab, rng=np.random.default_rng(3))
    sim.handle("INPU1:ENAB ON")
    counts = [int(sim.handle("INPU1:COUN?")) for _ in range(3)]
    assert counts == np.random.default_rng(3).poisson(1234.0, size=3).tolist()


def test_time_tags_come_from_the_lab(tc: IDQuantiqueID900, lab: FakeLab) -> None:
    tc.configure_channel(1, threshold_v=0.2)
    tc.configure_channel(2, threshold_v=0.2)
    lab.push((1, 1000), (2, 1500), (3, 1700), (1, 250_000), (2, 249_900))
    lab.push((1, 500_200))
    tags = tc.read_tags()
    assert tags.dtype == TAG_DTYPE
    np.testing.assert_array_equal(tags["channel"], [1, 2, 2, 1, 1])
    np.testing.assert_array_equal(tags["time_ps"], [1000, 1500, 249_900, 250_000, 500_200])
    assert len(tc.read_tags()) == 0  # drained
    assert "tc" in lab.tag_calls


def test_tags_of_disabled_inputs_are_dropped(tc: IDQuantiqueID900, lab: FakeLab) -> None:
    lab.push((1, 10), (2, 20))
    tc.input1.enabled.set(True)  # the tags above arrived before this
    lab.push((1, 30), (2, 40))
    tc.input2.enabled.set(True)
    np.testing.assert_array_equal(tc.read_tags()["time_ps"], [30])


def test_raw_buffer_is_bounded(
    tc: IDQuantiqueID900, lab: FakeLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sim_idq_id900, "MAX_RAW_TAGS", 5)
    tc.input1.enabled.set(True)
    lab.push(*[(1, t) for t in range(4)])
    tc.input1.threshold.set(0.3)  # a set command: the tags so far are taken in
    lab.push(*[(1, t) for t in range(4, 8)])
    assert tc.ask("RAW1:DATA?") == "[3,4,5,6,7]"  # the oldest were dropped


def test_histogram_from_the_tags(tc: IDQuantiqueID900, lab: FakeLab) -> None:
    tc.configure_channel(1, threshold_v=0.2)
    tc.configure_channel(2, threshold_v=0.2)
    hist = tc.hist1
    hist.reference.set("INPU1")
    hist.stop.set("INPU2")
    hist.minimum.set(100)
    hist.bin_width.set(100)
    hist.bin_count.set(5)
    lab.push((1, 1000), (2, 1150), (2, 1420))  # gate off: not histogrammed
    tc.acquisition.set(True)
    lab.push((1, 1000), (2, 1150), (2, 1420), (2, 1610), (2, 1050), (1, 5000), (2, 5120))
    lab.push((2, 5399))  # the start of the previous batch still counts
    # delays after the latest start: 150, 420, 610 (beyond 600), 50 (before MIN), 120, 399
    np.testing.assert_array_equal(hist.data(), [2, 0, 1, 1, 0])
    np.testing.assert_array_equal(tc.hist2.data(), [0] * 8)  # not linked
    hist.flush()
    np.testing.assert_array_equal(hist.data(), [0] * 5)
    lab.push((2, 5200))
    hist.bin_count.set(3)  # re-binning clears
    np.testing.assert_array_equal(hist.data(), [0, 0, 0])


def test_start_input_feeds_histograms(tc: IDQuantiqueID900, lab: FakeLab) -> None:
    tc.input3.enabled.set(True)
    tc.hist4.reference.set("STAR")
    tc.hist4.stop.set("INPU3")
    tc.hist4.bin_width.set(10)
    tc.acquisition.set(True)
    lab.push((0, 0), (3, 25), (0, 100), (3, 171))
    np.testing.assert_array_equal(tc.hist4.data(), [0, 0, 1, 0, 0, 0, 0, 1])


def test_out_of_range_threshold_is_an_error_reply(tc: IDQuantiqueID900, sim: SimIdqID900) -> None:
    with pytest.raises(InstrumentReplyError) as info:
        tc.write("INPU1:THRE 5V")
    message = str(info.value)
    assert message.startswith("tc (ID Quantique ID900): command 'INPU1:THRE 5V' refused")
    assert "SCPI_ERR_PARAM_RANGE" in message
    assert sim.inputs[1].threshold_v == 0.5
    tc.ask("*IDN?")  # the next command goes through


@pytest.mark.parametrize(
    ("command", "kind"),
    [
        ("INPU5:ENAB ON", "INVALID_CMD"),
        ("INPU1:ENAB MAYBE", "PARAM_TYPE"),
        ("INPU1:COUP XY", "PARAM_TYPE"),
        ("INPU1:COUN:INTE 0", "PARAM_RANGE"),
        ("INPU1:COUN:INTE 2.5", "PARAM_TYPE"),
        ("DELAY1:VALUE -3", "PARAM_RANGE"),
        ("HIST1:BCOU 20000", "PARAM_RANGE"),
        ("HIST1:INPO:REF:LINK INPU9", "PARAM_TYPE"),
        ("TSGE3:ENAB ON", "INVALID_CMD"),
        ("RAW1:DATA 5", "INVALID_CMD"),
        ("FOO:BAR 1", "INVALID_CMD"),
    ],
)
def test_bad_commands_are_error_replies(tc: IDQuantiqueID900, command: str, kind: str) -> None:
    with pytest.raises(InstrumentReplyError, match=f"SCPI_ERR_{kind}"):
        tc.write(command)


def test_handler_never_raises_on_garbage(sim: SimIdqID900) -> None:
    garbage = ("", "?", "INPU1:ENAB", "INPU:THRE?", "HIST1:FLUS?", "\x00\xff", "RAW0:DATA?")
    numbers = ("INPU1:COUN:INTE inf", "DELAY1:VALUE nan", "INPU1:THRE nanV", "HIST1:MIN 1e400")
    for message in garbage + numbers:
        assert "SCPI_ERR" in sim.handle(message)


def test_long_forms_and_case(sim: SimIdqID900) -> None:
    assert sim.handle("input1:threshold -0.3V") == "OK"
    assert sim.handle("INPUT1:THRESHOLD?") == "-0.300V"
    assert sim.handle("INPU1:THRE 250mV") == "OK"
    assert sim.inputs[1].threshold_v == pytest.approx(0.25)


def test_settings_changed_is_called_on_changes_only(tc: IDQuantiqueID900, lab: FakeLab) -> None:
    lab.changes.clear()
    tc.input1.threshold.get()
    tc.count_rates_hz()
    tc.read_tags()
    assert lab.changes == []
    tc.input1.threshold.set(0.1)
    assert lab.changes == ["tc"]
    tc.input1.delay.set(10)
    assert lab.changes == ["tc", "tc"]


def test_safe_state_stops_acquisition(tc: IDQuantiqueID900, sim: SimIdqID900) -> None:
    tc.acquisition.set(True)
    tc.safe_state()
    assert sim.acquisition_on is False
    assert tc.acquisition.get() is False
