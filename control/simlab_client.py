"""The orchestrator's and node processes' view of a simulated lab served by another process:
the few questions only a simulation can answer (exact fidelities) and the classical delays
it must charge, asked over RPC."""

from __future__ import annotations

from .rpc import RpcClient


class RemoteSimulatedLab:
    """Proxy for the simulated-lab oracle of ``qnode simlab`` (see ``control.simlab``)."""

    def __init__(self, endpoint: str, timeout_s: float = 10.0) -> None:
        self.client = RpcClient(endpoint, name="simlab-client", timeout_s=timeout_s)

    def classical_delay_s(self, sender: str, receiver: str) -> float:
        return float(self.client.call("classical_delay_s", sender=sender, receiver=receiver))

    def qubit_fidelity(self, node: str, qubit: int, theta: float, phi: float) -> float:
        return float(
            self.client.call("qubit_fidelity", node=node, qubit=qubit, theta=theta, phi=phi)
        )

    def pair_fidelity(self, a: str, qa: int, b: str, qb: int, bell_state: str) -> float:
        return float(
            self.client.call("pair_fidelity", a=a, qa=qa, b=b, qb=qb, bell_state=bell_state)
        )

    def readout_fidelities(self, node: str) -> tuple[float, float]:
        f0, f1 = self.client.call("readout_fidelities", node=node)
        return float(f0), float(f1)

    def close(self) -> None:
        self.client.close()
