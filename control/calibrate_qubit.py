"""The qubit steps of the unattended calibration (``control.calibrate``): Rabi and Ramsey on
each node's spin, and the alpha trade-off on each link, with their plots.

Each function takes the runner (its network, store and settings) and the step; the plan is
``control.calibrate_plan``, the kind -> routine table ``control.calibrate_runner``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sequences.attempt_loop import AttemptLoop
from sequences.calibrations._spin import SpinDrive
from sequences.calibrations.alpha_tradeoff import PairBatch, alpha_tradeoff
from sequences.calibrations.rabi import rabi_amplitude_sweep, rabi_model
from sequences.calibrations.ramsey import ramsey_fringes, ramsey_model

from .calibration_store import PI_PULSE_AMPLITUDE, SPIN_RESONANCE

if TYPE_CHECKING:
    from sequences.calibrations import CalibrationResult

    from .calibrate_plan import CalibrationSettings, Step
    from .calibrate_report import StepOutcome
    from .calibrate_runner import Runner


#: the step kinds of this module
QUBIT_KINDS = ("rabi", "ramsey", "alpha")


def check_qubit_settings(settings: CalibrationSettings) -> None:
    """Reject a bad setting of the qubit steps (``CalibrationSettings``), naming the field,
    the value and the expectation."""
    checks = [
        ("nominal_microwave_hz", 0 < settings.nominal_microwave_hz <= 1e11, "in (0, 1e11]"),
        (
            "nominal_pi_pulse_amplitude_v",
            0 < settings.nominal_pi_pulse_amplitude_v <= settings.spin_awg_amplitude_vpp / 2,
            "in (0, spin_awg_amplitude_vpp/2]",
        ),
        ("microwave_power_dbm", -150 <= settings.microwave_power_dbm <= 40, "in [-150, 40]"),
        ("spin_pulse_ns", 1 <= settings.spin_pulse_ns <= 10_000, "in [1, 10000]"),
        (
            "spin_awg_amplitude_vpp",
            0.02 <= settings.spin_awg_amplitude_vpp <= 4.5,
            "in [0.02, 4.5]",
        ),
        (
            "rabi_max_amplitude_v",
            0 < settings.rabi_max_amplitude_v <= settings.spin_awg_amplitude_vpp / 2,
            "in (0, spin_awg_amplitude_vpp/2]",
        ),
        ("rabi_points", settings.rabi_points >= 6, ">= 6"),
        ("rabi_shots_per_point", settings.rabi_shots_per_point >= 1, ">= 1"),
        ("ramsey_detuning_hz", 0 < settings.ramsey_detuning_hz <= 1e8, "in (0, 1e8]"),
        ("ramsey_step_us", settings.ramsey_step_us > 0, "> 0"),
        (
            "ramsey_max_wait_us",
            settings.ramsey_max_wait_us > 5 * settings.ramsey_step_us,
            "> 5 steps",
        ),
        ("ramsey_shots_per_point", settings.ramsey_shots_per_point >= 1, ">= 1"),
        (
            "alpha_values",
            len(settings.alpha_values) >= 3 and all(0 < a <= 0.5 for a in settings.alpha_values),
            "at least 3 values in (0, 0.5]",
        ),
        ("alpha_pairs_per_point", settings.alpha_pairs_per_point >= 3, ">= 3"),
        ("target_fidelity", 0.5 < settings.target_fidelity < 1, "in (0.5, 1)"),
    ]
    for name, ok, expected in checks:
        if not ok:
            raise ValueError(
                f"CalibrationSettings.{name}={getattr(settings, name)!r}: expected {expected}"
            )


def _drive(runner: Runner, node: str) -> SpinDrive:
    """The node's spin drive, its excitation laser off (spin control only)."""
    net = runner.network
    net.instrument(node, "laser").set_output(False)
    return SpinDrive(
        net.instrument(node, "awg"),
        net.instrument(node, "microwave"),
        net.instrument(node, "qubit_controller"),
        awg_amplitude_vpp=runner.settings.spin_awg_amplitude_vpp,
    )


def _resonance_guess(runner: Runner, node: str) -> float:
    return runner.latest(f"{node}.{SPIN_RESONANCE}", runner.settings.nominal_microwave_hz)


def rabi_step(runner: Runner, step: Step) -> CalibrationResult:
    s = runner.settings
    return rabi_amplitude_sweep(
        _drive(runner, step.owner),
        frequency_hz=_resonance_guess(runner, step.owner),
        power_dbm=s.microwave_power_dbm,
        pulse_ns=s.spin_pulse_ns,
        max_amplitude_v=s.rabi_max_amplitude_v,
        points=s.rabi_points,
        shots_per_point=s.rabi_shots_per_point,
    )


def ramsey_step(runner: Runner, step: Step) -> CalibrationResult:
    s = runner.settings
    return ramsey_fringes(
        _drive(runner, step.owner),
        centre_guess_hz=_resonance_guess(runner, step.owner),
        pi_amplitude_v=runner.latest(
            f"{step.owner}.{PI_PULSE_AMPLITUDE}", s.nominal_pi_pulse_amplitude_v
        ),
        power_dbm=s.microwave_power_dbm,
        pulse_ns=s.spin_pulse_ns,
        detuning_hz=s.ramsey_detuning_hz,
        max_wait_us=s.ramsey_max_wait_us,
        step_us=s.ramsey_step_us,
        shots_per_point=s.ramsey_shots_per_point,
    )


def alpha_step(runner: Runner, step: Step) -> CalibrationResult:
    """Pairs through the node controllers at the calibrated operating point (the store's
    values in force), readout-corrected with the calibrated F0/F1."""
    from .runs import build_orchestrator, iter_entanglement

    assert step.link is not None
    a, b = step.link
    net, s = runner.network, runner.settings

    def source(alpha: float, pairs: int) -> PairBatch:
        loop = AttemptLoop(alpha=alpha, max_attempts=0, stop_at_herald=True)
        orchestrator = build_orchestrator(net, loop, calibration=runner.store)
        orchestrator.prepare()
        start = orchestrator.nodes[a].now_s()
        shots = list(iter_entanglement(orchestrator, a, b, pairs))
        return PairBatch(
            bell_states=[x.bell_state for x in shots],
            bases=[x.basis for x in shots],
            outcomes_a=[x.outcome_a for x in shots],
            outcomes_b=[x.outcome_b for x in shots],
            attempts=sum(x.attempts for x in shots),
            elapsed_s=orchestrator.nodes[a].now_s() - start,
        )

    return alpha_tradeoff(
        source,
        target_fidelity=s.target_fidelity,
        alphas=s.alpha_values,
        pairs_per_point=s.alpha_pairs_per_point,
        readout_a=runner.store.readout(a),
        readout_b=runner.store.readout(b),
    )


# --------------------------------------------------------------------------- plots
def draw_qubit_step(ax: Any, outcome: StepOutcome) -> bool:
    """Scan and fit of a Rabi, Ramsey or alpha step on ``ax``; False when there is nothing
    to draw (another kind, no result, an empty scan)."""
    kind, result = outcome.step.kind, outcome.result
    if result is None or kind not in QUBIT_KINDS:
        return False
    return {"rabi": _rabi, "ramsey": _ramsey, "alpha": _alpha}[kind](ax, result.scan, result.fit)


def _binomial_bars(ones: list[float], shots: float) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(ones) / shots
    return p, np.sqrt(np.maximum(p * (1 - p), 1 / shots) / shots)


def _rabi(ax: Any, scan: dict[str, list[float]], fit: dict[str, float]) -> bool:
    x, ones = scan.get("amplitude_v", []), scan.get("ones", [])
    if not x or len(x) != len(ones):
        return False
    p, err = _binomial_bars(ones, scan["shots"][0])
    ax.errorbar(x, p, yerr=err, fmt="o", ms=3, label="fraction read 1")
    if "a_pi" in fit:
        xs = np.linspace(min(x), max(x), 400)
        ax.plot(xs, rabi_model(xs, fit["offset"], fit["contrast"], fit["a_pi"]), "-", label="fit")
        ax.axvline(fit["a_pi"], ls=":", color="grey", label=f"pi: {fit['a_pi']:.4f} V")
    ax.set_xlabel(f"AWG amplitude (V), {scan['pulse_ns'][0]:g} ns pulse")
    ax.set_ylabel("P(read 1)")
    return True


def _ramsey(ax: Any, scan: dict[str, list[float]], fit: dict[str, float]) -> bool:
    tau = scan.get("tau_us", [])
    if not tau or "ones_plus" not in scan:
        return False
    xs = np.linspace(min(tau), max(tau), 800)
    for label, shift in (("plus", 0.0), ("minus", 1.1)):
        if f"ones_{label}" not in scan:
            continue
        p, err = _binomial_bars(scan[f"ones_{label}"], scan["shots"][0])
        sign = "+" if label == "plus" else "-"
        ax.errorbar(tau, p + shift, yerr=err, fmt="o", ms=2, label=f"detuning {sign}d")
        names = ("offset", "amplitude", "freq_mhz", "phase", "t2s_us")
        if all(f"{n}_{label}" in fit for n in names):
            args = [fit[f"{n}_{label}"] for n in names]
            ax.plot(xs, ramsey_model(xs, *args) + shift, "-", lw=1)
    ax.set_xlabel("free evolution tau (us)")
    ax.set_ylabel("P(read 1) (second curve offset by 1.1)")
    return True


def _alpha(ax: Any, scan: dict[str, list[float]], fit: dict[str, float]) -> bool:
    x, f = scan.get("alpha", []), scan.get("fidelity", [])
    if not x or len(x) != len(f):
        return False
    ax.errorbar(x, f, yerr=scan["fidelity_err"], fmt="o", ms=3, label="fidelity (XX/YY/ZZ)")
    if "slope" in fit:
        xs = np.linspace(0, max(x) * 1.05, 100)
        ax.plot(xs, fit["intercept"] + fit["slope"] * xs, "-", label="linear fit")
        ax.axhline(fit["target_fidelity"], ls=":", color="grey", label="target")
    if "chosen_alpha" in fit:
        ax.axvline(
            fit["chosen_alpha"], ls="--", color="C2", label=f"chosen {fit['chosen_alpha']:.3f}"
        )
    ax.set_xlabel("alpha (bright-state population)")
    ax.set_ylabel("fidelity")
    twin = ax.twinx()
    twin.errorbar(x, scan["rate_hz"], yerr=scan["rate_err_hz"], fmt="s", ms=3, color="C3")
    twin.set_ylabel("heralded rate (Hz, squares)")
    return True
