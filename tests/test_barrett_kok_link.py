"""Barrett-Kok entanglement as an AWG program, run through the drivers and the node
controllers on the simulated lab: the uploaded program decides the physics (a Barrett-Kok
program on a link whose config says single click runs Barrett-Kok), and the results agree
with Barrett & Kok, PRA 71, 060310 (2005): p_success = eta_A eta_B / 2 per attempt, F = (1+V)/2
for visibility V, Psi+ for two clicks in the same detector and Psi- for different detectors
(Bernien et al., Nature 497, 86 (2013))."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from entanglement_helpers import CLEAN_LINK, CONFIGS, clean_network
from qcodes.instrument import Instrument

from control.backend import open_network
from control.runs import build_orchestrator, iter_entanglement, run_entangle
from drivers.errors import InstrumentErrorQueueError
from drivers.hal import AwgSequence, AwgWaveform
from sequences.analysis import fidelity_from_outcomes
from sequences.attempt_loop import AttemptLoop, compile_attempt_loop, entanglement_loop
from sequences.barrett_kok import BarrettKokLoop, compile_barrett_kok
from sequences.entanglement_loop import LoopError, build_loop
from sim_backend.physics.link import fibre_transmission
from sim_backend.physics.states import BELL_STATES, fidelity_to_pure

LINK = ("alice", "bob")


@pytest.fixture(scope="module")
def network_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clean_network(tmp_path_factory.mktemp("bk"))


@pytest.fixture
def opened(network_path: Path):
    opened: list = []

    def open_(seed: int = 5, path: Path | None = None):
        network = open_network(path or network_path, seed=seed)
        opened.append(network)
        return network

    yield open_
    for network in opened:
        network.close()
    Instrument.close_all()


def _eta(network, node_index: int) -> float:
    """One node's photon detection probability per excitation, from what the instruments
    make of the link (emission, conversion, detector efficiency) and the lab's physics
    (collection, fibre)."""
    params = network.simulated_lab.lab.params
    node = params.nodes[LINK[node_index]]
    link = params.link(*LINK)
    op = network.simulated_lab.operating_point(LINK)
    conversion = op.conversion_efficiency[node_index]
    fibre = fibre_transmission(link.fibre_length_km[node_index], link.fibre_attenuation_db_per_km)
    return (
        node.collection_efficiency
        * (node.frequency_conversion_efficiency if conversion is None else conversion)
        * op.emission_probability[node_index]
        * fibre
        * op.detector_efficiency[0]
    )


# ------------------------------------------------------------------ the program itself
def test_the_program_has_two_rounds_with_a_pi_pulse_between() -> None:
    loop = BarrettKokLoop(round_separation_us=1.0, max_attempts=100_000)
    sequence = compile_barrett_kok(loop)
    wave = sequence.waveforms[0]
    rate = loop.sample_rate_hz
    assert len(wave.samples) == round(loop.attempt_duration_us * 1e-6 * rate)
    edges = np.flatnonzero(np.diff(wave.marker1.astype(int), prepend=0) == 1)
    assert (edges[1] - edges[0]) / rate == pytest.approx(1.0e-6)  # the round separation
    # channel 1: a pi/2 pulse before round 1 and a pi pulse (twice the amplitude) before round 2
    full_scale = loop.awg_amplitude_vpp / 2
    before, between = wave.samples[: edges[0]], wave.samples[edges[0] + 1 : edges[1]]
    assert before.max() * full_scale == pytest.approx(loop.pi_pulse_amplitude_v / 2)
    assert between.max() * full_scale == pytest.approx(loop.pi_pulse_amplitude_v)
    # the repetition limit of one step splits the attempts; the herald jumps to 'done'
    assert [s.repetitions for s in sequence.steps[:-1]] == [65_536, 100_000 - 65_536]
    assert all(s.event_jump_to == len(sequence.steps) for s in sequence.steps[:-1])
    assert compile_attempt_loop(loop).waveforms[0].name == "bk_attempt"  # dispatch by scheme


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"round_separation_us": 0.0}, "round_separation_us=0.0"),
        ({"round_separation_us": 3.9}, "attempt_duration_us=3.8: too short for two rounds"),
        ({"max_time_us": -5.0}, "max_time_us=-5.0: Input should be greater than 0"),
        ({"max_time_us": math.nan}, "max_time_us=nan"),
        ({"max_time_us": 2.0}, "max_time_us=2: shorter than one attempt"),
        ({"alpha": 0.2}, "alpha=0.2: Extra inputs are not permitted"),
    ],
)
def test_bad_fields_are_named(fields: dict, message: str) -> None:
    with pytest.raises(LoopError, match=re.escape(message)):
        build_loop(BarrettKokLoop, **fields)


def test_unknown_scheme_is_named() -> None:
    with pytest.raises(LoopError, match=r"scheme='two_click': expected one of"):
        entanglement_loop("two_click")


def test_round_separation_must_leave_room_for_the_pi_pulse() -> None:
    loop = BarrettKokLoop(round_separation_us=0.05, microwave_pulse_ns=50, optical_pulse_ns=10)
    with pytest.raises(LoopError, match="round_separation_us=0.05: no room for the 50 ns pi"):
        compile_barrett_kok(loop)


# ------------------------------------------------------------ through the controllers
def test_barrett_kok_link_rate_fidelity_and_click_patterns(opened) -> None:
    network = opened(seed=5)
    orchestrator = build_orchestrator(network, BarrettKokLoop())
    orchestrator.prepare()
    shots = 1500
    records = list(iter_entanglement(orchestrator, *LINK, shots))
    hardware = network.simulated_lab
    model = hardware.link_model(LINK)
    assert model.params.scheme == "barrett_kok"  # the program decided, not the config

    # rate: p = eta_A eta_B / 2 per attempt (exact in the engine; sampled through the RTC)
    expected_p = _eta(network, 0) * _eta(network, 1) / 2
    assert model.success_probability == pytest.approx(expected_p, rel=1e-6)
    attempts = sum(r.attempts for r in records)
    p_hat = shots / attempts
    assert abs(p_hat - expected_p) < 4 * expected_p * math.sqrt((1 - expected_p) / shots)

    # fidelity: the engine's exact heralded state, the published formula and the estimate
    # from the XX/YY/ZZ outcomes agree
    visibility = CLEAN_LINK["visibility"]
    exact = (
        sum(
            p * fidelity_to_pure(state, BELL_STATES[pattern.bell_state])
            for p, state, pattern in zip(
                model.pattern_probabilities, model.states, model.patterns, strict=True
            )
        )
        / model.success_probability
    )
    assert exact == pytest.approx((1 + visibility) / 2, abs=2e-3)
    assert np.mean([r.exact_fidelity for r in records]) == pytest.approx(exact, abs=1e-9)
    estimate = fidelity_from_outcomes(
        [r.bell_state for r in records],
        [r.basis for r in records],
        [r.outcome_a for r in records],
        [r.outcome_b for r in records],
    )
    assert abs(estimate.value - exact) < 3 * estimate.stderr, (estimate, exact)

    # the heralded Bell state follows the click pattern, as the RTC reported it
    heralded = [run for run in hardware.runs if run.heralds]
    assert len(heralded) == shots and all(run.scheme == "barrett_kok" for run in heralded)
    for run, record in zip(heralded, records, strict=True):
        first, second = run.last_clicks
        assert {first, second} <= {"+", "-"}
        assert run.last_bell_state == ("PSI+" if first == second else "PSI-")
        assert record.bell_state == run.last_bell_state
    plus = sum(r.bell_state == "PSI+" for r in records)
    assert abs(plus - shots / 2) < 4 * math.sqrt(shots / 4)


def test_the_station_sees_one_click_per_round(opened) -> None:
    network = opened(seed=3)
    orchestrator = build_orchestrator(network, BarrettKokLoop(round_separation_us=1.5))
    orchestrator.prepare()
    tagger = network.instrument("h_ab", "time_tagger")
    rtc = network.instrument("alice", "qubit_controller")
    for _ in range(5):
        tagger.read_tags()
        orchestrator.entangle_until_herald(*LINK)
        tags = tagger.read_tags()
        record = rtc.last_herald("bob")
        channel = {"+": 1, "-": 2}
        assert [int(c) for c in tags["channel"][-2:]] == [channel[c] for c in record.clicks]
        assert int(np.diff(tags["time_ps"][-2:])[0]) == 1_500_000  # the round separation
        assert record.bell_state == ("PSI+" if record.clicks in ("++", "--") else "PSI-")
        for node in LINK:
            for pair in list(orchestrator.nodes[node].pairs):
                orchestrator.nodes[node].release(pair)


def test_alpha_does_not_change_a_barrett_kok_run(network_path: Path) -> None:
    runs = [
        run_entangle(network_path, 150, seed=8, alpha=alpha, scheme="barrett_kok", db_path=None)
        for alpha in (0.05, 0.3)
    ]
    for key in ("attempts", "bell_states", "fidelity_estimate", "exact_fidelity_mean"):
        assert runs[0][key] == runs[1][key]
    assert runs[0]["parameters"]["scheme"] == "barrett_kok"
    assert runs[0]["parameters"]["alpha"] is None
    Instrument.close_all()


def test_barrett_kok_beats_single_click_under_phase_noise(network_path: Path) -> None:
    """With 0.6 rad of optical phase noise between the arms single click loses coherence;
    Barrett-Kok is insensitive to it (the phase drops out between the rounds)."""
    bk = run_entangle(network_path, 300, seed=2, scheme="barrett_kok", db_path=None)
    sc = run_entangle(network_path, 300, seed=2, alpha=0.05, db_path=None)
    assert bk["exact_fidelity_mean"] > sc["exact_fidelity_mean"] + 0.05
    Instrument.close_all()


# ------------------------------------------------------- what the lab cannot run
def _upload_and_run(network, sequences) -> None:
    awgs = [network.instrument(node, "awg") for node in LINK]
    for awg, sequence in zip(awgs, sequences, strict=True):
        awg.upload_sequence(sequence)
    for awg in awgs:
        awg.run()


def test_nodes_playing_different_schemes_are_refused(opened) -> None:
    network = opened()
    build_orchestrator(network, BarrettKokLoop()).prepare()
    sequences = [
        compile_attempt_loop(BarrettKokLoop()),
        compile_attempt_loop(AttemptLoop(alpha=0.1)),
    ]
    with pytest.raises(InstrumentErrorQueueError, match="expected the same attempt loop"):
        _upload_and_run(network, sequences)
    assert not any(network.instrument(n, "awg").is_running() for n in LINK)


def test_a_barrett_kok_program_without_a_pi_pulse_is_refused(opened) -> None:
    network = opened()
    build_orchestrator(network, BarrettKokLoop()).prepare()
    miscalibrated = compile_attempt_loop(BarrettKokLoop(pi_pulse_amplitude_v=0.25))
    with pytest.raises(InstrumentErrorQueueError, match=r"flips the spin with probability 0\.500"):
        _upload_and_run(network, [miscalibrated, miscalibrated])


def test_rounds_the_station_cannot_tell_apart_are_refused(opened, tmp_path: Path) -> None:
    slow = clean_network(tmp_path, {"detectors": {"detection_window_ns": 500.0}})
    network = opened(path=slow)
    build_orchestrator(network, BarrettKokLoop()).prepare()
    close = compile_attempt_loop(BarrettKokLoop(round_separation_us=0.2))
    with pytest.raises(InstrumentErrorQueueError, match="shorter than the station's detection"):
        _upload_and_run(network, [close, close])


def test_a_barrett_kok_loop_crosses_the_process_boundary() -> None:
    """Node processes receive the loop as a validated message: the scheme picks the model."""
    from control.node_service import ArmArgs

    sent = BarrettKokLoop(round_separation_us=1.5, max_time_us=250.0)
    received = ArmArgs.model_validate({"loop": sent.model_dump()}).loop
    assert received == sent and isinstance(received, BarrettKokLoop)
    single = ArmArgs.model_validate({"loop": AttemptLoop(alpha=0.2).model_dump()}).loop
    assert isinstance(single, AttemptLoop) and single.alpha == 0.2


def test_the_ion_example_runs_barrett_kok_at_its_published_scale(opened) -> None:
    """lab_configs/ion_oxford.network.yaml (Stephenson et al., PRL 124, 110501 (2020): success
    probability ~2e-4 per attempt, F ~ 0.94): through the controllers the rate per attempt is
    eta_A eta_B / 2 (with the detectors' dark counts, a few 1e-9 more) and F is near (1+V)/2."""
    network = opened(seed=20, path=CONFIGS / "ion_oxford.network.yaml")
    orchestrator = build_orchestrator(
        network, BarrettKokLoop(attempt_duration_us=1.0, round_separation_us=0.5)
    )
    orchestrator.prepare()
    shots = 300
    records = list(iter_entanglement(orchestrator, *LINK, shots))
    expected_p = _eta(network, 0) * _eta(network, 1) / 2
    assert 1e-4 < expected_p < 3e-4
    model = network.simulated_lab.link_model(LINK)
    assert model.success_probability == pytest.approx(expected_p, rel=1e-3)
    p_hat = shots / sum(r.attempts for r in records)
    assert abs(p_hat - expected_p) < 4 * expected_p * math.sqrt((1 - expected_p) / shots)
    visibility = network.simulated_lab.lab.params.link(*LINK).visibility
    mean_exact = float(np.mean([r.exact_fidelity for r in records]))
    assert (1 + visibility) / 2 - 0.01 < mean_exact <= (1 + visibility) / 2


def test_a_program_with_three_optical_pulses_is_refused(opened) -> None:
    network = opened()
    build_orchestrator(network, BarrettKokLoop()).prepare()
    sequence = compile_attempt_loop(BarrettKokLoop())
    wave = sequence.waveforms[0]
    marker = wave.marker1.copy()
    marker[-20:-10] = True  # a third optical pulse at the end of the attempt
    three = AwgSequence(
        [AwgWaveform(wave.name, wave.samples, marker, wave.marker2), *sequence.waveforms[1:]],
        sequence.steps,
        sequence.sample_rate_hz,
        sequence.amplitudes_vpp,
    )
    with pytest.raises(InstrumentErrorQueueError, match="raises marker 1 .* 3 times; expected"):
        _upload_and_run(network, [three, three])
