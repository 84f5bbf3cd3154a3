"""The calibration store: versioned history, the latest passed value in force, timestamps,
atomic writes and clear errors for a corrupt file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from control.calibration_store import CalibrationStore, CalibrationStoreError


def test_history_versions_and_latest_passed_value(tmp_path: Path) -> None:
    store = CalibrationStore.beside(tmp_path / "two_node.network.yaml")
    assert store.path == tmp_path / "two_node.calibration.yaml"
    assert store.latest("alice.laser.wavelength_nm") is None
    before = datetime.now(UTC)
    store.record("alice.laser.wavelength_nm", 637.0031, 2e-5, "nm", True, "ok", "scan")
    store.record("alice.laser.wavelength_nm", 637.5, 0.1, "nm", False, "edge of scan", "scan")
    # a failed run leaves the previous value in force, and says why in the history
    latest = store.latest("alice.laser.wavelength_nm")
    assert latest is not None and latest.value == 637.0031 and latest.version == 1
    history = store.history("alice.laser.wavelength_nm")
    assert [r.version for r in history] == [1, 2]
    assert history[1].passed is False and history[1].reason == "edge of scan"
    assert all(r.timestamp.tzinfo is not None and r.timestamp >= before for r in history)
    # a new pass takes over; the store reloads from disk identically
    store.record("alice.laser.wavelength_nm", 637.0032, 2e-5, "nm", True, "ok", "scan")
    again = CalibrationStore(store.path)
    assert again.value("alice.laser.wavelength_nm") == 637.0032
    assert again.latest("alice.laser.wavelength_nm").version == 3
    assert again.history("alice.laser.wavelength_nm") == store.history("alice.laser.wavelength_nm")
    snap = again.snapshot()
    assert snap["alice.laser.wavelength_nm"]["value"] == 637.0032
    assert snap["alice.laser.wavelength_nm"]["unit"] == "nm"
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_never_passed_key_is_absent_from_snapshot_and_value_raises(tmp_path: Path) -> None:
    store = CalibrationStore(tmp_path / "cal.yaml")
    store.record("h_ab.dark_rate_hz_ch1", 500.0, 3.0, "Hz", False, "dark rate too high", "det")
    assert store.snapshot() == {}
    with pytest.raises(KeyError, match="h_ab.dark_rate_hz_ch1"):
        store.value("h_ab.dark_rate_hz_ch1")


def test_invalid_record_is_rejected_and_not_stored(tmp_path: Path) -> None:
    store = CalibrationStore(tmp_path / "cal.yaml")
    with pytest.raises(CalibrationStoreError, match="uncertainty"):
        store.record("x", 1.0, -1.0, "V", True)
    with pytest.raises(CalibrationStoreError, match="value"):
        store.record("x", float("nan"), 0.1, "V", True)
    assert store.keys() == []
    assert not store.path.exists()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("entries: [unclosed", "not valid YAML"),
        ("- 1\n- 2\n", "expected a mapping"),
        ("schema_version: 7\nentries: {}\n", "schema_version"),
        (
            "entries:\n  k:\n    - {version: 1, timestamp: '2024-01-01T00:00:00Z', value: oops,"
            " uncertainty: 0, unit: V, passed: true}\n",
            "entries.k.0.value",
        ),
        (
            "entries:\n  k:\n    - {version: 2, timestamp: '2024-01-01T00:00:00Z', value: 1,"
            " uncertainty: 0, unit: V, passed: true}\n",
            "versions [2]",
        ),
    ],
)
def test_corrupt_file_error_names_the_file_and_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "two_node.calibration.yaml"
    path.write_text(text)
    with pytest.raises(CalibrationStoreError) as info:
        CalibrationStore(path)
    assert str(path) in str(info.value)
    assert problem in str(info.value)


def test_runs_take_the_passed_values_in_force(tmp_path: Path) -> None:
    """What runs read: laser, converter (only when pumped) and MW carrier per node, the pi
    amplitude, and the smallest calibrated alpha of the links used; failed values never."""
    from sequences.attempt_loop import NodeOptics

    store = CalibrationStore(tmp_path / "cal.yaml")
    store.record("alice.laser.resonance_wavelength_nm", 637.002, 3e-5, "nm", True)
    store.record("alice.laser.resonance_wavelength_nm", 636.9, 3e-5, "nm", False, "edge")
    store.record("alice.frequency_converter.optimal_temperature_c", 56.1, 0.01, "C", True)
    store.record("alice.spin.resonance_frequency_hz", 2.8803e9, 1e4, "Hz", True)
    store.record("alice.spin.pi_pulse_amplitude_v", 0.37, 0.003, "V", True)
    store.record("alice-bob.alpha", 0.12, 0.02, "", True)
    store.record("charlie-bob.alpha", 0.09, 0.02, "", True)

    pumped = store.node_optics("alice", NodeOptics(converter_pump_mw=500.0))
    assert pumped.laser_wavelength_nm == 637.002  # the failed 636.9 is not in force
    assert pumped.converter_temperature_c == 56.1
    assert pumped.microwave_frequency_hz == 2.8803e9
    assert pumped.converter_pump_mw == 500.0  # the rest of the base is kept
    assert store.node_optics("alice", NodeOptics()).converter_temperature_c is None
    assert store.node_optics("bob", NodeOptics()) == NodeOptics()  # nothing calibrated
    assert store.pi_pulse_amplitude_v("alice") == 0.37
    assert store.pi_pulse_amplitude_v("bob") is None
    assert store.alpha([("bob", "alice")]) == 0.12  # either order
    assert store.alpha([("alice", "bob"), ("bob", "charlie")]) == 0.09
    assert store.alpha([("alice", "bob"), ("bob", "dave")]) is None
    store.record("alice.qubit_controller.f0", 0.94, 0.01, "", True)
    assert store.readout("alice") is None  # F1 not calibrated yet
    store.record("alice.qubit_controller.f1", 0.98, 0.01, "", True)
    assert store.readout("alice") == (0.94, 0.98)
