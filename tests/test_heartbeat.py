"""Heartbeats between the orchestrator and the node controllers (the safety issue): a silent
node is declared lost within the configured time (default 2 s), exactly once, and the other
nodes are sent to their safe state. Real node RPC servers on loopback, in this process."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from qcodes.instrument import Instrument

from control.backend import open_network
from control.heartbeat import HeartbeatMonitor, NodeLost, make_others_safe
from control.node import NodeController, NodeInstruments
from control.node_service import serve_node
from control.orchestrator import OrchestrationError
from control.rpc import RpcServer
from control.security import Security, generate_keypair
from sequences.attempt_loop import NodeOptics

CHAIN = Path(__file__).parents[1] / "lab_configs" / "three_node_chain.network.yaml"
OPTICS = NodeOptics(converter_pump_mw=500.0, converter_temperature_c=55.0)
MARGIN_S = 1.0  # for a shared, loaded test machine


class Recorder:
    """``on_lost``: records (node, reason) and when it was called."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.times: list[float] = []

    def __call__(self, node: str, reason: str) -> None:
        self.times.append(time.monotonic())
        self.calls.append((node, reason))


@pytest.fixture
def chain():
    """alice, bob and charlie served over loopback TCP; ``safe_calls`` lists the nodes whose
    safe_state ran (through RPC)."""
    network = open_network(CHAIN, seed=3)
    servers: dict[str, RpcServer] = {}
    safe_calls: list[str] = []
    for name in network.loaded.config.nodes:
        controller = NodeController(name, NodeInstruments.of(network, name), OPTICS)
        original = controller.safe_state

        def recorded(name: str = name, original=original) -> dict[str, str]:
            safe_calls.append(name)
            return original()

        controller.safe_state = recorded  # type: ignore[method-assign]
        servers[name] = serve_node(controller, "tcp://127.0.0.1:*").start()
    yield servers, safe_calls
    for server in servers.values():
        server.stop()
    network.close()
    Instrument.close_all()


def _endpoints(servers: dict[str, RpcServer]) -> dict[str, str]:
    return {name: server.endpoint for name, server in servers.items()}


def _wait(condition, limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_live_nodes_are_never_declared_lost(chain) -> None:
    servers, _ = chain
    lost = Recorder()
    with HeartbeatMonitor(
        _endpoints(servers), interval_s=0.05, lost_after_s=0.3, on_lost=lost
    ) as monitor:
        assert _wait(lambda: all(monitor.last_seen(n) is not None for n in servers), 5.0)
        time.sleep(1.0)  # more than three times lost_after_s
        now = time.monotonic()
        for name in servers:
            assert now - monitor.last_seen(name) < 0.3 + MARGIN_S
        monitor.raise_if_lost()  # nothing lost: returns
    assert monitor.lost == {} and lost.calls == []
    assert not monitor.running
    with pytest.raises(KeyError, match="'dave' is not monitored"):
        monitor.last_seen("dave")


def test_a_stopped_node_is_lost_within_the_default_two_seconds(chain) -> None:
    """The requirement with the default settings: bob's server stops; bob is declared lost
    at most lost_after_s + 2 intervals (+ margin) after his last answered ping, not before
    lost_after_s, once; alice and charlie stay."""
    servers, _ = chain
    endpoints = _endpoints(servers)
    lost = Recorder()
    monitor = HeartbeatMonitor(endpoints, on_lost=lost)  # interval 0.25 s, lost after 2 s
    assert (monitor.interval_s, monitor.lost_after_s) == (0.25, 2.0)
    with monitor:
        assert _wait(lambda: all(monitor.last_seen(n) is not None for n in servers), 5.0)
        servers["bob"].stop()
        assert _wait(monitor.lost_event.is_set, 2.0 + 0.5 + MARGIN_S + 2.0)
        last_ok = monitor.last_seen("bob")
        declared = monitor.declared_at("bob")
        assert last_ok is not None and declared is not None
        latency = declared - last_ok
        print(f"detection latency: {latency:.3f} s after the last answered ping")
        assert 2.0 <= latency <= 2.0 + 2 * 0.25 + MARGIN_S
        time.sleep(0.75)  # several more intervals: still declared once only
        assert [node for node, _ in lost.calls] == ["bob"]
        assert lost.times[0] - last_ok <= 2.0 + 2 * 0.25 + MARGIN_S
        reason = lost.calls[0][1]
        assert endpoints["bob"] in reason and "s since its last heartbeat" in reason
        assert set(monitor.lost) == {"bob"} and monitor.lost["bob"] == reason
        with pytest.raises(NodeLost) as info:
            monitor.raise_if_lost()
        assert info.value.node == "bob" and info.value.reason == reason
        assert "'bob'" in str(info.value) and endpoints["bob"] in str(info.value)
        assert isinstance(info.value, OrchestrationError)  # run loops already end on these
        for name in ("alice", "charlie"):  # still answering
            assert time.monotonic() - monitor.last_seen(name) < 2.0


def test_safe_on_loss_makes_the_others_safe_from_the_monitor_thread(chain) -> None:
    servers, safe_calls = chain
    lost = Recorder()
    with HeartbeatMonitor(
        _endpoints(servers), interval_s=0.05, lost_after_s=0.4, on_lost=lost, safe_on_loss=True
    ) as monitor:
        assert _wait(lambda: all(monitor.last_seen(n) is not None for n in servers), 5.0)
        servers["charlie"].stop()
        assert _wait(lambda: lost.calls, 0.4 + 0.1 + MARGIN_S + 2.0)
        # the others were made safe before on_lost was called
        assert sorted(safe_calls) == ["alice", "bob"]
    assert [n for n, _ in lost.calls] == ["charlie"]
    assert monitor.safe_failures == {}


def test_make_others_safe_tries_every_other_node() -> None:
    class Fake:
        def __init__(self, name: str, calls: list[str], fails: bool = False, report=None):
            self.name, self.calls, self.fails, self.report = name, calls, fails, report

        def safe_state(self) -> dict[str, str]:
            self.calls.append(self.name)
            if self.fails:
                raise TimeoutError(f"{self.name} does not answer")
            return self.report or {}

    calls: list[str] = []
    nodes = {
        "alice": Fake("alice", calls),
        "bob": Fake("bob", calls),
        "charlie": Fake("charlie", calls, fails=True),
        "dave": Fake("dave", calls, report={"laser": "RuntimeError: interlock"}),
        "erin": Fake("erin", calls),
    }
    failures = make_others_safe(nodes, "bob")
    assert calls == ["alice", "charlie", "dave", "erin"]  # all but the lost one, none skipped
    assert failures == {
        "charlie": "TimeoutError: charlie does not answer",
        "dave.laser": "RuntimeError: interlock",
    }


def test_a_node_that_never_answers_or_is_the_wrong_node_is_lost(chain) -> None:
    servers, _ = chain
    lost = Recorder()
    endpoints = {
        "alice": servers["alice"].endpoint,
        "bob": servers["charlie"].endpoint,  # charlie answers at bob's address
        "dave": f"tcp://127.0.0.1:{_free_port()}",  # nobody listens
    }
    with HeartbeatMonitor(endpoints, interval_s=0.05, lost_after_s=0.3, on_lost=lost) as monitor:
        assert _wait(lambda: len(lost.calls) == 2, 0.3 + 0.1 + MARGIN_S + 2.0)
        time.sleep(0.2)
    assert sorted(monitor.lost) == ["bob", "dave"]
    assert monitor.last_seen("dave") is None
    assert "since monitoring began" in monitor.lost["dave"]
    assert "answers as node 'charlie', not 'bob'" in monitor.lost["bob"]
    assert monitor.last_seen("alice") is not None and "alice" not in monitor.lost


def test_a_failing_on_lost_does_not_stop_the_heartbeats(chain) -> None:
    servers, _ = chain
    seen: list[str] = []

    def on_lost(node: str, reason: str) -> None:
        seen.append(node)
        raise RuntimeError("callback bug")

    endpoints = {"alice": servers["alice"].endpoint, "ghost": f"tcp://127.0.0.1:{_free_port()}"}
    with HeartbeatMonitor(endpoints, interval_s=0.05, lost_after_s=0.2, on_lost=on_lost) as mon:
        assert _wait(lambda: seen == ["ghost"], 0.2 + 0.1 + MARGIN_S + 2.0)
        before = mon.last_seen("alice")
        assert _wait(lambda: mon.last_seen("alice") != before, 2.0)
        assert mon.running


def test_curve_keys_come_from_security_for(tmp_path: Path) -> None:
    """Node servers with CURVE keys: the monitor connects with ``security_for(node)``; a
    monitor whose key the node does not accept hears nothing and declares it lost."""
    node_pub, node_sec = generate_keypair(tmp_path / "node", "alice")
    client_pub, client_sec = generate_keypair(tmp_path / "client", "orchestrator")
    _, stranger_sec = generate_keypair(tmp_path / "stranger", "stranger")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / client_pub.name).write_bytes(client_pub.read_bytes())
    server = RpcServer(
        "alice",
        "tcp://127.0.0.1:*",
        {},
        security=Security(server_secret_key_file=node_sec, allowed_clients_dir=allowed),
    ).start()
    asked: list[str] = []

    def security_for(secret: Path):
        def choose(node: str) -> Security:
            asked.append(node)
            return Security(client_secret_key_file=secret, server_public_key_file=node_pub)

        return choose

    try:
        good, bad = Recorder(), Recorder()
        kwargs = {"interval_s": 0.05, "lost_after_s": 0.4}
        with (
            HeartbeatMonitor(
                {"alice": server.endpoint},
                security_for=security_for(client_sec),
                on_lost=good,
                **kwargs,
            ) as allowed_monitor,
            HeartbeatMonitor(
                {"alice": server.endpoint},
                security_for=security_for(stranger_sec),
                on_lost=bad,
                **kwargs,
            ),
        ):
            assert _wait(lambda: bad.calls, 0.4 + 0.1 + MARGIN_S + 2.0)
            assert allowed_monitor.last_seen("alice") is not None
        assert good.calls == [] and [n for n, _ in bad.calls] == ["alice"]
        assert "CURVE" in bad.calls[0][1]
        assert set(asked) == {"alice"}
    finally:
        server.stop()


def _noop(node: str, reason: str) -> None:
    pass


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"interval_s": 0}, ValueError, r"interval_s=0\.0: expected a positive"),
        ({"interval_s": -1}, ValueError, r"interval_s=-1\.0"),
        ({"lost_after_s": float("nan")}, ValueError, r"lost_after_s=nan"),
        ({"interval_s": "fast"}, TypeError, r"interval_s='fast': expected a number"),
        ({"interval_s": 1.0, "lost_after_s": 1.0}, ValueError, r"lost_after_s=1\.0 must be "),
        ({"interval_s": 0.5, "lost_after_s": 0.2}, ValueError, r"greater than interval_s=0\.5"),
        ({"ping_timeout_s": 5.0}, ValueError, r"ping_timeout_s=5\.0 must not exceed"),
        ({"on_lost": None}, TypeError, r"on_lost=None: expected a callable"),
        ({"security_for": "keys"}, TypeError, r"security_for='keys'"),
        ({"endpoints": {}}, ValueError, r"endpoints=\{\}: expected a non-empty"),
        ({"endpoints": {"alice": "127.0.0.1:5555"}}, ValueError, r"endpoints\['alice'\]"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match) -> None:
    args = {"endpoints": {"alice": "tcp://127.0.0.1:5555"}, "on_lost": _noop, **kwargs}
    endpoints = args.pop("endpoints")
    with pytest.raises(error, match=match):
        HeartbeatMonitor(endpoints, **args)


def test_start_twice_is_refused() -> None:
    monitor = HeartbeatMonitor(
        {"ghost": f"tcp://127.0.0.1:{_free_port()}"},
        interval_s=0.05,
        lost_after_s=5.0,
        on_lost=_noop,
    )
    with monitor, pytest.raises(RuntimeError, match="already started"):
        monitor.start()
    assert not monitor.running
