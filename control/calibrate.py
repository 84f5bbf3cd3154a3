"""Unattended calibration: every calibration routine of a network, in dependency order, with
retries, skips, the calibration store and a report; for a scheduler (cron, systemd timer).

The plan is data: a list of :class:`Step` with ``depends_on`` names (:func:`plan_calibrations`).
For every heralding station serving a selected node the detectors are calibrated first
(``<station>.detectors``); each node's laser resonance (``<node>.laser_resonance``) depends on
the detector steps of its stations; its converter's phase matching
(``<node>.phase_matching``) depends on its laser resonance; its qubit readout
(``<node>.readout``, through the ``qubit_controller`` role) depends on nothing.

:func:`run_calibrations` runs the plan: a failed step (a failing result or an exception) is
retried once; a step whose dependency did not pass is skipped, naming the failure that caused
it. Every result is recorded in the calibration store, where a failure leaves the previous value
in force. The optical steps light one node of a link (its partner's laser off) at the best
known operating point: the store's latest passed values, else the nominal operating point of
:class:`CalibrationSettings`. At the end, and on any exception, every instrument goes to its
safe state before the network is closed. The report (``summary.txt`` and one PNG per scan)
goes to ``report_dir``; :attr:`CalibrationReport.exit_code` is 0 only if everything passed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sequences.attempt_loop import NodeOptics, prepare_node, prepare_station
from sequences.calibrations import (
    CalibrationResult,
    LinkProbe,
    Measured,
    calibrate_detectors,
    converter_phase_matching_scan,
    laser_resonance_scan,
    readout_fidelity,
)
from sequences.calibrations.converter_phase_matching import sinc2
from sequences.calibrations.laser_resonance import lorentzian

from .backend import Network, open_network
from .calibrate_qubit import (
    alpha_step,
    check_qubit_settings,
    plot_qubit_step,
    rabi_step,
    ramsey_step,
)
from .calibration_store import CalibrationStore
from .network_config import NetworkConfig, load_network

log = logging.getLogger(__name__)

StepKind = Literal[
    "detectors", "laser_resonance", "phase_matching", "readout", "rabi", "ramsey", "alpha"
]
Status = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True)
class CalibrationSettings:
    """Scan parameters of the unattended run. The defaults work on the shipped configs
    (photon collection 1.5e-3 per excitation); a brighter lab can use fewer attempts."""

    #: nominal operating point, used when the store has no passed value yet
    nominal_wavelength_nm: float = 637.0
    nominal_converter_temperature_c: float = 55.0
    converter_pump_mw: float = 500.0
    #: laser power during the optical steps: saturates and broadens the line (~2 pm FWHM)
    #: so a 1 pm grid resolves it
    laser_power_mw: float = 10.0
    laser_span_nm: float = 0.016
    laser_step_nm: float = 0.001
    laser_attempts_per_point: int = 2_000_000
    converter_span_c: float = 4.0
    converter_step_c: float = 0.1
    converter_attempts_per_point: int = 2_000_000
    detector_bias_ua: float = 9.0
    detector_dark_time_s: float = 100.0
    detector_attempts: int = 20_000_000
    readout_shots: int = 2000
    #: how often a failed step is tried again
    retries: int = 1
    #: spin control (Rabi, Ramsey): nominal MW carrier and pi amplitude until calibrated
    nominal_microwave_hz: float = 2.88e9
    nominal_pi_pulse_amplitude_v: float = 0.5
    microwave_power_dbm: float = 0.0
    spin_pulse_ns: float = 50.0
    spin_awg_amplitude_vpp: float = 4.5
    rabi_max_amplitude_v: float = 1.25
    rabi_points: int = 26
    rabi_shots_per_point: int = 100
    ramsey_detuning_hz: float = 2.0e6
    ramsey_max_wait_us: float = 8.0
    ramsey_step_us: float = 0.1
    ramsey_shots_per_point: int = 100
    #: the single-click trade-off: alphas swept, pairs per alpha, target fidelity
    alpha_values: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
    alpha_pairs_per_point: int = 1000
    #: readout-corrected fidelity the chosen alpha must give (the shipped NV lab reaches
    #: about 0.8 at small alpha)
    target_fidelity: float = 0.75

    def __post_init__(self) -> None:
        check_qubit_settings(self)


@dataclass(frozen=True)
class Step:
    """One calibration step of the plan.

    ``owner`` is the node (or, for ``detectors``, the heralding station) calibrated;
    ``station`` and ``link`` say which heralding station probes an optical step;
    ``store_prefix`` is where its quantities go in the store (``<prefix>.<quantity>``).
    """

    name: str
    kind: StepKind
    owner: str
    store_prefix: str
    depends_on: tuple[str, ...] = ()
    station: str | None = None
    link: tuple[str, str] | None = None


@dataclass
class StepOutcome:
    """What happened to one step: status, attempts made, the last result and why."""

    step: Step
    status: Status
    attempts: int = 0
    result: CalibrationResult | None = None
    reason: str = ""
    attempt_reasons: list[str] = field(default_factory=list)
    plot: Path | None = None

    @property
    def name(self) -> str:
        return self.step.name


@dataclass
class CalibrationReport:
    """The outcome of :func:`run_calibrations`: per step status and result, overall pass,
    the files written and the exit code for a scheduler (0: all passed, 1 otherwise)."""

    network: Path
    steps: list[StepOutcome]
    store_path: Path
    summary_path: Path | None = None
    plot_paths: list[Path] = field(default_factory=list)
    safe_state_failures: dict[str, str] = field(default_factory=dict)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def passed(self) -> bool:
        return all(s.status == "passed" for s in self.steps) and not self.safe_state_failures

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    @property
    def paths(self) -> list[Path]:
        """Every file written: the summary, then the plots."""
        return ([self.summary_path] if self.summary_path else []) + list(self.plot_paths)

    def step(self, name: str) -> StepOutcome:
        for outcome in self.steps:
            if outcome.name == name:
                return outcome
        raise KeyError(f"no step {name!r}; steps: {[s.name for s in self.steps]}")


# --------------------------------------------------------------------------- the plan
def plan_calibrations(config: NetworkConfig, nodes: Iterable[str] | None = None) -> list[Step]:
    """The steps calibrating ``nodes`` (default: all) of a network, in dependency order."""
    selected = list(config.nodes) if nodes is None else list(dict.fromkeys(nodes))
    unknown = [n for n in selected if n not in config.nodes]
    if unknown:
        raise KeyError(f"no node {unknown} in network {config.name!r}; nodes: {list(config.nodes)}")
    steps: list[Step] = []
    stations_of: dict[str, list[str]] = {n: [] for n in selected}
    for station, hs in config.heralding_stations.items():
        lit = [n for n in hs.link if n in selected]
        if not lit:
            continue
        for n in lit:
            stations_of[n].append(station)
        steps.append(
            Step(
                name=f"{station}.detectors",
                kind="detectors",
                owner=station,
                store_prefix=f"{station}.detectors",
                station=station,
                link=(lit[0], next(n for n in hs.link if n != lit[0])),
            )
        )
    for node in selected:
        roles = config.nodes[node].instruments
        stations = stations_of[node]
        optical = stations and {"laser", "optical_switch", "awg", "microwave"} <= set(roles)
        if optical:
            hs = config.heralding_stations[stations[0]]
            link = (node, next(n for n in hs.link if n != node))
            laser = Step(
                name=f"{node}.laser_resonance",
                kind="laser_resonance",
                owner=node,
                store_prefix=f"{node}.laser",
                depends_on=tuple(f"{s}.detectors" for s in stations),
                station=stations[0],
                link=link,
            )
            steps.append(laser)
            if "frequency_converter" in roles:
                steps.append(
                    Step(
                        name=f"{node}.phase_matching",
                        kind="phase_matching",
                        owner=node,
                        store_prefix=f"{node}.frequency_converter",
                        depends_on=(laser.name,),
                        station=stations[0],
                        link=link,
                    )
                )
        if "qubit_controller" in roles:
            steps.append(
                Step(
                    name=f"{node}.readout",
                    kind="readout",
                    owner=node,
                    store_prefix=f"{node}.qubit_controller",
                )
            )
        if {"qubit_controller", "awg", "microwave", "laser"} <= set(roles):
            steps.append(Step(f"{node}.rabi", "rabi", node, f"{node}.spin"))
            steps.append(Step(f"{node}.ramsey", "ramsey", node, f"{node}.spin", (f"{node}.rabi",)))
    steps.extend(_alpha_steps(config, selected, {s.name for s in steps}))
    return order_steps(steps)


def _alpha_steps(config: NetworkConfig, selected: list[str], planned: set[str]) -> list[Step]:
    """One alpha trade-off per single-click link whose two nodes are both selected; it
    needs both nodes' lasers (and converters), spin (Ramsey, after Rabi) and readout."""
    steps = []
    for station, hs in config.heralding_stations.items():
        a, b = hs.link
        if a not in selected or b not in selected:
            continue
        kinds = ("laser_resonance", "phase_matching", "ramsey", "readout")
        deps = tuple(f"{n}.{k}" for n in (a, b) for k in kinds if f"{n}.{k}" in planned)
        if not all(f"{n}.laser_resonance" in deps for n in (a, b)):
            continue  # no optical calibration of the link: nothing to trade off
        steps.append(Step(f"{a}-{b}.alpha", "alpha", f"{a}-{b}", f"{a}-{b}", deps, station, (a, b)))
    return steps


def order_steps(steps: Sequence[Step]) -> list[Step]:
    """Topological order of ``steps`` (stable: the given order where dependencies allow).
    Raises ValueError on an unknown dependency or a cycle."""
    names = {s.name for s in steps}
    for s in steps:
        missing = [d for d in s.depends_on if d not in names]
        if missing:
            raise ValueError(f"step {s.name!r} depends on unknown steps {missing}")
    done: set[str] = set()
    ordered: list[Step] = []
    pending = list(steps)
    while pending:
        ready = [s for s in pending if set(s.depends_on) <= done]
        if not ready:
            raise ValueError(f"dependency cycle among steps {[s.name for s in pending]}")
        step = ready[0]
        ordered.append(step)
        done.add(step.name)
        pending.remove(step)
    return ordered


# --------------------------------------------------------------------------- running
def run_calibrations(
    network_path: str | Path,
    *,
    nodes: Iterable[str] | None = None,
    store_path: str | Path | None = None,
    report_dir: str | Path = "runs/calibration",
    seed: int | None = None,
    backend: str | None = None,
    settings: CalibrationSettings | None = None,
) -> CalibrationReport:
    """Calibrate the given nodes (default: all) of the network at ``network_path``.

    ``store_path`` is the calibration store (default: beside the network file), ``backend``
    ('simulated' or 'lab') and ``seed`` override the network file's. Every instrument ends in
    its safe state (also on an exception, which is re-raised after the network is closed).
    Returns the report; its ``exit_code`` is what a scheduler should see.
    """
    settings = settings or CalibrationSettings()
    network_path = Path(network_path)
    loaded = load_network(network_path)
    plan = plan_calibrations(loaded.config, nodes)
    store = CalibrationStore(store_path) if store_path else CalibrationStore.beside(network_path)
    report = CalibrationReport(network=network_path, steps=[], store_path=store.path)
    network = open_network(network_path, backend=backend, seed=seed)
    try:
        runner = _Runner(network, store, settings)
        outcomes: dict[str, StepOutcome] = {}
        for step in plan:
            outcome = runner.run_step(step, outcomes)
            outcomes[step.name] = outcome
            report.steps.append(outcome)
            log.info("%s: %s (%s)", step.name, outcome.status, outcome.reason)
    finally:
        try:
            report.safe_state_failures = network.safe_state()
        finally:
            network.close()
    _write_report(report, Path(report_dir))
    return report


class _Runner:
    def __init__(self, network: Network, store: CalibrationStore, settings: CalibrationSettings):
        self.network = network
        self.store = store
        self.settings = settings
        self.config = network.loaded.config
        self._routines: dict[str, Callable[[Step], CalibrationResult]] = {
            "detectors": self._detectors,
            "laser_resonance": self._laser_resonance,
            "phase_matching": self._phase_matching,
            "readout": self._readout,
            "rabi": lambda step: rabi_step(self, step),
            "ramsey": lambda step: ramsey_step(self, step),
            "alpha": lambda step: alpha_step(self, step),
        }

    def run_step(self, step: Step, done: dict[str, StepOutcome]) -> StepOutcome:
        blocked = [d for d in step.depends_on if done[d].status != "passed"]
        if blocked:
            return StepOutcome(step, "skipped", reason=_skip_reason(blocked, done))
        outcome = StepOutcome(step, "failed")
        for _ in range(1 + self.settings.retries):
            outcome.attempts += 1
            try:
                result = self._routines[step.kind](step)
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
    def _latest(self, key: str, default: float) -> float:
        record = self.store.latest(key)
        return record.value if record is not None else default

    def _wavelength_guess(self, node: str) -> float:
        return self._latest(
            f"{node}.laser.resonance_wavelength_nm", self.settings.nominal_wavelength_nm
        )

    def _temperature_guess(self, node: str) -> float:
        return self._latest(
            f"{node}.frequency_converter.optimal_temperature_c",
            self.settings.nominal_converter_temperature_c,
        )

    def _light(self, step: Step) -> LinkProbe:
        """Both nodes of the step's link prepared for attempts at the best known operating
        point, only the first node's laser on, the station's detectors biased."""
        assert step.link is not None and step.station is not None
        net, s = self.network, self.settings
        for node in step.link:
            roles = self.config.nodes[node].instruments
            prepare_node(
                NodeOptics(
                    laser_wavelength_nm=self._wavelength_guess(node),
                    laser_power_mw=s.laser_power_mw,
                    switch_channel=self.config.nodes[node].optical_switch_channel,
                    converter_pump_mw=s.converter_pump_mw,
                    converter_temperature_c=self._temperature_guess(node),
                ),
                net.instrument(node, "laser"),
                net.instrument(node, "optical_switch"),
                net.instrument(node, "microwave"),
                net.instrument(node, "frequency_converter")
                if "frequency_converter" in roles
                else None,
            )
        net.instrument(step.link[1], "laser").set_output(False)
        hs = self.config.heralding_stations[step.station]
        channels = (hs.time_tagger.plus, hs.time_tagger.minus)
        tagger = net.instrument(step.station, "time_tagger")
        prepare_station(
            net.instrument(step.station, "detectors"),
            tagger,
            (hs.detectors.plus, hs.detectors.minus),
            channels,
            bias_ua=s.detector_bias_ua,
        )
        return LinkProbe([net.instrument(n, "awg") for n in step.link], tagger, channels=channels)

    # ------------------------------------------------------------ the routines
    def _detectors(self, step: Step) -> CalibrationResult:
        assert step.link is not None
        probe = self._light(step)
        return calibrate_detectors(
            probe,
            self.network.instrument(step.link[0], "qubit_controller"),
            [self.network.instrument(n, "laser") for n in step.link],
            dark_time_s=self.settings.detector_dark_time_s,
            attempts=self.settings.detector_attempts,
        )

    def _laser_resonance(self, step: Step) -> CalibrationResult:
        probe = self._light(step)
        s = self.settings
        return laser_resonance_scan(
            self.network.instrument(step.owner, "laser"),
            probe,
            centre_guess_nm=self._wavelength_guess(step.owner),
            span_nm=s.laser_span_nm,
            step_nm=s.laser_step_nm,
            attempts_per_point=s.laser_attempts_per_point,
            power_mw=s.laser_power_mw,
        )

    def _phase_matching(self, step: Step) -> CalibrationResult:
        probe = self._light(step)
        s = self.settings
        return converter_phase_matching_scan(
            self.network.instrument(step.owner, "frequency_converter"),
            probe,
            centre_guess_c=self._temperature_guess(step.owner),
            span_c=s.converter_span_c,
            step_c=s.converter_step_c,
            attempts_per_point=s.converter_attempts_per_point,
        )

    def _readout(self, step: Step) -> CalibrationResult:
        return readout_fidelity(
            self.network.instrument(step.owner, "qubit_controller"),
            shots=self.settings.readout_shots,
        )


def _skip_reason(blocked: list[str], done: dict[str, StepOutcome]) -> str:
    """'skipped: X failed' or 'skipped: X was skipped (Y failed)', naming the root cause."""
    parts = []
    for name in blocked:
        dep = done[name]
        if dep.status == "failed":
            parts.append(f"{name} failed")
        else:
            root = dep.reason.removeprefix("skipped: ")
            parts.append(f"{name} was skipped ({root})")
    return "skipped: " + "; ".join(parts)


# --------------------------------------------------------------------------- the report
def _format_measured(name: str, q: Measured) -> str:
    if q.uncertainty > 0 and math.isfinite(q.uncertainty):
        digits = max(0, 1 - math.floor(math.log10(q.uncertainty)))
    else:
        digits = 6
    unit = f" {q.unit}" if q.unit else ""
    return f"{name}={q.value:.{digits}f} ± {q.uncertainty:.{digits}f}{unit}"


def summary_lines(report: CalibrationReport) -> list[str]:
    """The text summary: a header, one line per step, the safe state and the verdict."""
    lines = [
        f"calibration of {report.network} at {report.started.isoformat(timespec='seconds')}",
        f"store: {report.store_path}",
        "",
    ]
    width = max((len(s.name) for s in report.steps), default=4)
    for s in report.steps:
        values = (
            ", ".join(_format_measured(n, q) for n, q in s.result.quantities.items())
            if s.result is not None and s.result.quantities
            else "-"
        )
        tries = f" [{s.attempts} attempts]" if s.attempts > 1 else ""
        lines.append(f"{s.name:<{width}}  {s.status:<7}  {values}  | {s.reason}{tries}")
    lines.append("")
    if report.safe_state_failures:
        lines.append(f"safe state FAILED for: {report.safe_state_failures}")
    else:
        lines.append("safe state: every instrument")
    lines.append(f"overall: {'passed' if report.passed else 'FAILED'} (exit {report.exit_code})")
    return lines


def _write_report(report: CalibrationReport, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for outcome in report.steps:
        if outcome.result is None:
            continue
        try:
            path = _plot(outcome, folder)
        except Exception as exc:  # a plot must not cost the summary
            log.warning("%s: plot failed: %s", outcome.name, exc)
            continue
        if path is not None:
            outcome.plot = path
            report.plot_paths.append(path)
    report.summary_path = folder / "summary.txt"
    report.summary_path.write_text("\n".join(summary_lines(report)) + "\n", encoding="utf-8")


#: x column of each kind's scan, its label, and how to draw the fitted curve
_SCAN_X = {
    "laser_resonance": ("wavelength_nm", "laser wavelength (nm)"),
    "phase_matching": ("temperature_c", "crystal temperature (C)"),
}


def _fitted_curve(kind: str, result: CalibrationResult) -> Callable[[Any], Any] | None:
    fit, q = result.fit, result.quantities
    if kind == "laser_resonance" and "resonance_wavelength_nm" in q and "fwhm" in fit:
        centre = q["resonance_wavelength_nm"].value
        return lambda x: lorentzian(
            x, fit["amplitude"], centre, fit["fwhm"] * 1e-3, fit["background"]
        )
    if kind == "phase_matching" and "optimal_temperature_c" in q and "fwhm" in fit:
        t0 = q["optimal_temperature_c"].value
        return lambda t: sinc2(t, fit["amplitude"], t0, fit["fwhm"], fit["background"])
    return None


def _plot(outcome: StepOutcome, folder: Path) -> Path | None:
    """Scan points (clicks vs the scanned setting) with the fitted curve when there is one."""
    kind, result = outcome.step.kind, outcome.result
    if kind in ("rabi", "ramsey", "alpha"):
        return plot_qubit_step(outcome, folder)
    if kind not in _SCAN_X or result is None:
        return None
    column, xlabel = _SCAN_X[kind]
    x, y = result.scan.get(column, []), result.scan.get("clicks", [])
    if not x or len(x) != len(y):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 4))
    try:
        ax.errorbar(
            x, y, yerr=np.sqrt(np.maximum(y, 1)), fmt="o", ms=3, label="clicks (Poisson error)"
        )
        curve = _fitted_curve(kind, result)
        if curve is not None:
            xs = np.linspace(min(x), max(x), 400)
            ax.plot(xs, curve(xs), "-", label="fit")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"clicks per {int(result.scan.get('attempts', [0])[0]):,} attempts")
        ax.set_title(f"{outcome.name}: {outcome.status}")
        ax.ticklabel_format(axis="x", useOffset=False)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.legend(fontsize="small")
        fig.tight_layout()
        path = folder / f"{outcome.name}.png"
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


__all__ = [
    "CalibrationReport",
    "CalibrationSettings",
    "Step",
    "StepOutcome",
    "order_steps",
    "plan_calibrations",
    "run_calibrations",
    "summary_lines",
]
