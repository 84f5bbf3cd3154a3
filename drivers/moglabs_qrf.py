"""MOGLabs QRF quad RF synthesiser, used as a 4-channel acousto-optic modulator driver.

Command set: MOGLabs *QRF Agile Quad RF Synthesiser* manual, appendix "Communications /
Command reference" (ASCII over TCP port 7802 or USB serial, CRLF-terminated). The QRF
is not SCPI: every command is answered, ``OK...`` on success or ``ERR: <reason>`` on
failure, so errors are checked in each reply rather than in an error queue. There is no
``*IDN?``; ``INFO`` identifies the unit. Fast on/off of an AOM is done with TTL from the
AWG (or the QRF's table mode); this driver sets the static drive and the RF switch.

===========================  =============================================  =======
command                      meaning                                        unit
===========================  =============================================  =======
``INFO``                     identification text (contains ``QRF``)
``FREQ,<ch>,<x>MHz``         RF frequency; query ``FREQ,<ch>`` -> ``x MHz``  MHz
``POW,<ch>,<x>dBm``          RF power; query ``POW,<ch>`` -> ``x dBm``       dBm
``LIMIT,<ch>,<x>dBm``        power limit (power is clamped below it)         dBm
``PHASE,<ch>,<x>deg``        phase offset; query ``PHASE,<ch>``              deg
``ON,<ch>,ALL``              RF signal and amplifier on
``OFF,<ch>,ALL``             RF signal and amplifier off
``STATUS,<ch>``              state text containing ``SIG: on|off, POW: ...``
===========================  =============================================  =======
"""

from __future__ import annotations

import re
from typing import Any

import qcodes.validators as vals
from qcodes.instrument import ChannelList

from drivers.base import QNodeChannel, QNodeVisaInstrument
from drivers.errors import InstrumentReplyError

CHANNELS = (1, 2, 3, 4)


class MOGLabsQRFChannel(QNodeChannel):
    """One RF output (one AOM)."""

    def __init__(self, parent: MOGLabsQRF, name: str, channel: int, max_power_dbm: float):
        super().__init__(parent, name)
        self.channel = channel
        n = channel
        self.frequency = self.add_parameter(
            "frequency",
            unit="MHz",
            label="RF frequency",
            get_cmd=f"FREQ,{n}",
            set_cmd=f"FREQ,{n},{{:.6f}}MHz",
            get_parser=_leading_float,
            vals=vals.Numbers(10.0, 400.0),
        )
        self.power = self.add_parameter(
            "power",
            unit="dBm",
            label="RF power",
            get_cmd=f"POW,{n}",
            set_cmd=f"POW,{n},{{:.2f}}dBm",
            get_parser=_leading_float,
            vals=vals.Numbers(-50.0, max_power_dbm),
        )
        self.power_limit = self.add_parameter(
            "power_limit",
            unit="dBm",
            label="RF power limit",
            get_cmd=f"LIMIT,{n}",
            set_cmd=f"LIMIT,{n},{{:.2f}}dBm",
            get_parser=_leading_float,
            vals=vals.Numbers(-50.0, max_power_dbm),
        )
        self.phase = self.add_parameter(
            "phase",
            unit="deg",
            label="Phase offset",
            get_cmd=f"PHASE,{n}",
            set_cmd=f"PHASE,{n},{{:.3f}}deg",
            get_parser=_leading_float,
            vals=vals.Numbers(0.0, 360.0),
        )
        self.output = self.add_parameter(
            "output",
            label="RF signal and amplifier on",
            get_cmd=f"STATUS,{n}",
            set_cmd=self._set_output,
            get_parser=_status_on,
            vals=vals.Bool(),
        )

    def _set_output(self, on: bool) -> None:
        self.write(f"{'ON' if on else 'OFF'},{self.channel},ALL")


class MOGLabsQRF(QNodeVisaInstrument):
    """MOGLabs QRF; fulfils :class:`drivers.hal.OpticalSwitch` (channel = RF output 1-4).

    Args:
        max_power_dbm: upper bound accepted for power and power limit (AOM damage
            threshold; the QRF itself delivers up to about +33 dBm).
    """

    MODEL = "MOGLabs QRF"
    IDN_QUERY = "INFO"
    IDN_VENDOR = ""
    IDN_MODEL = "QRF"
    default_terminator = "\r\n"

    def __init__(
        self, name: str, address: str | None = None, max_power_dbm: float = 33.0, **kwargs: Any
    ) -> None:
        super().__init__(name, address, **kwargs)
        channels = ChannelList(self, "channels", MOGLabsQRFChannel)
        for n in CHANNELS:
            channel = MOGLabsQRFChannel(self, f"ch{n}", n, max_power_dbm)
            channels.append(channel)
            self.add_submodule(f"ch{n}", channel)
        self.channels = self.add_submodule("channels", channels.to_channel_tuple())

    def parse_identity(self, reply: str) -> tuple[str, str]:
        return "", reply

    def get_idn(self) -> dict[str, str | None]:
        reply = self.ask(self.IDN_QUERY).strip()
        return {"vendor": "MOGLabs", "model": "QRF", "serial": None, "firmware": reply}

    def write(self, cmd: str) -> None:
        """Every QRF command is answered; anything but ``OK...`` is an error."""
        reply = self.ask(cmd)
        if not reply.strip().upper().startswith("OK"):
            raise InstrumentReplyError(
                self.display_name, f"refused: unexpected reply {reply.strip()!r}", command=cmd
            )

    def _check_reply(self, cmd: str, reply: str) -> None:
        if reply.strip().upper().startswith("ERR"):
            raise InstrumentReplyError(
                self.display_name, f"refused: instrument replied {reply.strip()!r}", command=cmd
            )

    def channel(self, channel: int) -> MOGLabsQRFChannel:
        if channel not in CHANNELS:
            raise InstrumentReplyError(
                self.display_name, f"has no RF channel {channel}; channels are {CHANNELS}"
            )
        return self.channels[channel - 1]

    # -- hal.OpticalSwitch ----------------------------------------------------------------
    def set_open(self, is_open: bool, channel: int = 1) -> None:
        self.channel(channel).output.set(bool(is_open))

    def is_open(self, channel: int = 1) -> bool:
        return bool(self.channel(channel).output.get())

    def set_drive_power_dbm(self, power_dbm: float, channel: int = 1) -> None:
        self.channel(channel).power.set(power_dbm)

    def get_drive_power_dbm(self, channel: int = 1) -> float:
        return float(self.channel(channel).power.get())

    # -- hal.OpticalPhaseShifter -----------------------------------------------------------
    def set_phase_deg(self, phase_deg: float, channel: int = 1) -> None:
        """RF phase of ``channel``; the AOM's first diffraction order carries it as an optical
        phase (the interferometer-phase actuator), wrapped into the unit's 0..360 deg."""
        self.channel(channel).phase.set(float(phase_deg) % 360.0)

    def get_phase_deg(self, channel: int = 1) -> float:
        return float(self.channel(channel).phase.get())

    def safe_state(self) -> None:
        """RF off on every channel: no light passes the AOMs' first order."""
        for channel in self.channels:
            channel.output.set(False)


def _leading_float(reply: str) -> float:
    """``'80.000000 MHz'`` -> 80.0 (the unit and any extra text are ignored)."""
    match = re.match(r"\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)", reply)
    if match is None:
        raise ValueError(f"no number at the start of reply {reply!r}")
    return float(match.group(1))


def _status_on(reply: str) -> bool:
    """True when both the signal and the amplifier are reported on."""
    text = reply.upper()
    return "SIG: ON" in text and "POW: ON" in text
