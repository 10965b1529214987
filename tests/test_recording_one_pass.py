"""``read_recording_notifications`` (one pass) returns what ``open_recording`` + ``notifications()`` (two) do."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPLAY_DATA

from sensorhub.recording import RecordCrcError, open_recording, read_recording_notifications

RECORDINGS = sorted(REPLAY_DATA.glob("*.shr"))


def _same(path: Path) -> int:
    rec, notes = read_recording_notifications(path)
    ref = open_recording(path)
    assert notes == ref.notifications()
    assert (rec.sensors, rec.meta, rec.marks, rec.calibrations, rec.end, rec.truncated, rec.end_offset) == (
        ref.sensors, ref.meta, ref.marks, ref.calibrations, ref.end, ref.truncated, ref.end_offset)
    assert rec.notification_counts == ref.notification_counts
    return len(notes)


@pytest.mark.skipif(not RECORDINGS, reason="replay_data/ holds no recordings")
@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: Path(p).stem)
def test_one_pass_equals_two_on_replay_data(path: Path) -> None:
    assert _same(path) > 500


@pytest.mark.skipif(not RECORDINGS, reason="replay_data/ holds no recordings")
def test_one_pass_equals_two_on_a_cut_off_file_and_raises_the_same_errors(tmp_path: Path) -> None:
    data = RECORDINGS[0].read_bytes()
    cut = tmp_path / "cut.shr"
    cut.write_bytes(data[: len(data) // 2])
    assert open_recording(cut).truncated
    assert _same(cut) > 100
    bad = tmp_path / "bad.shr"
    bad.write_bytes(data[:5000] + bytes([data[5000] ^ 0xFF]) + data[5001:])  # a flipped byte mid-file
    with pytest.raises(RecordCrcError) as two:
        open_recording(bad)
    with pytest.raises(RecordCrcError) as one:
        read_recording_notifications(bad)
    assert str(one.value) == str(two.value)
