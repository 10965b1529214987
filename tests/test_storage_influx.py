"""The InfluxDB store against a real influxd (1.6 behind an nginx v2-write proxy): writes through the
real influxdb-client, reads back with InfluxQL; outage, restart and full-spool behaviour."""

from __future__ import annotations

import itertools
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

try:  # tests/ as a package (tests/__init__.py present) or as a plain directory on sys.path
    from tests.influx_server import InfluxServer, free_port, influx_server
except ModuleNotFoundError:
    from influx_server import InfluxServer, free_port, influx_server  # type: ignore[no-redef]  # noqa: F401

from sensorhub.storage import (
    AngleFrame,
    RepRecord,
    SensorStatus,
    SessionRecord,
    StorageSettings,
    StorageState,
    StorageUnavailableError,
    Store,
)
from sensorhub.storage.influx import InfluxStore
from sensorhub.storage.schema import timestamp_ns
from sensorhub.storage.spool import SPOOL_FILENAME, Spool

T0 = 1_793_577_600.0  # 2026-11-02 00:00 UTC
_db_counter = itertools.count()


@pytest.fixture()
def influx(influx_server: InfluxServer) -> Iterator[InfluxServer]:
    """The shared server, guaranteed running (a failed outage test must not leave it stopped)."""
    if influx_server._influxd is None:
        influx_server.start_influxd()
    yield influx_server
    if influx_server._influxd is None:
        influx_server.start_influxd()


def new_db(server: InfluxServer) -> str:
    name = f"sensorhub_test_{next(_db_counter)}"
    server.create_database(name)
    return name


def settings(server: InfluxServer, db: str, data_dir: Path, **overrides: object) -> StorageSettings:
    base: dict[str, Any] = {
        "influx_url": server.url,
        "influx_token": "test-token",
        "influx_bucket": db,
        "data_dir": data_dir,
        "flush_interval_s": 0.05,
        "batch_size": 1000,
        "retry_initial_delay_s": 0.05,
        "retry_max_delay_s": 0.3,
        "write_timeout_s": 2.0,
        "http_retries": 1,
    }
    return StorageSettings(**(base | overrides))


def frames(
    n: int, *, start: int = 0, athlete: str = "ann", session: str = "s1", side: str = "left"
) -> list[AngleFrame]:
    """Frames at 50 Hz, each in the middle of its 50-Hz bucket (none removed by downsampling)."""
    return [
        AngleFrame(
            T0 + (i + 0.5) / 50.0, athlete, session, side, "seated_rotation", 20.0, -3.0, 0.01 * i, 4.0, -1.0, 2.0
        )
        for i in range(start, start + n)
    ]


def count_and_sum(server: InfluxServer, db: str, session: str = "s1") -> tuple[int, float]:
    series = server.query(
        f"SELECT count(rotation_deg), sum(rotation_deg) FROM hip_angles WHERE session = '{session}'", db
    )
    if not series:
        return 0, 0.0
    _, count, total = series[0]["values"][0]
    return int(count), float(total)


def expected_sum(n: int) -> float:
    return sum(0.01 * i for i in range(n))


def test_round_trip_through_influxdb_client_and_influxql(influx: InfluxServer, tmp_path: Path) -> None:
    db = new_db(influx)
    with InfluxStore(settings(influx, db, tmp_path)) as store:
        assert isinstance(store, Store)
        store.write_session(SessionRecord("s1", "ann", "seated_rotation", "left", T0, T0 + 30, {"reps": 2}))
        store.write_frames(frames(500))
        store.write_reps(
            [
                RepRecord(
                    "ann",
                    "s1",
                    "left",
                    "seated_rotation",
                    0,
                    T0 + 1,
                    T0 + 5,
                    31.5,
                    42.0,
                    73.5,
                    (),
                    88.0,
                    {"range": 90.0},
                ),
                RepRecord(
                    "ann",
                    "s1",
                    "left",
                    "seated_rotation",
                    1,
                    T0 + 6,
                    T0 + 9.5,
                    33.0,
                    40.0,
                    73.0,
                    ("pelvis_rotation",),
                    70.0,
                ),
            ]
        )
        store.write_status([SensorStatus("imu-thigh", 81.0, 0.02, 99.0, True, t_s=T0 + 2, athlete="ann")])
        assert store.flush(10)
        health = store.health()
        assert health.state is StorageState.OK and health.spool_points == 0
        assert health.written_points == 500 * 2 + 2 + 1 + 1

        assert count_and_sum(influx, db) == (500, pytest.approx(expected_sum(500)))
        (rep_series,) = influx.query(
            "SELECT peak_internal_rotation_deg, arc_deg, compensation_count, score, score_range FROM reps "
            "WHERE athlete = 'ann' GROUP BY side",
            db,
        )
        assert rep_series["tags"] == {"side": "left"}
        assert [row[1:] for row in rep_series["values"]] == [[31.5, 73.5, 0, 88.0, 90.0], [33.0, 73.0, 1, 70.0, None]]
        assert rep_series["values"][0][0] == timestamp_ns(T0 + 1)
        (status,) = influx.query("SELECT battery_pct, loss_fraction, connected FROM sensor_status", db)
        assert status["values"][0][1:] == [81.0, 0.02, True]

        angles = store.angles("s1")
        assert len(angles) == 500
        assert angles[10].hip_rotation_deg == pytest.approx(0.1) and angles[10].pelvis_tilt_deg == 4.0
        assert angles[10].t_s == pytest.approx(T0 + 10.5 / 50.0, abs=1e-6) and angles[10].athlete == "ann"
        assert [r.arc_deg for r in store.reps("s1")] == [73.5, 73.0]


def _stream(store: InfluxStore, n: int, chunk: int, period_s: float, states: list[StorageState]) -> None:
    for start in range(0, n, chunk):
        store.write_frames(frames(min(chunk, n - start), start=start))
        states.append(store.health().state)
        time.sleep(period_s)


def test_outage_in_mid_stream_loses_nothing_and_duplicates_nothing(influx: InfluxServer, tmp_path: Path) -> None:
    db = new_db(influx)
    n = 3000
    with InfluxStore(settings(influx, db, tmp_path)) as store:
        states: list[StorageState] = []
        writer = threading.Thread(target=_stream, args=(store, n, 25, 0.02, states))  # ~2.5 s of stream
        writer.start()
        time.sleep(0.6)
        influx.stop_influxd()
        time.sleep(1.0)
        spooled_during_outage = store.health().spool_points
        influx.start_influxd()
        writer.join()
        assert store.flush(20), store.health()
        health = store.health()
    assert spooled_during_outage > 0
    assert StorageState.DEGRADED in states and health.state is StorageState.OK
    assert health.dropped_records == 0 and health.rejected_points == 0
    assert count_and_sum(influx, db) == (n, pytest.approx(expected_sum(n)))
    (series,) = influx.query("SELECT rotation_deg FROM hip_angles WHERE session = 's1'", db)
    assert [row[0] for row in series["values"]] == [timestamp_ns(f.t_s) for f in frames(n)]


def test_restart_with_points_in_the_spool_drains_after_reopen(influx: InfluxServer, tmp_path: Path) -> None:
    db = new_db(influx)
    influx.stop_influxd()
    store = InfluxStore(settings(influx, db, tmp_path))
    store.write_session(SessionRecord("s1", "ann", "seated_rotation", "left", T0))
    store.write_frames(frames(2000))
    assert not store.flush(1.0)  # cannot complete: the database is down
    assert store.health().state is StorageState.DEGRADED
    store.close()

    reopened = InfluxStore(settings(influx, db, tmp_path))
    try:
        health = reopened.health()
        assert health.state is StorageState.DEGRADED and health.spool_points == 2 * 2000 + 1
        assert [s.id for s in reopened.sessions()] == ["s1"]  # history from the index works while down
        with pytest.raises(StorageUnavailableError, match="unavailable"):
            reopened.angles("s1")  # the time series lives in InfluxDB
        influx.start_influxd()
        assert reopened.flush(20), reopened.health()
        assert reopened.health().state is StorageState.OK
    finally:
        reopened.close()
    assert count_and_sum(influx, db) == (2000, pytest.approx(expected_sum(2000)))
    assert influx.count(db, "pelvis_angles", "tilt_deg") == 2000
    assert influx.count(db, "sessions", "summary_json") == 1


def test_full_spool_is_an_alert_state_never_an_exception(influx: InfluxServer, tmp_path: Path) -> None:
    db = new_db(influx)
    influx.stop_influxd()
    with InfluxStore(settings(influx, db, tmp_path, spool_max_bytes=60_000, batch_size=200)) as store:
        for start in range(0, 4000, 200):  # ~1 MB of line protocol against a 60 kB bound
            store.write_frames(frames(200, start=start))
        assert not store.flush(1.0)
        health = store.health()
        assert health.state is StorageState.DOWN
        assert "is full" in (health.alert or "") and "SENSORHUB_SPOOL_MAX_BYTES" in (health.alert or "")
        assert 0 < health.spool_bytes <= 60_000 and health.dropped_records > 0
        spooled = health.spool_points
        assert spooled + health.dropped_records == 2 * 4000

        influx.start_influxd()
        assert store.flush(20)
        store.write_frames(frames(10, start=5000))
        assert store.flush(10)
        assert store.health().state is StorageState.OK
    count, _ = count_and_sum(influx, db)
    assert count == spooled // 2 + 10  # what was spooled arrived; what was dropped did not


def test_malformed_point_is_isolated_and_the_rest_delivered(influx: InfluxServer, tmp_path: Path) -> None:
    db = new_db(influx)
    # A string-typed score_tempo field makes a float score_tempo a field-type conflict (HTTP 400).
    request = urllib.request.Request(
        f"{influx.direct_url}/write?db={db}&precision=s",
        data=f'reps,athlete=x score_tempo="n/a" {int(T0)}'.encode(),
        method="POST",
    )
    urllib.request.urlopen(request, timeout=5).close()
    with InfluxStore(settings(influx, db, tmp_path)) as store:
        reps = [
            RepRecord(
                "ann",
                "s1",
                "left",
                "d",
                i,
                T0 + 10 * i,
                T0 + 10 * i + 4,
                30.0,
                40.0,
                70.0,
                (),
                80.0,
                {"tempo": 50.0} if i == 3 else {},
            )
            for i in range(8)
        ]
        store.write_reps(reps)
        store.write_frames(frames(100))
        assert store.flush(10)
        health = store.health()
    assert health.rejected_points == 1 and health.spool_points == 0
    assert "rejected a point" in (health.last_error or "")
    series = influx.query("SELECT count(arc_deg) FROM reps WHERE athlete = 'ann'", db)
    assert series[0]["values"][0][1] == 7
    assert count_and_sum(influx, db)[0] == 100


def test_delete_athlete_removes_influx_series_index_and_spool(influx: InfluxServer, tmp_path: Path) -> None:
    db = new_db(influx)
    with InfluxStore(settings(influx, db, tmp_path)) as store:
        store.write_session(SessionRecord("s1", "ann", "d", "left", T0))
        store.write_session(SessionRecord("s2", "bob", "d", "left", T0))
        store.write_frames(frames(100) + frames(50, athlete="bob", session="s2"))
        assert store.flush(10)
        store.delete_athlete("ann")
        assert [s.athlete for s in store.sessions()] == ["bob"]
        assert store.angles("s1") == [] and len(store.angles("s2")) == 50
    assert influx.query("SELECT count(rotation_deg) FROM hip_angles WHERE athlete = 'ann'", db) == []
    assert count_and_sum(influx, db, "s2")[0] == 50


def test_unreachable_server_spools_without_raising(tmp_path: Path) -> None:
    st = StorageSettings(
        influx_url=f"http://127.0.0.1:{free_port()}",
        influx_bucket="b",
        data_dir=tmp_path,
        flush_interval_s=0.05,
        write_timeout_s=1.0,
        http_retries=0,
    )
    with InfluxStore(st) as store:
        store.write_frames(frames(100))
        assert not store.flush(0.5)
        health = store.health()
    assert health.state is StorageState.DEGRADED and not health.database_reachable
    assert health.spool_points == 200 and "unreachable" in (health.last_error or "")


class _FlakyWriteHandler(BaseHTTPRequestHandler):
    """Answers writes with 429 (Retry-After 0), 503, a response slower than the client's timeout, then 204."""

    script = ("429", "503", "slow", "204")
    seen: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        step = self.script[min(len(self.seen), len(self.script) - 1)]
        self.seen.append((self.path, body))
        if step == "slow":
            time.sleep(0.8)
            step = "204"
        self.send_response(int(step))
        if step == "429":
            self.send_header("Retry-After", "0")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_429_5xx_and_timeouts_are_retried_within_one_write(tmp_path: Path) -> None:
    _FlakyWriteHandler.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FlakyWriteHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        st = StorageSettings(
            influx_url=f"http://127.0.0.1:{server.server_port}", influx_bucket="b", data_dir=tmp_path,
            flush_interval_s=0.05, write_timeout_s=0.3, http_retries=3,
        )  # fmt: skip
        with InfluxStore(st) as store:
            store.write_frames(frames(50))
            assert store.flush(10)
            health = store.health()
    finally:
        server.shutdown()
    assert health.state is StorageState.OK and health.written_points == 100 and health.spool_points == 0
    assert len(_FlakyWriteHandler.seen) == 4
    path, body = _FlakyWriteHandler.seen[-1]
    assert path.startswith("/api/v2/write?") and "bucket=b" in path and "precision=ns" in path
    assert len(body.decode().splitlines()) == 100


def test_close_spools_what_is_queued_and_the_next_store_sends_it(influx: InfluxServer, tmp_path: Path) -> None:
    db = new_db(influx)
    store = InfluxStore(settings(influx, db, tmp_path, flush_interval_s=30.0))  # records stay queued until close
    store.write_frames(frames(100))
    store.close()
    assert Spool(tmp_path / SPOOL_FILENAME, max_bytes=10**9).points == 200  # spooled, not sent, on close
    assert count_and_sum(influx, db)[0] == 0
    with InfluxStore(settings(influx, db, tmp_path)) as reopened:
        assert reopened.flush(10)
    assert count_and_sum(influx, db) == (100, pytest.approx(expected_sum(100)))
