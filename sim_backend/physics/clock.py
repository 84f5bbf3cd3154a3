"""The simulated clock: event-driven simulated time. A dry run never sleeps."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class SimClock:
    """Simulated time in seconds, advanced by events, never by waiting."""

    now: float = 0.0
    _queue: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    _counter: itertools.count = field(default_factory=itertools.count)

    def advance(self, duration_s: float) -> float:
        """Move time forward by ``duration_s``, running events that fall due; return now."""
        if duration_s < 0:
            raise ValueError(f"duration={duration_s!r} s: simulated time cannot go backwards")
        time_s = self.now + duration_s
        if self._queue and self._queue[0][0] <= time_s:
            return self.advance_to(time_s)
        self.now = time_s  # nothing falls due: ``advance_to`` without its checks
        return time_s

    def advance_to(self, time_s: float) -> float:
        if time_s < self.now:
            raise ValueError(f"time={time_s!r} s is before now={self.now!r} s")
        while self._queue and self._queue[0][0] <= time_s:
            when, _, action = heapq.heappop(self._queue)
            self.now = when
            action()
        self.now = time_s
        return self.now

    def schedule(self, delay_s: float, action: Callable[[], None]) -> None:
        """Run ``action`` when simulated time reaches now + ``delay_s``."""
        if delay_s < 0:
            raise ValueError(f"delay={delay_s!r} s: expected >= 0")
        heapq.heappush(self._queue, (self.now + delay_s, next(self._counter), action))

    def run_pending(self) -> None:
        """Advance to and run every scheduled event."""
        while self._queue:
            self.advance_to(self._queue[0][0])
