"""Two-photon (Hong-Ou-Mandel) interference of the two nodes' photons: the visibility.

Physics: two single photons meeting at a 50:50 beam splitter leave together when they are
indistinguishable, so the detectors behind it never click in coincidence; distinguishable
photons split in half of the cases (Hong, Ou & Mandel, PRL 59, 2044 (1987)). With an overlap
|<psi_A|psi_B>|^2 = V the coincidence probability is (1 - V)/2, hence V = 1 - C_ind / C_dist.
The visibility bounds the single-click fidelity, F ~ (1 - alpha)(1 + sqrt(V))/2, and is the
Barrett-Kok fidelity (1 + V)/2 (Humphreys et al., Nature 558, 268 (2018), SI; Bernien et al.,
Nature 497, 86 (2013) measured V = 0.90 between two NV centres).

Measurement: both nodes emit (:class:`~._two_photon.TwoNodeSource`); one node's optical pulse
is delayed by dt through its AWG, which changes nothing but the photons' arrival times. For
photons from spontaneous emission (exponential envelope of lifetime tau) the overlap falls as
exp(-|dt - t0| / tau) (Legero et al., Adv. At. Mol. Opt. Phys. 53, 253 (2006)), so the
coincidences per attempt trace the HOM dip
    C(dt) = C_dist (1 - V exp(-|dt - t0| / tau)),
fitted (Poisson weights) for V, tau, t0 and C_dist. A coincidence is a pair of clicks on the two
channels within |dt| + ``window_ps`` of each other (after the channel delays are compensated):
clicks of different attempts are microseconds apart. The model-free estimate from the dip's
centre and its far wings, V = 1 - C(0)/C(wings) with Poisson errors, is reported beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._common import CalibrationResult, Measured, fit_counts, judge
from ._two_photon import TwoNodeSource, pair_delays_ps

DEFAULT_OFFSETS_NS = (-100.0, -36.0, -18.0, -9.0, -4.0, 0.0, 4.0, 9.0, 18.0, 36.0, 100.0)


def hom_dip(
    dt_ns: np.ndarray, c_dist: float, visibility: float, tau_ns: float, t0_ns: float
) -> np.ndarray:
    """Coincidences vs the emission offset: C_dist (1 - V exp(-|dt - t0| / tau))."""
    return c_dist * (1 - visibility * np.exp(-np.abs(dt_ns - t0_ns) / tau_ns))


def measure_hom_visibility(
    source: TwoNodeSource,
    offsets_ns: Sequence[float] = DEFAULT_OFFSETS_NS,
    attempts_per_point: int = 4_000_000,
    window_ps: int = 3000,
    min_visibility: float = 0.8,
    min_coincidences: int = 100,
    wing_ns: float = 60.0,
) -> CalibrationResult:
    """Scan the emission offset between the nodes, count coincidences, fit the HOM dip.

    A positive offset delays node B's optical pulse, a negative one node A's. Passes when the
    wings hold at least ``min_coincidences`` coincidences and the fitted visibility is at
    least ``min_visibility`` (its value minus nothing: the threshold is on the estimate; the
    uncertainty is stored beside it).

    Quantities: ``visibility`` (fit), ``visibility_two_point`` (1 - C(0)/C(|dt| >= wing_ns)),
    ``photon_lifetime_ns`` and ``dip_centre_ns`` (the offset of best overlap: a path-length or
    timing mismatch between the nodes).
    """
    offsets = np.array(sorted(offsets_ns), dtype=float)
    if len(set(offsets_ns)) < 5:
        raise ValueError(
            f"offsets_ns={list(offsets_ns)}: expected at least 5 distinct offsets (the dip's "
            "four parameters are fitted)"
        )
    if not np.any(offsets == 0) or not np.any(np.abs(offsets) >= wing_ns):
        raise ValueError(
            f"offsets_ns={list(offsets_ns)}: expected 0 and at least one |offset| >= {wing_ns}"
        )
    coincidences, singles = [], []
    for dt in offsets:
        delays = (max(-dt, 0.0), max(dt, 0.0))
        tags = source.tags(attempts_per_point, delays)
        pairs = pair_delays_ps(tags, source.channels, int(abs(dt) * 1e3) + window_ps)
        coincidences.append(float(pairs.size))
        singles.append(float(sum(source.singles(tags))))
    counts = np.array(coincidences)
    scan = {
        "offset_ns": offsets.tolist(),
        "coincidences": coincidences,
        "singles": singles,
        "attempts": [float(attempts_per_point)],
    }
    wings = np.abs(offsets) >= wing_ns
    c_wing = float(counts[wings].sum()) / int(wings.sum())
    c_zero = float(counts[offsets == 0].mean())
    quantities: dict[str, Measured] = {}
    checks: list[tuple[bool, str]] = [
        (
            counts[wings].sum() >= min_coincidences,
            f"only {counts[wings].sum():.0f} coincidences in the wings, need {min_coincidences} "
            "(are both nodes lit and the detectors biased?)",
        )
    ]
    fit_params: dict[str, float] = {}
    if c_wing > 0:
        var_wing = c_wing / int(wings.sum())  # Poisson variance of the mean of the wings
        v2 = 1 - c_zero / c_wing
        err2 = math.sqrt(max(c_zero, 1.0) / c_wing**2 + c_zero**2 * var_wing / c_wing**4)
        quantities["visibility_two_point"] = Measured(value=v2, uncertainty=err2, unit="")
        try:
            fit = fit_counts(
                hom_dip,
                ("c_dist", "visibility", "tau_ns", "t0_ns"),
                offsets,
                counts,
                p0=(c_wing, min(max(v2, 0.05), 0.99), 10.0, 0.0),
                bounds=((0.0, 0.0, 0.1, -50.0), (10 * c_wing + 10, 1.0, 1000.0, 50.0)),
            )
        except (RuntimeError, ValueError) as exc:
            checks.append((False, f"the HOM dip could not be fitted ({exc})"))
        else:
            fit_params = dict(fit.params) | {"reduced_chi2": fit.reduced_chi2}
            quantities["visibility"] = Measured(
                value=fit.params["visibility"], uncertainty=fit.errors["visibility"], unit=""
            )
            quantities["photon_lifetime_ns"] = Measured(
                value=fit.params["tau_ns"], uncertainty=fit.errors["tau_ns"], unit="ns"
            )
            quantities["dip_centre_ns"] = Measured(
                value=fit.params["t0_ns"], uncertainty=fit.errors["t0_ns"], unit="ns"
            )
            v = fit.params["visibility"]
            checks.append(
                (
                    v >= min_visibility,
                    f"visibility {v:.3f} ± {fit.errors['visibility']:.3f} below the threshold "
                    f"{min_visibility} (distinguishable photons: check spectral overlap, timing)",
                )
            )
    passed, reason = judge(checks)
    return CalibrationResult(
        routine="measure_hom_visibility",
        quantities=quantities,
        passed=passed,
        reason=reason,
        scan=scan,
        fit=fit_params,
    )
