"""MOGLabs QRF against its pyvisa-sim file."""

from __future__ import annotations

import pytest

from drivers.errors import InstrumentReplyError
from drivers.moglabs_qrf import _leading_float, _status_on


@pytest.fixture
def qrf(make_sim):
    return make_sim("moglabs_qrf", name="aom")


def test_identity_from_info(qrf) -> None:
    idn = qrf.IDN()
    assert idn["vendor"] == "MOGLabs"
    assert "QRF" in idn["firmware"]


@pytest.mark.parametrize("channel", [1, 2, 3, 4])
@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("frequency", 110.25),
        ("power", 27.5),
        ("power_limit", 31.0),
        ("phase", 45.5),
        ("output", True),
    ],
)
def test_channel_round_trip(qrf, channel: int, param: str, value: object) -> None:
    ch = qrf.channel(channel)
    getattr(ch, param).set(value)
    assert getattr(ch, param).get() == pytest.approx(value)


def test_channels_are_independent(qrf) -> None:
    qrf.ch1.frequency.set(80.0)
    qrf.ch3.frequency.set(200.0)
    assert qrf.ch1.frequency.get() == pytest.approx(80.0)
    assert qrf.ch3.frequency.get() == pytest.approx(200.0)
    assert len(qrf.channels) == 4


def test_optical_switch_role(qrf) -> None:
    qrf.set_drive_power_dbm(25.0, channel=2)
    qrf.set_open(True, channel=2)
    assert qrf.get_drive_power_dbm(channel=2) == pytest.approx(25.0)
    assert qrf.is_open(channel=2) is True
    assert qrf.is_open(channel=1) is False


def test_unknown_channel(qrf) -> None:
    with pytest.raises(InstrumentReplyError, match="no RF channel 5"):
        qrf.set_open(True, channel=5)


def test_unexpected_reply_to_command(qrf, mocker) -> None:
    mocker.patch.object(qrf, "ask_raw", return_value="whatever")
    with pytest.raises(InstrumentReplyError, match="unexpected reply 'whatever'"):
        qrf.write("ON,1,ALL")


def test_safe_state_switches_every_channel_off(qrf) -> None:
    for n in (1, 2, 3, 4):
        qrf.set_open(True, channel=n)
    qrf.safe_state()
    assert [qrf.is_open(channel=n) for n in (1, 2, 3, 4)] == [False] * 4


def test_reply_parsers() -> None:
    assert _leading_float("80.000000 MHz") == pytest.approx(80.0)
    assert _leading_float("-3.5e1 dBm") == pytest.approx(-35.0)
    with pytest.raises(ValueError):
        _leading_float("MHz")
    assert _status_on("SIG: on, POW: on") is True
    assert _status_on("SIG: on, POW: off") is False
