"""What every heralded-entanglement attempt loop shares: the AWG time base, the pulses, and
the two cut-offs that end a loop without a herald (attempts, and time).

The loop itself runs on the AWG and the node's real-time controller (DESIGN.md, principle 3):
one repetition of the *attempt* waveform is one attempt; the attempt step repeats up to
``max_attempts`` times (the AWG's repetition count), an event jump (the herald from the
station) ends it early, and the real-time controller gives up waiting for a herald after
``max_time_us`` (its herald timeout, ``ENT:TIM``), as the node of Humphreys et al., Nature
558, 268 (2018) does, so that a stored partner pair does not wait for ever.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from drivers.hal import AwgSequence, AwgSequenceStep, AwgWaveform

#: the longest herald wait a real-time controller accepts (``ENT:TIM``), us
MAX_TIME_LIMIT_US = 3.6e9


class LoopError(ValueError):
    """An attempt loop that cannot be built or compiled: names the field, value, expectation."""


class EntanglementLoop(BaseModel):
    """Fields common to the attempt loops of every heralding scheme (unit in each name)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(
        0, ge=0, le=2**31 - 1, description="attempts before giving up (0: no cut-off on attempts)"
    )
    max_time_us: float | None = Field(
        None,
        gt=0,
        le=MAX_TIME_LIMIT_US,
        allow_inf_nan=False,
        description="time before giving up, us (the real-time controller's herald timeout; "
        "None: no cut-off on time)",
    )
    stop_at_herald: bool = True
    attempt_duration_us: float = Field(3.8, ge=0.1, le=1000)
    sample_rate_hz: float = Field(1.0e9, ge=1e6, le=1.2e9)
    microwave_pulse_ns: float = Field(50.0, gt=0, le=10_000)
    optical_pulse_ns: float = Field(10.0, gt=0, le=10_000)
    pi_pulse_amplitude_v: float = Field(
        0.5, gt=0, le=5, description="calibrated AWG amplitude of a pi rotation"
    )
    awg_amplitude_vpp: float = Field(1.0, gt=0, le=4.5)
    max_repetitions_per_step: int = Field(
        65_536, ge=1, description="the AWG's largest repetition count of one sequence step"
    )

    @model_validator(mode="after")
    def _time_cutoff_holds_an_attempt(self) -> EntanglementLoop:
        if self.max_time_us is not None and self.max_time_us < self.attempt_duration_us:
            raise ValueError(
                f"max_time_us={self.max_time_us:g}: shorter than one attempt "
                f"(attempt_duration_us={self.attempt_duration_us:g}); expected at least one "
                "attempt's duration"
            )
        return self

    # ---------------------------------------------------------------- description
    @property
    def herald_timeout_s(self) -> float:
        """The real-time controller's herald timeout for this loop: the cut-off on time, or
        the longest wait the controller accepts when there is none."""
        return (MAX_TIME_LIMIT_US if self.max_time_us is None else self.max_time_us) * 1e-6

    def cutoff_text(self) -> str:
        """The loop's cut-offs in words, e.g. '500 attempts or 2000 us' (for messages)."""
        parts = []
        if self.max_attempts:
            parts.append(f"{self.max_attempts} attempts")
        if self.max_time_us is not None:
            parts.append(f"{self.max_time_us:g} us")
        return " or ".join(parts) or "no cut-off"

    # ------------------------------------------------------------- compilation aids
    def samples(self, duration_ns: float) -> int:
        """Samples of ``duration_ns`` at the loop's sample rate (at least one)."""
        return max(1, round(duration_ns * 1e-9 * self.sample_rate_hz))

    def level(self, angle_rad: float, what: str) -> float:
        """AWG level (-1..1 of the channel's amplitude) of a rotation by ``angle_rad``: the
        Rabi angle is linear in the drive amplitude, ``pi_pulse_amplitude_v`` being pi."""
        volts = self.pi_pulse_amplitude_v * angle_rad / math.pi
        level = volts / (self.awg_amplitude_vpp / 2)
        if level > 1:
            raise LoopError(
                f"{what}: needs {volts:.3f} V, more than the AWG's "
                f"{self.awg_amplitude_vpp / 2:.3f} V at awg_amplitude_vpp={self.awg_amplitude_vpp}"
                "; expected pi_pulse_amplitude_v within the AWG's range"
            )
        return level

    def attempt_steps(self, attempt_waveform: AwgWaveform) -> AwgSequence:
        """The sequence around one attempt waveform: attempt steps (as many as the AWG's
        repetition limit needs for ``max_attempts``; one infinite step without a cut-off on
        attempts) and a 'done' step that the herald's event jump leads to."""
        n = len(attempt_waveform.samples)
        done = AwgWaveform("done", np.zeros(n), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool))
        if self.max_attempts == 0:
            chunks = [0]  # repeat until the event (the herald) or the herald timeout
        else:
            full, rest = divmod(self.max_attempts, self.max_repetitions_per_step)
            chunks = [self.max_repetitions_per_step] * full + ([rest] if rest else [])
        done_index = len(chunks) + 1
        steps = [
            AwgSequenceStep(
                {1: attempt_waveform.name},
                repetitions=reps,
                event_jump_to=done_index if self.stop_at_herald else None,
            )
            for reps in chunks
        ]
        steps.append(AwgSequenceStep({1: "done"}, repetitions=1))
        return AwgSequence(
            [attempt_waveform, done],
            steps,
            sample_rate_hz=self.sample_rate_hz,
            amplitudes_vpp={1: self.awg_amplitude_vpp},
        )


def build_loop(model: type[EntanglementLoop], **fields: object) -> EntanglementLoop:
    """``model(**fields)`` with a validation failure turned into a `LoopError` that names the
    field, the value and what was expected (one line per problem)."""
    try:
        return model(**fields)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            if where:
                lines.append(f"{where}={error.get('input')!r}: {message}")
            else:
                lines.append(message)
        raise LoopError("; ".join(lines)) from None
