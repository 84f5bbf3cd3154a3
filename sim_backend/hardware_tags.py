"""The clicks an attempt loop leaves, as the time taggers see them: the herald's and the
failed attempts' clicks on the attempt grid, each placed at its photon's emission delay,
delayed by fibre, cable and tagger input and blurred by the detector's jitter; and dark
counts, Poisson in time, written when the tags are read. A mixin of
:class:`sim_backend.hardware.SimulatedHardware` (see its module docstring)."""

from __future__ import annotations

from .params import DetectorParams
from .physics.link import HeraldedLink
from .wiring import PS, StationWiring

#: the detector ports ('+': 0, '-': 1) that click in a round, by its outcome
_PORTS: dict[str, tuple[int, ...]] = {"+": (0,), "-": (1,), "both": (0, 1), "none": ()}

#: the frozenset of each link's two node names (the key of per-link caches keyed that way)
_LINK_KEYS: dict[tuple[str, str], frozenset[str]] = {}


def _link_key(link: tuple[str, str]) -> frozenset[str]:
    key = _LINK_KEYS.get(link)
    if key is None:
        key = _LINK_KEYS[link] = frozenset(link)
    return key


class ClickTagsMixin:
    """Time tags of :class:`~sim_backend.hardware.SimulatedHardware`'s attempt loops
    (``det``: the link's detector parameters, as the running loop read them)."""

    def _attempt_clicks(
        self,
        station: StationWiring,
        link: HeraldedLink,
        grid: tuple[float, float],
        attempt_start_s: float,
        clicks: tuple[str, ...],
        det: DetectorParams,
    ) -> None:
        """Time tags of one attempt's clicks (a herald's or a failure's): one entry per
        round, the first at the attempt's start plus the photons' arrival offset, a
        Barrett-Kok second round one round separation later. ``grid``: (arrival offset,
        attempt period) of the running loop."""
        arrival = attempt_start_s + grid[0]
        if len(clicks) == 1:  # one round (single click, every herald): no round separation
            self._add_clicks(station, clicks[0], arrival, det)
            return
        separation = link.model.params.bk_round_separation_us * 1e-6
        for r, c in enumerate(clicks):
            self._add_clicks(station, c, arrival + r * separation, det)

    def _failed_attempt_clicks(
        self,
        station: StationWiring,
        link: HeraldedLink,
        grid: tuple[float, float],
        first_s: float,
        failures: int,
        clicking: int,
        det: DetectorParams,
    ) -> None:
        """Clicks of ``clicking`` of the ``failures`` failed attempts (the first starting at
        ``first_s``; how many clicked is binomial, drawn by the loop: of the failures,
        with probability ``failure_click_distribution[0]``): which pattern each had follows
        the pattern probabilities, and which attempts is uniform; each is tagged on the
        attempt grid (``_attempt_clicks``)."""
        model = link.model
        pattern_probabilities = model.failure_click_distribution[1]
        which = self._rng.choice(len(pattern_probabilities), size=clicking, p=pattern_probabilities)
        slots = self._rng.integers(0, failures, size=clicking)
        for w, slot in zip(which, slots, strict=True):
            clicks = model.failure_clicks[w][0].clicks
            self._attempt_clicks(station, link, grid, first_s + slot * grid[1], clicks, det)

    def _add_clicks(
        self, station: StationWiring, outcome: str, time_s: float, det: DetectorParams
    ) -> None:
        """The clicks of one round at the photons' arrival time. When the nodes emit at
        different times, each click is placed at its photon's emission delay: a single click
        came from either node (weighted by what each sends), a coincidence from one each."""
        ports = _PORTS[outcome]
        link = station.link
        # ``_click_sources``, its cache read inline
        delays, p_a = self._click_timing.get(
            _LINK_KEYS.get(link) or _link_key(link)
        ) or self._click_sources(link)
        if ports and delays != (0.0, 0.0):
            if len(ports) == 2:
                first = int(self._timing_rng.integers(2))
                sources: tuple[int, ...] = (first, 1 - first)
            else:
                sources = (0 if self._timing_rng.random() < p_a else 1,)
            for port, source in zip(ports, sources, strict=True):
                self._add_tag(station, port, time_s + delays[source], det)
            return
        for port in ports:
            self._add_tag(station, port, time_s, det)

    def _click_sources(self, link: tuple[str, str]) -> tuple[tuple[float, float], float]:
        """(emission delays, probability a single click came from node A), cached until an
        instrument setting changes."""
        key = _LINK_KEYS.get(link) or _link_key(link)
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

    def _add_tag(
        self, station: StationWiring, port: int, time_s: float, det: DetectorParams
    ) -> None:
        """A click on detector ``port`` at ``time_s`` as the time tagger sees it: dropped
        by an input that is off or whose threshold misses the detector pulse; else delayed
        by the input's delay and the detector's cable delay, with Gaussian jitter."""
        tagger_name = station.time_tagger
        if tagger_name is None:
            return
        channel = station.tagger_channels[port]
        tagger = self.instruments.get(tagger_name)
        if tagger is None:
            tagger = self._instrument(tagger_name)  # raises: wired but not attached
        inp = tagger.inputs[channel]
        if not (inp.enabled and 0 < inp.threshold_v < det.pulse_amplitude_v):
            return
        delay_ps = int(round(inp.delay_ps))
        cable_ps = det.cable_delay_ps[port]
        jitter_ps = det.timing_jitter_ps
        if jitter_ps > 0:
            # the draw of ``normal(0.0, jitter_ps)`` (numpy's 0.0 + scale * standard normal:
            # the same variate, from the same bits), at half its cost
            cable_ps += jitter_ps * self._timing_rng.standard_normal()
        self._tag_buffers[tagger_name].tags.append(
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
            det = self._link_params(station.link).detectors
            for port, rate in enumerate(op.dark_count_rate_hz):
                n = int(self._rng.poisson((rate or 0.0) * span))
                for t in self._rng.uniform(buffer.counted_since_s, now, size=n):
                    self._add_tag(station, port, float(t), det)
        buffer.counted_since_s = now
