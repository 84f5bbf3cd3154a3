"""Variates drawn ahead in blocks (the jitter of clicks, the optical phase walk) are the
variates single draws give, in the same order, also when other kinds of draw come between."""

from __future__ import annotations

import numpy as np

from sim_backend.hardware_link import LinkPhysicsMixin
from sim_backend.hardware_tags import ClickTagsMixin


class _Lab(ClickTagsMixin, LinkPhysicsMixin):
    def __init__(self, seed: int) -> None:
        self._timing_rng = np.random.default_rng(seed)
        self._phase_rng = np.random.default_rng(seed + 1)


def test_jitter_variates_with_other_draws_between() -> None:
    lab = _Lab(7)
    single = np.random.default_rng(7)
    pattern = ["n", "n", "i", "n", "r", "r", "n", *["n"] * 600, "i", "n", "r", "n"]
    for kind in pattern:
        if kind == "n":
            assert lab._jitter_normal() == single.standard_normal()
        elif kind == "i":
            assert int(lab._timing_draws().integers(2)) == int(single.integers(2))
        else:
            assert lab._timing_draws().random() == single.random()
    lab._timing_draws()  # undoes the block drawn ahead: the generator is where single draws left it
    assert lab._timing_rng.bit_generator.state == single.bit_generator.state


def test_a_new_timing_generator_starts_a_new_block() -> None:
    lab = _Lab(3)
    lab._jitter_normal()
    lab._timing_rng = np.random.default_rng(5)
    assert lab._jitter_normal() == np.random.default_rng(5).standard_normal()


def test_phase_walk_variates() -> None:
    lab = _Lab(11)
    single = np.random.default_rng(12)
    assert [lab._phase_normal() for _ in range(700)] == [
        single.standard_normal() for _ in range(700)
    ]
