"""Relative delay of the two detector channels of a heralding station, from a coincidence
histogram, compensated with the time tagger's input delays.

Physics: a click reaches its time-tagger input after the detector's latency and its cable;
the two channels' difference shifts every coincidence, so a herald decision ("one detector
clicked, the other not, within the window") and a two-photon coincidence count need it
compensated to well within the detectors' timing jitter (tens of ps for SNSPDs: Korzh et al.,
Nat. Photon. 14, 250 (2020)).

Correlated clicks on both channels come from the two nodes emitting at once
(:class:`~._two_photon.TwoNodeSource`): when both spins are bright, both photons leave the beam
splitter and, when they are distinguishable, split between the detectors in half of the cases
(Hong, Ou & Mandel, PRL 59, 2044 (1987)). The routine makes them distinguishable by delaying
node B's optical pulse by ``separation_ns`` (many excited-state lifetimes), so coincidences are
plentiful: node A's photon on channel '+' and B's on '-' gives t_- - t_+ = delta + D, the
reverse gives delta - D. The histogram of t_- - t_+ has two Gaussian peaks (width: the two
channels' jitters in quadrature); each is fitted (Gaussian on a flat background, Poisson
weights) and its centre refined as the mean of the coincidences within +-4 sigma of it
(unbinned: no bias at a few counts per bin); the mean of the two centres is the relative
delay delta, independent of the exact D. The
tagger's delay of the earlier channel is then raised by delta (its delays are non-negative)
and a second histogram verifies the residual.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import CalibrationResult, Fit, Measured, fit_counts, judge
from ._two_photon import TwoNodeSource, pair_delays_ps


class TooFewCoincidencesError(RuntimeError):
    """The histogram holds too few coincidences to locate its peaks."""


def gaussian(x: np.ndarray, amplitude: float, centre: float, sigma: float, background: float):
    """A Gaussian peak on a flat background."""
    return background + amplitude * np.exp(-0.5 * ((x - centre) / sigma) ** 2)


def _fit_peak(delays: np.ndarray, guess_ps: float, half_width_ps: int, bin_ps: int) -> Fit:
    edges = np.arange(guess_ps - half_width_ps, guess_ps + half_width_ps + bin_ps, bin_ps)
    counts, _ = np.histogram(delays, bins=edges)
    x = 0.5 * (edges[:-1] + edges[1:])
    peak = float(counts.max())
    centre = float(x[int(np.argmax(counts))])
    return fit_counts(
        gaussian,
        ("amplitude", "centre", "sigma", "background"),
        x,
        counts.astype(float),
        p0=(peak, centre, max(3.0 * bin_ps, 30.0), 0.0),
        bounds=(
            (0.0, x[0], 0.3 * bin_ps, 0.0),
            (10 * peak + 10, x[-1], float(half_width_ps), peak + 1),
        ),
    )


def _refine_centre(delays: np.ndarray, fit: Fit, half_width_sigmas: float = 4.0):
    """(centre, standard error): the mean of the coincidences within +-4 sigma of the
    fitted peak. Unbinned, so unbiased for a symmetric peak even at a few counts per bin,
    where a binned least-squares fit with sqrt(n) weights pulls towards empty bins."""
    centre, sigma = fit.params["centre"], fit.params["sigma"]
    near = delays[np.abs(delays - centre) <= half_width_sigmas * sigma].astype(float)
    if near.size < 3:
        return centre, fit.errors["centre"]
    return float(near.mean()), float(near.std(ddof=1) / math.sqrt(near.size))


def measure_relative_delay(
    source: TwoNodeSource,
    attempts: int,
    separation_ns: float = 50.0,
    max_delay_ps: int = 20_000,
    bin_ps: int = 10,
    fit_half_width_ps: int = 600,
) -> tuple[Measured, dict[str, list[float]], dict[str, float]]:
    """(delta = t_- - t_+ with its uncertainty, scan, fit) from one coincidence histogram."""
    separation_ps = int(round(separation_ns * 1e3))
    if separation_ps <= max_delay_ps:
        raise ValueError(
            f"separation_ns={separation_ns}: expected more than max_delay_ps={max_delay_ps} ps, "
            "so the two coincidence peaks cannot swap sides"
        )
    tags = source.tags(attempts, (0.0, separation_ns))
    delays = pair_delays_ps(tags, source.channels, separation_ps + max_delay_ps + fit_half_width_ps)
    early, late = delays[delays < 0], delays[delays >= 0]
    if min(early.size, late.size) < 5:
        raise TooFewCoincidencesError(
            f"too few coincidences ({early.size} and {late.size} in the two peaks of "
            f"{attempts} attempts): are both nodes lit and the detectors biased?"
        )
    coarse = 200
    fits = []
    for side in (early, late):  # coarse maximum, then a fine fit around it
        edges = np.arange(side.min(), side.max() + coarse + 1, coarse)
        counts, _ = np.histogram(side, bins=edges)
        guess = float(edges[int(np.argmax(counts))] + coarse / 2)
        fits.append(_fit_peak(delays, guess, fit_half_width_ps, bin_ps))
    (c1, e1), (c2, e2) = (_refine_centre(delays, f) for f in fits)
    delta = Measured(value=0.5 * (c1 + c2), uncertainty=0.5 * math.hypot(e1, e2), unit="ps")
    # the histogram to show: both peaks folded onto delta (each shifted by half the fitted
    # separation), +-fit_half_width_ps around it in 20 ps bins
    half_separation = 0.5 * (c2 - c1)
    folded = np.where(delays >= 0, delays - half_separation, delays + half_separation)
    edges = np.arange(
        delta.value - fit_half_width_ps, delta.value + fit_half_width_ps + 20, 20, dtype=float
    )
    hist, _ = np.histogram(folded, bins=edges)
    scan = {
        "delay_ps": (0.5 * (edges[:-1] + edges[1:])).tolist(),
        "coincidences": hist.astype(float).tolist(),
        "attempts": [float(attempts)],
    }
    fit = {
        "peak_early_ps": c1,
        "peak_late_ps": c2,
        "sigma_ps": 0.5 * (fits[0].params["sigma"] + fits[1].params["sigma"]),
        "separation_ps": half_separation,
        "relative_delay_ps": delta.value,
        "coincidences": float(delays.size),
    }
    return delta, scan, fit


def calibrate_channel_delays(
    source: TwoNodeSource,
    attempts: int = 2_000_000,
    verify_attempts: int | None = None,
    base_delays_ps: tuple[int, int] = (0, 0),
    separation_ns: float = 50.0,
    max_delay_ps: int = 20_000,
    max_residual_ps: float = 20.0,
) -> CalibrationResult:
    """Find t_- - t_+ of the station's two channels, set the tagger's input delays to cancel
    it, and verify.

    ``base_delays_ps`` are the channels' delays in force (link order of ``source.channels``);
    the measured difference is added to the earlier channel's delay. Passes when the
    verification histogram's residual |delta'| is at most ``max_residual_ps`` (or within
    two standard uncertainties of zero when those are larger). The delays found are left on
    the tagger only after a pass.

    Quantities: ``relative_delay_ps`` (before compensation, channel '-' minus '+'),
    ``delay_ps_ch<n>`` for both channels (the settings that compensate it) and
    ``residual_delay_ps`` (after).
    """
    ch1, ch2 = source.channels
    try:
        delta, scan, fit = measure_relative_delay(source, attempts, separation_ns, max_delay_ps)
    except TooFewCoincidencesError as exc:
        return CalibrationResult(
            routine="calibrate_channel_delays", quantities={}, passed=False, reason=str(exc)
        )
    shift = int(round(delta.value))
    new = (base_delays_ps[0] + max(shift, 0), base_delays_ps[1] + max(-shift, 0))
    if min(new) < 0:
        raise ValueError(f"base_delays_ps={base_delays_ps}: expected non-negative delays")
    tagger = source.tagger
    for channel, delay in zip((ch1, ch2), new, strict=True):
        tagger.configure_channel(channel, threshold_v=0.1, delay_ps=delay, enabled=True)
    residual, _, verify_fit = measure_relative_delay(
        source, verify_attempts or attempts, separation_ns, max_delay_ps
    )
    fit.update({f"verify_{k}": v for k, v in verify_fit.items()})
    limit = max(max_residual_ps, 2 * residual.uncertainty)
    passed, reason = judge(
        [
            (
                abs(residual.value) <= limit,
                f"residual delay {residual.value:.1f} ± {residual.uncertainty:.1f} ps after "
                f"compensation, more than {limit:.1f} ps",
            )
        ]
    )
    if not passed:  # leave the previous delays in force
        for channel, delay in zip((ch1, ch2), base_delays_ps, strict=True):
            tagger.configure_channel(channel, threshold_v=0.1, delay_ps=delay, enabled=True)
    quantities = {
        "relative_delay_ps": delta,
        f"delay_ps_ch{ch1}": Measured(value=new[0], uncertainty=delta.uncertainty, unit="ps"),
        f"delay_ps_ch{ch2}": Measured(value=new[1], uncertainty=delta.uncertainty, unit="ps"),
        "residual_delay_ps": residual,
    }
    return CalibrationResult(
        routine="calibrate_channel_delays",
        quantities=quantities,
        passed=passed,
        reason=reason,
        scan=scan,
        fit=fit,
        applied={f"delay_ps_ch{ch1}": new[0], f"delay_ps_ch{ch2}": new[1]} if passed else {},
    )
