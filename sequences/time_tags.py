"""Counting clicks and coincidences in time tags (structured arrays of drivers.hal.TAG_DTYPE:
fields ``channel`` and ``time_ps``)."""

from __future__ import annotations

import numpy as np


def counts_per_channel(tags: np.ndarray) -> dict[int, int]:
    """Number of tags on each channel."""
    channels, counts = np.unique(tags["channel"], return_counts=True)
    return {int(c): int(n) for c, n in zip(channels, counts, strict=True)}


def coincidences(tags: np.ndarray, channel_a: int, channel_b: int, window_ps: int) -> int:
    """Pairs (a, b) of tags on the two channels with |t_a - t_b| <= window_ps."""
    if window_ps < 0:
        raise ValueError(f"window_ps={window_ps}: expected >= 0")
    t_a = np.sort(tags["time_ps"][tags["channel"] == channel_a])
    t_b = np.sort(tags["time_ps"][tags["channel"] == channel_b])
    if t_a.size == 0 or t_b.size == 0:
        return 0
    high = np.searchsorted(t_b, t_a + window_ps, side="right")
    low = np.searchsorted(t_b, t_a - window_ps, side="left")
    return int((high - low).sum())


def single_clicks(tags: np.ndarray, channels: tuple[int, int], window_ps: int) -> dict[int, int]:
    """Tags on each of ``channels`` with no tag on the other channel within ``window_ps``:
    the single-click heralds of a two-detector station."""
    out = {}
    for mine, other in (channels, channels[::-1]):
        t_mine = tags["time_ps"][tags["channel"] == mine]
        t_other = np.sort(tags["time_ps"][tags["channel"] == other])
        if t_other.size == 0:
            out[mine] = int(t_mine.size)
            continue
        high = np.searchsorted(t_other, t_mine + window_ps, side="right")
        low = np.searchsorted(t_other, t_mine - window_ps, side="left")
        out[mine] = int(np.count_nonzero(high == low))
    return out
