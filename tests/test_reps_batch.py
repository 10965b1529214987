"""The vectorised batch path of the rep detector (:meth:`RepDetector.update_table`) against the
sample-by-sample path (:meth:`RepDetector.update`): same events, same state afterwards, on sessions
with noise, lost samples, long gaps, jittered timestamps and posture changes."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sensorhub.drills.reps import RepDetector
from sensorhub.drills.table import AngleTable


def _min_jerk(n: int) -> np.ndarray:
    s = np.linspace(0.0, 1.0, n)
    return 10 * s**3 - 15 * s**4 + 6 * s**5


def _session(seed: int, n_reps: int, jitter_s: float, gaps: int, long_gap: bool, standing_part: bool) -> AngleTable:
    rng = np.random.default_rng(seed)
    fs = 100.0
    parts = [np.zeros(int(rng.integers(50, 200)))]
    for _ in range(n_reps):
        for peak in (rng.uniform(8.0, 45.0), -rng.uniform(8.0, 50.0)):
            ramp = peak * _min_jerk(int(rng.uniform(0.4, 1.5) * fs))
            parts += [ramp, np.full(int(rng.uniform(0.0, 1.5) * fs), peak), ramp[::-1],
                      np.zeros(int(rng.uniform(0.05, 1.5) * fs))]
        if rng.random() < 0.3:  # an aborted start or a wobble near neutral
            parts += [rng.uniform(-9.0, 9.0) * np.sin(np.linspace(0, np.pi, int(rng.integers(20, 80)))), np.zeros(40)]
    rot = np.concatenate(parts)
    n = rot.size
    rot = rot + 2.0 * np.sin(np.linspace(0.0, 3.0, n)) + rng.normal(0.0, 0.4, n)  # slow drift of the estimate, noise
    t = np.arange(n) / fs + rng.uniform(-jitter_s, jitter_s, n)
    t = np.maximum.accumulate(t + np.arange(n) * 1e-9)
    flexion = np.full(n, 90.0) + rng.normal(0.0, 2.0, n)
    if standing_part:
        i = int(rng.integers(0, n - 300))
        flexion[i : i + 300] = 0.0  # stood up for 3 s: rotation there is not a rep
    for _ in range(gaps):
        i = int(rng.integers(1, n - 60))
        rot[i : i + int(rng.integers(1, 40))] = np.nan
    if long_gap:
        i = int(rng.integers(1, n - 200))
        rot[i : i + 150] = np.nan  # 1.5 s: longer than max_gap_s
    pelvis = rng.normal(0.0, 1.0, (3, n)).cumsum(axis=1) * 0.05
    return AngleTable(t=t, hip_rotation=rot, hip_flexion=flexion, hip_adduction=np.full(n, math.nan),
                      pelvis_tilt=pelvis[0], pelvis_obliquity=pelvis[1], pelvis_rotation=pelvis[2])


def _row_by_row(det: RepDetector, table: AngleTable, i0: int = 0, i1: int | None = None) -> list:
    events = []
    for i in range(i0, len(table) if i1 is None else i1):
        events += det.update(float(table.t[i]), float(table.hip_rotation[i]), hip_flexion=float(table.hip_flexion[i]),
                             hip_adduction=float(table.hip_adduction[i]), pelvis_tilt=float(table.pelvis_tilt[i]),
                             pelvis_obliquity=float(table.pelvis_obliquity[i]), pelvis_rotation=float(table.pelvis_rotation[i]))
    return events


def _state(det: RepDetector) -> dict:
    state = {k: v for k, v in vars(det).items() if k not in ("_buffer", "_gain_cache")}
    kept = det._buffer.window(-math.inf, math.inf)
    state["_buffer"] = np.column_stack([kept.t, kept.hip_rotation, kept.pelvis_rotation])
    return state


def _assert_same_state(a: RepDetector, b: RepDetector) -> None:
    sa, sb = _state(a), _state(b)
    buf_a, buf_b = sa.pop("_buffer"), sb.pop("_buffer")
    np.testing.assert_array_equal(buf_a, buf_b)
    assert sa == sb


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n_reps=st.integers(1, 6),
    jitter_s=st.sampled_from([0.0, 0.0, 1e-4, 2e-3]),
    gaps=st.integers(0, 4),
    long_gap=st.booleans(),
    standing_part=st.booleans(),
    drill=st.sampled_from(["seated_rotation", "hip_90_90", "side_lying_external"]),
)
def test_batch_path_equals_sample_by_sample(seed: int, n_reps: int, jitter_s: float, gaps: int, long_gap: bool,
                                            standing_part: bool, drill: str) -> None:
    table = _session(seed, n_reps, jitter_s, gaps, long_gap, standing_part)
    online, batch = RepDetector(drill), RepDetector(drill)
    events_online = _row_by_row(online, table)
    events_batch = batch.update_table(table)
    assert events_batch == events_online
    _assert_same_state(batch, online)
    assert batch.finish() == online.finish()


def test_batch_then_live_continues_exactly() -> None:
    """A detector fed a table and then live samples ends where a purely live one does."""
    table = _session(3, 5, 0.0, 2, False, False)
    split = len(table) // 2 + 37
    head = AngleTable(**{k: getattr(table, k)[:split] for k in ("t", "hip_rotation", "hip_flexion", "hip_adduction",
                                                              "pelvis_tilt", "pelvis_obliquity", "pelvis_rotation")})
    mixed, live = RepDetector("seated_rotation"), RepDetector("seated_rotation")
    events = mixed.update_table(head) + _row_by_row(mixed, table, split)
    assert events == _row_by_row(live, table)
    _assert_same_state(mixed, live)
    # Feeding the whole table again adds nothing: rows not after the last sample are ignored.
    assert mixed.update_table(table) == []



def test_batch_path_equals_sample_by_sample_across_rate_changes_and_a_stuck_excursion() -> None:
    """A held excursion longer than max_excursion_s (aborted), then the stream drops from 100 to 50 Hz."""
    fs = 100.0
    ramp = 30.0 * _min_jerk(80)
    part1 = np.concatenate([np.zeros(100), ramp, np.full(3200, 30.0), ramp[::-1], np.zeros(150)])
    part2 = np.concatenate([np.zeros(50), 25.0 * _min_jerk(40), np.full(50, 25.0), 25.0 * _min_jerk(40)[::-1], np.zeros(40),
                            -35.0 * _min_jerk(40), np.full(50, -35.0), -35.0 * _min_jerk(40)[::-1], np.zeros(60)])
    t = np.concatenate([np.arange(part1.size) / fs, part1.size / fs + np.arange(part2.size) / 50.0])
    rot = np.concatenate([part1, part2]) + np.random.default_rng(4).normal(0.0, 0.3, t.size)
    table = AngleTable.from_arrays(t, rot, hip_flexion=np.full(t.size, 90.0))
    online, batch = RepDetector("seated_rotation"), RepDetector("seated_rotation")
    events = batch.update_table(table)
    assert events == _row_by_row(online, table)
    assert any("no return to neutral" in getattr(e, "reason", "") for e in events)
    assert sum(1 for e in events if hasattr(e, "rep")) == 1  # the rep at 50 Hz counts
    _assert_same_state(batch, online)
