"""Rep detection across data gaps, on synthetic angle series (no fusion): what a disconnect does to a rep.

A seated drill rep is internal rotation to a peak and back, then external rotation to a peak and
back. Cutting data out of it (NaN, as the pipeline marks a gap it does not bridge) must abort the
rep in progress with a "data gap" RepIncomplete; what is seen of it after the gap (the hip already
out when the data comes back) is reported, never counted and never glued to the half before the
gap; the next rep is measured from its own start.
"""

from __future__ import annotations

import numpy as np
import pytest

from sensorhub.drills import AngleTable, detect_reps

RATE_HZ = 100.0
HALF_S = 3.0


def _half(direction: int, peak_deg: float) -> np.ndarray:
    """One half rep: neutral -> peak (held) -> neutral, raised-cosine ramps of 0.9 s."""
    n = int(HALF_S * RATE_HZ)
    ramp = int(0.3 * n)
    shape = np.ones(n)
    shape[:ramp] = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ramp))
    shape[-ramp:] = shape[:ramp][::-1]
    return direction * peak_deg * shape


def _rest(duration_s: float) -> np.ndarray:
    return np.zeros(int(duration_s * RATE_HZ))


def _rep(ir: float, er: float) -> np.ndarray:
    return np.concatenate([_half(+1, ir), _rest(0.3), _half(-1, er)])


def _table(rotation: np.ndarray) -> AngleTable:
    t = np.arange(len(rotation)) / RATE_HZ
    flexion = np.where(np.isnan(rotation), np.nan, 90.0)
    zeros = np.where(np.isnan(rotation), np.nan, 0.0)
    return AngleTable(t=t, hip_rotation=rotation, hip_flexion=flexion, hip_adduction=zeros,
                      pelvis_tilt=zeros, pelvis_obliquity=zeros, pelvis_rotation=zeros)


@pytest.mark.parametrize(("gap_from_s", "gap_s", "after"), [
    (1.5, 3.0, "external"),  # from the internal peak to the middle of the external half
    (0.6, 1.2, "internal"),  # from the rise to the internal hold: data resumes at the peak
], ids=["into_external_half", "into_internal_hold"])
def test_gap_inside_a_rep_aborts_it_and_nothing_after_it_is_glued(gap_from_s: float, gap_s: float, after: str) -> None:
    lead = np.concatenate([_rest(2.0), _rep(30.0, 35.0), _rest(1.0)])
    rep2 = _rep(28.0, 33.0)
    i0 = int(gap_from_s * RATE_HZ)
    rep2[i0: i0 + int(gap_s * RATE_HZ)] = np.nan
    rotation = np.concatenate([lead, rep2, _rest(1.0), _rep(32.0, 38.0), _rest(2.0)])
    detection = detect_reps(_table(rotation), "seated_rotation")

    t_gap0 = len(lead) / RATE_HZ + gap_from_s
    t_gap1 = t_gap0 + gap_s
    assert len(detection.reps) == 2
    first, last = detection.reps
    assert (first.peak_internal_rotation, first.peak_external_rotation) == (pytest.approx(30.0, abs=1.0), pytest.approx(35.0, abs=1.0))
    assert (last.peak_internal_rotation, last.peak_external_rotation) == (pytest.approx(32.0, abs=1.0), pytest.approx(38.0, abs=1.0))
    assert last.t_start > t_gap1
    # The broken rep is reported, naming the gap ...
    aborted = [r for r in detection.incomplete if r.reason.startswith("data gap")]
    assert len(aborted) == 1 and aborted[0].t_start < t_gap0
    # ... and so is what was seen of it after the gap.
    resumed = [r for r in detection.incomplete if "started during a data gap" in r.reason]
    assert len(resumed) == 1 and resumed[0].t_start >= t_gap1 and after in resumed[0].peaks_deg
