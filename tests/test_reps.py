"""Rep detection on the example sessions' true angles, on perturbed truth, and on synthetic edge cases."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensorhub.drills.catalog import get_drill
from sensorhub.drills.reps import RepCompleted, RepDetector, RepIncomplete, detect_reps
from sensorhub.drills.table import AngleTable

PELVIS = ("pelvis_tilt", "pelvis_obliquity", "pelvis_rotation")
SESSIONS = [("seated_right_9axis", "seated_rotation"), ("standing_left_6axis", "standing_rotation")]
PEAK_TOL_DEG = 3.0
# Boundaries are where the hip is 1° from neutral; the truth marks the first motion of a minimum-jerk
# ramp, which takes ~0.15-0.2 s to cover that first degree.
BOUNDARY_TOL_S = 0.3


def _truth(examples_dir: Path, session: str) -> tuple[AngleTable, list[dict[str, object]]]:
    folder = examples_dir / session
    table = AngleTable.from_csv(folder / "truth.csv")
    reps = json.loads((folder / "reps.json").read_text())
    return table, reps


def _perturb(table: AngleTable, seed: int, noise_deg: float = 0.5, offset_deg: float = 2.0, drift_deg: float = 1.5) -> AngleTable:
    """White noise, a constant offset and a linear drift over the session on hip rotation and pelvis angles."""
    rng = np.random.default_rng(seed)
    ramp = drift_deg * (table.t - table.t[0]) / (table.t[-1] - table.t[0])

    def p(x: np.ndarray, sign: float) -> np.ndarray:
        return x + rng.normal(0.0, noise_deg, x.shape) + sign * (offset_deg + ramp)

    return AngleTable(
        t=table.t,
        hip_flexion=table.hip_flexion,
        hip_adduction=table.hip_adduction,
        hip_rotation=p(table.hip_rotation, 1.0),
        pelvis_tilt=p(table.pelvis_tilt, -1.0),
        pelvis_obliquity=p(table.pelvis_obliquity, 1.0),
        pelvis_rotation=p(table.pelvis_rotation, -1.0),
    )


def _check_against_truth(table: AngleTable, drill: str, truth: list[dict[str, object]]) -> None:
    result = detect_reps(table, drill)
    assert len(result.reps) == len(truth), [(r.t_start, r.t_end) for r in result.reps]
    for rep, expected in zip(result.reps, truth):
        assert rep.peak_internal_rotation == pytest.approx(expected["peak_internal_rotation"], abs=PEAK_TOL_DEG)
        assert rep.peak_external_rotation == pytest.approx(expected["peak_external_rotation"], abs=PEAK_TOL_DEG)
        assert rep.t_start == pytest.approx(expected["t_start"], abs=BOUNDARY_TOL_S)
        assert rep.t_end == pytest.approx(expected["t_end"], abs=BOUNDARY_TOL_S)
        assert rep.compensation is expected["compensation"], (rep.index, rep.compensation_detail)


@pytest.mark.parametrize(("session", "drill"), SESSIONS)
def test_true_angles_give_the_true_reps(examples_dir: Path, session: str, drill: str) -> None:
    table, truth = _truth(examples_dir, session)
    _check_against_truth(table, drill, truth)
    result = detect_reps(table, drill)
    assert result.incomplete == []
    # On noise-free truth the peaks are essentially exact.
    for rep, expected in zip(result.reps, truth):
        assert rep.peak_internal_rotation == pytest.approx(expected["peak_internal_rotation"], abs=0.2)


@pytest.mark.parametrize(("session", "drill"), SESSIONS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_perturbed_truth_still_gives_exact_counts_and_flags(examples_dir: Path, session: str, drill: str, seed: int) -> None:
    table, truth = _truth(examples_dir, session)
    _check_against_truth(_perturb(table, seed), drill, truth)


@pytest.mark.parametrize(("session", "drill"), SESSIONS)
def test_compensation_margin_on_perturbed_truth(examples_dir: Path, session: str, drill: str) -> None:
    """Clean reps stay well below the limits and compensated ones well above (the documented margin)."""
    table, truth = _truth(examples_dir, session)
    limits = get_drill(drill).compensation
    result = detect_reps(_perturb(table, 11), drill)
    for rep, expected in zip(result.reps, truth):
        rot = rep.compensation_detail.change_deg["pelvis_rotation"]
        if expected["compensation"]:
            assert rot > 1.8 * limits.pelvis_rotation_deg
        else:
            assert rot < 0.5 * limits.pelvis_rotation_deg
            assert rep.compensation_detail.change_deg["pelvis_obliquity"] < 0.5 * limits.pelvis_obliquity_deg


def test_online_events_equal_batch_and_come_right_after_each_rep(examples_dir: Path) -> None:
    table, _ = _truth(examples_dir, "seated_right_9axis")
    table = _perturb(table, 5)
    batch = detect_reps(table, "seated_rotation")
    det = RepDetector("seated_rotation")
    online: list[RepCompleted] = []
    for i in range(len(table)):
        for event in det.update(
            float(table.t[i]),
            float(table.hip_rotation[i]),
            hip_flexion=float(table.hip_flexion[i]),
            hip_adduction=float(table.hip_adduction[i]),
            pelvis_tilt=float(table.pelvis_tilt[i]),
            pelvis_obliquity=float(table.pelvis_obliquity[i]),
            pelvis_rotation=float(table.pelvis_rotation[i]),
        ):
            assert isinstance(event, RepCompleted)
            # Announced at most half a second after the rep's measured end.
            assert 0.0 <= event.t_emit - event.rep.t_end <= 0.55
            online.append(event)
    assert det.finish() == []
    assert [e.rep for e in online] == batch.reps


def _min_jerk(n: int) -> np.ndarray:
    s = np.linspace(0.0, 1.0, n)
    return 10 * s**3 - 15 * s**4 + 6 * s**5


def _synthetic(
    halves: list[tuple[float, float, float]], fs: float = 100.0, rest_s: float = 1.0, hip_flexion_deg: float = 90.0
) -> AngleTable:
    """Hip rotation from (peak_deg signed, move_s, hold_s) excursions separated by ``rest_s`` at neutral."""
    parts = [np.zeros(int(rest_s * fs))]
    for peak, move_s, hold_s in halves:
        ramp = peak * _min_jerk(int(move_s * fs))
        parts += [ramp, np.full(int(hold_s * fs), peak), ramp[::-1], np.zeros(int(rest_s * fs))]
    rot = np.concatenate(parts)
    t = np.arange(rot.size) / fs
    return AngleTable.from_arrays(t, rot, hip_flexion=np.full(rot.size, hip_flexion_deg), pelvis_tilt=np.zeros(rot.size),
                                  pelvis_obliquity=np.zeros(rot.size), pelvis_rotation=np.zeros(rot.size))


def test_aborted_and_missing_halves_are_not_counted() -> None:
    table = _synthetic([
        (30, 0.8, 1.0), (-40, 0.8, 1.0),  # rep 1
        (7, 0.4, 0.2),  # aborted start: 7° never reaches min_peak_deg
        (32, 0.8, 1.0), (-42, 0.8, 1.0),  # rep 2
        (31, 0.8, 1.0),  # internal half, external never follows
        (33, 0.8, 1.0), (-38, 0.8, 1.0),  # rep 3
    ], rest_s=0.8)
    result = detect_reps(table, "seated_rotation")
    assert [round(r.peak_internal_rotation or 0) for r in result.reps] == [30, 32, 33]
    assert [round(r.peak_external_rotation or 0) for r in result.reps] == [40, 42, 38]
    assert len(result.incomplete) == 2
    assert "aborted" in result.incomplete[0].reason
    assert "external half missing" in result.incomplete[1].reason


def test_hesitation_near_neutral_does_not_split_a_rep() -> None:
    fs = 100.0
    table = _synthetic([(30, 0.8, 1.0), (-40, 0.8, 1.0)], fs=fs)
    rot = table.hip_rotation.copy()
    # A 4° wobble before the rep and a 4° pause-and-go on the way back from the internal end.
    rot[20:60] += 4.0 * np.sin(np.linspace(0, np.pi, 40))
    i_back = int((1.0 + 0.8 + 1.0 + 0.4) * fs)
    rot[i_back:i_back + 30] = rot[i_back]
    hes = AngleTable.from_arrays(table.t, rot, hip_flexion=table.hip_flexion)
    result = detect_reps(hes, "seated_rotation")
    assert len(result.reps) == 1 and result.incomplete == []


def test_short_gap_is_bridged_and_long_gap_aborts() -> None:
    table = _synthetic([(30, 0.8, 1.0), (-40, 0.8, 1.0), (30, 0.8, 1.0), (-40, 0.8, 1.0)])
    rot = table.hip_rotation.copy()
    rot[150:180] = np.nan  # 0.3 s during the first move out
    i2 = int((1.0 + 2 * (2.6 + 1.0) + 0.5) * 100)  # inside the second rep's internal hold
    rot[i2:i2 + 200] = np.nan  # 2 s
    gapped = AngleTable.from_arrays(table.t, rot, hip_flexion=table.hip_flexion)
    result = detect_reps(gapped, "seated_rotation")
    assert len(result.reps) == 1
    assert result.reps[0].gap_s == pytest.approx(0.3, abs=0.02)
    assert result.reps[0].peak_internal_rotation == pytest.approx(30.0, abs=0.5)
    assert any("gap" in i.reason for i in result.incomplete)


def test_single_direction_drill_counts_each_excursion_and_ignores_the_other_direction() -> None:
    table = _synthetic([(-35, 1.5, 2.0), (10, 0.5, 0.2), (-30, 1.5, 2.0)], hip_flexion_deg=20.0)
    result = detect_reps(table, "side_lying_external")
    assert [round(r.peak_external_rotation or 0) for r in result.reps] == [35, 30]
    assert all(r.peak_internal_rotation is None for r in result.reps)
    # The hold includes the last, slow part of the approach to end range (within 2° and < 10°/s).
    assert 2.0 <= (result.reps[0].hold_external_s or 0.0) <= 2.0 + 0.3 * 1.5


def test_posture_gate_ignores_rotation_outside_the_drill_posture() -> None:
    table = _synthetic([(30, 0.8, 1.0), (-40, 0.8, 1.0)])
    standing = AngleTable.from_arrays(table.t, table.hip_rotation, hip_flexion=np.zeros(len(table)))
    assert detect_reps(standing, "seated_rotation").reps == []
    assert len(detect_reps(standing, "standing_rotation").reps) == 1


def test_hold_tempo_and_smoothness_measured_on_a_known_rep() -> None:
    table = _synthetic([(30, 1.0, 1.5), (-40, 1.0, 1.5)])
    rep = detect_reps(table, "seated_rotation").reps[0]
    for hold in (rep.hold_internal_s, rep.hold_external_s):
        assert hold is not None and 1.5 <= hold <= 1.5 + 0.3 * 1.0
    # Out phase = from 1° off neutral to the start of the hold: the 1-s ramp minus its slow tails.
    assert 0.6 <= rep.tempo["internal_out_s"] <= 1.0
    assert 1.0 <= rep.tempo["mid_pause_s"] <= 1.4  # 1 s at neutral plus the ramps' first and last degree
    assert rep.arc == pytest.approx(70.0, abs=0.5)
    assert -2.0 < rep.smoothness < -1.3  # minimum-jerk movement
    # A tremor on the way out makes the rep measurably less smooth.
    rot = table.hip_rotation.copy()
    rot[100:200] += 3.0 * np.sin(2 * np.pi * 3.0 * np.arange(100) / 100.0)
    shaky = detect_reps(AngleTable.from_arrays(table.t, rot, hip_flexion=table.hip_flexion), "seated_rotation").reps[0]
    assert shaky.smoothness < rep.smoothness - 0.3
    assert shaky.score_components.control_points < rep.score_components.control_points


def test_events_are_incomplete_at_end_of_stream() -> None:
    table = _synthetic([(30, 0.8, 1.0), (-40, 0.8, 1.0), (30, 0.8, 1.0)])
    det = RepDetector("seated_rotation")
    events = det.update_table(table)
    tail = det.finish()
    assert sum(isinstance(e, RepCompleted) for e in events) == 1
    assert len(tail) == 1 and isinstance(tail[0], RepIncomplete)
    assert tail[0].peaks_deg["internal"] == pytest.approx(30.0, abs=1.0)
    assert math.isfinite(tail[0].t_start)


def test_ninety_ninety_switch_without_a_pause_at_neutral() -> None:
    """90/90: the leg swings from the external end straight through neutral to the internal end."""
    fs = 100.0
    pieces = [np.zeros(100)]
    for er, ir in ((40.0, 30.0), (42.0, 28.0)):
        pieces += [-er * _min_jerk(150), np.full(200, -er), -er + (er + ir) * _min_jerk(250), np.full(200, ir),
                   ir * _min_jerk(150)[::-1], np.zeros(100)]
    rot = np.concatenate(pieces)
    table = AngleTable.from_arrays(np.arange(rot.size) / fs, rot, hip_flexion=np.full(rot.size, 90.0))
    result = detect_reps(table, "hip_90_90")
    assert [(round(r.peak_external_rotation or 0), round(r.peak_internal_rotation or 0)) for r in result.reps] == [(40, 30), (42, 28)]
    assert result.incomplete == []
    assert result.reps[0].tempo["mid_pause_s"] < 0.1


@settings(max_examples=10, deadline=None)
@given(
    reps=st.lists(
        st.tuples(
            st.floats(12.0, 50.0), st.floats(12.0, 60.0),  # internal, external peak
            st.floats(0.5, 2.0), st.floats(0.0, 2.0),  # move and hold durations
            st.floats(0.3, 2.0),  # rest at neutral after each half
        ),
        min_size=1, max_size=5,
    ),
    seed=st.integers(0, 2**16),
)
def test_random_sessions_are_counted_exactly(reps: list[tuple[float, float, float, float, float]], seed: int) -> None:
    fs = 100.0
    parts = [np.zeros(100)]
    for ir, er, move_s, hold_s, rest_s in reps:
        for peak in (ir, -er):
            ramp = peak * _min_jerk(int(move_s * fs))
            parts += [ramp, np.full(int(hold_s * fs), peak), ramp[::-1], np.zeros(int(rest_s * fs))]
    rot = np.concatenate(parts) + np.random.default_rng(seed).normal(0.0, 0.5, sum(p.size for p in parts))
    table = AngleTable.from_arrays(np.arange(rot.size) / fs, rot, hip_flexion=np.full(rot.size, 90.0))
    result = detect_reps(table, "seated_rotation")
    assert len(result.reps) == len(reps) and result.incomplete == []
    for rep, (ir, er, *_rest) in zip(result.reps, reps):
        # 0.5° noise on a peak without a hold biases the filtered maximum up by up to ~1°.
        assert rep.peak_internal_rotation == pytest.approx(ir, abs=1.5)
        assert rep.peak_external_rotation == pytest.approx(er, abs=1.5)


@pytest.mark.parametrize(("session", "drill"), SESSIONS)
def test_perturbed_truth_with_gaps(examples_dir: Path, session: str, drill: str) -> None:
    """Six lost stretches of 0.1-0.5 s on every channel (as after BLE packet loss) change nothing."""
    table, truth = _truth(examples_dir, session)
    noisy = _perturb(table, 21)
    rng = np.random.default_rng(21)
    columns = {name: getattr(noisy, name).copy() for name in ("hip_rotation", "hip_flexion", "hip_adduction", *PELVIS)}
    for _ in range(6):
        i, length = int(rng.integers(2000, len(table) - 100)), int(rng.integers(10, 50))
        for values in columns.values():
            values[i : i + length] = np.nan
    _check_against_truth(AngleTable(t=table.t, **columns), drill, truth)
