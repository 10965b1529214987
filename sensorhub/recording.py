"""Session recordings: a versioned, append-only binary file of every raw BLE notification.

A recording keeps what the hub received, byte for byte and with its host receive time, together with
the session's metadata (athlete, drill, which sensor sits on which segment and side, drill marks and
the calibration). Replay feeds the stored :class:`~sensorhub.notification.Notification` objects back
through the same pipeline that live data takes, so a recording must never hold decoded or derived
values in place of raw ones.

The byte layout, the versioning policy and the durability guarantees are specified in
``docs/recording-format.md``; the constants below are the single source of truth for that document.

* :class:`RecordingWriter` writes a recording incrementally and survives being killed: a file cut off
  mid-write (power loss, ``kill -9``) still replays up to its last complete record.
* :func:`open_recording` scans a file once (metadata, sensors, marks, calibration, counts) and returns a
  :class:`Recording` whose :meth:`Recording.iter_notifications` streams the notifications from disk.

This module does file I/O only; it never decodes payloads (that is :mod:`sensorhub.protocol`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Final, Literal, NamedTuple

from sensorhub.errors import RecordingError
from sensorhub.notification import Notification

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "Athlete",
    "BadMagicError",
    "DuplicateSensorError",
    "Mark",
    "MarkLabel",
    "Recording",
    "RecordingFormatError",
    "RecordingMeta",
    "RecordingWriteError",
    "RecordingWriter",
    "RecordCrcError",
    "RecordLengthError",
    "RecordOrderError",
    "RecordPayloadError",
    "RecordType",
    "SensorDescriptor",
    "UndeclaredSensorError",
    "UnknownRecordTypeError",
    "UnsupportedVersionError",
    "open_recording",
    "read_recording",
    "read_recording_notifications",
]

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# Byte layout (docs/recording-format.md)
# --------------------------------------------------------------------------------------------------

MAGIC: Final = b"\x89SHR\r\n\x1a\n"
"""File signature. As in PNG: a non-ASCII first byte, CR LF and LF catch text-mode transfers."""

FORMAT_VERSION: Final = (1, 0)
"""(major, minor). Readers accept any minor of their major; see the versioning policy in the spec."""

_FILE_HEADER: Final = struct.Struct("<8sHH")  # magic, major, minor
_RECORD_HEADER: Final = struct.Struct("<BI")  # type, payload length
_CRC: Final = struct.Struct("<I")
_NOTIFY_HEADER: Final = struct.Struct("<Hd")  # sensor index, t_host_s

FILE_HEADER_SIZE: Final = _FILE_HEADER.size  # 12
RECORD_OVERHEAD: Final = _RECORD_HEADER.size + _CRC.size  # 9

OPTIONAL_TYPE_BIT: Final = 0x80
"""Record types with this bit set may be skipped by readers that do not know them (forward compatibility)."""


class RecordType(IntEnum):
    """Record type byte. 0 is never valid, so a zero-filled tail is recognisable."""

    META = 0x01
    SENSOR = 0x02
    NOTIFY = 0x03
    MARK = 0x04
    CALIBRATION = 0x05
    END = 0x06


MAX_NOTIFY_DATA_BYTES: Final = 0xFFFF
"""Largest notification payload stored (a BLE attribute value is at most 512 bytes)."""
MAX_T_HOST_S: Final = 1e10
"""Largest magnitude of a stored receive time (317 years of any hub clock). A file beyond it is damaged;
replaying one would pace or report over an absurd span (``sensorhub replay`` would never finish)."""
MAX_JSON_PAYLOAD_BYTES: Final = 16 * 1024 * 1024
"""Largest JSON record. A length above the limit of its type is corruption, not a cut-off tail."""


# Plain ints for the per-record comparisons: reading an IntEnum member off its class costs as much
# as the rest of a NOTIFY record's handling.
_NOTIFY: Final = int(RecordType.NOTIFY)
_MARK: Final = int(RecordType.MARK)
_MAX_NOTIFY_PAYLOAD: Final = _NOTIFY_HEADER.size + MAX_NOTIFY_DATA_BYTES


def _max_payload(rtype: int) -> int:
    return _MAX_NOTIFY_PAYLOAD if rtype == _NOTIFY else MAX_JSON_PAYLOAD_BYTES


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


class RecordingFormatError(RecordingError):
    """A recording file is not valid; the message names the file, the byte offset and what was expected."""

    def __init__(self, path: Path | str, offset: int, problem: str) -> None:
        self.path = Path(path)
        self.offset = offset
        self.problem = problem
        super().__init__(f"{path}: byte {offset}: {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its three fields (the default would pass the one message): it can cross a pipe.
        return type(self), (self.path, self.offset, self.problem), self.__dict__


class BadMagicError(RecordingFormatError):
    """The file does not start with the recording signature (or is shorter than the file header)."""


class UnsupportedVersionError(RecordingFormatError):
    """The file's major format version is not one this reader understands."""


class RecordCrcError(RecordingFormatError):
    """A complete record that is followed by further data fails its CRC-32 check."""


class RecordLengthError(RecordingFormatError):
    """A record header announces a payload longer than its type allows."""


class UnknownRecordTypeError(RecordingFormatError):
    """A record type this reader does not know and that is not marked optional."""


class RecordPayloadError(RecordingFormatError):
    """A record's payload (JSON or NOTIFY header) does not have the required content."""


class UndeclaredSensorError(RecordingFormatError):
    """A NOTIFY record refers to a sensor index with no SENSOR record before it."""


class DuplicateSensorError(RecordingFormatError):
    """Two SENSOR records declare the same sensor_id."""


class RecordOrderError(RecordingFormatError):
    """Records are out of the required order (META first, nothing after END)."""


class RecordingWriteError(RecordingError, ValueError):
    """A recording cannot be written as asked (file exists, writer closed, undeclared sensor, bad value)."""


# --------------------------------------------------------------------------------------------------
# Metadata types
# --------------------------------------------------------------------------------------------------

Side = Literal["left", "right"]
SEGMENTS: Final = ("pelvis", "thigh")
SIDES: Final = ("left", "right")


class MarkLabel:
    """Mark labels the pipeline understands. Any other string is allowed and kept."""

    CALIBRATION_START: Final = "calibration_start"
    CALIBRATION_END: Final = "calibration_end"
    DRILL_START: Final = "drill_start"
    DRILL_END: Final = "drill_end"
    REP: Final = "rep"


@dataclass(frozen=True)
class Athlete:
    """Who was measured: a stable ``id`` (for storage and comparisons) and a display ``name``."""

    id: str
    name: str = ""


@dataclass(frozen=True)
class RecordingMeta:
    """Session metadata (the folded META records).

    ``created`` is an ISO 8601 UTC timestamp, filled in by the writer when empty. ``source`` says
    where the notifications came from, e.g. ``"ble"``, ``"sim"``, ``"csv"``.
    """

    athlete: Athlete | None = None
    drill: str | None = None
    side: Side | None = None
    source: str = "unknown"
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    format_version: tuple[int, int] = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": list(self.format_version),
            "created": self.created,
            "athlete": None if self.athlete is None else {"id": self.athlete.id, "name": self.athlete.name},
            "drill": self.drill,
            "side": self.side,
            "source": self.source,
            "extra": dict(self.extra),
        }


def _fold_meta(meta: RecordingMeta, update: Mapping[str, Any], *, strict: bool) -> RecordingMeta:
    """Apply one META record (or a writer-side update) to ``meta``.

    Keys present replace the current value, except ``extra``, which is merged key by key. Unknown
    top-level keys are kept in ``extra`` so nothing a newer writer or a caller stored is lost.
    Raises ValueError with the offending key when a value has the wrong type.
    """
    values: dict[str, Any] = {}
    extra = dict(meta.extra)
    for key, value in update.items():
        if key == "athlete":
            if value is None or isinstance(value, Athlete):
                values["athlete"] = value
            elif isinstance(value, Mapping) and isinstance(value.get("id"), str):
                values["athlete"] = Athlete(id=value["id"], name=str(value.get("name") or ""))
            else:
                raise ValueError(f"'athlete' must be null or an object with a string 'id', got {value!r}")
        elif key in ("drill", "source", "created"):
            if not (value is None or isinstance(value, str)):
                raise ValueError(f"'{key}' must be a string, got {value!r}")
            values[key] = value if value is not None or key == "drill" else ""
        elif key == "side":
            if value not in (None, *SIDES):
                raise ValueError(f"'side' must be 'left', 'right' or null, got {value!r}")
            values["side"] = value
        elif key == "extra":
            if not isinstance(value, Mapping):
                raise ValueError(f"'extra' must be an object, got {value!r}")
            extra.update(value)
        elif key == "format_version":
            if strict:
                raise ValueError("'format_version' is set by the writer")
            values["format_version"] = tuple(value) if isinstance(value, (list, tuple)) else meta.format_version
        else:
            extra[key] = value
    return RecordingMeta(
        athlete=values.get("athlete", meta.athlete),
        drill=values.get("drill", meta.drill),
        side=values.get("side", meta.side),
        source=values.get("source", meta.source),
        created=values.get("created", meta.created),
        extra=extra,
        format_version=values.get("format_version", meta.format_version),
    )


@dataclass(frozen=True)
class SensorDescriptor:
    """One sensor of the session: which segment and side it is strapped to, and what it measures.

    ``index`` is the sensor's position in the order of SENSOR records; NOTIFY records refer to it.
    ``rate_hz`` is the nominal sample rate (None when unknown).
    """

    sensor_id: str
    segment: str
    side: Side | None = None
    has_mag: bool = False
    rate_hz: float | None = None
    name: str | None = None
    firmware: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    index: int = -1

    def to_json(self) -> dict[str, Any]:
        return {
            "sensor_id": self.sensor_id,
            "segment": self.segment,
            "side": self.side,
            "has_mag": self.has_mag,
            "rate_hz": self.rate_hz,
            "name": self.name,
            "firmware": self.firmware,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], index: int, *, strict: bool) -> SensorDescriptor:
        """Build a descriptor from a SENSOR record or a caller's mapping; ValueError names the bad field.

        ``strict`` (the writer) also requires ``segment`` to be one of :data:`SEGMENTS`; a reader
        accepts any string so that files naming segments added later still open.
        """
        sensor_id = obj.get("sensor_id")
        if not isinstance(sensor_id, str) or not sensor_id:
            raise ValueError(f"'sensor_id' must be a non-empty string, got {sensor_id!r}")
        segment = obj.get("segment")
        if not isinstance(segment, str) or (strict and segment not in SEGMENTS):
            raise ValueError(f"'segment' must be one of {SEGMENTS}, got {segment!r}")
        side = obj.get("side")
        if side not in (None, *SIDES):
            raise ValueError(f"'side' must be 'left', 'right' or null, got {side!r}")
        has_mag = obj.get("has_mag", False)
        if not isinstance(has_mag, bool):
            raise ValueError(f"'has_mag' must be true or false, got {has_mag!r}")
        rate_hz = obj.get("rate_hz")
        if rate_hz is not None:
            if isinstance(rate_hz, bool) or not isinstance(rate_hz, (int, float)) or not (
                math.isfinite(rate_hz) and rate_hz > 0
            ):
                raise ValueError(f"'rate_hz' must be a positive number or null, got {rate_hz!r}")
            rate_hz = float(rate_hz)
        for key in ("name", "firmware"):
            if not (obj.get(key) is None or isinstance(obj.get(key), str)):
                raise ValueError(f"'{key}' must be a string or null, got {obj.get(key)!r}")
        extra_in = obj.get("extra") or {}
        if not isinstance(extra_in, Mapping):
            raise ValueError(f"'extra' must be an object, got {extra_in!r}")
        extra = dict(extra_in)
        known = {"sensor_id", "segment", "side", "has_mag", "rate_hz", "name", "firmware", "extra", "index"}
        extra.update({k: v for k, v in obj.items() if k not in known})
        return cls(
            sensor_id=sensor_id,
            segment=segment,
            side=side,
            has_mag=has_mag,
            rate_hz=rate_hz,
            name=obj.get("name"),
            firmware=obj.get("firmware"),
            extra=extra,
            index=index,
        )


@dataclass(frozen=True)
class Mark:
    """A time mark in the session (calibration phase, drill start/end, rep...), host clock seconds."""

    t_host_s: float
    label: str
    data: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------------


def _encode_json(obj: Any) -> bytes:
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise RecordingWriteError(f"value cannot be stored as JSON: {exc}") from exc


def _fsync_directory(path: Path) -> None:
    """Make the new directory entry durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class RecordingWriter:
    """Writes a recording incrementally; safe against the process being killed at any moment.

    Records are appended to an in-memory buffer which is written to the operating system when it
    holds ``flush_records`` records or its oldest record is ``flush_interval_s`` old (host monotonic
    clock), whichever comes first; a background thread enforces the interval when no new data
    arrives. Metadata records (META, SENSOR, MARK, CALIBRATION, END) are written through at once.
    ``os.fsync`` runs every ``fsync_interval_s`` (in the background thread, so a slow SD card never
    stalls the caller's event loop) and on :meth:`close`.

    Durability (defaults in brackets): after ``kill -9`` the file holds everything written more than
    1.1 * ``flush_interval_s`` [0.55 s] ago, and at most ``flush_records`` [256] records are lost;
    after a power loss, everything written more than 1.1 * (``flush_interval_s`` + ``fsync_interval_s``)
    [2.75 s] ago. Either way the file replays up to its last complete record. With
    ``background_flush=False`` the limits hold only while records keep arriving.

    Methods are thread-safe. The file must not exist unless ``overwrite`` is True.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        meta: RecordingMeta | Mapping[str, Any] | None = None,
        *,
        overwrite: bool = False,
        flush_interval_s: float = 0.5,
        flush_records: int = 256,
        fsync_interval_s: float = 2.0,
        background_flush: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if flush_interval_s <= 0 or fsync_interval_s <= 0 or flush_records < 1:
            raise RecordingWriteError("flush_interval_s, fsync_interval_s must be > 0 and flush_records >= 1")
        self.path = Path(path)
        self._flush_interval_s = flush_interval_s
        self._flush_records = flush_records
        self._fsync_interval_s = fsync_interval_s
        self._clock = clock

        meta_obj = self._coerce_meta(meta)
        if not meta_obj.created:
            meta_obj = _fold_meta(meta_obj, {"created": datetime.now(UTC).isoformat()}, strict=True)
        self._meta = meta_obj
        meta_payload = _encode_json(meta_obj.to_json())  # before creating the file: bad metadata leaves none

        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0)
        flags |= os.O_TRUNC if overwrite else os.O_EXCL
        try:
            self._fd: int = os.open(self.path, flags, 0o644)
        except FileExistsError as exc:
            raise RecordingWriteError(f"{self.path}: file exists; refusing to overwrite a recording") from exc
        except OSError as exc:
            raise RecordingWriteError(f"{self.path}: cannot create recording: {exc.strerror}") from exc

        self._lock = threading.Lock()
        self._buf = bytearray()
        self._buf_records = 0
        self._buf_since = 0.0
        self._closed = False
        self._unsynced = False
        self._last_fsync = clock()
        self._bg_error: BaseException | None = None

        self._sensors: list[SensorDescriptor] = []
        self._sensor_index: dict[str, int] = {}
        self._counts: list[int] = []
        self._n_marks = 0
        self._t_first_s: float | None = None
        self._t_last_s: float | None = None

        try:
            with self._lock:
                self._buf += _FILE_HEADER.pack(MAGIC, *FORMAT_VERSION)
                self._append_locked(RecordType.META, meta_payload)
                self._flush_locked()
            # The header and META must survive a power loss too: a file without them replays nothing.
            os.fsync(self._fd)
        except (OSError, RecordingWriteError) as exc:
            os.close(self._fd)
            raise RecordingWriteError(f"{self.path}: cannot write the recording header: {exc}") from exc
        _fsync_directory(self.path.parent)

        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if background_flush:
            self._thread = threading.Thread(
                target=self._background, name=f"RecordingWriter({self.path.name})", daemon=True
            )
            self._thread.start()

    # -- public API ------------------------------------------------------------------------------

    @property
    def meta(self) -> RecordingMeta:
        return self._meta

    @property
    def sensors(self) -> tuple[SensorDescriptor, ...]:
        return tuple(self._sensors)

    @property
    def closed(self) -> bool:
        return self._closed

    def sensor_index(self, sensor_id: str) -> int:
        """Index of a declared sensor; RecordingWriteError when it was never added."""
        try:
            return self._sensor_index[sensor_id]
        except KeyError:
            raise RecordingWriteError(
                f"{self.path}: sensor {sensor_id!r} was not declared with add_sensor()"
            ) from None

    def add_sensor(self, sensor: SensorDescriptor | Mapping[str, Any] | str, /, **fields_: Any) -> int:
        """Declare a sensor and return its index.

        Either ``add_sensor(SensorDescriptor(...))``, ``add_sensor({"sensor_id": ..., "segment": ...})``
        or ``add_sensor("AA:BB:..", segment="thigh", side="right", has_mag=True, rate_hz=100.0)``.
        Keyword arguments not among the descriptor's fields go to its ``extra`` dict.
        """
        if isinstance(sensor, SensorDescriptor):
            obj: dict[str, Any] = sensor.to_json()
        elif isinstance(sensor, Mapping):
            obj = dict(sensor)
        else:
            obj = {"sensor_id": sensor}
        obj.update(fields_)
        obj.pop("index", None)
        try:
            desc = SensorDescriptor.from_json(obj, -1, strict=True)
        except ValueError as exc:
            raise RecordingWriteError(f"{self.path}: invalid sensor {obj.get('sensor_id')!r}: {exc}") from exc
        payload = _encode_json(desc.to_json())
        with self._lock:
            self._check_open_locked()
            if desc.sensor_id in self._sensor_index:
                raise RecordingWriteError(f"{self.path}: sensor {desc.sensor_id!r} is already declared")
            if len(self._sensors) >= 0xFFFF:
                raise RecordingWriteError(f"{self.path}: too many sensors (at most 65535)")
            desc = replace(desc, index=len(self._sensors))
            self._append_locked(RecordType.SENSOR, payload)
            self._flush_locked()
            self._sensors.append(desc)
            self._sensor_index[desc.sensor_id] = desc.index
            self._counts.append(0)
        return desc.index

    def write_notification(self, notification: Notification) -> None:
        """Append one raw notification (the hot path: 19 bytes of overhead, no JSON)."""
        index = self.sensor_index(notification.sensor_id)
        t = notification.t_host_s
        if not math.isfinite(t):
            raise RecordingWriteError(f"{self.path}: notification of {notification.sensor_id!r} has t_host_s={t}")
        data = notification.payload
        if len(data) > MAX_NOTIFY_DATA_BYTES:
            raise RecordingWriteError(
                f"{self.path}: notification of {len(data)} bytes exceeds {MAX_NOTIFY_DATA_BYTES} bytes"
            )
        payload = _NOTIFY_HEADER.pack(index, t) + data
        with self._lock:
            self._check_open_locked()
            self._append_locked(RecordType.NOTIFY, payload)
            self._counts[index] += 1
            if self._t_first_s is None:
                self._t_first_s = t
            self._t_last_s = t if self._t_last_s is None else max(self._t_last_s, t)
            if self._buf_records >= self._flush_records or self._clock() - self._buf_since >= self._flush_interval_s:
                self._flush_locked()
            if self._thread is None:
                self._maybe_fsync_locked()

    def write_mark(self, t_host_s: float, label: str, **data: Any) -> None:
        """Append a time mark, e.g. ``write_mark(12.5, MarkLabel.DRILL_START, drill="seated_rotation")``."""
        if not math.isfinite(t_host_s):
            raise RecordingWriteError(f"{self.path}: mark {label!r} has t_host_s={t_host_s}")
        if not isinstance(label, str) or not label:
            raise RecordingWriteError(f"{self.path}: mark label must be a non-empty string, got {label!r}")
        payload = _encode_json({"t_host_s": float(t_host_s), "label": label, "data": data})
        with self._lock:
            self._check_open_locked()
            self._append_locked(RecordType.MARK, payload)
            self._n_marks += 1
            self._flush_locked()

    def write_calibration(self, calibration: Mapping[str, Any]) -> None:
        """Append the calibration (a JSON object); the last one in the file is the current one."""
        if not isinstance(calibration, Mapping):
            raise RecordingWriteError(f"{self.path}: calibration must be a mapping, got {type(calibration).__name__}")
        payload = _encode_json(dict(calibration))
        self._write_through(RecordType.CALIBRATION, payload)

    def update_meta(self, **changes: Any) -> RecordingMeta:
        """Append a META record changing some fields (``extra`` is merged); returns the folded metadata."""
        try:
            new_meta = _fold_meta(self._meta, changes, strict=True)
        except ValueError as exc:
            raise RecordingWriteError(f"{self.path}: invalid metadata: {exc}") from exc
        update = {
            key: ({"id": value.id, "name": value.name} if isinstance(value, Athlete) else value)
            for key, value in changes.items()
        }
        self._write_through(RecordType.META, _encode_json(update))
        self._meta = new_meta
        return new_meta

    def flush(self) -> None:
        """Hand buffered records to the operating system (survives a process kill, not a power loss)."""
        with self._lock:
            if not self._closed:
                self._flush_locked()

    def sync(self) -> None:
        """Flush and ``os.fsync``: everything written so far survives a power loss."""
        with self._lock:
            if self._closed:
                return
            self._flush_locked()
            os.fsync(self._fd)
            self._unsynced = False
            self._last_fsync = self._clock()

    def close(self, summary: Mapping[str, Any] | None = None, *, status: str = "ok") -> None:
        """Write the END record (counts, times, ``status`` and ``summary``), fsync and close. Idempotent."""
        if self._closed:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        end: dict[str, Any] = {
            "status": status,
            "closed": datetime.now(UTC).isoformat(),
            "notifications": {d.sensor_id: self._counts[d.index] for d in self._sensors},
            "marks": self._n_marks,
            "t_first_s": self._t_first_s,
            "t_last_s": self._t_last_s,
        }
        if summary:
            end["summary"] = dict(summary)
        try:
            payload = _encode_json(end)
        except RecordingWriteError:
            logger.error("%s: END summary is not JSON-serialisable; writing END without it", self.path)
            end.pop("summary", None)
            payload = _encode_json(end)
        with self._lock:
            try:
                self._append_locked(RecordType.END, payload)
                self._flush_locked()
                os.fsync(self._fd)
            finally:
                self._closed = True
                os.close(self._fd)

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            # The session ended abnormally but the process is alive: mark it so the file tells the truth.
            self.close(status=f"aborted: {exc_type.__name__}")

    # -- internals -------------------------------------------------------------------------------

    @staticmethod
    def _coerce_meta(meta: RecordingMeta | Mapping[str, Any] | None) -> RecordingMeta:
        if meta is None:
            return RecordingMeta()
        if isinstance(meta, RecordingMeta):
            # Validated like a mapping, so a dataclass built by hand cannot store e.g. side="middle".
            as_json = meta.to_json()
            del as_json["format_version"]
            meta = as_json
        try:
            return _fold_meta(RecordingMeta(), meta, strict=True)
        except ValueError as exc:
            raise RecordingWriteError(f"invalid recording metadata: {exc}") from exc

    def _check_open_locked(self) -> None:
        if self._closed:
            raise RecordingWriteError(f"{self.path}: writer is closed")
        if self._bg_error is not None:
            raise RecordingWriteError(f"{self.path}: writing failed in the background: {self._bg_error}")

    def _write_through(self, rtype: RecordType, payload: bytes) -> None:
        with self._lock:
            self._check_open_locked()
            self._append_locked(rtype, payload)
            self._flush_locked()

    def _append_locked(self, rtype: RecordType, payload: bytes) -> None:
        if len(payload) > _max_payload(rtype):
            raise RecordingWriteError(f"{self.path}: {rtype.name} record of {len(payload)} bytes is too large")
        header = _RECORD_HEADER.pack(rtype, len(payload))
        if not self._buf_records:
            self._buf_since = self._clock()
        self._buf += header
        self._buf += payload
        self._buf += _CRC.pack(zlib.crc32(payload, zlib.crc32(header)))
        self._buf_records += 1

    def _flush_locked(self) -> None:
        if not self._buf:
            return
        view = memoryview(self._buf)
        try:
            written = 0
            while written < len(view):
                written += os.write(self._fd, view[written:])
        finally:
            view.release()
        self._buf.clear()
        self._buf_records = 0
        self._unsynced = True

    def _maybe_fsync_locked(self) -> None:
        if self._unsynced and self._clock() - self._last_fsync >= self._fsync_interval_s:
            os.fsync(self._fd)
            self._unsynced = False
            self._last_fsync = self._clock()

    def _background(self) -> None:
        # Waking ten times per interval bounds the age of an idle buffer to 1.1 * flush_interval_s.
        period = min(self._flush_interval_s, self._fsync_interval_s) / 10
        while not self._stop.wait(period):
            try:
                with self._lock:
                    if self._closed:
                        return
                    if self._buf_records and self._clock() - self._buf_since >= self._flush_interval_s:
                        self._flush_locked()
                    do_sync = self._unsynced and self._clock() - self._last_fsync >= self._fsync_interval_s
                    if do_sync:
                        self._unsynced = False
                        self._last_fsync = self._clock()
                if do_sync:
                    # Outside the lock: fsync may take tens of ms; close() joins this thread before
                    # closing the descriptor, so it stays valid here.
                    os.fsync(self._fd)
            except OSError as exc:
                logger.error("%s: background flush failed: %s", self.path, exc)
                self._bg_error = exc
                return


# --------------------------------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------------------------------


class _RawRecord(NamedTuple):
    offset: int
    rtype: int
    payload: bytes


@dataclass
class _ScanState:
    end_offset: int = FILE_HEADER_SIZE
    truncated: bool = False
    tail_problem: str = ""


_READ_CHUNK: Final = 1 << 16


def _rest_is_zero(f: BinaryIO, offset: int) -> bool:
    """True when the file holds only zero bytes (or nothing) from ``offset`` on; restores the position."""
    here = f.tell()
    try:
        f.seek(offset)
        while chunk := f.read(_READ_CHUNK):
            if chunk.count(0) != len(chunk):
                return False
        return True
    finally:
        f.seek(here)


def _read_header(f: BinaryIO, path: Path) -> tuple[int, int]:
    raw = f.read(FILE_HEADER_SIZE)
    if len(raw) < FILE_HEADER_SIZE:
        what = "empty file" if not raw else f"only {len(raw)} bytes"
        raise BadMagicError(path, 0, f"{what}; expected a {FILE_HEADER_SIZE}-byte recording header starting with {MAGIC!r}")
    magic, major, minor = _FILE_HEADER.unpack(raw)
    if magic != MAGIC:
        raise BadMagicError(path, 0, f"found {magic!r}; expected the recording signature {MAGIC!r}")
    if major != FORMAT_VERSION[0]:
        raise UnsupportedVersionError(
            path, 8, f"format version {major}.{minor}; this reader understands {FORMAT_VERSION[0]}.x"
        )
    return major, minor


def _iter_raw(f: BinaryIO, path: Path, state: _ScanState, stop: int | None = None) -> Iterator[_RawRecord]:
    """Yield the valid records from the current position, stopping cleanly at a cut-off tail.

    A tail counts as cut off (``state.truncated``) when the last record is incomplete, or when a record
    fails its CRC or has type 0 and nothing but zero bytes follows it (a power loss can leave a
    zero-filled or half-written last block). Anything else that is wrong raises.

    The file is read in blocks of :data:`_SCAN_BLOCK` bytes and the records are cut out of them (two
    small reads per record cost more than everything else a record needs); memory stays bounded by
    the block and the largest record.
    """
    offset = f.tell()
    buf = b""
    pos = 0  # buf[pos] is the byte at `offset`
    eof = False
    header_size, crc_size = _RECORD_HEADER.size, _CRC.size
    unpack_header, unpack_crc, crc32 = _RECORD_HEADER.unpack_from, _CRC.unpack_from, zlib.crc32
    while stop is None or offset < stop:
        if len(buf) - pos < header_size and not eof:
            buf, pos, eof = _refill(f, buf, pos, header_size)
        if pos == len(buf):
            break
        if len(buf) - pos < header_size:
            state.truncated, state.tail_problem = True, f"record header cut off after {len(buf) - pos} bytes"
            break
        rtype, length = unpack_header(buf, pos)
        if rtype not in _KNOWN_TYPES and not rtype & OPTIONAL_TYPE_BIT:
            if _rest_is_zero(f, offset):
                state.truncated, state.tail_problem = True, "zero-filled tail"
                break
            raise UnknownRecordTypeError(
                path, offset, f"unknown record type 0x{rtype:02x}; expected one of "
                + ", ".join(f"{t.name}=0x{t.value:02x}" for t in RecordType)
            )
        if length > (_MAX_NOTIFY_PAYLOAD if rtype == _NOTIFY else MAX_JSON_PAYLOAD_BYTES):
            raise RecordLengthError(
                path, offset + 1, f"record type 0x{rtype:02x} announces {length} payload bytes; "
                f"expected at most {_max_payload(rtype)}"
            )
        size = header_size + length + crc_size
        if len(buf) - pos < size and not eof:
            buf, pos, eof = _refill(f, buf, pos, size)
        if len(buf) - pos < size:
            state.truncated = True
            state.tail_problem = (
                f"{_type_name(rtype)} record cut off after {len(buf) - pos} of {length + RECORD_OVERHEAD} bytes"
            )
            break
        payload = buf[pos + header_size : pos + header_size + length]
        (stored_crc,) = unpack_crc(buf, pos + header_size + length)
        computed = crc32(payload, crc32(buf[pos : pos + header_size]))
        if computed != stored_crc:
            if _rest_is_zero(f, offset + RECORD_OVERHEAD + length):
                state.truncated, state.tail_problem = True, f"last {_type_name(rtype)} record fails its CRC (partly written)"
                break
            raise RecordCrcError(
                path, offset, f"{_type_name(rtype)} record of {length} payload bytes fails its CRC-32 check "
                f"(stored 0x{stored_crc:08x}, computed 0x{computed:08x}) "
                "and is followed by more data; expected an intact record"
            )
        yield _RawRecord(offset, rtype, payload)
        pos += size
        offset += size
        state.end_offset = offset


_SCAN_BLOCK: Final = 1 << 20


def _refill(f: BinaryIO, buf: bytes, pos: int, need: int) -> tuple[bytes, int, bool]:
    """``buf[pos:]`` with more of the file appended until it holds ``need`` bytes or the file ends.

    Returns the new buffer, the new position (0) and whether the end of the file was reached.
    """
    parts = [buf[pos:]]
    have = len(parts[0])
    while have < need:
        chunk = f.read(max(_SCAN_BLOCK, need - have))
        if not chunk:
            return b"".join(parts), 0, True
        parts.append(chunk)
        have += len(chunk)
    return b"".join(parts), 0, False


_KNOWN_TYPES: Final = frozenset(int(t) for t in RecordType)


def _type_name(rtype: int) -> str:
    return RecordType(rtype).name if rtype in _KNOWN_TYPES else f"type-0x{rtype:02x}"


class _NonFiniteNumber(ValueError):
    """A JSON number that is NaN, infinite or overflows float64 (json.dumps(allow_nan=False) never writes one)."""


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFiniteNumber(f"number {text} overflows a 64-bit float")
    return value


def _no_constant(name: str) -> float:
    raise _NonFiniteNumber(f"{name} is not a JSON number")


def _decode_json(path: Path, rec: _RawRecord) -> dict[str, Any]:
    try:
        # The writer never stores NaN or infinity (allow_nan=False); a file that has them is damaged,
        # and a NaN time would poison every stage after the reader.
        obj = json.loads(rec.payload.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite_float)
    except _NonFiniteNumber as exc:
        raise RecordPayloadError(
            path, rec.offset, f"{_type_name(rec.rtype)} payload holds a non-finite number ({exc}); expected finite numbers"
        ) from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise RecordPayloadError(
            path, rec.offset, f"{_type_name(rec.rtype)} payload is not UTF-8 JSON ({exc}); expected a JSON object"
        ) from None
    if not isinstance(obj, dict):
        raise RecordPayloadError(
            path, rec.offset, f"{_type_name(rec.rtype)} payload is a JSON {type(obj).__name__}; expected a JSON object"
        )
    return obj


def _decode_notify(path: Path, rec: _RawRecord, n_sensors: int) -> tuple[int, float, bytes]:
    if len(rec.payload) < _NOTIFY_HEADER.size:
        raise RecordPayloadError(
            path,
            rec.offset,
            f"NOTIFY payload of {len(rec.payload)} bytes; expected at least {_NOTIFY_HEADER.size} (u16 sensor index, f64 time)",
        )
    index, t_host_s = _NOTIFY_HEADER.unpack_from(rec.payload)
    if not (math.isfinite(t_host_s) and abs(t_host_s) <= MAX_T_HOST_S):
        raise RecordPayloadError(
            path, rec.offset, f"NOTIFY t_host_s is {t_host_s}; expected a finite hub receive time in seconds "
            f"within ±{MAX_T_HOST_S:g}"
        )
    if index >= n_sensors:
        raise UndeclaredSensorError(
            path, rec.offset, f"NOTIFY refers to sensor index {index}; only {n_sensors} sensor(s) declared before it"
        )
    return index, t_host_s, rec.payload[_NOTIFY_HEADER.size:]


class Recording:
    """A scanned recording: metadata, sensors, marks and calibration in memory; notifications on disk.

    Built by :func:`open_recording`. ``truncated`` is True when the file ends in a cut-off record (the
    writer was killed or lost power); everything before it is available. ``end`` is the END record's
    summary, or None when the writer never closed the file.
    """

    def __init__(
        self,
        path: Path,
        format_version: tuple[int, int],
        meta: RecordingMeta,
        sensors: tuple[SensorDescriptor, ...],
        marks: tuple[Mark, ...],
        calibrations: tuple[dict[str, Any], ...],
        end: dict[str, Any] | None,
        truncated: bool,
        end_offset: int,
        notification_counts: tuple[int, ...],
        t_first_s: float | None,
        t_last_s: float | None,
    ) -> None:
        self.path = path
        self.format_version = format_version
        self.meta = meta
        self.sensors = sensors
        self.marks = marks
        self.calibrations = calibrations
        self.end = end
        self.truncated = truncated
        self.end_offset = end_offset
        self._counts = notification_counts
        self.t_first_s = t_first_s
        self.t_last_s = t_last_s

    @property
    def calibration(self) -> dict[str, Any] | None:
        """The last calibration stored, or None."""
        return self.calibrations[-1] if self.calibrations else None

    @property
    def n_notifications(self) -> int:
        return sum(self._counts)

    @property
    def notification_counts(self) -> dict[str, int]:
        """Number of notifications per sensor_id."""
        return {s.sensor_id: self._counts[s.index] for s in self.sensors}

    @property
    def duration_s(self) -> float:
        """Host-time span from the earliest to the latest notification or mark; 0.0 when there are none."""
        if self.t_first_s is None or self.t_last_s is None:
            return 0.0
        return self.t_last_s - self.t_first_s

    def sensor(self, segment: str, side: str | None = None) -> SensorDescriptor:
        """The sensor on ``segment`` (and ``side`` if given); RecordingError if there is not exactly one."""
        found = [s for s in self.sensors if s.segment == segment and (side is None or s.side == side)]
        if len(found) != 1:
            raise RecordingError(
                f"{self.path}: {len(found)} sensors on segment {segment!r}"
                + (f" side {side!r}" if side else "")
                + f"; expected exactly one (declared: {[(s.sensor_id, s.segment, s.side) for s in self.sensors]})"
            )
        return found[0]

    def iter_records(self) -> Iterator[Notification | Mark]:
        """Notifications and marks in file order (the order the hub saw them), streamed from disk."""
        sensor_ids = [s.sensor_id for s in self.sensors]
        for rec in self._iter_raw():
            if rec.rtype == _NOTIFY:
                index, t, data = _decode_notify(self.path, rec, len(sensor_ids))
                yield Notification(sensor_ids[index], t, data)
            elif rec.rtype == _MARK:
                yield _decode_mark(self.path, rec)

    def iter_notifications(self, sensor_id: str | None = None) -> Iterator[Notification]:
        """Notifications in file order, optionally of one sensor, streamed from disk."""
        if sensor_id is not None and sensor_id not in {s.sensor_id for s in self.sensors}:
            raise RecordingError(f"{self.path}: no sensor {sensor_id!r}; declared: {[s.sensor_id for s in self.sensors]}")
        return (
            item
            for item in self.iter_records()
            if isinstance(item, Notification) and (sensor_id is None or item.sensor_id == sensor_id)
        )

    def notifications(self, sensor_id: str | None = None) -> list[Notification]:
        """All notifications in memory (convenience for short recordings and tests)."""
        return list(self.iter_notifications(sensor_id))

    def _iter_raw(self) -> Iterator[_RawRecord]:
        with open(self.path, "rb", buffering=_READ_CHUNK) as f:
            _read_header(f, self.path)
            yield from _iter_raw(f, self.path, _ScanState(), stop=self.end_offset)

    def __repr__(self) -> str:
        return (
            f"Recording({str(self.path)!r}, sensors={[s.sensor_id for s in self.sensors]}, "
            f"notifications={self.n_notifications}, marks={len(self.marks)}, duration_s={self.duration_s:.3f}, "
            f"truncated={self.truncated}, closed={self.end is not None})"
        )


def _decode_mark(path: Path, rec: _RawRecord) -> Mark:
    obj = _decode_json(path, rec)
    t = obj.get("t_host_s")
    label = obj.get("label")
    data = obj.get("data", {})
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not isinstance(label, str) or not isinstance(data, dict):
        raise RecordPayloadError(
            path, rec.offset, f"MARK payload {obj!r}; expected {{'t_host_s': number, 'label': string, 'data': object}}"
        )
    return Mark(float(t), label, data)


def open_recording(path: str | os.PathLike[str]) -> Recording:
    """Scan a recording file and return its :class:`Recording`.

    Reads the whole file once (checking every CRC) but keeps only metadata in memory. A cut-off tail is
    tolerated with a warning (``Recording.truncated``); any other defect raises a
    :class:`RecordingFormatError` subclass naming the file and byte offset.
    """
    return _scan(Path(path), None)


def read_recording_notifications(path: str | os.PathLike[str]) -> tuple[Recording, list[Notification]]:
    """:func:`open_recording` and every notification in memory, from one pass over the file.

    The list equals ``recording.notifications()`` (file order, up to a cut-off tail), which would read
    the file a second time; for a batch analysis that needs them all anyway.
    """
    notifications: list[Notification] = []
    return _scan(Path(path), notifications), notifications


def _scan(path: Path, notifications: list[Notification] | None) -> Recording:
    """The scan of :func:`open_recording`; appends each notification to ``notifications`` if given."""
    try:
        f = open(path, "rb", buffering=_READ_CHUNK)
    except OSError as exc:
        raise RecordingError(f"{path}: cannot open recording: {exc.strerror}") from exc
    with f:
        major, minor = _read_header(f, path)
        state = _ScanState()
        meta: RecordingMeta | None = None
        sensors: list[SensorDescriptor] = []
        ids: set[str] = set()
        marks: list[Mark] = []
        calibrations: list[dict[str, Any]] = []
        counts: list[int] = []
        end: dict[str, Any] | None = None
        t_first: float | None = None
        t_last: float | None = None
        end_at = -1
        for rec in _iter_raw(f, path, state):
            if end is not None:
                raise RecordOrderError(
                    path, rec.offset, f"{_type_name(rec.rtype)} record after END (byte {end_at}); expected end of file"
                )
            if meta is None and rec.rtype != RecordType.META:
                raise RecordOrderError(path, rec.offset, f"{_type_name(rec.rtype)} record; expected the META record first")
            if rec.rtype == _NOTIFY:
                index, t, data = _decode_notify(path, rec, len(sensors))
                counts[index] += 1
                if notifications is not None:
                    notifications.append(Notification(sensors[index].sensor_id, t, data))
                t_first = t if t_first is None else min(t_first, t)
                t_last = t if t_last is None else max(t_last, t)
            elif rec.rtype == _MARK:
                mark = _decode_mark(path, rec)
                marks.append(mark)
                t_first = mark.t_host_s if t_first is None else min(t_first, mark.t_host_s)
                t_last = mark.t_host_s if t_last is None else max(t_last, mark.t_host_s)
            elif rec.rtype == RecordType.META:
                obj = _decode_json(path, rec)
                try:
                    meta = _fold_meta(meta or RecordingMeta(format_version=(major, minor)), obj, strict=False)
                except ValueError as exc:
                    raise RecordPayloadError(path, rec.offset, f"META: {exc}") from None
            elif rec.rtype == RecordType.SENSOR:
                obj = _decode_json(path, rec)
                try:
                    desc = SensorDescriptor.from_json(obj, len(sensors), strict=False)
                except ValueError as exc:
                    raise RecordPayloadError(path, rec.offset, f"SENSOR: {exc}") from None
                if desc.sensor_id in ids:
                    raise DuplicateSensorError(
                        path, rec.offset, f"sensor {desc.sensor_id!r} declared a second time; expected a unique sensor_id"
                    )
                ids.add(desc.sensor_id)
                sensors.append(desc)
                counts.append(0)
            elif rec.rtype == RecordType.CALIBRATION:
                calibrations.append(_decode_json(path, rec))
            elif rec.rtype == RecordType.END:
                end = _decode_json(path, rec)
                end_at = rec.offset
            else:
                logger.debug("%s: byte %d: skipping optional record type 0x%02x", path, rec.offset, rec.rtype)
        if state.truncated:
            logger.warning(
                "%s: cut off at byte %d (%s); replaying the complete records before it",
                path, state.end_offset, state.tail_problem,
            )
    return Recording(
        path=path,
        format_version=(major, minor),
        meta=meta or RecordingMeta(format_version=(major, minor)),
        sensors=tuple(sensors),
        marks=tuple(marks),
        calibrations=tuple(calibrations),
        end=end,
        truncated=state.truncated,
        end_offset=state.end_offset,
        notification_counts=tuple(counts),
        t_first_s=t_first,
        t_last_s=t_last,
    )


read_recording = open_recording
"""Alias of :func:`open_recording`."""
