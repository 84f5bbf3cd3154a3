"""The end-of-run summary of a heralded-entanglement run: rates, fidelity, parameters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sequences.analysis import fidelity_from_outcomes, wilson_interval


def entanglement_summary(
    records: Sequence[Any],
    simulated_time_s: float,
    readout_a: tuple[float, float] | None,
    readout_b: tuple[float, float] | None,
    parameters: dict[str, Any],
    requested_shots: int,
) -> dict[str, Any]:
    """Summary of shot records (objects with bell_state, basis, outcome_a/b, attempts,
    exact_fidelity): heralded rate, attempts per success, estimated and exact fidelity."""
    shots = len(records)
    summary: dict[str, Any] = {
        "shots": shots,
        "requested_shots": requested_shots,
        "complete": shots == requested_shots,
        "parameters": parameters,
    }
    if shots == 0:
        return summary
    attempts = int(sum(r.attempts for r in records))
    low, high = wilson_interval(shots, attempts)
    summary.update(
        simulated_time_s=simulated_time_s,
        attempts=attempts,
        heralded_rate_per_s=shots / simulated_time_s if simulated_time_s > 0 else None,
        success_probability_per_attempt=shots / attempts,
        success_probability_ci95=[low, high],
        attempts_per_success=attempts / shots,
        bell_states={
            s: sum(r.bell_state == s for r in records) for s in ("PSI+", "PSI-", "PHI+", "PHI-")
        },
        exact_fidelity_mean=float(np.mean([r.exact_fidelity for r in records])),
    )
    if {r.basis for r in records} >= {"XX", "YY", "ZZ"}:
        args = (
            [r.bell_state for r in records],
            [r.basis for r in records],
            [r.outcome_a for r in records],
            [r.outcome_b for r in records],
        )
        corrected = fidelity_from_outcomes(*args, readout_a=readout_a, readout_b=readout_b)
        raw = fidelity_from_outcomes(*args)
        summary.update(
            fidelity_estimate=corrected.value,
            fidelity_ci95=list(corrected.interval()),
            fidelity_estimate_raw=raw.value,
            fidelity_raw_ci95=list(raw.interval()),
        )
    return summary
