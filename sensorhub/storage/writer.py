"""The non-blocking front end shared by both stores: a bounded queue and one writer thread.

Callers (the live hub's ingest) hand records to :meth:`AsyncWriter.submit`, which appends them to an
in-memory queue and returns at once. When the queue holds ``max_buffered_records`` the new records
are dropped and counted, never blocking the caller and never growing memory without bound. One
writer thread collects records for up to ``flush_interval_s`` (or ``batch_size`` records), downsamples
angle frames, and hands a :class:`RecordBatch` to a :class:`Sink` (SQLite tables, or InfluxDB with a
spool). Between batches it lets the sink do background work (draining the spool).

Work that must happen in order with the writes (deleting an athlete) is queued as a call and runs
on the writer thread after every record submitted before it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from sensorhub.storage.model import (
    AngleFrame,
    ImuBlock,
    RepRecord,
    SensorStatus,
    SessionRecord,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

Record = AngleFrame | RepRecord | SessionRecord | SensorStatus | ImuBlock


@dataclass
class RecordBatch:
    """Records collected by the writer thread, grouped by type, in submission order within a type."""

    frames: list[AngleFrame] = field(default_factory=list)
    reps: list[RepRecord] = field(default_factory=list)
    sessions: list[SessionRecord] = field(default_factory=list)
    statuses: list[SensorStatus] = field(default_factory=list)
    imu: list[ImuBlock] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frames) + len(self.reps) + len(self.sessions) + len(self.statuses) + len(self.imu)


class Sink(Protocol):
    """Where the writer thread puts batches. Every method runs on the writer thread and never raises."""

    def handle(self, batch: RecordBatch) -> None: ...

    def background(self) -> bool:
        """Do deferred work (drain the spool); True when more work could be done right away."""
        ...

    def pending_points(self) -> int:
        """Points accepted but not yet in the database (spooled). Safe to call from any thread."""
        ...

    def close(self) -> None: ...


class FrameDecimator:
    """Keeps at most one angle frame per ``1/rate_hz`` time bucket of each athlete/session/side series.

    Buckets are fixed on the Unix time axis (``floor(t_s * rate_hz)``), so which frames are kept does
    not depend on where a stream or a restart began, and the first frame of a bucket wins.
    """

    def __init__(self, rate_hz: float, max_series: int = 1024) -> None:
        self.rate_hz = rate_hz
        self._last_bucket: OrderedDict[tuple[str, str, str], int] = OrderedDict()
        self._max_series = max_series

    def keep(self, frame: AngleFrame) -> bool:
        key = (frame.athlete, frame.session, frame.side)
        bucket = math.floor(frame.t_s * self.rate_hz)
        last = self._last_bucket.get(key)
        if last is not None and bucket <= last:
            return False
        self._last_bucket[key] = bucket
        self._last_bucket.move_to_end(key)
        if len(self._last_bucket) > self._max_series:
            self._last_bucket.popitem(last=False)
        return True


class AsyncWriter:
    """Bounded queue + writer thread in front of a :class:`Sink`."""

    def __init__(
        self,
        sink: Sink,
        *,
        angle_rate_hz: float,
        batch_size: int,
        flush_interval_s: float,
        max_buffered_records: int,
        name: str = "sensorhub-storage",
    ) -> None:
        self._sink = sink
        self._decimator = FrameDecimator(angle_rate_hz)
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._max_buffered = max_buffered_records
        self._cond = threading.Condition()
        self._items: deque[list[Record]] = deque()
        self._calls: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._buffered = 0
        self._first_item_at: float | None = None
        self._submitted_seq = 0
        self._handled_seq = 0
        self._taken_seq = 0
        self._flush_waiters = 0
        self._stopping = False
        self.dropped_records = 0
        self.last_drop_at: float | None = None
        self._last_drop_log_at = 0.0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # ----------------------------------------------------------------------------- caller side
    @property
    def buffered_records(self) -> int:
        return self._buffered

    def submit(self, records: Iterable[Record]) -> None:
        """Enqueue records; drops (and counts) them instead of blocking when the queue is full."""
        items = list(records)
        if not items:
            return
        now = time.time()
        if any(isinstance(r, SensorStatus) and r.t_s is None for r in items):
            items = [replace(r, t_s=now) if isinstance(r, SensorStatus) and r.t_s is None else r for r in items]
        # A raw IMU block counts as its samples, so the bound is on memory, not on calls.
        size = sum(len(r.samples) if isinstance(r, ImuBlock) else 1 for r in items)
        with self._cond:
            if self._stopping or self._buffered + size > self._max_buffered:
                self.dropped_records += size
                if now - self._last_drop_log_at > 10.0:  # do not flood the log
                    self._last_drop_log_at = now
                    reason = "store is closed" if self._stopping else f"queue full ({self._buffered} records)"
                    logger.warning("storage: dropping records: %s (%d dropped so far)", reason, self.dropped_records)
                self.last_drop_at = now
                return
            self._items.append(items)
            self._buffered += size
            self._submitted_seq += 1
            if self._first_item_at is None:
                self._first_item_at = time.monotonic()
            if self._buffered >= self._batch_size:
                self._cond.notify_all()

    def call(self, fn: Callable[[], T], timeout_s: float | None = None) -> T:
        """Run ``fn`` on the writer thread after everything submitted so far; return its result."""
        future: Future[T] = Future()
        with self._cond:
            if not self._thread.is_alive():
                return fn()
            self._calls.append((fn, future))
            self._cond.notify_all()
        return future.result(timeout_s)

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything submitted so far is in the sink and the sink has nothing pending."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            target = self._submitted_seq
            self._flush_waiters += 1
            self._cond.notify_all()
            try:
                while self._handled_seq < target or self._sink.pending_points() > 0:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not self._thread.is_alive():
                        return False
                    self._cond.wait(min(remaining, 0.05))
                return True
            finally:
                self._flush_waiters -= 1

    def close(self, timeout_s: float = 10.0) -> None:
        """Hand everything queued to the sink, stop the thread and close the sink."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            logger.error("storage: writer thread did not stop within %.1f s", timeout_s)
            return
        self._sink.close()

    # ----------------------------------------------------------------------------- writer thread
    def _take(self, more_work: bool) -> tuple[list[list[Record]], list[tuple[Callable[[], Any], Future[Any]]], bool]:
        poll_s = 0.0 if more_work else min(self._flush_interval_s, 0.2)
        with self._cond:
            # A waiting flush() only cuts the batch wait short when there is something to hand over;
            # otherwise the thread keeps its poll interval (no busy loop while the database is down).
            flush_now = bool(self._flush_waiters and self._items)
            while not (self._stopping or self._calls or flush_now or self._buffered >= self._batch_size):
                now = time.monotonic()
                if self._first_item_at is not None:
                    remaining = self._first_item_at + self._flush_interval_s - now
                    if remaining <= 0:
                        break
                    wait_s = min(remaining, poll_s) if more_work else remaining
                else:
                    wait_s = poll_s
                if wait_s <= 0:
                    break
                self._cond.wait(wait_s)
                flush_now = bool(self._flush_waiters and self._items)
                if self._first_item_at is None and not (self._calls or self._stopping):
                    break  # poll timeout with nothing queued: go do background work
            items = list(self._items)
            self._items.clear()
            calls = list(self._calls)
            self._calls.clear()
            self._buffered = 0
            self._first_item_at = None
            self._taken_seq = self._submitted_seq
            return items, calls, self._stopping

    def _run(self) -> None:
        more_work = False
        while True:
            items, calls, stopping = self._take(more_work)
            if items:
                batch = self._build_batch(items)
                if len(batch):
                    try:
                        self._sink.handle(batch)
                    except Exception:  # a sink must not raise; if it does, keep the thread alive
                        logger.exception("storage: sink failed to handle a batch of %d records", len(batch))
            for fn, future in calls:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn())
                    except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
                        future.set_exception(exc)
            try:
                more_work = self._sink.background()
            except Exception:
                logger.exception("storage: sink background work failed")
                more_work = False
            with self._cond:
                self._handled_seq = self._taken_seq
                self._cond.notify_all()
            if stopping:
                with self._cond:
                    if not self._items and not self._calls:
                        return

    def _build_batch(self, items: list[list[Record]]) -> RecordBatch:
        batch = RecordBatch()
        for group in items:
            for record in group:
                if isinstance(record, AngleFrame):
                    if self._decimator.keep(record):
                        batch.frames.append(record)
                elif isinstance(record, RepRecord):
                    batch.reps.append(record)
                elif isinstance(record, SessionRecord):
                    batch.sessions.append(record)
                elif isinstance(record, SensorStatus):
                    batch.statuses.append(record)
                elif isinstance(record, ImuBlock):
                    batch.imu.append(record)
        return batch
