"""Simulated New Focus TLB-6700 Velocity controller with a TLB-6704 (637 nm) head.

Speaks the command set ``drivers/newfocus_tlb6700.py`` uses (New Focus *TLB-6700 User's
Manual*, remote command reference and error-message list); messages end in CR LF.
Headers match in long or short form, any case (``SOURce:WAVElength``, ``SOUR:WAVE``).
**Every message is answered**: a query with its value, an accepted set command with ``OK``.
A refused message is answered with its error entry (``<code>, <TEXT>``), which also goes to
the error buffer read with ``ERRSTR?`` (``0, NO ERROR`` when empty); the error-entry reply is
this simulator's rendering, the codes are the manual's.

===============================  ==============================================
command                          behaviour
===============================  ==============================================
``*IDN?``                        ``New_Focus 6700 v2.4 03/19/14 SN<serial>``
``ERRSTR?``                      oldest error-buffer entry (removed)
``SYSTem:MCONtrol REM|LOC`` /?   remote / local control; replies ``REM``/``LOC``
``SOURce:WAVElength <x>`` / ?    setpoint (nm, head's range), ``%.3f``
``SENSe:WAVElength[?]``          wavelength reached (nm), ``%.3f``
``SOURce:CPOWer 0|1`` / ?        constant power / constant current (see below)
``SOURce:POWer:DIODe <x>`` / ?   power setpoint (mW, head's range, ``MAX``), ``%.2f``
``SENSe:POWer:DIODe[?]``         diode power (mW; 0 with the diode off), ``%.3f``
``SOURce:CURRent:DIODe <x>`` /?  current setpoint (mA, head's range, ``MAX``), ``%.1f``
``SENSe:CURRent:DIODe[?]``       diode current (mA; 0 with the diode off), ``%.1f``
``OUTPut:STATe 0|1|ON|OFF`` / ?  laser diode off / on; replies ``1``/``0``
``OUTPut:TRACk 0|1|ON|OFF`` / ?  wavelength track off / on
===============================  ==============================================

Errors (manual's codes): 116 ``SYNTAX ERROR`` (unknown header, malformed number, compound
message), 126 ``WRONG NUM OF PARAMS``, 201 ``VALUE OUT OF RANGE``, 514 ``LDD MODE CHANGE``
(``SOURce:CPOWer`` changed while the diode was on: the diode is turned off, the command is
still answered ``OK``), 902 ``KEY ENABLE OFF`` (``OUTPut:STATe 1`` with the key switch off,
``key_enabled=False``: answered ``OK``, the diode stays off).

The simulated laser reaches a new wavelength setpoint at once, so the measured wavelength is
the setpoint; track mode is stored, not modelled. Emitted power: in constant-power mode the
power setpoint; in constant-current mode the diode's light-current curve above threshold,
``P = eta * (I - I_th)`` for ``I > I_th``, else 0 (Coldren, Corzine & Mashanovitch, *Diode
Lasers and Photonic Integrated Circuits*, 2nd ed., Wiley 2012, ch. 2, output power above
threshold, with ``eta`` the slope efficiency in mW/mA); in constant-power mode the current
follows the same curve inverted.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable

from .edits import Watched
from .protocols import LabHooks, NullLabHooks
from .scpi import Boolean, Choice, Number, ScpiError, compile_pattern

#: Tuning range of the TLB-6704 head (nm).
TLB6704_WAVELENGTH_RANGE_NM = (632.5, 639.0)

#: Error texts by code, as the manual's "Error Messages" list them.
ERROR_TEXTS: dict[int, str] = {
    0: "NO ERROR",
    116: "SYNTAX ERROR",
    126: "WRONG NUM OF PARAMS",
    201: "VALUE OUT OF RANGE",
    514: "LDD MODE CHANGE",
    902: "KEY ENABLE OFF",
}
#: SCPI errors raised by the argument parsers -> the controller's codes.
_FROM_SCPI = {-108: 126, -109: 126, -222: 201, -224: 201}
ERROR_BUFFER_SIZE = 16


class _RefusedError(Exception):
    """Internal: the message is refused with a controller error code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


Handler = Callable[[str], str | None]


class SimNewFocusTLB6700(Watched):
    """Simulated TLB-6700; a :class:`~sim_backend.instruments.protocols.MessageHandler`.

    Args:
        name: instrument name (passed to the lab hooks).
        hooks: the simulated lab; told about every accepted set command.
        wavelength_range_nm: tuning range of the head.
        power_range_mw: power setpoints the head accepts (as the driver's argument).
        current_range_ma: current setpoints the head accepts (as the driver's argument).
        threshold_current_ma: lasing threshold of the light-current curve.
        slope_efficiency_mw_per_ma: slope of the light-current curve above threshold.
        key_enabled: position of the front-panel key switch.
        serial: serial number in ``*IDN?``.

    Attributes read by the lab: :attr:`output_on`, :attr:`power_mw`, :attr:`wavelength_nm`
    (also :attr:`emitted_power_mw`, :attr:`current_ma`, :attr:`constant_power`,
    :attr:`track`, :attr:`remote`).
    """

    termination = "\r\n"

    def __init__(
        self,
        name: str,
        hooks: LabHooks | None = None,
        wavelength_range_nm: tuple[float, float] = TLB6704_WAVELENGTH_RANGE_NM,
        power_range_mw: tuple[float, float] = (0.0, 10.0),
        current_range_ma: tuple[float, float] = (0.0, 100.0),
        threshold_current_ma: float = 30.0,
        slope_efficiency_mw_per_ma: float = 0.2,
        key_enabled: bool = True,
        serial: str = "0637",
    ) -> None:
        self.name = name
        self.hooks: LabHooks = hooks if hooks is not None else NullLabHooks()
        self.idn = f"New_Focus 6700 v2.4 03/19/14 SN{serial}"
        lo, hi = wavelength_range_nm
        self.wavelength_range_nm = (float(lo), float(hi))
        self.power_range_mw = (float(power_range_mw[0]), float(power_range_mw[1]))
        self.current_range_ma = (float(current_range_ma[0]), float(current_range_ma[1]))
        self.threshold_current_ma = float(threshold_current_ma)
        self.slope_efficiency_mw_per_ma = float(slope_efficiency_mw_per_ma)
        self.key_enabled = key_enabled
        self.errors: deque[int] = deque()
        self.wavelength_nm = 637.0
        self.power_setpoint_mw = 1.0
        self.current_setpoint_ma = 50.0
        self.constant_power = True
        self.output_on = False
        self.track = False
        self.remote = False
        self._table: list[tuple[re.Pattern[str], bool, Handler]] = []
        for pattern, handler in self._commands():
            self._table.append((*compile_pattern(pattern), handler))

    # -- what the lab reads -------------------------------------------------------------------
    @property
    def power_mw(self) -> float:
        """Power the diode emits while on, mW (setpoint, or light-current curve)."""
        if self.constant_power:
            return self.power_setpoint_mw
        above = self.current_setpoint_ma - self.threshold_current_ma
        return max(0.0, self.slope_efficiency_mw_per_ma * above)

    @property
    def current_ma(self) -> float:
        """Diode current while on, mA (setpoint, or the inverted light-current curve)."""
        if not self.constant_power:
            return self.current_setpoint_ma
        return self.threshold_current_ma + self.power_setpoint_mw / self.slope_efficiency_mw_per_ma

    @property
    def emitted_power_mw(self) -> float:
        """Power leaving the head: :attr:`power_mw` with the diode on, else 0."""
        return self.power_mw if self.output_on else 0.0

    # -- MessageHandler -----------------------------------------------------------------------
    def handle(self, message: str) -> str:
        text = message.strip()
        if text.endswith(";"):
            text = text[:-1].rstrip()
        try:
            if not text or ";" in text:
                raise _RefusedError(116)
            header, *rest = text.split(None, 1)
            handler = self._lookup(header)
            return handler(rest[0].strip() if rest else "") or "OK"
        except ScpiError as exc:
            return self._refuse(_FROM_SCPI.get(exc.code, 116))
        except _RefusedError as exc:
            return self._refuse(exc.code)

    def next_error(self) -> str:
        """Pop the oldest error-buffer entry, formatted as ``ERRSTR?`` returns it."""
        return _format(self.errors.popleft() if self.errors else 0)

    def queue_error(self, code: int) -> None:
        if len(self.errors) >= ERROR_BUFFER_SIZE:
            self.errors.popleft()
        self.errors.append(code)

    def _refuse(self, code: int) -> str:
        self.queue_error(code)
        return _format(code)

    def _lookup(self, header: str) -> Handler:
        query = header.endswith("?")
        bare = header[:-1] if query else header
        rooted = bare if bare.startswith(":") else ":" + bare
        for regex, is_query, handler in self._table:
            if is_query == query and regex.fullmatch(rooted):
                return handler
        raise _RefusedError(116)

    def _commands(self) -> list[tuple[str, Handler]]:
        lo, hi = self.wavelength_range_nm
        return [
            ("*IDN?", self._query(lambda: self.idn)),
            ("ERRSTR?", self._query(self.next_error)),
            ("SYSTem:MCONtrol", self._set_remote),
            ("SYSTem:MCONtrol?", self._query(lambda: "REM" if self.remote else "LOC")),
            ("SOURce:WAVElength", self._number("wavelength_nm", Number(lo, hi, unit="NM"))),
            ("SOURce:WAVElength?", self._query(lambda: f"{self.wavelength_nm:.3f}")),
            ("SENSe:WAVElength?", self._query(lambda: f"{self.wavelength_nm:.3f}")),
            ("SENSe:WAVElength", self._query(lambda: f"{self.wavelength_nm:.3f}")),
            ("SOURce:CPOWer", self._set_constant_power),
            ("SOURce:CPOWer?", self._query(lambda: _bit(self.constant_power))),
            (
                "SOURce:POWer:DIODe",
                self._number("power_setpoint_mw", Number(*self.power_range_mw, unit="MW")),
            ),
            ("SOURce:POWer:DIODe?", self._query(lambda: f"{self.power_setpoint_mw:.2f}")),
            ("SENSe:POWer:DIODe?", self._query(lambda: f"{self.emitted_power_mw:.3f}")),
            ("SENSe:POWer:DIODe", self._query(lambda: f"{self.emitted_power_mw:.3f}")),
            (
                "SOURce:CURRent:DIODe",
                self._number("current_setpoint_ma", Number(*self.current_range_ma, unit="MA")),
            ),
            ("SOURce:CURRent:DIODe?", self._query(lambda: f"{self.current_setpoint_ma:.1f}")),
            ("SENSe:CURRent:DIODe?", self._query(self._sensed_current)),
            ("SENSe:CURRent:DIODe", self._query(self._sensed_current)),
            ("OUTPut:STATe", self._set_output),
            ("OUTPut:STATe?", self._query(lambda: _bit(self.output_on))),
            ("OUTPut:TRACk", self._set_track),
            ("OUTPut:TRACk?", self._query(lambda: _bit(self.track))),
        ]

    # -- command handlers ---------------------------------------------------------------------
    @staticmethod
    def _query(value: Callable[[], str]) -> Handler:
        def handler(params: str) -> str:
            if params:
                raise _RefusedError(126)
            return value()

        return handler

    def _number(self, attribute: str, kind: Number) -> Handler:
        def handler(params: str) -> None:
            setattr(self, attribute, float(kind.parse(_one(params))))
            self.hooks.settings_changed(self.name)

        return handler

    def _sensed_current(self) -> str:
        return f"{self.current_ma if self.output_on else 0.0:.1f}"

    def _set_remote(self, params: str) -> None:
        self.remote = Choice("REMote", "LOCal").parse(_one(params)) == "REM"
        self.hooks.settings_changed(self.name)

    def _set_constant_power(self, params: str) -> None:
        constant_power = Boolean().parse(_one(params))
        if constant_power != self.constant_power and self.output_on:
            self.output_on = False
            self.queue_error(514)
        self.constant_power = constant_power
        self.hooks.settings_changed(self.name)

    def _set_output(self, params: str) -> None:
        on = Boolean().parse(_one(params))
        if on and not self.key_enabled:
            self.queue_error(902)
            return
        self.output_on = on
        self.hooks.settings_changed(self.name)

    def _set_track(self, params: str) -> None:
        self.track = Boolean().parse(_one(params))
        self.hooks.settings_changed(self.name)


def _one(params: str) -> str:
    """The single parameter of a set command (126 if there is none or more than one)."""
    if not params or "," in params:
        raise _RefusedError(126)
    return params


def _bit(flag: bool) -> str:
    return "1" if flag else "0"


def _format(code: int) -> str:
    return f"{code}, {ERROR_TEXTS.get(code, 'UNKNOWN ERROR')}"
