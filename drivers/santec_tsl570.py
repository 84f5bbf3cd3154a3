"""Santec TSL-570 tunable laser (SCPI over GPIB / LAN / USB).

Command set: Santec *TSL-570 Instruction Manual*, chapter "Remote interface", section
"SCPI command list" (``:WAVelength``, ``:POWer``, ``:COHCtrl``, ``:SYSTem:ERRor?``).
Messages end in CR. At connect the driver sets wavelength unit nm (``:WAV:UNIT 0``) and
power unit dBm (``:POW:UNIT 0``) so every reply has a known unit.

==========================  ============================================  ==========
command                     meaning                                       unit
==========================  ============================================  ==========
``*IDN?``                   ``SANTEC,TSL-570,<serial>,<firmware>``
``:WAV:UNIT 0``             wavelength unit nm
``:POW:UNIT 0``             power unit dBm
``:WAV <x>`` / ``:WAV?``     wavelength                                    nm
``:WAV:FREQ <x>`` / ``?``    optical frequency                             THz
``:POW <x>`` / ``:POW?``     output power setpoint                         dBm
``:POW:ACT?``               measured output power                         dBm
``:POW:STAT 0|1`` / ``?``    laser diode (optical output) off / on
``:COHC 0|1`` / ``?``        coherence control (line broadening) off / on
``:SYST:ERR?``              error queue: ``0,"No error"`` when empty
==========================  ============================================  ==========
"""

from __future__ import annotations

import math
from typing import Any

import qcodes.validators as vals

from drivers.base import QNodeVisaInstrument, on_off
from drivers.errors import InstrumentValueError

#: Speed of light in nm * THz.
C_NM_THZ = 299_792.458


class SantecTSL570(QNodeVisaInstrument):
    """Santec TSL-570 tunable laser; fulfils :class:`drivers.hal.Laser`.

    Args:
        wavelength_range_nm: tuning range of the unit's variant (default the
            1480-1640 nm variant).
        power_range_dbm: settable output power (default -15..+13 dBm, manual spec).
    """

    MODEL = "Santec TSL-570"
    IDN_VENDOR = "SANTEC"
    IDN_MODEL = "TSL-570"
    ERROR_QUERY = ":SYST:ERR?"
    default_terminator = "\r"

    def __init__(
        self,
        name: str,
        address: str | None = None,
        wavelength_range_nm: tuple[float, float] = (1480.0, 1640.0),
        power_range_dbm: tuple[float, float] = (-15.0, 13.0),
        **kwargs: Any,
    ) -> None:
        super().__init__(name, address, **kwargs)
        wl_min, wl_max = wavelength_range_nm
        with self.closing_on_error():
            self.write(":WAV:UNIT 0")
            self.write(":POW:UNIT 0")

        self.wavelength = self.add_parameter(
            "wavelength",
            unit="nm",
            label="Wavelength",
            get_cmd=":WAV?",
            set_cmd=":WAV {:.4f}",
            get_parser=float,
            vals=vals.Numbers(wl_min, wl_max),
        )
        self.frequency = self.add_parameter(
            "frequency",
            unit="THz",
            label="Optical frequency",
            get_cmd=":WAV:FREQ?",
            set_cmd=":WAV:FREQ {:.5f}",
            get_parser=float,
            vals=vals.Numbers(C_NM_THZ / wl_max, C_NM_THZ / wl_min),
        )
        self.power = self.add_parameter(
            "power",
            unit="dBm",
            label="Output power setpoint",
            get_cmd=":POW?",
            set_cmd=":POW {:.2f}",
            get_parser=float,
            vals=vals.Numbers(*power_range_dbm),
        )
        self.power_actual = self.add_parameter(
            "power_actual",
            unit="dBm",
            label="Measured output power",
            get_cmd=":POW:ACT?",
            set_cmd=False,
            get_parser=float,
        )
        self.output = self.add_parameter(
            "output",
            label="Laser diode on",
            get_cmd=":POW:STAT?",
            set_cmd=":POW:STAT {}",
            val_mapping=on_off(),
        )
        self.coherence_control = self.add_parameter(
            "coherence_control",
            label="Coherence control",
            get_cmd=":COHC?",
            set_cmd=":COHC {}",
            val_mapping=on_off(),
        )

    # -- hal.Laser --------------------------------------------------------------------
    def set_wavelength_nm(self, wavelength_nm: float) -> None:
        self.wavelength.set(wavelength_nm)

    def get_wavelength_nm(self) -> float:
        return float(self.wavelength.get())

    def set_power_mw(self, power_mw: float) -> None:
        if power_mw <= 0:
            raise InstrumentValueError(
                self.display_name,
                f"refused: {power_mw:g} mW is not a positive power; use set_output(False)",
                command=f"{self.power.full_name} = {power_mw!r} mW",
            )
        self.power.set(round(10 * math.log10(power_mw), 2))

    def get_power_mw(self) -> float:
        return float(10 ** (self.power.get() / 10))

    def set_output(self, on: bool) -> None:
        self.output.set(bool(on))

    def is_output_on(self) -> bool:
        return bool(self.output.get())

    def safe_state(self) -> None:
        """Laser diode off (``:POW:STAT 0``); the setpoints are kept."""
        self.output.set(False)
