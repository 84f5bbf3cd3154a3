"""The unattended calibration script (``control.calibrate``) on the simulated lab: the plan's
order and skips, the store, the report files, the exit code, and every instrument safe at the
end, also after a failing or raising step."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from qcodes.instrument import Instrument

import control.calibrate as calibrate
import control.calibrate_runner as calibrate_runner
from control.backend import Network
from control.calibrate import (
    CalibrationSettings,
    calibration_plan,
    plan_calibrations,
    run_calibrations,
)
from control.calibrate_config import CalibrationThresholds
from control.calibration_store import CalibrationStore
from control.network_config import NetworkConfigError, load_network

CONFIGS = Path(__file__).parents[2] / "lab_configs"

TRUE_TRANSITION_NM = 637.003
TRUE_OPTIMUM_C = 56.3
TRUE_T2_STAR_S = 2e-6

#: The tmp lab collects 0.1 photons per excitation (shipped: 1.5e-3), so fewer attempts do.
FAST = CalibrationSettings(
    laser_attempts_per_point=200_000,
    converter_attempts_per_point=100_000,
    detector_attempts=8_000_000,
    readout_shots=300,
    channel_delay_attempts=400_000,
    hom_offsets_ns=(-100.0, -12.0, -4.0, 0.0, 4.0, 12.0, 100.0),
    hom_attempts_per_point=800_000,
    phase_pairs_per_point=40,
    rabi_points=16,
    rabi_shots_per_point=30,
    ramsey_max_wait_us=2.5,
    ramsey_step_us=0.1,
    ramsey_shots_per_point=40,
    alpha_values=(0.05, 0.15, 0.25, 0.35, 0.45),
    alpha_pairs_per_point=300,
    target_fidelity=0.7,  # F(alpha=0.05) ~ 0.8 here: reachable with 300 pairs and the margin
)
TRUE_CABLE_PS = (10_000.0, 11_234.0)
TRUE_PHASE_RAD = -1.2

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _lab(
    tmp_path: Path, dark_count_rate_hz: float | None = None, calibration: dict | None = None
) -> Path:
    """A copy of the two-node configs with shifted truths (transition 637.003 nm, converter
    optimum 56.3 C, cable delays, interferometer phase), spin T2* 2 us and brighter photon
    collection; the network file's HOM threshold is 0.7 (shipped truth 0.90)."""
    for f in CONFIGS.glob("*.yaml"):
        if not f.name.endswith(".calibration.yaml"):
            shutil.copy(f, tmp_path / f.name)
    physics = yaml.safe_load((tmp_path / "nv_delft_link.yaml").read_text())
    lab = physics["simulated_lab"]
    for node in lab["nodes"].values():
        node["collection_efficiency"] = 0.1
        node["excitation"] = {"transition_wavelength_nm": TRUE_TRANSITION_NM}
        node["converter"] = {"optimal_temperature_c": TRUE_OPTIMUM_C}
        node["spin_control"]["t2_star_s"] = TRUE_T2_STAR_S  # a short sweep resolves it
    link = lab["links"][0]
    if dark_count_rate_hz is not None:
        link["detectors"]["dark_count_rate_hz"] = dark_count_rate_hz
    link["detectors"]["cable_delay_ps"] = list(TRUE_CABLE_PS)
    link["detectors"]["timing_jitter_ps"] = 30.0
    link["phase_offset_rad"] = TRUE_PHASE_RAD
    (tmp_path / "nv_delft_link.yaml").write_text(yaml.safe_dump(physics))
    network = tmp_path / "two_node.network.yaml"
    config = yaml.safe_load(network.read_text())
    config["calibration"] = {"min_hom_visibility": 0.7, **(calibration or {})}
    network.write_text(yaml.safe_dump(config))
    return network


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Network]]:
    """The networks run_calibrations opens (to look at the simulated instruments after)."""
    networks: list[Network] = []
    real_open = calibrate.open_network

    def spy(*args, **kwargs):
        networks.append(real_open(*args, **kwargs))
        return networks[-1]

    monkeypatch.setattr(calibrate, "open_network", spy)
    yield networks
    for network in networks:
        network.close()
    Instrument.close_all()


def _assert_all_safe(network: Network) -> None:
    """Every simulated instrument in its safe state, and the drivers closed."""
    assert network._closed
    sims = network.simulated_lab.instruments
    for node in ("alice", "bob"):
        assert not sims[f"{node}_laser"].output_on, node
        assert not any(ch.is_open for ch in sims[f"{node}_aom"].channels.values()), node
        assert not sims[f"{node}_mw"].output_on, node
        assert not sims[f"{node}_awg"].running, node
        assert not sims[f"{node}_qfc"].pump_on, node
    snspd = sims["h_ab_snspd"]
    assert not snspd.detector_enable
    assert all(ch.bias_ua == 0 for ch in snspd.channels.values())


def test_the_plan_orders_detectors_lasers_converters_and_names_dependencies() -> None:
    config = load_network(CONFIGS / "three_node_chain.network.yaml").config
    plan = plan_calibrations(config)
    names = [s.name for s in plan]
    deps = {s.name: s.depends_on for s in plan}
    assert deps["bob.laser_resonance"] == ("h_ab.detectors", "h_bc.detectors")
    assert deps["charlie.phase_matching"] == ("charlie.laser_resonance",)
    assert deps["alice.readout"] == ()
    optics = (
        "bob.laser_resonance",
        "bob.phase_matching",
        "charlie.laser_resonance",
        "charlie.phase_matching",
    )
    assert deps["h_bc.channel_delays"] == ("h_bc.detectors", *optics)
    assert "h_bc.hom_visibility" not in deps  # switched off in the shipped network file
    assert deps["h_bc.interferometer_phase"] == optics
    assert deps["alice.rabi"] == ()
    assert deps["alice.ramsey"] == ("alice.rabi",)
    assert set(deps["alice-bob.alpha"]) >= {
        "alice.laser_resonance",
        "bob.laser_resonance",
        "alice.ramsey",
        "bob.ramsey",
        "alice.readout",
        "bob.readout",
    }
    assert "bob-charlie.alpha" in deps
    with_hom = config.model_copy(update={"calibration": CalibrationThresholds()})
    hom = {s.name: s.depends_on for s in plan_calibrations(with_hom)}["h_bc.hom_visibility"]
    assert hom == ("h_bc.channel_delays", *optics)
    for step in plan:
        for dep in step.depends_on:
            assert names.index(dep) < names.index(step.name)
    only_alice = [s.name for s in plan_calibrations(config, ["alice"])]
    assert only_alice == [
        "h_ab.detectors",
        "alice.laser_resonance",
        "alice.phase_matching",
        "alice.readout",
        "alice.rabi",
        "alice.ramsey",
    ]  # no alpha trade-off: bob is not calibrated
    with pytest.raises(KeyError, match="dave"):
        plan_calibrations(config, ["dave"])


def test_the_shipped_chain_plans_no_hom_and_says_why() -> None:
    """The shipped three-node file switches the HOM step off (its coincidences need ~1.5e9
    attempts per offset): both links' HOM steps are not planned, with the file's reason;
    the channel delays (single clicks) and the phase are."""
    config = load_network(CONFIGS / "three_node_chain.network.yaml").config
    plan = calibration_plan(config)
    names = [s.name for s in plan.steps]
    assert list(plan.not_planned) == ["h_ab.hom_visibility", "h_bc.hom_visibility"]
    for why in plan.not_planned.values():
        assert why.startswith("calibration.hom.enabled is false in the network file: ")
        assert "1.5e9 attempts per offset" in why
    for station in ("h_ab", "h_bc"):
        assert f"{station}.channel_delays" in names
        assert f"{station}.interferometer_phase" in names
    assert config.calibration.channel_delays.enabled


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"hom": {"enabled": "sometimes"}}, ("calibration.hom.enabled", "'sometimes'", "boolean")),
        ({"hom": {"attempts": 10}}, ("calibration.hom.attempts", "10", "greater than or equal")),
        ({"channel_delays": {"attemps": 10**6}}, ("calibration.channel_delays.attemps", "", "")),
    ],
)
def test_a_bad_step_entry_is_rejected_naming_field_value_and_expectation(
    tmp_path: Path, entry: dict, expected: tuple[str, str, str]
) -> None:
    with pytest.raises(NetworkConfigError) as info:
        load_network(_lab(tmp_path, calibration=entry))
    for part in expected:
        assert part in str(info.value), str(info.value)


def test_a_step_switched_off_is_not_planned_and_the_summary_says_why(
    tmp_path: Path, opened: list[Network]
) -> None:
    """HOM off in the network file (with a note), the channel delays on with 300,000
    attempts from the file: every planned step passes, exit 0, and the summary lists the HOM
    step as not planned with the file's reason."""
    note = "needs 1.5e9 attempts per offset"
    config = _lab(
        tmp_path,
        calibration={
            "hom": {"enabled": False, "note": note},
            "channel_delays": {"attempts": 300_000},
        },
    )
    store = CalibrationStore.beside(config)
    for node in ("alice", "bob"):  # yesterday's optimum (the nominal 55 C is too far off)
        store.record(f"{node}.frequency_converter.optimal_temperature_c", 56.0, 0.02, "C", True)
    report = run_calibrations(config, report_dir=tmp_path / "r", settings=FAST)
    assert [s.status for s in report.steps] == ["passed"] * 14, calibrate.summary_lines(report)
    assert "h_ab.hom_visibility" not in [s.name for s in report.steps]
    assert report.not_planned == {
        "h_ab.hom_visibility": f"calibration.hom.enabled is false in the network file: {note}"
    }
    assert report.exit_code == 0
    delays = report.step("h_ab.channel_delays").result
    assert delays.scan["attempts"] == [300_000.0]  # the file's attempts, not the settings'
    found = delays.quantities["relative_delay_ps"]
    assert abs(found.value - (TRUE_CABLE_PS[1] - TRUE_CABLE_PS[0])) <= max(
        4 * found.uncertainty, 10
    )
    lines = report.summary_path.read_text().splitlines()
    line = next(ln for ln in lines if ln.startswith("h_ab.hom_visibility "))
    assert "not planned" in line and note in line
    assert "overall: passed (exit 0)" in lines
    _assert_all_safe(opened[0])


def test_everything_passes_on_shifted_truths(tmp_path: Path, opened: list[Network]) -> None:
    """The lab drifted since the last calibration: the store holds yesterday's converter
    optimum (56.0 C) and no laser value (the nominal 637.0 nm is the guess). Every step passes,
    the store holds values close to the hidden truths, the report is written, all safe."""
    config = _lab(tmp_path)
    store = CalibrationStore.beside(config)
    for node in ("alice", "bob"):
        store.record(f"{node}.frequency_converter.optimal_temperature_c", 56.0, 0.02, "C", True)
    report_dir = tmp_path / "report"

    report = run_calibrations(config, report_dir=report_dir, settings=FAST)

    assert [s.status for s in report.steps] == ["passed"] * 15, calibrate.summary_lines(report)
    assert report.passed and report.exit_code == 0
    names = [s.name for s in report.steps]
    assert names.index("h_ab.detectors") < names.index("alice.laser_resonance")
    assert names.index("alice.laser_resonance") < names.index("alice.phase_matching")
    assert names.index("alice.rabi") < names.index("alice.ramsey")
    assert names[-1] == "alice-bob.alpha"  # after every laser, spin and readout step
    store = CalibrationStore.beside(config)  # re-read from the file
    assert report.store_path == store.path
    for node in ("alice", "bob"):
        wavelength = store.latest(f"{node}.laser.resonance_wavelength_nm")
        assert abs(wavelength.value - TRUE_TRANSITION_NM) <= 2e-4, node
        optimum = store.latest(f"{node}.frequency_converter.optimal_temperature_c")
        assert abs(optimum.value - TRUE_OPTIMUM_C) <= 0.03, node
        assert optimum.version == 2  # yesterday's value, then today's
        assert store.latest(f"{node}.qubit_controller.f0").value > 0.9
    assert store.latest("h_ab.detectors.dark_rate_hz_ch1").value == pytest.approx(20, abs=5)
    # the optical steps of the link, after the detectors and both nodes' optics
    assert names.index("h_ab.channel_delays") < names.index("h_ab.hom_visibility")
    assert names.index("bob.phase_matching") < names.index("h_ab.interferometer_phase")
    delta = store.latest("h_ab.channel_delays.relative_delay_ps")
    assert abs(delta.value - (TRUE_CABLE_PS[1] - TRUE_CABLE_PS[0])) <= 20.0
    assert store.latest("h_ab.channel_delays.delay_ps_ch1").value == round(delta.value)
    visibility = store.latest("h_ab.hom.visibility")
    assert abs(visibility.value - 0.90) <= 3 * visibility.uncertainty
    phase = store.latest("h_ab.interferometer.phase_offset_rad").value
    assert abs((phase - TRUE_PHASE_RAD + math.pi) % (2 * math.pi) - math.pi) <= 0.35
    for node in ("alice", "bob"):  # the shipped spin truths: 0.5 V, 2.88 GHz
        pi = store.latest(f"{node}.spin.pi_pulse_amplitude_v")
        assert abs(pi.value - 0.5) <= max(4 * pi.uncertainty, 0.01), node
        resonance = store.latest(f"{node}.spin.resonance_frequency_hz")
        assert abs(resonance.value - 2.88e9) <= max(4 * resonance.uncertainty, 3e4), node
    alpha = store.latest("alice-bob.alpha")
    assert FAST.alpha_values[0] <= alpha.value <= FAST.alpha_values[-1]
    assert store.latest("alice-bob.fidelity").value >= FAST.target_fidelity

    summary = (report_dir / "summary.txt").read_text()
    assert report.summary_path == report_dir / "summary.txt"
    for step in names:
        line = next(ln for ln in summary.splitlines() if ln.startswith(step + " "))
        assert "passed" in line and "±" in line
    assert "overall: passed (exit 0)" in summary
    plots = {p.name for p in report.plot_paths}
    assert plots == {
        f"{node}.{kind}.png"
        for node in ("alice", "bob")
        for kind in ("laser_resonance", "phase_matching", "rabi", "ramsey")
    } | {
        "h_ab.channel_delays.png",
        "h_ab.hom_visibility.png",
        "h_ab.interferometer_phase.png",
        "alice-bob.alpha.png",
    }
    for path in report.plot_paths:
        assert path.parent == report_dir
        assert path.read_bytes()[:8] == PNG_MAGIC
    assert report.safe_state_failures == {}
    [network] = opened
    _assert_all_safe(network)


def test_a_failing_step_is_retried_and_its_dependents_skipped(
    tmp_path: Path, opened: list[Network]
) -> None:
    """Detectors dark at 500 Hz (limit 100 Hz): the detector step fails twice, alice's laser
    scan is skipped naming it, her converter scan is skipped naming the root failure, the
    readout (independent) still runs; yesterday's dark rate stays in force; exit code 1."""
    config = _lab(tmp_path, dark_count_rate_hz=500.0)
    store_path = tmp_path / "elsewhere" / "store.yaml"
    CalibrationStore(store_path).record("h_ab.detectors.dark_rate_hz_ch1", 21.0, 0.5, "Hz", True)

    report = run_calibrations(
        config, nodes=["alice"], store_path=store_path, report_dir=tmp_path / "r", settings=FAST
    )

    detectors = report.step("h_ab.detectors")
    assert detectors.status == "failed"
    assert detectors.attempts == 2
    assert len(detectors.attempt_reasons) == 2
    assert "dark rate" in detectors.reason and "previous value in force" in detectors.reason
    laser = report.step("alice.laser_resonance")
    assert laser.status == "skipped" and laser.attempts == 0 and laser.result is None
    assert laser.reason == "skipped: h_ab.detectors failed"
    converter = report.step("alice.phase_matching")
    assert converter.status == "skipped"
    assert "alice.laser_resonance was skipped" in converter.reason
    assert "h_ab.detectors failed" in converter.reason
    assert report.step("alice.readout").status == "passed"
    assert not report.passed and report.exit_code == 1

    store = CalibrationStore(store_path)
    assert store.value("h_ab.detectors.dark_rate_hz_ch1") == 21.0  # previous value in force
    history = store.history("h_ab.detectors.dark_rate_hz_ch1")
    assert [r.passed for r in history] == [True, False, False]  # both attempts recorded
    assert history[-1].value > 100
    assert store.latest("alice.laser.resonance_wavelength_nm") is None
    assert not CalibrationStore.beside(config).path.exists()  # store_path was used

    summary = report.summary_path.read_text()
    assert "alice.laser_resonance" in summary and "skipped: h_ab.detectors failed" in summary
    assert "overall: FAILED (exit 1)" in summary
    assert {p.name for p in report.plot_paths} == {"alice.rabi.png", "alice.ramsey.png"}
    [network] = opened
    _assert_all_safe(network)


def test_an_error_in_a_step_is_reported_and_leaves_everything_safe(
    tmp_path: Path, opened: list[Network], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A routine that raises while alice's laser is on: both attempts fail with the error
    named, its dependents are skipped, and every instrument still ends safe."""
    lit_when_raised = []

    def broken(*args, **kwargs):
        lit_when_raised.append(opened[0].simulated_lab.instruments["alice_laser"].output_on)
        raise RuntimeError("time tagger lost its reference clock")

    monkeypatch.setattr(calibrate_runner, "calibrate_detectors", broken)
    report = run_calibrations(
        _lab(tmp_path), nodes=["alice"], report_dir=tmp_path / "r", settings=FAST
    )

    assert lit_when_raised == [True, True]  # the laser was on at each attempt's error
    detectors = report.step("h_ab.detectors")
    assert detectors.status == "failed" and detectors.attempts == 2
    assert "RuntimeError: time tagger lost its reference clock" in detectors.reason
    assert report.step("alice.laser_resonance").status == "skipped"
    assert report.exit_code == 1
    assert "RuntimeError" in report.summary_path.read_text()
    _assert_all_safe(opened[0])


def test_an_interrupt_leaves_everything_safe_and_propagates(
    tmp_path: Path, opened: list[Network], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args, **kwargs):
        assert opened[0].simulated_lab.instruments["alice_laser"].output_on
        raise KeyboardInterrupt

    monkeypatch.setattr(calibrate_runner, "calibrate_detectors", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_calibrations(_lab(tmp_path), nodes=["alice"], report_dir=tmp_path / "r", settings=FAST)
    _assert_all_safe(opened[0])


def test_a_converter_whose_tec_will_not_regulate_keeps_the_previous_optimum(
    tmp_path: Path, opened: list[Network], monkeypatch: pytest.MonkeyPatch, mocker
) -> None:
    """alice's crystal TEC stops regulating before her phase-matching scan (the mock of the
    routine test): the step fails at once, twice (retried), and yesterday's optimum stays in
    force; the steps before it passed."""
    config = _lab(tmp_path)
    store = CalibrationStore.beside(config)
    store.record("alice.frequency_converter.optimal_temperature_c", 56.0, 0.02, "C", True)
    real_scan = calibrate_runner.converter_phase_matching_scan

    def scan_with_a_dead_tec(qfc, *args, **kwargs):
        qfc.tec_output(False)
        mocker.patch.object(qfc.tec_output, "set")  # the TEC ignores the request to regulate
        return real_scan(qfc, *args, **kwargs)

    monkeypatch.setattr(calibrate_runner, "converter_phase_matching_scan", scan_with_a_dead_tec)
    report = run_calibrations(config, nodes=["alice"], report_dir=tmp_path / "r", settings=FAST)

    converter = report.step("alice.phase_matching")
    assert converter.status == "failed" and converter.attempts == 2
    assert "regulating" in converter.reason
    assert [s.status for s in report.steps if s is not converter] == ["passed"] * 5
    assert report.exit_code == 1
    store = CalibrationStore.beside(config)
    assert store.value("alice.frequency_converter.optimal_temperature_c") == 56.0
    assert {p.name for p in report.plot_paths} == {
        "alice.laser_resonance.png",
        "alice.rabi.png",
        "alice.ramsey.png",
    }
    _assert_all_safe(opened[0])
