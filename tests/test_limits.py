"""Safety limits from the network file: no command through the drivers' parameters - from a
sequence, a script, the CLI or a remote message - can exceed them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from qcodes.instrument import Instrument

from control.backend import open_network
from control.network_config import NetworkConfigError, load_network
from control.node import NodeController, NodeInstruments
from control.node_service import RemoteNode, serve_node
from control.rpc import RpcError
from drivers.errors import InstrumentValueError
from sequences.attempt_loop import NodeOptics

CONFIGS = Path(__file__).parents[1] / "lab_configs"


@pytest.fixture(autouse=True)
def _close():
    yield
    Instrument.close_all()


def _with_limits(tmp_path: Path, limits: dict) -> Path:
    for f in CONFIGS.glob("*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    path = tmp_path / "two_node.network.yaml"
    data = yaml.safe_load(path.read_text())
    data["limits"] = limits
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_limit_refuses_the_command_and_names_itself(tmp_path: Path) -> None:
    path = _with_limits(tmp_path, {"alice_laser": {"power": [0.0, 2.0]}})
    with open_network(path) as net:
        laser = net.instrument("alice", "laser")
        laser.set_power_mw(1.5)
        with pytest.raises(InstrumentValueError) as info:
            laser.set_power_mw(5.0)
        message = str(info.value)
        assert "alice_laser" in message and "outside the lab limit 0..2 mW" in message
        assert "limits.alice_laser.power in two_node.network.yaml" in message
        assert laser.get_power_mw() == pytest.approx(1.5)  # nothing was sent


def test_a_remote_message_cannot_exceed_a_limit(tmp_path: Path) -> None:
    path = _with_limits(tmp_path, {"alice_laser": {"power": [0.0, 0.5]}})
    with open_network(path) as net:
        controller = NodeController(
            "alice", NodeInstruments.of(net, "alice"), NodeOptics(laser_power_mw=1.0)
        )
        server = serve_node(controller, "tcp://127.0.0.1:*")
        server.start()
        remote = RemoteNode("alice", server.endpoint)
        try:
            with pytest.raises(RpcError, match="outside the lab limit 0..0.5 mW"):
                remote.prepare()
        finally:
            remote.close()
            server.stop()


def test_limit_configuration_errors_name_the_field(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    with pytest.raises(NetworkConfigError, match="limits.nobody: no such instrument"):
        load_network(_with_limits(tmp_path / "a", {"nobody": {"power": [0, 1]}}))
    (tmp_path / "b").mkdir()
    with pytest.raises(
        NetworkConfigError, match=r"limits.alice_laser.power: \[3.0, 1.0\] is empty"
    ):
        load_network(_with_limits(tmp_path / "b", {"alice_laser": {"power": [3, 1]}}))
    (tmp_path / "c").mkdir()
    with pytest.raises(NetworkConfigError, match="alice_laser has no parameter 'watts'"):
        open_network(_with_limits(tmp_path / "c", {"alice_laser": {"watts": [0, 1]}}))
