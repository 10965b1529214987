"""``sensorhub record --fake-sensors``: the real command against fake peripherals; the file replays."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from sensorhub.assignments import AssignmentStore
from sensorhub.ble.fake import FAKE_PELVIS_ID, FAKE_THIGH_ID
from sensorhub.cli import main
from sensorhub.commands.record import record
from sensorhub.ingest import Ingest, assemble
from sensorhub.recording import open_recording
from sensorhub.sim import SimConfig, simulate


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("SENSORHUB_DATA_DIR", str(path))
    return path


def test_record_with_fake_sensors_writes_a_recording_that_replays(
        tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "session.shr"
    code = main(["record", "--out", str(out), "--fake-sensors", "--duration", "1.0",
                 "--athlete", "ath-1", "--drill", "seated_rotation"])
    assert code == 0
    assert "recording:" in capsys.readouterr().out

    rec = open_recording(out)
    assert rec.end is not None and rec.end["status"] == "ok" and not rec.truncated
    summary = rec.end["summary"]["sensors"]
    assert summary[FAKE_THIGH_ID]["role"] == "right thigh" and summary[FAKE_PELVIS_ID]["packets_lost"] == 0
    assert rec.meta.athlete is not None and rec.meta.athlete.id == "ath-1"
    assert (rec.meta.drill, rec.meta.side, rec.meta.source) == ("seated_rotation", "right", "ble-fake")
    roles = {s.sensor_id: (s.segment, s.side, s.has_mag, s.rate_hz) for s in rec.sensors}
    assert roles == {FAKE_PELVIS_ID: ("pelvis", None, True, 100.0), FAKE_THIGH_ID: ("thigh", "right", True, 100.0)}
    assert [m.label for m in rec.marks].count("time_sync") == 2

    ingest = Ingest()
    samples = assemble(rec.iter_notifications(), ingest)
    stats = ingest.stats()
    # The fakes stream the simulator's readings of the same session, from its first sample on.
    session = simulate(SimConfig(drill="seated_rotation", side="right", seed=0, reps=3, compensation_reps=(2,)))
    for sid, segment in ((FAKE_PELVIS_ID, "pelvis"), (FAKE_THIGH_ID, "thigh")):
        s = samples[sid]
        assert rec.notification_counts[sid] == stats[sid].packets_received
        assert stats[sid].packets_lost == 0
        assert 80 <= len(s) <= 140  # 1 s at 100 Hz, 5 samples per notification
        truth = session.sensors[segment].readings
        np.testing.assert_allclose(s.gyr_rad_s, truth.gyr_rad_s[:len(s)], atol=1e-3)
        np.testing.assert_allclose(s.acc_m_s2, truth.acc_m_s2[:len(s)], atol=2e-3)
        assert stats[sid].nominal_rate_hz == 100.0


def test_stored_assignment_wins_over_the_fake_defaults(tmp_path: Path, data_dir: Path) -> None:
    store = AssignmentStore()
    store.assign(FAKE_PELVIS_ID, "ath-2", "pelvis")
    store.assign(FAKE_THIGH_ID, "ath-2", "thigh", "left")
    out = tmp_path / "left.shr"
    result = asyncio.run(record(out, athlete="ath-2", duration_s=0.6, fake_sensors=True, scan_timeout_s=0.05))
    rec = open_recording(out)
    assert {s.sensor_id: (s.segment, s.side) for s in rec.sensors} == {
        FAKE_PELVIS_ID: ("pelvis", None), FAKE_THIGH_ID: ("thigh", "left")}
    assert rec.meta.side == "left"
    assert result.status == "ok"
    assert result.notifications == rec.notification_counts


def test_sigint_ends_the_recording_cleanly(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "interrupted.shr"

    async def interrupt_when_streaming() -> None:
        while not (out.exists() and open_recording(out).n_notifications > 0):
            await asyncio.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    async def scenario() -> object:
        killer = asyncio.create_task(interrupt_when_streaming())
        result = await asyncio.wait_for(record(out, fake_sensors=True, scan_timeout_s=0.05), 20.0)
        await killer
        return result

    result = asyncio.run(scenario())
    rec = open_recording(out)
    assert rec.end is not None and rec.end["status"] == "ok" and result.status == "ok"  # type: ignore[attr-defined]
    assert sum(rec.notification_counts.values()) > 0


def test_athlete_without_assigned_sensors_is_a_clear_error(
        tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["record", "--out", str(tmp_path / "x.shr"), "--athlete", "nobody", "--duration", "1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "no sensors are assigned to athlete 'nobody'" in err
    assert not (tmp_path / "x.shr").exists()


def test_assigned_sensor_that_connects_late_joins_the_recording(
        tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sensorhub.ble import fake

    original = fake.simulated_radio

    def thigh_out_of_range_at_first(**kwargs: object) -> tuple[fake.FakeRadio, dict[str, tuple[str, str | None]]]:
        radio, roles = original(**kwargs)  # type: ignore[arg-type]
        thigh = next(p for p in radio.peripherals.values() if p.sensor_id == FAKE_THIGH_ID)
        thigh.available = False
        asyncio.get_running_loop().call_later(0.3, setattr, thigh, "available", True)
        return radio, roles

    monkeypatch.setattr(fake, "simulated_radio", thigh_out_of_range_at_first)
    out = tmp_path / "late.shr"
    result = asyncio.run(record(out, duration_s=1.5, fake_sensors=True, scan_timeout_s=0.05, connect_timeout_s=0.25))
    rec = open_recording(out)
    assert [s.sensor_id for s in rec.sensors] == [FAKE_PELVIS_ID, FAKE_THIGH_ID]
    assert rec.notification_counts[FAKE_THIGH_ID] > 0
    assert rec.notification_counts[FAKE_THIGH_ID] < rec.notification_counts[FAKE_PELVIS_ID]
    assert result.notifications == rec.notification_counts
