"""OnlinePipeline's bounded frame history: series() returns exactly the last history_s seconds, nothing else changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sensorhub.analysis import load_recording_input
from sensorhub.errors import ConfigurationError
from sensorhub.motion.align import slice_samples
from sensorhub.motion.pipeline import OnlinePipeline

RECORDING = Path(__file__).resolve().parent.parent / "replay_data" / "standing_left_6axis.shr"


def _run(history_s: float | None) -> tuple[OnlinePipeline, np.ndarray]:
    leg = load_recording_input(RECORDING).legs[0]
    events = sorted((float(s.t_s[min(i + 5, len(s) - 1)]), name, i)
                    for name, s in (("pelvis", leg.pelvis), ("thigh", leg.thigh)) for i in range(0, len(s), 6))
    online = OnlinePipeline(leg.side, history_s=history_s)
    rows = []
    for _, name, i in events:
        smp = leg.pelvis if name == "pelvis" else leg.thigh
        for f in online.push(name, slice_samples(smp, i, min(i + 6, len(smp)))):
            rows.append((f.t_s, f.hip_flexion_deg, f.hip_adduction_deg, f.hip_rotation_deg, f.pelvis_tilt_deg,
                         f.pelvis_obliquity_deg, f.pelvis_rotation_deg, float(f.gap)))
    return online, np.array(rows)


@pytest.fixture(scope="module")
def unbounded() -> tuple[OnlinePipeline, np.ndarray]:
    if not RECORDING.exists():
        pytest.skip("replay_data recording missing")
    return _run(None)


def _series_rows(online: OnlinePipeline) -> np.ndarray:
    s = online.series()
    return np.column_stack((s.as_array(), s.gap.astype(float)))


def test_unbounded_series_is_every_emitted_frame(unbounded: tuple[OnlinePipeline, np.ndarray]) -> None:
    online, frames = unbounded
    assert len(frames) > 3000
    assert np.array_equal(_series_rows(online), frames, equal_nan=True)


@pytest.mark.parametrize("history_s", [0.0, 7.3, 20.0])
def test_bounded_history_keeps_the_last_seconds_and_the_same_frames(unbounded: tuple[OnlinePipeline, np.ndarray],
                                                                       history_s: float) -> None:
    _, frames_all = unbounded
    online, frames = _run(history_s)
    assert np.array_equal(frames, frames_all, equal_nan=True)  # what push returns does not depend on history_s
    kept = _series_rows(online)
    n_keep = int(np.ceil(history_s * online.rate_hz))
    assert len(kept) == n_keep
    assert np.array_equal(kept, frames_all[len(frames_all) - n_keep:], equal_nan=True)
    if n_keep:
        assert kept[-1, 0] - kept[0, 0] == pytest.approx(history_s, abs=1.5 / online.rate_hz)


def test_negative_history_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="history_s"):
        OnlinePipeline("left", history_s=-1.0)
