"""How a client waits for its reply, and a server for its next request: a short busy poll
first, then a blocking receive.

A blocking ``recv`` puts the calling thread to sleep, and waking it when the reply arrives
(ZeroMQ's I/O thread signals the socket's mailbox; the kernel wakes and schedules the
sleeper) costs tens of microseconds on a virtual machine - a large part of a ~100 us
loopback round trip. Polling the socket for a short while first keeps the thread awake for
the replies that come quickly, and blocks only for the slow ones: the "spin, then park" idle
strategy of low-latency messaging (e.g. Aeron's ``BackoffIdleStrategy``; Linux's adaptive
mutexes spin before they sleep for the same reason).

The spin is adaptive, so a client whose calls take long (a measurement, a sweep point), or a
server whose requests come seldom, does not burn CPU for nothing: after a wait that missed
the spin budget, the next one blocks at once, and spinning resumes after a wait that ended
within the budget. Each poll also yields the CPU (``sched_yield``), so on a busy machine the
spinning thread gives way to any thread that has work, such as the node serving the request.
"""

from __future__ import annotations

import os
import time

import zmq

#: The longest spin allowed: beyond a few milliseconds spinning only wastes CPU.
MAX_SPIN_US = 10_000.0

_EVENTS = int(zmq.EVENTS)  # plain ints: pyzmq converts an enum on every call
_POLLIN = int(zmq.POLLIN)
_NOBLOCK = int(zmq.NOBLOCK)
_yield = getattr(os, "sched_yield", lambda: None)  # not on Windows: then a pure spin


def check_spin_us(spin_us: float) -> float:
    """``spin_us`` as a float, or ValueError naming it and the range expected."""
    if isinstance(spin_us, bool) or not isinstance(spin_us, int | float):
        raise ValueError(f"spin_us {spin_us!r}: expected a number of microseconds")
    if not 0.0 <= spin_us <= MAX_SPIN_US:
        raise ValueError(
            f"spin_us {spin_us!r}: expected 0 (always block) to {MAX_SPIN_US:g} microseconds"
        )
    return float(spin_us)


class SpinThenBlock:
    """The reply-wait policy of one client (not thread-safe, like the client).

    ``poll(sock)`` spins for up to ``spin_us`` and returns the reply's bytes, or None when
    the caller should block; ``blocked_for(seconds)`` tells it how long a blocking wait took,
    which decides whether the next request spins again."""

    __slots__ = ("spin_s", "_spin_next")

    def __init__(self, spin_us: float) -> None:
        self.spin_s = check_spin_us(spin_us) / 1e6
        self._spin_next = self.spin_s > 0.0

    @property
    def spinning(self) -> bool:
        """Whether the next request will spin before it blocks."""
        return self._spin_next

    def poll(self, sock: zmq.Socket) -> bytes | None:
        """The next message of ``sock`` if it arrives within the spin budget, else None."""
        if not self._spin_next:
            return None
        clock = time.perf_counter
        events = sock.getsockopt
        end = clock() + self.spin_s
        while True:
            if events(_EVENTS) & _POLLIN:
                return sock.recv(_NOBLOCK)
            if clock() >= end:
                self._spin_next = False  # this reply is slow: the next request blocks at once
                return None
            _yield()

    def blocked_for(self, seconds: float) -> None:
        """A blocking wait took ``seconds`` from the request's send to its reply."""
        self._spin_next = self.spin_s > 0.0 and seconds <= self.spin_s
