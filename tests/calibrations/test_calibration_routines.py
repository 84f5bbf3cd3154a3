"""Calibration routines against the simulated lab: the true parameters are set in a copy of
the lab's physics file and hidden from the routines, which see only the HAL instruments; the
tests read the truth back from the simulated lab and check each routine found it within its
stated uncertainty (and a fixed tolerance)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from qcodes.instrument import Instrument

from control.backend import Network, open_network
from control.calibration_store import CalibrationStore
from sequences.attempt_loop import NodeOptics, prepare_node, prepare_station
from sequences.calibrations import (
    LinkProbe,
    calibrate_detectors,
    converter_phase_matching_scan,
    laser_resonance_scan,
    readout_fidelity,
)

CONFIGS = Path(__file__).parents[2] / "lab_configs"

#: The hidden truths of the shifted lab (alice's node; bob is built from the same anchor).
TRUE_TRANSITION_NM = 637.0034
TRUE_OPTIMUM_C = 56.3
TRUE_DARK_HZ = 35.0
TRUE_F0, TRUE_F1 = 0.93, 0.98


def _shifted_lab(tmp_path: Path) -> Path:
    """A copy of the two-node network whose physics has shifted truths. Photon collection is
    raised to 0.05 (not a calibrated quantity) so a scan needs few attempts."""
    for f in CONFIGS.glob("*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    physics = yaml.safe_load((tmp_path / "nv_delft_link.yaml").read_text())
    lab = physics["simulated_lab"]
    for node in lab["nodes"].values():
        node["collection_efficiency"] = 0.05
        node["excitation"] = {"transition_wavelength_nm": TRUE_TRANSITION_NM}
        node["converter"] = {"optimal_temperature_c": TRUE_OPTIMUM_C}
        qubit = node["communication_qubit"]
        qubit.update(init_error=0.0, gate_depolarizing=0.0, readout_f0=TRUE_F0, readout_f1=TRUE_F1)
    lab["links"][0]["detectors"]["dark_count_rate_hz"] = TRUE_DARK_HZ
    (tmp_path / "nv_delft_link.yaml").write_text(yaml.safe_dump(physics))
    return tmp_path / "two_node.network.yaml"


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Network]:
    network = open_network(_shifted_lab(tmp_path))
    yield network
    network.close()
    Instrument.close_all()


def _light_alice_only(
    net: Network, wavelength_nm: float = 637.0, temperature_c: float = 55.0
) -> LinkProbe:
    """Both nodes prepared for attempts, only alice's laser on, station biased."""
    for node in ("alice", "bob"):
        prepare_node(
            NodeOptics(
                laser_wavelength_nm=wavelength_nm,
                laser_power_mw=10.0,
                converter_pump_mw=500.0,
                converter_temperature_c=temperature_c,
            ),
            net.instrument(node, "laser"),
            net.instrument(node, "optical_switch"),
            net.instrument(node, "microwave"),
            net.instrument(node, "frequency_converter"),
        )
    net.instrument("bob", "laser").set_output(False)
    tagger = net.instrument("h_ab", "time_tagger")
    prepare_station(net.instrument("h_ab", "detectors"), tagger, (1, 2), (1, 2), bias_ua=9.0)
    return LinkProbe([net.instrument("alice", "awg"), net.instrument("bob", "awg")], tagger)


def test_laser_resonance_scan_finds_the_hidden_transition(net: Network, tmp_path: Path) -> None:
    """Truth 637.0034 nm, off the laser's 1 pm setpoint grid: the Lorentzian centre is found
    to well below a setpoint step (stated tolerance 0.2 pm, and within 4 sigma)."""
    truth = net.simulated_lab.lab.params.nodes["alice"].excitation.transition_wavelength_nm
    assert truth == TRUE_TRANSITION_NM
    probe = _light_alice_only(net, temperature_c=TRUE_OPTIMUM_C)
    laser = net.instrument("alice", "laser")
    result = laser_resonance_scan(laser, probe, centre_guess_nm=637.0)
    assert result.passed, result.reason
    found = result.quantities["resonance_wavelength_nm"]
    assert abs(found.value - truth) <= 4 * found.uncertainty + 1e-6, (found, truth)
    assert abs(found.value - truth) <= 2e-4
    assert found.uncertainty <= 1e-4
    assert laser.get_wavelength_nm() == pytest.approx(637.003)  # nearest setpoint
    assert len(result.scan["clicks"]) == 17
    # recorded in the store beside the network file
    store = CalibrationStore.beside(tmp_path / "two_node.network.yaml")
    store.record_result("alice.laser", result)
    assert store.path.name == "two_node.calibration.yaml"
    assert store.value("alice.laser.resonance_wavelength_nm") == found.value


def test_laser_scan_far_from_the_line_fails_and_restores_the_laser(net: Network) -> None:
    """A scan that misses the transition (only the tail at one end) fails, says why, and
    leaves the laser where it was."""
    probe = _light_alice_only(net, wavelength_nm=636.99)
    laser = net.instrument("alice", "laser")
    result = laser_resonance_scan(laser, probe, centre_guess_nm=636.98, attempts_per_point=50_000)
    assert not result.passed
    assert result.reason
    assert laser.get_wavelength_nm() == pytest.approx(636.99)


def test_converter_scan_finds_the_phase_matching_temperature(net: Network) -> None:
    """Truth 56.3 C (default 55.0); the sinc^2 fit finds it within 0.03 C and 4 sigma."""
    truth = net.simulated_lab.lab.params.nodes["alice"].converter.optimal_temperature_c
    probe = _light_alice_only(net, wavelength_nm=637.003)
    qfc = net.instrument("alice", "frequency_converter")
    qfc.tec_output.set(True)  # set-up: the crystal's TEC regulates (not a HAL role)
    result = converter_phase_matching_scan(qfc, probe, centre_guess_c=56.0)
    assert result.passed, result.reason
    found = result.quantities["optimal_temperature_c"]
    assert abs(found.value - truth) <= 4 * found.uncertainty, (found, truth)
    assert abs(found.value - truth) <= 0.03
    bandwidth = result.quantities["temperature_bandwidth_c"]
    assert abs(bandwidth.value - 1.0) <= 4 * bandwidth.uncertainty  # configured FWHM 1.0 C
    assert qfc.get_crystal_temperature_c() == pytest.approx(found.value, abs=1e-3)


def test_converter_scan_fails_when_the_crystal_does_not_follow_its_setpoint(
    net: Network, mocker
) -> None:
    """A TEC that will not switch on: the crystal sits at ambient temperature whatever the
    setpoint; the scan stops at once and says why."""
    probe = _light_alice_only(net, wavelength_nm=637.003)
    qfc = net.instrument("alice", "frequency_converter")
    qfc.tec_output(False)
    mocker.patch.object(qfc.tec_output, "set")  # the TEC ignores the request to regulate
    result = converter_phase_matching_scan(qfc, probe, centre_guess_c=56.0)
    assert not result.passed
    assert "regulating" in result.reason


def test_detector_calibration_finds_dark_rates_and_relative_efficiency(net: Network) -> None:
    """Dark rate truth 35 Hz at the plateau; detector 2 biased lower (8.3 uA) so its
    efficiency and dark rate differ: the routine finds both rates and eta2/eta1 within 4
    sigma of the truth the simulated lab computes from the bias."""
    probe = _light_alice_only(net, wavelength_nm=637.003, temperature_c=TRUE_OPTIMUM_C)
    net.instrument("h_ab", "detectors").set_bias_current_ua(8.3, channel=2)
    op = net.simulated_lab.operating_point(("alice", "bob"))
    true_dark = op.dark_count_rate_hz
    true_ratio = op.detector_efficiency[1] / op.detector_efficiency[0]
    assert true_dark[0] == pytest.approx(TRUE_DARK_HZ)
    lasers = [net.instrument("alice", "laser"), net.instrument("bob", "laser")]
    result = calibrate_detectors(
        probe, net.instrument("alice", "qubit_controller"), lasers, max_efficiency_imbalance=0.3
    )
    assert result.passed, result.reason
    for ch, truth in zip((1, 2), true_dark, strict=True):
        q = result.quantities[f"dark_rate_hz_ch{ch}"]
        assert abs(q.value - truth) <= 4 * q.uncertainty, (ch, q, truth)
    ratio = result.quantities["relative_efficiency"]
    assert abs(ratio.value - true_ratio) <= 4 * ratio.uncertainty + 0.01, (ratio, true_ratio)
    assert abs(true_ratio - 1) > 0.1  # the imbalance is real, and found
    assert lasers[0].is_output_on() and not lasers[1].is_output_on()  # lasers restored


def test_detector_calibration_fails_with_an_imbalanced_pair(net: Network) -> None:
    probe = _light_alice_only(net, wavelength_nm=637.003, temperature_c=TRUE_OPTIMUM_C)
    net.instrument("h_ab", "detectors").set_bias_current_ua(7.5, channel=2)  # eta2/eta1 ~ 0.54
    lasers = [net.instrument("alice", "laser")]
    result = calibrate_detectors(probe, net.instrument("alice", "qubit_controller"), lasers)
    assert not result.passed
    assert "efficiency of channel 2" in result.reason


def test_readout_fidelity_finds_f0_and_f1(net: Network) -> None:
    """Truth F0 = 0.93, F1 = 0.98 with perfect preparation: found within 4 sigma."""
    qubit = net.simulated_lab.lab.params.nodes["alice"].communication_qubit
    result = readout_fidelity(net.instrument("alice", "qubit_controller"), shots=2000)
    assert result.passed, result.reason
    for name, truth in (("f0", qubit.readout_f0), ("f1", qubit.readout_f1)):
        q = result.quantities[name]
        assert abs(q.value - truth) <= 4 * q.uncertainty, (name, q, truth)
    assert (qubit.readout_f0, qubit.readout_f1) == (TRUE_F0, TRUE_F1)
    strict = readout_fidelity(net.instrument("alice", "qubit_controller"), shots=500, min_f0=0.99)
    assert not strict.passed and "F0" in strict.reason
