"""Barrett-Kok heralding sampled from the simulated physics: p_success ~ eta^2/2 and F ~ 1
when ideal (Barrett & Kok, PRA 71, 060310 (2005)); the two-photon interference makes the
coherence proportional to the visibility, F = (1 + V)/2 (Bernien et al., Nature 497, 86
(2013), Supplementary Information); dark counts herald uncorrelated states."""

from __future__ import annotations

import math

import pytest

from sim_backend.params import DetectorParams, NodeParams

from .helpers import assert_within, geometric_p_stderr, sample_link_fidelity, two_node_lab

ETA = 0.2


def _lab(seed: int = 7, dark_rate_hz: float = 0.0, window_ns: float = 30.0, **fields):
    return two_node_lab(
        seed=seed,
        node=NodeParams(collection_efficiency=ETA),
        detectors=DetectorParams(
            efficiency=1.0, dark_count_rate_hz=dark_rate_hz, detection_window_ns=window_ns
        ),
        scheme="barrett_kok",
        **fields,
    )


def test_ideal_success_probability_and_fidelity() -> None:
    fidelity, p_hat, _ = sample_link_fidelity(_lab(), shots=9000)
    # one photon per round from the |01>, |10> half of the prepared state: (1/2) eta^2
    expected = ETA**2 / 2
    assert_within(p_hat, expected, geometric_p_stderr(expected, 9000))
    assert fidelity.value > 1 - 3 * fidelity.stderr - 1e-9
    assert fidelity.value == pytest.approx(1.0, abs=3 * fidelity.stderr + 1e-9)


@pytest.mark.parametrize("visibility", [0.9, 0.6])
def test_fidelity_falls_with_distinguishability(visibility: float) -> None:
    fidelity, _, _ = sample_link_fidelity(_lab(visibility=visibility), shots=9000)
    assert_within(fidelity.value, (1 + visibility) / 2, fidelity.stderr, slack=0.003)


def test_fidelity_falls_with_dark_counts() -> None:
    """Dark counts add heralds with no photon behind one of the clicks. Counting by hand for
    threshold detectors (signal eta per photon, dark probability d per detector and window,
    V = 1 so two photons bunch), per spin configuration of the prepared |+>|+>:
      |01>, |10> (1/2): one photon per round, P1 = eta(1-d) + (1-eta) 2d(1-d) per round;
      |00>, |11> (1/4 each): an empty round, P0 = 2d(1-d), and a two-photon round,
                  P2 = (1-(1-eta)^2)(1-d) + (1-eta)^2 2d(1-d).
    p_success = P1^2/2 + P0 P2/2. The sampled fidelity falls below the dark-free value."""
    window_ns = 1000.0
    dark_rate = 20e3  # d ~ 0.02 per window: comparable to the signal
    d = 1 - math.exp(-dark_rate * window_ns * 1e-9)
    clean, _, _ = sample_link_fidelity(_lab(seed=9), shots=6000)
    noisy, p_noisy, _ = sample_link_fidelity(
        _lab(seed=9, dark_rate_hz=dark_rate, window_ns=window_ns), shots=6000
    )
    assert noisy.value < clean.value - 3 * math.hypot(noisy.stderr, clean.stderr)
    p1 = ETA * (1 - d) + (1 - ETA) * 2 * d * (1 - d)
    p0 = 2 * d * (1 - d)
    p2 = (1 - (1 - ETA) ** 2) * (1 - d) + (1 - ETA) ** 2 * 2 * d * (1 - d)
    expected_p = p1**2 / 2 + p0 * p2 / 2
    assert_within(p_noisy, expected_p, geometric_p_stderr(expected_p, 6000))


def test_dead_detector_in_round_two_blocks_same_detector_heralds() -> None:
    """Dead time longer than the round separation: only '+-' and '-+' patterns remain,
    all heralding Psi-, and the success probability halves."""
    lab = two_node_lab(
        node=NodeParams(collection_efficiency=ETA),
        detectors=DetectorParams(efficiency=1.0, dead_time_ns=2000.0),
        scheme="barrett_kok",
        bk_round_separation_us=1.0,
    )
    model = lab.link("alice", "bob").model
    assert {p.clicks for p in model.patterns} == {("+", "-"), ("-", "+")}
    assert {p.bell_state for p in model.patterns} == {"PSI-"}
    assert model.success_probability == pytest.approx(ETA**2 / 4, rel=0.02)


@pytest.mark.parametrize("scheme", ["single_click", "barrett_kok"])
def test_click_patterns_form_a_complete_measurement(scheme: str) -> None:
    """The POVM elements of all click patterns sum to the identity: their probabilities per
    attempt sum to one, with loss, dark counts and distinguishability present."""
    lab = two_node_lab(
        node=NodeParams(collection_efficiency=0.3, double_excitation_probability=0.05),
        detectors=DetectorParams(efficiency=0.7, dark_count_rate_hz=1e5, detection_window_ns=100),
        scheme=scheme,
        visibility=0.8,
        phase_noise_std_rad=0.3,
    )
    model = lab.link("alice", "bob").model
    assert sum(model.outcome_probabilities.values()) == pytest.approx(1.0, abs=1e-12)
    assert len(model.outcome_probabilities) == (4 if scheme == "single_click" else 16)
