"""A heralded-entanglement dry run on one link of the simulated lab.

Each delivered pair is measured in one of the bases XX, YY, ZZ (cycled), as the lab verifies
a link; the records hold what a lab run would store, plus the exact fidelity of the
simulated state (which only a simulation can know).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from .lab import SimulatedLab
from .physics.states import BELL_STATES, fidelity_to_pure

VERIFICATION_BASES = ("XX", "YY", "ZZ")


@dataclass(frozen=True)
class ShotRecord:
    shot: int
    pair_id: int
    bell_state: str
    attempts: int
    emitted_at_s: float
    heralded_at_s: float
    basis: str
    outcome_a: int
    outcome_b: int
    exact_fidelity: float

    def as_dict(self) -> dict:
        return asdict(self)


def run_link(
    lab: SimulatedLab,
    node_a: str,
    node_b: str,
    shots: int,
    progress: Callable[[int], None] | None = None,
) -> list[ShotRecord]:
    """Generate ``shots`` pairs on the link, measure each in the next verification basis."""
    if shots < 1:
        raise ValueError(f"shots={shots!r}: expected a positive integer")
    link = lab.link(node_a, node_b)
    a, b = lab.node(node_a), lab.node(node_b)
    records = []
    for shot in range(shots):
        pair = link.generate()
        qa, qb = pair.qubits
        a.bring_up_to_date([qa])
        b.bring_up_to_date([qb])
        rho = lab.registry.density_matrix([qa, qb])
        exact = fidelity_to_pure(rho, BELL_STATES[pair.bell_state])
        basis = VERIFICATION_BASES[shot % len(VERIFICATION_BASES)]
        out_a = a.measure(qa, basis[0])
        out_b = b.measure(qb, basis[1])
        records.append(
            ShotRecord(
                shot=shot,
                pair_id=pair.pair_id,
                bell_state=pair.bell_state,
                attempts=pair.attempts,
                emitted_at_s=pair.emitted_at_s,
                heralded_at_s=pair.heralded_at_s,
                basis=basis,
                outcome_a=out_a,
                outcome_b=out_b,
                exact_fidelity=exact,
            )
        )
        if progress is not None:
            progress(shot + 1)
    return records
