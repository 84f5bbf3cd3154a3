"""The simulated Single Quantum Eos, driven by the real driver over the simulated VISA wire."""

from __future__ import annotations

from collections.abc import Iterator
from unittest.mock import MagicMock

import numpy as np
import pytest
import pyvisa

from drivers.errors import InstrumentErrorQueueError
from drivers.singlequantum_eos import SingleQuantumEos
from sim_backend.instruments.protocols import MessageHandler
from sim_backend.instruments.sim_singlequantum_eos import SimSingleQuantumEos
from sim_backend.instruments.visa_library import SimulatedVisaLibrary

ADDRESS = "TCPIP0::snspd::12000::SOCKET"


@pytest.fixture
def sim(hooks: MagicMock) -> SimSingleQuantumEos:
    return SimSingleQuantumEos("snspd", hooks=hooks)


def _connect(sim: SimSingleQuantumEos, **kwargs: object) -> SingleQuantumEos:
    library = SimulatedVisaLibrary()
    library.attach(ADDRESS, sim)
    rm = pyvisa.ResourceManager(library)
    return SingleQuantumEos(sim.name, resource=rm.open_resource(ADDRESS), **kwargs)


@pytest.fixture
def snspd(sim: SimSingleQuantumEos) -> Iterator[SingleQuantumEos]:
    driver = _connect(sim)
    yield driver
    driver.close()


def test_is_a_message_handler(sim: SimSingleQuantumEos) -> None:
    assert isinstance(sim, MessageHandler)


def test_identity_is_accepted(snspd: SingleQuantumEos) -> None:
    idn = snspd.IDN()
    assert (idn["vendor"], idn["model"]) == ("Single Quantum", "Eos")


def test_channels_from_instrument(snspd: SingleQuantumEos) -> None:
    assert snspd.channel_count() == 4
    assert [ch.channel for ch in snspd.channels] == [1, 2, 3, 4]


def test_detector_count_is_the_instruments(hooks: MagicMock) -> None:
    driver = _connect(SimSingleQuantumEos("snspd2", hooks=hooks, detectors=2))
    assert driver.channel_count() == 2


@pytest.mark.parametrize(
    ("param", "value"),
    [("detector_enable", True), ("detector_enable", False), ("measurement_period", 250)],
)
def test_global_round_trip(snspd: SingleQuantumEos, param: str, value: object) -> None:
    getattr(snspd, param).set(value)
    assert getattr(snspd, param).get() == value


@pytest.mark.parametrize("channel", [1, 2, 3, 4])
@pytest.mark.parametrize(("param", "value"), [("bias_current", 12.345), ("trigger_level", 120.5)])
def test_channel_round_trip(
    snspd: SingleQuantumEos, channel: int, param: str, value: float
) -> None:
    det = snspd.detector(channel)
    getattr(det, param).set(value)
    assert getattr(det, param).get() == pytest.approx(value)


def test_settings_are_the_attributes_the_lab_reads(
    snspd: SingleQuantumEos, sim: SimSingleQuantumEos
) -> None:
    snspd.set_bias_current_ua(18.5, channel=2)
    snspd.det2.trigger_level.set(80.0)
    assert sim.channels[2].bias_ua == pytest.approx(18.5)
    assert sim.channels[2].trigger_level_mv == pytest.approx(80.0)
    assert sim.channels[2].bias_enabled is False
    snspd.detector_enable.set(True)
    assert all(ch.bias_enabled for ch in sim.channels.values())
    snspd.measurement_period.set(500)
    assert sim.measurement_period_ms == 500


@pytest.mark.parametrize(("period_ms", "counts"), [(1000, 1234), (100, 123)])
def test_count_rate_comes_from_the_lab(
    snspd: SingleQuantumEos, hooks: MagicMock, period_ms: int, counts: int
) -> None:
    hooks.detector_count_rate_hz.side_effect = lambda name, ch: 1234.0 if ch == 3 else 10.0
    snspd.detector_enable.set(True)
    snspd.measurement_period.set(period_ms)
    assert snspd.det3.counts.get() == counts
    assert snspd.count_rate_hz(channel=3) == pytest.approx(counts / (period_ms / 1e3))
    assert snspd.det1.counts.get() == round(10.0 * period_ms / 1e3)
    hooks.detector_count_rate_hz.assert_any_call("snspd", 3)


def test_no_counts_without_bias(snspd: SingleQuantumEos, hooks: MagicMock) -> None:
    hooks.detector_count_rate_hz.side_effect = lambda name, ch: 1234.0
    assert snspd.count_rate_hz(channel=1) == 0.0


def test_poisson_counts_with_an_rng(hooks: MagicMock) -> None:
    hooks.detector_count_rate_hz.side_effect = lambda name, ch: 1234.0
    sim = SimSingleQuantumEos("snspd3", hooks=hooks, rng=np.random.default_rng(7))
    driver = _connect(sim)
    driver.detector_enable.set(True)
    driver.measurement_period.set(1000)
    expected = np.random.default_rng(7).poisson(1234.0, size=3)
    assert [driver.det1.counts.get() for _ in range(3)] == expected.tolist()


def test_latch_state_comes_from_the_lab(snspd: SingleQuantumEos, hooks: MagicMock) -> None:
    hooks.detector_latched.side_effect = lambda name, ch: ch == 2
    snspd.detector_enable.set(True)
    for n in (1, 2):
        snspd.set_bias_current_ua(10.0, channel=n)
    assert snspd.is_latched(channel=2) is True
    assert snspd.is_latched(channel=1) is False
    assert snspd.det1.bias_voltage.get() == 0.0
    assert snspd.det2.bias_voltage.get() > 500.0  # mV, well above the 50 mV threshold
    hooks.detector_latched.assert_any_call("snspd", 2)


def test_reset_tells_the_lab(
    snspd: SingleQuantumEos, sim: SimSingleQuantumEos, hooks: MagicMock
) -> None:
    hooks.now_s.side_effect = None
    hooks.now_s.return_value = 12.5
    hooks.settings_changed.reset_mock()
    snspd.reset_latch(channel=2)
    hooks.settings_changed.assert_called_once_with("snspd")
    assert sim.channels[2].resets == 1
    assert sim.channels[2].last_reset_s == 12.5
    assert snspd.read_error_queue() == []


def test_out_of_range_bias_goes_to_the_error_queue(
    snspd: SingleQuantumEos, sim: SimSingleQuantumEos
) -> None:
    with pytest.raises(InstrumentErrorQueueError) as info:
        snspd.write("DET1:BIAS 500")
    message = str(info.value)
    assert message.startswith("snspd (Single Quantum Eos): command 'DET1:BIAS 500' refused")
    assert "-222" in message
    assert sim.channels[1].bias_ua == 0.0
    assert snspd.read_error_queue() == []


@pytest.mark.parametrize(
    ("command", "code"),
    [
        ("DET7:BIAS 5", "-114"),
        ("DET1:TRIG 2000", "-222"),
        ("MEAS:PER 5", "-222"),
        ("DET:ENAB MAYBE", "-224"),
        ("DET1:COUN 5", "-113"),
        ("DET1:RES 1", "-108"),
    ],
)
def test_bad_commands_are_reported(snspd: SingleQuantumEos, command: str, code: str) -> None:
    with pytest.raises(InstrumentErrorQueueError, match=code):
        snspd.write(command)


def test_settings_changed_is_called_on_changes_only(
    snspd: SingleQuantumEos, hooks: MagicMock
) -> None:
    hooks.settings_changed.reset_mock()
    snspd.get_bias_current_ua(channel=1)
    snspd.count_rate_hz(channel=1)
    hooks.settings_changed.assert_not_called()
    snspd.set_bias_current_ua(5.0, channel=1)
    hooks.settings_changed.assert_called_with("snspd")
    hooks.settings_changed.reset_mock()
    snspd.detector_enable.set(True)
    hooks.settings_changed.assert_called_with("snspd")


def test_safe_state_disables_and_zeroes_bias(
    snspd: SingleQuantumEos, sim: SimSingleQuantumEos
) -> None:
    snspd.detector_enable.set(True)
    for n in (1, 2, 3, 4):
        snspd.set_bias_current_ua(15.0, channel=n)
    snspd.safe_state()
    assert sim.detector_enable is False
    assert [ch.bias_ua for ch in sim.channels.values()] == [0.0] * 4
    assert [snspd.get_bias_current_ua(channel=n) for n in (1, 2, 3, 4)] == [0.0] * 4
