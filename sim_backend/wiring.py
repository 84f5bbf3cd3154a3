"""How the simulated lab's instruments are wired to its nodes and heralding stations, and
what a run of the attempt loop left (shared by ``sim_backend.hardware`` and its mixins)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

PS = 1e12  # picoseconds per second
DRIFT_STEP_S = 60.0  # simulated seconds per step of the lab's drift


@dataclass(frozen=True)
class NodeWiring:
    """Which simulated instrument plays which part on one node (names of instruments)."""

    node: str
    laser: str | None = None
    optical_switch: str | None = None
    optical_switch_channel: int = 1
    awg: str | None = None
    microwave: str | None = None
    frequency_converter: str | None = None
    qubit_controller: str | None = None


@dataclass(frozen=True)
class StationWiring:
    """The heralding station of one link: detectors and time tagger, '+' and '-' channels."""

    link: tuple[str, str]
    detectors: str
    detector_channels: tuple[int, int] = (1, 2)
    time_tagger: str | None = None
    tagger_channels: tuple[int, int] = (1, 2)


@dataclass
class AttemptRun:
    """What one run of the attempt loop did (kept for inspection and tests)."""

    link: str
    attempts: int
    heralds: int
    last_bell_state: str | None
    last_clicks: tuple[str, ...] | None
    started_at_s: float
    ended_at_s: float
    scheme: str = "single_click"
    cutoff: str | None = None  # "attempts" or "time" when the loop ended by its cut-off


#: Tags a time tagger holds until they are read: a ring buffer, as a tagger's on-board memory
#: (when it is full the earliest written are overwritten: dark counts are written when the
#: tags are read, so they can displace later clicks; a run that never reads its tagger, such
#: as teleportation heralded by the real-time controllers, keeps a bounded memory).
TAG_BUFFER_SIZE = 1 << 20

#: Attempt loops the simulated lab remembers (the latest; for the heralds and diagnostics).
RECENT_ATTEMPT_RUNS = 100_000


@dataclass
class _TagBuffer:
    tags: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=TAG_BUFFER_SIZE))
    counted_since_s: float = 0.0  # dark counts outside windows generated up to here
