"""Unattended calibration: every calibration routine of a network, in dependency order, with
retries, skips, the calibration store and a report; for a scheduler (cron, systemd timer).

The parts: the plan (``control.calibrate_plan``: steps and their dependencies), the runner
(``control.calibrate_runner``: the step kind -> routine table, retries, skips, the store), the
report (``control.calibrate_report``: summary and plots) and the pass/fail thresholds
(``control.calibrate_config``, the network file's ``calibration:`` section). Runs take the
latest passed values through ``control.calibrated``.

:func:`run_calibrations` runs the plan. At the end, and on any exception, every instrument goes
to its safe state before the network is closed. The report (``summary.txt`` and one PNG per
fitted scan) goes to ``report_dir``; :attr:`CalibrationReport.exit_code` is 0 only if
everything passed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from .backend import open_network
from .calibrate_plan import (
    CalibrationSettings,
    Plan,
    Step,
    calibration_plan,
    order_steps,
    plan_calibrations,
)
from .calibrate_report import CalibrationReport, StepOutcome, summary_lines, write_report
from .calibrate_runner import Runner
from .calibration_store import CalibrationStore
from .network_config import load_network

log = logging.getLogger(__name__)


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
    plan = calibration_plan(loaded.config, nodes)
    store = CalibrationStore(store_path) if store_path else CalibrationStore.beside(network_path)
    report = CalibrationReport(
        network=network_path, steps=[], store_path=store.path, not_planned=plan.not_planned
    )
    network = open_network(network_path, backend=backend, seed=seed)
    try:
        runner = Runner(network, store, settings)
        outcomes: dict[str, StepOutcome] = {}
        for step in plan.steps:
            outcome = runner.run_step(step, outcomes)
            outcomes[step.name] = outcome
            report.steps.append(outcome)
            log.info("%s: %s (%s)", step.name, outcome.status, outcome.reason)
    finally:
        try:
            report.safe_state_failures = network.safe_state()
        finally:
            network.close()
    write_report(report, Path(report_dir))
    return report


__all__ = [
    "CalibrationReport",
    "CalibrationSettings",
    "Plan",
    "Step",
    "StepOutcome",
    "calibration_plan",
    "order_steps",
    "plan_calibrations",
    "run_calibrations",
    "summary_lines",
]
