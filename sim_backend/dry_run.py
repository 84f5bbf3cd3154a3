"""A heralded-entanglement dry run on one link of the simulated lab.

Each delivered pair is measured in one of the bases XX, YY, ZZ (cycled), as the lab verifies
a link; the records hold what a lab run would store, plus the exact fidelity of the
simulated state (which only a simulation can know).
"""

from __future__ import annotations

from collections.abc import Iterator
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


def iter_shots(lab: SimulatedLab, node_a: str, node_b: str, shots: int) -> Iterator[ShotRecord]:
    """Generate ``shots`` pairs on the link, measure each in the next verification basis.

    A generator, so a caller can stop between shots (Ctrl-C) and keep what was measured.
    """
    if shots < 1:
        raise ValueError(f"shots={shots!r}: expected a positive integer")
    link = lab.link(node_a, node_b)
    a, b = lab.node(node_a), lab.node(node_b)
    for shot in range(shots):
        pair = link.generate()
        qa, qb = pair.qubits
        a.bring_up_to_date([qa])
        b.bring_up_to_date([qb])
        rho = lab.registry.density_matrix([qa, qb])
        exact = fidelity_to_pure(rho, BELL_STATES[pair.bell_state])
        basis = VERIFICATION_BASES[shot % len(VERIFICATION_BASES)]
        yield ShotRecord(
            shot=shot,
            pair_id=pair.pair_id,
            bell_state=pair.bell_state,
            attempts=pair.attempts,
            emitted_at_s=pair.emitted_at_s,
            heralded_at_s=pair.heralded_at_s,
            basis=basis,
            outcome_a=a.measure(qa, basis[0]),
            outcome_b=b.measure(qb, basis[1]),
            exact_fidelity=exact,
        )


def run_link(lab: SimulatedLab, node_a: str, node_b: str, shots: int) -> list[ShotRecord]:
    """All shots of ``iter_shots`` as a list."""
    return list(iter_shots(lab, node_a, node_b, shots))


def link_parameters(lab: SimulatedLab, node_a: str, node_b: str) -> dict[str, object]:
    """The parameters that produced a link's results, for the run summary."""
    link = lab.link(node_a, node_b)
    model = link.model
    params = model.params
    out: dict[str, object] = {
        "link": link.name,
        "scheme": params.scheme,
        "success_probability_model": model.success_probability,
        "attempt_period_us": model.timing.attempt_period_s * 1e6,
        "herald_delay_us": model.timing.herald_delay_s * 1e6,
        "transmission_a": model.setup.path_a.transmission,
        "transmission_b": model.setup.path_b.transmission,
        "detector_efficiency": model.setup.detectors.efficiency,
        "dark_count_probability": model.setup.detectors.dark_probability,
        "visibility": params.visibility,
        "phase_noise_std_rad": params.phase_noise_std_rad,
        "fibre_length_km": list(params.fibre_length_km),
    }
    if params.scheme == "single_click":
        out["alpha"] = params.alpha
    return out


def readout_fidelities(lab: SimulatedLab, node: str) -> tuple[float, float]:
    """(F0, F1) of a node's communication qubit, as the lab would have calibrated them."""
    q = lab.node(node).params.communication_qubit
    return q.readout_f0, q.readout_f1
