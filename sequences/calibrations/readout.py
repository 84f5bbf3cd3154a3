"""Qubit readout fidelities F0 = P(read 0 | |0>) and F1 = P(read 1 | |1>).

Physics: a single-shot readout is a binary channel with the confusion matrix
[[F0, 1-F1], [1-F0, F1]] (e.g. Robledo et al., Nature 477, 574 (2011) for the NV centre's
spin readout). Preparing |0> (initialise) or |1> (initialise, then an X rotation by pi) and
measuring N times gives binomial counts; the Wilson score interval (``sequences.analysis``)
gives the uncertainty. The estimates include preparation errors (initialisation, the pi
pulse): they are assignment fidelities, lower bounds on the readout's own F0 and F1.
"""

from __future__ import annotations

import math

from drivers.hal import QubitDevice
from sequences.analysis import wilson_interval

from ._common import CalibrationResult, Measured, judge


def readout_fidelity(
    device: QubitDevice,
    qubit: int = 0,
    shots: int = 2000,
    min_f0: float = 0.9,
    min_f1: float = 0.9,
) -> CalibrationResult:
    """Measure ``shots`` times after preparing |0> and after preparing |1> on ``qubit`` of
    the node's real-time controller ``device``.

    Passes when both fidelities are at least ``min_f0`` / ``min_f1``. Quantities: ``f0`` and
    ``f1``, each with the half width of its 68% Wilson interval as uncertainty.
    """
    if shots < 10:
        raise ValueError(f"shots={shots}: expected at least 10")
    zeros_after_0 = 0
    ones_after_1 = 0
    for _ in range(shots):
        device.initialize(qubit)
        zeros_after_0 += device.measure(qubit) == 0
        device.initialize(qubit)
        device.rotate(qubit, "X", math.pi)
        ones_after_1 += device.measure(qubit) == 1
    quantities = {}
    for name, k in (("f0", zeros_after_0), ("f1", ones_after_1)):
        lo, hi = wilson_interval(int(k), shots, z=1.0)
        quantities[name] = Measured(value=k / shots, uncertainty=(hi - lo) / 2, unit="")
    passed, reason = judge(
        [
            (quantities["f0"].value >= min_f0, f"F0 {quantities['f0'].value:.4f} below {min_f0}"),
            (quantities["f1"].value >= min_f1, f"F1 {quantities['f1'].value:.4f} below {min_f1}"),
        ]
    )
    return CalibrationResult(
        routine="readout_fidelity",
        quantities=quantities,
        passed=passed,
        reason=reason,
        scan={
            "shots": [float(shots)],
            "zeros_after_prepare_0": [float(zeros_after_0)],
            "ones_after_prepare_1": [float(ones_after_1)],
        },
    )
