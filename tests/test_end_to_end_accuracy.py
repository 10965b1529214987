"""Acceptance, end to end: every replay_data recording and every shared example meets every target.

Each case goes through the real path (``sensorhub.evaluation``: protocol decoding, ingest, clock
mapping, motion pipeline, rep detection) and is scored against its ground truth: hip flexion RMSE
<= 2.0°, adduction <= 3.0°, rotation <= 2.0° over the drill; every rep's peak internal and external
rotation within 3.0°; the rep count exact; compensation flagged in exactly the reps that had it.

The larger picture (extra simulated conditions, random held-out sessions with pass rates per
condition) is ``python -m sensorhub.evaluation`` (docs/accuracy.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sensorhub.evaluation import (
    TARGETS,
    CaseResult,
    evaluate_example,
    evaluate_recording,
)

REPLAY_DATA = Path(__file__).resolve().parent.parent / "replay_data"
RECORDINGS = sorted(p.stem for p in REPLAY_DATA.glob("*.shr"))
EXAMPLES = ("seated_right_9axis", "standing_left_6axis")


def _assert_meets_every_target(r: CaseResult) -> None:
    flexion, adduction, rotation = r.rmse_deg
    assert flexion <= TARGETS["flexion"], f"{r.name}: flexion RMSE {flexion:.2f}° > {TARGETS['flexion']}°"
    assert adduction <= TARGETS["adduction"], f"{r.name}: adduction RMSE {adduction:.2f}° > {TARGETS['adduction']}°"
    assert rotation <= TARGETS["rotation"], f"{r.name}: rotation RMSE {rotation:.2f}° > {TARGETS['rotation']}°"
    assert r.reps_found == r.reps_true, f"{r.name}: {r.reps_found} reps found, {r.reps_true} true"
    assert r.peak_error_deg <= TARGETS["peak"], f"{r.name}: worst peak rotation error {r.peak_error_deg:.2f}° > {TARGETS['peak']}°"
    assert r.compensation_exact, f"{r.name}: compensation not flagged in exactly the compensated reps"
    assert r.passes


def test_replay_data_is_there() -> None:
    # The recordings are part of the repository: an empty list would make the test below vacuous.
    assert len(RECORDINGS) >= 7, RECORDINGS


@pytest.mark.parametrize("name", RECORDINGS)
def test_replay_recording_meets_every_target(name: str) -> None:
    r = evaluate_recording(REPLAY_DATA / f"{name}.shr")
    assert r.reps_true >= 6  # the truth was read: a real drill, not an empty file
    _assert_meets_every_target(r)


@pytest.mark.parametrize("name", EXAMPLES)
def test_shared_example_meets_every_target(examples_dir: Path, name: str) -> None:
    r = evaluate_example(examples_dir / name)
    assert r.reps_true >= 6
    _assert_meets_every_target(r)
