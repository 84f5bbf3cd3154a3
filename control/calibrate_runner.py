"""Running the calibration plan: each step's routine (the :data:`ROUTINES` table), retries,
skips, and the store.

A failed step (a failing result or an exception) is retried ``settings.retries`` times; a
step whose dependency did not pass is skipped, naming the failure that caused it. Every result
is recorded in the calibration store, where a failure leaves the previous value in force. The
optical steps light the nodes at the best known operating point
(``control.calibrated``: the store's latest passed values, else the nominal ones).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sequences.attempt_loop import NodeOptics, prepare_node, prepare_station
from sequences.calibrations import (
    CalibrationResult,
    HeraldedPairs,
    LinkProbe,
    TwoNodeSource,
    calibrate_channel_delays,
    calibrate_detectors,
    calibrate_interferometer_phase,
    converter_phase_matching_scan,
    laser_resonance_scan,
    measure_hom_visibility,
    readout_fidelity,
)

from .backend import Network
from .calibrate_plan import CalibrationSettings, Step
from .calibrate_qubit import alpha_step, rabi_step, ramsey_step
from .calibrate_report import StepOutcome
from .calibrated import calibrated_optics, calibrated_tagger_delays, phase_actuator
from .calibration_store import CalibrationStore

log = logging.getLogger(__name__)


class Runner:
    """Runs steps on an open network; the routines reach the instruments through it."""

    def __init__(self, network: Network, store: CalibrationStore, settings: CalibrationSettings):
        self.network = network
        self.store = store
        self.settings = settings
        self.config = network.loaded.config
        self.thresholds = self.config.calibration

    def run_step(self, step: Step, done: dict[str, StepOutcome]) -> StepOutcome:
        blocked = [d for d in step.depends_on if done[d].status != "passed"]
        if blocked:
            return StepOutcome(step, "skipped", reason=_skip_reason(blocked, done))
        routine = ROUTINES[step.kind]
        outcome = StepOutcome(step, "failed")
        for _ in range(1 + self.settings.retries):
            outcome.attempts += 1
            try:
                result = routine(self, step)
            except Exception as exc:  # a step's error must not stop the others
                log.exception("%s: attempt %d raised", step.name, outcome.attempts)
                reason = f"unexpected error: {type(exc).__name__}: {exc}"
                failures = self.network.safe_state()  # unknown state: make it safe at once
                if failures:
                    reason += f" (safe state failed: {failures})"
                outcome.attempt_reasons.append(reason)
                continue
            outcome.result = result
            self.store.record_result(step.store_prefix, result)
            outcome.attempt_reasons.append(result.reason)
            if result.passed:
                outcome.status = "passed"
                break
        outcome.reason = outcome.attempt_reasons[-1]
        if outcome.status == "failed":
            outcome.reason = (
                f"failed {outcome.attempts} times: {outcome.reason}; previous value in force"
            )
        elif outcome.attempts > 1:
            outcome.reason += f" (after a failed attempt: {outcome.attempt_reasons[0]})"
        return outcome

    # ------------------------------------------------------------ operating point
    def latest(self, key: str, default: float) -> float:
        """The store's value in force for ``key``, else ``default``."""
        record = self.store.latest(key)
        return record.value if record is not None else default

    def optics(self, node: str) -> NodeOptics:
        """The node's best known operating point (store, else nominal)."""
        s = self.settings
        nominal = NodeOptics(
            laser_wavelength_nm=s.nominal_wavelength_nm,
            laser_power_mw=s.laser_power_mw,
            converter_pump_mw=s.converter_pump_mw,
            converter_temperature_c=s.nominal_converter_temperature_c,
        )
        return calibrated_optics(self.store, self.config, node, nominal)

    def light(self, step: Step, both: bool = False) -> None:
        """Both nodes of the step's link prepared for attempts at the best known operating
        point (only the first node's laser on unless ``both``), the station's detectors
        biased and its tagger at the delays in force."""
        assert step.link is not None and step.station is not None
        net = self.network
        for node in step.link:
            roles = self.config.nodes[node].instruments
            prepare_node(
                self.optics(node),
                net.instrument(node, "laser"),
                net.instrument(node, "optical_switch"),
                net.instrument(node, "microwave"),
                net.instrument(node, "frequency_converter")
                if "frequency_converter" in roles
                else None,
            )
        if not both:
            net.instrument(step.link[1], "laser").set_output(False)
        hs = self.config.heralding_stations[step.station]
        prepare_station(
            net.instrument(step.station, "detectors"),
            net.instrument(step.station, "time_tagger"),
            (hs.detectors.plus, hs.detectors.minus),
            self.channels(step),
            bias_ua=self.settings.detector_bias_ua,
            delays_ps=calibrated_tagger_delays(self.store, self.config, step.station),
        )

    def channels(self, step: Step) -> tuple[int, int]:
        assert step.station is not None
        tagger = self.config.heralding_stations[step.station].time_tagger
        return tagger.plus, tagger.minus

    def probe(self, step: Step) -> LinkProbe:
        """One node lit (see :meth:`light`), clicks counted on the station's tagger."""
        assert step.link is not None and step.station is not None
        self.light(step)
        awgs = [self.network.instrument(n, "awg") for n in step.link]
        tagger = self.network.instrument(step.station, "time_tagger")
        return LinkProbe(awgs, tagger, channels=self.channels(step))

    def source(self, step: Step, both: bool = True) -> TwoNodeSource:
        """Attempt loops on both nodes in the station's link order (node B's pulse is the one
        delayed); both nodes lit, or only the step's first node unless ``both``."""
        assert step.link is not None and step.station is not None
        self.light(step, both=both)
        link = self.config.heralding_stations[step.station].link
        return TwoNodeSource(
            [self.network.instrument(n, "awg") for n in link],
            self.network.instrument(step.station, "time_tagger"),
            channels=self.channels(step),
        )


# ------------------------------------------------------------------------ the routines
def _detectors(run: Runner, step: Step) -> CalibrationResult:
    assert step.link is not None
    probe = run.probe(step)
    return calibrate_detectors(
        probe,
        run.network.instrument(step.link[0], "qubit_controller"),
        [run.network.instrument(n, "laser") for n in step.link],
        dark_time_s=run.settings.detector_dark_time_s,
        attempts=run.settings.detector_attempts,
    )


def _laser_resonance(run: Runner, step: Step) -> CalibrationResult:
    probe = run.probe(step)
    s = run.settings
    return laser_resonance_scan(
        run.network.instrument(step.owner, "laser"),
        probe,
        centre_guess_nm=run.optics(step.owner).laser_wavelength_nm,
        span_nm=s.laser_span_nm,
        step_nm=s.laser_step_nm,
        attempts_per_point=s.laser_attempts_per_point,
        power_mw=s.laser_power_mw,
    )


def _phase_matching(run: Runner, step: Step) -> CalibrationResult:
    probe = run.probe(step)
    s = run.settings
    guess = run.optics(step.owner).converter_temperature_c
    return converter_phase_matching_scan(
        run.network.instrument(step.owner, "frequency_converter"),
        probe,
        centre_guess_c=s.nominal_converter_temperature_c if guess is None else guess,
        span_c=s.converter_span_c,
        step_c=s.converter_step_c,
        attempts_per_point=s.converter_attempts_per_point,
    )


def _readout(run: Runner, step: Step) -> CalibrationResult:
    return readout_fidelity(
        run.network.instrument(step.owner, "qubit_controller"), shots=run.settings.readout_shots
    )


def _channel_delays(run: Runner, step: Step) -> CalibrationResult:
    assert step.station is not None
    source = run.source(step, both=False)  # single clicks of one node (docs/calibrations.md)
    return calibrate_channel_delays(
        source,
        attempts=run.thresholds.channel_delays.attempts or run.settings.channel_delay_attempts,
        base_delays_ps=calibrated_tagger_delays(run.store, run.config, step.station),
        max_residual_ps=run.thresholds.max_channel_delay_residual_ps,
    )


def _hom_visibility(run: Runner, step: Step) -> CalibrationResult:
    return measure_hom_visibility(
        run.source(step),
        offsets_ns=run.settings.hom_offsets_ns,
        attempts_per_point=run.thresholds.hom.attempts or run.settings.hom_attempts_per_point,
        min_visibility=run.thresholds.min_hom_visibility,
    )


def _interferometer_phase(run: Runner, step: Step) -> CalibrationResult:
    assert step.station is not None
    run.light(step, both=True)
    net, s = run.network, run.settings
    link = run.config.heralding_stations[step.station].link
    actuator = phase_actuator(run.config, step.station)
    for node in link:  # the reference arm at 0 deg; the actuator's phase is what is scanned
        if node != actuator:
            net.instrument(node, "optical_switch").set_phase_deg(
                0.0, channel=run.config.nodes[node].optical_switch_channel
            )
    order = (actuator, next(n for n in link if n != actuator))
    pairs = HeraldedPairs(
        [net.instrument(n, "awg") for n in order],
        [net.instrument(n, "qubit_controller") for n in order],
        (order[0], order[1]),
        alpha=s.phase_alpha,
    )
    return calibrate_interferometer_phase(
        pairs,
        net.instrument(actuator, "optical_switch"),
        actuator_channel=run.config.nodes[actuator].optical_switch_channel,
        points=s.phase_points,
        pairs_per_point=s.phase_pairs_per_point,
        min_contrast=run.thresholds.min_phase_contrast,
        max_residual_rad=run.thresholds.max_phase_residual_rad,
    )


#: step kind -> routine (add a row for a new kind; see ``control.calibrate_plan``)
ROUTINES: dict[str, Callable[[Runner, Step], CalibrationResult]] = {
    "detectors": _detectors,
    "laser_resonance": _laser_resonance,
    "phase_matching": _phase_matching,
    "readout": _readout,
    "channel_delays": _channel_delays,
    "hom_visibility": _hom_visibility,
    "interferometer_phase": _interferometer_phase,
    "rabi": rabi_step,
    "ramsey": ramsey_step,
    "alpha": alpha_step,
}


def _root_failures(name: str, done: dict[str, StepOutcome]) -> set[str]:
    """The failed steps that a step's skip goes back to (itself if it failed)."""
    outcome = done[name]
    if outcome.status == "failed":
        return {name}
    roots: set[str] = set()
    for dep in outcome.step.depends_on:
        if done[dep].status != "passed":
            roots |= _root_failures(dep, done)
    return roots


def _skip_reason(blocked: list[str], done: dict[str, StepOutcome]) -> str:
    """'skipped: X failed' or 'skipped: X, Y were skipped (Z failed)', naming the root
    causes once."""
    failed = [name for name in blocked if done[name].status == "failed"]
    skipped = [name for name in blocked if done[name].status != "failed"]
    parts = [f"{name} failed" for name in failed]
    if skipped:
        roots: set[str] = set()
        for name in skipped:
            roots |= _root_failures(name, done)
        verb = "was" if len(skipped) == 1 else "were"
        causes = ", ".join(f"{r} failed" for r in sorted(roots))
        parts.append(f"{', '.join(skipped)} {verb} skipped ({causes})")
    return "skipped: " + "; ".join(parts)
