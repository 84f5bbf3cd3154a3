"""Simulated Thorlabs ITC4001 running a PPLN frequency converter (pump diode + crystal TEC).

Speaks the ITC4000-series SCPI subset ``drivers/thorlabs_itc4001_qfc.py`` uses (Thorlabs
*ITC4000 Series Operation Manual*, "SCPI commands": ``SOURce[1]``/``OUTPut[1]`` the laser
diode, ``SOURce2``/``OUTPut2`` the TEC). Errors go to ``SYST:ERR?``, which reads
``+0,"No error"`` when empty, as on the ITC.

===============================  =====================================================
command                          behaviour (attribute)
===============================  =====================================================
``*IDN?``                        ``Thorlabs,ITC4001,<serial>,<firmware>``
``SOUR:FUNC:MODE CURR|POW``      laser-diode operating mode (``ld_mode``)
``SOUR:POW <W>`` / ``?``          pump power setpoint, 0..``pump_power_max_w`` W
                                 (``pump_power_mw``, in mW)
``SOUR:CURR:LIM <A>`` / ``?``     laser-diode current limit, 0..1 A (``pump_current_limit_a``)
``OUTP:STAT 0|1`` / ``?``         pump laser diode on (``pump_on``)
``SOUR2:TEMP <C>`` / ``?``        crystal TEC setpoint (``crystal_temperature_c``)
``OUTP2:STAT 0|1`` / ``?``        TEC on (``tec_on``)
``MEAS:POW2?``                   pump power on the monitor photodiode (W)
``MEAS:TEMP?``                   crystal temperature (C)
===============================  =====================================================

Readbacks (the ITC regulates both loops): the monitor reads the power setpoint while the
pump is on in constant-power mode, 0 W when it is off (in constant-current mode the
diode runs at the current setpoint, which this driver never sets: 0 A, no light). The
crystal reads its setpoint while the TEC regulates and the ambient temperature
(constructor argument) when the TEC is off.
"""

from __future__ import annotations

from .edits import Watched
from .protocols import LabHooks
from .scpi import Boolean, Call, Choice, Number, ScpiInstrument, command

CURRENT_LIMIT_RANGE_A = (0.0, 1.0)
_LD, _TEC = 1, 2


class SimThorlabsITC4001QFC(Watched, ScpiInstrument):
    """Simulated ITC4001 (QFC pump and crystal TEC); a
    :class:`~sim_backend.instruments.protocols.MessageHandler`.

    Args:
        name: instrument name (passed to the lab hooks).
        hooks: the simulated lab; told about every setting change.
        pump_power_max_w: highest power setpoint the pump diode accepts.
        tec_range_c: TEC setpoint range.
        ambient_temperature_c: what the crystal settles at with the TEC off.
        serial: serial number in ``*IDN?``.

    Attributes read by the lab: :attr:`pump_on`, :attr:`pump_power_mw` (setpoint),
    :attr:`crystal_temperature_c` (setpoint), :attr:`tec_on`, :attr:`ld_mode`,
    :attr:`pump_current_limit_a`, and the readbacks :attr:`pump_power_measured_mw`,
    :attr:`crystal_temperature_measured_c`.
    """

    IDN = "Thorlabs,ITC4001,M00512345,1.8.0/1.5.0/2.3.0"

    def __init__(
        self,
        name: str,
        hooks: LabHooks | None = None,
        pump_power_max_w: float = 1.0,
        tec_range_c: tuple[float, float] = (-10.0, 150.0),
        ambient_temperature_c: float = 22.0,
        serial: str = "M00512345",
    ) -> None:
        super().__init__(name, hooks)
        self.idn = f"Thorlabs,ITC4001,{serial},1.8.0/1.5.0/2.3.0"
        self._power_kind = Number(0.0, pump_power_max_w, "W", fmt=".6E")
        self._temperature_kind = Number(tec_range_c[0], tec_range_c[1], "C", fmt=".3f")
        self.ambient_temperature_c = float(ambient_temperature_c)
        self._defaults()

    def _defaults(self) -> None:
        self.ld_mode = "CURR"
        self.pump_power_mw = 0.0
        self.pump_current_limit_a = 0.5
        self.pump_on = False
        self.crystal_temperature_c = 25.0
        self.tec_on = False

    def reset(self) -> None:
        super().reset()
        self._defaults()

    def next_error(self) -> str:
        """The ITC writes the empty queue as ``+0,"No error"``."""
        if not self.errors:
            return '+0,"No error"'
        return super().next_error()

    # -- readbacks ----------------------------------------------------------------------------
    @property
    def pump_power_measured_mw(self) -> float:
        """Monitor-photodiode power: the setpoint when on in power mode, else 0."""
        return self.pump_power_mw if self.pump_on and self.ld_mode == "POW" else 0.0

    @property
    def crystal_temperature_measured_c(self) -> float:
        """The setpoint while the TEC regulates, the ambient temperature otherwise."""
        return self.crystal_temperature_c if self.tec_on else self.ambient_temperature_c

    def _changed(self, name: str, value: object) -> None:
        self.setting_changed(name, None, value)

    # -- laser diode (pump) -------------------------------------------------------------------
    @command("[SOURce#]:FUNCtion[:SHAPe]:MODE", suffixes=(_LD,))
    def _mode(self, call: Call) -> None:
        self.ld_mode = Choice("CURRent", "POWer").parse(call.expect_args(1)[0])
        self._changed("ld_mode", self.ld_mode)

    @command("[SOURce#]:FUNCtion[:SHAPe]:MODE?", suffixes=(_LD,))
    def _mode_query(self, call: Call) -> str:
        call.expect_args(0)
        return self.ld_mode

    @command("[SOURce#]:POWer[:LEVel][:IMMediate][:AMPLitude]", suffixes=(_LD,))
    def _power(self, call: Call) -> None:
        self.pump_power_mw = 1e3 * float(self._power_kind.parse(call.expect_args(1)[0]))
        self._changed("pump_power_mw", self.pump_power_mw)

    @command("[SOURce#]:POWer[:LEVel][:IMMediate][:AMPLitude]?", suffixes=(_LD,))
    def _power_query(self, call: Call) -> str:
        call.expect_args(0)
        return self._power_kind.format(self.pump_power_mw / 1e3)

    @command("[SOURce#]:CURRent:LIMit[:AMPLitude]", suffixes=(_LD,))
    def _current_limit(self, call: Call) -> None:
        kind = Number(*CURRENT_LIMIT_RANGE_A, "A")
        self.pump_current_limit_a = float(kind.parse(call.expect_args(1)[0]))
        self._changed("pump_current_limit_a", self.pump_current_limit_a)

    @command("[SOURce#]:CURRent:LIMit[:AMPLitude]?", suffixes=(_LD,))
    def _current_limit_query(self, call: Call) -> str:
        call.expect_args(0)
        return f"{self.pump_current_limit_a:.6E}"

    # -- outputs --------------------------------------------------------------------------------
    @command("OUTPut#[:STATe]", suffixes=(_LD, _TEC))
    def _output(self, call: Call) -> None:
        on = Boolean().parse(call.expect_args(1)[0])
        if call.suffix == _LD:
            self.pump_on = on
            self._changed("pump_on", on)
        else:
            self.tec_on = on
            self._changed("tec_on", on)

    @command("OUTPut#[:STATe]?", suffixes=(_LD, _TEC))
    def _output_query(self, call: Call) -> str:
        call.expect_args(0)
        return "1" if (self.pump_on if call.suffix == _LD else self.tec_on) else "0"

    # -- TEC (crystal) --------------------------------------------------------------------------
    @command("SOURce#:TEMPerature[:SPOint]", suffixes=(_TEC,))
    def _temperature(self, call: Call) -> None:
        self.crystal_temperature_c = float(self._temperature_kind.parse(call.expect_args(1)[0]))
        self._changed("crystal_temperature_c", self.crystal_temperature_c)

    @command("SOURce#:TEMPerature[:SPOint]?", suffixes=(_TEC,))
    def _temperature_query(self, call: Call) -> str:
        call.expect_args(0)
        return self._temperature_kind.format(self.crystal_temperature_c)

    # -- measurements ---------------------------------------------------------------------------
    @command("MEASure[:SCALar]:POWer#?", suffixes=(2,))
    def _measured_power(self, call: Call) -> str:
        call.expect_args(0)
        return f"{self.pump_power_measured_mw / 1e3:.6E}"

    @command("MEASure[:SCALar]:TEMPerature?")
    def _measured_temperature(self, call: Call) -> str:
        call.expect_args(0)
        return f"{self.crystal_temperature_measured_c:.3f}"
