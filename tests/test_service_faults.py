"""Service-level storage faults, seen through the running service (``sensorhub serve --replay``).

Each test runs the real service in its own process, replaying ``seated_right_9axis`` (2 sensors at
100 Hz, 90 s, no packet loss) faster than real time into a real InfluxDB 1.6 (behind nginx, see
``influx_server.py``), with one WebSocket client watching. Faults: influxd stopped mid-session, a
proxy that delays writes past the write timeout or answers 503 / 429, and a spool too small for the
outage. Each test asserts what the user sees (``/api/health``, the ``status`` messages: storage
state, spool depth, alert), that the live view goes on (frame messages at about the display rate of
30 Hz), and what is kept: after recovery InfluxDB holds every angle frame of the session exactly
once (see :func:`assert_session_complete`).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from influx_server import InfluxServer, influx_server  # noqa: F401 - pytest fixture
from service_process import REPLAY, FaultProxy, LiveWatcher, ServiceProcess, wait_for

SEATED = REPLAY / "seated_right_9axis.shr"
#: Receive time of its last notification minus that of its first.
SEATED_LENGTH_S = 89.847
#: Frames are stored at ``angle_rate_hz`` (default 50 Hz): at most one point per 20-ms bucket.
STORED_RATE_HZ = 50.0
#: Display rate of the live view; frames must keep arriving at least at this fraction of it.
DISPLAY_RATE_HZ = 30.0
MIN_RATE_FRACTION = 0.75


@pytest.fixture()
def database(influx_server: InfluxServer, request: pytest.FixtureRequest) -> Iterator[str]:  # noqa: F811
    name = "faults_" + request.node.name.replace("[", "_").replace("]", "").replace("-", "_")
    influx_server.create_database(name)
    yield name
    influx_server.query(f'DROP DATABASE "{name}"', post=True)


@pytest.fixture()
def proxy(influx_server: InfluxServer) -> Iterator[FaultProxy]:  # noqa: F811
    p = FaultProxy(influx_server.url).start()
    yield p
    p.close()


def stream_state(svc: ServiceProcess) -> tuple[str | None, str | None]:
    """(pipeline state, running session id) of the replay's one stream."""
    streams = svc.get_json("/api/streams")
    return (streams[0]["state"], streams[0]["session"]) if streams else (None, None)


def wait_streaming(svc: ServiceProcess, watcher: LiveWatcher) -> str:
    """Wait until the stream is calibrated and frames reach the browser; returns the session id."""
    wait_for(lambda: stream_state(svc)[0] == "streaming" and len(watcher.frames) > 10, 30, "angles streaming")
    session = stream_state(svc)[1]
    assert session is not None
    return session


def wait_session_end_and_drain(svc: ServiceProcess, timeout_s: float = 40.0) -> dict[str, Any]:
    """Wait for the replay's session to end and the store to deliver everything; returns storage health."""
    wait_for(lambda: stream_state(svc)[1] is None, timeout_s, "the replayed session to end")

    def drained() -> bool:
        st = svc.storage()
        return st["state"] == "ok" and st["spool_points"] == 0 and st["buffered_records"] == 0

    wait_for(drained, timeout_s, "the spool to drain")
    return svc.storage()


MAX_FRAME_GAP_S = 1.5


def assert_live_view_kept_going(watcher: LiveWatcher, since: float, until: float) -> None:
    rate = watcher.frame_rate_hz(since, until)
    gap = watcher.longest_frame_gap_s(since, until)
    print(f"live view during the fault: {rate:.1f} frame messages/s, longest gap {gap * 1e3:.0f} ms")
    assert rate >= MIN_RATE_FRACTION * DISPLAY_RATE_HZ, f"frames at {rate:.1f} Hz during the fault"
    # A write blocking the live path would freeze the view for the whole fault (the slow phase holds
    # each write 2 s); the bound leaves room for scheduling stalls on a loaded CI machine.
    assert gap < MAX_FRAME_GAP_S, f"no frame for {gap:.2f} s during the fault"
    assert watcher.closed_reason is None


def assert_spool_grew(seen: list[dict[str, Any]], state: str) -> None:
    """Status messages during an outage: ``state`` throughout, spool depth strictly growing at least twice."""
    assert len(seen) >= 2, f"only {len(seen)} status messages during the fault"
    assert {s["state"] for s in seen[1:]} == {state}, [s["state"] for s in seen]
    depths = [s["spool_points"] for s in seen]
    print(f"spool depth in the status messages: {depths}")
    rises = sum(1 for a, b in itertools.pairwise(depths) if b > a)
    assert rises >= 2 and depths[-1] > 0, f"spool depth during the outage: {depths}"
    assert all(s["database_reachable"] is False for s in seen[1:])


def assert_session_complete(server: InfluxServer, db: str, session: str) -> int:
    """Every angle frame of ``session`` is in InfluxDB exactly once; returns the point count per measurement.

    The pipeline makes a frame every 10 ms without gaps on this loss-free recording, and the store
    keeps the first frame of every 20-ms bucket, so the stored series must hold exactly one point
    in *every* bucket from its first to its last point (a lost batch leaves a hole, a duplicate with
    another timestamp puts two points in a bucket; an identical re-send is one point by InfluxDB's
    point identity), must reach the session's end, and hip and pelvis series must agree.
    """
    where = f"WHERE \"session\" = '{session}'"
    counts = {}
    for measurement in ("hip_angles", "pelvis_angles"):
        series = server.query(f'SELECT * FROM "{measurement}" {where}', db)
        assert series, f"no {measurement} points of session {session}"
        times_ns = [int(v[0]) for v in series[0]["values"]]
        buckets = [math.floor(t / 1e9 * STORED_RATE_HZ) for t in times_ns]
        span = buckets[-1] - buckets[0] + 1
        assert len(set(buckets)) == len(buckets) == span, (
            f"{measurement}: {len(buckets)} points, {len(set(buckets))} buckets, span of {span} buckets"
        )
        counts[measurement] = len(times_ns)
        print(f"{measurement} of session {session}: {len(times_ns)} points in {span} buckets")
        last_s = times_ns[-1] / 1e9
    assert counts["hip_angles"] == counts["pelvis_angles"]
    # The replay's session starts with the recording's first notification and the frames carry the
    # recording's own time line (origin + receive time), so the last frame lies one recording length
    # after the session's start.
    sessions = server.query(f'SELECT "ended_unix_s" FROM "sessions" {where}', db)
    started_s = int(sessions[0]["values"][0][0]) / 1e9
    missing_s = SEATED_LENGTH_S - (last_s - started_s)
    assert -0.5 < missing_s < 0.5, f"last stored frame {missing_s:.2f} s before the end of the recording"
    return counts["hip_angles"]


def test_influxdb_stopped_mid_session(influx_server: InfluxServer, database: str, tmp_path: Path) -> None:  # noqa: F811
    svc = ServiceProcess(tmp_path, SEATED, speed=8, influx_url=influx_server.url, bucket=database).start()
    watcher = LiveWatcher(f"ws://127.0.0.1:{svc.port}/ws/live").start()
    try:
        session = wait_streaming(svc, watcher)
        assert svc.storage()["state"] == "ok"
        influx_server.stop_influxd()  # nginx stays up and answers 502, like a proxy in front of a dead database
        t_down = time.monotonic()
        time.sleep(4.0)
        during = svc.health()
        assert during["status"] == "ok"
        assert during["storage"]["state"] == "degraded" and during["storage"]["spool_points"] > 0
        assert during["storage"]["alert"] is None and during["storage"]["dropped_records"] == 0
        assert "502" in (during["storage"]["last_error"] or "")
        t_up = time.monotonic()
        assert_live_view_kept_going(watcher, t_down + 0.5, t_up)
        assert_spool_grew(watcher.storage_seen(t_down + 1.0, t_up), "degraded")
    finally:
        influx_server.start_influxd()
    try:
        final = wait_session_end_and_drain(svc)
        assert final["dropped_records"] == 0 and final["rejected_points"] == 0
        n = assert_session_complete(influx_server, database, session)
        assert n > 40 * STORED_RATE_HZ  # the drill's ~70 s of angles
        assert svc.alive
    finally:
        watcher.close()
        svc.stop()


def test_slow_and_erroring_influxdb(influx_server: InfluxServer, database: str, proxy: FaultProxy,  # noqa: F811
                                    tmp_path: Path) -> None:
    """Writes slowed below and beyond the write timeout (1 s), then 503 and 429 answers, in one session.

    The phases (7.6 s) fit in the drill's ~9 s at 8x, so the session's end is not taken for a stall.
    """
    svc = ServiceProcess(tmp_path, SEATED, speed=8, influx_url=proxy.url, bucket=database).start()
    watcher = LiveWatcher(f"ws://127.0.0.1:{svc.port}/ws/live").start()
    try:
        session = wait_streaming(svc, watcher)
        # Slow but within the timeout: writes lag, nothing is spooled.
        proxy.set("delay", delay_s=0.4)
        t0 = time.monotonic()
        time.sleep(1.5)
        slow = svc.storage()
        assert slow["state"] == "ok" and slow["spool_points"] == 0
        assert proxy.forwarded_writes > 0
        # Slower than the write timeout: requests time out, points go to the spool (and the ones
        # that did reach InfluxDB late are re-sent from it: an overwrite, not a duplicate).
        proxy.set("delay", delay_s=2.0)
        t1 = time.monotonic()
        time.sleep(2.5)
        timed_out = svc.storage()
        assert timed_out["state"] == "degraded" and timed_out["spool_points"] > 0
        assert "timed out" in (timed_out["last_error"] or "").lower() or "timeout" in (timed_out["last_error"] or "").lower()
        phases = [("slow", t0, t1), ("timing out", t1, time.monotonic())]
        for status in (503, 429):
            proxy.set("status", status=status)
            t_phase = time.monotonic()
            time.sleep(1.8)
            erroring = svc.storage()
            assert erroring["state"] == "degraded", status
            assert str(status) in (erroring["last_error"] or ""), erroring["last_error"]
            phases.append((str(status), t_phase, time.monotonic()))
        t2 = time.monotonic()
        for name, since, until in phases:
            print(f"phase {name}:", end=" ")
            assert_live_view_kept_going(watcher, since, until)
        assert_spool_grew(watcher.storage_seen(t1 + 1.5, t2), "degraded")
        assert proxy.refused_writes > 0
        proxy.set("pass")
        final = wait_session_end_and_drain(svc)
        assert final["dropped_records"] == 0 and final["rejected_points"] == 0
        assert_session_complete(influx_server, database, session)
        assert svc.alive
    finally:
        proxy.set("pass")
        watcher.close()
        svc.stop()


def test_spool_full_raises_a_visible_alert(influx_server: InfluxServer, database: str, proxy: FaultProxy,  # noqa: F811
                                           tmp_path: Path) -> None:
    spool_max_bytes = 100_000  # a few write batches of a 8x replay: full within a second
    svc = ServiceProcess(tmp_path, SEATED, speed=8, influx_url=proxy.url, bucket=database,
                         env={"SENSORHUB_SPOOL_MAX_BYTES": str(spool_max_bytes)}).start()
    watcher = LiveWatcher(f"ws://127.0.0.1:{svc.port}/ws/live").start()
    try:
        wait_streaming(svc, watcher)
        proxy.set("status", status=503)
        t0 = time.monotonic()
        wait_for(lambda: svc.storage()["state"] == "down", 10, "storage state 'down'")
        time.sleep(2.5)
        health = svc.health()
        storage = health["storage"]
        assert health["status"] == "ok"  # the service itself is up: only storage is in trouble
        assert storage["state"] == "down"
        assert "full" in storage["alert"] and "SENSORHUB_SPOOL_MAX_BYTES" in storage["alert"]
        assert storage["dropped_records"] > 0  # lost points are counted, not hidden
        assert 0 < storage["spool_bytes"] <= spool_max_bytes
        print(f"spool full: {storage['spool_bytes']} of {spool_max_bytes} bytes, {storage['dropped_records']} "
              f"points dropped, alert: {storage['alert']}")
        t1 = time.monotonic()
        assert_live_view_kept_going(watcher, t0, t1)
        seen = watcher.storage_seen(t1 - 2.0, t1)
        assert seen and all(s["state"] == "down" and "full" in (s["alert"] or "") for s in seen)
        # InfluxDB back: the spool drains and the alert clears on its own.
        proxy.set("pass")
        wait_for(lambda: svc.storage()["spool_points"] == 0, 20, "the spool to drain")
        wait_for(lambda: svc.storage()["state"] == "ok", 10, "storage back to 'ok'")
        assert svc.storage()["alert"] is None
        assert svc.alive
    finally:
        proxy.set("pass")
        watcher.close()
        svc.stop()
