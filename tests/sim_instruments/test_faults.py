"""Fault injection in the simulated lab, and the drivers' answer to each fault: bounded
retries with back-off for commands safe to repeat, none for the others, reconnecting, and
re-applying settings after a reboot."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from drivers.errors import (
    InstrumentCommunicationError,
    InstrumentGarbledReplyError,
    InstrumentRebootedError,
    InstrumentTimeoutError,
)
from drivers.resilience import RetryPolicy
from drivers.rs_sgs100a import RohdeSchwarzSGS100A
from drivers.santec_tsl570 import SantecTSL570
from sim_backend.config import ConfigError, load_fault_file
from sim_backend.instruments.faults import FaultRule, FaultyInstrument, with_faults
from sim_backend.instruments.sim_idq_id900 import SimIdqID900
from sim_backend.instruments.sim_rs_sgs100a import SimRsSGS100A
from sim_backend.instruments.sim_santec_tsl570 import SimSantecTSL570
from sim_backend.instruments.tcp_server import InstrumentServer
from sim_backend.params import FaultPlan

ADDRESS = "TCPIP0::laser-a::5000::SOCKET"


class Recorder:
    """A driver's back-off, recorded instead of slept."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sim(hooks) -> SimSantecTSL570:
    return SimSantecTSL570("laser_a", hooks=hooks)


@pytest.fixture
def faulty(sim: SimSantecTSL570) -> FaultyInstrument:
    return FaultyInstrument(sim)


@pytest.fixture
def laser(faulty: FaultyInstrument, connect) -> SantecTSL570:
    driver = connect(SantecTSL570, faulty, ADDRESS, "laser_a")
    driver.resilience.sleep = Recorder()
    return driver


def test_a_timed_out_query_is_retried_once_after_the_first_back_off(laser, faulty) -> None:
    laser.power.set(3.0)
    faulty.inject("timeout")
    assert laser.power.get() == pytest.approx(3.0)
    stats = laser.resilience.stats
    assert (stats.retries, stats.recovered, stats.gave_up) == (1, 1, 0)
    assert stats.faults == {"timeout": 1}
    assert laser.resilience.sleep.waits == [0.05]
    assert [f.kind for f in faulty.log] == ["timeout"]


def test_back_off_doubles_up_to_its_bound_then_the_driver_gives_up(laser, faulty) -> None:
    for _ in range(4):  # the first try and three retries
        faulty.inject("timeout")
    with pytest.raises(InstrumentTimeoutError) as info:
        laser.power.get()
    assert str(info.value) == (
        "laser_a (Santec TSL-570): command ':POW?' timed out: no answer within 5 s; "
        "gave up after 3 retries (0.35 s of back-off)"
    )
    assert laser.resilience.sleep.waits == [0.05, 0.1, 0.2]
    assert laser.resilience.stats.gave_up == 1
    assert laser.power.get() == pytest.approx(laser.power.get())  # the session works again
    capped = RetryPolicy(retries=6, first_backoff_s=0.1, factor=3.0, max_backoff_s=0.5)
    assert capped.delays() == pytest.approx((0.1, 0.3, 0.5, 0.5, 0.5, 0.5))


def test_a_dropped_set_command_is_sent_again_on_a_new_connection(laser, faulty, sim) -> None:
    faulty.inject("drop")  # the connection breaks before the command is executed
    laser.power.set(4.0)
    assert sim.power_dbm == pytest.approx(4.0)
    stats = laser.resilience.stats
    assert (stats.reconnects, stats.retries, stats.reboots) == (1, 1, 0)


def test_garbled_and_truncated_replies_are_named_and_retried(laser, faulty) -> None:
    laser.power.set(2.0)
    laser.resilience.policy = RetryPolicy(retries=0)
    faulty.inject("garble")
    with pytest.raises(InstrumentGarbledReplyError, match=r"laser_a .*':POW\?' gave a garbled"):
        laser.power.get()
    faulty.inject("truncate")
    with pytest.raises(InstrumentGarbledReplyError, match=r"':POW\?' gave a truncated reply"):
        laser.power.get()
    laser.resilience.policy = RetryPolicy()
    faulty.inject("garble")
    faulty.inject("truncate")
    assert laser.power.get() == pytest.approx(2.0)
    assert laser.resilience.stats.faults == {"garbled reply": 2, "truncated reply": 2}


def test_a_late_reply_is_discarded_not_read_as_the_next_answer(laser, faulty) -> None:
    laser.power.set(1.5)
    laser.wavelength.set(1550.0)
    faulty.inject("slow", delay_s=30.0)  # later than the 5 s VISA timeout
    assert laser.power.get() == pytest.approx(1.5)
    assert laser.wavelength.get() == pytest.approx(1550.0)
    assert laser.resilience.stats.faults == {"timeout": 1}
    faulty.inject("slow", delay_s=1.0)  # slow, but within the timeout: nothing to do
    assert laser.power.get() == pytest.approx(1.5)
    assert laser.resilience.stats.faults == {"timeout": 1}


def test_after_a_reboot_the_last_set_values_are_applied_again(laser, faulty, sim) -> None:
    laser.wavelength.set(1549.5)
    laser.power.set(5.0)
    laser.output.set(True)
    faulty.inject("reboot")
    assert laser.power.get() == pytest.approx(5.0)
    assert sim.output_on is True and sim.wavelength_nm == pytest.approx(1549.5)
    stats = laser.resilience.stats
    assert (stats.reconnects, stats.reboots) == (1, 1)
    assert stats.reapplied == len(laser._applied) >= 3
    assert sim.esr == 0  # the power-on flag was read (and so cleared)


def test_a_command_not_safe_to_repeat_is_sent_once(laser, faulty, sim) -> None:
    laser.NOT_REPEATABLE = (":POW:STAT",)  # as if switching on started something
    faulty.inject("drop")
    with pytest.raises(InstrumentCommunicationError) as info:
        laser.output.set(True)
    message = str(info.value)
    assert message.startswith("laser_a (Santec TSL-570): command ':POW:STAT 1' failed")
    assert "not repeated: the command is not safe to send twice" in message
    assert sim.output_on is False  # dropped before it was executed, and not sent again
    assert laser.resilience.stats.not_repeated == 1
    assert laser.resilience.stats.retries == 0
    assert laser.power.get() is not None  # already reconnected for the next command


def test_a_real_time_controller_that_reboots_has_lost_its_qubits(tmp_path: Path) -> None:
    from control.backend import open_network

    plan = tmp_path / "faults.yaml"
    plan.write_text("seed: 1\nfaults: []\n")
    network = Path(__file__).parents[2] / "lab_configs" / "two_node.network.yaml"
    net = open_network(network)
    try:
        rtc = net.instrument("alice", "qubit_controller")
        sim = net.simulated_lab.instruments[rtc.name]
        faulty = FaultyInstrument(sim)
        library = rtc.visa_handle.visalib
        library.detach(rtc.visa_handle.resource_name)
        library.attach(rtc.visa_handle.resource_name, faulty)
        faulty.inject("reboot")
        with pytest.raises(InstrumentRebootedError) as info:
            rtc.time_s()
        assert "SYST:TIME?" in str(info.value) and "qubit states were lost" in str(info.value)
        assert rtc.time_s() >= 0  # reconnected: the next command works
    finally:
        net.close()


def test_faults_at_given_message_numbers_and_at_random_are_reproducible(sim) -> None:
    rules = {"laser_a": [FaultRule("timeout", probability=0.2, after=2)]}
    runs = []
    for _ in range(2):
        faulty = with_faults({"laser_a": sim}, rules, seed=11)["laser_a"]
        for _ in range(200):
            faulty.handle(":POW?")
        runs.append([f.number for f in faulty.log])
    assert runs[0] == runs[1] and all(n > 2 for n in runs[0])
    assert 20 <= len(runs[0]) <= 60  # ~0.2 x 198
    at = FaultyInstrument(sim, (FaultRule("garble", at=frozenset({2, 3})),))
    at.handle(":POW 1")  # message 1
    at.handle(":POW 2")  # message 2 has no reply: the fault waits for one
    assert at.handle(":POW?") != "2"
    assert [(f.number, f.kind) for f in at.log] == [(3, "garble")]


def test_fault_plans_are_validated_with_the_field_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="either a probability > 0 or message numbers"):
        FaultPlan.model_validate(
            {"faults": [{"instrument": "a", "kind": "drop", "probability": 0.1, "at": [3]}]}
        )
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 1\nfaults:\n  - {instrument: alice_laser, kind: melt, at: [1]}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: faults.0.kind: Input should be"):
        load_fault_file(bad)
    with pytest.raises(ValueError, match="no power-on state"):
        FaultyInstrument(SimIdqID900("tagger"), (FaultRule("reboot", at=frozenset({1})),))


def test_over_tcp_drops_truncations_and_late_replies_are_recovered() -> None:
    sim = SimRsSGS100A("mw_a")
    faulty = FaultyInstrument(sim)
    with InstrumentServer({"mw_a": faulty}, lock=threading.Lock()) as server:
        mw = RohdeSchwarzSGS100A("mw_tcp", address=server.address("mw_a"), visalib="@py")
        try:
            mw.resilience.sleep = Recorder()
            mw.visa_handle.timeout = 200  # ms: a late reply after 0.5 s is a timeout
            mw.power.set(-5.0)
            for kind in ("drop", "truncate"):
                faulty.inject(kind)
                assert mw.power.get() == pytest.approx(-5.0)
            faulty.inject("slow", delay_s=0.5)
            assert mw.power.get() == pytest.approx(-5.0)
            assert mw.frequency.get() == pytest.approx(sim.frequency_hz)  # not the late reply
            stats = mw.resilience.stats
            # pyvisa-py reads a socket the instrument closed as a timeout; each fault was
            # met by a new connection (a raw socket's only clean input) and one retry
            assert (stats.reconnects, stats.retries, stats.recovered) == (3, 3, 3)
            assert stats.faults == {"timeout": 3}
        finally:
            mw.close()


def test_a_model_without_power_on_flag_is_checked_by_reading_its_settings_back(
    laser, faulty, sim, monkeypatch
) -> None:
    monkeypatch.setattr(SantecTSL570, "power_on_query", property(lambda self: None))
    laser.power.set(6.0)
    laser.output.set(True)
    assert laser.check_health() is False
    faulty.inject("reset")  # a power glitch: the connection survives, the settings do not
    assert laser.check_health() is True
    assert sim.power_dbm == pytest.approx(6.0) and sim.output_on is True
    assert (laser.resilience.stats.reboots, laser.resilience.stats.reconnects) == (1, 0)
