"""The simulated lab's instruments wired to its physics: the `LabHooks` every simulated
instrument talks to.

What the instruments are set to becomes physics here:

* a node's excitation laser (on, power, wavelength) and switch (AOM open) set the
  probability that the optical pulse excites the bright state (``optics``);
* its frequency converter's pump and crystal temperature set the conversion efficiency;
* its AWG's uploaded sequence sets the attempt period and the spin rotation before the
  optical pulse (alpha), through the microwave source (output, frequency, power);
* the station's SNSPD bias sets each detector's efficiency and dark-count rate (latching
  above the switching current); the time tagger's inputs (enabled, threshold, delay) decide
  which clicks become time tags, and when (each detector's hidden cable delay and timing
  jitter added);
* the two nodes' optical-pulse timing (marker 1 in each AWG's attempt waveform) sets the
  temporal overlap of their photons, hence the two-photon visibility; the RF phase of each
  node's excitation AOM adds to the optical phase between the arms, which also drifts in
  simulated time (``LinkParams.phase_drift_rad_per_s``, ``phase_random_walk_...``).

The AWG program decides the heralding scheme, as in a lab (``attempt_program`` reads it):
one optical pulse per attempt is the single-click scheme, whose microwave pulse sets alpha;
two are Barrett-Kok, with the pi pulse between the rounds. The link physics of the lab
config then runs with the program's scheme, pulses and timing; programs the link cannot run
(the two nodes disagree, no pi pulse between the rounds, rounds closer than the detection
window) are refused with a settings-conflict error on the AWG that starts the loop.

When the AWGs of both nodes of a link are running, the attempt loop runs in simulated time
in closed form (``HeraldedLink.generate``): the herald's clicks, the clicks of failed
attempts and the dark counts outside detection windows become time tags. A click of attempt
k is tagged on the AWG's attempt grid: loop start + k T + the optical pulse's start within
the attempt (marker 1) + the photon's fibre flight to the station + the channel's cable delay
+ Gaussian jitter (the spontaneous-emission delay of the photon is not sampled). A loop that
stops at the herald ends after its attempts, or when the earlier of the two nodes' real-time
controllers gives up waiting (its herald timeout, ``ENT:TIM``): floor(timeout / attempt
period) attempts, the period including the herald's return when the link waits for it
(``LinkParams.wait_for_herald``). A loop without the herald's event jump runs free: its
period is the attempt waveform's length.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .attempt_program import AttemptProgram, ProgramCache, attempts_within, refusal
from .instruments.scpi import ScpiError
from .lab import SimulatedLab
from .optics import (
    aom_optical_phase_rad,
    bright_population,
    conversion_efficiency,
    excitation_probability,
    rotation_angle,
    snspd_dark_count_rate_hz,
    snspd_efficiency,
    snspd_latched,
    temporal_overlap,
    wrap_phase,
)
from .params import SPEED_OF_LIGHT_IN_FIBRE_M_PER_S, NodeParams
from .physics.link import HeraldedLink, LinkModel, OperatingPoint
from .physics.operators import H, S, X, Y, Z
from .physics.states import BELL_STATES, bloch_ket, fidelity_to_pure
from .spin_drive import play_spin_program

PS = 1e12  # picoseconds per second
DRIFT_STEP_S = 60.0  # simulated seconds per step of the lab's drift

_SINGLE_GATES = {"H": H, "X": X, "Y": Y, "Z": Z, "S": S}


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


@dataclass
class _TagBuffer:
    tags: list[tuple[int, int]] = field(default_factory=list)
    counted_since_s: float = 0.0  # dark counts outside windows generated up to here


class SimulatedHardware:
    """The simulated lab seen through its instruments; implements ``LabHooks``."""

    def __init__(
        self,
        lab: SimulatedLab,
        nodes: list[NodeWiring],
        stations: list[StationWiring],
        max_attempts_per_run: int = 10**12,
    ) -> None:
        self.lab = lab
        self.nodes = {n.node: n for n in nodes}
        self.stations = {frozenset(s.link): s for s in stations}
        self.instruments: dict[str, Any] = {}
        self.runs: list[AttemptRun] = []
        self._models: dict[tuple[frozenset[str], OperatingPoint], LinkModel] = {}
        self._programs = ProgramCache()
        self._max_attempts = max_attempts_per_run
        self._tag_buffers: dict[str, _TagBuffer] = defaultdict(_TagBuffer)
        self._rng = np.random.default_rng(lab.seed + 1)
        self._controller_nodes: dict[str, str] = {}
        # separate streams, so the timing model and the phase walk leave the other draws alone
        self._timing_rng = np.random.default_rng(lab.seed + 11)
        self._phase_rng = np.random.default_rng(lab.seed + 12)
        self._phase_walk: dict[frozenset[str], tuple[float, float]] = {}
        # per link: emission delays and node A's share of single clicks (until a setting changes)
        self._click_timing: dict[frozenset[str], tuple[tuple[float, float], float]] = {}
        for link in lab.links.values():
            names = [n.name for n in link.nodes]
            if frozenset(names) not in self.stations:
                raise ValueError(f"link {'-'.join(names)} has no heralding station wired")

    # ------------------------------------------------------------------ set-up
    def attach(self, instrument: Any) -> None:
        """Register a simulated instrument (it must have a ``name``)."""
        self.instruments[instrument.name] = instrument

    def _instrument(self, name: str | None) -> Any:
        if name is None:
            return None
        try:
            return self.instruments[name]
        except KeyError:
            raise KeyError(f"simulated instrument {name!r} is wired but not attached") from None

    # ------------------------------------------------------------------ LabHooks
    def now_s(self) -> float:
        return self.lab.clock.now

    def settings_changed(self, instrument: str) -> None:
        """The operating point is read from the instruments each time it is needed (cheap
        next to an attempt loop); only the per-click timing cache is dropped."""
        self._click_timing.clear()

    def awg_started(self, instrument: str) -> None:
        if play_spin_program(self, instrument):
            return
        for station in self.stations.values():
            a, b = station.link
            awgs = [
                self._instrument(self.nodes[n].awg) if n in self.nodes else None for n in (a, b)
            ]
            names = [getattr(x, "name", None) for x in awgs]
            if instrument in names and all(x is not None and x.running for x in awgs):
                self._run_attempt_loop(station, awgs)

    def awg_stopped(self, instrument: str) -> None:
        pass

    def detector_count_rate_hz(self, instrument: str, channel: int) -> float:
        """Dark counts plus light at the current settings (the mean rate; the counter of the
        simulated controller samples Poisson counts around it)."""
        for station in self.stations.values():
            if station.detectors == instrument and channel in station.detector_channels:
                port = station.detector_channels.index(channel)
                return self._detector_rates(station)[port]
        return 0.0

    def detector_latched(self, instrument: str, channel: int) -> bool:
        det = self._instrument(instrument)
        params = self._station_params(instrument)
        ch = det.channels[channel]
        return snspd_latched(ch.bias_ua, ch.bias_enabled, params)

    def time_tags(self, instrument: str) -> np.ndarray:
        """Tags since the last call, time-ordered; a detector is blind for its dead time after
        each click (non-paralysable), so closer clicks on one channel are dropped."""
        self._dark_counts_until_now(instrument)
        buffer = self._tag_buffers[instrument]
        tags = np.array(sorted(buffer.tags, key=lambda t: t[1]), dtype=np.int64).reshape(-1, 2)
        buffer.tags.clear()
        dead_ps = self._dead_time_ps(instrument)
        if dead_ps <= 0 or len(tags) < 2:
            return tags
        keep = np.ones(len(tags), dtype=bool)
        last: dict[int, int] = {}
        for i, (channel, time_ps) in enumerate(tags.tolist()):
            if channel in last and time_ps - last[channel] < dead_ps:
                keep[i] = False
            else:
                last[channel] = time_ps
        return tags[keep]

    def _dead_time_ps(self, tagger: str) -> int:
        for station in self.stations.values():
            if station.time_tagger == tagger:
                return int(self.lab.params.link(*station.link).detectors.dead_time_ns * 1e3)
        return 0

    def input_count_rates_hz(self, instrument: str) -> dict[int, float]:
        for station in self.stations.values():
            if station.time_tagger == instrument:
                rates = self._detector_rates(station)
                tagger = self._instrument(instrument)
                out = {}
                for port, channel in enumerate(station.tagger_channels):
                    out[channel] = (
                        rates[port] if self._input_sees_pulses(tagger, channel, station) else 0.0
                    )
                return out
        return {}

    # ------------------------------------------------------------------ qubits
    def qubit_operation(self, instrument: str, operation: str, *args: Any) -> Any:
        """Execute a real-time controller's operation on its node's simulated qubits; the
        simulated clock advances by the operation's duration (OperationTimes)."""
        node_name = self._node_of_controller(instrument)
        node = self.lab.node(node_name)
        times = self.lab.params.nodes[node_name].operation_times
        clock = self.lab.clock
        if operation == "count":
            return len(node.qubits)
        if operation == "time":
            return clock.now
        if operation == "init":
            clock.advance(times.init_us * 1e-6)
            node.initialize(node.qubit(args[0]))
            return None
        if operation == "rotate":
            qubit, axis, angle = args
            node.rotate(node.qubit(qubit), axis, angle)
            clock.advance(times.single_qubit_gate_us * 1e-6)
            return None
        if operation == "gate":
            name, *qubits = args
            ids = [node.qubit(q) for q in qubits]
            if len(ids) == 1:
                node.apply_gate(_SINGLE_GATES[name], ids[0])
                clock.advance(times.single_qubit_gate_us * 1e-6)
            elif name == "SWAP":  # three CNOTs, as a memory swap is done on an NV node
                for control, target in ((0, 1), (1, 0), (0, 1)):
                    node.cnot(ids[control], ids[target])
                clock.advance(3 * times.two_qubit_gate_us * 1e-6)
            else:
                getattr(node, name.lower())(*ids)
                clock.advance(times.two_qubit_gate_us * 1e-6)
            return None
        if operation == "measure":
            qubit, basis = args
            outcome = node.measure(node.qubit(qubit), basis)
            clock.advance(times.readout_us * 1e-6)
            return outcome
        if operation == "wait":
            clock.advance(float(args[0]))
            return None
        raise ValueError(f"unknown qubit operation {operation!r}")

    def last_herald(self, instrument: str, peer: str) -> tuple[bool, str, str, int, float]:
        node = self._node_of_controller(instrument)
        link = "-".join(self._link_of_pair(node, peer))
        for run in reversed(self.runs):
            if run.link == link:
                clicks = "".join(c for c in (run.last_clicks or ()))
                return (
                    run.heralds > 0,
                    clicks,
                    run.last_bell_state or "",
                    run.attempts,
                    run.ended_at_s,
                )
        return (False, "", "", 0, self.lab.clock.now)

    def classical_delay_s(self, sender: str, receiver: str) -> float:
        """Fibre flight time along the links from ``sender`` to ``receiver`` (each link: node
        to station to node) plus the lab's processing latency per message."""
        params = self.lab.params
        graph: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for link in params.links:
            a, b = link.nodes
            length_m = sum(link.fibre_length_km) * 1e3
            graph[a].append((b, length_m))
            graph[b].append((a, length_m))
        best = {sender: 0.0}
        frontier = [sender]
        while frontier:  # few nodes: a plain relaxation is enough
            node = frontier.pop()
            for peer, length in graph[node]:
                if best[node] + length < best.get(peer, float("inf")):
                    best[peer] = best[node] + length
                    frontier.append(peer)
        if receiver not in best:
            raise KeyError(f"no fibre path from {sender!r} to {receiver!r}")
        return best[receiver] / SPEED_OF_LIGHT_IN_FIBRE_M_PER_S + params.classical_latency_us * 1e-6

    def qubit_fidelity(self, node: str, qubit: int, theta: float, phi: float) -> float:
        """Fidelity of a node's qubit (by index) to a pure state on the Bloch sphere."""
        q = self.lab.node(node).qubit(qubit)
        rho = self.lab.density_matrix([q])
        return fidelity_to_pure(rho, bloch_ket(theta, phi))

    def readout_fidelities(self, node: str) -> tuple[float, float]:
        """(F0, F1) of a node's communication-qubit readout."""
        qubit = self.lab.params.nodes[node].communication_qubit
        return qubit.readout_f0, qubit.readout_f1

    def pair_fidelity(self, a: str, qa: int, b: str, qb: int, bell_state: str) -> float:
        """Fidelity of two nodes' qubits (by index) to a Bell state."""
        qubits = [self.lab.node(a).qubit(qa), self.lab.node(b).qubit(qb)]
        return fidelity_to_pure(self.lab.density_matrix(qubits), BELL_STATES[bell_state])

    def _node_of_controller(self, instrument: str) -> str:
        node = self._controller_nodes.get(instrument)
        if node is not None:
            return node
        for wiring in self.nodes.values():
            if wiring.qubit_controller == instrument:
                self._controller_nodes[instrument] = wiring.node  # the wiring is fixed
                return wiring.node
        raise KeyError(f"{instrument!r} is not the qubit controller of any node")

    def _link_of_pair(self, node: str, peer: str) -> tuple[str, str]:
        for station in self.stations.values():
            if set(station.link) == {node, peer}:
                return station.link
        raise KeyError(f"no link between {node!r} and {peer!r}")

    # ------------------------------------------------------------------ physics
    def operating_point(
        self, link: tuple[str, str], program: AttemptProgram | None | bool = True
    ) -> OperatingPoint:
        """What the instruments currently make of the link ``link`` (``program``: the first
        node's attempt program when already decoded; True decodes it)."""
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
        if program is True:
            program = self._program(a)
        assert program is None or isinstance(program, AttemptProgram)
        duration_us = program.attempt_duration_us if program else None
        alpha = self._bright_population(a, program) if program else None
        return OperatingPoint(
            bright_population=alpha,
            emission_probability=emission,  # type: ignore[arg-type]
            conversion_efficiency=conversion,  # type: ignore[arg-type]
            detector_efficiency=tuple(eff),  # type: ignore[arg-type]
            dark_count_rate_hz=tuple(dark),  # type: ignore[arg-type]
            attempt_duration_us=duration_us,
            visibility=self._visibility(link),
            phase_offset_rad=self._optical_phase(link),
        )

    # ------------------------------------------------------------------ interferometer
    def _optical_pulse_time_s(self, node: str) -> float | None:
        """When, within its attempt, a node's optical pulse starts: the first sample of
        marker 1 in the attempt waveform (None without an attempt step)."""
        program = self._program(node)
        return None if program is None else program.optical_start_s

    def _emission_delays_s(self, link: tuple[str, str]) -> tuple[float, float]:
        """Each node's photon emission time relative to the earlier of the two (0, 0 when
        either has no attempt waveform). Fibre lengths are taken as matched."""
        times = [self._optical_pulse_time_s(n) for n in link]
        if any(t is None for t in times):
            return 0.0, 0.0
        first = min(times)  # type: ignore[type-var]
        return times[0] - first, times[1] - first  # type: ignore[operator]

    def _visibility(self, link: tuple[str, str]) -> float:
        """The link's intrinsic visibility times the temporal overlap of the two photons
        (``optics.temporal_overlap``, lifetime: the mean of the two emitters')."""
        params = self.lab.params
        intrinsic = params.link(*link).visibility
        da, db = self._emission_delays_s(link)
        if da == db:
            return intrinsic
        lifetime = 0.5e-9 * sum(params.nodes[n].excitation.excited_state_lifetime_ns for n in link)
        return intrinsic * temporal_overlap(da - db, lifetime)

    def _optical_phase(self, link: tuple[str, str]) -> float:
        """Phase between the arms: the lab's offset, its drift and random walk up to now,
        plus the RF phases of the two excitation AOMs (node A's minus node B's). Rounded to
        10 mrad (far below the phase noise of a real link) so an unchanged or slowly drifting
        set-up reuses its link model."""
        params = self.lab.params.link(*link)
        now = self.lab.clock.now
        walk = 0.0
        if params.phase_random_walk_rad_per_sqrt_s > 0:
            key = frozenset(link)
            t_last, walk = self._phase_walk.get(key, (0.0, 0.0))
            if now > t_last:
                step = params.phase_random_walk_rad_per_sqrt_s * np.sqrt(now - t_last)
                walk += float(self._phase_rng.normal(0.0, step))
                self._phase_walk[key] = (now, walk)
        phase = params.phase_offset_rad + params.phase_drift_rad_per_s * now + walk
        a, b = link
        phase += self._aom_phase(a) - self._aom_phase(b)
        return round(wrap_phase(phase), 2)

    def _aom_phase(self, node: str) -> float:
        wiring = self.nodes.get(node)
        if wiring is None or wiring.optical_switch is None:
            return 0.0
        switch = self._instrument(wiring.optical_switch)
        channel = switch.channels[wiring.optical_switch_channel]
        return aom_optical_phase_rad(channel.phase_deg)

    def link_model(
        self, link: tuple[str, str], program: AttemptProgram | None | bool = True
    ) -> LinkModel:
        """The link's outcome table at the instruments' current operating point (cached per
        operating point: an unchanged set-up does not recompute the optics); ``program`` as
        for ``operating_point``."""
        a, b = link
        if program is True:
            program = self._program(a)
        assert program is None or isinstance(program, AttemptProgram)
        op = self.operating_point(link, program)
        scheme = program.scheme if program and program.scheme != "unsupported" else None
        separation = program.round_separation_s if program else None
        # a loop without the herald's event jump runs free: its attempts follow one another
        # at the attempt waveform's length, nothing waits for the station's reply
        free_running = program is not None and not program.stop_at_herald
        key = (frozenset(link), op, scheme, separation, free_running)
        model = self._models.get(key)
        if model is None:
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
        return model

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
                return self.lab.params.link(*station.link).detectors
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
        pulse = self.lab.params.link(*station.link).detectors.pulse_amplitude_v
        return bool(inp.enabled) and 0 < inp.threshold_v < pulse

    # ------------------------------------------------------------------ attempt loop
    def _run_attempt_loop(self, station: StationWiring, awgs: list[Any]) -> None:
        programs = [self._program(n) for n in station.link]
        try:
            self._check_programs(station, programs)
        except ScpiError:
            for awg in awgs:  # a refused program does not start
                awg.running = False
            raise
        link = self.lab.link(*station.link)
        link.set_model(self.link_model(station.link, programs[0]))
        attempt = programs[0]
        limit = self._max_attempts
        cutoff = None
        if attempt and attempt.repetitions > 0:
            limit, cutoff = attempt.repetitions, "attempts"
        stop_at_herald = attempt is None or attempt.stop_at_herald
        if stop_at_herald:
            try:
                by_time = self._attempts_within_herald_timeout(station, link.model)
            except ScpiError:
                for awg in awgs:
                    awg.running = False
                raise
            if by_time is not None and by_time < limit:
                limit, cutoff = by_time, "time"
        started = self.lab.clock.now
        attempts_before = link.attempts_made
        remaining = limit
        heralds: list[Any] = []
        # the AWG's attempt grid: attempt i starts at started + i * period. The engine
        # delivers each herald before the next attempt (its clock then runs on by the herald's
        # return in a free-running loop), but the AWG does not pause: tags follow the grid
        period = link.model.timing.attempt_period_s
        grid = (self._arrival_offset_s(station, programs), period)
        index = 0
        while remaining > 0:
            before = link.attempts_made
            pair = link.generate(max_attempts=remaining)
            spent = link.attempts_made - before
            remaining -= spent
            first = started + index * period
            self._failed_attempt_clicks(station, link, grid, first, spent - (pair is not None))
            index += spent
            if pair is None:
                break
            heralds.append(pair)
            self._attempt_clicks(station, link, grid, started + (index - 1) * period, pair.clicks)
            if stop_at_herald:
                break
        last = heralds[-1] if heralds else None
        self.runs.append(
            AttemptRun(
                link="-".join(station.link),
                attempts=link.attempts_made - attempts_before,
                heralds=len(heralds),
                last_bell_state=getattr(last, "bell_state", None),
                last_clicks=getattr(last, "clicks", None),
                started_at_s=started,
                ended_at_s=self.lab.clock.now,
                scheme=link.model.params.scheme,
                cutoff=cutoff if remaining <= 0 and not (heralds and stop_at_herald) else None,
            )
        )
        for awg in awgs:  # the sequence ran to its end
            awg.running = False

    def _check_programs(
        self, station: StationWiring, programs: list[AttemptProgram | None]
    ) -> None:
        """Refuse (SCPI -221, settings conflict) attempt loops the link cannot run."""
        first, second = programs
        if first is None or second is None:
            return  # no optical pulse on one node: nothing to check
        window_s = self.lab.params.link(*station.link).detectors.detection_window_ns * 1e-9

        def flip(index: int) -> tuple[float, float]:  # (angle, flip probability)
            angle, factor = self._rotation(station.link[index], programs[index], 1)  # type: ignore[arg-type]
            return angle, bright_population(angle, factor)

        reason = refusal(first, second, window_s, flip)
        if reason is not None:
            raise ScpiError(-221, reason)

    def _attempts_within_herald_timeout(
        self, station: StationWiring, model: LinkModel
    ) -> int | None:
        """Attempts that fit in the shorter herald timeout of the two nodes' real-time
        controllers; None without a controller."""
        timeouts = []
        for node in station.link:
            wiring = self.nodes.get(node)
            rtc = self._instrument(wiring.qubit_controller) if wiring else None
            if rtc is not None:
                timeouts.append(float(rtc.herald_timeout_s))
        if not timeouts:
            return None
        try:
            return attempts_within(min(timeouts), model.timing.attempt_period_s)
        except ValueError as exc:
            raise ScpiError(-221, str(exc)) from None

    def _arrival_offset_s(
        self, station: StationWiring, programs: list[AttemptProgram | None]
    ) -> float:
        """From an attempt's start to its photons' arrival at the detectors: the earlier
        node's optical pulse within the attempt (marker 1 of its attempt waveform; the later
        node's extra delay is added per click, ``_add_clicks``) plus the photon's flight
        through the fibre to the station (fibre lengths taken as matched)."""
        starts = [p.optical_start_s for p in programs if p is not None]
        pulse = min(starts, default=0.0)
        length_km = max(self.lab.params.link(*station.link).fibre_length_km)
        return pulse + length_km * 1e3 / SPEED_OF_LIGHT_IN_FIBRE_M_PER_S

    def _attempt_clicks(
        self,
        station: StationWiring,
        link: HeraldedLink,
        grid: tuple[float, float],
        attempt_start_s: float,
        clicks: tuple[str, ...],
    ) -> None:
        """Time tags of one attempt's clicks (a herald's or a failure's): one entry per
        round, the first at the attempt's start plus the photons' arrival offset, a
        Barrett-Kok second round one round separation later. ``grid``: (arrival offset,
        attempt period) of the running loop."""
        separation = link.model.params.bk_round_separation_us * 1e-6
        arrival = attempt_start_s + grid[0]
        for r, c in enumerate(clicks):
            self._add_clicks(station, c, arrival + r * separation)

    def _failed_attempt_clicks(
        self,
        station: StationWiring,
        link: HeraldedLink,
        grid: tuple[float, float],
        first_s: float,
        failures: int,
    ) -> None:
        """Clicks of failed attempts (the first starting at ``first_s``): how many attempts
        clicked is binomial, which pattern each had follows the pattern probabilities, and
        which attempts is uniform; each is tagged on the attempt grid (``_attempt_clicks``)."""
        if failures <= 0 or not link.model.failure_clicks:
            return
        model = link.model
        p_fail = 1.0 - model.success_probability
        probs = np.array([p for _, p in model.failure_clicks]) / p_fail
        total = min(float(probs.sum()), 1.0)
        n_clicking = int(self._rng.binomial(failures, total))
        if n_clicking == 0:
            return
        which = self._rng.choice(len(probs), size=n_clicking, p=probs / probs.sum())
        slots = self._rng.integers(0, failures, size=n_clicking)
        for w, slot in zip(which, slots, strict=True):
            clicks = model.failure_clicks[w][0].clicks
            self._attempt_clicks(station, link, grid, first_s + slot * grid[1], clicks)

    def _add_clicks(self, station: StationWiring, outcome: str, time_s: float) -> None:
        """The clicks of one round at the photons' arrival time. When the nodes emit at
        different times, each click is placed at its photon's emission delay: a single click
        came from either node (weighted by what each sends), a coincidence from one each."""
        ports = {"+": (0,), "-": (1,), "both": (0, 1), "none": ()}[outcome]
        delays, p_a = self._click_sources(station.link)
        if ports and delays != (0.0, 0.0):
            if len(ports) == 2:
                first = int(self._timing_rng.integers(2))
                sources: tuple[int, ...] = (first, 1 - first)
            else:
                sources = (0 if self._timing_rng.random() < p_a else 1,)
            for port, source in zip(ports, sources, strict=True):
                self._add_tag(station, port, time_s + delays[source])
            return
        for port in ports:
            self._add_tag(station, port, time_s)

    def _click_sources(self, link: tuple[str, str]) -> tuple[tuple[float, float], float]:
        """(emission delays, probability a single click came from node A), cached until an
        instrument setting changes."""
        key = frozenset(link)
        cached = self._click_timing.get(key)
        if cached is None:
            delays = self._emission_delays_s(link)
            p_a = 0.5
            if delays != (0.0, 0.0):
                setup = self.link_model(link).setup
                ta, tb = setup.path_a.transmission, setup.path_b.transmission
                p_a = ta / (ta + tb) if ta + tb > 0 else 0.5
            cached = self._click_timing[key] = (delays, p_a)
        return cached

    def _add_tag(self, station: StationWiring, port: int, time_s: float) -> None:
        if station.time_tagger is None:
            return
        tagger = self._instrument(station.time_tagger)
        channel = station.tagger_channels[port]
        if not self._input_sees_pulses(tagger, channel, station):
            return
        delay_ps = int(round(tagger.inputs[channel].delay_ps))
        det = self.lab.params.link(*station.link).detectors
        cable_ps = det.cable_delay_ps[port]
        if det.timing_jitter_ps > 0:
            cable_ps += float(self._timing_rng.normal(0.0, det.timing_jitter_ps))
        self._tag_buffers[station.time_tagger].tags.append(
            (channel, int(round(time_s * PS + cable_ps)) + delay_ps)
        )

    def _dark_counts_until_now(self, tagger: str) -> None:
        """Dark counts outside the attempts' detection windows, Poisson in time."""
        buffer = self._tag_buffers[tagger]
        now = self.lab.clock.now
        span = now - buffer.counted_since_s
        if span <= 0:
            return
        for station in self.stations.values():
            if station.time_tagger != tagger:
                continue
            op = self.operating_point(station.link)
            for port, rate in enumerate(op.dark_count_rate_hz):
                n = int(self._rng.poisson((rate or 0.0) * span))
                for t in self._rng.uniform(buffer.counted_since_s, now, size=n):
                    self._add_tag(station, port, float(t))
        buffer.counted_since_s = now
