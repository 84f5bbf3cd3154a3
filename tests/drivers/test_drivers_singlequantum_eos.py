"""Single Quantum Eos (SCPI rendering) against its pyvisa-sim file."""

from __future__ import annotations

import pytest
from qcodes.instrument import Instrument

from drivers.errors import InstrumentValueError
from drivers.singlequantum_eos import SingleQuantumEos


@pytest.fixture
def snspd(make_sim):
    return make_sim("singlequantum_eos", name="snspd")


def test_channels_from_instrument(snspd) -> None:
    assert snspd.channel_count() == 4
    assert [ch.channel for ch in snspd.channels] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("param", "value"), [("detector_enable", True), ("measurement_period", 250)]
)
def test_global_round_trip(snspd, param: str, value: object) -> None:
    getattr(snspd, param).set(value)
    assert getattr(snspd, param).get() == value


@pytest.mark.parametrize("channel", [1, 2, 3, 4])
@pytest.mark.parametrize(("param", "value"), [("bias_current", 12.345), ("trigger_level", 120.5)])
def test_channel_round_trip(snspd, channel: int, param: str, value: float) -> None:
    det = snspd.detector(channel)
    getattr(det, param).set(value)
    assert getattr(det, param).get() == pytest.approx(value)


def test_readbacks(snspd) -> None:
    assert snspd.det1.counts.get() == 250
    assert snspd.det1.bias_voltage.get() == pytest.approx(0.4)


def test_count_rate_uses_measurement_period(snspd) -> None:
    snspd.measurement_period.set(100)
    assert snspd.count_rate_hz(channel=3) == pytest.approx(2500.0)
    snspd.measurement_period.set(500)
    assert snspd.count_rate_hz(channel=3) == pytest.approx(500.0)


def test_latch_from_bias_voltage(snspd) -> None:
    assert snspd.is_latched(channel=2) is False  # 0.4 mV < 50 mV threshold
    snspd.det2.latch_threshold.set(0.1)
    assert snspd.is_latched(channel=2) is True
    snspd.reset_latch(channel=2)  # accepted, no error-queue entry
    assert snspd.read_error_queue() == []


def test_photon_detector_role(snspd) -> None:
    snspd.set_bias_current_ua(18.0, channel=4)
    assert snspd.get_bias_current_ua(channel=4) == pytest.approx(18.0)
    assert snspd.get_bias_current_ua(channel=1) == pytest.approx(0.0)


def test_unknown_detector(snspd) -> None:
    with pytest.raises(InstrumentValueError, match="no detector 7; detectors are 1..4"):
        snspd.set_bias_current_ua(1.0, channel=7)


def test_max_bias_is_configurable(make_sim) -> None:
    snspd = make_sim("singlequantum_eos", name="snspd_low", max_bias_ua=20.0)
    with pytest.raises(InstrumentValueError, match="expected 0..20 uA"):
        snspd.set_bias_current_ua(25.0)


def test_safe_state_disables_and_zeroes_bias(snspd) -> None:
    snspd.detector_enable.set(True)
    for n in (1, 2, 3, 4):
        snspd.set_bias_current_ua(15.0, channel=n)
    snspd.safe_state()
    assert snspd.detector_enable.get() is False
    assert [snspd.get_bias_current_ua(channel=n) for n in (1, 2, 3, 4)] == [0.0] * 4


def test_implausible_detector_count_closes_the_connection(mocker) -> None:
    real_ask = SingleQuantumEos.ask

    def ask(self, cmd: str) -> str:
        return "0" if cmd == "DET:NUMB?" else real_ask(self, cmd)

    mocker.patch.object(SingleQuantumEos, "ask", ask)
    with pytest.raises(InstrumentValueError, match="reports 0 detectors, expected 1..16"):
        SingleQuantumEos(
            "snspd_bad",
            address="GPIB::1::INSTR",
            pyvisa_sim_file="drivers.sims:singlequantum_eos.yaml",
        )
    assert not Instrument.exist("snspd_bad")
