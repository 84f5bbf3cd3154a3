"""`qnode simlab`: one simulated lab shared by node controllers in separate processes.

The simulated instruments of every station are served on loopback TCP ports, each like a LAN
instrument speaking raw SCPI, so each node process connects its own drivers to them with
pyvisa-py exactly as in the lab; all instruments act on one physics engine (one lock around
it). A small RPC "oracle" answers what only a simulation knows (exact fidelities) and the
classical delays the simulated lab charges. A JSON port map tells the other processes where
everything is.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .backend import build_simulated_lab
from .network_config import LoadedNetwork, NetworkConfigError, load_network
from .rpc import RpcServer


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DelayArgs(_Args):
    sender: str
    receiver: str


class QubitArgs(_Args):
    node: str
    qubit: int = Field(ge=0, le=64)
    theta: float
    phi: float


class PairArgs(_Args):
    a: str
    qa: int = Field(ge=0, le=64)
    b: str
    qb: int = Field(ge=0, le=64)
    bell_state: str


class NodeArgs(_Args):
    node: str


def faulty_instruments(
    loaded: LoadedNetwork, simulated: dict[str, Any], faults: str | Path | None
) -> dict[str, Any]:
    """The simulated instruments that inject faults: from the plan file ``faults``, else
    from the physics file's ``faults:`` section (none if it has none)."""
    from sim_backend.config import ConfigError, load_fault_file
    from sim_backend.instruments.faults import from_plan

    from .backend import validate_lab_file

    try:
        if faults is not None:
            plan, source = load_fault_file(faults), str(faults)
        else:
            plan = validate_lab_file(loaded.simulated_lab_path).faults
            source = f"{loaded.simulated_lab_path}: faults"
        return {} if plan is None else from_plan(plan, simulated, source)
    except (ConfigError, ValueError) as exc:
        raise NetworkConfigError(str(exc)) from None


@dataclass
class SimulatedLabServer:
    """A running shared simulated lab: instrument servers, oracle, and its port map."""

    instruments: Any  # sim_backend.instruments.tcp_server.InstrumentServer
    oracle: RpcServer
    port_map: dict[str, Any]

    def stop(self) -> None:
        self.oracle.stop()
        self.instruments.stop()


def serve_simulated_lab(
    network_path: str | Path,
    port_map_path: str | Path,
    seed: int | None = None,
    base_port: int = 0,
    faults: str | Path | None = None,
) -> SimulatedLabServer:
    """Start serving the simulated lab of a network; write the port map; return the server.
    ``faults``: a fault plan file (default: the physics file's ``faults:`` section)."""
    from sim_backend.instruments.tcp_server import InstrumentServer

    loaded = load_network(network_path)
    run_seed = loaded.config.seed if seed is None else seed
    hardware, simulated = build_simulated_lab(loaded, run_seed)
    faulty = faulty_instruments(loaded, simulated, faults)
    served = {name: faulty.get(name, handler) for name, handler in simulated.items()}
    lock = threading.Lock()
    instruments = InstrumentServer(served, lock=lock, base_port=base_port)
    instruments.start()

    def locked(fn):
        def call(*args):
            with lock:
                return fn(*args)

        return call

    methods = {
        "classical_delay_s": (
            DelayArgs,
            locked(lambda a: hardware.classical_delay_s(a.sender, a.receiver)),
        ),
        "qubit_fidelity": (
            QubitArgs,
            locked(lambda a: hardware.qubit_fidelity(a.node, a.qubit, a.theta, a.phi)),
        ),
        "pair_fidelity": (
            PairArgs,
            locked(lambda a: hardware.pair_fidelity(a.a, a.qa, a.b, a.qb, a.bell_state)),
        ),
        "readout_fidelities": (
            NodeArgs,
            locked(lambda a: list(hardware.readout_fidelities(a.node))),
        ),
        "now_s": (None, locked(lambda: hardware.now_s())),
    }
    oracle = RpcServer("simlab", "tcp://127.0.0.1:*", methods)
    oracle.start()
    port_map = {
        "network": str(Path(network_path).resolve()),
        "seed": run_seed,
        "instruments": instruments.addresses(),
        "oracle": oracle.endpoint,
    }
    path = Path(port_map_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(port_map, indent=2))
    tmp.replace(path)  # atomic: readers never see half a file
    return SimulatedLabServer(instruments, oracle, port_map)
