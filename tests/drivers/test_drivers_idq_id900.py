"""ID Quantique ID900 against its pyvisa-sim file."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.errors import InstrumentReplyError, InstrumentValueError
from drivers.hal import TAG_DTYPE


@pytest.fixture
def tc(make_sim):
    return make_sim("idq_id900", name="tc")


@pytest.mark.parametrize("channel", [1, 2, 3, 4])
@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("enabled", True),
        ("coupling", "AC"),
        ("edge", "FALLING"),
        ("threshold", -0.125),
        ("integration_time", 250),
        ("delay", 12_500),
    ],
)
def test_input_round_trip(tc, channel: int, param: str, value: object) -> None:
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
        ("minimum", 2_000),
        ("bin_width", 250),
        ("bin_count", 4096),
    ],
)
def test_histogram_round_trip(tc, index: int, param: str, value: object) -> None:
    hist = tc.histograms[index - 1]
    getattr(hist, param).set(value)
    assert getattr(hist, param).get() == value


@pytest.mark.parametrize(
    ("param", "value"),
    [("coincidence_begin", 100), ("coincidence_end", 2_000), ("acquisition", True)],
)
def test_global_round_trip(tc, param: str, value: object) -> None:
    getattr(tc, param).set(value)
    assert getattr(tc, param).get() == value


def test_histogram_data_and_bins(tc) -> None:
    hist = tc.hist1
    hist.minimum.set(1_000)
    hist.bin_width.set(100)
    hist.bin_count.set(8)
    np.testing.assert_array_equal(hist.data(), [0, 2, 9, 31, 30, 8, 1, 0])
    np.testing.assert_array_equal(hist.bin_edges_ps(), 1_000 + 100 * np.arange(9))
    hist.flush()


def test_configure_channel_and_count_rates(tc) -> None:
    tc.configure_channel(1, threshold_v=0.2, delay_ps=3_000)
    tc.configure_channel(2, threshold_v=-0.1)
    assert tc.input1.threshold.get() == pytest.approx(0.2)
    assert tc.input1.delay.get() == 3_000
    assert tc.ask("DELAY1:INPO:LINK?") == "INPU1"
    tc.input2.integration_time.set(500)
    assert tc.count_rates_hz() == {1: pytest.approx(5000.0), 2: pytest.approx(10000.0)}


def test_coincidence_window(tc) -> None:
    tc.set_coincidence_window_ps(1_500)
    assert (tc.coincidence_begin.get(), tc.coincidence_end.get()) == (0, 1_500)


def test_read_tags_merges_channels_in_time_order(tc) -> None:
    tc.input1.enabled.set(True)
    tc.input2.enabled.set(True)
    tags = tc.read_tags()
    assert tags.dtype == TAG_DTYPE
    np.testing.assert_array_equal(tags["channel"], [1, 2, 2, 1, 1])
    np.testing.assert_array_equal(tags["time_ps"], [1000, 1500, 249900, 250000, 500200])


def test_read_tags_without_enabled_inputs(tc) -> None:
    tags = tc.read_tags()
    assert tags.dtype == TAG_DTYPE and len(tags) == 0


def test_unparsable_list(tc) -> None:
    with pytest.raises(InstrumentReplyError, match="unparsable list"):
        tc.parse_list("[1,x,3]", "HIST1:DATA?")


def test_unknown_input(tc) -> None:
    with pytest.raises(InstrumentValueError, match="no input 5"):
        tc.configure_channel(5, threshold_v=0.1)


def test_safe_state_stops_acquisition(tc) -> None:
    tc.acquisition.set(True)
    tc.safe_state()
    assert tc.acquisition.get() is False
