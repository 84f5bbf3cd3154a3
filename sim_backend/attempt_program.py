"""Reading an attempt loop out of the sequence uploaded to a simulated AWG, as a lab
engineer reads the program: which heralding scheme it plays, how long an attempt lasts,
how many attempts it allows, and the microwave pulses around each optical pulse.

The convention (``sequences.attempt_loop``, ``sequences.barrett_kok``): the *attempt step*
is the first sequence step whose channel-1 waveform raises marker 1 (marker 1 gates the
excitation AOM: one optical pulse per rising edge). One rising edge is the single-click
scheme (Humphreys et al., Nature 558, 268 (2018)); two are the two rounds of Barrett-Kok
(Barrett & Kok, PRA 71, 060310 (2005); Bernien et al., Nature 497, 86 (2013)). The
channel-1 samples before the first optical pulse are the microwave pulse that prepares the
spin; for Barrett-Kok, the samples between the two optical pulses are the pi pulse. One
repetition of the step is one attempt; consecutive steps playing the same waveform add their
repetitions (0: until a herald); an event jump on the step means "stop at the herald".
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .instruments.edits import Watched, edits

#: a Barrett-Kok program's pulse between the rounds must flip the spin at least this often:
#: the link physics models that pulse as a pi pulse (with the gate's error)
PI_PULSE_MIN_FLIP = 0.95


@dataclass(frozen=True)
class DrivePulse:
    """A microwave pulse played by AWG channel 1: peak volts at the output, time driven."""

    peak_v: float
    duration_s: float


@dataclass(frozen=True)
class AttemptProgram:
    """The attempt loop that an AWG's uploaded sequence encodes."""

    awg: str
    scheme: str  # "single_click" or "barrett_kok" ("unsupported" with ``problem``)
    repetitions: int  # attempts allowed (0: until a herald or the herald timeout)
    stop_at_herald: bool
    duration_s: float  # one attempt: the attempt waveform's length
    round_separation_s: float | None  # Barrett-Kok: between the two optical pulses
    pulses: tuple[DrivePulse, ...]  # before the first optical pulse [, between the rounds]
    channel_on: bool
    problem: str | None = None  # why the program is no attempt loop the lab can run
    optical_start_s: float = 0.0  # when, within the attempt, the (first) optical pulse starts

    @property
    def attempt_duration_us(self) -> float:
        """The local part of an attempt as the link physics counts it: for Barrett-Kok the
        round separation is counted on its own (``sim_backend.physics.link.link_timing``)."""
        return (self.duration_s - (self.round_separation_s or 0.0)) * 1e6

    def timing_key(self) -> tuple[str, float, float | None]:
        """What both nodes of a link must agree on (to the nanosecond)."""
        separation = None if self.round_separation_s is None else round(self.round_separation_s, 9)
        return self.scheme, round(self.duration_s, 9), separation


def marker_pulses(marker: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first sample, first sample after) of each high stretch of a marker track."""
    track = np.asarray(marker, dtype=bool).view(np.int8)
    steps = np.diff(track)
    starts = np.flatnonzero(steps == 1) + 1
    ends = np.flatnonzero(steps == -1) + 1
    if track[0]:
        starts = np.concatenate(([0], starts))
    if track[-1]:
        ends = np.concatenate((ends, [len(track)]))
    return starts, ends


def _pulse(samples: np.ndarray, scale_v: float, sample_rate_hz: float) -> DrivePulse:
    drive = np.asarray(samples, dtype=float) * scale_v
    driven = np.count_nonzero(drive)
    peak = float(np.max(np.abs(drive))) if driven else 0.0
    return DrivePulse(peak, driven / sample_rate_hz)


def decode_attempt_program(awg: Any) -> AttemptProgram | None:
    """The attempt loop of a simulated AWG's sequence, or None when no step raises marker 1."""
    for index, step in enumerate(awg.sequence):
        name = step.waveforms.get(1)
        wave = awg.waveforms.get(name) if name else None
        if wave is None or not np.any(wave.marker1):
            continue
        repetitions = 0
        for later in awg.sequence[index:]:
            if later.waveforms.get(1) != name:
                break
            if later.repetitions == 0:
                repetitions = 0
                break
            repetitions += later.repetitions
        rate = awg.sample_rate_hz
        scale = awg.channels[1].amplitude_vpp / 2
        edges, ends = marker_pulses(wave.marker1)
        first_end = int(ends[0])  # the first sample after the first optical pulse
        pulses = [_pulse(wave.samples[: edges[0]], scale, rate)]
        scheme, separation, problem = "single_click", None, None
        if len(edges) == 2:
            scheme = "barrett_kok"
            separation = float(edges[1] - edges[0]) / rate
            pulses.append(_pulse(wave.samples[first_end : edges[1]], scale, rate))
        elif len(edges) > 2:
            scheme = "unsupported"
            problem = (
                f"the attempt waveform {name!r} raises marker 1 (the optical pulse) "
                f"{len(edges)} times; expected once (single click) or twice (Barrett-Kok)"
            )
        return AttemptProgram(
            awg=awg.name,
            scheme=scheme,
            repetitions=repetitions,
            stop_at_herald=step.event_jump_to is not None,
            duration_s=len(wave.samples) / rate,
            round_separation_s=separation,
            pulses=tuple(pulses),
            channel_on=bool(awg.channels[1].output_on),
            problem=problem,
            optical_start_s=float(edges[0]) / rate,
        )
    return None


class ProgramCache:
    """Decoded attempt programs per AWG, decoded again only when the AWG's sequence, the
    waveforms it plays, its sample rate or channel 1 changed (an attempt loop starts the
    AWGs every few hundred microseconds; decoding its waveforms each time costs more than
    the rest of the start). What the AWG plays is compared with what was decoded (its
    key), unless the AWG counts its edits (``instruments.edits``) and none happened since
    the last comparison."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def get(self, awg: Any) -> AttemptProgram | None:
        entry = self._entries.get(awg.name)
        count = edits()
        if entry is not None and entry.edits == count and entry.awg is awg:
            return entry.program
        key = _program_key(awg)
        if entry is not None and entry.awg is awg and entry.key == key:
            program = entry.program
        else:
            # waveform objects are replaced, never edited, when the user list changes; the
            # entry holds them, so their ids cannot be reused while it lives
            waveforms = awg.waveforms
            waves = [waveforms.get(n) for e in awg.elements for _, n in e.waveforms.items()]
            program = decode_attempt_program(awg)
            entry = _Entry(awg, key, program, waves)
        # an AWG that does not count its edits is compared on every call
        entry.edits = count if isinstance(awg, Watched) else None
        self._entries[awg.name] = entry
        return program


@dataclass(eq=False)
class _Entry:
    """A decoded program, the AWG and what it played (``_program_key``), and the edit
    count when that was last compared (None: compare on every call)."""

    awg: Any
    key: list[Any]
    program: AttemptProgram | None
    waves: list[Any]
    edits: int | None = None


def _program_key(awg: Any) -> list[Any]:
    """What an AWG's attempt program is decoded from, as one flat list: per element its
    (channel, waveform name) items in the element's own order (another order only decodes
    again), its sequencing fields and the ids of the waveforms it plays."""
    waveforms = awg.waveforms
    channel = awg.channels[1]
    key: list[Any] = [awg.sample_rate_hz, channel.amplitude_vpp, channel.output_on]
    for element in awg.elements:
        items = tuple(element.waveforms.items())
        key.append(items)
        key.append(_element_fields(element))
        for _, name in items:
            key.append(id(waveforms.get(name)))
    return key


#: an AWG sequence element's sequencing fields (``ProgramCache``)
_element_fields = operator.attrgetter(
    "loop_count",
    "loop_infinite",
    "wait_trigger",
    "jump_type",
    "jump_index",
    "goto_state",
    "goto_index",
)


def refusal(
    first: AttemptProgram,
    second: AttemptProgram,
    detection_window_s: float,
    flip: Callable[[int], tuple[float, float]],
) -> str | None:
    """Why the two nodes' programs cannot run on their link, or None. ``flip(i)`` gives the
    (angle, flip probability) of node i's pulse between the Barrett-Kok rounds."""
    for program in (first, second):
        if program.problem:
            return f"{program.awg}: {program.problem}"
    if first.timing_key() != second.timing_key():
        return (
            f"{first.awg} plays a {first.scheme} attempt of {first.duration_s * 1e6:g} us, "
            f"{second.awg} a {second.scheme} attempt of {second.duration_s * 1e6:g} us "
            f"(round separations {first.round_separation_s}, {second.round_separation_s} s); "
            "expected the same attempt loop on both nodes of a link"
        )
    if first.scheme != "barrett_kok" or first.round_separation_s is None:
        return None
    if first.round_separation_s < detection_window_s:
        return (
            f"{first.awg}: Barrett-Kok rounds {first.round_separation_s * 1e6:g} us apart, "
            f"shorter than the station's detection window ({detection_window_s * 1e9:g} ns); "
            "expected rounds the station can tell apart"
        )
    for index, program in enumerate((first, second)):
        angle, probability = flip(index)
        if probability < PI_PULSE_MIN_FLIP:
            return (
                f"{program.awg}: the pulse between the Barrett-Kok rounds flips the spin with "
                f"probability {probability:.3f} ({angle:.3f} rad); expected a pi pulse "
                f"(flip >= {PI_PULSE_MIN_FLIP}), which the simulated lab models"
            )
    return None


def attempts_within(timeout_s: float, period_s: float) -> int:
    """Attempts a herald timeout allows: floor(timeout / attempt period), the period
    including the herald's return (raises ValueError when not even one fits)."""
    attempts = math.floor(timeout_s / period_s * (1 + 1e-12))
    if attempts < 1:
        raise ValueError(
            f"herald timeout {timeout_s * 1e6:g} us shorter than one attempt period "
            f"({period_s * 1e6:g} us with the herald's return); expected a longer timeout"
        )
    return attempts
