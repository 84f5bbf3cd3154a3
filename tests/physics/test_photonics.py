"""Linear optics of the heralding station: beam splitter, Hong-Ou-Mandel interference, loss."""

from __future__ import annotations

import numpy as np
import pytest

from sim_backend.physics.photonics import (
    DetectorPair,
    FockSpace,
    click_pattern_operators,
    emitted_photon_states,
)


def test_beam_splitter_is_unitary() -> None:
    space = FockSpace()
    bs = space.beam_splitter(0, 1)
    assert np.allclose(bs.conj().T @ bs, np.eye(space.dim))


@pytest.mark.parametrize("max_photons", [1, 2, 3])
def test_beam_splitter_is_the_matrix_exponential_of_its_generator(max_photons: int) -> None:
    """exp(pi/4 (a^dag b - a b^dag)) from the eigenbasis agrees with scipy's Pade ``expm``,
    and splits one photon in mode a evenly between modes a and b."""
    from scipy.linalg import expm

    space = FockSpace(max_photons=max_photons)
    generator = space.hopping(0, 1) - space.hopping(1, 0)
    bs = space.beam_splitter(0, 1)
    assert np.abs(bs - expm(np.pi / 4 * generator)).max() < 1e-14
    in_a = space.annihilation(0).conj().T @ space.vacuum()
    in_b = space.annihilation(1).conj().T @ space.vacuum()
    out = bs @ in_a
    assert abs(in_a.conj() @ out) ** 2 == pytest.approx(0.5, abs=1e-14)
    assert abs(in_b.conj() @ out) ** 2 == pytest.approx(0.5, abs=1e-14)


@pytest.mark.parametrize("visibility", [1.0, 0.9, 0.5, 0.0])
def test_hong_ou_mandel_dip(visibility: float) -> None:
    """Two photons with mode overlap |<m_A|m_B>|^2 = V give coincidences with probability
    (1 - V)/2 (Hong, Ou & Mandel, PRL 59, 2044 (1987))."""
    space = FockSpace()
    ops = click_pattern_operators(space, DetectorPair(1.0, 0.0), 1.0, 1.0)
    two_photons = emitted_photon_states(space, visibility)[(1, 1)]
    p_both = float(np.real(two_photons.conj() @ ops["both"] @ two_photons))
    assert p_both == pytest.approx((1 - visibility) / 2, abs=1e-12)


@pytest.mark.parametrize(("t_a", "eta"), [(0.3, 0.8), (1.0, 0.5)])
def test_single_photon_click_probability_is_transmission_times_efficiency(
    t_a: float, eta: float
) -> None:
    space = FockSpace()
    ops = click_pattern_operators(space, DetectorPair(eta, 0.0), t_a, 1.0)
    photon_from_a = emitted_photon_states(space, 1.0)[(1, 0)]
    p_click = sum(
        float(np.real(photon_from_a.conj() @ ops[k] @ photon_from_a)) for k in ("+", "-", "both")
    )
    assert p_click == pytest.approx(t_a * eta, abs=1e-12)


def test_dark_counts_click_without_light() -> None:
    space = FockSpace()
    d = 0.01
    ops = click_pattern_operators(space, DetectorPair(0.9, d), 1.0, 1.0)
    vac = space.vacuum()
    assert float(np.real(vac.conj() @ ops["+"] @ vac)) == pytest.approx(d * (1 - d))
    assert float(np.real(vac.conj() @ ops["both"] @ vac)) == pytest.approx(d * d)
