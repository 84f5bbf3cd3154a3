"""Attempts in closed form: geometric attempt counts, cut-offs, simulated time, timing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim_backend.params import NodeParams
from sim_backend.physics.link import link_timing

from .helpers import assert_within, two_node_lab


def test_attempt_counts_are_geometric() -> None:
    lab = two_node_lab(seed=31, node=NodeParams(collection_efficiency=0.05), alpha=0.1)
    link = lab.link("alice", "bob")
    p = link.model.success_probability
    counts = np.array([link.generate().attempts for _ in range(20000)])
    assert_within(counts.mean(), 1 / p, math.sqrt(1 - p) / p / math.sqrt(counts.size))
    # P(n = 1) = p and P(n > k) = (1-p)^k
    assert_within((counts == 1).mean(), p, math.sqrt(p * (1 - p) / counts.size))
    k = int(1 / p)
    tail = (1 - p) ** k
    assert_within((counts > k).mean(), tail, math.sqrt(tail * (1 - tail) / counts.size))


def test_cut_off_on_attempts_fails_with_the_geometric_probability() -> None:
    lab = two_node_lab(seed=33, node=NodeParams(collection_efficiency=0.05), alpha=0.1)
    link = lab.link("alice", "bob")
    p = link.model.success_probability
    cutoff = 50
    trials = 20000
    failures = sum(link.generate(max_attempts=cutoff) is None for _ in range(trials))
    expected = (1 - p) ** cutoff
    assert_within(failures / trials, expected, math.sqrt(expected * (1 - expected) / trials))
    with pytest.raises(ValueError, match="max_attempts=0"):
        link.generate(max_attempts=0)


def test_simulated_time_follows_attempts_and_herald_delay() -> None:
    lab = two_node_lab(seed=35, fibre_length_km=(10.0, 10.0), attempt_duration_us=5.0)
    link = lab.link("alice", "bob")
    timing = link.model.timing
    one_way = 10e3 / 2.04e8
    assert timing.herald_delay_s == pytest.approx(2 * one_way)
    assert timing.attempt_period_s == pytest.approx(5e-6 + 2 * one_way)
    start = lab.clock.now
    pair = link.generate()
    assert pair.heralded_at_s - pair.emitted_at_s == pytest.approx(timing.herald_delay_s)
    assert lab.clock.now - start == pytest.approx(
        (pair.attempts - 1) * timing.attempt_period_s + 5e-6 + timing.herald_delay_s
    )


def test_no_waiting_for_the_herald_shortens_the_period() -> None:
    lab = two_node_lab(fibre_length_km=(50.0, 50.0), wait_for_herald=False)
    timing = lab.link("alice", "bob").model.timing
    assert timing.attempt_period_s == pytest.approx(5e-6)
    assert link_timing(lab.params.links[0], 0.0).herald_delay_s > 4e-4


def test_cost_per_pair_does_not_depend_on_success_probability() -> None:
    """The work per pair is one sample whatever p is: the attempt count for p = 1e-7 is in
    the tens of millions and still costs one draw (checked via the clock, not wall time)."""
    lab = two_node_lab(seed=37, node=NodeParams(collection_efficiency=1e-6), alpha=0.05)
    link = lab.link("alice", "bob")
    assert link.model.success_probability < 1e-7
    pair = link.generate()
    assert pair.attempts > 1000
    assert link.attempts_made == pair.attempts


def test_same_seed_same_run() -> None:
    def run(seed: int) -> list[tuple[int, str]]:
        lab = two_node_lab(seed=seed, node=NodeParams(collection_efficiency=0.05))
        link = lab.link("alice", "bob")
        return [(p.attempts, p.bell_state) for p in (link.generate() for _ in range(200))]

    assert run(5) == run(5)
    assert run(5) != run(6)
