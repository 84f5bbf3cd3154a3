"""Simulated Single Quantum Eos SNSPD controller (SCPI rendering of its remote API).

Speaks the SCPI-style rendering of the Eos labels that ``drivers/singlequantum_eos.py``
uses (see that module for the mapping to ``BiasCurrent``, ``TriggerLevel``,
``DetectorEnable``, ``InptMeasurementPeriod``, ``BiasVoltage`` and the counts stream);
errors go to the SCPI error queue ``SYST:ERR?`` (-222 out of range, -114 no such detector).

==========================  ====================================================
command                     behaviour
==========================  ====================================================
``*IDN?``                   ``Single Quantum,Eos,<serial>,<firmware>``
``DET:NUMB?``               number of detectors (1..16, constructor argument)
``DET:ENAB 0|1`` / ?        bias outputs enabled (all detectors)
``MEAS:PER <ms>`` / ?       counter integration time, 10..60000 ms
``DET<n>:BIAS <uA>`` / ?    bias current setpoint, 0..100 uA, ``%.3f``
``DET<n>:TRIG <mV>`` / ?    counter discriminator level, 0..1000 mV, ``%.1f``
``DET<n>:VOLT?``            voltage across the nanowire (mV, ``%.2f``), see below
``DET<n>:COUN?``            counts in the last measurement period
``DET<n>:RES``              auto-reset: bias to 0 and back (the lab decides the latch)
==========================  ====================================================

From the simulated lab (:class:`LabHooks`):

* counts = ``round(hooks.detector_count_rate_hz(name, n) * period)``, or a Poisson sample
  with that mean when the instrument is given an ``rng``; 0 while the bias outputs are
  disabled (no bias current flows, nothing can click);
* latch state ``hooks.detector_latched(name, n)`` shows as the bias voltage. The Eos biases
  each wire from a voltage source through a series resistor; a superconducting wire has no
  voltage across it, a latched (normal-conducting) wire of resistance ``R_n`` forms a
  divider with the series resistor ``R_s``: ``V = I_bias * R_s * R_n / (R_s + R_n)``
  (:data:`SERIES_RESISTANCE_OHM`, :data:`NORMAL_RESISTANCE_OHM`; Ohm's law). At 10 uA that
  is ~900 mV, far above the driver's 50 mV latch threshold.
* ``DET<n>:RES`` counts the reset (``channels[n].resets``, time ``last_reset_s``) and tells the
  lab through ``hooks.settings_changed``.
"""

from __future__ import annotations

import numpy as np

from .edits import Watched
from .protocols import LabHooks
from .scpi import Boolean, Call, Integer, Number, ScpiError, ScpiInstrument, Setting, command

MAX_DETECTORS = 16
BIAS_RANGE_UA = (0.0, 100.0)
TRIGGER_RANGE_MV = (0.0, 1000.0)
#: Series bias resistor of each channel's bias source (ohm).
SERIES_RESISTANCE_OHM = 100e3
#: Resistance of a latched (normal-conducting) nanowire (ohm).
NORMAL_RESISTANCE_OHM = 1e6


class EosChannel(Watched):
    """One detector channel's settings (``bias_enabled`` is the unit's global enable)."""

    def __init__(self, instrument: SimSingleQuantumEos, channel: int) -> None:
        self._instrument = instrument
        self.channel = channel
        self.bias_ua = 0.0
        self.trigger_level_mv = 150.0
        self.resets = 0
        self.last_reset_s: float | None = None

    @property
    def bias_enabled(self) -> bool:
        """Bias current flows: the Eos enables all bias outputs together (``DET:ENAB``)."""
        return bool(self._instrument.detector_enable)

    def __repr__(self) -> str:
        return (
            f"EosChannel({self.channel}, bias_ua={self.bias_ua}, "
            f"bias_enabled={self.bias_enabled}, trigger_level_mv={self.trigger_level_mv})"
        )


class SimSingleQuantumEos(Watched, ScpiInstrument):
    """Simulated Single Quantum Eos; a :class:`~sim_backend.instruments.protocols.MessageHandler`.

    Args:
        name: instrument name (passed to the lab hooks).
        hooks: the simulated lab: count rates, latch state, change notifications.
        detectors: number of detector channels (1..16).
        serial: serial number in ``*IDN?``.
        rng: if given, counts are Poisson samples around ``rate * period`` (seed it for a
            reproducible dry run); else the rounded mean.

    Attributes read by the lab: ``channels[n].bias_ua``, ``channels[n].bias_enabled``
    (also ``trigger_level_mv``, ``resets``, ``last_reset_s``), :attr:`detector_enable`,
    :attr:`measurement_period_ms`.
    """

    IDN = "Single Quantum,Eos,SQ-EOS-0815,2.4.1"

    detector_enable = Setting("DETector:ENABle", Boolean(), default=False)
    measurement_period_ms = Setting("MEASure:PERiod", Integer(10, 60_000), default=100)

    def __init__(
        self,
        name: str,
        hooks: LabHooks | None = None,
        detectors: int = 4,
        serial: str = "SQ-EOS-0815",
        rng: np.random.Generator | None = None,
    ) -> None:
        if not 1 <= detectors <= MAX_DETECTORS:
            raise ValueError(f"{name}: detectors={detectors}, expected 1..{MAX_DETECTORS}")
        super().__init__(name, hooks)
        self.idn = f"Single Quantum,Eos,{serial},2.4.1"
        self.rng = rng
        self.channels: dict[int, EosChannel] = {
            n: EosChannel(self, n) for n in range(1, detectors + 1)
        }

    def reset(self) -> None:
        super().reset()
        for channel in self.channels.values():
            channel.bias_ua = 0.0
            channel.trigger_level_mv = 150.0

    # -- what the detector reports --------------------------------------------------------------
    def counts(self, channel: int) -> int:
        """Counts in the last measurement period (from the lab's count rate)."""
        if not self.detector_enable:
            return 0
        rate = float(self.hooks.detector_count_rate_hz(self.name, channel))
        mean = max(rate, 0.0) * self.measurement_period_ms / 1e3
        return int(self.rng.poisson(mean)) if self.rng is not None else round(mean)

    def bias_voltage_mv(self, channel: int) -> float:
        """Voltage across the nanowire: 0 superconducting, the divider voltage when latched."""
        ch = self.channels[channel]
        if not ch.bias_enabled or ch.bias_ua <= 0:
            return 0.0
        if not self.hooks.detector_latched(self.name, channel):
            return 0.0
        divider = NORMAL_RESISTANCE_OHM / (SERIES_RESISTANCE_OHM + NORMAL_RESISTANCE_OHM)
        return ch.bias_ua * 1e-6 * SERIES_RESISTANCE_OHM * divider * 1e3

    # -- commands -------------------------------------------------------------------------------
    def _channel(self, call: Call) -> EosChannel:
        channel = self.channels.get(call.suffix)
        if channel is None:
            raise ScpiError(-114, f"no detector {call.suffix}; detectors 1..{len(self.channels)}")
        return channel

    @command("DETector:NUMBer?")
    def _number(self, call: Call) -> str:
        call.expect_args(0)
        return str(len(self.channels))

    @command("DETector#:BIAS")
    def _bias(self, call: Call) -> None:
        channel = self._channel(call)
        channel.bias_ua = float(Number(*BIAS_RANGE_UA).parse(call.expect_args(1)[0]))
        self.setting_changed("bias_ua", channel.channel, channel.bias_ua)

    @command("DETector#:BIAS?")
    def _bias_query(self, call: Call) -> str:
        call.expect_args(0)
        return f"{self._channel(call).bias_ua:.3f}"

    @command("DETector#:TRIGger")
    def _trigger(self, call: Call) -> None:
        channel = self._channel(call)
        level = float(Number(*TRIGGER_RANGE_MV).parse(call.expect_args(1)[0]))
        channel.trigger_level_mv = level
        self.setting_changed("trigger_level_mv", channel.channel, level)

    @command("DETector#:TRIGger?")
    def _trigger_query(self, call: Call) -> str:
        call.expect_args(0)
        return f"{self._channel(call).trigger_level_mv:.1f}"

    @command("DETector#:VOLTage?")
    def _voltage(self, call: Call) -> str:
        call.expect_args(0)
        return f"{self.bias_voltage_mv(self._channel(call).channel):.2f}"

    @command("DETector#:COUNts?")
    def _counts(self, call: Call) -> str:
        call.expect_args(0)
        return str(self.counts(self._channel(call).channel))

    @command("DETector#:RESet")
    def _reset_latch(self, call: Call) -> None:
        call.expect_args(0)
        channel = self._channel(call)
        channel.resets += 1
        channel.last_reset_s = float(self.hooks.now_s())
        self.setting_changed("reset", channel.channel, channel.resets)
