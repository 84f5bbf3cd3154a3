"""The outcome of an unattended calibration: per-step outcomes, the report, its text summary
and one PNG per fitted scan (the :data:`PLOTS` table: step kind -> plotter)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sequences.calibrations import CalibrationResult, Measured
from sequences.calibrations.channel_delays import gaussian
from sequences.calibrations.converter_phase_matching import sinc2
from sequences.calibrations.hom_visibility import hom_dip
from sequences.calibrations.laser_resonance import lorentzian

from .calibrate_plan import Step
from .calibrate_qubit import QUBIT_KINDS, draw_qubit_step

log = logging.getLogger(__name__)

Status = Literal["passed", "failed", "skipped"]


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
    """The outcome of ``run_calibrations``: per step status and result, overall pass, the
    files written and the exit code for a scheduler (0: all passed, 1 otherwise)."""

    network: Path
    steps: list[StepOutcome]
    store_path: Path
    summary_path: Path | None = None
    plot_paths: list[Path] = field(default_factory=list)
    safe_state_failures: dict[str, str] = field(default_factory=dict)
    #: steps the network file switched off (name -> why): neither run nor failed
    not_planned: dict[str, str] = field(default_factory=dict)
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
    for name, why in report.not_planned.items():
        lines.append(f"{name:<{width}}  not planned  | {why}")
    lines.append("")
    if report.safe_state_failures:
        lines.append(f"safe state FAILED for: {report.safe_state_failures}")
    else:
        lines.append("safe state: every instrument")
    lines.append(f"overall: {'passed' if report.passed else 'FAILED'} (exit {report.exit_code})")
    return lines


def write_report(report: CalibrationReport, folder: Path) -> None:
    """``summary.txt`` and one PNG per plotted step into ``folder``."""
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


@dataclass(frozen=True)
class ScanPlot:
    """How to draw one kind's scan: x and y columns of ``result.scan``, axis labels, the
    y error bars (Poisson by default) and the fitted curve (None: no fit to draw)."""

    x: str
    y: str
    xlabel: str
    ylabel: Callable[[CalibrationResult], str]
    curve: Callable[[CalibrationResult], Callable[[Any], Any] | None]
    yerr: Callable[[CalibrationResult], Any] | None = None


def _per_attempts(result: CalibrationResult, what: str = "clicks") -> str:
    return f"{what} per {int(result.scan.get('attempts', [0])[0]):,} attempts"


def _laser_curve(result: CalibrationResult) -> Callable[[Any], Any] | None:
    fit, q = result.fit, result.quantities
    if "resonance_wavelength_nm" not in q or "fwhm" not in fit:
        return None
    centre = q["resonance_wavelength_nm"].value
    return lambda x: lorentzian(x, fit["amplitude"], centre, fit["fwhm"] * 1e-3, fit["background"])


def _converter_curve(result: CalibrationResult) -> Callable[[Any], Any] | None:
    fit, q = result.fit, result.quantities
    if "optimal_temperature_c" not in q or "fwhm" not in fit:
        return None
    t0 = q["optimal_temperature_c"].value
    return lambda t: sinc2(t, fit["amplitude"], t0, fit["fwhm"], fit["background"])


def _delay_curve(result: CalibrationResult) -> Callable[[Any], Any] | None:
    """The fitted peak shape at the found delay, scaled to the folded histogram's bins."""
    fit, scan = result.fit, result.scan
    if "relative_delay_ps" not in fit or len(scan.get("delay_ps", [])) < 2:
        return None
    sigma = fit["sigma_ps"]
    width = scan["delay_ps"][1] - scan["delay_ps"][0]
    amplitude = sum(scan["clicks"]) * width / (math.sqrt(2 * math.pi) * sigma)
    return lambda x: gaussian(x, amplitude, fit["relative_delay_ps"], sigma, 0.0)


def _hom_curve(result: CalibrationResult) -> Callable[[Any], Any] | None:
    fit = result.fit
    if "visibility" not in fit:
        return None
    return lambda x: hom_dip(x, fit["c_dist"], fit["visibility"], fit["tau_ns"], fit["t0_ns"])


def _fringe_curve(result: CalibrationResult) -> Callable[[Any], Any] | None:
    fit = result.fit
    if "contrast" not in fit:
        return None
    return lambda x: fit["contrast"] * np.cos(np.radians(x) - fit["theta_star_rad"])


#: step kind -> how to plot its scan (add a row for a new kind with a fit to show)
PLOTS: dict[str, ScanPlot] = {
    "laser_resonance": ScanPlot(
        "wavelength_nm", "clicks", "laser wavelength (nm)", _per_attempts, _laser_curve
    ),
    "phase_matching": ScanPlot(
        "temperature_c", "clicks", "crystal temperature (C)", _per_attempts, _converter_curve
    ),
    "channel_delays": ScanPlot(
        "delay_ps",
        "clicks",
        "channel '-' arrival after channel '+''s peak, folded on the attempt period (ps)",
        lambda r: _per_attempts(r, "channel '-' clicks"),
        _delay_curve,
    ),
    "hom_visibility": ScanPlot(
        "offset_ns",
        "coincidences",
        "emission offset of node B (ns)",
        lambda r: _per_attempts(r, "coincidences"),
        _hom_curve,
    ),
    "interferometer_phase": ScanPlot(
        "aom_phase_deg",
        "parity",
        "AOM RF phase of the actuator node (deg)",
        lambda r: "sign-corrected <XX> of heralded pairs",
        _fringe_curve,
        yerr=lambda r: r.scan.get("parity_error"),
    ),
}


def _plot(outcome: StepOutcome, folder: Path) -> Path | None:
    """Scan points with their error bars and the fitted curve, when the kind has a plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    try:
        drawn = (
            draw_qubit_step(ax, outcome)
            if outcome.step.kind in QUBIT_KINDS
            else _draw_scan(ax, outcome)
        )
        if not drawn:
            return None
        ax.set_title(f"{outcome.name}: {outcome.status}")
        ax.legend(fontsize="small")
        fig.tight_layout()
        path = folder / f"{outcome.name}.png"
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def _draw_scan(ax: Any, outcome: StepOutcome) -> bool:
    """An optical step's scan (``PLOTS``) on ``ax``; False when it has none."""
    from matplotlib.ticker import MaxNLocator

    spec, result = PLOTS.get(outcome.step.kind), outcome.result
    if spec is None or result is None:
        return False
    x, y = result.scan.get(spec.x, []), result.scan.get(spec.y, [])
    if not x or len(x) != len(y):
        return False
    yerr = spec.yerr(result) if spec.yerr else np.sqrt(np.maximum(y, 1))
    label = "data (Poisson error)" if spec.yerr is None else "data (binomial error)"
    ax.errorbar(x, y, yerr=yerr, fmt="o", ms=3, label=label)
    curve = spec.curve(result)
    if curve is not None:
        xs = np.linspace(min(x), max(x), 2000)
        ax.plot(xs, curve(xs), "-", label="fit")
    ax.set_xlabel(spec.xlabel)
    ax.set_ylabel(spec.ylabel(result))
    ax.ticklabel_format(axis="x", useOffset=False)
    ax.xaxis.set_major_locator(MaxNLocator(5))
    return True
