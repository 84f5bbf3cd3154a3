"""What the spin calibrations (Rabi, Ramsey) share: driving the node's spin with AWG pulses
through the microwave source and reading it out, shot by shot, and a fit of binomial
outcomes with uncertainties.

A shot is what an NV lab's real-time controller does for a pulse sequence: initialise the
spin (optical pumping), trigger the AWG, whose channel-1 waveform IQ-modulates the MW source
(no marker 1: no optical pulse), then read the spin out. Only HAL roles are used.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from drivers.hal import AWG, AwgSequence, AwgSequenceStep, AwgWaveform, MicrowaveSource, QubitDevice

from ._common import Fit, weighted_fit


@dataclass
class SpinDrive:
    """A node's spin drive: AWG -> MW source IQ input -> spin; the real-time controller
    initialises and reads out. Levels are in volts at the AWG output (channel 1, at
    ``awg_amplitude_vpp``)."""

    awg: AWG
    microwave: MicrowaveSource
    qubits: QubitDevice
    qubit: int = 0
    sample_rate_hz: float = 1.0e9
    awg_amplitude_vpp: float = 4.5
    run_timeout_s: float = 60.0

    @property
    def max_level_v(self) -> float:
        return self.awg_amplitude_vpp / 2

    def set_microwave(self, frequency_hz: float, power_dbm: float) -> None:
        """MW carrier at ``frequency_hz``, IQ-modulated by the AWG, output on."""
        self.microwave.set_frequency_hz(frequency_hz)
        self.microwave.set_power_dbm(power_dbm)
        self.microwave.set_modulation(iq=True, pulse=False)
        self.microwave.set_output(True)

    def upload(self, levels_v: np.ndarray, name: str = "spin") -> None:
        """Upload one waveform (volts per sample) as a one-step sequence, no markers."""
        levels = np.asarray(levels_v, dtype=float)
        peak = float(np.max(np.abs(levels))) if levels.size else 0.0
        if peak > self.max_level_v + 1e-12:
            raise ValueError(
                f"drive level {peak:.3f} V above the AWG's {self.max_level_v:.3f} V at "
                f"awg_amplitude_vpp={self.awg_amplitude_vpp}"
            )
        n = levels.size
        wave = AwgWaveform(
            name, levels / self.max_level_v, np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        )
        self.awg.upload_sequence(
            AwgSequence(
                [wave],
                [AwgSequenceStep({1: name}, repetitions=1)],
                sample_rate_hz=self.sample_rate_hz,
                amplitudes_vpp={1: self.awg_amplitude_vpp},
            )
        )

    def samples(self, duration_s: float) -> int:
        return int(round(duration_s * self.sample_rate_hz))

    def ones(self, shots: int) -> int:
        """Play the uploaded waveform ``shots`` times, each after initialising the spin and
        followed by a Z readout; return how many read 1."""
        ones = 0
        for _ in range(shots):
            self.qubits.initialize(self.qubit)
            self.awg.run()
            deadline = time.monotonic() + self.run_timeout_s
            while self.awg.is_running():  # in the lab the sequence takes its time
                if time.monotonic() > deadline:
                    self.awg.stop()
                    raise TimeoutError("the AWG's spin sequence did not finish")
                time.sleep(1e-4)
            ones += self.qubits.measure(self.qubit, "Z")
        return ones


def fit_binomial(
    model: Callable[..., np.ndarray],
    names: Sequence[str],
    x: np.ndarray,
    ones: np.ndarray,
    shots: int,
    p0: Sequence[float],
    bounds: tuple[Sequence[float], Sequence[float]],
) -> Fit:
    """Weighted least squares of binomial fractions k/n, sigma^2 = p(1-p)/n with p
    Laplace-smoothed ((k+1)/(n+2), so 0 or n ones keep a finite weight); see
    ``_common.weighted_fit``."""
    y = np.asarray(ones, dtype=float) / shots
    smoothed = (np.asarray(ones, dtype=float) + 1) / (shots + 2)
    sigma = np.sqrt(smoothed * (1 - smoothed) / shots)
    return weighted_fit(model, names, x, y, sigma, p0, bounds)
