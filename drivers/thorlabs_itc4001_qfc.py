"""Quantum frequency converter run by a Thorlabs ITC4001 laser-diode / TEC controller.

There is no standard QFC product, so the converter is modelled on the one controller
that runs a typical PPLN-waveguide difference-frequency converter: a Thorlabs ITC4001
drives the pump laser diode in constant-power mode (regulated on its monitor photodiode)
and the TEC that holds the crystal at its phase-matching temperature. Command set:
Thorlabs *ITC4000 Series Operation Manual*, chapter "Computer interface", section "SCPI
commands" (``SOURce[1]`` / ``OUTPut[1]`` = laser diode, ``SOURce2`` / ``OUTPut2`` = TEC).

The ITC cannot measure the converted light, so ``conversion_efficiency`` is computed
from the measured pump power and crystal temperature with the calibrated textbook model
(below); the converted wavelength follows from energy conservation.

* pump dependence (strong-pump single-photon conversion): ``eta = eta_max *
  sin^2(pi/2 * sqrt(P / P_max))`` -- Albota & Wong, Opt. Lett. 29, 1449 (2004), eq. 1;
  Pelc et al., Opt. Express 19, 21445 (2011), eq. 1;
* temperature dependence (phase matching): ``sinc^2(dk L / 2)`` with ``dk`` linear in the
  detuning; ``sinc^2(x)`` falls to 1/2 at ``x = 1.3916``, so ``x = 2.7832 (T - T_pm) /
  dT_FWHM`` -- Boyd, *Nonlinear Optics*, 3rd ed., sec. 2.2, eq. 2.2.19;
* DFG energy conservation: ``1/lambda_out = 1/lambda_in - 1/lambda_pump``.

=============================  ================================================  ====
command                        meaning                                           unit
=============================  ================================================  ====
``*IDN?``                      ``Thorlabs,ITC4001,<serial>,<fw>``
``SYST:ERR?``                  error queue, ``+0,"No error"`` when empty
``SOUR:FUNC:MODE POW``         laser diode in constant-power mode (set at connect)
``SOUR:POW <x>`` / ``?``       pump optical power setpoint                       W
``MEAS:POW2?``                 pump power measured by the monitor photodiode     W
``SOUR:CURR:LIM <x>`` / ``?``  laser diode current limit                         A
``OUTP:STAT 0|1`` / ``?``      laser diode (pump) output
``SOUR2:TEMP <x>`` / ``?``     TEC (crystal) temperature setpoint                degC
``MEAS:TEMP?``                 measured crystal temperature                      degC
``OUTP2:STAT 0|1`` / ``?``     TEC output
=============================  ================================================  ====
"""

from __future__ import annotations

import math
from typing import Any

import qcodes.validators as vals
from qcodes.parameters import ManualParameter

from drivers.base import QNodeVisaInstrument, on_off

#: x at which sinc^2(x) = sin^2(x)/x^2 equals 1/2.
SINC2_HALF_WIDTH = 1.3916


class ThorlabsITC4001FrequencyConverter(QNodeVisaInstrument):
    """PPLN converter on a Thorlabs ITC4001; fulfils :class:`drivers.hal.FrequencyConverter`.

    Args:
        pump_power_max_mw: highest pump setpoint accepted (laser/crystal safety limit).
        crystal_range_c: TEC setpoint range for the crystal mount.
    """

    MODEL = "Thorlabs ITC4001 (QFC)"
    IDN_VENDOR = "Thorlabs"
    IDN_MODEL = "ITC4001"
    ERROR_QUERY = "SYST:ERR?"

    def __init__(
        self,
        name: str,
        address: str | None = None,
        pump_power_max_mw: float = 500.0,
        crystal_range_c: tuple[float, float] = (15.0, 85.0),
        **kwargs: Any,
    ) -> None:
        super().__init__(name, address, **kwargs)
        with self.closing_on_error():
            self.write("SOUR:FUNC:MODE POW")
        self.pump_power = self.add_parameter(
            "pump_power",
            unit="mW",
            label="Pump power setpoint",
            get_cmd="SOUR:POW?",
            set_cmd="SOUR:POW {:.6f}",
            get_parser=float,
            scale=1e-3,
            vals=vals.Numbers(0.0, pump_power_max_mw),
        )
        self.pump_power_measured = self.add_parameter(
            "pump_power_measured",
            unit="mW",
            label="Pump power (monitor photodiode)",
            get_cmd="MEAS:POW2?",
            set_cmd=False,
            get_parser=float,
            scale=1e-3,
        )
        self.pump_current_limit = self.add_parameter(
            "pump_current_limit",
            unit="A",
            label="Laser diode current limit",
            get_cmd="SOUR:CURR:LIM?",
            set_cmd="SOUR:CURR:LIM {:.4f}",
            get_parser=float,
            vals=vals.Numbers(0.0, 1.0),
        )
        self.pump_output = self.add_parameter(
            "pump_output",
            label="Pump laser on",
            get_cmd="OUTP:STAT?",
            set_cmd="OUTP:STAT {}",
            val_mapping=on_off(),
        )
        self.crystal_setpoint = self.add_parameter(
            "crystal_setpoint",
            unit="degC",
            label="Crystal temperature setpoint",
            get_cmd="SOUR2:TEMP?",
            set_cmd="SOUR2:TEMP {:.3f}",
            get_parser=float,
            vals=vals.Numbers(*crystal_range_c),
        )
        self.crystal_temperature = self.add_parameter(
            "crystal_temperature",
            unit="degC",
            label="Crystal temperature",
            get_cmd="MEAS:TEMP?",
            set_cmd=False,
            get_parser=float,
        )
        self.tec_output = self.add_parameter(
            "tec_output",
            label="TEC on",
            get_cmd="OUTP2:STAT?",
            set_cmd="OUTP2:STAT {}",
            val_mapping=on_off(),
        )
        # Calibration of the conversion (host-side, from the converter's characterisation).
        self.input_wavelength = self._manual("input_wavelength", "nm", 637.0, (300.0, 2500.0))
        self.pump_wavelength = self._manual("pump_wavelength", "nm", 1064.0, (300.0, 5000.0))
        self.max_efficiency = self._manual("max_efficiency", "", 0.5, (0.0, 1.0))
        self.pump_power_at_max = self._manual("pump_power_at_max", "mW", 300.0, (1e-3, 1e5))
        self.phase_matching_temperature = self._manual(
            "phase_matching_temperature", "degC", 45.0, (-50.0, 250.0)
        )
        self.temperature_acceptance = self._manual(
            "temperature_acceptance", "degC", 2.0, (1e-3, 100.0)
        )

    def _manual(
        self, name: str, unit: str, initial: float, bounds: tuple[float, float]
    ) -> ManualParameter:
        return self.add_parameter(
            name,
            parameter_class=ManualParameter,
            unit=unit,
            initial_value=initial,
            vals=vals.Numbers(*bounds),
        )

    def efficiency_model(self, pump_power_mw: float, temperature_c: float) -> float:
        """External conversion efficiency for a pump power and crystal temperature."""
        ratio = max(pump_power_mw, 0.0) / float(self.pump_power_at_max())
        eta_pump = math.sin(math.pi / 2 * math.sqrt(ratio)) ** 2
        x = 2 * SINC2_HALF_WIDTH * (temperature_c - float(self.phase_matching_temperature()))
        x /= float(self.temperature_acceptance())
        eta_temp = 1.0 if x == 0 else (math.sin(x) / x) ** 2
        return float(self.max_efficiency()) * eta_pump * eta_temp

    # -- hal.FrequencyConverter -------------------------------------------------------------
    def set_pump_power_mw(self, power_mw: float) -> None:
        self.pump_power.set(power_mw)

    def get_pump_power_mw(self) -> float:
        return float(self.pump_power.get())

    def set_pump_on(self, on: bool) -> None:
        self.pump_output.set(bool(on))

    def set_crystal_temperature_c(self, temperature_c: float) -> None:
        """Hold the crystal at ``temperature_c``: set the TEC setpoint and make sure the TEC
        regulates (a setpoint alone does nothing while the TEC output is off)."""
        self.crystal_setpoint.set(temperature_c)
        if not self.tec_output.get():
            self.tec_output.set(True)

    def get_crystal_temperature_c(self) -> float:
        return float(self.crystal_temperature.get())

    def conversion_efficiency(self) -> float:
        """Efficiency now: 0 with the pump off, else the model at measured P and T."""
        if not self.pump_output.get():
            return 0.0
        return self.efficiency_model(
            float(self.pump_power_measured.get()), float(self.crystal_temperature.get())
        )

    def converted_wavelength_nm(self) -> float:
        """Difference-frequency output: 1/l_out = 1/l_in - 1/l_pump."""
        inv = 1.0 / float(self.input_wavelength()) - 1.0 / float(self.pump_wavelength())
        return 1.0 / inv

    def safe_state(self) -> None:
        """Pump laser off. The TEC keeps regulating: a held crystal temperature is safe and
        avoids a slow re-stabilisation; turn it off explicitly with ``tec_output``."""
        self.pump_output.set(False)
