"""Rep quality: movement smoothness (SPARC) and the 0-100 rep score with its components.

The score is a weighted sum of four qualities, each in [0, 1], minus a compensation penalty:

==============  ======  ==============================================================
component       points  quality
==============  ======  ==============================================================
range           40      mean over the drill's directions of min(1, peak / target)
hold            20      mean over directions of min(1, time held at end range / target)
tempo           15      mean over move-out and move-back phases: 1 inside the target band,
                        falling linearly to 0 at zero duration and at three times the band's top
control         25      SPARC of each movement phase, mapped -3.0 -> 0 and -1.6 -> 1
compensation    -0..30  15 points once the pelvis exceeds a limit, growing to 30 at twice the limit
==============  ======  ==============================================================

The weights put range first because range is what the drills train; control is next because the
seed articles insist on slow, controlled rotation. Everything here is pure arithmetic on numbers the
rep detector measured.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from sensorhub.drills.catalog import Direction, DrillDefinition, TempoTarget

RANGE_POINTS = 40.0
HOLD_POINTS = 20.0
TEMPO_POINTS = 15.0
CONTROL_POINTS = 25.0
COMPENSATION_PENALTY_MIN = 15.0
COMPENSATION_PENALTY_MAX = 30.0
# SPARC of a minimum-jerk point-to-point movement is about -1.6; -3 and below is a jerky, multi-peaked one.
SPARC_SMOOTH = -1.6
SPARC_JERKY = -3.0


def mean_short(values: Sequence[float]) -> float:
    """``float(np.mean(values))`` of a short non-empty list, to the bit: NumPy adds fewer than 8 numbers
    strictly left to right (its pairwise sum only starts at 8), then divides by the count. Several
    per rep; without NumPy's per-call overhead."""
    if not values:
        return math.nan
    if len(values) >= 8:
        return float(np.mean(values))
    acc = values[0]
    for v in values[1:]:
        acc += v
    return acc / len(values)


def _clip01(x: float) -> float:
    """``float(np.clip(x, 0.0, 1.0))`` for a float (NaN stays NaN)."""
    return min(max(x, 0.0), 1.0)


def sparc(speed: NDArray[np.float64], fs_hz: float, *, fc_hz: float = 10.0, amp_threshold: float = 0.05, pad_level: int = 4) -> float:
    """Spectral arc length of a speed profile (Balasubramanian et al. 2015, J NeuroEng Rehabil 12:112).

    The arc length of the normalised magnitude spectrum up to the frequency where the spectrum last
    exceeds ``amp_threshold`` (at most ``fc_hz``). Closer to zero is smoother; NaN when the profile
    is too short or has no motion.
    """
    speed = np.asarray(speed, dtype=np.float64)
    if speed.size < 4:
        return math.nan
    peak = float(np.max(np.abs(speed)))  # NaN if any sample is NaN, inf if any is infinite
    if not (math.isfinite(peak) and peak > 0.0):
        return math.nan
    nfft = int(2 ** (math.ceil(math.log2(speed.size)) + pad_level))
    spectrum = np.abs(np.fft.rfft(speed, nfft))
    # np.fft.rfftfreq's bins are k * step; only those up to fc_hz are used, and they are a prefix:
    # count them with the same products instead of building and masking the whole frequency axis.
    step = 1.0 / (nfft * (1.0 / fs_hz))
    n_keep = min(int(fc_hz / step) + 2, spectrum.size)
    while n_keep > 0 and (n_keep - 1) * step > fc_hz:
        n_keep -= 1
    mag = spectrum[:n_keep] / spectrum.max()
    above = np.flatnonzero(mag >= amp_threshold)
    if above.size == 0 or above[-1] - above[0] < 1:
        return 0.0
    mag = mag[above[0] : above[-1] + 1]
    freq = np.arange(above[0], above[-1] + 1) * step
    d_freq = (freq[1:] - freq[:-1]) / (freq[-1] - freq[0])
    return float(-np.sum(np.sqrt(d_freq**2 + (mag[1:] - mag[:-1]) ** 2)))


@dataclass(frozen=True)
class ScoreComponents:
    """Points awarded per component (they add up to ``total``); qualities are in [0, 1]."""

    range_points: float
    hold_points: float
    tempo_points: float
    control_points: float
    compensation_penalty: float
    total: float
    range_quality: float
    hold_quality: float
    tempo_quality: float
    control_quality: float


@dataclass(frozen=True)
class RepMeasures:
    """What the scorer needs of one rep (per direction: peak in positive degrees and hold in seconds)."""

    peak_deg: dict[Direction, float]
    hold_s: dict[Direction, float]
    move_phase_s: Sequence[float]
    smoothness_sparc: float
    compensation_ratio: float  # worst pelvis change / its limit; > 1 means flagged


def phase_quality(duration_s: float, target: TempoTarget) -> float:
    """1 inside the tempo band, linear to 0 at zero and at three times the band's upper edge."""
    lo = target.move_s * (1.0 - target.tolerance)
    hi = target.move_s * (1.0 + target.tolerance)
    if not math.isfinite(duration_s) or duration_s <= 0.0:
        return 0.0
    if duration_s < lo:
        return duration_s / lo
    if duration_s <= hi:
        return 1.0
    return max(0.0, 1.0 - (duration_s - hi) / (2.0 * hi))


def control_quality(smoothness_sparc: float) -> float:
    if not math.isfinite(smoothness_sparc):
        return 0.0
    return _clip01((smoothness_sparc - SPARC_JERKY) / (SPARC_SMOOTH - SPARC_JERKY))


def compensation_penalty(ratio: float) -> float:
    """0 below the limit; 15 points at the limit rising to 30 at twice the limit."""
    if not math.isfinite(ratio) or ratio <= 1.0:
        return 0.0
    return COMPENSATION_PENALTY_MIN + (COMPENSATION_PENALTY_MAX - COMPENSATION_PENALTY_MIN) * min(1.0, ratio - 1.0)


def score_rep(drill: DrillDefinition, m: RepMeasures) -> ScoreComponents:
    """Score one complete rep of ``drill`` from its measures."""
    range_q: list[float] = []
    hold_q: list[float] = []
    for direction in drill.directions:
        target = drill.target_deg(direction)
        peak = m.peak_deg.get(direction, math.nan)
        range_q.append(0.0 if not (target and math.isfinite(peak)) else _clip01(peak / target))
        hold = m.hold_s.get(direction, 0.0)
        hold_q.append(_clip01(hold / drill.tempo.hold_s) if drill.tempo.hold_s > 0 else 1.0)
    rq = mean_short(range_q)
    hq = mean_short(hold_q)
    tq = mean_short([phase_quality(d, drill.tempo) for d in m.move_phase_s]) if len(m.move_phase_s) else 0.0
    cq = control_quality(m.smoothness_sparc)
    penalty = compensation_penalty(m.compensation_ratio)
    pts = (RANGE_POINTS * rq, HOLD_POINTS * hq, TEMPO_POINTS * tq, CONTROL_POINTS * cq)
    total = max(0.0, sum(pts) - penalty)
    return ScoreComponents(
        range_points=pts[0],
        hold_points=pts[1],
        tempo_points=pts[2],
        control_points=pts[3],
        compensation_penalty=penalty,
        total=total,
        range_quality=rq,
        hold_quality=hq,
        tempo_quality=tq,
        control_quality=cq,
    )
