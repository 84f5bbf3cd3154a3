"""A live terminal view of the event stream (``qnode monitor``).

``run_monitor(endpoints)`` subscribes to the publishers of the node controllers and shows,
refreshed a few times a second with ``rich``: per node the latest state, herald and shot
counts with their recent rates, swaps, faults (the last one in full), events missed
according to the sequence numbers; below, a scrolling log of the latest events. It runs until
``duration_s`` has passed or Ctrl-C, and returns a summary dict. With nothing arriving it
shows that it is waiting, and on which endpoints.

Conventions read from event data: ``state`` events carry ``data["state"]``; ``herald`` and
``shot`` events count 1 each, or ``data["count"]`` when a publisher aggregates; ``fault``
events carry ``data["message"]`` (else the whole data is shown); ``progress`` events carry
``data["done"]`` and ``data["total"]``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .events import Event, EventSubscriber

RATE_WINDOW_S = 10.0


@dataclass
class _NodeView:
    state: str = "?"
    events: int = 0
    heralds: int = 0
    shots: int = 0
    swaps: int = 0
    faults: int = 0
    last_fault: str | None = None
    progress: str | None = None
    first_seen: float = 0.0
    last_seen: float = 0.0
    samples: deque[tuple[float, int, int]] = field(default_factory=lambda: deque(maxlen=64))

    def rates(self, now: float) -> tuple[float, float]:
        """Heralds and shots per second over the last RATE_WINDOW_S (from refresh samples)."""
        samples = self.samples
        while len(samples) > 1 and now - samples[1][0] >= RATE_WINDOW_S:
            samples.popleft()
        if not samples:
            return 0.0, 0.0
        t0, heralds0, shots0 = samples[0]
        span = now - t0
        if span <= 0:
            return 0.0, 0.0
        return (self.heralds - heralds0) / span, (self.shots - shots0) / span


def _count(event: Event) -> int:
    count = event.data.get("count", 1)
    return count if type(count) is int and count >= 0 else 1


def _brief(data: dict[str, Any], limit: int = 70) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in data.items())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Monitor:
    def __init__(self, endpoints: Sequence[str], log_lines: int) -> None:
        self.endpoints = endpoints
        self.nodes: dict[str, _NodeView] = {}
        self.log: deque[Event] = deque(maxlen=log_lines)
        self.started = time.monotonic()

    def update(self, event: Event, now: float) -> None:
        view = self.nodes.get(event.node)
        if view is None:
            view = self.nodes[event.node] = _NodeView(first_seen=now)
            view.samples.append((now, 0, 0))
        view.events += 1
        view.last_seen = now
        kind = event.kind
        data = event.data
        if kind == "herald":
            view.heralds += _count(event)
        elif kind == "shot":
            view.shots += _count(event)
        elif kind == "swap":
            view.swaps += _count(event)
        elif kind == "state":
            view.state = str(data.get("state", _brief(data, 30)))
        elif kind == "fault":
            view.faults += 1
            view.last_fault = str(data.get("message", _brief(data)))
        elif kind == "progress" and "done" in data:
            total = data.get("total")
            view.progress = f"{data['done']}/{total}" if total is not None else str(data["done"])
        self.log.append(event)

    def sample(self, now: float) -> None:
        for view in self.nodes.values():
            view.samples.append((now, view.heralds, view.shots))

    def render(self, sub: EventSubscriber, now: float) -> RenderableType:
        elapsed = now - self.started
        caption = (
            f"{sub.received} events, {sub.dropped} missed, {sub.malformed} malformed; "
            f"{elapsed:.0f} s"
        )
        if not self.nodes:
            return Group(
                Text(f"waiting for events on {', '.join(self.endpoints)} ...", style="yellow"),
                Text(caption, style="dim"),
            )
        table = Table(title="qnode monitor", caption=caption, expand=False)
        for column, justify in (
            ("node", "left"),
            ("state", "left"),
            ("heralds", "right"),
            ("herald/s", "right"),
            ("shots", "right"),
            ("shot/s", "right"),
            ("swaps", "right"),
            ("progress", "right"),
            ("faults", "right"),
            ("last fault", "left"),
            ("seen", "right"),
        ):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for name in sorted(self.nodes):
            view = self.nodes[name]
            herald_rate, shot_rate = view.rates(now)
            fault_style = "bold red" if view.faults else ""
            table.add_row(
                name,
                view.state,
                f"{view.heralds:,}",
                f"{herald_rate:,.1f}",
                f"{view.shots:,}",
                f"{shot_rate:,.1f}",
                f"{view.swaps:,}",
                view.progress or "",
                Text(str(view.faults), style=fault_style),
                Text(view.last_fault or "", style=fault_style),
                f"{now - view.last_seen:.1f} s ago",
            )
        log = Table(title="latest events", show_header=True, expand=False, box=None)
        for column in ("time", "node", "kind", "seq", "data"):
            log.add_column(column)
        for event in self.log:
            stamp = datetime.fromtimestamp(event.wall_time).strftime("%H:%M:%S.%f")[:-3]
            style = "red" if event.kind == "fault" else ""
            log.add_row(
                stamp, event.node, event.kind, str(event.seq), _brief(event.data), style=style
            )
        return Group(table, log)

    def summary(self, sub: EventSubscriber, interrupted: bool) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        nodes = {}
        for name, view in sorted(self.nodes.items()):
            span = view.last_seen - view.first_seen
            nodes[name] = {
                "state": view.state,
                "events": view.events,
                "heralds": view.heralds,
                "shots": view.shots,
                "swaps": view.swaps,
                "faults": view.faults,
                "last_fault": view.last_fault,
                "progress": view.progress,
                "herald_rate_per_s": view.heralds / span if span > 0 else None,
                "shot_rate_per_s": view.shots / span if span > 0 else None,
            }
        return {
            "duration_s": elapsed,
            "interrupted": interrupted,
            "endpoints": list(self.endpoints),
            "events": sub.received,
            "malformed": sub.malformed,
            "dropped": sub.dropped,
            "restarts": sub.restarts,
            "nodes": nodes,
        }


def run_monitor(
    endpoints: str | Sequence[str],
    nodes: Iterable[str] | None = None,
    duration_s: float | None = None,
    console: Console | None = None,
    *,
    refresh_per_s: float = 4.0,
    log_lines: int = 15,
) -> dict[str, Any]:
    """Show the event stream of ``endpoints`` live until ``duration_s`` (None: until Ctrl-C);
    returns a summary: event counts, missed and malformed events, and per node the state,
    counts, rates and last fault."""
    endpoint_list = [endpoints] if isinstance(endpoints, str) else list(endpoints)
    if not endpoint_list:
        raise ValueError("endpoints: expected at least one publisher endpoint")
    if duration_s is not None and duration_s < 0:
        raise ValueError(f"duration_s {duration_s!r}: expected a non-negative number")
    console = console or Console()
    monitor = _Monitor(endpoint_list, log_lines)
    period = 1.0 / refresh_per_s
    end = None if duration_s is None else monitor.started + duration_s
    interrupted = False
    with EventSubscriber(endpoint_list, nodes) as sub:
        now = time.monotonic()
        with Live(
            monitor.render(sub, now), console=console, auto_refresh=False, transient=False
        ) as live:
            next_refresh = now + period
            try:
                while True:
                    now = time.monotonic()
                    if end is not None and now >= end:
                        break
                    wait = min(period, next_refresh - now)
                    if end is not None:
                        wait = min(wait, end - now)
                    for event in sub.poll(timeout_s=max(0.0, wait), max_events=20_000):
                        monitor.update(event, time.monotonic())
                    now = time.monotonic()
                    if now >= next_refresh:
                        monitor.sample(now)
                        live.update(monitor.render(sub, now), refresh=True)
                        next_refresh = now + period
            except KeyboardInterrupt:
                interrupted = True
            live.update(monitor.render(sub, time.monotonic()), refresh=True)
        return monitor.summary(sub, interrupted)
