"""The two small contracts of the simulated-instrument layer.

* :class:`MessageHandler` — what the in-process VISA library talks to: one message in, at most
  one reply out (exactly what a message-based instrument does on its wire).
* :class:`LabHooks` — what a simulated instrument asks of the simulated lab's physics: the
  simulated clock, count rates and time tags that follow from the simulated photons, and a
  notification when a setting changed (so the lab recomputes its optics) or an AWG started.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class MessageHandler(Protocol):
    """A simulated message-based instrument."""

    name: str

    def handle(self, message: str) -> str | None:
        """Process one message (terminator stripped); return the reply, or None if the
        instrument sends nothing back (a set command). Never raises for bad input: a real
        instrument queues an error (``SYST:ERR?``) or answers with an error reply."""
        ...


class LabHooks(Protocol):
    """The simulated lab as seen from one simulated instrument."""

    def now_s(self) -> float:
        """Simulated time, seconds."""
        ...

    def settings_changed(self, instrument: str) -> None:
        """A setting of ``instrument`` changed: the optics/physics must be recomputed."""
        ...

    def awg_started(self, instrument: str) -> None:
        """The AWG ``instrument`` started its sequence (the real-time attempt loop)."""
        ...

    def awg_stopped(self, instrument: str) -> None: ...

    def detector_count_rate_hz(self, instrument: str, channel: int) -> float:
        """Click rate of one detector channel at the current settings and light level."""
        ...

    def detector_latched(self, instrument: str, channel: int) -> bool:
        """Whether the detector channel is latched (superconductivity lost, no clicks)."""
        ...

    def time_tags(self, instrument: str) -> np.ndarray:
        """Time tags accumulated since the last call, shape (N, 2): (channel, time_ps),
        delays applied; drained by the call."""
        ...

    def input_count_rates_hz(self, instrument: str) -> dict[int, float]:
        """Count rate per time-tagger input channel."""
        ...

    def qubit_operation(self, instrument: str, operation: str, *args: object) -> object:
        """Run an operation of a real-time qubit controller on its node's qubits: 'count',
        'init', 'rotate', 'gate', 'measure', 'wait', 'time'; returns the result (a readout
        outcome, the qubit count, the clock)."""
        ...

    def last_herald(self, instrument: str, peer: str) -> tuple[bool, str, str, int, float]:
        """(heralded, clicks, bell state, attempts, time_s) of the last attempt loop between
        the controller's node and ``peer``."""
        ...


class NullLabHooks:
    """Hooks of an empty lab: no light, no clicks, time stands still. For unit tests of the
    command sets, and the default of a simulated instrument not yet wired to a lab."""

    def now_s(self) -> float:
        return 0.0

    def settings_changed(self, instrument: str) -> None:
        pass

    def awg_started(self, instrument: str) -> None:
        pass

    def awg_stopped(self, instrument: str) -> None:
        pass

    def detector_count_rate_hz(self, instrument: str, channel: int) -> float:
        return 0.0

    def detector_latched(self, instrument: str, channel: int) -> bool:
        return False

    def time_tags(self, instrument: str) -> np.ndarray:
        return np.empty((0, 2), dtype=np.int64)

    def input_count_rates_hz(self, instrument: str) -> dict[int, float]:
        return {}

    def qubit_operation(self, instrument: str, operation: str, *args: object) -> object:
        return {"count": 1, "measure": 0, "time": 0.0}.get(operation)

    def last_herald(self, instrument: str, peer: str) -> tuple[bool, str, str, int, float]:
        return (False, "", "", 0, 0.0)
