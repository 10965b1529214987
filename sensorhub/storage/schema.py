"""The InfluxDB schema of sensorhub: measurements, tags, fields (with units) and record encoding.

This module is the single place the schema is written down; ``docs/storage.md`` describes it and the
Grafana dashboard tests check every query against :data:`MEASUREMENTS`.

Point identity is measurement + tag set + timestamp, so writing the same record twice overwrites
the same point (InfluxDB keeps the last field values). The spool relies on that: a batch re-sent
after an ambiguous failure (timeout after the server accepted it) does not create duplicates.
Timestamps are written in nanoseconds, rounded to whole microseconds, so the same float Unix time
always gives the same timestamp.

Fields whose value is NaN are omitted (line protocol has no NaN); a point whose fields are all NaN
is not written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass

from influxdb_client import Point, WritePrecision

from sensorhub.storage.model import (
    AngleFrame,
    ImuBlock,
    RepRecord,
    SensorStatus,
    SessionRecord,
)

WRITE_PRECISION = WritePrecision.NS


@dataclass(frozen=True)
class Measurement:
    """One measurement: its tag keys and its field names (field names carry units)."""

    name: str
    tags: tuple[str, ...]
    fields: tuple[str, ...]
    doc: str
    field_prefixes: tuple[str, ...] = ()
    """Prefixes of dynamically named fields (e.g. ``score_`` + a score component name)."""

    def has_field(self, field_name: str) -> bool:
        return field_name in self.fields or any(field_name.startswith(p) for p in self.field_prefixes)


HIP_ANGLES = Measurement(
    "hip_angles",
    tags=("athlete", "session", "side", "drill"),
    fields=("flexion_deg", "adduction_deg", "rotation_deg"),
    doc="Hip joint angles of one side (ISB Z-X-Y; internal rotation positive), downsampled to angle_rate_hz.",
)
PELVIS_ANGLES = Measurement(
    "pelvis_angles",
    tags=("athlete", "session", "side", "drill"),
    fields=("tilt_deg", "obliquity_deg", "rotation_deg"),
    doc="Pelvis angles relative to its neutral, at the same instants as the hip_angles points of that side.",
)
REPS = Measurement(
    "reps",
    tags=("athlete", "session", "side", "drill"),
    fields=(
        "index",
        "t_end_unix_s",
        "duration_s",
        "peak_internal_rotation_deg",
        "peak_external_rotation_deg",
        "arc_deg",
        "compensation_count",
        "compensations",
        "score",
    ),
    field_prefixes=("score_",),
    doc="One point per rep at its start time; score components as score_<name>.",
)
SESSIONS = Measurement(
    "sessions",
    tags=("athlete", "session", "side", "drill"),
    fields=("ended_unix_s", "duration_s", "summary_json"),
    doc="One point per session at its start time, rewritten (same point) when the session ends.",
)
SENSOR_STATUS = Measurement(
    "sensor_status",
    tags=("sensor", "athlete"),
    fields=("battery_pct", "loss_fraction", "rate_hz", "connected"),
    doc="Sensor health: battery in percent, packet loss as a fraction 0..1, measured rate, connection.",
)
IMU_RAW = Measurement(
    "imu_raw",
    tags=("sensor", "athlete", "session"),
    fields=(
        "acc_x_m_s2",
        "acc_y_m_s2",
        "acc_z_m_s2",
        "gyr_x_rad_s",
        "gyr_y_rad_s",
        "gyr_z_rad_s",
        "mag_x_uT",
        "mag_y_uT",
        "mag_z_uT",
    ),
    doc="Optional raw IMU samples in the sensor frame (off by default: store_raw_imu).",
)

MEASUREMENTS: dict[str, Measurement] = {
    m.name: m for m in (HIP_ANGLES, PELVIS_ANGLES, REPS, SESSIONS, SENSOR_STATUS, IMU_RAW)
}
"""Every measurement sensorhub writes, by name."""

TAG_KEYS = ("athlete", "session", "side", "drill", "sensor")


def timestamp_ns(t_s: float) -> int:
    """Unix seconds to integer nanoseconds, rounded to whole microseconds (stable point identity)."""
    return round(t_s * 1e6) * 1000


def _point(measurement: Measurement, tags: dict[str, str], t_s: float) -> Point:
    point = Point(measurement.name)
    for key, value in tags.items():
        if value:  # an empty tag value is not allowed in line protocol; absent tag it is
            point.tag(key, value)
    return point.time(timestamp_ns(t_s), WRITE_PRECISION)


def _add_floats(point: Point, values: dict[str, float]) -> int:
    """Add the finite values as float fields; returns how many were added."""
    n = 0
    for name, value in values.items():
        if value is not None and math.isfinite(value):
            point.field(name, float(value))
            n += 1
    return n


def frame_points(frame: AngleFrame) -> Iterator[Point]:
    """The hip_angles and pelvis_angles points of one angle frame."""
    tags = {"athlete": frame.athlete, "session": frame.session, "side": frame.side, "drill": frame.drill}
    hip = _point(HIP_ANGLES, tags, frame.t_s)
    if _add_floats(
        hip,
        {
            "flexion_deg": frame.hip_flexion_deg,
            "adduction_deg": frame.hip_adduction_deg,
            "rotation_deg": frame.hip_rotation_deg,
        },
    ):
        yield hip
    pelvis = _point(PELVIS_ANGLES, tags, frame.t_s)
    if _add_floats(
        pelvis,
        {
            "tilt_deg": frame.pelvis_tilt_deg,
            "obliquity_deg": frame.pelvis_obliquity_deg,
            "rotation_deg": frame.pelvis_rotation_deg,
        },
    ):
        yield pelvis


def rep_point(rep: RepRecord) -> Point:
    tags = {"athlete": rep.athlete, "session": rep.session, "side": rep.side, "drill": rep.drill}
    point = _point(REPS, tags, rep.t_start_s)
    point.field("index", int(rep.index))
    point.field("compensation_count", len(rep.compensations))
    point.field("compensations", ",".join(rep.compensations))
    _add_floats(
        point,
        {
            "t_end_unix_s": rep.t_end_s,
            "duration_s": rep.duration_s,
            "peak_internal_rotation_deg": rep.peak_internal_rotation_deg,
            "peak_external_rotation_deg": rep.peak_external_rotation_deg,
            "arc_deg": rep.arc_deg,
            "score": rep.score,
        },
    )
    _add_floats(point, {f"score_{name}": value for name, value in rep.score_components.items()})
    return point


def session_point(session: SessionRecord) -> Point:
    tags = {"athlete": session.athlete, "session": session.id, "side": session.side, "drill": session.drill}
    point = _point(SESSIONS, tags, session.started)
    point.field("summary_json", json.dumps(dict(session.summary), sort_keys=True, default=str))
    if session.ended is not None:
        _add_floats(point, {"ended_unix_s": session.ended, "duration_s": session.ended - session.started})
    return point


def status_point(status: SensorStatus, t_s: float) -> Point:
    point = _point(SENSOR_STATUS, {"sensor": status.sensor_id, "athlete": status.athlete}, t_s)
    _add_floats(
        point,
        {"battery_pct": status.battery_pct, "loss_fraction": status.loss_fraction, "rate_hz": status.rate_hz},
    )
    point.field("connected", bool(status.connected))
    return point


def imu_points(block: ImuBlock) -> Iterator[Point]:
    samples = block.samples
    tags = {"sensor": block.sensor_id, "athlete": block.athlete, "session": block.session}
    for i in range(len(samples)):
        point = _point(IMU_RAW, tags, block.unix_offset_s + float(samples.t_s[i]))
        values = {
            "acc_x_m_s2": samples.acc_m_s2[i, 0],
            "acc_y_m_s2": samples.acc_m_s2[i, 1],
            "acc_z_m_s2": samples.acc_m_s2[i, 2],
            "gyr_x_rad_s": samples.gyr_rad_s[i, 0],
            "gyr_y_rad_s": samples.gyr_rad_s[i, 1],
            "gyr_z_rad_s": samples.gyr_rad_s[i, 2],
        }
        if samples.mag_uT is not None:
            values |= {
                "mag_x_uT": samples.mag_uT[i, 0],
                "mag_y_uT": samples.mag_uT[i, 1],
                "mag_z_uT": samples.mag_uT[i, 2],
            }
        if _add_floats(point, {k: float(v) for k, v in values.items()}):
            yield point


def athlete_tag_marker(athlete: str) -> str:
    """The ``,athlete=<escaped>`` fragment of a line's series key, as influxdb-client escapes it.

    Used to find an athlete's points in spooled line protocol. influxdb-client sorts tag keys, and
    ``athlete`` sorts before every other tag key of this schema, so in a line's series key the
    fragment directly follows the measurement name and is followed by ``,`` or the end of the key.
    """
    line = Point("m").tag("athlete", athlete).field("x", 1).to_line_protocol()
    series_key = line.split(" x=", 1)[0]
    return series_key[len("m") :]
