"""A heralded-entanglement link between two nodes, with attempts sampled in closed form.

All attempts of a link are identical until one succeeds, so the number of attempts is
geometric with the per-attempt success probability p, and is sampled in one step; the memory
noise of n attempts is applied in one step too. The cost per delivered pair therefore does
not grow as p falls (Rozpedek et al., PRA 99, 052330 (2019), sec. IV, treat the rate the same
way).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from ..params import SPEED_OF_LIGHT_IN_FIBRE_M_PER_S, LinkParams, NodeParams
from .channels import depolarizing_kraus, idle_kraus, idle_parameters
from .clock import SimClock
from .heralding import (
    HeraldingSetup,
    HeraldPattern,
    OpticalPath,
    barrett_kok_patterns,
    heralded_states,
    single_click_patterns,
)
from .operators import X, apply_channel, apply_operator, apply_phase_covariant, rotation
from .photonics import DetectorPair
from .quantum_node import QuantumNode
from .registry import QubitRegistry


@dataclass(frozen=True)
class HeraldedPair:
    """A delivered pair: which qubits, which Bell state, and what it cost."""

    pair_id: int
    link: str
    qubits: tuple[int, int]
    bell_state: str
    clicks: tuple[str, ...]  # the heralding pattern, one entry per round
    attempts: int
    emitted_at_s: float
    heralded_at_s: float


@dataclass(frozen=True)
class LinkTiming:
    attempt_period_s: float
    emission_offset_s: float  # from the start of an attempt to its (last) photon emission
    herald_delay_s: float  # from emission to the herald reaching both nodes


def fibre_transmission(length_km: float, attenuation_db_per_km: float) -> float:
    return 10.0 ** (-attenuation_db_per_km * length_km / 10.0)


def link_timing(link: LinkParams, classical_latency_us: float) -> LinkTiming:
    """Attempt period and herald delay from the local sequence and the fibre to the station."""
    one_way_s = max(link.fibre_length_km) * 1e3 / SPEED_OF_LIGHT_IN_FIBRE_M_PER_S
    herald_delay = 2 * one_way_s + classical_latency_us * 1e-6
    local = link.attempt_duration_us * 1e-6
    if link.scheme == "barrett_kok":
        local += link.bk_round_separation_us * 1e-6
    period = local + herald_delay if link.wait_for_herald else local
    return LinkTiming(attempt_period_s=period, emission_offset_s=local, herald_delay_s=herald_delay)


def emitter_state(node: NodeParams, bright_population: float) -> np.ndarray:
    """Spin state before the optical pulse: init (with error), then a rotation to
    sqrt(1-a)|0> + sqrt(a)|1> with the gate's depolarising error."""
    q = node.communication_qubit
    rho = np.diag([1 - q.init_error, q.init_error]).astype(complex)
    theta = 2 * math.asin(math.sqrt(bright_population))
    rho = apply_operator(rho, rotation("Y", theta), [0])
    if q.gate_depolarizing:
        rho = apply_channel(rho, depolarizing_kraus(q.gate_depolarizing), [0])
    return rho


@dataclass(frozen=True)
class OperatingPoint:
    """What the instruments currently make of a link (the simulated instruments set this;
    ``None`` or the defaults leave the value from the lab config).

    * ``bright_population``: population of the bright state after the spin rotation that
      precedes the (first) optical pulse: alpha of single click, 1/2 in Barrett-Kok;
    * ``emission_probability``: per node, probability the optical pulse excites the bright
      state and a photon is emitted (excitation laser power, detuning, switch open);
    * ``conversion_efficiency``: per node, frequency-converter efficiency;
    * ``detector_efficiency`` / ``dark_count_rate_hz``: per detector ('+', '-');
    * ``attempt_duration_us``: local part of one attempt (the AWG's attempt waveform);
    * ``visibility``: two-photon interference visibility at the beam splitter (the link's
      intrinsic visibility times the temporal overlap of the two nodes' photons);
    * ``phase_offset_rad``: optical phase between the two arms (offset, drift and actuators).
    """

    bright_population: float | None = None
    emission_probability: tuple[float, float] = (1.0, 1.0)
    conversion_efficiency: tuple[float | None, float | None] = (None, None)
    detector_efficiency: tuple[float | None, float | None] = (None, None)
    dark_count_rate_hz: tuple[float | None, float | None] = (None, None)
    attempt_duration_us: float | None = None
    visibility: float | None = None
    phase_offset_rad: float | None = None


class LinkModel:
    """The outcome table of one attempt on a link: p(success), heralded states, timing,
    and the click patterns of failed attempts (for the time tagger)."""

    def __init__(
        self,
        link: LinkParams,
        node_a: NodeParams,
        node_b: NodeParams,
        classical_latency_us: float = 0.0,
        operating_point: OperatingPoint | None = None,
    ) -> None:
        op = operating_point or OperatingPoint()
        if op.attempt_duration_us is not None:
            link = link.model_copy(update={"attempt_duration_us": op.attempt_duration_us})
        self.params = link
        self.operating_point = op
        self.timing = link_timing(link, classical_latency_us)
        paths = []
        for i, (node, length) in enumerate(
            zip((node_a, node_b), link.fibre_length_km, strict=True)
        ):
            conversion = op.conversion_efficiency[i]
            t = (
                node.collection_efficiency
                * (node.frequency_conversion_efficiency if conversion is None else conversion)
                * fibre_transmission(length, link.fibre_attenuation_db_per_km)
                * op.emission_probability[i]
            )
            paths.append(OpticalPath(t, node.double_excitation_probability))
        det = link.detectors
        window_s = det.detection_window_ns * 1e-9
        efficiency = tuple(det.efficiency if e is None else e for e in op.detector_efficiency)
        dark = tuple(
            -math.expm1(-(det.dark_count_rate_hz if r is None else r) * window_s)
            for r in op.dark_count_rate_hz
        )
        self.setup = HeraldingSetup(
            path_a=paths[0],
            path_b=paths[1],
            detectors=DetectorPair(efficiency, dark),
            visibility=link.visibility if op.visibility is None else op.visibility,
            phase_offset_rad=(
                link.phase_offset_rad if op.phase_offset_rad is None else op.phase_offset_rad
            ),
            phase_noise_std_rad=link.phase_noise_std_rad,
        )
        if link.scheme == "single_click":
            patterns = single_click_patterns(self.setup)
            bright = link.alpha if op.bright_population is None else op.bright_population
            between = None
        else:
            dead = det.dead_time_ns > link.bk_round_separation_us * 1e3
            patterns = barrett_kok_patterns(self.setup, detector_dead_in_round_two=dead)
            # the pi/2 pulse of Barrett & Kok gives 1/2; a mis-set pulse (the instruments'
            # operating point) gives another superposition, and its own heralded states
            bright = 0.5 if op.bright_population is None else op.bright_population
            between = _pi_pulse_between_rounds(node_a, node_b, link.bk_round_separation_us * 1e-6)
        self.bright_population = bright
        pre = np.kron(emitter_state(node_a, bright), emitter_state(node_b, bright))
        table = heralded_states(pre, patterns, self.setup, between)
        #: probability per attempt of every click pattern (they sum to one)
        self.outcome_probabilities = {pattern.clicks: prob for pattern, prob, _ in table}
        herald = [t for t in table if t[0].bell_state is not None and t[1] > 0]
        #: click patterns of failed attempts that produce at least one click, with their
        #: probabilities per attempt (the time tagger sees these clicks too)
        self.failure_clicks: list[tuple[HeraldPattern, float]] = [
            (pattern, prob)
            for pattern, prob, _ in table
            if pattern.bell_state is None and prob > 0 and set(pattern.clicks) != {"none"}
        ]
        self.patterns: list[HeraldPattern] = [t[0] for t in herald]
        self.pattern_probabilities = np.array([t[1] for t in herald])
        self.heralded_states: list[np.ndarray] = [t[2] for t in herald]
        self.success_probability = float(self.pattern_probabilities.sum())
        #: log(1 - p) of a failed attempt, the geometric draw's denominator (None: p >= 1)
        self.log_failure = (
            None if self.success_probability >= 1.0 else math.log1p(-self.success_probability)
        )
        #: (probability that a failed attempt clicks, which pattern a clicking failure had)
        self.failure_click_distribution = _failure_click_distribution(
            self.failure_clicks, 1.0 - self.success_probability
        )
        if self.success_probability <= 0:
            raise ValueError(
                f"link {link.name}: no detection pattern can herald (success probability 0)"
            )
        self._cumulative = (
            np.cumsum(self.pattern_probabilities) / self.success_probability
        ).tolist()
        # The spins idle from emission until the herald reaches their nodes: that part of
        # every successful attempt is the same, so the delivered states include it.
        # own read-only copies: the registry shares them (``QubitRegistry.share_state``)
        self.states = [
            _read_only(_idle_both(state, (node_a, node_b), self.timing.herald_delay_s))
            for state in self.heralded_states
        ]

    def choose_pattern(self, u: float) -> int:
        """Index of the heralding pattern for a uniform variate ``u`` (given success)."""
        return min(bisect.bisect_right(self._cumulative, u), len(self._cumulative) - 1)


def _failure_click_distribution(
    failure_clicks: list[tuple[HeraldPattern, float]], p_fail: float
) -> tuple[float, np.ndarray]:
    """Given a failed attempt: the probability it clicked, and the probabilities of the
    clicking patterns given that it clicked (empty without clicking failures)."""
    if not failure_clicks or p_fail <= 0:
        return 0.0, np.zeros(0)
    probs = np.array([p for _, p in failure_clicks]) / p_fail
    return min(float(probs.sum()), 1.0), probs / probs.sum()


def _read_only(state: np.ndarray) -> np.ndarray:
    out = np.array(state, dtype=complex)
    out.flags.writeable = False
    return out


def _idle_both(
    state: np.ndarray, nodes: tuple[NodeParams, NodeParams], duration_s: float
) -> np.ndarray:
    """Idle decoherence of both communication qubits of a pair for ``duration_s``."""
    for index, node in enumerate(nodes):
        q = node.communication_qubit
        if q.t1_s is not None or q.t2_s is not None:
            gamma, coherence = idle_parameters(duration_s, q.t1_s, q.t2_s)
            state = apply_phase_covariant(state, index, gamma, coherence)
    return state


def _pi_pulse_between_rounds(node_a: NodeParams, node_b: NodeParams, separation_s: float):
    """Idle decoherence over the round separation, then a pi pulse (with error) on each spin."""
    steps = []
    for index, node in enumerate((node_a, node_b)):
        q = node.communication_qubit
        steps.append((idle_kraus(separation_s, q.t1_s, q.t2_s), index))
        steps.append(([X], index))
        if q.gate_depolarizing:
            steps.append((depolarizing_kraus(q.gate_depolarizing), index))

    def between(rho: np.ndarray) -> np.ndarray:
        for kraus, index in steps:
            rho = apply_channel(rho, kraus, [index])
        return rho

    return between


class HeraldedLink:
    """Runs attempts on a link between two ``QuantumNode``s sharing one registry and clock."""

    _BLOCK = 4096

    def __init__(
        self,
        model: LinkModel,
        node_a: QuantumNode,
        node_b: QuantumNode,
        registry: QubitRegistry,
        clock: SimClock,
        rng: np.random.Generator,
    ) -> None:
        self.model = model
        self.nodes = (node_a, node_b)
        self.name = f"{node_a.name}-{node_b.name}"
        self._registry = registry
        self._clock = clock
        self._rng = rng
        # the block of uniforms as Python floats (the same values: indexing a list is cheaper
        # than indexing a numpy array and converting the element, twice per attempt loop)
        self._uniforms: list[float] = []
        self._next = 0
        self.pairs_delivered = 0
        self.attempts_made = 0

    def set_model(self, model: LinkModel) -> None:
        """Swap in a new outcome table (e.g. after an instrument setting changed)."""
        self.model = model

    def _uniform(self) -> float:
        index = self._next
        if index >= len(self._uniforms):
            self._uniforms = (1.0 - self._rng.random(self._BLOCK)).tolist()  # in (0, 1]
            index = 0
        self._next = index + 1
        return self._uniforms[index]

    def sample_attempts(self) -> int:
        """Attempts up to and including the first success: geometric(p), inverse-CDF sampled."""
        p = self.model.success_probability
        if p >= 1.0:
            return 1
        return int(math.log(self._uniform()) / math.log1p(-p)) + 1

    def generate(self, max_attempts: int | None = None) -> HeraldedPair | None:
        """Attempt until success or ``max_attempts``; the pair lands on the communication qubits.

        Returns None when the cut-off is reached first (time and memory noise still accrue).
        """
        if max_attempts is not None and max_attempts < 1:
            raise ValueError(f"max_attempts={max_attempts!r}: expected a positive integer")
        attempts, index, emitted_at = self.attempt(max_attempts)
        if index < 0:
            return None
        node_a, node_b = self.nodes
        pattern = self.model.patterns[index]
        return HeraldedPair(
            pair_id=self.pairs_delivered,
            link=self.name,
            qubits=(node_a.communication_qubit, node_b.communication_qubit),
            bell_state=pattern.bell_state,
            clicks=pattern.clicks,
            attempts=attempts,
            emitted_at_s=emitted_at,
            heralded_at_s=self._clock.now,
        )

    def attempt(self, max_attempts: int | None) -> tuple[int, int, float]:
        """``generate`` without its record (the simulated lab's attempt loop runs this):
        (attempts spent, index of the heralding pattern in ``model.patterns``, emission
        time of the heralded attempt); the index is -1 when ``max_attempts`` (>= 1, or None
        for no cut-off) ran out first. The clock ends at the herald (or the cut-off)."""
        model = self.model
        timing = model.timing
        clock = self._clock
        u = self._uniform()  # ``sample_attempts``, inline
        log_failure = model.log_failure  # log1p(-p) of ``sample_attempts``; None: p >= 1
        attempts = 1 if log_failure is None else int(math.log(u) / log_failure) + 1
        node_a, node_b = self.nodes
        if max_attempts is not None and attempts > max_attempts:
            self._spend_attempts(max_attempts)
            clock.advance(max_attempts * timing.attempt_period_s)
            return max_attempts, -1, 0.0
        self.attempts_made += attempts  # ``_spend_attempts``, inline
        node_a.apply_attempt_dephasing(attempts)
        node_b.apply_attempt_dephasing(attempts)
        emitted_at = clock.now + (attempts - 1) * timing.attempt_period_s + timing.emission_offset_s
        # ``model.choose_pattern``, inline
        cumulative = model._cumulative
        u = self._uniform()
        index = bisect.bisect_right(cumulative, u)
        if index >= len(cumulative):
            index = len(cumulative) - 1
        a, b = node_a.communication_qubit, node_b.communication_qubit
        heralded_at = clock.advance_to(emitted_at + timing.herald_delay_s)
        # the model's states are read-only complex 4x4 matrices: shared, not checked
        self._registry.share_state([a, b], model.states[index])
        node_a.mark_fresh((a,), heralded_at)
        node_b.mark_fresh((b,), heralded_at)
        self.pairs_delivered += 1
        return attempts, index, emitted_at

    def _spend_attempts(self, attempts: int) -> None:
        self.attempts_made += attempts
        for node in self.nodes:
            node.apply_attempt_dephasing(attempts)
