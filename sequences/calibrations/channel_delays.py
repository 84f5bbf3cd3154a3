"""Relative delay of the two detector channels of a heralding station, from each channel's
single clicks folded on the attempt period, compensated with the time tagger's input delays.

Physics: a click reaches its time-tagger input after the detector's latency and its cable;
the two channels' difference shifts every herald decision ("one detector clicked, the other
not, within the window") and every two-photon coincidence, so it must be compensated to well
within the detectors' timing jitter (tens of ps for SNSPDs: Korzh et al., Nat. Photon. 14,
250 (2020)).

Measurement, as with any pulsed source: one node runs its attempt loop (the other node's laser
off) and its photons, split 50:50 by the station's beam splitter, click on both detectors.
Every photon leaves at the same point of its attempt (the optical pulse, marker 1 of the
attempt waveform; spontaneous emission adds the excited-state lifetime, ~12 ns for an NV,
which is the same for both channels), so a click of channel c arrives at
    t = t_run + k T + t_emit + d_c + jitter,
with T the attempt period (the AWG's waveform length; the AWG and the tagger share the 10 MHz
reference, so T is exact on the tagger's time base), t_run the unknown start of the run and d_c
the channel's delay. Folded on T, each channel's clicks form one peak at t_run + t_emit + d_c
(mod T) on a flat background of dark counts (Poisson in time, so uniform in phase); the
difference of the two peaks' centres is d_- - d_+, the unknown common origin cancels. Each
peak is fitted (Gaussian on a flat background, Poisson weights; width: that detector's jitter
with the photon's emission spread) and its centre refined as the mean of its clicks within
+-4 sigma (unbinned: no bias at a few counts per bin), with its standard error.

Runs of the loop start at unrelated times, so each run is folded on its own and shifted by its
channel-'+' arrival peak before the runs are pooled: the shift is the same for both channels,
so the difference is untouched (one run, the default, needs no shift at all).

The tagger's delay of the earlier channel is then raised by the difference (ID900 delays are
non-negative) and a second measurement verifies the residual.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._common import CalibrationResult, Fit, Measured, fit_counts, judge
from ._two_photon import TwoNodeSource


class TooFewClicksError(RuntimeError):
    """A channel's folded histogram holds too few clicks to locate its peak."""


def gaussian(x: np.ndarray, amplitude: float, centre: float, sigma: float, background: float):
    """A Gaussian peak on a flat background."""
    return background + amplitude * np.exp(-0.5 * ((x - centre) / sigma) ** 2)


def _fit_peak(arrivals: np.ndarray, guess_ps: float, half_width_ps: int, bin_ps: int) -> Fit:
    """Gaussian + flat background fitted (Poisson weights) to the histogram of ``arrivals``
    within +-``half_width_ps`` of ``guess_ps``."""
    edges = np.arange(guess_ps - half_width_ps, guess_ps + half_width_ps + bin_ps, bin_ps)
    counts, _ = np.histogram(arrivals, bins=edges)
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


def _refine_centre(arrivals: np.ndarray, fit: Fit, half_width_sigmas: float = 4.0):
    """(centre, standard error): the mean of the clicks within +-4 sigma of the fitted
    peak. Unbinned, so unbiased for a symmetric peak even at a few counts per bin, where a
    binned least-squares fit with sqrt(n) weights pulls towards empty bins. The flat
    background inside the window (dark counts) is negligible next to the peak."""
    centre, sigma = fit.params["centre"], fit.params["sigma"]
    near = arrivals[np.abs(arrivals - centre) <= half_width_sigmas * sigma].astype(float)
    if near.size < 3:
        return centre, fit.errors["centre"]
    return float(near.mean()), float(near.std(ddof=1) / math.sqrt(near.size))


def _wrap(phase_ps: np.ndarray, centre_ps: float, period_ps: int) -> np.ndarray:
    """Phases (ps, mod the period) as offsets from ``centre_ps`` in [-T/2, T/2)."""
    half = period_ps / 2
    return np.mod(phase_ps - centre_ps + half, period_ps) - half


def fold_runs(
    runs: Sequence[np.ndarray], channels: tuple[int, int], period_ps: int, coarse_ps: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """Each channel's click arrivals (ps) folded on the attempt period, runs pooled.

    A run's clicks are folded (t mod T) and shifted so that its channel-'+' arrival peak (the
    fullest ``coarse_ps`` bin of the folded '+' clicks, refined to their mean within +-2 bins)
    sits at 0. The shift is the same for both channels, and it is taken from channel '+' alone
    so that it does not depend on how many '-' clicks a run has (a shift from both channels
    would be pulled towards the channel with more clicks in that run, which biases the pooled
    difference). A run without '+' clicks cannot be aligned and is left out."""
    out: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    bins = np.arange(0, period_ps + coarse_ps, coarse_ps)
    for tags in runs:
        phase = np.mod(tags["time_ps"].astype(np.int64), period_ps).astype(float)
        reference = phase[tags["channel"] == channels[0]]
        if reference.size == 0:
            continue
        counts, edges = np.histogram(reference, bins=bins)
        coarse = float(edges[int(np.argmax(counts))] + coarse_ps / 2)
        offsets = _wrap(reference, coarse, period_ps)
        near = offsets[np.abs(offsets) <= 2 * coarse_ps]
        centred = _wrap(phase, coarse + float(near.mean()), period_ps)
        for i, channel in enumerate(channels):
            out[i].append(centred[tags["channel"] == channel])
    return tuple(np.concatenate(a) if a else np.empty(0) for a in out)  # type: ignore[return-value]


def _locate(arrivals: np.ndarray, window_ps: int, bin_ps: int, fit_half_width_ps: int):
    """(fit, refined centre, its error) of one channel's arrival peak within +-window_ps."""
    coarse = 200
    inside = arrivals[np.abs(arrivals) <= window_ps]
    edges = np.arange(-window_ps, window_ps + coarse + 1, coarse)
    counts, _ = np.histogram(inside, bins=edges)
    guess = float(edges[int(np.argmax(counts))] + coarse / 2)
    fit = _fit_peak(arrivals, guess, fit_half_width_ps, bin_ps)
    centre, error = _refine_centre(arrivals, fit)
    return fit, centre, error


def measure_relative_delay(
    source: TwoNodeSource,
    attempts: int,
    max_delay_ps: int = 20_000,
    bin_ps: int = 10,
    fit_half_width_ps: int = 600,
    min_clicks: int = 20,
) -> tuple[Measured, dict[str, list[float]], dict[str, float]]:
    """(delta = t_- - t_+ with its uncertainty, scan, fit) from the folded single clicks of
    ``attempts`` attempts; ``max_delay_ps`` bounds |delta| (and must stay below a quarter of
    the attempt period, so the two peaks cannot wrap around the fold)."""
    period_ps = int(round(source.period_s * 1e12))
    if 4 * max_delay_ps >= period_ps:
        raise ValueError(
            f"max_delay_ps={max_delay_ps}: expected less than a quarter of the attempt period "
            f"({period_ps} ps), so the folded peaks cannot wrap"
        )
    runs = source.runs(attempts)
    plus, minus = fold_runs(runs, source.channels, period_ps)
    window = max_delay_ps + fit_half_width_ps
    for channel, arrivals in zip(source.channels, (plus, minus), strict=True):
        inside = int(np.count_nonzero(np.abs(arrivals) <= window))
        if inside < min_clicks:
            raise TooFewClicksError(
                f"too few clicks on channel {channel} ({inside} of {attempts} attempts within "
                f"{window} ps of the arrival peak, need {min_clicks}): is a node lit and are "
                "the detectors biased?"
            )
    fit_p, c_p, e_p = _locate(plus, window, bin_ps, fit_half_width_ps)
    fit_m, c_m, e_m = _locate(minus, window, bin_ps, fit_half_width_ps)
    delta = Measured(value=c_m - c_p, uncertainty=math.hypot(e_p, e_m), unit="ps")
    # the histogram to show: channel '-' arrivals relative to channel '+''s peak, 10 ps bins
    edges = np.arange(
        delta.value - fit_half_width_ps, delta.value + fit_half_width_ps + bin_ps, bin_ps
    )
    hist, _ = np.histogram(minus - c_p, bins=edges)
    scan = {
        "delay_ps": (0.5 * (edges[:-1] + edges[1:])).tolist(),
        "clicks": hist.astype(float).tolist(),
        "attempts": [float(attempts)],
    }
    fit = {
        "peak_plus_ps": c_p,
        "peak_minus_ps": c_m,
        "sigma_plus_ps": fit_p.params["sigma"],
        "sigma_ps": fit_m.params["sigma"],
        "background_per_bin": 0.5 * (fit_p.params["background"] + fit_m.params["background"]),
        "relative_delay_ps": delta.value,
        "clicks_plus": float(plus.size),
        "clicks_minus": float(minus.size),
        "runs": float(len(runs)),
    }
    return delta, scan, fit


def calibrate_channel_delays(
    source: TwoNodeSource,
    attempts: int = 4_000_000,
    verify_attempts: int | None = None,
    base_delays_ps: tuple[int, int] = (0, 0),
    max_delay_ps: int = 20_000,
    max_residual_ps: float = 20.0,
) -> CalibrationResult:
    """Find t_- - t_+ of the station's two channels, set the tagger's input delays to cancel
    it, and verify.

    ``source`` runs the attempt loop with (at least) one node lit. ``base_delays_ps`` are
    the channels' delays in force (link order of ``source.channels``); the measured
    difference is added to the earlier channel's delay. Passes when the verification's
    residual |delta'| is at most ``max_residual_ps`` (or within two standard uncertainties
    of zero when those are larger). The delays found are left on the tagger only after a
    pass.

    Quantities: ``relative_delay_ps`` (before compensation, channel '-' minus '+'),
    ``delay_ps_ch<n>`` for both channels (the settings that compensate it) and
    ``residual_delay_ps`` (after).
    """
    ch1, ch2 = source.channels
    try:
        delta, scan, fit = measure_relative_delay(source, attempts, max_delay_ps)
    except TooFewClicksError as exc:
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
    try:
        residual, _, verify_fit = measure_relative_delay(
            source, verify_attempts or attempts, max_delay_ps
        )
    except TooFewClicksError as exc:
        residual, verify_fit = None, {}
        checks = [(False, f"verification: {exc}")]
    else:
        limit = max(max_residual_ps, 2 * residual.uncertainty)
        checks = [
            (
                abs(residual.value) <= limit,
                f"residual delay {residual.value:.1f} ± {residual.uncertainty:.1f} ps after "
                f"compensation, more than {limit:.1f} ps",
            )
        ]
    fit.update({f"verify_{k}": v for k, v in verify_fit.items()})
    passed, reason = judge(checks)
    if not passed:  # leave the previous delays in force
        for channel, delay in zip((ch1, ch2), base_delays_ps, strict=True):
            tagger.configure_channel(channel, threshold_v=0.1, delay_ps=delay, enabled=True)
    quantities = {
        "relative_delay_ps": delta,
        f"delay_ps_ch{ch1}": Measured(value=new[0], uncertainty=delta.uncertainty, unit="ps"),
        f"delay_ps_ch{ch2}": Measured(value=new[1], uncertainty=delta.uncertainty, unit="ps"),
    }
    if residual is not None:
        quantities["residual_delay_ps"] = residual
    return CalibrationResult(
        routine="calibrate_channel_delays",
        quantities=quantities,
        passed=passed,
        reason=reason,
        scan=scan,
        fit=fit,
        applied={f"delay_ps_ch{ch1}": new[0], f"delay_ps_ch{ch2}": new[1]} if passed else {},
    )
