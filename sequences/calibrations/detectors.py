"""Detector calibration: dark-count rate of each detector and their relative efficiency.

Physics: dark counts of a biased SNSPD are a Poisson process (Marsili et al., Nat. Photon.
7, 210 (2013)): N clicks in a dark interval T estimate the rate N/T with standard error
sqrt(N)/T. With light from one node through the 50:50 heralding beam splitter each photon
reaches either detector with probability 1/2, so after subtracting each detector's dark
counts the ratio of clicks N2/N1 estimates eta2/eta1 (for a balanced splitter; otherwise the
product of splitting ratio and efficiency, which is what the heralding sees), with the
Poisson errors propagated: sigma_r / r = sqrt(var(N1') / N1'^2 + var(N2') / N2'^2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from drivers.hal import Laser, QubitDevice
from sequences.time_tags import counts_per_channel

from ._common import CalibrationResult, LinkProbe, Measured, judge


def calibrate_detectors(
    probe: LinkProbe,
    clock: QubitDevice,
    lasers: Sequence[Laser],
    dark_time_s: float = 100.0,
    attempts: int = 1_000_000,
    max_dark_rate_hz: float = 100.0,
    max_efficiency_imbalance: float = 0.2,
    min_light_clicks: int = 1000,
) -> CalibrationResult:
    """Dark-count rates of both detectors, then their relative efficiency.

    Dark counts: every laser in ``lasers`` is switched off, ``clock`` (a node's real-time
    controller) lets ``dark_time_s`` pass, and the time tagger's clicks over the elapsed
    time give each rate. Efficiency: the lasers go back to their previous state (the caller
    lights one node) and ``attempts`` attempts of the probe's loop give the clicks of each
    detector, dark counts over the loop's elapsed time subtracted.

    Passes when both dark rates are at most ``max_dark_rate_hz``, the light gave at least
    ``min_light_clicks`` clicks per detector above the dark counts, and |eta2/eta1 - 1| is
    at most ``max_efficiency_imbalance``.

    Quantities: ``dark_rate_hz_ch<n>`` for both tagger channels and
    ``relative_efficiency`` (eta of the second channel over the first).
    """
    ch1, ch2 = probe.channels
    was_on = [laser.is_output_on() for laser in lasers]
    for laser in lasers:
        laser.set_output(False)
    try:
        probe.tagger.read_tags()  # discard
        t0 = clock.time_s()
        clock.wait(dark_time_s)
        dark_counts = counts_per_channel(probe.tagger.read_tags())
        dark_elapsed = clock.time_s() - t0
    finally:
        for laser, on in zip(lasers, was_on, strict=True):
            laser.set_output(on)
    if dark_elapsed <= 0:
        raise RuntimeError(f"the clock did not advance during the dark interval ({clock})")
    n_dark = [dark_counts.get(ch1, 0), dark_counts.get(ch2, 0)]
    rates = [n / dark_elapsed for n in n_dark]
    rate_errs = [math.sqrt(max(n, 1)) / dark_elapsed for n in n_dark]

    old_clock = probe.clock
    probe.clock = clock
    try:
        (c1, c2), elapsed = probe.clicks(attempts)
    finally:
        probe.clock = old_clock
    elapsed = elapsed or 0.0
    light = [c1 - rates[0] * elapsed, c2 - rates[1] * elapsed]
    light_var = [c1 + (rate_errs[0] * elapsed) ** 2, c2 + (rate_errs[1] * elapsed) ** 2]
    scan = {
        "dark_counts": [float(n) for n in n_dark],
        "dark_time_s": [dark_elapsed],
        "light_counts": [float(c1), float(c2)],
        "light_time_s": [elapsed],
        "attempts": [float(attempts)],
    }
    quantities = {
        f"dark_rate_hz_ch{ch1}": Measured(value=rates[0], uncertainty=rate_errs[0], unit="Hz"),
        f"dark_rate_hz_ch{ch2}": Measured(value=rates[1], uncertainty=rate_errs[1], unit="Hz"),
    }
    checks = [
        (
            r <= max_dark_rate_hz,
            f"channel {ch}: dark rate {r:.1f} Hz above {max_dark_rate_hz} Hz",
        )
        for ch, r in zip((ch1, ch2), rates, strict=True)
    ]
    enough = min(light) >= min_light_clicks
    checks.append(
        (
            enough,
            f"too little light: {light[0]:.0f} and {light[1]:.0f} clicks above dark counts, "
            f"need {min_light_clicks} (is one node lit?)",
        )
    )
    if min(light) > 0:
        ratio = light[1] / light[0]
        ratio_err = ratio * math.sqrt(light_var[0] / light[0] ** 2 + light_var[1] / light[1] ** 2)
        quantities["relative_efficiency"] = Measured(value=ratio, uncertainty=ratio_err, unit="")
        if enough:
            checks.append(
                (
                    abs(ratio - 1) <= max_efficiency_imbalance,
                    f"efficiency of channel {ch2} over channel {ch1} is {ratio:.3f}, more than "
                    f"{max_efficiency_imbalance} from 1: check the bias of the weaker detector",
                )
            )
    passed, reason = judge(checks)
    return CalibrationResult(
        routine="calibrate_detectors",
        quantities=quantities,
        passed=passed,
        reason=reason,
        scan=scan,
    )
