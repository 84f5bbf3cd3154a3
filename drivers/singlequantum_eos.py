"""Single Quantum Eos SNSPD driver (bias electronics and counters for 1-16 detectors).

Modelled on the public remote API of the Single Quantum Eos / Atlas driver (Single
Quantum *Eos User Manual*, chapter "Remote control", and the vendor's WebSQ Python
client): per-detector ``BiasCurrent`` (uA), ``TriggerLevel`` (mV), ``BiasVoltage``,
global ``DetectorEnable``, ``InptMeasurementPeriod`` (ms, >= 10) and per-period counts.
**The Eos is not SCPI**: it speaks JSON over TCP (control port 12000, counts stream on
port 12345). This driver renders that label set one-to-one as SCPI-style text commands
so it runs over a VISA message resource (a thin bridge in the lab, the simulated lab in
dry runs); the table gives the mapping. The latched state is derived as the manual
describes it: a latched (normal-conducting) nanowire shows a bias voltage well above
the superconducting ~0 V; a reset drops the bias to zero and restores it.

=====================  ===========================  ==================================  ====
command                Eos label                    meaning                             unit
=====================  ===========================  ==================================  ====
``*IDN?``                                           ``Single Quantum,Eos,<sn>,<fw>``
``SYST:ERR?``                                       error queue, ``0,"No error"``
``DET:NUMB?``          ``NumberOfDetectors``        number of channels
``DET:ENAB 0|1`` / ?   ``DetectorEnable``           bias outputs enabled
``MEAS:PER <x>`` / ?   ``InptMeasurementPeriod``    counter integration time            ms
``DET<n>:BIAS <x>``/?  ``BiasCurrent[n]``           bias current                        uA
``DET<n>:TRIG <x>``/?  ``TriggerLevel[n]``          counter discriminator level         mV
``DET<n>:VOLT?``       ``BiasVoltage[n]``           voltage across the nanowire         mV
``DET<n>:COUN?``       counts stream column ``n``   counts in the last period
``DET<n>:RES``         (auto-reset action)          bias to 0 and back: clears a latch
=====================  ===========================  ==================================  ====
"""

from __future__ import annotations

from typing import Any

import qcodes.validators as vals
from qcodes.instrument import ChannelList
from qcodes.parameters import ManualParameter

from drivers.base import QNodeChannel, QNodeVisaInstrument, on_off
from drivers.errors import InstrumentValueError

MAX_CHANNELS = 16


class EosDetectorChannel(QNodeChannel):
    """One SNSPD: bias, trigger level, counter and latch state."""

    def __init__(self, parent: SingleQuantumEos, name: str, channel: int, max_bias_ua: float):
        super().__init__(parent, name)
        self.channel = channel
        n = channel
        self.bias_current = self.add_parameter(
            "bias_current",
            unit="uA",
            label="Bias current",
            get_cmd=f"DET{n}:BIAS?",
            set_cmd=f"DET{n}:BIAS {{:.3f}}",
            get_parser=float,
            vals=vals.Numbers(0.0, max_bias_ua),
        )
        self.trigger_level = self.add_parameter(
            "trigger_level",
            unit="mV",
            label="Counter trigger level",
            get_cmd=f"DET{n}:TRIG?",
            set_cmd=f"DET{n}:TRIG {{:.1f}}",
            get_parser=float,
            vals=vals.Numbers(0.0, 1000.0),
        )
        self.bias_voltage = self.add_parameter(
            "bias_voltage",
            unit="mV",
            label="Voltage across the nanowire",
            get_cmd=f"DET{n}:VOLT?",
            set_cmd=False,
            get_parser=float,
        )
        self.counts = self.add_parameter(
            "counts",
            label="Counts in the last measurement period",
            get_cmd=f"DET{n}:COUN?",
            set_cmd=False,
            get_parser=lambda s: int(float(s)),
        )
        self.latch_threshold = self.add_parameter(
            "latch_threshold",
            unit="mV",
            label="Voltage above which the detector is latched",
            parameter_class=ManualParameter,
            initial_value=50.0,
            vals=vals.Numbers(0.0, 10e3),
        )
        self.latched = self.add_parameter(
            "latched",
            label="Detector latched (normal-conducting)",
            get_cmd=self._is_latched,
            set_cmd=False,
        )

    def _is_latched(self) -> bool:
        return float(self.bias_voltage.get()) > float(self.latch_threshold.get())

    def count_rate(self) -> float:
        """Counts per second over the last measurement period."""
        period_s = float(self.root_instrument.measurement_period.get()) / 1e3
        return self.counts.get() / period_s

    def reset(self) -> None:
        """Drop the bias to zero and restore it (clears a latch)."""
        self.write(f"DET{self.channel}:RES")


class SingleQuantumEos(QNodeVisaInstrument):
    """Single Quantum Eos; fulfils :class:`drivers.hal.PhotonDetector`.

    Args:
        max_bias_ua: highest bias current accepted (set it just below the detectors'
            switching current; default 50 uA).
    """

    MODEL = "Single Quantum Eos"
    IDN_VENDOR = "Single Quantum"
    IDN_MODEL = "Eos"
    ERROR_QUERY = "SYST:ERR?"

    def __init__(
        self, name: str, address: str | None = None, max_bias_ua: float = 50.0, **kwargs: Any
    ) -> None:
        super().__init__(name, address, **kwargs)
        self.detector_enable = self.add_parameter(
            "detector_enable",
            label="Bias outputs enabled",
            get_cmd="DET:ENAB?",
            set_cmd="DET:ENAB {}",
            val_mapping=on_off(),
        )
        self.measurement_period = self.add_parameter(
            "measurement_period",
            unit="ms",
            label="Counter integration time",
            get_cmd="MEAS:PER?",
            set_cmd="MEAS:PER {:d}",
            get_parser=lambda s: int(float(s)),
            vals=vals.Ints(10, 60_000),
        )
        with self.closing_on_error():
            count = int(self._parse_float(self.ask("DET:NUMB?"), "DET:NUMB?"))
            if not 1 <= count <= MAX_CHANNELS:
                raise InstrumentValueError(
                    self.display_name,
                    f"reports {count} detectors, expected 1..{MAX_CHANNELS}",
                    command="DET:NUMB?",
                )
        channels = ChannelList(self, "channels", EosDetectorChannel)
        for n in range(1, count + 1):
            channel = EosDetectorChannel(self, f"det{n}", n, max_bias_ua)
            channels.append(channel)
            self.add_submodule(f"det{n}", channel)
        self.channels = self.add_submodule("channels", channels.to_channel_tuple())

    def detector(self, channel: int) -> EosDetectorChannel:
        if not 1 <= channel <= len(self.channels):
            raise InstrumentValueError(
                self.display_name,
                f"has no detector {channel}; detectors are 1..{len(self.channels)}",
            )
        return self.channels[channel - 1]

    # -- hal.PhotonDetector ---------------------------------------------------------------
    def channel_count(self) -> int:
        return len(self.channels)

    def set_bias_enabled(self, enabled: bool) -> None:
        """Switch all bias outputs on or off (the Eos enables them together)."""
        self.detector_enable.set(enabled)

    def set_bias_current_ua(self, current_ua: float, channel: int = 1) -> None:
        self.detector(channel).bias_current.set(current_ua)

    def get_bias_current_ua(self, channel: int = 1) -> float:
        return float(self.detector(channel).bias_current.get())

    def count_rate_hz(self, channel: int = 1) -> float:
        return self.detector(channel).count_rate()

    def is_latched(self, channel: int = 1) -> bool:
        return bool(self.detector(channel).latched.get())

    def reset_latch(self, channel: int = 1) -> None:
        self.detector(channel).reset()

    def safe_state(self) -> None:
        """Bias outputs disabled, then every bias setpoint to 0 uA."""
        self.detector_enable.set(False)
        for channel in self.channels:
            channel.bias_current.set(0.0)
