"""The optical phase walk's variates, drawn ahead in blocks, are the variates single draws
give, in the same order; a new phase generator starts a new block."""

from __future__ import annotations

import numpy as np

from sim_backend.hardware_link import LinkPhysicsMixin


class _Lab(LinkPhysicsMixin):
    def __init__(self, seed: int) -> None:
        self._phase_rng = np.random.default_rng(seed)


def test_phase_walk_variates_are_the_single_draws() -> None:
    lab = _Lab(11)
    single = np.random.default_rng(11)
    assert [lab._phase_normal() for _ in range(700)] == [
        single.standard_normal() for _ in range(700)
    ]


def test_a_new_phase_generator_starts_a_new_block() -> None:
    lab = _Lab(3)
    lab._phase_normal()
    lab._phase_rng = np.random.default_rng(5)
    assert lab._phase_normal() == np.random.default_rng(5).standard_normal()
