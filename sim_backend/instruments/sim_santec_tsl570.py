"""Simulated Santec TSL-570 tunable laser.

Speaks the SCPI subset ``drivers/santec_tsl570.py`` uses (Santec *TSL-570 Instruction
Manual*, "SCPI command list"); messages end in CR. Errors go to the SCPI error queue
(``:SYST:ERR?``): -222 for a wavelength, frequency or power outside the unit's range,
-224 for an illegal choice, -113 for an unknown header.

===========================  ===============================================
command                      behaviour
===========================  ===============================================
``*IDN?``                    ``SANTEC,TSL-570,<serial>,<firmware>``
``:WAV:UNIT 0|1`` / ``?``    unit of ``:WAV``: 0 nm, 1 THz
``:POW:UNIT 0|1`` / ``?``    unit of ``:POW`` and ``:POW:ACT?``: 0 dBm, 1 mW
``:WAV <x>`` / ``?``         wavelength (nm, or THz with ``:WAV:UNIT 1``), ``%.4f``
``:WAV:FREQ <x>`` / ``?``    optical frequency (THz), ``%.5f``
``:POW <x>`` / ``?``         output power setpoint (dBm, or mW), ``%.2f`` / ``%.4f``
``:POW:ACT?``                monitored output power (see below)
``:POW:STAT 0|1`` / ``?``    laser diode (optical output) off / on
``:COHC 0|1`` / ``?``        coherence control off / on
===========================  ===============================================

The TSL-570 regulates its output power on an internal monitor (automatic power control),
so ``:POW:ACT?`` reads the setpoint while the diode is on and the monitor's floor
(:data:`POWER_MONITOR_FLOOR_DBM`) while it is off. Wavelength and power are kept as one
state whatever the units: changing a unit changes only how values are written and read.
"""

from __future__ import annotations

import math

from .edits import Watched
from .protocols import LabHooks
from .scpi import Boolean, Call, Integer, Number, ScpiError, ScpiInstrument, Setting, command

#: Speed of light in nm * THz.
C_NM_THZ = 299_792.458
#: What the internal power monitor reads with the diode off (dBm).
POWER_MONITOR_FLOOR_DBM = -40.0


class SimSantecTSL570(Watched, ScpiInstrument):
    """Simulated Santec TSL-570; a :class:`~sim_backend.instruments.protocols.MessageHandler`.

    Args:
        name: instrument name (passed to the lab hooks).
        hooks: the simulated lab; told about every setting change.
        wavelength_range_nm: tuning range of the unit's variant.
        power_range_dbm: settable output power of the variant.
        serial: serial number in ``*IDN?``.

    Attributes read by the lab: :attr:`output_on`, :attr:`power_mw`, :attr:`wavelength_nm`
    (also :attr:`power_dbm`, :attr:`frequency_thz`, :attr:`coherence_control`,
    :attr:`emitted_power_mw`).
    """

    IDN = "SANTEC,TSL-570,23010123,1.2.3"
    termination = "\r"

    output_on = Setting(":POWer:STATe", Boolean(), default=False)
    coherence_control = Setting(":COHCtrl", Boolean(), default=False)
    wavelength_unit = Setting(":WAVelength:UNIT", Integer(0, 1), default=0)
    power_unit = Setting(":POWer:UNIT", Integer(0, 1), default=0)

    def __init__(
        self,
        name: str,
        hooks: LabHooks | None = None,
        wavelength_range_nm: tuple[float, float] = (1480.0, 1640.0),
        power_range_dbm: tuple[float, float] = (-15.0, 13.0),
        serial: str = "23010123",
    ) -> None:
        super().__init__(name, hooks)
        self.idn = f"SANTEC,TSL-570,{serial},1.2.3"
        self.wavelength_range_nm = (float(wavelength_range_nm[0]), float(wavelength_range_nm[1]))
        self.power_range_dbm = (float(power_range_dbm[0]), float(power_range_dbm[1]))
        self.wavelength_nm = 1550.0
        self.power_dbm = 0.0

    def reset(self) -> None:
        super().reset()
        self.wavelength_nm = 1550.0
        self.power_dbm = 0.0

    # -- what the lab reads -------------------------------------------------------------------
    @property
    def power_mw(self) -> float:
        """Output power setpoint, mW."""
        return 10 ** (self.power_dbm / 10)

    @property
    def frequency_thz(self) -> float:
        return C_NM_THZ / self.wavelength_nm

    @property
    def emitted_power_mw(self) -> float:
        """Power leaving the fibre output: the setpoint with the diode on, else 0."""
        return self.power_mw if self.output_on else 0.0

    # -- wavelength ---------------------------------------------------------------------------
    def _set_wavelength(self, wavelength_nm: float) -> None:
        self.wavelength_nm = wavelength_nm
        self.setting_changed("wavelength_nm", None, wavelength_nm)

    def _frequency_kind(self) -> Number:
        lo, hi = self.wavelength_range_nm
        return Number(C_NM_THZ / hi, C_NM_THZ / lo, unit="THz")

    @command(":WAVelength")
    def _wavelength(self, call: Call) -> None:
        text = call.expect_args(1)[0]
        if self.wavelength_unit == 1:
            self._set_wavelength(C_NM_THZ / self._frequency_kind().parse(text))
        else:
            lo, hi = self.wavelength_range_nm
            self._set_wavelength(float(Number(lo, hi, unit="nm").parse(text)))

    @command(":WAVelength?")
    def _wavelength_query(self, call: Call) -> str:
        call.expect_args(0)
        if self.wavelength_unit == 1:
            return f"{self.frequency_thz:.5f}"
        return f"{self.wavelength_nm:.4f}"

    @command(":WAVelength:FREQuency")
    def _frequency(self, call: Call) -> None:
        frequency = self._frequency_kind().parse(call.expect_args(1)[0])
        self._set_wavelength(C_NM_THZ / frequency)

    @command(":WAVelength:FREQuency?")
    def _frequency_query(self, call: Call) -> str:
        call.expect_args(0)
        return f"{self.frequency_thz:.5f}"

    # -- power --------------------------------------------------------------------------------
    def _format_power(self, power_dbm: float) -> str:
        if self.power_unit == 1:
            return f"{10 ** (power_dbm / 10):.4f}"
        return f"{power_dbm:.2f}"

    @command(":POWer[:LEVel]")
    def _power(self, call: Call) -> None:
        text = call.expect_args(1)[0]
        lo, hi = self.power_range_dbm
        if self.power_unit == 1:
            milliwatts = 1e3 * Number(unit="W").parse(_as_milliwatts(text))
            lo_mw, hi_mw = 10 ** (lo / 10), 10 ** (hi / 10)
            if not lo_mw * (1 - 1e-9) <= milliwatts <= hi_mw * (1 + 1e-9):
                raise ScpiError(-222, f"{text.strip()} outside {lo_mw:.4g}..{hi_mw:.4g} mW")
            power_dbm = min(max(10 * math.log10(milliwatts), lo), hi)
        else:
            power_dbm = float(Number(lo, hi, unit="dBm").parse(text))
        self.power_dbm = power_dbm
        self.setting_changed("power_dbm", None, power_dbm)

    @command(":POWer[:LEVel]?")
    def _power_query(self, call: Call) -> str:
        call.expect_args(0)
        return self._format_power(self.power_dbm)

    @command(":POWer:ACTual[:LEVel]?")
    def _power_actual(self, call: Call) -> str:
        call.expect_args(0)
        return self._format_power(self.power_dbm if self.output_on else POWER_MONITOR_FLOOR_DBM)


def _as_milliwatts(text: str) -> str:
    """A bare number in the mW unit means mW: ``"2.5"`` -> ``"2.5mW"`` (read as watts)."""
    stripped = text.strip()
    if stripped[-1:].isdigit() or stripped.endswith("."):
        return stripped + "mW"
    if not stripped.upper().endswith("W"):
        raise ScpiError(-131, f"unit of {stripped!r} where mW is expected")
    return stripped
