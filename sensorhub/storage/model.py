"""The records the storage layer keeps: small immutable dataclasses, no I/O.

The live hub produces these; :mod:`sensorhub.storage` stores them and gives them back from history
queries. Units are in the names. Times are Unix seconds (UTC, float) so a record means the same thing
on any store and any machine; the hub converts its monotonic session clock before handing records
over.

Angle conventions are those of ``docs/architecture.md`` (ISB / Grood & Suntay, femur relative to
pelvis, internal rotation positive on both sides). In :class:`RepRecord` both peak rotations are
*magnitudes* in degrees (internal 35° and external 45° are typical), because that is how coaches read
them; :meth:`RepRecord.from_rep_dict` converts a signed external peak to its magnitude.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sensorhub.samples import ImuSamples

SIDES = ("left", "right", "both")


@dataclass(frozen=True, slots=True)
class AngleFrame:
    """Hip and pelvis angles of one side at one instant. NaN marks an angle that is not available."""

    t_s: float
    """Unix time, seconds."""
    athlete: str
    session: str
    side: str
    """"left" or "right": the hip these angles belong to."""
    drill: str
    hip_flexion_deg: float
    hip_adduction_deg: float
    hip_rotation_deg: float
    """Internal rotation positive."""
    pelvis_tilt_deg: float = math.nan
    pelvis_obliquity_deg: float = math.nan
    pelvis_rotation_deg: float = math.nan


@dataclass(frozen=True, slots=True)
class RepRecord:
    """One repetition of a drill with its scores (one row of the reps table)."""

    athlete: str
    session: str
    side: str
    drill: str
    index: int
    """0-based position of the rep within its session and side (the drills module counts from 1)."""
    t_start_s: float
    """Unix time of the rep's start, seconds."""
    t_end_s: float
    peak_internal_rotation_deg: float
    """Largest internal rotation reached in the rep (magnitude, degrees)."""
    peak_external_rotation_deg: float
    """Largest external rotation reached in the rep (magnitude, degrees)."""
    arc_deg: float
    """Total rotation arc of the rep, degrees."""
    compensations: tuple[str, ...] = ()
    """Names of the compensation events detected during the rep; empty when the rep was clean."""
    score: float = math.nan
    """Overall rep score as the drills module defines it (0-100)."""
    score_components: Mapping[str, float] = field(default_factory=dict)
    """Named parts of the score (e.g. ``{"range": 80.0, "tempo": 95.0}``)."""

    @property
    def duration_s(self) -> float:
        return self.t_end_s - self.t_start_s

    @property
    def compensated(self) -> bool:
        return bool(self.compensations)

    @classmethod
    def from_rep_dict(
        cls, rep: Mapping[str, Any], *, athlete: str, session: str, side: str, drill: str, t0_unix_s: float = 0.0
    ) -> RepRecord:
        """Build a record from a rep dict of :mod:`sensorhub.drills` (``drills.summary.rep_record``).

        Uses ``index`` (1-based there, 0-based here), ``t_start, t_end, peak_internal_rotation,
        peak_external_rotation, arc, compensation, score`` and the optional ``score_components``
        mapping (numeric entries) and ``compensation_detail.exceeded``. ``t_start``/``t_end`` are seconds on the session clock;
        ``t0_unix_s`` is the Unix time of that clock's zero (leave 0 when they are Unix times already).
        A peak that is None (the drill does not measure that direction) becomes NaN. ``compensation``
        may be a bool (True: the names in ``compensation_detail.exceeded``, else "compensation"), a
        name, or a list of names or of event dicts with a ``kind``/``name``/``type`` key.
        """
        components: dict[str, float] = {}
        nested = rep.get("score_components")
        if isinstance(nested, Mapping):
            components = {
                str(k): float(v) for k, v in nested.items() if isinstance(v, int | float) and not isinstance(v, bool)
            }
        compensations = _compensation_names(rep.get("compensation"))
        detail = rep.get("compensation_detail")
        if compensations == ("compensation",) and isinstance(detail, Mapping) and detail.get("exceeded"):
            compensations = tuple(str(name) for name in detail["exceeded"])
        return cls(
            athlete=athlete,
            session=session,
            side=side,
            drill=drill,
            index=int(rep["index"]) - 1,  # drills number reps from 1
            t_start_s=t0_unix_s + float(rep["t_start"]),
            t_end_s=t0_unix_s + float(rep["t_end"]),
            peak_internal_rotation_deg=abs(_float(rep.get("peak_internal_rotation"))),
            peak_external_rotation_deg=abs(_float(rep.get("peak_external_rotation"))),
            arc_deg=abs(_float(rep.get("arc"))),
            compensations=compensations,
            score=_float(rep.get("score")),
            score_components=components,
        )


def _float(value: Any) -> float:
    """A number, or NaN for None (JSON's stand-in for NaN)."""
    return math.nan if value is None else float(value)


def _compensation_names(value: Any) -> tuple[str, ...]:
    if value is None or value is False:
        return ()
    if value is True:
        return ("compensation",)
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, Mapping):
        return (str(value.get("kind") or value.get("name") or value.get("type") or "compensation"),)
    names: list[str] = []
    for item in value:
        names.extend(_compensation_names(item))
    return tuple(names)


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One session of one drill by one athlete. Written at start (``ended`` None) and again at the end."""

    id: str
    athlete: str
    drill: str
    side: str
    started: float
    """Unix time, seconds."""
    ended: float | None = None
    """Unix time, seconds; None while the session runs."""
    summary: Mapping[str, Any] = field(default_factory=dict)
    """The drills module's session summary (JSON-serialisable)."""

    @property
    def duration_s(self) -> float | None:
        return None if self.ended is None else self.ended - self.started


@dataclass(frozen=True, slots=True)
class SensorStatus:
    """Health of one sensor at one instant."""

    sensor_id: str
    battery_pct: float
    loss_fraction: float
    """Fraction of packets lost (0..1) over the hub's reporting window."""
    rate_hz: float
    """Measured sample rate."""
    connected: bool
    t_s: float | None = None
    """Unix time, seconds; None means "now" (stamped when the store accepts the record)."""
    athlete: str = ""
    """The athlete wearing the sensor, when known ("" otherwise)."""


@dataclass(frozen=True, slots=True)
class ImuBlock:
    """Raw samples of one sensor (optional storage; off by default).

    Sample ``i`` happened at Unix time ``unix_offset_s + samples.t_s[i]``.
    """

    sensor_id: str
    athlete: str
    session: str
    samples: ImuSamples
    unix_offset_s: float
