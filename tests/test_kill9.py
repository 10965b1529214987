"""``kill -9`` while recording and while storing: what was taken in survives.

``sensorhub serve`` does not record to a file, so the two halves run as the product runs them:

* recording: ``sensorhub record --fake-sensors`` (the real command, fake BLE peripherals) is killed
  with SIGKILL mid-session; the file must open and replay up to its last complete record, with no
  hole inside and at most the writer's flush interval missing at the end;
* storing: ``sensorhub serve --replay`` with InfluxDB answering 503 (so points pile up in the
  on-disk spool) is killed with SIGKILL; a restarted service on the same data directory must
  drain the spool into InfluxDB, and the killed session must then hold exactly the points that
  reached InfluxDB before the outage plus those in the spool at the kill — no fewer, no more.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from influx_server import InfluxServer, influx_server  # noqa: F401 - pytest fixture
from service_process import (
    REPLAY,
    FaultProxy,
    LiveWatcher,
    ServiceProcess,
    spool_lines,
    wait_for,
)

from sensorhub.ble.fake import FAKE_PELVIS_ID, FAKE_THIGH_ID
from sensorhub.ingest import Ingest, assemble
from sensorhub.recording import open_recording

SEATED = REPLAY / "seated_right_9axis.shr"
#: RecordingWriter defaults: a record reaches the file at most 1.1 x flush_interval_s (0.5 s) after it arrived.
RECORDING_FLUSH_BOUND_S = 0.55
STORED_RATE_HZ = 50.0


def test_kill9_while_recording_keeps_the_file_replayable(tmp_path: Path) -> None:
    out = tmp_path / "session.shr"
    env = {**os.environ, "SENSORHUB_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sensorhub", "record", "--out", str(out), "--fake-sensors", "--athlete", "ath-9",
         "--drill", "seated_rotation"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def has_notifications() -> bool:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            if not out.exists() or out.stat().st_size < 200:
                return False
            try:
                return sum(open_recording(out).notification_counts.values()) > 0
            except Exception:  # noqa: BLE001 - the file is being written: a header in progress
                return False

        wait_for(has_notifications, 30, "the first notifications in the recording", poll_s=0.05)
        t_first_seen = time.monotonic()
        time.sleep(3.0)
        t_kill = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

    rec = open_recording(out)
    assert rec.end is None  # never closed: the process had no chance to write its end record
    assert rec.meta.athlete is not None and rec.meta.athlete.id == "ath-9"
    assert {s.sensor_id for s in rec.sensors} == {FAKE_PELVIS_ID, FAKE_THIGH_ID}
    notes = list(rec.iter_notifications())
    assert all(math.isfinite(n.t_host_s) for n in notes)
    span_s = notes[-1].t_host_s - notes[0].t_host_s
    # What was streaming for 3 s after the first flush is in the file, up to the writer's flush bound.
    expected_s = t_kill - t_first_seen
    print(f"recording killed after {expected_s:.2f} s of data seen in the file: {len(notes)} notifications "
          f"spanning {span_s:.2f} s, truncated tail: {rec.truncated}")
    assert expected_s - 2 * RECORDING_FLUSH_BOUND_S - 0.2 <= span_s <= expected_s + RECORDING_FLUSH_BOUND_S + 0.2, (
        span_s, expected_s)
    # It replays: every notification decodes, per sensor without a sequence gap, up to the last one.
    ingest = Ingest()
    samples = assemble(iter(notes), ingest)
    stats = ingest.stats()
    for sid in (FAKE_PELVIS_ID, FAKE_THIGH_ID):
        assert stats[sid].packets_received == rec.notification_counts[sid]
        assert stats[sid].packets_lost == 0 and stats[sid].malformed == 0
        assert len(samples[sid]) >= 0.8 * 100.0 * span_s  # 100 Hz fakes
    inspect = subprocess.run([sys.executable, "-m", "sensorhub", "inspect", str(out)], capture_output=True, text=True,
                             timeout=60, check=False)
    assert inspect.returncode == 0, inspect.stderr


@pytest.fixture()
def database(influx_server: InfluxServer) -> Iterator[str]:  # noqa: F811
    influx_server.create_database("kill9")
    yield "kill9"
    influx_server.query('DROP DATABASE "kill9"', post=True)


def _times(server: InfluxServer, db: str, measurement: str, session: str) -> set[int]:
    series = server.query(f'SELECT * FROM "{measurement}" WHERE "session" = \'{session}\'', db)
    return {int(v[0]) for v in series[0]["values"]} if series else set()


def _spooled_times(lines: list[str], measurement: str, session: str) -> set[int]:
    tag = f"session={session}"
    return {int(line.rsplit(" ", 1)[1]) for line in lines
            if line.startswith(measurement + ",") and tag in line.split(" ", 1)[0].split(",")}


def test_kill9_while_storing_loses_nothing_spooled(influx_server: InfluxServer, database: str,  # noqa: F811
                                                   tmp_path: Path) -> None:
    proxy = FaultProxy(influx_server.url).start()
    try:
        svc = ServiceProcess(tmp_path, SEATED, speed=8, influx_url=proxy.url, bucket=database).start()
        watcher = LiveWatcher(f"ws://127.0.0.1:{svc.port}/ws/live").start()
        try:
            wait_for(lambda: len(watcher.frames) > 30, 30, "angles streaming")
            streams = svc.get_json("/api/streams")
            session = streams[0]["session"]
            wait_for(lambda: svc.storage()["written_points"] > 200, 10, "points written before the outage")
            proxy.set("status", status=503)
            wait_for(lambda: svc.storage()["spool_points"] > 1000, 20, "a spool of > 1000 points")
            svc.kill9()
        finally:
            watcher.close()
        before = {m: _times(influx_server, database, m, session) for m in ("hip_angles", "pelvis_angles")}
        lines = spool_lines(tmp_path)
        spooled = {m: _spooled_times(lines, m, session) for m in ("hip_angles", "pelvis_angles")}
        assert len(spooled["hip_angles"]) > 300 and len(before["hip_angles"]) > 50
        assert not before["hip_angles"] & spooled["hip_angles"]  # the outage split the series cleanly

        # Restart on the same data directory with InfluxDB reachable: the spool drains first.
        proxy.set("pass")
        again = ServiceProcess(tmp_path, SEATED, speed=8, influx_url=proxy.url, bucket=database).start()
        try:
            wait_for(lambda: again.storage()["spool_points"] == 0, 30, "the spool to drain after the restart")
            assert again.storage()["dropped_records"] == 0
        finally:
            again.stop()
        for m in ("hip_angles", "pelvis_angles"):
            after = _times(influx_server, database, m, session)
            print(f"{m}: {len(before[m])} points in InfluxDB at the kill + {len(spooled[m])} in the spool "
                  f"-> {len(after)} after the restart")
            assert after == before[m] | spooled[m], (
                f"{m}: {len(after)} points stored, {len(before[m])} before the kill + {len(spooled[m])} spooled")
            # Nothing missing inside what was taken in: one point per 20-ms bucket, first to last.
            buckets = sorted(math.floor(t / 1e9 * STORED_RATE_HZ) for t in after)
            assert len(buckets) == buckets[-1] - buckets[0] + 1
    finally:
        proxy.close()
