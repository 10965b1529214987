"""The InfluxDB store's fast angle-frame encoder writes exactly the lines influxdb-client's ``Point`` writes.

:class:`sensorhub.storage.influx.FrameEncoder` replaced ``Point.to_line_protocol`` for angle frames
(the bulk of the points) to take load off the writer thread; point identity (measurement, tags,
timestamp) and field text must not change, or a re-sent spooled batch would no longer overwrite
itself and stored series would differ from before.
"""

from __future__ import annotations

import math
import random

import pytest

from sensorhub.storage.influx import FrameEncoder, encode_batch
from sensorhub.storage.model import AngleFrame, RepRecord, SensorStatus, SessionRecord
from sensorhub.storage.schema import (
    frame_points,
    rep_point,
    session_point,
    status_point,
)
from sensorhub.storage.writer import RecordBatch


def _by_point(frames: list[AngleFrame]) -> list[str]:
    return [p.to_line_protocol() for f in frames for p in frame_points(f)]


def test_random_frames_give_the_same_lines_as_point() -> None:
    rng = random.Random(3)
    special = [math.nan, 0.0, -0.0, 1.0, -90.0, 1e-7, 123456789.0, 1e16, 2.5e-320, 0.1 + 0.2]
    frames = []
    for i in range(2000):
        values = [rng.choice(special) if rng.random() < 0.3 else rng.uniform(-180.0, 180.0) for _ in range(6)]
        frames.append(AngleFrame(1.7e9 + i * 0.01 + rng.random() * 1e-4, f"ath{i % 7}", f"s{i % 3:016x}",
                                 rng.choice(["left", "right"]), rng.choice(["seated_rotation", "standing_rotation"]),
                                 *values))
    encoder = FrameEncoder()
    lines = encoder.lines(frames)
    assert lines == _by_point(frames)
    assert lines == encoder.lines(frames)  # cached series prefixes give the same text
    assert any("=-0 " in line or "=-0," in line for line in lines)  # -0.0 written as Point writes it


@pytest.mark.parametrize("athlete", ["a b", "a,b", "a=b", "trailing\\", "ünï cødé", "#hash"])
def test_tag_values_needing_escapes(athlete: str) -> None:
    frames = [AngleFrame(1.7e9, athlete, "sess 1", "left", "seated rotation", 1.5, -2.0, 3.25, 0.5, 0.0, -1.0)]
    assert FrameEncoder().lines(frames) == _by_point(frames)


def test_missing_angles_and_empty_tags() -> None:
    nan = math.nan
    frames = [
        AngleFrame(1.7e9, "a", "s", "right", "", 1.0, 2.0, 3.0),  # no pelvis angles: no pelvis point
        AngleFrame(1.7e9 + 0.02, "a", "s", "right", "d", nan, nan, nan, 4.0, nan, 5.0),  # no hip point
        AngleFrame(1.7e9 + 0.04, "a", "s", "right", "d", nan, nan, nan),  # nothing at all
        AngleFrame(1.7e9 + 0.06, "a", "s", "right", "d", float("inf"), 1.0, -float("inf"), nan, 2.0, nan),
    ]
    lines = FrameEncoder().lines(frames)
    assert lines == _by_point(frames)
    assert len(lines) == 4
    assert lines[0].startswith("hip_angles,athlete=a,session=s,side=right ")  # the empty drill tag left out


def test_encode_batch_keeps_the_order_and_the_other_records() -> None:
    frames = [AngleFrame(1.7e9 + k * 0.02, "a", "s", "left", "d", k, -k, 0.5 * k, 1.0, 2.0, 3.0) for k in range(5)]
    session = SessionRecord("s", "a", "d", "left", 1.7e9, 1.7e9 + 60.0, {"reps": 3})
    rep = RepRecord(athlete="a", session="s", side="left", drill="d", index=0, t_start_s=1.7e9 + 1.0,
                    t_end_s=1.7e9 + 3.0, peak_internal_rotation_deg=30.0, peak_external_rotation_deg=40.0,
                    arc_deg=70.0, compensations=(), score=88.0, score_components={"range": 90.0})
    status = SensorStatus("p1", 80.0, 0.01, 100.0, True, 1.7e9 + 5.0, "a")
    batch = RecordBatch(frames=frames, reps=[rep], sessions=[session], statuses=[status])
    expected = [session_point(session).to_line_protocol(), rep_point(rep).to_line_protocol(), *_by_point(frames),
                status_point(status, 1.7e9 + 5.0).to_line_protocol()]
    assert encode_batch(batch, store_raw_imu=False) == expected
