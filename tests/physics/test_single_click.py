"""Single-click heralding sampled from the simulated physics, checked against the published
first-order model: p_success ~ 2 alpha eta and F ~ (1 - alpha)(1 + sqrt(V) e^{-sigma^2/2})/2
(Humphreys et al., Nature 558, 268 (2018), Methods; Hermans et al., New J. Phys. 25,
013011 (2023), sec. 2). eta is kept small so the first-order formulas hold to < 0.5%."""

from __future__ import annotations

import math

import pytest

from sim_backend.params import DetectorParams, NodeParams

from .helpers import assert_within, geometric_p_stderr, sample_link_fidelity, two_node_lab

ETA = 0.01  # total detection probability of one emitted photon


def _lab(alpha: float, seed: int = 3, **fields):
    return two_node_lab(
        seed=seed,
        node=NodeParams(collection_efficiency=ETA),
        detectors=DetectorParams(efficiency=1.0, dark_count_rate_hz=0.0),
        scheme="single_click",
        alpha=alpha,
        **fields,
    )


@pytest.mark.parametrize("alpha", [0.05, 0.2])
def test_success_probability_and_fidelity_follow_alpha(alpha: float) -> None:
    lab = _lab(alpha)
    fidelity, p_hat, _ = sample_link_fidelity(lab, shots=12000)
    p_expected = 2 * alpha * ETA
    assert_within(
        p_hat, p_expected, geometric_p_stderr(p_expected, 12000), slack=0.005 * p_expected
    )
    assert_within(fidelity.value, 1 - alpha, fidelity.stderr, slack=0.005)


@pytest.mark.parametrize(("visibility", "phase_std"), [(0.8, 0.0), (1.0, 0.5), (0.7, 0.4)])
def test_fidelity_falls_with_visibility_and_phase_noise(
    visibility: float, phase_std: float
) -> None:
    alpha = 0.05
    lab = _lab(alpha, visibility=visibility, phase_noise_std_rad=phase_std)
    fidelity, _, _ = sample_link_fidelity(lab, shots=12000)
    expected = (1 - alpha) * (1 + math.sqrt(visibility) * math.exp(-(phase_std**2) / 2)) / 2
    assert_within(fidelity.value, expected, fidelity.stderr, slack=0.005)
    assert fidelity.value < 1 - alpha - 3 * fidelity.stderr  # and it did fall


def test_detector_click_decides_the_heralded_bell_state() -> None:
    """'+' heralds Psi+ and '-' heralds Psi-, each about half of the time; the computed states
    agree with the protocol's label."""
    from sim_backend.physics.states import BELL_STATES, fidelity_to_pure

    lab = _lab(0.05)
    model = lab.link("alice", "bob").model
    labels = {p.clicks: p.bell_state for p in model.patterns}
    assert labels == {("+",): "PSI+", ("-",): "PSI-"}
    for pattern, state in zip(model.patterns, model.states, strict=True):
        assert fidelity_to_pure(state, BELL_STATES[pattern.bell_state]) == pytest.approx(
            0.95, abs=2e-3
        )
    link = lab.link("alice", "bob")
    heralds = [link.generate().bell_state for _ in range(4000)]
    share = heralds.count("PSI+") / len(heralds)
    assert_within(share, 0.5, math.sqrt(0.25 / 4000))


def test_dark_counts_add_false_heralds() -> None:
    """With dark counts comparable to the signal, the rate rises and fidelity drops."""
    clean = _lab(0.1, seed=5)
    window_ns = 1000.0
    dark_rate = 100.0  # 1e-4 per 1 us window per detector, vs 2e-3 signal
    noisy = two_node_lab(
        seed=5,
        node=NodeParams(collection_efficiency=ETA),
        detectors=DetectorParams(
            efficiency=1.0, dark_count_rate_hz=dark_rate, detection_window_ns=window_ns
        ),
        alpha=0.1,
    )
    f_clean, p_clean, _ = sample_link_fidelity(clean, 9000)
    f_noisy, p_noisy, _ = sample_link_fidelity(noisy, 9000)
    p_dark = 1 - math.exp(-dark_rate * window_ns * 1e-9)
    assert_within(
        p_noisy - p_clean, 2 * p_dark, geometric_p_stderr(p_noisy, 9000) * 1.5, slack=2e-5
    )
    # a dark-count herald leaves the spins in their pre-emission product state:
    # F_dark = (1-a)a ... about 0.45 of the time near the target; overall F drops measurably
    assert f_noisy.value < f_clean.value - 3 * math.hypot(f_noisy.stderr, f_clean.stderr)
