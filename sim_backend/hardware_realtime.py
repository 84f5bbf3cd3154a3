"""The wiring between the simulated lab's real-time controllers: what
:class:`sim_backend.realtime.RealTimeNetwork` asks of the lab (a mixin of
:class:`sim_backend.hardware.SimulatedHardware`)."""

from __future__ import annotations

from typing import Any

from .realtime import RealTimeNetwork


class RealTimeMixin:
    """Real-time network hooks of :class:`~sim_backend.hardware.SimulatedHardware`."""

    #: The programs of every node's real-time controller (one per lab, made with the
    #: lab's hardware: a plain attribute, which each program transaction reads)
    realtime: RealTimeNetwork

    def node_of_controller(self, controller: str) -> str:
        return self._node_of_controller(controller)  # type: ignore[attr-defined]

    def controller_of(self, node: str) -> str:
        wiring = self.nodes.get(node)  # type: ignore[attr-defined]
        if wiring is None or wiring.qubit_controller is None:
            raise KeyError(f"node {node!r} has no real-time controller wired")
        return str(wiring.qubit_controller)

    def realtime_attempt_loop(self, node: str, peer: str) -> tuple[bool, str, int, float]:
        """The attempt loop of the link ``node``-``peer``, started by the two nodes'
        real-time controllers triggering their AWGs' uploaded sequences (as an AWG in
        triggered mode starts on the controller's trigger line); returns (heralded, Bell
        state, attempts, clock at its end). A program the link cannot run raises ScpiError.
        The AWGs run for the loop alone, in which nothing reads their run state: it is not
        set (their run state after a loop, stopped, is what it was)."""
        hw: Any = self
        cache = hw.__dict__.get("_realtime_links")
        entry = None if cache is None or cache[0] is not hw.stations else cache[1].get((node, peer))
        station, awg_names = entry or self._realtime_link(node, peer)
        awgs = list(map(hw.instruments.get, awg_names))
        if None in awgs:
            awgs = [hw._instrument(name) for name in awg_names]  # raises: wired, not attached
        # the loop records its run last (what ``last_herald`` finds for this link)
        run = hw._run_attempt_loop(station, awgs)
        return run.heralds > 0, run.last_bell_state or "", run.attempts, run.ended_at_s

    def _realtime_link(self, node: str, peer: str) -> tuple[Any, tuple[str | None, ...]]:
        """The station of the link ``node``-``peer`` and its nodes' AWGs (by name),
        remembered per (node, peer) while the stations are the same object."""
        hw: Any = self
        cache = hw.__dict__.get("_realtime_links")
        if cache is None or cache[0] is not hw.stations:
            cache = hw.__dict__["_realtime_links"] = (hw.stations, {})
        entry = cache[1].get((node, peer))
        if entry is None:
            station = hw.stations[frozenset((node, peer))]
            entry = cache[1][(node, peer)] = (
                station,
                tuple(hw.nodes[n].awg for n in station.link),
            )
        return entry
