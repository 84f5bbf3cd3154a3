"""The light source of the optical link calibrations: attempt loops on both nodes of a link,
and the coincidence histogram of the Hong-Ou-Mandel measurement.

Each node's AWG plays the single-click attempt loop (``sequences.attempt_loop``) at
alpha = 1/2 without stopping at heralds; which node emits is decided by the nodes' lasers
(the caller lights one node or both). The loop runs free at the attempt waveform's length, so
the clicks of one run lie on a grid of that period (the channel-delay calibration folds them
on it). With both nodes lit, in a quarter of the attempts both spins are bright and both emit
a photon; the station's beam splitter sends the two photons to the two detectors, which then
click within one attempt (a *coincidence*). A node's optical pulse can be delayed
(``optical_delay_ns``), which shifts its photon in time: by more than a few excited-state
lifetimes the two photons no longer overlap and become distinguishable. Coincidences are pairs
of tags on the two channels closer than a window; clicks of different attempts are an attempt
period (microseconds) apart, so they never pair up.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from drivers.hal import AWG, TimeTagger
from sequences.attempt_loop import AttemptLoop, compile_attempt_loop
from sequences.time_tags import counts_per_channel


@dataclass
class TwoNodeSource:
    """Runs attempt loops on both nodes of a link and returns the station's time tags (the
    nodes' lasers, set by the caller, decide which node emits).

    ``awgs`` are the two nodes' AWGs (in link order), ``tagger`` the station's time tagger,
    ``channels`` its '+' and '-' inputs. Runs are split into chunks of at most
    ``chunk_attempts`` so the tagger's buffers never overflow (the ID900 keeps 10^6 tags per
    input; at the shipped lab's ~1e-4 clicks per attempt and channel, 20 million attempts
    leave ample room).
    """

    awgs: Sequence[AWG]
    tagger: TimeTagger
    channels: tuple[int, int] = (1, 2)
    alpha: float = 0.5
    attempt_duration_us: float = 3.8
    chunk_attempts: int = 20_000_000
    run_timeout_s: float = 600.0

    def tags(self, attempts: int, delays_ns: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
        """Time tags of ``attempts`` attempts with each node's optical pulse delayed by
        ``delays_ns`` (link order), all runs together."""
        parts = self.runs(attempts, delays_ns)
        return np.concatenate(parts) if parts else self.tagger.read_tags()[:0]

    @property
    def period_s(self) -> float:
        """The loop's repetition period: one attempt waveform (the loop runs free)."""
        return self.attempt_duration_us * 1e-6

    def runs(self, attempts: int, delays_ns: tuple[float, float] = (0.0, 0.0)) -> list[np.ndarray]:
        """The time tags of each run of the loop (at most ``chunk_attempts`` attempts each;
        runs start at unrelated times) for ``attempts`` attempts in all."""
        self.tagger.read_tags()  # discard whatever came before
        parts = []
        remaining = attempts
        while remaining > 0:
            n = min(remaining, self.chunk_attempts)
            for awg, delay in zip(self.awgs, delays_ns, strict=True):
                loop = AttemptLoop(
                    alpha=self.alpha,
                    max_attempts=n,
                    stop_at_herald=False,
                    attempt_duration_us=self.attempt_duration_us,
                    optical_delay_ns=delay,
                )
                awg.upload_sequence(compile_attempt_loop(loop))
            for awg in self.awgs:
                awg.run()
            deadline = time.monotonic() + self.run_timeout_s
            while any(awg.is_running() for awg in self.awgs):  # in the lab the loop takes time
                if time.monotonic() > deadline:
                    for awg in self.awgs:
                        awg.stop()
                    raise TimeoutError(f"attempt loop of {n} attempts did not finish")
                time.sleep(0.01)
            parts.append(self.tagger.read_tags())
            remaining -= n
        return parts

    def singles(self, tags: np.ndarray) -> tuple[int, int]:
        counts = counts_per_channel(tags)
        return counts.get(self.channels[0], 0), counts.get(self.channels[1], 0)


def pair_delays_ps(tags: np.ndarray, channels: tuple[int, int], window_ps: int) -> np.ndarray:
    """t_b - t_a (ps) of every pair of tags, a on ``channels[0]`` and b on ``channels[1]``,
    with |t_b - t_a| <= ``window_ps``: the start-stop coincidence histogram's raw data."""
    t_a = np.sort(tags["time_ps"][tags["channel"] == channels[0]]).astype(np.int64)
    t_b = np.sort(tags["time_ps"][tags["channel"] == channels[1]]).astype(np.int64)
    if t_a.size == 0 or t_b.size == 0:
        return np.empty(0, dtype=np.int64)
    low = np.searchsorted(t_b, t_a - window_ps, side="left")
    high = np.searchsorted(t_b, t_a + window_ps, side="right")
    counts = high - low
    starts = np.repeat(t_a, counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    stops = t_b[np.repeat(low, counts) + offsets]
    return stops - starts
