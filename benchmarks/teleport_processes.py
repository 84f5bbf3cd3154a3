"""End-to-end teleportations per wall-clock second over Alice - Bob - Charlie with one
process per node, as a network runs one PC per node: the shared simulated lab
(`qnode simlab`) and three node controller processes (`qnode serve`) on loopback TCP, with
CURVE-encrypted control messages (keys made by `qnode keygen`), driven by the orchestrator
in this process (``run_teleport`` with ``remote_nodes``; nothing stored). Process start-up
is not timed: the figure is the run's own shot loop."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from control.keys import generate_network_keys
from control.local_processes import local_node_processes
from control.network_config import load_network
from control.runs import run_teleport

CHAIN = Path(__file__).parents[1] / "lab_configs" / "three_node_chain.network.yaml"


def teleportations_per_second_in_processes(
    shots: int = 200, batches: tuple[int, ...] = (1, 16)
) -> dict[int, dict[str, Any]]:
    """For each batch size (shots per program transaction): teleportations per wall-clock
    second and the run's summary figures, all with the same node processes."""
    with tempfile.TemporaryDirectory(prefix="qnode-bench-") as tmp:
        network = _secured_copy(Path(tmp))
        out: dict[int, dict[str, Any]] = {}
        with local_node_processes(network, Path(tmp) / "processes") as running:
            for batch in batches:
                summary = run_teleport(
                    network,
                    shots,
                    remote_nodes=running.endpoints,
                    simlab=running.port_map,
                    db_path=None,
                    batch=batch,
                    node_timeout_s=30.0,
                )
                out[batch] = {
                    "batch": batch,
                    "shots": summary["shots"],
                    "teleportations_per_s": summary["teleportations_per_wall_s"],
                    "exact_fidelity_mean": summary["exact_fidelity_mean"],
                }
        return out


def _secured_copy(directory: Path) -> Path:
    """The chain's files in ``directory`` with CURVE keys configured and generated."""
    for f in CHAIN.parent.glob("*.yaml"):
        shutil.copy(f, directory / f.name)
    network = directory / CHAIN.name
    data = yaml.safe_load(network.read_text())
    data["security"] = {"keys_dir": "keys"}
    network.write_text(yaml.safe_dump(data))
    generate_network_keys(load_network(network))
    return network
