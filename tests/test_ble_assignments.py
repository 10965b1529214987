"""Sensor-to-body assignments: rules, persistence in the data dir, atomic file writes, clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sensorhub.assignments import Assignment, AssignmentError, AssignmentStore, data_dir
from sensorhub.errors import ConfigurationError

P1, T1, T2, T3 = "a00000000001", "a00000000002", "a00000000003", "a00000000004"


def test_default_location_is_sensorhub_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENSORHUB_DATA_DIR", str(tmp_path / "data"))
    store = AssignmentStore()
    assert store.path == tmp_path / "data" / "assignments.json"
    store.assign(P1, "ath-1", "pelvis")
    assert store.path.is_file()
    monkeypatch.delenv("SENSORHUB_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "sensorhub"


def test_assign_list_unassign_and_remembered_by_a_new_store(tmp_path: Path) -> None:
    path = tmp_path / "assignments.json"
    store = AssignmentStore(path)
    store.assign(P1, "ath-1", "pelvis")
    store.assign(T1, "ath-1", "thigh", "right")
    store.assign(T2, "ath-1", "thigh", "left")
    store.assign(T3, "ath-2", "thigh", "right")

    again = AssignmentStore(path)  # e.g. the service after a restart
    assert [(a.sensor_id, a.segment, a.side) for a in again.list("ath-1")] == [
        (P1, "pelvis", None), (T2, "thigh", "left"), (T1, "thigh", "right")]
    assert [a.athlete for a in again.list()] == ["ath-1", "ath-1", "ath-1", "ath-2"]
    assert again.get(T3) == Assignment(T3, "ath-2", "thigh", "right", again.get(T3).assigned_at)  # type: ignore[union-attr]

    removed = again.unassign(T2)
    assert removed is not None and removed.label == "left thigh"
    assert again.unassign(T2) is None
    assert [a.sensor_id for a in store.list("ath-1")] == [P1, T1]


def test_one_sensor_per_slot_and_one_slot_per_sensor(tmp_path: Path) -> None:
    store = AssignmentStore(tmp_path / "a.json")
    store.assign(T1, "ath-1", "thigh", "right")
    store.assign(T2, "ath-1", "thigh", "right")  # a charged sensor replaces the flat one
    assert [a.sensor_id for a in store.list()] == [T2]
    store.assign(T2, "ath-2", "pelvis")  # moving a sensor to another athlete drops its old slot
    assert [(a.sensor_id, a.athlete, a.segment) for a in store.list()] == [(T2, "ath-2", "pelvis")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((P1, "ath", "shank", None), "segment 'shank'"),
        ((P1, "ath", "thigh", None), "needs side"),
        ((P1, "ath", "thigh", "middle"), "needs side"),
        ((P1, "ath", "pelvis", "left"), "pelvis sensor has no side"),
        (("AA:BB:CC:DD:EE:FF", "ath", "pelvis", None), "12 lowercase hex"),
        ((P1, "  ", "pelvis", None), "athlete"),
    ],
)
def test_invalid_assignments_are_refused(tmp_path: Path, args: tuple[str, str, str, str | None], message: str) -> None:
    store = AssignmentStore(tmp_path / "a.json")
    with pytest.raises(AssignmentError, match=message) as info:
        store.assign(*args)
    assert isinstance(info.value, ConfigurationError)
    assert not (tmp_path / "a.json").exists()


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.json"
    store = AssignmentStore(path)
    store.assign(P1, "ath-1", "pelvis")
    before = path.read_bytes()

    def failing_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space"):
        store.assign(T1, "ath-1", "thigh", "left")
    monkeypatch.undo()
    assert path.read_bytes() == before  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    doc = json.loads(before)
    assert doc["version"] == 1 and doc["assignments"][0]["sensor_id"] == P1


def test_damaged_file_is_reported_with_its_path_and_position(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text('{"version": 1, "assignments": [\n  {"sensor_id": ', encoding="utf-8")
    with pytest.raises(AssignmentError, match=r"a\.json: line 2 column"):
        AssignmentStore(path).list()
    path.write_text(json.dumps({"version": 1, "assignments": [
        {"sensor_id": P1, "athlete": "x", "segment": "thigh", "side": None}]}), encoding="utf-8")
    with pytest.raises(AssignmentError, match=r"assignments\[0\].*needs side"):
        AssignmentStore(path).list()
    path.write_text(json.dumps({"version": 7, "assignments": []}), encoding="utf-8")
    with pytest.raises(AssignmentError, match='"version": 1'):
        AssignmentStore(path).list()
