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

from collections import defaultdict, deque
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from .attempt_program import ProgramCache
from .hardware_blocks import blocks_version, qubit_block
from .hardware_clicks import AttemptLoopMixin
from .hardware_link import LinkPhysicsMixin
from .hardware_realtime import RealTimeMixin
from .hardware_tags import ClickTagsMixin
from .lab import SimulatedLab
from .optics import (
    snspd_latched,
)
from .params import SPEED_OF_LIGHT_IN_FIBRE_M_PER_S, OperationTimes
from .physics.clock import SimClock
from .physics.link import LinkModel, OperatingPoint
from .physics.operators import CNOT, CZ, H, S, X, Y, Z, rotation
from .physics.quantum_node import QuantumNode
from .physics.states import (
    BELL_STATES,
    fidelity_to_bloch_entries,
    fidelity_to_bloch_state,
    fidelity_to_pure,
)
from .realtime import RealTimeNetwork
from .spin_drive import play_spin_program
from .wiring import RECENT_ATTEMPT_RUNS, AttemptRun, NodeWiring, StationWiring, _TagBuffer

_SINGLE_GATES = {"H": H, "X": X, "Y": Y, "Z": Z, "S": S}
#: two-qubit gates by name, as the node's methods of that name apply them
_TWO_QUBIT_GATES = {"CNOT": CNOT, "CZ": CZ}


class SimulatedHardware(LinkPhysicsMixin, AttemptLoopMixin, ClickTagsMixin, RealTimeMixin):
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
        self.runs: deque[AttemptRun] = deque(maxlen=RECENT_ATTEMPT_RUNS)
        self._models: dict[tuple[frozenset[str], OperatingPoint], LinkModel] = {}
        self._programs = ProgramCache()
        self._max_attempts = max_attempts_per_run
        self._tag_buffers: dict[str, _TagBuffer] = defaultdict(_TagBuffer)
        self._rng = np.random.default_rng(lab.seed + 1)
        self._controller_nodes: dict[str, str] = {}
        self._probed_qubits: dict[tuple[str, int], tuple[QuantumNode, int]] = {}
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
        self.realtime = RealTimeNetwork(self)  # (see ``RealTimeMixin.realtime``)

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

    def realtime_clock(self) -> Any:
        """The lab's clock, whose ``now`` the real-time network reads (``now_s`` without a
        call each time) and which it runs on to a message's arrival (``advance_to``)."""
        return self.lab.clock

    def settings_changed(self, instrument: str) -> None:
        """The operating point needs no notice: its instrument readings are compared each
        time it is needed (``LinkPhysicsMixin._static_point``), and it is derived again
        when they changed; only the per-click timing cache is dropped."""
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
        return self.qubit_step(instrument, operation, args)()

    def qubit_step(self, instrument: str, operation: str, args: tuple[Any, ...]) -> Any:
        """``qubit_operation(instrument, operation, *args)`` as a callable, remembered."""
        # a controller repeats a few operations: each is resolved once into a step (its
        # qubits, noisy gate and duration), while the lab's parameters are the same object
        steps = self.__dict__.get("_qubit_steps")
        if steps is None or steps[0] is not self.lab.params:
            steps = self.__dict__["_qubit_steps"] = (self.lab.params, {})
        key = (instrument, operation, *args)
        try:
            step = steps[1].get(key)
        except TypeError:  # an unhashable argument (an axis as a list): not kept
            return self._qubit_step(instrument, operation, args)
        if step is None:
            step = self._qubit_step(instrument, operation, args)
            if len(steps[1]) >= 4096:  # free angles or waits: keep the cache bounded
                steps[1].clear()
            steps[1][key] = step
        return step

    def qubit_block(self, instrument: str, block: tuple[tuple[Any, ...], ...]) -> Any:
        """A program's consecutive qubit operations as steps, a Bell-state measurement
        fused (``hardware_blocks.qubit_block``); None: run them one by one."""
        return qubit_block(self, instrument, block)

    #: ``qubit_blocks_version()``: while it is the same object, the blocks ``qubit_block``
    #: returned stay valid (``hardware_blocks.blocks_version`` itself as the method: the
    #: real-time network asks for it at every run of its programs, two a teleportation)
    qubit_blocks_version = blocks_version

    def _qubit_step(self, instrument: str, operation: str, args: tuple[Any, ...]) -> Any:
        """``qubit_operation(instrument, operation, *args)`` as a callable; an invalid
        operation raises here, as the operation itself would."""
        name = self._node_of_controller(instrument)
        node = self.lab.node(name)
        t = self.lab.params.nodes[name].operation_times
        clock = self.lab.clock
        if operation == "count":
            return lambda: node.qubit_count
        if operation == "time":
            return lambda: clock.now
        if operation == "init":
            # the clock advances first: an initialised qubit's state is fresh at the end
            try:
                qubit = node.qubit(args[0])
            except (IndexError, TypeError):
                clock.advance(t.init_us * 1e-6)  # as the operation did before failing
                raise
            return _advance_then(clock, t.init_us * 1e-6, node.prepared_initialize(qubit))
        if operation == "rotate":
            index, axis, angle = args
            qubit = node.qubit(index)
            gate = node.prepared_gate(
                node.single_qubit_gate(rotation(axis, angle), qubit), (qubit,)
            )
            return _then_advance(gate, clock, t.single_qubit_gate_us * 1e-6)
        if operation == "gate":
            return _gate_step(node, clock, t, args)
        if operation == "measure":
            index, basis = args
            read = node.prepared_measure(node.qubit(index), basis)
            return _then_advance(read, clock, t.readout_us * 1e-6)
        if operation == "wait":
            return _advance_then(clock, float(args[0]), _nothing)
        raise ValueError(f"unknown qubit operation {operation!r}")

    def last_herald(self, instrument: str, peer: str) -> tuple[bool, str, str, int, float]:
        node = self._node_of_controller(instrument)
        # the link's name per (node, peer), while the stations are the same object
        names = self.__dict__.get("_herald_link_names")
        if names is None or names[0] is not self.stations:
            names = self.__dict__["_herald_link_names"] = (self.stations, {})
        link = names[1].get((node, peer))
        if link is None:
            link = names[1][(node, peer)] = "-".join(self._link_of_pair(node, peer))
        for run in reversed(self.runs):
            if run.link == link:
                clicks = "".join(run.last_clicks or ())
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
        # the node and the qubit's id, per (node, index): the lab's nodes and their qubits
        # are fixed when it is built (a probe ends every shot)
        try:
            owner, q = self._probed_qubits[(node, qubit)]
        except (KeyError, TypeError):  # (not yet, or an unhashable index)
            owner = self.lab.node(node)
            q = owner.qubit(qubit)
            if type(qubit) is int:
                self._probed_qubits[(node, qubit)] = (owner, q)
        # a lone qubit (a teleported one, after the corrections): its entries, brought up
        # to date in place, without a copy of its matrix
        entries = owner.lone_entries_now(q)
        if entries is None:
            return fidelity_to_bloch_state(self.lab.density_matrix([q]), theta, phi)
        return fidelity_to_bloch_entries(entries, theta, phi)

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


def _gate_step(
    node: QuantumNode, clock: SimClock, t: OperationTimes, args: tuple[Any, ...]
) -> Callable[[], None]:
    """A named gate's step: one-qubit (H, X, Y, Z, S), SWAP (three CNOTs, as a memory swap
    is done on an NV node) or a two-qubit gate the node has a method for (CNOT, CZ)."""
    name, *indices = args
    qubits = tuple(node.qubit(q) for q in indices)
    if len(qubits) == 1:
        gate = node.prepared_gate(node.single_qubit_gate(_SINGLE_GATES[name], qubits[0]), qubits)
        return _then_advance(gate, clock, t.single_qubit_gate_us * 1e-6)
    if name == "SWAP":
        swap = node.prepared_gate(node.swap_gate(), (qubits[0], qubits[1]))
        return _then_advance(swap, clock, 3 * t.two_qubit_gate_us * 1e-6)
    if name in _TWO_QUBIT_GATES and len(qubits) == 2:
        gate = node.prepared_gate(node.two_qubit_gate(_TWO_QUBIT_GATES[name]), qubits)
    else:  # another of the node's gate methods
        gate = partial(getattr(node, name.lower()), *qubits)
    return _then_advance(gate, clock, t.two_qubit_gate_us * 1e-6)


def _then_advance(
    operation: Callable[[], Any], clock: SimClock, duration_s: float
) -> Callable[[], Any]:
    """``operation``, then the clock advances by its duration ``duration_s``; returns the
    operation's result."""
    advance = clock.advance

    def step() -> Any:
        result = operation()
        advance(duration_s)
        return result

    return step


def _advance_then(
    clock: SimClock, duration_s: float, operation: Callable[[], None]
) -> Callable[[], None]:
    """The clock advances by ``duration_s``, then ``operation``."""
    advance = clock.advance

    def step() -> None:
        advance(duration_s)
        operation()

    return step


def _nothing() -> None:
    return None
