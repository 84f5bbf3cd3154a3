"""The attempt loop's shortcuts leave its physics alone: the loop set-up it keeps per link
(``hardware_clicks._LoopSetup``: link model and loop plan) is used again only while nothing
it came from changed, and a run with it draws, tags and delivers exactly what a run that
sets every loop up afresh does (instrument edits from SCPI and from Python, the herald
timeout, the lab's maximum, the drift step, the lab's parameters, a new program, the phase's
drift and random walk); the cheaper draws are the same draws."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from entanglement_helpers import clean_network
from qcodes.instrument import Instrument

from control.backend import open_network
from control.runs import build_orchestrator
from sequences.attempt_loop import AttemptLoop
from sim_backend import hardware_clicks
from sim_backend.hardware_clicks import AttemptLoopMixin
from sim_backend.physics.link import HeraldedLink
from sim_backend.wiring import DRIFT_STEP_S

LINK = ("alice", "bob")


#: dark counts (failed attempts click); a steady phase, or one that drifts and walks
STEADY: dict[str, Any] = {"detectors": {"dark_count_rate_hz": 2e5}}
MOVING: dict[str, Any] = {
    **STEADY,
    "phase_drift_rad_per_s": 1.5,
    "phase_random_walk_rad_per_sqrt_s": 0.4,
}


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {
        name: clean_network(tmp_path_factory.mktemp(name), link)
        for name, link in (("steady", STEADY), ("moving", MOVING))
    }


def _opened(path: Path, seed: int = 21) -> Any:
    """The network with its attempt programs uploaded (one loop run)."""
    network = open_network(path, seed=seed)
    build_orchestrator(network, AttemptLoop(alpha=0.1, max_attempts=0)).entangle(*LINK)
    return network


@pytest.fixture
def network(paths: dict[str, Path]):
    opened = _opened(paths["steady"])
    yield opened
    opened.close()
    Instrument.close_all()


def _setup(hw: Any) -> Any:
    return hw._link_wires(hw.stations[frozenset(LINK)]).setup


def _loop(hw: Any) -> tuple[bool, str, int, float]:
    return hw.realtime_attempt_loop(*LINK)


def _switch_channel(hw: Any) -> Any:
    wiring = hw.nodes["alice"]
    return hw.instruments[wiring.optical_switch].channels[wiring.optical_switch_channel]


def test_an_unchanged_setup_is_used_again(network) -> None:
    hw = network.simulated_lab
    _loop(hw)
    setup = _setup(hw)
    assert setup is not None and setup.programs[0] is not None
    _loop(hw)
    assert _setup(hw) is setup
    assert hw.lab.links[frozenset(LINK)].model is setup.model


def _edit_aom_from_python(network: Any) -> None:
    _switch_channel(network.simulated_lab).phase_deg += 90.0


def _edit_aom_by_scpi(network: Any) -> None:
    qrf = network.instrument("alice", "optical_switch")
    wiring = network.simulated_lab.nodes["alice"]
    qrf.set_phase_deg(
        qrf.get_phase_deg(wiring.optical_switch_channel) + 45.0, wiring.optical_switch_channel
    )


def _edit_laser_from_python(network: Any) -> None:
    laser = network.simulated_lab.instruments[network.simulated_lab.nodes["alice"].laser]
    laser.power_setpoint_mw = laser.power_setpoint_mw * 0.5


def _edit_detector_bias(network: Any) -> None:
    hw = network.simulated_lab
    detectors = hw.instruments[hw.stations[frozenset(LINK)].detectors]
    detectors.channels[1].bias_ua = detectors.channels[1].bias_ua + 0.5


def _edit_herald_timeout(network: Any) -> None:
    network.instrument("alice", "qubit_controller").set_herald_timeout_s(20e-6)


def _edit_max_attempts(network: Any) -> None:
    network.simulated_lab._max_attempts = 2


def _advance_drift_step(network: Any) -> None:
    network.simulated_lab.lab.clock.advance(2 * DRIFT_STEP_S)


def _replace_parameters(network: Any) -> None:
    hw = network.simulated_lab
    hw.lab.params = hw.lab.params.model_copy(
        update={"links": [lk.model_copy(update={"visibility": 0.5}) for lk in hw.lab.params.links]}
    )


def _new_program(network: Any) -> None:
    build_orchestrator(network, AttemptLoop(alpha=0.3, max_attempts=0)).entangle(*LINK)


EDITS = [
    _new_program,  # (its loop reads the tagger: before the clock jumps, not after)
    _edit_aom_from_python,
    _edit_aom_by_scpi,
    _edit_laser_from_python,
    _edit_detector_bias,
    _advance_drift_step,
    _replace_parameters,
    _edit_herald_timeout,  # (the last two cut the loops short)
    _edit_max_attempts,
]


@pytest.mark.parametrize("edit", EDITS, ids=lambda f: f.__name__.strip("_"))
def test_an_edit_sets_the_loop_up_again(network, edit) -> None:
    hw = network.simulated_lab
    _loop(hw)
    before = _setup(hw)
    _loop(hw)
    assert _setup(hw) is before  # kept while nothing changed
    edit(network)
    _loop(hw)
    assert _setup(hw) is not before


def _trace(network: Any, edits: list[Any]) -> list[Any]:
    """Loops between the edits: what each returned, the link's model and the pair's state,
    then every run, tag and generator state."""
    hw = network.simulated_lab
    link = hw.lab.links[frozenset(LINK)]
    trace: list[Any] = []
    for edit in [None, *edits]:
        if edit is not None:
            edit(network)
        for _ in range(4):
            trace.append(_loop(hw))
            trace.append(link.model.operating_point)
            trace.append(link.model.success_probability)
            qubits = [n.communication_qubit for n in link.nodes]
            trace.append(np.asarray(hw.lab.registry.density_matrix(qubits)).tolist())
    trace.append([asdict(run) for run in hw.runs])
    trace.append({name: list(buffer.tags) for name, buffer in hw._tag_buffers.items()})
    for rng in (hw._rng, hw._timing_rng, hw._phase_rng, link._rng):
        trace.append(rng.bit_generator.state)
    trace.append((link.attempts_made, hw.lab.clock.now))
    return trace


def _traced(path: Path, keep: bool, patch: pytest.MonkeyPatch) -> tuple[list[Any], list[bool]]:
    """``_trace`` of a network opened at ``path``, its loops set up afresh unless ``keep``;
    and whether each loop found its set-up reusable."""
    kept: list[bool] = []
    reusable = AttemptLoopMixin._kept_loop

    def spy(self: Any, *args: Any) -> Any:
        ready = reusable(self, *args) if keep else None
        kept.append(ready is not None)
        return ready

    patch.setattr(AttemptLoopMixin, "_kept_loop", spy)
    network = _opened(path)
    try:
        return _trace(network, EDITS), kept
    finally:
        network.close()
        Instrument.close_all()


@pytest.mark.parametrize("phase", ["steady", "moving"])
def test_a_kept_setup_runs_as_a_fresh_one(
    paths: dict[str, Path], phase: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same loops with the kept set-up and with every loop set up afresh: the same
    draws, tags, models and states, across every edit."""
    with monkeypatch.context() as patch:
        kept_trace, kept = _traced(paths[phase], True, patch)
    with monkeypatch.context() as patch:
        fresh_trace, _ = _traced(paths[phase], False, patch)
    assert any(kept)  # (a moving phase is compared before the model is derived again)
    assert kept_trace == fresh_trace


def test_the_jitter_draw_is_numpys_normal() -> None:
    """``_add_tag`` draws scale * standard_normal() for ``normal(0.0, scale)``: the same
    variates, leaving the generator in the same state."""
    for scale in (25.0, 3e-3, 1e4):
        a, b = np.random.default_rng(7), np.random.default_rng(7)
        drawn = [float(a.normal(0.0, scale)) for _ in range(5000)]
        assert [scale * b.standard_normal() for _ in range(5000)] == drawn
        assert a.bit_generator.state == b.bit_generator.state


def test_the_uniforms_are_the_generators_across_blocks() -> None:
    """The link's uniforms (kept as Python floats) are 1 - random(), block after block."""
    link = HeraldedLink.__new__(HeraldedLink)
    link._rng = np.random.default_rng(5)
    link._uniforms, link._next = [], 0
    drawn = [link._uniform() for _ in range(2 * HeraldedLink._BLOCK + 3)]
    reference = np.random.default_rng(5)
    expected = np.concatenate([1.0 - reference.random(HeraldedLink._BLOCK) for _ in range(3)])
    assert drawn == expected[: len(drawn)].tolist()
    assert all(type(u) is float for u in drawn)


def test_a_realtime_loop_leaves_the_awgs_stopped(network) -> None:
    """The real-time controllers' loop does not set the AWGs' run state (nothing reads it
    within the loop): they are stopped after it, as an AWG's own start leaves them."""
    hw = network.simulated_lab
    awgs = [hw.instruments[hw.nodes[node].awg] for node in LINK]
    for running in (False, True):
        for awg in awgs:
            awg.running = running
        _loop(hw)
        assert [awg.running for awg in awgs] == [False, False]


def test_awgs_that_do_not_count_their_edits_set_every_loop_up(
    network, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kept set-up takes the AWGs' programs as decoded: only AWGs that count their
    edits let a loop keep it."""
    hw = network.simulated_lab
    monkeypatch.setattr(hardware_clicks, "Watched", type("Unwatched", (), {}))
    _edit_laser_from_python(network)  # (the set-up kept before does not hold)
    for _ in range(2):
        _loop(hw)
        assert _setup(hw) is None
