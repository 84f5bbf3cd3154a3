"""Simulated Rohde & Schwarz SGS100A SGMA RF/microwave source.

Speaks the SCPI subset ``drivers/rs_sgs100a.py`` uses (R&S *SGS100A User Manual*, "Remote
Control Commands"); errors go to ``SYST:ERR?`` (-222 out of range, -224 illegal choice,
-113 unknown header). Short or long forms, optional ``SOURce`` node, units accepted
(``2.87GHz``, ``-5dBm``).

==================================  ==========================================  =======
command                             setting (attribute)                         unit
==================================  ==========================================  =======
``*IDN?``                           ``Rohde&Schwarz,SGS100A,<serial>,<fw>``
``SOUR:FREQ <x>`` / ``?``            ``frequency_hz`` (1 MHz .. option maximum)   Hz
``SOUR:POW <x>`` / ``?``             ``power_dbm`` (level range of the options)   dBm
``SOUR:PHAS <x>`` / ``?``            ``phase_deg`` (-360..360)                    deg
``OUTP:STAT 0|1`` / ``?``            ``output_on``
``SOUR:IQ:STAT 0|1`` / ``?``         ``iq_on``
``SOUR:PULM:STAT 0|1`` / ``?``       ``pulse_modulation_on``
``SOUR:PULM:SOUR INT|EXT`` / ``?``   ``pulse_source``
``SOUR:ROSC:SOUR INT|EXT`` / ``?``   ``reference_source``
==================================  ==========================================  =======
"""

from __future__ import annotations

from .edits import Watched
from .protocols import LabHooks
from .scpi import Boolean, Call, Choice, Number, ScpiInstrument, Setting, command

FREQUENCY_MIN_HZ = 1e6


class SimRsSGS100A(Watched, ScpiInstrument):
    """Simulated R&S SGS100A; a :class:`~sim_backend.instruments.protocols.MessageHandler`.

    Args:
        name: instrument name (passed to the lab hooks).
        hooks: the simulated lab; told about every setting change.
        frequency_range_hz: 1 MHz .. 12.75 GHz (option SGS-B112) or 6 GHz (SGS-B106).
        power_range_dbm: -20..+15 dBm without the step attenuator option.
        serial: serial number in ``*IDN?``.

    Attributes read by the lab: :attr:`output_on`, :attr:`frequency_hz`, :attr:`power_dbm`,
    :attr:`iq_on`, :attr:`pulse_modulation_on` (also :attr:`phase_deg`, :attr:`pulse_source`,
    :attr:`reference_source`).
    """

    IDN = "Rohde&Schwarz,SGS100A,1416.0505k02/112233,4.2.76.0"

    phase_deg = Setting("[SOURce]:PHASe[:ADJust]", Number(-360, 360, "DEG", fmt=".2f"), 0.0)
    output_on = Setting("OUTPut[:STATe]", Boolean(), default=False)
    iq_on = Setting("[SOURce]:IQ:STATe", Boolean(), default=False)
    pulse_modulation_on = Setting("[SOURce]:PULM:STATe", Boolean(), default=False)
    pulse_source = Setting("[SOURce]:PULM:SOURce", Choice("INTernal", "EXTernal"), "EXT")
    reference_source = Setting("[SOURce]:ROSCillator:SOURce", Choice("INTernal", "EXTernal"), "INT")

    def __init__(
        self,
        name: str,
        hooks: LabHooks | None = None,
        frequency_range_hz: tuple[float, float] = (FREQUENCY_MIN_HZ, 12.75e9),
        power_range_dbm: tuple[float, float] = (-20.0, 15.0),
        serial: str = "1416.0505k02/112233",
    ) -> None:
        super().__init__(name, hooks)
        self.idn = f"Rohde&Schwarz,SGS100A,{serial},4.2.76.0"
        # the unit's options set the ranges
        self._frequency_kind = Number(*frequency_range_hz, "Hz", fmt=".3f")
        self._power_kind = Number(power_range_dbm[0], power_range_dbm[1], "dBm", fmt=".2f")
        self.frequency_hz = 1e9
        self.power_dbm = float(power_range_dbm[0])

    def reset(self) -> None:
        super().reset()
        self.frequency_hz = 1e9
        self.power_dbm = float(self._power_kind.lo)

    @command("[SOURce]:FREQuency[:CW]")
    def _frequency(self, call: Call) -> None:
        self.frequency_hz = float(self._frequency_kind.parse(call.expect_args(1)[0]))
        self.setting_changed("frequency_hz", None, self.frequency_hz)

    @command("[SOURce]:FREQuency[:CW]?")
    def _frequency_query(self, call: Call) -> str:
        call.expect_args(0)
        return self._frequency_kind.format(self.frequency_hz)

    @command("[SOURce]:POWer[:LEVel][:IMMediate][:AMPLitude]")
    def _power(self, call: Call) -> None:
        self.power_dbm = float(self._power_kind.parse(call.expect_args(1)[0]))
        self.setting_changed("power_dbm", None, self.power_dbm)

    @command("[SOURce]:POWer[:LEVel][:IMMediate][:AMPLitude]?")
    def _power_query(self, call: Call) -> str:
        call.expect_args(0)
        return self._power_kind.format(self.power_dbm)
