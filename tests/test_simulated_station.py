"""The same drivers against the physics-backed simulated instruments: cause and effect through
the physics, with the network and station files an operator would use."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import qcodes
import yaml
from qcodes.instrument import Instrument

from control.backend import Network, open_network
from control.network_config import NetworkConfigError, load_network
from sequences.attempt_loop import (
    AttemptLoop,
    NodeOptics,
    prepare_node,
    prepare_station,
    run_attempt_loops,
)
from sequences.time_tags import coincidences, counts_per_channel, single_clicks

CONFIGS = Path(__file__).parents[1] / "lab_configs"
TWO_NODE = CONFIGS / "two_node.network.yaml"
WINDOW_PS = 2000  # both photons of an attempt reach the station within this


@pytest.fixture(autouse=True)
def _close_instruments():
    yield
    Instrument.close_all()


def _network_with(tmp_path: Path, collection: float, **link_changes) -> Path:
    """A copy of the two-node network whose physics has the given photon collection."""
    for f in CONFIGS.glob("*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    physics = yaml.safe_load((tmp_path / "nv_delft_link.yaml").read_text())
    for node in physics["simulated_lab"]["nodes"].values():
        node["collection_efficiency"] = collection
    physics["simulated_lab"]["links"][0].update(link_changes)
    (tmp_path / "nv_delft_link.yaml").write_text(yaml.safe_dump(physics))
    return tmp_path / "two_node.network.yaml"


def _run(
    net: Network,
    attempts: int,
    *,
    laser_on: bool = True,
    pump_mw: float = 500.0,
    alpha: float = 0.1,
    bias_ua: float = 9.0,
) -> np.ndarray:
    """Set both nodes and the station up through the HAL, run the attempt loops, read tags."""
    for node in ("alice", "bob"):
        prepare_node(
            NodeOptics(laser_power_mw=1.0, converter_pump_mw=pump_mw, converter_temperature_c=55.0),
            net.instrument(node, "laser"),
            net.instrument(node, "optical_switch"),
            net.instrument(node, "microwave"),
            net.instrument(node, "frequency_converter"),
        )
        if not laser_on:
            net.instrument(node, "laser").set_output(False)
    tagger = net.instrument("h_ab", "time_tagger")
    prepare_station(net.instrument("h_ab", "detectors"), tagger, (1, 2), (1, 2), bias_ua=bias_ua)
    tagger.read_tags()  # start from an empty buffer
    loop = AttemptLoop(alpha=alpha, max_attempts=attempts, stop_at_herald=False)
    run_attempt_loops([net.instrument("alice", "awg"), net.instrument("bob", "awg")], loop)
    return tagger.read_tags()


def test_network_opens_on_the_simulated_lab_with_the_lab_drivers() -> None:
    with open_network(TWO_NODE) as net:
        assert net.backend == "simulated"
        laser = net.instrument("alice", "laser")
        assert type(laser).__module__ == "drivers.newfocus_tlb6700"
        assert "6700" in str(laser.get_idn())
        snapshot = net.stations["alice"].snapshot()
        assert set(snapshot["instruments"]) == {
            "alice_laser",
            "alice_aom",
            "alice_awg",
            "alice_mw",
            "alice_qfc",
            "alice_rtc",
        }
        assert net.safe_state() == {}


def test_station_files_load_with_qcodes() -> None:
    station = qcodes.Station(config_file=str(CONFIGS / "alice.station.yaml"))
    assert set(station.config["instruments"]) == {
        "alice_laser",
        "alice_aom",
        "alice_awg",
        "alice_mw",
        "alice_qfc",
        "alice_rtc",
    }


def test_laser_off_leaves_only_dark_counts(tmp_path: Path) -> None:
    net = open_network(_network_with(tmp_path, collection=0.05))
    attempts = 2_000_000
    tags = _run(net, attempts, laser_on=False)
    hardware = net.simulated_lab
    duration = hardware.lab.clock.now
    dark = hardware.operating_point(("alice", "bob")).dark_count_rate_hz
    counts = counts_per_channel(tags)
    for port, channel in enumerate((1, 2)):
        expected = dark[port] * duration
        assert abs(counts.get(channel, 0) - expected) <= 3 * math.sqrt(expected) + 1
    # and with the laser on, the same run clicks far more often
    lit = _run(net, attempts // 20)
    lit_duration = hardware.lab.clock.now - duration
    assert sum(counts_per_channel(lit).values()) > 10 * sum(dark) * lit_duration


def test_halving_the_conversion_efficiency_halves_the_herald_rate(tmp_path: Path) -> None:
    """Pump power at a quarter of full conversion gives sin^2(pi/4) = 1/2 of the efficiency;
    with eta << 1 the single-click herald probability 2 alpha eta halves with it."""
    net = open_network(_network_with(tmp_path, collection=0.05))
    attempts = 200_000
    full = sum(single_clicks(_run(net, attempts, pump_mw=500.0), (1, 2), WINDOW_PS).values())
    half = sum(single_clicks(_run(net, attempts, pump_mw=125.0), (1, 2), WINDOW_PS).values())
    ratio = half / full
    sigma = ratio * math.sqrt(1 / half + 1 / full)
    assert abs(ratio - 0.5) <= 3 * sigma + 0.02, (full, half)
    assert full > 300


def test_time_tags_reproduce_the_predicted_count_and_coincidence_rates(tmp_path: Path) -> None:
    """Clicks per detector and two-detector coincidences in the tags match what the link's
    physics predicts per attempt (all click patterns of the heralding POVM) plus dark counts
    between attempts."""
    net = open_network(_network_with(tmp_path, collection=0.5, visibility=0.6))
    hardware = net.simulated_lab
    attempts = 100_000
    start = hardware.lab.clock.now
    tags = _run(net, attempts, alpha=0.5)
    duration = hardware.lab.clock.now - start
    model = hardware.link_model(("alice", "bob"))
    op = hardware.operating_point(("alice", "bob"))
    p_plus = sum(p for c, p in model.outcome_probabilities.items() if c[0] in ("+", "both"))
    p_minus = sum(p for c, p in model.outcome_probabilities.items() if c[0] in ("-", "both"))
    p_both = model.outcome_probabilities[("both",)]
    counts = counts_per_channel(tags)
    for channel, p, dark in (
        (1, p_plus, op.dark_count_rate_hz[0]),
        (2, p_minus, op.dark_count_rate_hz[1]),
    ):
        expected = attempts * p + dark * duration
        assert abs(counts[channel] - expected) <= 3 * math.sqrt(expected), (channel, counts)
    expected_coincidences = attempts * p_both
    measured = coincidences(tags, 1, 2, WINDOW_PS)
    assert expected_coincidences > 100
    assert abs(measured - expected_coincidences) <= 3 * math.sqrt(expected_coincidences) + 2


def test_detector_bias_sets_dark_counts_and_latching() -> None:
    with open_network(TWO_NODE) as net:
        snspd = net.instrument("h_ab", "detectors")
        hardware = net.simulated_lab
        snspd.set_bias_enabled(True)
        snspd.set_bias_current_ua(9.0, channel=1)
        low = hardware.operating_point(("alice", "bob")).dark_count_rate_hz[0]
        snspd.set_bias_current_ua(11.0, channel=1)
        high = hardware.operating_point(("alice", "bob")).dark_count_rate_hz[0]
        assert high > 5 * low > 0
        assert not snspd.is_latched(channel=1)
        snspd.set_bias_current_ua(12.5, channel=1)  # above the switching current
        assert snspd.is_latched(channel=1)
        assert hardware.operating_point(("alice", "bob")).detector_efficiency[0] == 0.0


def test_awg_sequence_sets_attempt_period_and_alpha() -> None:
    with open_network(TWO_NODE) as net:
        for node in ("alice", "bob"):
            prepare_node(
                NodeOptics(converter_pump_mw=500.0),
                net.instrument(node, "laser"),
                net.instrument(node, "optical_switch"),
                net.instrument(node, "microwave"),
                net.instrument(node, "frequency_converter"),
            )
        sequence_loop = AttemptLoop(alpha=0.2, max_attempts=10, attempt_duration_us=5.0)
        from sequences.attempt_loop import compile_attempt_loop

        for node in ("alice", "bob"):
            net.instrument(node, "awg").upload_sequence(compile_attempt_loop(sequence_loop))
        op = net.simulated_lab.operating_point(("alice", "bob"))
        assert op.attempt_duration_us == pytest.approx(5.0)
        assert op.bright_population == pytest.approx(0.2, rel=1e-3)


def _broken(tmp_path: Path, edit) -> Path:
    for f in CONFIGS.glob("*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    edit(tmp_path)
    return tmp_path / "two_node.network.yaml"


def _edit_yaml(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def test_unknown_driver_is_rejected_before_anything_connects(tmp_path: Path) -> None:
    def edit(d: Path) -> None:
        _edit_yaml(
            d / "alice.station.yaml",
            lambda s: s["instruments"]["alice_laser"].update(type="drivers.acme.Laser9000"),
        )

    with pytest.raises(NetworkConfigError) as info:
        load_network(_broken(tmp_path, edit))
    message = str(info.value)
    assert "alice.station.yaml: instruments.alice_laser.type" in message
    assert "drivers.acme.Laser9000" in message and "drivers.santec_tsl570.SantecTSL570" in message


def test_missing_address_duplicate_name_and_schema_errors(tmp_path: Path) -> None:
    def no_address(d: Path) -> None:
        _edit_yaml(d / "bob.station.yaml", lambda s: s["instruments"]["bob_mw"].pop("address"))

    (tmp_path / "a").mkdir()
    with pytest.raises(NetworkConfigError, match=r"bob.station.yaml: instruments.bob_mw.address"):
        load_network(_broken(tmp_path / "a", no_address))

    def duplicate(d: Path) -> None:
        _edit_yaml(
            d / "bob.station.yaml",
            lambda s: s["instruments"].update(alice_laser=s["instruments"]["bob_laser"]),
        )

    (tmp_path / "b").mkdir()
    with pytest.raises(NetworkConfigError, match="duplicate instrument name"):
        load_network(_broken(tmp_path / "b", duplicate))

    def schema(d: Path) -> None:
        _edit_yaml(
            d / "h_ab.station.yaml", lambda s: s["instruments"]["h_ab_snspd"].update(port="x")
        )

    (tmp_path / "c").mkdir()
    with pytest.raises(NetworkConfigError, match="QCoDeS station schema"):
        load_network(_broken(tmp_path / "c", schema))


def test_network_file_errors_name_the_field(tmp_path: Path) -> None:
    def bad_value(d: Path) -> None:
        _edit_yaml(
            d / "two_node.network.yaml",
            lambda n: n["heralding_stations"]["h_ab"]["time_tagger"].update(minus=1),
        )

    (tmp_path / "a").mkdir()
    with pytest.raises(NetworkConfigError, match=r"heralding_stations.h_ab.time_tagger"):
        load_network(_broken(tmp_path / "a", bad_value))

    def wrong_role(d: Path) -> None:
        _edit_yaml(
            d / "two_node.network.yaml",
            lambda n: n["nodes"]["alice"]["instruments"].update(laser="alice_mw"),
        )

    (tmp_path / "b").mkdir()
    with pytest.raises(NetworkConfigError, match="the laser role needs a Laser"):
        load_network(_broken(tmp_path / "b", wrong_role))

    def bad_backend(d: Path) -> None:
        _edit_yaml(d / "two_node.network.yaml", lambda n: n.update(backend="dream"))

    (tmp_path / "c").mkdir()
    with pytest.raises(NetworkConfigError, match=r"backend: Input should be 'simulated' or 'lab'"):
        load_network(_broken(tmp_path / "c", bad_backend))


def test_three_node_chain_opens() -> None:
    with open_network(CONFIGS / "three_node_chain.network.yaml") as net:
        assert set(net.stations) == {"alice", "bob", "charlie", "h_ab", "h_bc"}
        assert net.instrument("h_bc", "detectors").name == "h_bc_snspd"


def test_lab_backend_names_the_instrument_it_cannot_reach(tmp_path: Path) -> None:
    """The same files with backend 'lab': the first unreachable instrument (here a closed
    port on loopback) ends the connect with its station file, name and address."""
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def edit(d: Path) -> None:
        for station in d.glob("*.station.yaml"):
            _edit_yaml(
                station,
                lambda s: [
                    spec.update(address=f"TCPIP0::127.0.0.1::{port}::SOCKET")
                    for spec in s["instruments"].values()
                ],
            )

    from control.backend import InstrumentConnectionError

    with pytest.raises(InstrumentConnectionError) as info:
        open_network(_broken(tmp_path, edit), backend="lab")
    message = str(info.value)
    assert "alice.station.yaml: instruments.alice_" in message and "Connection refused" in message
    assert f"TCPIP0::127.0.0.1::{port}::SOCKET" in message and "could not connect" in message


def test_detector_dead_time_separates_clicks_on_one_channel(tmp_path: Path) -> None:
    """Dark counts at rate R on detectors with dead time tau: no two tags on one channel are
    closer than tau, and the measured rate is the non-paralysable R / (1 + R tau)
    (Knoll, Radiation Detection and Measurement, 4th ed., eq. 4.23)."""
    detectors = {"efficiency": 0.8, "dark_count_rate_hz": 20.0, "detection_window_ns": 25.0}
    detectors["dead_time_ns"] = 100_000.0  # 100 us: long enough to matter at kHz rates
    net = open_network(_network_with(tmp_path, collection=0.05, detectors=detectors))
    hardware = net.simulated_lab
    start = hardware.lab.clock.now
    tags = _run(net, 200_000, laser_on=False, bias_ua=11.9)
    duration = hardware.lab.clock.now - start
    rate = hardware.operating_point(("alice", "bob")).dark_count_rate_hz[0]
    tau = detectors["dead_time_ns"] * 1e-9
    for channel in (1, 2):
        times = np.sort(tags["time_ps"][tags["channel"] == channel])
        assert np.diff(times).min() >= tau * 1e12
        expected = rate * duration / (1 + rate * tau)
        assert abs(len(times) - expected) <= 3 * math.sqrt(expected), (len(times), expected)
        assert len(times) < 0.9 * rate * duration  # visibly fewer than without dead time


def test_time_tagger_channel_delay_shifts_that_channels_tags(tmp_path: Path) -> None:
    """The same seeded run twice, the second with a 50 ns delay on input 2: every tag of
    channel 2 arrives exactly 50 ns later, channel 1's tags are unchanged."""
    config = _network_with(tmp_path, collection=0.05)
    runs = []
    for delay_ps in (0, 50_000):
        net = open_network(config, seed=3)
        tags = _run(net, 20_000)  # sets delays to 0 and reads the first batch
        tagger = net.instrument("h_ab", "time_tagger")
        tagger.configure_channel(2, threshold_v=0.1, delay_ps=delay_ps, enabled=True)
        run_attempt_loops(
            [net.instrument("alice", "awg"), net.instrument("bob", "awg")],
            AttemptLoop(alpha=0.1, max_attempts=20_000, stop_at_herald=False),
        )
        runs.append(tagger.read_tags())
        net.close()
        Instrument.close_all()
        del tags
    plain, delayed = runs
    for channel, shift in ((1, 0), (2, 50_000)):
        a = np.sort(plain["time_ps"][plain["channel"] == channel])
        b = np.sort(delayed["time_ps"][delayed["channel"] == channel])
        assert len(a) == len(b) > 10
        assert np.all(b - a == shift)
