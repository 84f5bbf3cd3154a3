"""The Barrett-Kok attempt loop, declared and compiled to the node's AWG.

Barrett & Kok, Phys. Rev. A 71, 060310(R) (2005); as run with NV centres by Bernien et al.,
Nature 497, 86 (2013), Fig. 2. One attempt has two rounds:

1. a microwave pi/2 pulse puts the spin in (|0> + |1>)/sqrt2 (only |1>, the bright state,
   emits), and an optical pulse entangles it with the presence of a photon;
2. after ``round_separation_us``, a microwave pi pulse flips the spin and a second optical
   pulse excites it again.

The photons of both nodes meet at the station's beam splitter; exactly one click in each round
heralds Psi+ (both clicks in the same detector) or Psi- (different detectors). Ideally
p_success = eta_A eta_B / 2 per attempt and F = (1 + V)/2 for two-photon visibility V,
independent of the optical phase between the arms (the phase drops out between the rounds).

On the AWG, channel 1 plays the microwave pulses (IQ drive of the microwave source) and
marker 1 gates the excitation AOM, once per round: the attempt waveform raises marker 1
twice, which is how the simulated lab (and a reader of the program) tells the scheme.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from drivers.hal import AwgSequence, AwgWaveform

from .entanglement_loop import EntanglementLoop, LoopError


class BarrettKokLoop(EntanglementLoop):
    """A Barrett-Kok attempt loop; ``attempt_duration_us`` is one whole attempt (both rounds)."""

    scheme: Literal["barrett_kok"] = "barrett_kok"
    round_separation_us: float = Field(
        1.0, gt=0, le=1000, description="from the first round's optical pulse to the second's"
    )

    @model_validator(mode="after")
    def _rounds_fit_the_attempt(self) -> BarrettKokLoop:
        pulses_us = (self.microwave_pulse_ns + self.optical_pulse_ns) / 1e3
        needed_us = self.round_separation_us + pulses_us
        if self.attempt_duration_us < needed_us:
            raise ValueError(
                f"attempt_duration_us={self.attempt_duration_us:g}: too short for two rounds "
                f"{self.round_separation_us:g} us apart; expected at least {needed_us:g} us"
            )
        return self


def compile_barrett_kok(loop: BarrettKokLoop) -> AwgSequence:
    """The AWG sequence of a Barrett-Kok loop: one attempt waveform with the pi/2 pulse,
    the first optical pulse, the pi pulse and the second optical pulse."""
    n = loop.samples(loop.attempt_duration_us * 1e3)
    mw = loop.samples(loop.microwave_pulse_ns)
    optical = loop.samples(loop.optical_pulse_ns)
    separation = loop.samples(loop.round_separation_us * 1e3)
    if separation < mw + optical:
        raise LoopError(
            f"round_separation_us={loop.round_separation_us:g}: no room for the "
            f"{loop.microwave_pulse_ns:g} ns pi pulse after the {loop.optical_pulse_ns:g} ns "
            f"optical pulse; expected at least {(mw + optical) / loop.sample_rate_hz * 1e6:g} us"
        )
    second = mw + separation  # first sample of the second optical pulse
    if second + optical > n:
        raise LoopError(
            f"attempt_duration_us={loop.attempt_duration_us:g}: the second round ends after "
            f"{(second + optical) / loop.sample_rate_hz * 1e6:g} us; expected a longer attempt"
        )
    samples = np.zeros(n)
    samples[:mw] = loop.level(math.pi / 2, "the pi/2 pulse")
    samples[second - mw : second] = loop.level(math.pi, "the pi pulse")
    marker1 = np.zeros(n, dtype=bool)
    marker1[mw : mw + optical] = True
    marker1[second : second + optical] = True
    attempt = AwgWaveform("bk_attempt", samples, marker1, np.zeros(n, dtype=bool))
    return loop.attempt_steps(attempt)
