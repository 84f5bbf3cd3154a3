"""The simulated lab: every node's qubits, the links between them, one clock, one seed."""

from __future__ import annotations

import numpy as np

from .params import LabParams
from .physics.clock import SimClock
from .physics.link import HeraldedLink, LinkModel
from .physics.quantum_node import QuantumNode
from .physics.registry import QubitRegistry


class SimulatedLab:
    """One shared simulated lab: all nodes see the same photons, states and time.

    Seeded: the same parameters and seed give the same run, outcome for outcome.
    """

    def __init__(self, params: LabParams, seed: int = 0) -> None:
        self.params = params
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.clock = SimClock()
        self.registry = QubitRegistry()
        self.nodes: dict[str, QuantumNode] = {
            name: QuantumNode(name, node, self.registry, self.clock, self.rng)
            for name, node in params.nodes.items()
        }
        #: the node holding each qubit (a node's qubits are fixed when it is built)
        self._owners = {q: node for node in self.nodes.values() for q in node.qubits}
        self.links: dict[frozenset[str], HeraldedLink] = {}
        for link in params.links:
            a, b = link.nodes
            model = LinkModel(link, params.nodes[a], params.nodes[b], params.classical_latency_us)
            self.links[frozenset(link.nodes)] = HeraldedLink(
                model, self.nodes[a], self.nodes[b], self.registry, self.clock, self.rng
            )

    def density_matrix(self, qubits: list[int]) -> np.ndarray:
        """The joint state of ``qubits`` now, with all pending noise applied (node by
        node, in the lab's order of nodes)."""
        mine: dict[QuantumNode, list[int]] = {}
        for q in qubits:
            owner = self._owners.get(q)
            if owner is not None:
                mine.setdefault(owner, []).append(q)
        if len(mine) == 1:
            ((owner, owned),) = mine.items()
            owner.bring_up_to_date(owned)
        elif mine:
            for node in self.nodes.values():
                if node in mine:
                    node.bring_up_to_date(mine[node])
        return self.registry.density_matrix(qubits)

    def node(self, name: str) -> QuantumNode:
        try:
            return self.nodes[name]
        except KeyError:
            raise KeyError(
                f"no node {name!r} in the simulated lab; nodes: {sorted(self.nodes)}"
            ) from None

    def link(self, a: str, b: str) -> HeraldedLink:
        try:
            return self.links[frozenset((a, b))]
        except KeyError:
            known = sorted(lk.name for lk in self.links.values())
            raise KeyError(f"no link between {a!r} and {b!r}; links: {known}") from None
