"""The InfluxDB store: time series in InfluxDB (via influxdb-client), a local SQLite index, a spool.

Design (see ``docs/storage.md``):

* **What goes where.** Every record is written to InfluxDB (Grafana reads it there). Sessions and
  reps are *also* kept in a local SQLite index (:class:`~sensorhub.storage.sqlite_db.SqliteDatabase`
  in the data directory), which answers the history queries (sessions, reps table, weekly trends)
  with the same code as the embedded store, and keeps working while InfluxDB is down. Angle time
  series of a session are read back from InfluxDB with InfluxQL through ``/query``, which 1.x, 2.x
  (v1 compatibility API) and 3.x all serve.
* **Writes** are line protocol through influxdb-client's synchronous write API (``/api/v2/write``:
  native on 2.x/3.x and on 1.8+), called from the writer thread in batches of ``batch_size`` points.
  Each request is retried a few times right away on 429/5xx/timeouts/connection errors (urllib3
  ``Retry`` with exponential backoff, honouring ``Retry-After``).
* **Durability.** If a batch still fails, it goes to the on-disk :class:`~sensorhub.storage.spool.Spool`,
  and so does every later batch while the spool is not empty (so points are delivered in order). The
  writer thread drains the spool oldest first with exponential backoff between failed attempts.
  A spooled batch is deleted only once InfluxDB confirmed it; re-sending overwrites identical points.
* **Rejected points** (HTTP 400/413/422) are isolated by bisecting the batch; the bad points are
  discarded and counted, the rest delivered, so one malformed point cannot block the spool.

influxdb-client's own batching ``WriteApi`` is not used: its buffer lives in memory only, and its
``WritesRetry`` measures ``max_retry_time`` from the moment the client was created, not per request.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import random
import threading
import time
from collections.abc import Iterable
from typing import Any, Self, cast
from urllib.parse import urlencode

import urllib3
from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException
from urllib3.util.retry import Retry

from sensorhub.storage.base import (
    ErasureIncompleteError,
    StorageError,
    StorageHealth,
    StorageState,
    StorageUnavailableError,
    WeeklyTrend,
)
from sensorhub.storage.model import (
    AngleFrame,
    ImuBlock,
    RepRecord,
    SensorStatus,
    SessionRecord,
)
from sensorhub.storage.schema import (
    HIP_ANGLES,
    PELVIS_ANGLES,
    WRITE_PRECISION,
    frame_points,
    imu_points,
    rep_point,
    session_point,
    status_point,
    timestamp_ns,
)
from sensorhub.storage.settings import StorageSettings
from sensorhub.storage.spool import SPOOL_FILENAME, Spool, SpoolError
from sensorhub.storage.sqlite_db import SqliteDatabase
from sensorhub.storage.writer import AsyncWriter, RecordBatch

logger = logging.getLogger(__name__)

INDEX_FILENAME = "influx_index.sqlite3"
RETRYABLE_STATUS = (429, 500, 502, 503, 504)
REJECTED_STATUS = (400, 413, 422)
DROP_ALERT_HOLD_S = 30.0
#: DROP SERIES + verification rounds when erasing an athlete over InfluxQL, and the pause between them.
ERASE_ROUNDS = 3
ERASE_ROUND_DELAY_S = 0.2
#: Where the 1.x in-memory index defect behind a stale tag value is tracked (see docs/privacy.md).
INMEM_TAG_INDEX_ISSUE = "https://github.com/influxdata/influxdb/issues/10285"


def influxql_string(value: str) -> str:
    """An InfluxQL single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def without_athletes(batch: RecordBatch, athletes: frozenset[str]) -> tuple[RecordBatch, int]:
    """``batch`` without the records of ``athletes``, and how many records were left out."""
    if not athletes:
        return batch, 0
    kept = RecordBatch(
        frames=[r for r in batch.frames if r.athlete not in athletes],
        reps=[r for r in batch.reps if r.athlete not in athletes],
        sessions=[r for r in batch.sessions if r.athlete not in athletes],
        statuses=[r for r in batch.statuses if r.athlete not in athletes],
        imu=[r for r in batch.imu if r.athlete not in athletes],
    )
    return kept, len(batch) - len(kept)


def encode_batch(batch: RecordBatch, store_raw_imu: bool, frames: FrameEncoder | None = None) -> list[str]:
    """Line protocol of every point of a batch (sessions and reps first: they are few and matter most).

    Angle frames, almost all of the points, go through ``frames`` (a :class:`FrameEncoder`; a new
    one when None): the same lines as influxdb-client's ``Point``, at a fraction of its cost.
    """
    points = [session_point(s) for s in batch.sessions]
    points += [rep_point(r) for r in batch.reps]
    lines = [p.to_line_protocol() for p in points]
    lines += (frames or FrameEncoder()).lines(batch.frames)
    points = [status_point(s, s.t_s if s.t_s is not None else time.time()) for s in batch.statuses]
    if store_raw_imu:
        points += [p for block in batch.imu for p in imu_points(block)]
    lines += [p.to_line_protocol() for p in points]
    return lines


def _float_text(value: float) -> str:
    """A float field value as influxdb-client writes it (``str``, a trailing ``.0`` trimmed)."""
    text = str(value)
    return text.removesuffix(".0")


class FrameEncoder:
    """Line protocol of angle frames, identical to ``frame_points(frame)`` through ``Point``.

    influxdb-client's ``Point.to_line_protocol`` sorts and escapes the tags and checks every field's
    type for every point: ~1 000 frame points a second at 10 streams cost the storage writer thread
    ~20 ms of interpreter time per 1-s batch, during which the live hub's event loop waited for the
    GIL (docs/reliability.md, "Session 3"). The tag part of a series (athlete, session, side, drill)
    is built once through ``Point`` itself and cached; fields (sorted by name, NaN left out, a point
    without fields not written) and the timestamp are formatted here as ``Point`` does.
    """

    #: (measurement, (field name, AngleFrame attribute) sorted by field name) as in ``frame_points``.
    _LAYOUT = (
        (HIP_ANGLES, (("adduction_deg", "hip_adduction_deg"), ("flexion_deg", "hip_flexion_deg"),
                      ("rotation_deg", "hip_rotation_deg"))),
        (PELVIS_ANGLES, (("obliquity_deg", "pelvis_obliquity_deg"), ("rotation_deg", "pelvis_rotation_deg"),
                         ("tilt_deg", "pelvis_tilt_deg"))),
    )

    def __init__(self, max_series: int = 256) -> None:
        self._prefixes: dict[tuple[str, str, str, str], tuple[str, str]] = {}
        self._max_series = max_series

    def _prefix(self, frame: AngleFrame) -> tuple[str, str]:
        key = (frame.athlete, frame.session, frame.side, frame.drill)
        prefixes = self._prefixes.get(key)
        if prefixes is None:
            # "<measurement>,<tags> " exactly as Point writes it: one point with a known field and
            # time, cut before them.
            probe = AngleFrame(0.0, *key, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
            made = []
            for point in frame_points(probe):
                line = point.to_line_protocol()
                tail = line[line.rindex(" ", 0, line.rindex(" ")):]  # " <fields> <time>"
                made.append(line[: len(line) - len(tail)] + " ")
            if len(self._prefixes) >= self._max_series:
                self._prefixes.clear()
            prefixes = self._prefixes[key] = (made[0], made[1])
        return prefixes

    def lines(self, frames: Iterable[AngleFrame]) -> list[str]:
        out: list[str] = []
        isfinite = math.isfinite
        for frame in frames:
            prefixes = self._prefix(frame)
            stamp = f" {timestamp_ns(frame.t_s)}"
            for prefix, (_, fields) in zip(prefixes, self._LAYOUT, strict=True):
                parts = [f"{name}={_float_text(float(v))}" for name, attr in fields
                         if (v := getattr(frame, attr)) is not None and isfinite(v)]
                if parts:
                    out.append(prefix + ",".join(parts) + stamp)
        return out


class _Unreachable(Exception):
    """A write failed in a way worth retrying later (connection, timeout, 429, 5xx, auth, no bucket)."""


class InfluxQLClient:
    """Minimal InfluxQL client for ``/query`` (1.x, 2.x v1-compat, 3.x) with token authentication."""

    def __init__(self, url: str, token: str, bucket: str, timeout_s: float) -> None:
        self.url = url.rstrip("/")
        database, _, retention = bucket.partition("/")
        self.params = {"db": database, **({"rp": retention} if retention else {})}
        self.headers = {"Accept": "application/json"}
        if token:
            self.headers["Authorization"] = f"Token {token}"
        self._http = urllib3.PoolManager(timeout=urllib3.Timeout(total=timeout_s), retries=Retry(total=1, redirect=0))

    def query(self, q: str, *, write: bool = False) -> list[list[dict[str, Any]]]:
        """Run ``q`` (statements separated by ``;``); one list of series per statement.

        ``write`` sends it as POST (required for DROP/DELETE on 1.x).
        """
        params = {**self.params, "q": q, "epoch": "ns"}
        target = f"{self.url}/query?{urlencode(params)}"
        try:
            response = self._http.request("POST" if write else "GET", target, headers=self.headers)
        except urllib3.exceptions.HTTPError as exc:
            raise StorageUnavailableError(f"InfluxDB at {self.url} unreachable for query {q!r}: {exc}") from exc
        if response.status in RETRYABLE_STATUS:
            raise StorageUnavailableError(
                f"InfluxDB at {self.url} unavailable ({response.status}) for query {q!r}; try again later"
            )
        if response.status != 200:
            raise StorageError(
                f"InfluxDB at {self.url} answered {response.status} to query {q!r}: {response.data[:300]!r}"
            )
        payload = json.loads(response.data)
        results = []
        for result in payload.get("results", []):
            if "error" in result:
                raise StorageError(f"InfluxDB at {self.url}: query {q!r} failed: {result['error']}")
            results.append(result.get("series", []))
        return results

    def close(self) -> None:
        self._http.clear()


class InfluxSink:
    """Writes batches to InfluxDB, spooling what cannot be delivered; runs on the writer thread."""

    def __init__(self, settings: StorageSettings, index: SqliteDatabase, spool: Spool) -> None:
        self.settings = settings
        self.index = index
        self.spool = spool
        self._frame_encoder = FrameEncoder()
        self.url = str(settings.influx_url)
        self.bucket = settings.influx_bucket
        self.org = settings.influx_org
        retries = Retry(
            total=settings.http_retries,
            backoff_factor=0.1,
            status_forcelist=RETRYABLE_STATUS,
            allowed_methods=None,  # POST /write is idempotent here: point identity makes a re-send an overwrite
            raise_on_status=False,
            respect_retry_after_header=True,
            backoff_max=2.0,
        )
        self.client = InfluxDBClient(
            url=self.url,
            token=settings.influx_token.get_secret_value(),
            org=self.org,
            timeout=int(settings.write_timeout_s * 1000),
            retries=retries,
        )
        self.write_api = self.client.write_api(write_options=SYNCHRONOUS)
        self._lock = threading.Lock()
        self.reachable = True
        self.written = 0
        self.dropped = 0
        self.rejected = 0
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.spool_failure: str | None = None
        self.index_failure: str | None = None
        self._delay_s = 0.0
        self._next_attempt = 0.0
        self.closing = False
        """Set by the store on close: the last records go to the spool, not over the network."""
        self.erasing: frozenset[str] = frozenset()
        """Athletes being deleted: their records are discarded, so none lands after the DROP (replaced, never mutated)."""
        if len(spool):
            self.reachable = False  # unknown until the first drain attempt; report degraded meanwhile

    # ---------------------------------------------------------------- errors and backoff
    def _error(self, message: str) -> None:
        with self._lock:
            self.last_error = message
            self.last_error_at = time.time()

    def _failed(self, message: str) -> None:
        first = self._delay_s == 0.0  # warn once per outage; later attempts log at debug level
        self.reachable = False
        self._error(message)
        self._delay_s = min(
            self.settings.retry_max_delay_s, max(self.settings.retry_initial_delay_s, 2 * self._delay_s)
        )
        self._next_attempt = time.monotonic() + self._delay_s * random.uniform(0.8, 1.2)
        logger.log(
            logging.WARNING if first else logging.DEBUG, "storage: %s; next attempt in %.1f s", message, self._delay_s
        )

    def _succeeded(self) -> None:
        if not self.reachable:
            logger.info("storage: InfluxDB at %s accepts writes again", self.url)
        self.reachable = True
        self._delay_s = 0.0
        self._next_attempt = 0.0

    # ---------------------------------------------------------------- delivery
    def _post(self, lines: list[str]) -> None:
        try:
            self.write_api.write(
                bucket=self.bucket,
                org=self.org,
                record="\n".join(lines),
                write_precision=cast(WritePrecision, WRITE_PRECISION),  # the library types its constants as str
            )
        except (ApiException, InfluxDBError) as exc:
            status = getattr(exc, "status", None)
            if status is None and getattr(exc, "response", None) is not None:
                status = exc.response.status
            if status in REJECTED_STATUS:
                raise
            body = " ".join(str(getattr(exc, "body", None) or getattr(exc, "message", "") or "").split())
            raise _Unreachable(
                f"InfluxDB at {self.url} answered {status} to a write of {len(lines)} points: {body[:200]}"
            ) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _Unreachable(f"InfluxDB at {self.url} unreachable: {exc}") from exc

    def _deliver(self, lines: list[str]) -> None:
        """Write ``lines``; discard points InfluxDB rejects as malformed. Raises _Unreachable."""
        try:
            self._post(lines)
            self.written += len(lines)
        except (ApiException, InfluxDBError) as exc:
            if len(lines) == 1:
                self.rejected += 1
                self._error(f"InfluxDB at {self.url} rejected a point ({exc}): {lines[0][:200]}")
                logger.error("storage: %s", self.last_error)
                return
            mid = len(lines) // 2
            self._deliver(lines[:mid])
            self._deliver(lines[mid:])

    def _spool(self, lines: list[str]) -> None:
        try:
            self.spool.append(lines)
        except SpoolError as exc:
            self.dropped += len(lines)
            first = self.spool_failure is None
            self.spool_failure = str(exc)
            self._error(str(exc))
            if first:
                logger.error("storage: %s; points are being dropped", exc)
            return
        if self.spool_failure is not None:
            logger.info("storage: the spool %s accepts points again", self.spool.path)
        self.spool_failure = None

    def handle(self, batch: RecordBatch) -> None:
        batch, n_erased = without_athletes(batch, self.erasing)
        if n_erased:
            logger.info("storage: discarded %d records of an athlete being deleted", n_erased)
        if batch.sessions or batch.reps:
            try:
                self.index.insert(sessions=batch.sessions, reps=batch.reps)
                self.index_failure = None
            except Exception as exc:  # noqa: BLE001 - sqlite3.Error mostly; the time series must still go out
                self.index_failure = f"cannot update the local index {self.index.path}: {exc}"
                self._error(self.index_failure)
                logger.error("storage: %s", self.index_failure)
        lines = encode_batch(batch, self.settings.store_raw_imu, self._frame_encoder)
        size = self.settings.batch_size
        chunks = [lines[i : i + size] for i in range(0, len(lines), size)]
        for i, chunk in enumerate(chunks):
            if not self.closing and len(self.spool) == 0 and time.monotonic() >= self._next_attempt:
                try:
                    self._deliver(chunk)
                    self._succeeded()
                    continue
                except _Unreachable as exc:
                    self._failed(str(exc))
            self._spool(chunk)

    def background(self) -> bool:
        if self.closing or len(self.spool) == 0 or time.monotonic() < self._next_attempt:
            return False
        try:
            last_id, lines = self.spool.peek(self.settings.drain_batch_points)
            if last_id < 0:
                return False
            self._deliver(lines)
            self.spool.remove_through(last_id)
        except _Unreachable as exc:
            self._failed(str(exc))
            return False
        except SpoolError as exc:
            self._error(str(exc))
            logger.error("storage: %s", exc)
            return False
        self._succeeded()
        if len(self.spool) == 0:
            self.spool_failure = None
            logger.info("storage: spool drained")
        return len(self.spool) > 0

    def pending_points(self) -> int:
        return self.spool.points

    def close(self) -> None:
        self.client.close()
        self.spool.close()
        self.index.close()


class InfluxStore:
    """:class:`~sensorhub.storage.base.Store` on InfluxDB, with the local index and spool in ``data_dir``."""

    backend = "influxdb"

    def __init__(self, settings: StorageSettings) -> None:
        if not settings.influx_enabled:
            raise StorageError("InfluxStore needs SENSORHUB_INFLUX_URL (settings.influx_url)")
        self.settings = settings
        data_dir = settings.data_dir
        self.index = SqliteDatabase(data_dir / INDEX_FILENAME)
        self.spool = Spool(data_dir / SPOOL_FILENAME, settings.spool_max_bytes)
        self._sink = InfluxSink(settings, self.index, self.spool)
        self._erasing_lock = threading.Lock()
        self.influxql = InfluxQLClient(
            str(settings.influx_url),
            settings.influx_token.get_secret_value(),
            settings.influx_bucket,
            settings.write_timeout_s,
        )
        self._writer = AsyncWriter(
            self._sink,
            angle_rate_hz=settings.angle_rate_hz,
            batch_size=settings.batch_size,
            flush_interval_s=settings.flush_interval_s,
            max_buffered_records=settings.max_buffered_records,
            name="sensorhub-influx-writer",
        )

    # -- writes
    def write_frames(self, frames: Iterable[AngleFrame]) -> None:
        self._writer.submit(frames)

    def write_reps(self, reps: Iterable[RepRecord]) -> None:
        self._writer.submit(reps)

    def write_session(self, session: SessionRecord) -> None:
        self._writer.submit((session,))

    def write_status(self, statuses: Iterable[SensorStatus]) -> None:
        self._writer.submit(statuses)

    def write_imu(self, block: ImuBlock) -> None:
        if self.settings.store_raw_imu:
            self._writer.submit((block,))

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything accepted so far is in InfluxDB (False on timeout, e.g. while it is down)."""
        return self._writer.flush(timeout_s)

    def close(self, timeout_s: float | None = None) -> None:
        """Stop the writer; what InfluxDB did not take stays in the spool for the next start.

        Records still queued are spooled (a local disk write), not sent, so closing never waits for a
        slow or dead database beyond a request already in flight; ``timeout_s`` (default: one write
        request with its retries) bounds that wait.
        """
        if timeout_s is None:
            timeout_s = self.settings.write_timeout_s * (self.settings.http_retries + 1) + 5.0
        self._sink.closing = True
        self._writer.close(timeout_s)
        self.influxql.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def health(self) -> StorageHealth:
        sink, writer = self._sink, self._writer
        recent_drop = writer.last_drop_at is not None and time.time() - writer.last_drop_at < DROP_ALERT_HOLD_S
        alert = None
        if sink.spool_failure is not None:
            alert = (
                f"{sink.spool_failure}. Points are being dropped: free disk space, raise "
                "SENSORHUB_SPOOL_MAX_BYTES, or bring InfluxDB back so the spool drains."
            )
        elif sink.index_failure is not None:
            alert = f"{sink.index_failure}: sessions and reps are missing from history (disk full?)"
        elif recent_drop:
            alert = "the in-memory queue overflowed: records are being dropped (storage too slow)"
        if alert:
            state = StorageState.DOWN
        elif len(self.spool) or not sink.reachable:
            state = StorageState.DEGRADED
        else:
            state = StorageState.OK
        return StorageHealth(
            state=state,
            backend=self.backend,
            target=f"{self.settings.influx_url} bucket {self.settings.influx_bucket}",
            database_reachable=sink.reachable,
            spool_points=self.spool.points,
            spool_bytes=self.spool.bytes,
            spool_max_bytes=self.spool.max_bytes,
            buffered_records=writer.buffered_records,
            written_points=sink.written,
            dropped_records=sink.dropped + writer.dropped_records,
            rejected_points=sink.rejected,
            last_error=sink.last_error,
            last_error_at=sink.last_error_at,
            alert=alert,
        )

    # -- history (index for metadata, InfluxQL for the time series)
    def sessions(
        self,
        athlete: str | None = None,
        drill: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[SessionRecord]:
        return self.index.sessions(athlete, drill, since, until)

    def session(self, session_id: str) -> SessionRecord | None:
        return self.index.session(session_id)

    def reps(self, session_id: str) -> list[RepRecord]:
        return self.index.reps(session_id)

    def trend(
        self, athlete: str, drill: str, weeks: int = 12, until: float | None = None, tz: dt.tzinfo = dt.UTC
    ) -> list[WeeklyTrend]:
        return self.index.trend(athlete, drill, weeks, until, tz)

    def athletes(self) -> list[str]:
        return self.index.athletes()

    def angles(self, session_id: str) -> list[AngleFrame]:
        """Angle frames of a session read from InfluxDB (points still in the spool are not included)."""
        where = f'WHERE "session" = {influxql_string(session_id)} GROUP BY "athlete", "side", "drill"'
        hip_fields = ", ".join(f'"{f}"' for f in HIP_ANGLES.fields)
        pelvis_fields = ", ".join(f'"{f}"' for f in PELVIS_ANGLES.fields)
        hip, pelvis = self.influxql.query(
            f'SELECT {hip_fields} FROM "{HIP_ANGLES.name}" {where}; '
            f'SELECT {pelvis_fields} FROM "{PELVIS_ANGLES.name}" {where}'
        )
        rows: dict[tuple[int, str], dict[str, Any]] = {}
        for prefix, series_list in (("hip_", hip), ("pelvis_", pelvis)):
            for series in series_list:
                tags = series.get("tags", {})
                columns = series["columns"]
                for values in series["values"]:
                    record = dict(zip(columns, values, strict=True))
                    key = (int(record["time"]), tags.get("side", ""))
                    row = rows.setdefault(key, {"tags": tags})
                    for name in columns[1:]:
                        if record[name] is not None:
                            row[prefix + name] = float(record[name])
        frames = []
        nan = float("nan")
        for (t_ns, side), row in sorted(rows.items()):
            tags = row["tags"]
            frames.append(
                AngleFrame(
                    t_s=t_ns / 1e9,
                    athlete=tags.get("athlete", ""),
                    session=session_id,
                    side=side,
                    drill=tags.get("drill", ""),
                    hip_flexion_deg=row.get("hip_flexion_deg", nan),
                    hip_adduction_deg=row.get("hip_adduction_deg", nan),
                    hip_rotation_deg=row.get("hip_rotation_deg", nan),
                    pelvis_tilt_deg=row.get("pelvis_tilt_deg", nan),
                    pelvis_obliquity_deg=row.get("pelvis_obliquity_deg", nan),
                    pelvis_rotation_deg=row.get("pelvis_rotation_deg", nan),
                )
            )
        return frames

    def delete_athlete(self, athlete: str) -> None:
        """Delete ``athlete`` from the index, the spool and InfluxDB, and check that InfluxDB shows none of it.

        Records of the athlete accepted before the call are written or spooled first and then removed
        with the rest; records arriving while the deletion runs are discarded, so no point of the
        athlete can land after the DROP. The local part always happens. If InfluxDB cannot be reached,
        :class:`StorageUnavailableError` is raised; if InfluxDB still shows the athlete afterwards,
        :class:`ErasureIncompleteError` says what and what to do. Either way the call should be
        repeated (it is idempotent). InfluxDB 3 Core cannot delete by tag; there :class:`StorageError`
        says so.
        """

        def local() -> tuple[int, int]:
            return self.spool.remove_athlete(athlete), self.index.delete_athlete(athlete)

        with self._erasing_lock:  # two deletions at once must not lose each other's athlete
            self._sink.erasing = self._sink.erasing | {athlete}
        try:
            n_spool, n_index = self._writer.call(local)
            logger.info(
                "storage: deleted athlete %r locally (%d index rows, %d spooled points)", athlete, n_index, n_spool
            )
            self._delete_in_influx(athlete)
        finally:
            with self._erasing_lock:
                self._sink.erasing = self._sink.erasing - {athlete}

    def _delete_in_influx(self, athlete: str) -> None:
        predicate = 'athlete="' + athlete.replace("\\", "\\\\").replace('"', '\\"') + '"'
        try:
            self._sink.client.delete_api().delete(
                start="1970-01-01T00:00:00Z",
                stop="2200-01-01T00:00:00Z",
                predicate=predicate,
                bucket=self.settings.influx_bucket,
                org=self.settings.influx_org,
            )
            return
        except ApiException as exc:
            if exc.status not in (400, 404, 405, 501):
                raise StorageError(
                    f"InfluxDB at {self.settings.influx_url} refused to delete {athlete!r}: {exc}"
                ) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageUnavailableError(
                f"InfluxDB at {self.settings.influx_url} unreachable; athlete {athlete!r} was deleted locally, "
                f"repeat the deletion when it is back: {exc}"
            ) from exc
        # No v2 delete API (1.x behind a v2 write proxy): InfluxQL, verified.
        self._drop_series_verified(athlete)

    def _athlete_series(self, athlete: str) -> list[str]:
        """Series keys InfluxDB still holds for ``athlete`` (``SHOW SERIES``: only series with data)."""
        (series,) = self.influxql.query(f'SHOW SERIES WHERE "athlete" = {influxql_string(athlete)}')
        return [str(row[0]) for s in series for row in s.get("values", [])]

    def _measurements_listing(self, athlete: str) -> list[str]:
        """Measurements whose tag index still lists ``athlete`` as a value of the ``athlete`` tag.

        Deliberately without a WHERE clause: with one, InfluxDB 1.x filters through the series and
        hides exactly the stale entries this looks for (what Grafana's variable query shows).
        """
        (series,) = self.influxql.query('SHOW TAG VALUES WITH KEY = "athlete"')
        return sorted({str(s["name"]) for s in series for row in s.get("values", []) if row[1] == athlete})

    def _drop_series_verified(self, athlete: str) -> None:
        """``DROP SERIES`` of ``athlete``, then check ``SHOW SERIES`` and ``SHOW TAG VALUES``; retry, else raise.

        InfluxDB 1.x with the in-memory index (the default) drops every series and point but can
        keep the id in the measurement's tag index when the athlete's series of one measurement lie
        in different shards (history spanning more than one shard group, a week by default): measured
        on 1.6, two sessions a week apart leave the id listed every time; nothing short of restarting
        influxd (which rebuilds the index from the data) removes it (docs/privacy.md). That case
        raises after the first round; only series still present are dropped again, 0.2 s apart.
        """
        literal = influxql_string(athlete)
        series: list[str] = []
        listed: list[str] = []
        for attempt in range(1, ERASE_ROUNDS + 1):
            if attempt == 1 or series:
                self.influxql.query(f'DROP SERIES WHERE "athlete" = {literal}', write=True)
            # The tag listing first, the series second: a point of the athlete written in between
            # would show as a series. So "listed, but no series" is the stale entry of the 1.x
            # in-memory index itself, which neither waiting nor dropping again clears
            # (docs/privacy.md): raise at once instead of waiting out the rounds.
            listed = self._measurements_listing(athlete)
            series = self._athlete_series(athlete)
            if not series and not listed:
                logger.info("storage: athlete %r dropped from InfluxDB and verified (%d round(s))", athlete, attempt)
                return
            if not series:
                break
            if attempt < ERASE_ROUNDS:
                time.sleep(ERASE_ROUND_DELAY_S)
        url = self.settings.influx_url
        if series:
            raise ErasureIncompleteError(
                f"InfluxDB at {url} still holds {len(series)} series of athlete {athlete!r} after {ERASE_ROUNDS} "
                f"DROP SERIES (e.g. {series[0]}); the local index and spool are cleared; repeat the deletion"
            )
        logger.warning(
            "storage: athlete %r: no series or point left in InfluxDB, but its tag index still lists the id in %s",
            athlete,
            ", ".join(listed),
        )
        raise ErasureIncompleteError(
            f"InfluxDB at {url} dropped every series and point of athlete {athlete!r}, but its tag index still "
            f"lists the id (SHOW TAG VALUES, measurements {', '.join(listed)}): a defect of the InfluxDB 1.x "
            f"in-memory index ({INMEM_TAG_INDEX_ISSUE}). Restart influxd, which rebuilds the index from the "
            f"data, then repeat the deletion to verify it and finish the erasure."
        )
