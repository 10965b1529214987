"""Catalog, input table, scoring, session summary, side symmetry, reps.json and the report figure."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from sensorhub.drills.catalog import (
    CATALOG,
    Direction,
    TempoTarget,
    UnknownDrillError,
    get_drill,
)
from sensorhub.drills.norms import MDC, NORMS
from sensorhub.drills.report import render_report
from sensorhub.drills.reps import detect_reps
from sensorhub.drills.scoring import (
    RepMeasures,
    compensation_penalty,
    phase_quality,
    score_rep,
    sparc,
)
from sensorhub.drills.summary import (
    compare_sides,
    reps_document,
    summarize,
    write_reps_json,
)
from sensorhub.drills.table import AngleTable
from sensorhub.errors import ConfigurationError, ImportFormatError

SEEDED_DRILLS = {
    "seated_rotation", "standing_rotation", "standing_toe_pivot", "supine_rotation", "long_sitting_rotation",
    "side_lying_internal", "side_lying_external", "hip_90_90", "lunge_rotation", "tempo_squat", "split_squat",
}


# ---------------------------------------------------------------- catalog and norms
def test_catalog_covers_the_seed_drills() -> None:
    assert SEEDED_DRILLS <= set(CATALOG)


def test_combined_drills_measure_both_directions_internal_first() -> None:
    seated, standing = get_drill("seated_rotation"), get_drill("standing_rotation")
    for drill in (seated, standing):
        assert drill.combined and drill.directions == (Direction.INTERNAL, Direction.EXTERNAL)
    lo, hi = seated.hip_flexion_range_deg
    assert lo < 90.0 < hi
    lo, hi = standing.hip_flexion_range_deg
    assert lo < 0.0 < hi  # hip extended


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_every_drill_is_consistent(name: str) -> None:
    drill = CATALOG[name]
    assert drill.name == name
    assert drill.hip_flexion_range_deg[0] < drill.hip_flexion_range_deg[1]
    for direction in Direction:
        assert (drill.target_deg(direction) is not None) == drill.measures(direction)
    assert drill.min_peak_deg < min(t for t in (drill.target_internal_deg, drill.target_external_deg) if t)
    limits = drill.compensation
    assert min(limits.pelvis_tilt_deg, limits.pelvis_obliquity_deg, limits.pelvis_rotation_deg) > 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        drill.min_peak_deg = 0.0  # type: ignore[misc]


def test_unknown_drill_lists_valid_names() -> None:
    with pytest.raises(ConfigurationError) as info:
        get_drill("seated_rotaton")
    assert isinstance(info.value, UnknownDrillError)
    assert "seated_rotaton" in str(info.value) and "seated_rotation" in str(info.value)


def test_norms_carry_sources() -> None:
    assert NORMS["internal"].normal_deg == 35.0 and NORMS["external"].normal_deg == 45.0
    assert "AAOS" in NORMS["internal"].source or "Orthopaedic" in NORMS["internal"].source
    assert MDC["internal"].mdc_deg == 5.4 and "Krause" in MDC["internal"].source


# ---------------------------------------------------------------- input table
def test_from_csv_accepts_truth_names_and_empty_cells_as_gaps(tmp_path: Path) -> None:
    path = tmp_path / "angles.csv"
    path.write_text(
        "t,hip_flexion,hip_adduction,hip_rotation,pelvis_tilt_z,pelvis_obliquity_x,pelvis_rotation_y\n"
        "0.00,90,1,2.5,10,0,0\n0.02,90,1,,10,0,0\n0.04,90,1,3.5,10,nan,0.5\n"
    )
    table = AngleTable.from_csv(path)
    assert table.t.tolist() == [0.0, 0.02, 0.04]
    assert table.hip_rotation[0] == 2.5 and math.isnan(table.hip_rotation[1])
    assert math.isnan(table.pelvis_obliquity[2]) and table.pelvis_rotation[2] == 0.5


def test_from_csv_names_file_line_and_column_of_bad_values(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("t,hip_rotation\n0.0,1\n0.01,abc\n")
    with pytest.raises(ImportFormatError, match=r"bad.csv: line 3, column 2 \(hip_rotation\): 'abc'"):
        AngleTable.from_csv(path)
    path.write_text("t,hip_flexion\n0.0,1\n")
    with pytest.raises(ImportFormatError, match="missing column 'hip_rotation'"):
        AngleTable.from_csv(path)


def test_missing_columns_are_nan_not_zero() -> None:
    table = AngleTable.from_arrays(np.arange(3) * 0.01, np.zeros(3))
    assert np.isnan(table.pelvis_rotation).all()


# ---------------------------------------------------------------- scoring
def test_sparc_prefers_one_smooth_bump_to_a_shaky_one() -> None:
    fs = 100.0
    s = np.linspace(0, 1, 100)
    smooth = 30 * s**2 * (1 - s) ** 2 * 30  # minimum-jerk speed profile
    shaky = smooth * (1 + 0.5 * np.sin(2 * np.pi * 5 * s))
    assert -1.8 < sparc(smooth, fs) < -1.3
    assert sparc(shaky, fs) < sparc(smooth, fs) - 0.5
    assert math.isnan(sparc(np.zeros(50), fs))


def test_phase_quality_band_and_decay() -> None:
    target = TempoTarget(move_s=1.0, hold_s=1.0, tolerance=0.5)
    assert phase_quality(1.2, target) == 1.0
    assert phase_quality(0.25, target) == pytest.approx(0.5)
    assert phase_quality(3.0, target) == pytest.approx(0.5)  # band top 1.5 s; zero at 3 x 1.5 s
    assert phase_quality(4.5, target) == pytest.approx(0.0)
    assert phase_quality(0.0, target) == 0.0


def test_score_rewards_range_and_penalises_compensation() -> None:
    drill = get_drill("seated_rotation")

    def measures(ir: float, er: float, ratio: float) -> RepMeasures:
        return RepMeasures(
            peak_deg={Direction.INTERNAL: ir, Direction.EXTERNAL: er},
            hold_s={Direction.INTERNAL: 1.0, Direction.EXTERNAL: 1.0},
            move_phase_s=[1.0, 1.0, 1.0, 1.0],
            smoothness_sparc=-1.5,
            compensation_ratio=ratio,
        )

    full = score_rep(drill, measures(35.0, 45.0, 0.2))
    assert full.total == pytest.approx(100.0)
    half = score_rep(drill, measures(17.5, 22.5, 0.2))
    assert half.range_points == pytest.approx(20.0) and half.total == pytest.approx(80.0)
    comp = score_rep(drill, measures(35.0, 45.0, 1.5))
    assert comp.compensation_penalty == pytest.approx(compensation_penalty(1.5)) == pytest.approx(22.5)
    assert comp.total == pytest.approx(77.5)


# ---------------------------------------------------------------- summary, symmetry, reps.json, report
@pytest.fixture(scope="module")
def seated(examples_dir: Path) -> tuple[AngleTable, list[dict[str, object]]]:
    folder = examples_dir / "seated_right_9axis"
    return AngleTable.from_csv(folder / "truth.csv"), json.loads((folder / "reps.json").read_text())


def test_summary_of_the_seated_session_matches_the_truth(seated: tuple[AngleTable, list[dict[str, object]]]) -> None:
    table, truth = seated
    result = detect_reps(table, "seated_rotation")
    summary = summarize(result.reps, "seated_rotation", "right", result.incomplete)
    ir = np.array([r["peak_internal_rotation"] for r in truth], dtype=float)
    er = np.array([r["peak_external_rotation"] for r in truth], dtype=float)
    assert summary.reps_count == 6 and summary.compensated_count == 2 and summary.incomplete_count == 0
    assert summary.internal is not None and summary.external is not None
    assert summary.internal.max_deg == pytest.approx(ir.max(), abs=0.3)
    assert summary.external.mean_deg == pytest.approx(er.mean(), abs=0.3)
    assert summary.internal.sd_deg == pytest.approx(ir.std(ddof=1), abs=0.3)
    assert summary.internal.cv_percent == pytest.approx(100 * ir.std(ddof=1) / ir.mean(), abs=1.0)
    assert summary.ir_er_ratio == pytest.approx(ir.mean() / er.mean(), abs=0.02)
    assert summary.external.percent_of_normal == pytest.approx(100 * er.max() / 45.0, abs=1.0)
    assert not summary.internal.below_normal


def test_compare_sides_flags_only_differences_beyond_the_mdc(seated: tuple[AngleTable, list[dict[str, object]]]) -> None:
    table, _ = seated
    right = detect_reps(table, "seated_rotation")
    # The "left" leg: internal rotation 8° smaller, external 3° smaller.
    rot = np.where(table.hip_rotation > 0, table.hip_rotation * (1 - 8.0 / 33.0), table.hip_rotation * (1 - 3.0 / 41.0))
    left_table = dataclasses.replace(table, hip_rotation=rot)
    left = detect_reps(left_table, "seated_rotation")
    sym = compare_sides(summarize(left.reps, "seated_rotation", "left"), summarize(right.reps, "seated_rotation", "right"))
    assert sym.internal is not None and sym.external is not None
    assert sym.internal.difference_deg == pytest.approx(-8.0, abs=1.0) and sym.internal.flagged
    assert sym.external.difference_deg == pytest.approx(-3.0, abs=0.6) and not sym.external.flagged
    assert sym.internal.symmetry_index_percent == pytest.approx(100 * 8.0 / 29.0, abs=3.0)
    assert sym.flagged


def test_reps_json_has_the_required_keys_and_no_nan(seated: tuple[AngleTable, list[dict[str, object]]], tmp_path: Path) -> None:
    table, truth = seated
    result = detect_reps(table, "seated_rotation")
    summary = summarize(result.reps, "seated_rotation", "right")
    path = write_reps_json(tmp_path / "reps.json", result.reps, summary, result.incomplete)
    doc = json.loads(path.read_text())  # strict JSON: NaN would have been written as a bare token
    required = {"index", "t_start", "t_end", "peak_internal_rotation", "peak_external_rotation", "compensation", "score"}
    assert [r["index"] for r in doc["reps"]] == [1, 2, 3, 4, 5, 6]
    for rec, expected in zip(doc["reps"], truth):
        assert required <= set(rec)
        assert rec["compensation"] is expected["compensation"]
        assert rec["score_components"]["total"] == pytest.approx(rec["score"], abs=1e-3)
        assert "pelvis_rotation" in rec["compensation_detail"]["change_deg"]
    assert doc["summary"]["reps_count"] == 6
    assert reps_document(result.reps, summary)["reps"][0]["index"] == 1


def test_render_report_writes_a_png(seated: tuple[AngleTable, list[dict[str, object]]], tmp_path: Path) -> None:
    table, _ = seated
    result = detect_reps(table, "seated_rotation")
    path = render_report(table, result.reps, "seated_rotation", "right", tmp_path / "report.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    # An empty session still renders (a coach sees "0 reps", not a crash).
    empty = render_report(table.slice_time(0.0, 5.0), [], "seated_rotation", "right", tmp_path / "empty.png")
    assert empty.stat().st_size > 5_000


def test_rep_without_pelvis_data_is_not_flagged_and_writes_null(tmp_path: Path) -> None:
    fs = 100.0
    s = np.linspace(0, 1, 80)
    ramp = 10 * s**3 - 15 * s**4 + 6 * s**5
    rot = np.concatenate([np.zeros(100), 30 * ramp, np.full(100, 30.0), 30 * ramp[::-1], np.zeros(60),
                          -40 * ramp, np.full(100, -40.0), -40 * ramp[::-1], np.zeros(100)])
    table = AngleTable.from_arrays(np.arange(rot.size) / fs, rot)  # no flexion, no pelvis
    result = detect_reps(table, "seated_rotation")
    assert len(result.reps) == 1
    rep = result.reps[0]
    assert not rep.compensation and math.isnan(rep.compensation_detail.change_deg["pelvis_rotation"])
    assert rep.score_components.compensation_penalty == 0.0
    doc = json.loads(write_reps_json(tmp_path / "r.json", result.reps, summarize(result.reps, "seated_rotation", "left")).read_text())
    assert doc["reps"][0]["compensation_detail"]["change_deg"]["pelvis_rotation"] is None
    assert doc["reps"][0]["hip_flexion_mean_deg"] is None
