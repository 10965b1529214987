"""The durable, bounded on-disk spool of line-protocol batches waiting for InfluxDB.

A SQLite file in WAL mode (``<data_dir>/influx_spool.sqlite3``): one row per batch, rows delivered in
``id`` order (``AUTOINCREMENT`` keeps ids increasing across deletes and restarts). A batch is deleted
only after InfluxDB confirmed it, so a crash between send and delete re-sends it, which InfluxDB's
point identity (measurement, tags, timestamp) turns into an overwrite of identical points.

The bound is on stored line-protocol bytes: :meth:`Spool.append` raises :class:`SpoolFullError`
instead of growing past it. Disk errors (``SQLITE_FULL`` on ENOSPC, I/O errors) come out as
:class:`SpoolError` with the path in the message. Only the writer thread mutates the spool; the
counters may be read from any thread.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from sensorhub.storage.base import StorageError
from sensorhub.storage.schema import athlete_tag_marker

logger = logging.getLogger(__name__)

SPOOL_FILENAME = "influx_spool.sqlite3"


class SpoolError(StorageError):
    """The spool cannot store a batch (disk full, I/O error)."""


class SpoolFullError(SpoolError):
    """The spool reached its configured size bound."""


def _series_key(line: str) -> str:
    """The measurement+tags part of a line (up to the first space not escaped by a backslash)."""
    i = 0
    while True:
        i = line.find(" ", i)
        if i < 0:
            return line
        if i == 0 or line[i - 1] != "\\":
            return line[:i]
        i += 1


class Spool:
    """Bounded FIFO of line-protocol batches in a SQLite file."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a batch acknowledged to the writer survives power loss, not just a process crash.
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS batches ("
                " id INTEGER PRIMARY KEY AUTOINCREMENT, n_points INTEGER NOT NULL, n_bytes INTEGER NOT NULL,"
                " body BLOB NOT NULL)"
            )
            n_points, n_bytes = self._conn.execute(
                "SELECT coalesce(sum(n_points), 0), coalesce(sum(n_bytes), 0) FROM batches"
            ).fetchone()
        except (OSError, sqlite3.Error) as exc:
            raise SpoolError(f"cannot open the spool {self.path}: {exc}") from exc
        self.points = int(n_points)
        self.bytes = int(n_bytes)
        if self.points:
            logger.info("storage: spool %s holds %d points (%d bytes) from before", self.path, self.points, self.bytes)

    def __len__(self) -> int:
        return self.points

    def append(self, lines: list[str]) -> None:
        """Store one batch at the end of the queue (durable when this returns)."""
        if not lines:
            return
        body = "\n".join(lines).encode()
        if self.bytes + len(body) > self.max_bytes:
            raise SpoolFullError(
                f"spool {self.path} is full: {self.bytes} of {self.max_bytes} bytes used, "
                f"a batch of {len(lines)} points ({len(body)} bytes) does not fit"
            )
        try:
            self._conn.execute(
                "INSERT INTO batches (n_points, n_bytes, body) VALUES (?, ?, ?)", (len(lines), len(body), body)
            )
        except sqlite3.Error as exc:
            raise SpoolError(f"cannot write {len(lines)} points to the spool {self.path}: {exc}") from exc
        self.points += len(lines)
        self.bytes += len(body)

    def peek(self, max_points: int) -> tuple[int, list[str]]:
        """The oldest batches, whole, up to about ``max_points`` (at least one batch): (last id, lines)."""
        try:
            rows = self._conn.execute("SELECT id, n_points, body FROM batches ORDER BY id LIMIT 64").fetchall()
        except sqlite3.Error as exc:
            raise SpoolError(f"cannot read the spool {self.path}: {exc}") from exc
        lines: list[str] = []
        last_id = -1
        for row_id, n_points, body in rows:
            if lines and len(lines) + n_points > max_points:
                break
            lines.extend(bytes(body).decode().split("\n"))
            last_id = row_id
        return last_id, lines

    def remove_through(self, last_id: int) -> None:
        """Delete every batch with id <= ``last_id`` (they were delivered)."""
        try:
            n_points, n_bytes = self._conn.execute(
                "SELECT coalesce(sum(n_points), 0), coalesce(sum(n_bytes), 0) FROM batches WHERE id <= ?", (last_id,)
            ).fetchone()
            self._conn.execute("DELETE FROM batches WHERE id <= ?", (last_id,))
        except sqlite3.Error as exc:
            raise SpoolError(f"cannot delete delivered batches from the spool {self.path}: {exc}") from exc
        self.points -= int(n_points)
        self.bytes -= int(n_bytes)

    def remove_athlete(self, athlete: str) -> int:
        """Drop every spooled point tagged with ``athlete``; returns how many were dropped."""
        marker = athlete_tag_marker(athlete)
        removed = 0
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for row_id, body in self._conn.execute("SELECT id, body FROM batches ORDER BY id").fetchall():
                    lines = bytes(body).decode().split("\n")
                    kept = []
                    for line in lines:
                        key = _series_key(line)
                        comma = key.find(",")
                        tags = key[comma:] if comma >= 0 else ""
                        if tags == marker or tags.startswith(marker + ","):
                            continue
                        kept.append(line)
                    if len(kept) == len(lines):
                        continue
                    removed += len(lines) - len(kept)
                    if kept:
                        new_body = "\n".join(kept).encode()
                        self._conn.execute(
                            "UPDATE batches SET n_points = ?, n_bytes = ?, body = ? WHERE id = ?",
                            (len(kept), len(new_body), new_body, row_id),
                        )
                    else:
                        self._conn.execute("DELETE FROM batches WHERE id = ?", (row_id,))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            n_points, n_bytes = self._conn.execute(
                "SELECT coalesce(sum(n_points), 0), coalesce(sum(n_bytes), 0) FROM batches"
            ).fetchone()
        except sqlite3.Error as exc:
            raise SpoolError(f"cannot remove athlete {athlete!r} from the spool {self.path}: {exc}") from exc
        self.points, self.bytes = int(n_points), int(n_bytes)
        return removed

    def close(self) -> None:
        self._conn.close()
