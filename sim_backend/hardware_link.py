"""How the simulated instruments' settings become link physics: the operating point of a
link (excitation, conversion, detectors, spin rotation from the AWG program and the microwave
source, visibility from the photons' temporal overlap, the interferometer phase with its drift
and the AOMs' RF phases) and the cached outcome table of the link at that point. A mixin of
:class:`sim_backend.hardware.SimulatedHardware` (see its module docstring)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from .attempt_program import AttemptProgram
from .instruments.edits import Watched, edits
from .optics import (
    aom_optical_phase_rad,
    bright_population,
    conversion_efficiency,
    excitation_probability,
    rotation_angle,
    snspd_dark_count_rate_hz,
    snspd_efficiency,
    temporal_overlap,
    wrap_phase,
)
from .params import LinkParams, NodeParams
from .physics.link import LinkModel, OperatingPoint
from .wiring import DRIFT_STEP_S, StationWiring


@dataclass
class _StaticPoint:
    """The operating point of a link without its optical phase, with what it was derived
    from: the instruments' readings (``_operating_inputs``), the two nodes' attempt
    programs (by identity: ``ProgramCache`` keeps one object per decoded program), the
    lab's parameters (by identity) and the drift step; and the instruments read (by
    identity) with the edit count (``instruments.edits``) when their readings were last
    compared (None: some instrument does not count its edits, compare on every use)."""

    inputs: tuple[Any, ...]
    programs: tuple[AttemptProgram | None, AttemptProgram | None]
    params: Any
    drift_step: float
    fields: dict[str, Any]
    token: int  # names this point in the link-model cache
    sources: tuple[Any, ...] = ()
    edits: int | None = None

    def derived_from(
        self,
        program: AttemptProgram | None,
        peer_program: AttemptProgram | None,
        params: Any,
        drift_step: float,
    ) -> bool:
        """Whether the point was derived for these programs, parameters and drift step."""
        return (
            self.programs[0] is program
            and self.programs[1] is peer_program
            and self.params is params
            and self.drift_step == drift_step
        )


def _edit_count(sources: tuple[Any, ...], count: int) -> int | None:
    """``count`` if every instrument read counts its edits, else None (compare always)."""
    if all(source is None or isinstance(source, Watched) for source in sources):
        return count
    return None


_TOKENS = itertools.count()

#: phase-walk variates drawn per call of the phase generator (``_phase_normal``)
_BLOCK = 256


def _model_settings(program: AttemptProgram | None) -> tuple[Any, ...]:
    """What of the first node's program the link model depends on besides the point."""
    if program is None:
        return (None,)
    return program.scheme, program.round_separation_s, program.stop_at_herald


class LinkPhysicsMixin:
    """The operating point and link model of :class:`~sim_backend.hardware.SimulatedHardware`."""

    def operating_point(
        self, link: tuple[str, str], program: AttemptProgram | None | bool = True
    ) -> OperatingPoint:
        """What the instruments currently make of the link ``link`` (``program``: the first
        node's attempt program when already decoded; True decodes it)."""
        a, b = link
        if program is True:
            program = self._program(a)
        assert program is None or isinstance(program, AttemptProgram)
        static = self._static_point(link, program, self._program(b))
        return OperatingPoint(**static.fields, phase_offset_rad=self._optical_phase(link))

    def _static_point(
        self,
        link: tuple[str, str],
        program: AttemptProgram | None,
        peer_program: AttemptProgram | None,
    ) -> _StaticPoint:
        """Everything of the operating point but the optical phase (which drifts with
        simulated time), derived again only when an instrument reading, an attempt
        program, the lab's parameters or the drift step changed. The readings are not
        even taken while the instruments read are the same objects, all count their edits
        and none was edited (``instruments.edits``)."""
        cache: dict[tuple[str, str], _StaticPoint] | None = self.__dict__.get("_static_points")
        if cache is None:
            cache = self.__dict__["_static_points"] = {}
        params = self.lab.params
        drift_step = math.floor(self.lab.clock.now / DRIFT_STEP_S)
        count = edits()
        sources = self._input_sources(link)
        entry = cache.get(link)
        if entry is not None and entry.derived_from(program, peer_program, params, drift_step):
            if entry.edits == count and entry.sources == sources:
                return entry  # nothing read was edited
            inputs = self._operating_inputs(link)
            if entry.inputs == inputs:
                entry.sources, entry.edits = sources, _edit_count(sources, count)
                return entry
        else:
            inputs = self._operating_inputs(link)
        fields = self._derive_static_point(link, program, peer_program)
        if not (
            entry is not None
            and entry.params is params
            and entry.fields == fields
            and _model_settings(entry.programs[0]) == _model_settings(program)
        ):
            token = next(_TOKENS)
        else:  # the same point (e.g. a new drift step without drift): same link models
            token = entry.token
        entry = cache[link] = _StaticPoint(
            inputs,
            (program, peer_program),
            params,
            drift_step,
            fields,
            token,
            sources,
            _edit_count(sources, count),
        )
        return entry

    def _input_sources(self, link: tuple[str, str]) -> tuple[Any, ...]:
        """The instruments ``_operating_inputs`` reads (None where none is wired)."""
        # (no instrument is named None: a node without one reads as None)
        return tuple(map(self.instruments.get, self._input_names(link)))

    def _input_names(self, link: tuple[str, str]) -> tuple[str | None, ...]:
        """The names of the instruments ``_input_sources`` returns (the wiring is fixed)."""
        names: dict[tuple[str, str], tuple[str | None, ...]] | None = self.__dict__.get(
            "_input_names_cache"
        )
        if names is None:
            names = self.__dict__["_input_names_cache"] = {}
        wired = names.get(link)
        if wired is None:  # the wiring is fixed
            wired_list: list[str | None] = []
            for index, node in enumerate(link):
                wiring = self.nodes.get(node)
                if wiring is not None:
                    wired_list += [wiring.laser, wiring.optical_switch, wiring.frequency_converter]
                    wired_list.append(wiring.microwave if index == 0 else None)
            wired_list.append(self.stations[frozenset(link)].detectors)
            wired = names[link] = tuple(wired_list)
        return wired

    def _operating_inputs(self, link: tuple[str, str]) -> tuple[Any, ...]:
        """The instrument readings the operating point is derived from (all that
        ``_emission_probability``, ``_conversion_efficiency``, the detector channels and
        ``_rotation`` read; keep them in step)."""
        readings: list[Any] = []
        for index, node in enumerate(link):
            wiring = self.nodes.get(node)
            if wiring is None:
                readings.append(None)
                continue
            laser = self._instrument(wiring.laser)
            switch = self._instrument(wiring.optical_switch)
            qfc = self._instrument(wiring.frequency_converter)
            # only the first node's microwave pulse sets the bright population
            mw = self._instrument(wiring.microwave) if index == 0 else None
            readings.append(
                (
                    None
                    if laser is None
                    else (laser.output_on, laser.power_mw, laser.wavelength_nm),
                    None if switch is None else switch.is_open(wiring.optical_switch_channel),
                    None
                    if qfc is None
                    else (
                        qfc.pump_on,
                        qfc.pump_power_mw,
                        getattr(qfc, "crystal_temperature_measured_c", qfc.crystal_temperature_c),
                    ),
                    None if mw is None else (mw.output_on, mw.iq_on, mw.frequency_hz, mw.power_dbm),
                )
            )
        station = self.stations[frozenset(link)]
        det = self._instrument(station.detectors)
        for channel in station.detector_channels:
            ch = det.channels[channel]
            readings.append((ch.bias_ua, ch.bias_enabled))
        return tuple(readings)

    def _derive_static_point(
        self,
        link: tuple[str, str],
        program: AttemptProgram | None,
        peer_program: AttemptProgram | None,
    ) -> dict[str, Any]:
        """The operating point's fields but the phase, from the instruments."""
        station = self.stations[frozenset(link)]
        a, b = link
        emission = tuple(self._emission_probability(n) for n in (a, b))
        conversion = tuple(self._conversion_efficiency(n) for n in (a, b))
        det = self._instrument(station.detectors)
        params = self._station_params(station.detectors)
        eff, dark = [], []
        for channel in station.detector_channels:
            ch = det.channels[channel]
            eff.append(snspd_efficiency(ch.bias_ua, ch.bias_enabled, params))
            dark.append(snspd_dark_count_rate_hz(ch.bias_ua, ch.bias_enabled, params))
        return {
            "bright_population": self._bright_population(a, program) if program else None,
            "emission_probability": emission,
            "conversion_efficiency": conversion,
            "detector_efficiency": tuple(eff),
            "dark_count_rate_hz": tuple(dark),
            "attempt_duration_us": program.attempt_duration_us if program else None,
            "visibility": self._visibility(link, (program, peer_program)),
        }

    # ------------------------------------------------------------------ interferometer
    def _optical_pulse_time_s(self, node: str) -> float | None:
        """When, within its attempt, a node's optical pulse starts: the first sample of
        marker 1 in the attempt waveform (None without an attempt step)."""
        program = self._program(node)
        return None if program is None else program.optical_start_s

    def _emission_delays_s(
        self,
        link: tuple[str, str],
        programs: tuple[AttemptProgram | None, AttemptProgram | None] | None = None,
    ) -> tuple[float, float]:
        """Each node's photon emission time relative to the earlier of the two (0, 0 when
        either has no attempt waveform; ``programs``: the nodes' attempt programs when
        already decoded). Fibre lengths are taken as matched."""
        if programs is None:
            times = [self._optical_pulse_time_s(n) for n in link]
        else:
            times = [None if p is None else p.optical_start_s for p in programs]
        if any(t is None for t in times):
            return 0.0, 0.0
        first = min(times)  # type: ignore[type-var]
        return times[0] - first, times[1] - first  # type: ignore[operator]

    def _visibility(
        self,
        link: tuple[str, str],
        programs: tuple[AttemptProgram | None, AttemptProgram | None] | None = None,
    ) -> float:
        """The link's intrinsic visibility times the temporal overlap of the two photons
        (``optics.temporal_overlap``, lifetime: the mean of the two emitters')."""
        params = self.lab.params
        intrinsic = self._link_params(link).visibility
        da, db = self._emission_delays_s(link, programs)
        if da == db:
            return intrinsic
        lifetime = 0.5e-9 * sum(params.nodes[n].excitation.excited_state_lifetime_ns for n in link)
        return intrinsic * temporal_overlap(da - db, lifetime)

    def _optical_phase(self, link: tuple[str, str]) -> float:
        """Phase between the arms: the lab's offset, its drift and random walk up to now,
        plus the RF phases of the two excitation AOMs (node A's minus node B's). Rounded to
        10 mrad (far below the phase noise of a real link) so an unchanged or slowly drifting
        set-up reuses its link model."""
        a, b = link
        params = self._link_params(link)
        return self._arm_phase(link, params, self._aom_phase(a) - self._aom_phase(b))

    def _arm_phase(self, link: tuple[str, str], params: LinkParams, aom_phase: float) -> float:
        """``_optical_phase`` with the link's parameters and the AOMs' phase difference
        given (the attempt loop keeps the latter while no instrument was edited). Advances
        the random walk to now (a draw when time moved on; the same phase again when not)."""
        now = self.lab.clock.now
        walk = 0.0
        if params.phase_random_walk_rad_per_sqrt_s > 0:
            key = frozenset(link)
            t_last, walk = self._phase_walk.get(key, (0.0, 0.0))
            if now > t_last:
                # the draw of ``normal(0.0, step)`` (numpy's 0.0 + scale * standard normal:
                # the same variate, from the same bits; math.sqrt: the same rounding as
                # np.sqrt), at a fraction of its cost (once per attempt loop)
                step = params.phase_random_walk_rad_per_sqrt_s * math.sqrt(now - t_last)
                walk += 0.0 + step * self._phase_normal()
                self._phase_walk[key] = (now, walk)
        phase = params.phase_offset_rad + params.phase_drift_rad_per_s * now + walk
        phase += aom_phase
        return round(wrap_phase(phase), 2)

    def _phase_normal(self) -> float:
        """The phase walk's next standard normal variate. ``_phase_rng`` serves the walk
        alone, so its variates are drawn in blocks (``standard_normal(n)`` gives the same
        variates, in the same order, as n single draws) and served as Python floats: a
        numpy call per attempt loop saved. A new generator starts a new block."""
        rng = self._phase_rng
        block = self.__dict__.get("_phase_normals")
        if block is None or block[0] is not rng or block[2] >= len(block[1]):
            block = self.__dict__["_phase_normals"] = [rng, rng.standard_normal(_BLOCK).tolist(), 0]
        index = block[2]
        block[2] = index + 1
        return block[1][index]

    def _aom_phase(self, node: str) -> float:
        """The optical phase the node's excitation AOM imprints (0 without one)."""
        wiring = self.nodes.get(node)
        if wiring is None or wiring.optical_switch is None:
            return 0.0
        switch = self._instrument(wiring.optical_switch)
        return aom_optical_phase_rad(switch.channels[wiring.optical_switch_channel].phase_deg)

    def link_model(
        self,
        link: tuple[str, str],
        program: AttemptProgram | None | bool = True,
        peer_program: AttemptProgram | None | bool = True,
    ) -> LinkModel:
        """The link's outcome table at the instruments' current operating point (cached per
        operating point: an unchanged set-up does not recompute the optics); ``program``
        as for ``operating_point``, ``peer_program`` likewise for the second node."""
        a, b = link
        if program is True:
            program = self._program(a)
        if peer_program is True:
            peer_program = self._program(b)
        assert program is None or isinstance(program, AttemptProgram)
        assert peer_program is None or isinstance(peer_program, AttemptProgram)
        return self._model_at(link, program, peer_program)[0]

    def _model_at(
        self,
        link: tuple[str, str],
        program: AttemptProgram | None,
        peer_program: AttemptProgram | None,
    ) -> tuple[LinkModel, _StaticPoint, tuple[int, float]]:
        """``link_model`` for decoded programs, with the static point it was derived at and
        its key in the model cache (the attempt loop keeps them, ``AttemptLoopMixin``)."""
        a, b = link
        static = self._static_point(link, program, peer_program)
        phase = self._optical_phase(link)
        # the scheme, rounds and timing below follow from ``program``, part of ``static``
        key = (static.token, phase)
        model = self._models.get(key)
        if model is None:
            op = OperatingPoint(**static.fields, phase_offset_rad=phase)
            scheme = program.scheme if program and program.scheme != "unsupported" else None
            separation = program.round_separation_s if program else None
            # a loop without the herald's event jump runs free: its attempts follow one
            # another at the attempt waveform's length, nothing waits for the station
            free_running = program is not None and not program.stop_at_herald
            params = self.lab.params
            link_params = params.link(a, b)
            if scheme is not None:  # the program decides the scheme (and the rounds' timing)
                update: dict[str, Any] = {"scheme": scheme}
                if separation is not None:
                    update["bk_round_separation_us"] = separation * 1e6
                if free_running:
                    update["wait_for_herald"] = False
                link_params = link_params.model_copy(update=update)
            model = LinkModel(
                link_params,
                params.nodes[a],
                params.nodes[b],
                params.classical_latency_us,
                op,
            )
            if len(self._models) > 64:
                self._models.clear()
            self._models[key] = model
        return model, static, key

    def _emission_probability(self, node: str) -> float:
        wiring = self.nodes.get(node)
        if wiring is None or wiring.laser is None:
            return 1.0
        laser = self._instrument(wiring.laser)
        switch = self._instrument(wiring.optical_switch)
        light_on = laser.output_on and (
            switch is None or switch.is_open(wiring.optical_switch_channel)
        )
        physics = self._node_physics(node).excitation
        return excitation_probability(laser.power_mw, laser.wavelength_nm, light_on, physics)

    def _conversion_efficiency(self, node: str) -> float | None:
        wiring = self.nodes.get(node)
        if wiring is None or wiring.frequency_converter is None:
            return None
        qfc = self._instrument(wiring.frequency_converter)
        physics = self._node_physics(node).converter
        # the crystal is at the temperature the TEC holds (ambient when it is off)
        temperature = getattr(qfc, "crystal_temperature_measured_c", qfc.crystal_temperature_c)
        return conversion_efficiency(qfc.pump_on, qfc.pump_power_mw, temperature, physics)

    def _program(self, node: str) -> AttemptProgram | None:
        """The attempt loop a node's AWG sequence encodes (``attempt_program``)."""
        wiring = self.nodes.get(node)
        if wiring is None or wiring.awg is None:
            return None
        return self._programs.get(self._instrument(wiring.awg))

    def _rotation(self, node: str, program: AttemptProgram, pulse: int) -> tuple[float, float]:
        """(angle, resonance factor) of the program's ``pulse``-th microwave pulse on the
        node's spin, through its microwave source (``optics.rotation_angle``)."""
        mw = self._instrument(self.nodes[node].microwave)
        if mw is None:
            return 0.0, 1.0
        drive = program.pulses[pulse]
        return rotation_angle(
            drive.peak_v if program.channel_on else 0.0,
            mw.output_on and mw.iq_on,
            mw.frequency_hz,
            mw.power_dbm,
            drive.duration_s,
            self._node_physics(node).spin_control,
        )

    def _bright_population(self, node: str, program: AttemptProgram) -> float | None:
        """Population of the bright state after the program's first pulse: alpha of the
        single-click scheme, 1/2 for Barrett-Kok's pi/2 pulse."""
        if self.nodes[node].microwave is None:
            return None
        angle, factor = self._rotation(node, program, 0)
        # it must stay a valid bright population for the model; a pulse that rotates
        # nothing leaves the spin dark (no photon can be emitted)
        upper = 0.5 if program.scheme == "single_click" else 1.0 - 1e-12
        return float(min(max(bright_population(angle, factor), 1e-12), upper))

    def _link_params(self, link: tuple[str, str]) -> LinkParams:
        """The lab config's parameters of ``link`` (``LabParams.link``, looked up once per
        link while the lab's parameters are the same object)."""
        cache: dict[tuple[str, str], tuple[Any, LinkParams]] | None = self.__dict__.get(
            "_link_params_cache"
        )
        if cache is None:
            cache = self.__dict__["_link_params_cache"] = {}
        params = self.lab.params
        entry = cache.get(link)
        if entry is None or entry[0] is not params:
            entry = cache[link] = (params, params.link(*link))
        return entry[1]

    # ------------------------------------------------------------------ drift
    def _node_physics(self, node: str) -> NodeParams:
        """The node's hidden physics now: drifted over the lab time (``lab_time_h`` plus the
        simulated time, ``NodeParams.at_lab_time``). The drift advances in steps of
        ``DRIFT_STEP_S`` of simulated time (slow drifts change nothing within a step), so
        the link's outcome table is recomputed once per step, not per attempt loop."""
        elapsed = math.floor(self.lab.clock.now / DRIFT_STEP_S) * DRIFT_STEP_S
        return self.lab.params.nodes[node].at_lab_time(self.lab.params.lab_time_h + elapsed / 3600)

    def _station_params(self, detectors: str):
        for station in self.stations.values():
            if station.detectors == detectors:
                return self._link_params(station.link).detectors
        raise KeyError(f"{detectors!r} is not the detector controller of any station")

    def _detector_rates(self, station: StationWiring) -> tuple[float, float]:
        """Mean click rate of each detector: dark counts plus the light of running attempts."""
        op = self.operating_point(station.link)
        rates = [r or 0.0 for r in op.dark_count_rate_hz]
        awgs = [self._instrument(self.nodes[n].awg) for n in station.link if n in self.nodes]
        if awgs and all(a is not None and a.running for a in awgs):
            model = self.link_model(station.link)
            period = model.timing.attempt_period_s
            for clicks, p in model.outcome_probabilities.items():
                for round_clicks in clicks:
                    if round_clicks in ("+", "both"):
                        rates[0] += p / period
                    if round_clicks in ("-", "both"):
                        rates[1] += p / period
        return rates[0], rates[1]

    def _input_sees_pulses(self, tagger: Any, channel: int, station: StationWiring) -> bool:
        inp = tagger.inputs[channel]
        pulse = self._link_params(station.link).detectors.pulse_amplitude_v
        return bool(inp.enabled) and 0 < inp.threshold_v < pulse
