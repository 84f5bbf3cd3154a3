"""The attempt loop of a link in simulated time: its set-up (link model, loop plan, programs
checked; kept while nothing it read was edited), the attempts until the herald or the
cut-off, and the attempt grid its clicks are tagged on (``hardware_tags``). A mixin of
:class:`sim_backend.hardware.SimulatedHardware` (see its module docstring)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from .attempt_program import AttemptProgram, attempts_within, refusal
from .instruments.edits import Watched, edits
from .instruments.scpi import ScpiError
from .optics import (
    bright_population,
)
from .params import SPEED_OF_LIGHT_IN_FIBRE_M_PER_S, DetectorParams, LinkParams
from .physics.link import HeraldedLink, LinkModel
from .wiring import DRIFT_STEP_S, AttemptRun, StationWiring


@dataclass(frozen=True)
class _LoopPlan:
    """How a link's attempt loop runs: at most ``limit`` attempts (``cutoff``: which limit
    that is, "attempts" or "time", None for the lab's own maximum), stopping at the first
    herald or not, on the attempt grid (arrival offset, attempt period). Derived from
    ``key`` alone (``AttemptLoopMixin._loop_plan``)."""

    key: tuple[Any, ...]
    limit: int
    cutoff: str | None
    stop_at_herald: bool
    grid: tuple[float, float]


@dataclass(eq=False)
class _LinkWires:
    """What a link's wiring fixes for its attempt loop (the wiring never changes): the
    link's name ('a-b'), its key in the lab's links, its nodes' real-time controllers, the
    instruments its operating point reads and those a kept set-up relies on (by name); and
    the loop plan and set-up it last ran with."""

    name: str
    key: frozenset[str]
    controllers: tuple[str, ...]
    sources: tuple[str | None, ...]  # the instruments ``_input_sources`` reads, by name
    names: tuple[str | None, ...]  # ``sources``, then ``controllers``
    plan: _LoopPlan | None = None
    setup: _LoopSetup | None = None


@dataclass(eq=False)
class _LoopSetup:
    """A link's attempt loop as last set up: its programs, link model (``model_key`` in the
    lab's model cache, at the optical ``phase``), plan and link parameters, with what they
    were derived from. Proof that none of it changed (``_kept_loop``): the edit count
    (``instruments.edits``; every instrument read counts its edits, the AWGs included, so
    their programs are the ones decoded), the instruments by identity (``instruments``:
    the wires' ``names``; ``awgs``), the lab's parameters (by identity), the drift step,
    the lab's maximum of attempts, the herald timeouts (the controllers do not count their
    edits: read on every loop) and the static operating point still the cached one. The
    AOMs' phase difference gives the next loop's phase (unless it is ``steady``). A loop
    whose programs need no instrument to be checked (not Barrett-Kok) was ``checked``."""

    programs: tuple[AttemptProgram | None, ...]
    awgs: list[Any]
    instruments: tuple[Any, ...]
    controllers: tuple[Any, ...]
    params: Any
    drift_step: float
    edits: int
    static: Any
    max_attempts: int
    timeouts: tuple[float, ...]
    link_params: LinkParams
    aom_phase: float
    phase: float
    model_key: tuple[int, float]
    model: LinkModel
    plan: _LoopPlan
    checked: bool
    steady: bool  # the link's phase neither drifts nor walks: the same at every loop


#: a real-time controller's herald timeout (``_kept_loop`` reads it on every loop)
_herald_timeout = attrgetter("herald_timeout_s")

#: no link's wires derived yet (``_link_wires`` makes the cache)
_NO_WIRES: dict[tuple[str, str], _LinkWires] = {}


class AttemptLoopMixin:
    """The attempt loop of :class:`~sim_backend.hardware.SimulatedHardware` (the tags its
    clicks leave: ``hardware_tags.ClickTagsMixin``)."""

    def _run_attempt_loop(self, station: StationWiring, awgs: list[Any]) -> AttemptRun:
        """Run the attempt loop of the station's link, started on ``awgs`` (its two nodes'
        AWGs, in the link's order): decode and check their programs, set the link model at
        the instruments' operating point, attempt until the herald or the loop's limit,
        tag the clicks, record the run (``runs``, and return it) and stop the AWGs."""
        wires = self.__dict__.get("_wires", _NO_WIRES).get(station.link)
        if wires is None:
            wires = self._link_wires(station)
        try:
            ready = self._kept_loop(station, wires, awgs)
            link, plan, det = ready or self._ready_loop(station, wires, awgs)
        except ScpiError:
            for awg in awgs:  # a loop refused as it is set up does not start
                awg.running = False
            raise
        model = link.model
        clock = self.lab.clock
        started = clock.now
        attempts_before = link.attempts_made
        remaining = plan.limit
        stop_at_herald = plan.stop_at_herald
        heralds = 0
        last = None
        # the AWG's attempt grid: attempt i starts at started + i * period. The engine
        # delivers each herald before the next attempt (its clock then runs on by the herald's
        # return in a free-running loop), but the AWG does not pause: tags follow the grid
        grid = plan.grid
        period = grid[1]
        index = 0
        while remaining > 0:
            spent, pattern, _ = link.attempt(remaining)
            remaining -= spent
            failures = spent - (pattern >= 0)
            if failures > 0 and model.failure_clicks:  # how many of them clicked
                clicking = int(self._rng.binomial(failures, model.failure_click_distribution[0]))
                if clicking:
                    first = started + index * period
                    self._failed_attempt_clicks(station, link, grid, first, failures, clicking, det)
            index += spent
            if pattern < 0:
                break
            heralds += 1
            last = model.patterns[pattern]
            clicks = last.clicks
            start = started + (index - 1) * period
            if len(clicks) == 1:  # ``_attempt_clicks`` of one round (every single-click
                # herald), inline: one call less per loop
                self._add_clicks(station, clicks[0], start + grid[0], det)
            else:
                self._attempt_clicks(station, link, grid, start, clicks, det)
            if stop_at_herald:
                break
        run = AttemptRun(
            wires.name,
            link.attempts_made - attempts_before,
            heralds,
            None if last is None else last.bell_state,
            None if last is None else last.clicks,
            started,
            clock.now,
            model.params.scheme,
            plan.cutoff if remaining <= 0 and not (heralds and stop_at_herald) else None,
        )
        self.runs.append(run)
        for awg in awgs:  # the sequence ran to its end
            if awg.running:  # (a real-time loop never set it: ``realtime_attempt_loop``)
                awg.running = False
        return run

    def _kept_loop(
        self, station: StationWiring, wires: _LinkWires, awgs: list[Any]
    ) -> tuple[HeraldedLink, _LoopPlan, DetectorParams] | None:
        """The link, the loop's plan and the detectors' parameters from the link's kept
        set-up, its model set on the link, if the set-up still holds (see ``_LoopSetup``)
        and the phase did not move on; else None (the phase's random walk then advanced
        all the same, as ``link_model`` would have advanced it). Raises ScpiError for
        Barrett-Kok programs the link refuses (checked on every loop)."""
        kept = wires.setup
        lab = self.lab
        if (
            kept is None
            or kept.edits != edits()
            or kept.awgs != awgs
            or kept.params is not lab.params
            or kept.drift_step != math.floor(lab.clock.now / DRIFT_STEP_S)
            or kept.max_attempts != self._max_attempts
            or kept.instruments != tuple(map(self.instruments.get, wires.names))
            or kept.timeouts != tuple(map(_herald_timeout, kept.controllers))
            or self._static_points.get(station.link) is not kept.static  # type: ignore[attr-defined]
        ):
            return None
        if not kept.checked:
            self._check_programs(station, kept.programs)
        link = lab.links.get(wires.key) or lab.link(*station.link)
        # what ``link_model`` and ``_loop_plan`` return, unless the phase moved on (the
        # phase, with its random walk, is taken as they take it; a steady one cannot move)
        if not kept.steady:
            phase = self._arm_phase(station.link, kept.link_params, kept.aom_phase)
            if phase != kept.phase:
                return None
        if self._models.get(kept.model_key) is not kept.model:
            return None
        link.model = kept.model  # ``set_model``
        return link, kept.plan, kept.link_params.detectors

    def _ready_loop(
        self, station: StationWiring, wires: _LinkWires, awgs: list[Any]
    ) -> tuple[HeraldedLink, _LoopPlan, DetectorParams]:
        """``_kept_loop`` derived again: decode and check the programs, set the link's
        model and return the link, the loop's plan and the detectors' parameters (the
        set-up kept when every instrument read counts its edits). Raises ScpiError for a
        loop the link refuses."""
        get_program = self._programs.get
        programs = (get_program(awgs[0]), get_program(awgs[1]))  # as ``_program`` per node
        count = edits()
        self._check_programs(station, programs)
        link = self.lab.links.get(wires.key) or self.lab.link(*station.link)
        wires.setup = None
        model, static, model_key = self._model_at(station.link, programs[0], programs[1])
        link.set_model(model)
        plan = self._loop_plan(station, wires, programs, model)
        link_params = self._link_params(station.link)
        # every instrument read counts its edits: the AWGs' programs and the static point
        # stay what they are while the count does
        if static.edits == count and all(isinstance(awg, Watched) for awg in awgs):
            wires.setup = self._loop_setup(station, wires, awgs, static, model_key, model, plan)
        return link, plan, link_params.detectors

    def _loop_setup(
        self,
        station: StationWiring,
        wires: _LinkWires,
        awgs: list[Any],
        static: Any,
        model_key: tuple[int, float],
        model: LinkModel,
        plan: _LoopPlan,
    ) -> _LoopSetup:
        """What ``_kept_loop`` compares, taken right after the loop was set up."""
        first, second, max_attempts, timeouts, _, params = plan.key
        a, b = station.link
        instruments = tuple(map(self.instruments.get, wires.names))
        link_params = self._link_params(station.link)
        return _LoopSetup(
            programs=(first, second),
            awgs=list(awgs),
            instruments=instruments,
            controllers=instruments[len(wires.sources) :],
            params=params,
            drift_step=static.drift_step,
            edits=static.edits,
            static=static,
            max_attempts=max_attempts,
            timeouts=timeouts,
            link_params=link_params,
            aom_phase=self._aom_phase(a) - self._aom_phase(b),
            phase=model_key[1],
            model_key=model_key,
            model=model,
            plan=plan,
            checked=first is None or first.scheme != "barrett_kok",
            # (``_arm_phase``: its offset, no drift times the time, no walk, the AOMs')
            steady=link_params.phase_drift_rad_per_s == 0
            and not link_params.phase_random_walk_rad_per_sqrt_s > 0,
        )

    def _link_wires(self, station: StationWiring) -> _LinkWires:
        """The station's ``_LinkWires`` (derived once per link)."""
        cache: dict[tuple[str, str], _LinkWires] | None = self.__dict__.get("_wires")
        if cache is None:
            cache = self.__dict__["_wires"] = {}
        wires = cache.get(station.link)
        if wires is None:
            wirings = [self.nodes.get(node) for node in station.link]
            controllers = tuple(
                w.qubit_controller for w in wirings if w is not None and w.qubit_controller
            )
            sources = self._input_names(station.link)
            wires = cache[station.link] = _LinkWires(
                "-".join(station.link),
                frozenset(station.link),
                controllers,
                sources,
                sources + controllers,
            )
        return wires

    def _loop_plan(
        self,
        station: StationWiring,
        wires: _LinkWires,
        programs: Sequence[AttemptProgram | None],
        model: LinkModel,
    ) -> _LoopPlan:
        """The loop's limit, cut-off and attempt grid, from the first node's program (its
        repetitions and event jump), the lab's maximum, the two real-time controllers'
        herald timeouts (read on every loop), the attempt period and the lab's parameters
        (fibre length). Remembered per link and derived again when any of them changed
        (programs and parameters compared by identity: one object per decoded program,
        ``ProgramCache``; parameters are replaced, never edited). A herald timeout shorter
        than one attempt raises ScpiError (-221) on every loop."""
        period = model.timing.attempt_period_s
        timeouts = tuple([float(self._instrument(n).herald_timeout_s) for n in wires.controllers])
        key = (programs[0], programs[1], self._max_attempts, timeouts, period, self.lab.params)
        plan = wires.plan
        if plan is not None and plan.key == key:
            return plan
        attempt = programs[0]
        limit = self._max_attempts
        cutoff = None
        if attempt and attempt.repetitions > 0:
            limit, cutoff = attempt.repetitions, "attempts"
        stop_at_herald = attempt is None or attempt.stop_at_herald
        if stop_at_herald:
            by_time = self._attempts_within_herald_timeout(timeouts, period)
            if by_time is not None and by_time < limit:
                limit, cutoff = by_time, "time"
        grid = (self._arrival_offset_s(station, programs), period)
        plan = wires.plan = _LoopPlan(key, limit, cutoff, stop_at_herald, grid)
        return plan

    def _check_programs(
        self, station: StationWiring, programs: Sequence[AttemptProgram | None]
    ) -> None:
        """Refuse (SCPI -221, settings conflict) attempt loops the link cannot run."""
        first, second = programs
        if first is None or second is None:
            return  # no optical pulse on one node: nothing to check
        window_s = self._link_params(station.link).detectors.detection_window_ns * 1e-9
        if first.scheme == "barrett_kok":  # the pi pulse is checked through the instruments
            reason = refusal(first, second, window_s, self._pi_pulse_flip(station, programs))
        else:  # the programs alone decide: remembered per link while they are the same
            memo: dict[tuple[str, str], tuple[Any, ...]] | None = self.__dict__.get("_refusals")
            if memo is None:
                memo = self.__dict__["_refusals"] = {}
            seen = memo.get(station.link)
            if seen is not None and seen[0] is first and seen[1] is second and seen[2] == window_s:
                reason = seen[3]
            else:
                flip = self._pi_pulse_flip(station, programs)
                reason = refusal(first, second, window_s, flip)
                memo[station.link] = (first, second, window_s, reason)
        if reason is not None:
            raise ScpiError(-221, reason)

    def _pi_pulse_flip(
        self, station: StationWiring, programs: Sequence[AttemptProgram | None]
    ) -> Callable[[int], tuple[float, float]]:
        """(angle, flip probability) of node i's pulse between the Barrett-Kok rounds."""

        def flip(index: int) -> tuple[float, float]:
            angle, factor = self._rotation(station.link[index], programs[index], 1)  # type: ignore[arg-type]
            return angle, bright_population(angle, factor)

        return flip

    @staticmethod
    def _attempts_within_herald_timeout(timeouts: tuple[float, ...], period_s: float) -> int | None:
        """Attempts that fit in the shorter of the herald ``timeouts``; None without one."""
        if not timeouts:
            return None
        try:
            return attempts_within(min(timeouts), period_s)
        except ValueError as exc:
            raise ScpiError(-221, str(exc)) from None

    def _arrival_offset_s(
        self, station: StationWiring, programs: Sequence[AttemptProgram | None]
    ) -> float:
        """From an attempt's start to its photons' arrival at the detectors: the earlier
        node's optical pulse within the attempt (marker 1 of its attempt waveform; the later
        node's extra delay is added per click, ``_add_clicks``) plus the photon's flight
        through the fibre to the station (fibre lengths taken as matched)."""
        starts = [p.optical_start_s for p in programs if p is not None]
        pulse = min(starts, default=0.0)
        length_km = max(self._link_params(station.link).fibre_length_km)
        return pulse + length_km * 1e3 / SPEED_OF_LIGHT_IN_FIBRE_M_PER_S
