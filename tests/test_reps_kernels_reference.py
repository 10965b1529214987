"""A closed rep's measurement (``kernels.measure_core`` via ``reps._measure_columns``) against the same
measurement written with NumPy and SciPy (the formulation the rep stage had before its kernels).

Every rep the detector closes on perturbed sessions (noise, lost samples, jittered timestamps, three
drills) is measured again here from the same window and the same coarse excursions: flags, counts
and every time must be equal, every float within 1e-9 (the kernel differs from this reference only
in rounding: SciPy's ``filtfilt`` against the kernel's recurrence, an FFT against the kernel's DFT).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from scipy import signal
from test_reps_batch import _session

from sensorhub.drills import reps
from sensorhub.drills.catalog import Direction, DrillDefinition
from sensorhub.drills.scoring import sparc
from sensorhub.drills.table import AngleTable

TRACKED = ("pelvis_tilt", "pelvis_obliquity", "pelvis_rotation", "hip_adduction")
ROWS = {name: k for k, name in enumerate(reps._ROW_COLUMNS)}


def _lowpass(t: np.ndarray, x: np.ndarray, cutoff_hz: float, fs_hz: float) -> np.ndarray:
    out = np.array(x, dtype=np.float64, copy=True)
    for j in range(out.shape[1]):
        ok = np.isfinite(out[:, j])
        if ok.any() and not ok.all():
            out[:, j] = np.interp(t, t[ok], out[ok, j])
    if len(t) < 16 or cutoff_hz >= 0.45 * fs_hz:
        return out
    b, a = signal.butter(2, cutoff_hz, fs=fs_hz)
    for j in range(out.shape[1]):
        if np.isfinite(out[:, j]).all():
            out[:, j] = signal.filtfilt(b, a, out[:, j], padtype="odd", padlen=min(len(t) - 1, 18))
    return out


def _reference(cols: np.ndarray, coarse: Sequence[reps._Excursion], drill: DrillDefinition, cfg: reps.DetectorConfig) -> dict:
    t = cols[ROWS["t"]]
    raw_rot = cols[ROWS["hip_rotation"]]
    dt = np.diff(t, prepend=t[0])
    fs = 1.0 / float(np.median(dt[1:]))
    raw = np.column_stack([raw_rot, *(cols[ROWS[a]] for a in TRACKED)])
    low = _lowpass(t, raw, cfg.lowpass_hz, fs)
    rot = low[:, 0]
    pre = (t >= coarse[0].t_leave - cfg.pre_s) & (t <= coarse[0].t_leave)
    neutral = float(np.median(rot[pre])) if pre.any() else coarse[0].neutral_deg
    if abs(neutral - coarse[0].neutral_deg) > cfg.enter_deg:
        neutral = coarse[0].neutral_deg
    speed = np.abs(np.gradient(rot, t))
    hold_speed = np.abs(np.gradient(_lowpass(t, raw_rot[:, None], cfg.hold_lowpass_hz, fs)[:, 0], t))
    halves: list[dict] = []
    half_neutral = neutral
    for c in coarse:
        if halves:
            pause = (t >= halves[-1]["t_return"]) & (t <= c.t_leave)
            if float(np.sum(dt[pause])) >= cfg.min_pause_for_neutral_s:
                candidate = float(np.median(rot[pause]))
                if abs(candidate - half_neutral) < cfg.exit_deg:
                    half_neutral = candidate
        y = c.direction.sign * (rot - half_neutral)
        inside = np.flatnonzero((t >= c.t_leave) & (t <= c.t_back))
        i_peak = int(inside[np.argmax(y[inside])])
        still = (y >= y[i_peak] - cfg.hold_tolerance_deg) & (hold_speed < cfg.hold_speed_deg_s)
        first, last = int(inside[0]), int(inside[-1])
        broken = np.flatnonzero(~still[first:i_peak])
        i_h0 = first + int(broken[-1]) + 1 if broken.size else first
        broken = np.flatnonzero(~still[i_peak + 1 : last + 1])
        i_h1 = i_peak + int(broken[0]) if broken.size else last
        below = ~(y >= cfg.onset_deg)
        outside = np.flatnonzero(below[: i_h0 + 1])
        i_on = int(outside[-1]) if outside.size else 0
        outside = np.flatnonzero(below[i_h1:])
        i_ret = i_h1 + int(outside[0]) if outside.size else len(y) - 1
        values = [sparc(p, fs) for p in (speed[i_on : i_h0 + 1], speed[i_h1 : i_ret + 1]) if p.size >= 4]
        finite = [v for v in values if math.isfinite(v)]
        halves.append({"direction": c.direction, "t_onset": float(t[i_on]), "t_end_range": float(t[i_h0]),
                       "t_hold_end": float(t[i_h1]), "t_return": float(t[i_ret]), "t_peak": float(t[i_peak]),
                       "peak_deg": float(y[i_peak]), "hold_s": float(t[i_h1] - t[i_h0]),
                       "smoothness_sparc": float(np.mean(finite)) if finite else math.nan, "neutral_deg": half_neutral})
    t_start, t_end = halves[0]["t_onset"], halves[-1]["t_return"]
    in_rep = (t >= t_start) & (t <= t_end)
    flex = cols[ROWS["hip_flexion"]][in_rep]
    pre = (t >= t_start - cfg.pre_s) & (t <= t_start)
    tracked = low[:, 1:]
    base = np.median(tracked[pre], axis=0) if pre.any() else tracked[np.searchsorted(t, t_start)]
    change: dict[str, float] = {}
    during: dict[str, str] = {}
    for j, axis in enumerate(TRACKED):
        if not np.isfinite(raw[:, 1 + j]).any():
            change[axis] = math.nan
            continue
        best, best_dir = 0.0, ""
        for h in halves:
            m = (t >= h["t_onset"]) & (t <= h["t_return"]) & (
                h["direction"].sign * (rot - h["neutral_deg"]) > cfg.rotating_fraction * h["peak_deg"])
            if m.any() and float(np.max(np.abs(tracked[m, j] - base[j]))) > best:
                best, best_dir = float(np.max(np.abs(tracked[m, j] - base[j]))), h["direction"].value
        change[axis], during[axis] = best, best_dir
    return {"neutral_deg": neutral, "halves": halves, "t_start": t_start, "t_end": t_end,
            "gap_s": float(np.sum(dt[in_rep & ~np.isfinite(raw_rot)])),
            "hip_flexion_mean_deg": float(np.nanmean(flex)) if np.isfinite(flex).any() else math.nan,
            "change_deg": change, "during": during}


def _close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-9


def _slow_session() -> AngleTable:
    """Three reps whose movement phases last about 3 s at 100 Hz: longer than the kernel's DFT limit, so their
    SPARC goes through ``scoring.sparc`` (the FFT) instead."""
    s = np.linspace(0.0, 1.0, 500)
    ramp = 10 * s**3 - 15 * s**4 + 6 * s**5
    one = np.concatenate([np.zeros(150), 30.0 * ramp, np.full(100, 30.0), 30.0 * ramp[::-1], np.zeros(60),
                          -35.0 * ramp, np.full(100, -35.0), -35.0 * ramp[::-1], np.zeros(150)])
    rot = np.tile(one, 3) + np.random.default_rng(5).normal(0.0, 0.3, 3 * one.size)
    return AngleTable.from_arrays(np.arange(rot.size) / 100.0, rot, hip_flexion=np.full(rot.size, 90.0))


@pytest.mark.parametrize(("drill", "seed"), [(d, s) for d in ("seated_rotation", "hip_90_90", "tempo_squat") for s in (1, 2, 3)]
                         + [("seated_rotation", None)])
def test_measured_reps_equal_the_numpy_scipy_formulation(drill: str, seed: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    captured: list[tuple[np.ndarray, list[reps._Excursion], reps.Rep | None]] = []
    measure = reps._measure_columns

    def spy(cols: np.ndarray, drill_def: DrillDefinition, coarse: Sequence[reps._Excursion], index: int,
            cfg: reps.DetectorConfig) -> reps.Rep | None:
        rep = measure(cols, drill_def, coarse, index, cfg)
        captured.append((cols.copy(), list(coarse), rep))
        return rep

    monkeypatch.setattr(reps, "_measure_columns", spy)
    det = reps.RepDetector(drill)
    det.update_table(_session(seed, 6, 2e-3 if seed == 2 else 0.0, 3, False, False) if seed is not None else _slow_session())
    det.finish()
    measured = [(cols, coarse, rep) for cols, coarse, rep in captured if rep is not None]
    assert len(measured) >= 3, drill
    if seed is None:  # every movement phase of the slow reps is past the DFT's limit
        limit_s = reps._SPARC_DFT_MAX_ROWS / 100.0
        assert all(min(h.out_s, h.back_s) > limit_s for _, _, r in measured if r is not None for h in r.halves)
    for cols, coarse, rep in measured:
        assert rep is not None
        want = _reference(cols, coarse, det.drill, det.config)
        for key in ("t_start", "t_end"):
            assert getattr(rep, key) == want[key], key
        for key in ("neutral_deg", "gap_s", "hip_flexion_mean_deg"):
            assert _close(getattr(rep, key), want[key]), (key, getattr(rep, key), want[key])
        assert len(rep.halves) == len(want["halves"])
        for got_half, want_half in zip(rep.halves, want["halves"], strict=True):
            for key in ("t_onset", "t_end_range", "t_hold_end", "t_return", "t_peak", "hold_s"):
                assert getattr(got_half, key) == want_half[key], key
            assert got_half.direction is want_half["direction"]
            for key in ("peak_deg", "smoothness_sparc", "neutral_deg"):
                assert _close(getattr(got_half, key), want_half[key]), (key, getattr(got_half, key), want_half[key])
        detail = rep.compensation_detail
        assert detail.during == want["during"]
        assert detail.change_deg.keys() == want["change_deg"].keys()
        for axis, value in want["change_deg"].items():
            assert _close(detail.change_deg[axis], value), (axis, detail.change_deg[axis], value)
        peaks = {h["direction"]: h["peak_deg"] for h in want["halves"]}
        for direction, got in ((Direction.INTERNAL, rep.peak_internal_rotation), (Direction.EXTERNAL, rep.peak_external_rotation)):
            assert (got is None) == (direction not in peaks)
            assert got is None or _close(got, peaks[direction])
