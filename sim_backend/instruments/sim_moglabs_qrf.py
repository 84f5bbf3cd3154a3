"""Simulated MOGLabs QRF quad RF synthesiser (four AOM drive channels).

Speaks the QRF's own ASCII protocol as documented in the MOGLabs *QRF Agile Quad RF
Synthesiser* manual, appendix "Command reference", and as ``drivers/moglabs_qrf.py`` uses
it: comma-separated, case-insensitive commands, **every** command answered -- ``OK`` on
success, ``ERR: <reason>`` on failure (no error queue), ``INFO`` instead of ``*IDN?``.

==========================  =================================================
command                     reply
==========================  =================================================
``INFO``                    ``MOGLabs QRF Agile RF Synthesiser, serial ..., firmware ...``
``FREQ,<ch>,<x>[unit]``     ``OK``; unit Hz/kHz/MHz/GHz, default MHz (10..400 MHz)
``FREQ,<ch>``               ``80.000000 MHz``
``POW,<ch>,<x>[unit]``      ``OK``; unit dBm (default), mW or W (-50..+33 dBm)
``POW,<ch>``                ``27.50 dBm``
``LIMIT,<ch>,<x>[unit]``    ``OK``; power limit (-50..+33 dBm); power is clamped to it
``LIMIT,<ch>``              ``30.00 dBm``
``PHASE,<ch>,<x>[unit]``    ``OK``; unit deg (default) or rad (0..360 deg)
``PHASE,<ch>``              ``45.500 deg``
``ON,<ch>[,SIG|POW|ALL]``   ``OK``; RF signal and/or amplifier on (default ALL)
``OFF,<ch>[,SIG|POW|ALL]``  ``OK``
``STATUS,<ch>``             ``SIG: on, POW: on, LIM: 30.00 dBm, mode NSB``
==========================  =================================================

The power limit follows the manual: a power setpoint above the limit is clamped to the
limit, and lowering the limit below the present power lowers the power.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .edits import Watched
from .protocols import LabHooks, NullLabHooks

CHANNELS = (1, 2, 3, 4)
FREQUENCY_RANGE_MHZ = (10.0, 400.0)
POWER_RANGE_DBM = (-50.0, 33.0)
PHASE_RANGE_DEG = (0.0, 360.0)

_NUMBER = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z]*)\s*$")
_FREQUENCY_UNITS = {"": 1.0, "HZ": 1e-6, "KHZ": 1e-3, "MHZ": 1.0, "GHZ": 1e3}
_PHASE_UNITS = {"": 1.0, "DEG": 1.0, "RAD": 180.0 / math.pi}


@dataclass
class QrfChannelState(Watched):
    """Settings of one RF output, as the unit keeps them."""

    frequency_mhz: float = 80.0
    power_dbm: float = 0.0
    power_limit_dbm: float = 30.0
    phase_deg: float = 0.0
    rf_on: bool = False
    amplifier_on: bool = False

    @property
    def is_open(self) -> bool:
        """Drive reaches the AOM: RF signal and amplifier both on."""
        return self.rf_on and self.amplifier_on


class _CommandError(Exception):
    """Internal: becomes an ``ERR: <reason>`` reply."""


class SimMoglabsQRF(Watched):
    """Simulated MOGLabs QRF; a :class:`~sim_backend.instruments.protocols.MessageHandler`.

    Args:
        name: instrument name (passed to the lab hooks).
        hooks: the simulated lab; notified on every setting change.
        serial: serial number shown by ``INFO``.
    """

    def __init__(self, name: str, hooks: LabHooks | None = None, serial: str = "QRF-0042") -> None:
        self.name = name
        self.termination = "\r\n"
        self.hooks: LabHooks = hooks if hooks is not None else NullLabHooks()
        self.serial = serial
        self.firmware = "1.3.6"
        self.channels: dict[int, QrfChannelState] = {n: QrfChannelState() for n in CHANNELS}

    # -- what the physics reads -----------------------------------------------------------
    def is_open(self, channel: int) -> bool:
        """RF signal and amplifier of ``channel`` both on (the AOM diffracts)."""
        return self.channels[channel].is_open

    # -- MessageHandler -----------------------------------------------------------------------
    def handle(self, message: str) -> str | None:
        parts = [p.strip() for p in message.strip().split(",")]
        command = parts[0].upper()
        args = parts[1:]
        try:
            if command == "INFO" and not args:
                return (
                    f"MOGLabs QRF Agile RF Synthesiser, serial {self.serial}, "
                    f"firmware {self.firmware}"
                )
            if command in ("FREQ", "POW", "LIMIT", "PHASE"):
                return self._value_command(command, args)
            if command in ("ON", "OFF"):
                return self._switch(command == "ON", args)
            if command == "STATUS":
                ch = self._channel(args, 1)
                state = self.channels[ch]
                return (
                    f"SIG: {_on(state.rf_on)}, POW: {_on(state.amplifier_on)}, "
                    f"LIM: {state.power_limit_dbm:.2f} dBm, mode NSB"
                )
        except _CommandError as exc:
            return f"ERR: {exc}"
        return "ERR: Command not defined"

    # -- commands ---------------------------------------------------------------------------
    def _channel(self, args: list[str], max_args: int) -> int:
        if not args or len(args) > max_args:
            raise _CommandError("wrong number of arguments")
        try:
            ch = int(args[0])
        except ValueError:
            raise _CommandError(f"invalid channel {args[0]!r}") from None
        if ch not in CHANNELS:
            raise _CommandError(f"invalid channel {ch}")
        return ch

    def _value_command(self, command: str, args: list[str]) -> str:
        ch = self._channel(args, 2)
        state = self.channels[ch]
        if len(args) == 1:
            if command == "FREQ":
                return f"{state.frequency_mhz:.6f} MHz"
            if command == "POW":
                return f"{state.power_dbm:.2f} dBm"
            if command == "LIMIT":
                return f"{state.power_limit_dbm:.2f} dBm"
            return f"{state.phase_deg:.3f} deg"
        text = args[1]
        if command == "FREQ":
            value = _parse(text, _FREQUENCY_UNITS, "frequency")
            _check_range(value, FREQUENCY_RANGE_MHZ, "frequency")
            state.frequency_mhz = value
        elif command in ("POW", "LIMIT"):
            what = "power" if command == "POW" else "limit"
            value = _parse_power(text, what)
            _check_range(value, POWER_RANGE_DBM, what)
            if command == "POW":
                state.power_dbm = min(value, state.power_limit_dbm)
            else:
                state.power_limit_dbm = value
                state.power_dbm = min(state.power_dbm, value)
        else:
            value = _parse(text, _PHASE_UNITS, "phase")
            _check_range(value, PHASE_RANGE_DEG, "phase")
            state.phase_deg = value
        self.hooks.settings_changed(self.name)
        return "OK"

    def _switch(self, on: bool, args: list[str]) -> str:
        ch = self._channel(args, 2)
        target = args[1].upper() if len(args) == 2 else "ALL"
        if target not in ("SIG", "POW", "ALL"):
            raise _CommandError(f"invalid target {args[1]!r}, expected SIG, POW or ALL")
        state = self.channels[ch]
        if target in ("SIG", "ALL"):
            state.rf_on = on
        if target in ("POW", "ALL"):
            state.amplifier_on = on
        self.hooks.settings_changed(self.name)
        return "OK"


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def _parse(text: str, units: dict[str, float], what: str) -> float:
    match = _NUMBER.match(text)
    if match is None or match.group(2).upper() not in units:
        raise _CommandError(f"invalid {what} {text!r}")
    value = float(match.group(1)) * units[match.group(2).upper()]
    if not math.isfinite(value):
        raise _CommandError(f"invalid {what} {text!r}")
    return value


def _parse_power(text: str, what: str) -> float:
    """Power in dBm; ``mW`` and ``W`` values are converted (must be positive)."""
    match = _NUMBER.match(text)
    unit = match.group(2).upper() if match else None
    if match is None or unit not in ("", "DBM", "MW", "W"):
        raise _CommandError(f"invalid {what} {text!r}")
    value = float(match.group(1))
    if unit in ("MW", "W"):
        milliwatts = value * (1e3 if unit == "W" else 1.0)
        if milliwatts <= 0:
            raise _CommandError(f"{what} out of range")
        value = 10 * math.log10(milliwatts)
    if not math.isfinite(value):
        raise _CommandError(f"invalid {what} {text!r}")
    return value


def _check_range(value: float, bounds: tuple[float, float], what: str) -> None:
    lo, hi = bounds
    if not lo <= value <= hi:
        raise _CommandError(f"{what} out of range")
