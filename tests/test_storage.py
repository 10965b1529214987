"""Storage without a database server: records, schema encoding, writer, spool, SQLite store, history."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensorhub.storage import (
    AngleFrame,
    RepRecord,
    SensorStatus,
    SessionRecord,
    StorageSettings,
    StorageState,
    Store,
    open_store,
    session_angles_csv,
    session_reps_csv,
    weekly_trends,
)
from sensorhub.storage.history import symmetry_pct, trend_window, week_start
from sensorhub.storage.schema import (
    MEASUREMENTS,
    athlete_tag_marker,
    frame_points,
    rep_point,
    timestamp_ns,
)
from sensorhub.storage.spool import Spool, SpoolError, SpoolFullError
from sensorhub.storage.sqlite_store import SqliteStore
from sensorhub.storage.writer import AsyncWriter, FrameDecimator, RecordBatch

# Monday 2026-11-02 00:00 UTC
MONDAY = dt.datetime(2026, 11, 2, tzinfo=dt.UTC).timestamp()
DAY = 86400.0


def frame(
    t_s: float, rotation_deg: float = 10.0, *, athlete: str = "ann", session: str = "s1", side: str = "left"
) -> AngleFrame:
    return AngleFrame(t_s, athlete, session, side, "seated_rotation", 20.0, -3.5, rotation_deg, 4.0, -1.0, 2.5)


def rep(
    index: int,
    t_start_s: float,
    ir: float,
    er: float,
    *,
    side: str = "left",
    session: str = "s1",
    comp: tuple[str, ...] = (),
    drill: str = "seated_rotation",
) -> RepRecord:
    return RepRecord(
        "ann", session, side, drill, index, t_start_s, t_start_s + 4.0, ir, er, ir + er, comp, 80.0, {"range": 75.0}
    )


# ------------------------------------------------------------------------------------ records
def test_rep_from_drills_dict_converts_clock_sign_and_components() -> None:
    # Shaped like sensorhub.drills.summary.rep_record (NaN already mapped to None there).
    rep_dict = {
        "index": 3,
        "t_start": 12.5,
        "t_end": 16.0,
        "peak_internal_rotation": 31.2,
        "peak_external_rotation": -42.0,
        "arc": 73.2,
        "hold_internal_s": 1.0,
        "tempo": {"internal": 1.2},
        "compensation": True,
        "compensation_detail": {"exceeded": ["pelvis_rotation"], "change_deg": {"pelvis_rotation": 9.0}},
        "score": 71.0,
        "score_components": {"range_points": 40.0, "compensation_penalty": -10.0, "hold_quality": None},
    }
    rec = RepRecord.from_rep_dict(rep_dict, athlete="ann", session="s1", side="right", drill="d", t0_unix_s=MONDAY)
    assert rec.index == 2 and rec.t_start_s == MONDAY + 12.5  # drills count reps from 1, storage from 0 and rec.duration_s == pytest.approx(3.5)
    assert rec.peak_internal_rotation_deg == 31.2 and rec.peak_external_rotation_deg == 42.0
    assert rec.compensations == ("pelvis_rotation",) and rec.compensated
    assert rec.score == 71.0 and rec.score_components == {"range_points": 40.0, "compensation_penalty": -10.0}

    one_sided = {**rep_dict, "peak_external_rotation": None, "compensation": False, "score": None}
    rec = RepRecord.from_rep_dict(one_sided, athlete="a", session="s", side="left", drill="d")
    assert math.isnan(rec.peak_external_rotation_deg) and math.isnan(rec.score)
    assert rec.compensations == () and not rec.compensated
    events = {**rep_dict, "compensation": [{"kind": "pelvis_rotation", "t": 13.0}, "trunk_lean"]}
    rec = RepRecord.from_rep_dict(events, athlete="a", session="s", side="left", drill="d")
    assert rec.compensations == ("pelvis_rotation", "trunk_lean")


# ------------------------------------------------------------------------------------ schema
def test_frame_points_carry_tags_units_and_microsecond_timestamps() -> None:
    f = AngleFrame(MONDAY + 0.123456789, "Ann Lee", "s,1", "left", "seated", 20.0, -3.5, 12.25)
    hip, *rest = list(frame_points(f))
    assert rest == []  # pelvis angles are NaN: no pelvis point
    line = hip.to_line_protocol()
    assert line.startswith("hip_angles,athlete=Ann\\ Lee,drill=seated,session=s\\,1,side=left ")
    assert "rotation_deg=12.25" in line and "adduction_deg=-3.5" in line
    assert line.endswith(f" {round((MONDAY + 0.123456789) * 1e6) * 1000}")
    assert timestamp_ns(MONDAY + 0.123456789) % 1000 == 0


def test_rep_point_holds_every_score_and_is_described_by_the_schema() -> None:
    line = rep_point(rep(2, MONDAY, 30.0, 40.0, comp=("pelvis_rotation",))).to_line_protocol()
    fields = dict(item.split("=", 1) for item in line.split(" ")[1].split(","))
    assert fields["index"] == "2i" and fields["compensation_count"] == "1i"
    assert float(fields["arc_deg"]) == 70.0 and float(fields["score_range"]) == 75.0
    assert fields["compensations"] == '"pelvis_rotation"'
    assert all(MEASUREMENTS["reps"].has_field(name) for name in fields)


def test_athlete_marker_matches_escaped_tag() -> None:
    assert athlete_tag_marker("Ann Lee") == ",athlete=Ann\\ Lee"


# ------------------------------------------------------------------------------------ writer
def test_decimator_keeps_first_frame_per_bucket_per_series() -> None:
    dec = FrameDecimator(50.0)
    t = [MONDAY + (i + 0.25) / 100.0 for i in range(100)]  # 100 Hz for 1 s
    kept = [x for x in t if dec.keep(frame(x))]
    assert len(kept) == 50
    assert kept[:2] == [t[0], t[2]]
    # another side is an independent series; an out-of-order (older) frame is not kept
    assert dec.keep(frame(t[0], side="right"))
    assert not dec.keep(frame(t[10]))


class _BlockingSink:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.batches: list[RecordBatch] = []

    def handle(self, batch: RecordBatch) -> None:
        self.release.wait(10)
        self.batches.append(batch)

    def background(self) -> bool:
        return False

    def pending_points(self) -> int:
        return 0

    def close(self) -> None:
        pass


def test_writer_never_blocks_and_drops_beyond_its_bound() -> None:
    sink = _BlockingSink()
    writer = AsyncWriter(sink, angle_rate_hz=1000.0, batch_size=10, flush_interval_s=0.01, max_buffered_records=100)
    try:
        writer.submit([frame(MONDAY + i / 100) for i in range(10)])
        assert not writer.flush(0.2)  # the sink is stuck on the first batch
        for k in range(30):  # 300 more records while the sink is stuck: at most 100 fit
            writer.submit([frame(MONDAY + 1 + (10 * k + i) / 100) for i in range(10)])
        assert writer.buffered_records == 100
        assert writer.dropped_records == 200
        sink.release.set()
        assert writer.flush(5)
        assert sum(len(b.frames) for b in sink.batches) == 110
    finally:
        sink.release.set()
        writer.close()


# ------------------------------------------------------------------------------------ spool
def test_spool_is_fifo_bounded_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    spool = Spool(path, max_bytes=1000)
    spool.append(["m,athlete=a x=1 1", "m,athlete=b x=2 2"])
    spool.append(["m,athlete=a x=3 3"])
    with pytest.raises(SpoolFullError, match="spool .* is full"):
        spool.append(["m x=" + "9" * 1000 + " 4"])
    assert (spool.points, spool.bytes) == (3, len("m,athlete=a x=1 1\nm,athlete=b x=2 2") + len("m,athlete=a x=3 3"))
    spool.close()

    spool = Spool(path, max_bytes=1000)
    assert spool.points == 3
    last_id, lines = spool.peek(max_points=2)  # whole batches only: the first one
    assert lines == ["m,athlete=a x=1 1", "m,athlete=b x=2 2"]
    assert spool.remove_athlete("a") == 2
    spool.remove_through(last_id)
    assert spool.points == 0 and spool.bytes == 0
    spool.close()


def test_spool_reports_disk_full_as_spool_error(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3", max_bytes=10**9)
    pages = spool._conn.execute("PRAGMA page_count").fetchone()[0]
    spool._conn.execute(f"PRAGMA max_page_count = {pages + 1}")  # what SQLite sees on ENOSPC: SQLITE_FULL
    with pytest.raises(SpoolError, match="cannot write 200 points to the spool .*full"):
        spool.append([f"m x={i} {i}" + " " * 100 for i in range(200)])
    assert spool.points == 0


# ------------------------------------------------------------------------------------ SQLite store
@pytest.fixture()
def sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(StorageSettings(data_dir=tmp_path, flush_interval_s=0.05))
    yield store
    store.close()


def test_open_store_chooses_sqlite_without_influx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENSORHUB_INFLUX_URL", raising=False)
    monkeypatch.setenv("SENSORHUB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SENSORHUB_ANGLE_RATE_HZ", "25")
    store = open_store()
    try:
        assert isinstance(store, SqliteStore) and isinstance(store, Store)
        assert store.settings.angle_rate_hz == 25.0
        assert store.path == tmp_path / "data" / "sensorhub.sqlite3" and store.path.exists()
    finally:
        store.close()


def test_sqlite_store_round_trip_is_idempotent_and_downsampled(sqlite_store: SqliteStore) -> None:
    frames = [frame(MONDAY + (i + 0.5) / 100.0, rotation_deg=i * 0.5) for i in range(200)]  # 2 s at 100 Hz
    sqlite_store.write_session(SessionRecord("s1", "ann", "seated_rotation", "left", MONDAY, None, {}))
    sqlite_store.write_frames(frames)
    sqlite_store.write_frames(frames)  # a re-send must not duplicate
    sqlite_store.write_reps(
        [rep(0, MONDAY + 0.1, 30.0, 40.0), rep(1, MONDAY + 5, 32.0, 41.0, comp=("pelvis_rotation",))]
    )
    sqlite_store.write_session(SessionRecord("s1", "ann", "seated_rotation", "left", MONDAY, MONDAY + 60, {"reps": 2}))
    sqlite_store.write_status([SensorStatus("imu-1", 87.0, 0.01, 99.5, True)])
    assert sqlite_store.flush(5)

    angles = sqlite_store.angles("s1")
    assert len(angles) == 100  # 2 s at the default 50 Hz
    assert [a.hip_rotation_deg for a in angles[:3]] == [0.0, 1.0, 2.0]  # every other 100-Hz frame
    assert angles[0].pelvis_rotation_deg == 2.5 and angles[0].t_s == pytest.approx(frames[0].t_s, abs=1e-6)
    (session,) = sqlite_store.sessions(athlete="ann")
    assert session.ended == MONDAY + 60 and session.summary == {"reps": 2}
    reps = sqlite_store.reps("s1")
    assert [(r.index, r.arc_deg, r.compensations) for r in reps] == [(0, 70.0, ()), (1, 73.0, ("pelvis_rotation",))]
    assert sqlite_store.db.count("sensor_status") == 1
    health = sqlite_store.health()
    assert health.state is StorageState.OK and health.written_points >= 100 + 2 + 2 + 1
    assert json.loads(json.dumps(health.as_dict()))["state"] == "ok"

    rows = list(csv.DictReader(io.StringIO(session_angles_csv(sqlite_store, "s1"))))
    assert len(rows) == 100 and float(rows[1]["hip_rotation_deg"]) == 1.0 and rows[0]["side"] == "left"
    rep_rows = list(csv.DictReader(io.StringIO(session_reps_csv(sqlite_store, "s1"))))
    assert (
        rep_rows[1]["compensations"] == "pelvis_rotation" and float(rep_rows[1]["peak_external_rotation_deg"]) == 41.0
    )

    sqlite_store.write_frames([frame(MONDAY + 9, athlete="bob", session="s2")])
    sqlite_store.delete_athlete("ann")
    assert sqlite_store.sessions() == [] and sqlite_store.reps("s1") == [] and sqlite_store.angles("s1") == []
    assert len(sqlite_store.angles("s2")) == 1


def test_sqlite_store_disk_full_is_a_state_not_an_exception(sqlite_store: SqliteStore) -> None:
    pages = sqlite_store.db._conn.execute("PRAGMA page_count").fetchone()[0]
    sqlite_store.db._conn.execute(f"PRAGMA max_page_count = {pages}")
    sqlite_store.write_frames([frame(MONDAY + i / 50.0 + 0.001, rotation_deg=i) for i in range(2000)])
    assert sqlite_store.flush(5)
    health = sqlite_store.health()
    assert health.state is StorageState.DOWN
    assert "disk full" in (health.alert or "") and health.dropped_records == 2000
    assert "full" in (health.last_error or "")
    sqlite_store.db._conn.execute("PRAGMA max_page_count = 1073741823")
    sqlite_store.write_frames([frame(MONDAY + 100)])
    assert sqlite_store.flush(5) and sqlite_store.health().state is StorageState.OK


# ------------------------------------------------------------------------------------ history
def test_weekly_trends_per_side_symmetry_and_compensations() -> None:
    sessions = [
        SessionRecord("w1l", "ann", "seated_rotation", "left", MONDAY + DAY),
        SessionRecord("w1r", "ann", "seated_rotation", "right", MONDAY + 2 * DAY),
        SessionRecord("w2l", "ann", "seated_rotation", "left", MONDAY + 8 * DAY),
    ]
    reps = [
        rep(0, MONDAY + DAY, 30.0, 40.0, session="w1l"),
        rep(1, MONDAY + DAY + 10, 34.0, 44.0, session="w1l", comp=("pelvis_rotation",)),
        rep(0, MONDAY + 2 * DAY, 25.0, 35.0, side="right", session="w1r"),
        rep(0, MONDAY + 8 * DAY, 36.0, 43.0, session="w2l", comp=("trunk_lean",)),
    ]
    week1, week2 = weekly_trends(sessions, reps)
    assert week1.week_start == dt.date(2026, 11, 2) and week2.week_start == dt.date(2026, 11, 9)
    assert (week1.sessions, week1.reps, week1.compensation_count) == (2, 3, 1)
    assert week1.left is not None and week1.right is not None
    assert (week1.left.max_internal_rotation_deg, week1.left.max_external_rotation_deg, week1.left.max_arc_deg) == (
        34,
        44,
        78,
    )
    assert week1.right.max_arc_deg == 60.0
    assert week1.symmetry_pct == pytest.approx(100 * 60 / 78)
    assert week2.right is None and week2.symmetry_pct is None and week2.compensation_count == 1


def test_trend_window_and_week_start_respect_time_zone() -> None:
    sunday_evening_utc = MONDAY - 3600  # Sunday 23:00 UTC is already Monday in Berlin
    assert week_start(sunday_evening_utc) == dt.date(2026, 10, 26)
    berlin = dt.timezone(dt.timedelta(hours=1))
    assert week_start(sunday_evening_utc, berlin) == dt.date(2026, 11, 2)
    since, until = trend_window(2, MONDAY + 3 * DAY, dt.UTC)
    assert (since, until) == (MONDAY - 7 * DAY, MONDAY + 7 * DAY)
    assert symmetry_pct(50.0, math.nan) is None and symmetry_pct(40.0, 50.0) == 80.0


def test_sqlite_store_trend_filters_athlete_drill_and_window(sqlite_store: SqliteStore) -> None:
    sqlite_store.write_session(SessionRecord("s1", "ann", "seated_rotation", "left", MONDAY + DAY))
    sqlite_store.write_reps([rep(0, MONDAY + DAY, 30.0, 40.0), rep(1, MONDAY + DAY + 9, 31.0, 45.0)])
    sqlite_store.write_reps([rep(0, MONDAY + DAY, 50.0, 50.0, session="x", drill="standing")])
    sqlite_store.write_reps([rep(0, MONDAY - 30 * DAY, 60.0, 60.0, session="old")])
    assert sqlite_store.flush(5)
    (week,) = sqlite_store.trend("ann", "seated_rotation", weeks=4, until=MONDAY + 3 * DAY)
    assert week.reps == 2 and week.left is not None and week.left.max_external_rotation_deg == 45.0


names = st.text(alphabet=st.characters(categories=("L", "N", "P", "Zs", "S")), min_size=1, max_size=8)


@settings(max_examples=40, deadline=None)
@given(athletes=st.lists(names, min_size=2, max_size=4, unique=True), victim=st.integers(0, 3))
def test_spool_removes_exactly_one_athletes_points_whatever_the_name(athletes: list[str], victim: int) -> None:
    victim_name = athletes[victim % len(athletes)]
    owned = [
        (name, p.to_line_protocol())
        for k, name in enumerate(athletes)
        for i in range(3)
        for p in frame_points(frame(MONDAY + k * 10 + i, athlete=name, session=f"{name} s"))
    ]
    spool = Spool(Path(":memory:"), max_bytes=10**6)  # in memory: no fsync per example
    spool.append([line for _, line in owned[:7]])
    spool.append([line for _, line in owned[7:]])
    assert spool.remove_athlete(victim_name) == 6  # 3 frames x (hip + pelvis)
    _, kept = spool.peek(10**6)
    spool.close()
    assert kept == [line for name, line in owned if name != victim_name]


def test_settings_from_env_with_flag_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SENSORHUB_INFLUX_URL", "http://influx.local:8086")
    monkeypatch.setenv("SENSORHUB_INFLUX_TOKEN", "secret-token")
    monkeypatch.setenv("SENSORHUB_INFLUX_BUCKET", "from-env")
    s = StorageSettings.from_env(influx_bucket="from-flag", influx_url=None, data_dir=tmp_path)
    assert s.influx_enabled and s.influx_url == "http://influx.local:8086"  # None keeps the environment
    assert s.influx_bucket == "from-flag" and s.data_dir == tmp_path
    assert s.influx_token.get_secret_value() == "secret-token" and "secret-token" not in repr(s)
    with pytest.raises(ValueError, match="angle_rate_hz"):
        StorageSettings.from_env(angle_rate_hz=0)
