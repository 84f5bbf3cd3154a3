"""Rohde & Schwarz SGS100A SGMA RF/microwave source (SCPI over LAN / USB).

Command set: R&S *SGS100A User Manual*, chapter "Remote Control Commands", sections
"SOURce:FREQuency", "SOURce:POWer", "SOURce:PHASe", "SOURce:IQ", "SOURce:PULM",
"OUTPut" and "SYSTem:ERRor".

==============================  ==========================================  =======
command                         meaning                                     unit
==============================  ==========================================  =======
``*IDN?``                       ``Rohde&Schwarz,SGS100A,<serial>,<fw>``
``SOUR:FREQ <x>`` / ``?``        CW frequency                                Hz
``SOUR:POW <x>`` / ``?``         level                                       dBm
``SOUR:PHAS <x>`` / ``?``        phase offset                                deg
``OUTP:STAT 0|1`` / ``?``        RF output
``SOUR:IQ:STAT 0|1`` / ``?``     IQ modulation (external I/Q from the AWG)
``SOUR:PULM:STAT 0|1`` / ``?``   pulse modulation
``SOUR:PULM:SOUR INT|EXT`` / ?   pulse modulation source
``SOUR:ROSC:SOUR INT|EXT`` / ?   10 MHz reference source
``SYST:ERR?``                   error queue: ``0,"No error"`` when empty
==============================  ==========================================  =======
"""

from __future__ import annotations

from typing import Any

import qcodes.validators as vals

from drivers.base import QNodeVisaInstrument, on_off


class RohdeSchwarzSGS100A(QNodeVisaInstrument):
    """R&S SGS100A; fulfils :class:`drivers.hal.MicrowaveSource`.

    Args:
        frequency_range_hz: 1 MHz .. 12.75 GHz (option SGS-B112); use 6 GHz for B106.
        power_range_dbm: -20 .. +15 dBm without the step attenuator option.
    """

    MODEL = "R&S SGS100A"
    IDN_VENDOR = "Rohde&Schwarz"
    IDN_MODEL = "SGS100A"
    ERROR_QUERY = "SYST:ERR?"

    def __init__(
        self,
        name: str,
        address: str | None = None,
        frequency_range_hz: tuple[float, float] = (1e6, 12.75e9),
        power_range_dbm: tuple[float, float] = (-20.0, 15.0),
        **kwargs: Any,
    ) -> None:
        super().__init__(name, address, **kwargs)
        self.frequency = self.add_parameter(
            "frequency",
            unit="Hz",
            label="Frequency",
            get_cmd="SOUR:FREQ?",
            set_cmd="SOUR:FREQ {:.3f}",
            get_parser=float,
            vals=vals.Numbers(*frequency_range_hz),
        )
        self.power = self.add_parameter(
            "power",
            unit="dBm",
            label="Level",
            get_cmd="SOUR:POW?",
            set_cmd="SOUR:POW {:.2f}",
            get_parser=float,
            vals=vals.Numbers(*power_range_dbm),
        )
        self.phase = self.add_parameter(
            "phase",
            unit="deg",
            label="Phase",
            get_cmd="SOUR:PHAS?",
            set_cmd="SOUR:PHAS {:.2f}",
            get_parser=float,
            vals=vals.Numbers(-360.0, 360.0),
        )
        self.output = self.add_parameter(
            "output",
            label="RF output",
            get_cmd="OUTP:STAT?",
            set_cmd="OUTP:STAT {}",
            val_mapping=on_off(),
        )
        self.iq_modulation = self.add_parameter(
            "iq_modulation",
            label="IQ modulation",
            get_cmd="SOUR:IQ:STAT?",
            set_cmd="SOUR:IQ:STAT {}",
            val_mapping=on_off(),
        )
        self.pulse_modulation = self.add_parameter(
            "pulse_modulation",
            label="Pulse modulation",
            get_cmd="SOUR:PULM:STAT?",
            set_cmd="SOUR:PULM:STAT {}",
            val_mapping=on_off(),
        )
        self.pulse_source = self.add_parameter(
            "pulse_source",
            label="Pulse modulation source",
            get_cmd="SOUR:PULM:SOUR?",
            set_cmd="SOUR:PULM:SOUR {}",
            vals=vals.Enum("INT", "EXT"),
        )
        self.reference_source = self.add_parameter(
            "reference_source",
            label="Reference oscillator source",
            get_cmd="SOUR:ROSC:SOUR?",
            set_cmd="SOUR:ROSC:SOUR {}",
            vals=vals.Enum("INT", "EXT"),
        )

    # -- hal.MicrowaveSource -------------------------------------------------------------
    def set_frequency_hz(self, frequency_hz: float) -> None:
        self.frequency.set(frequency_hz)

    def get_frequency_hz(self) -> float:
        return float(self.frequency.get())

    def set_power_dbm(self, power_dbm: float) -> None:
        self.power.set(power_dbm)

    def get_power_dbm(self) -> float:
        return float(self.power.get())

    def set_output(self, on: bool) -> None:
        self.output.set(bool(on))

    def is_output_on(self) -> bool:
        return bool(self.output.get())

    def set_modulation(self, iq: bool, pulse: bool) -> None:
        self.iq_modulation.set(bool(iq))
        self.pulse_modulation.set(bool(pulse))

    def safe_state(self) -> None:
        """RF output off and modulation off; frequency and level are kept."""
        self.output.set(False)
        self.iq_modulation.set(False)
        self.pulse_modulation.set(False)
