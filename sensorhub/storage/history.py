"""History computations over stored records: weekly trends and CSV export. Pure functions, no I/O.

The stores call :func:`weekly_trends` with the sessions and reps they read; the service calls
:func:`angles_csv` / :func:`reps_csv` (or :func:`session_angles_csv` / :func:`session_reps_csv` with a
store) for the download buttons.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from sensorhub.storage.base import SideTrend, WeeklyTrend
from sensorhub.storage.model import AngleFrame, RepRecord, SessionRecord

if TYPE_CHECKING:
    from sensorhub.storage.base import Store


def week_start(t_unix_s: float, tz: dt.tzinfo = dt.UTC) -> dt.date:
    """Monday of the ISO week containing ``t_unix_s`` in time zone ``tz``."""
    day = dt.datetime.fromtimestamp(t_unix_s, tz).date()
    return day - dt.timedelta(days=day.weekday())


def _max(values: Iterable[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return max(finite) if finite else math.nan


def _side_trend(reps: Sequence[RepRecord]) -> SideTrend:
    return SideTrend(
        reps=len(reps),
        max_internal_rotation_deg=_max(r.peak_internal_rotation_deg for r in reps),
        max_external_rotation_deg=_max(r.peak_external_rotation_deg for r in reps),
        max_arc_deg=_max(r.arc_deg for r in reps),
        compensation_count=sum(1 for r in reps if r.compensated),
    )


def symmetry_pct(left_arc_deg: float, right_arc_deg: float) -> float | None:
    """100 x smaller / larger arc (100 = symmetric); None when either side is missing or zero."""
    if math.isnan(left_arc_deg) or math.isnan(right_arc_deg):
        return None
    larger = max(left_arc_deg, right_arc_deg)
    if larger <= 0:
        return None
    return 100.0 * min(left_arc_deg, right_arc_deg) / larger


def weekly_trends(
    sessions: Iterable[SessionRecord], reps: Iterable[RepRecord], tz: dt.tzinfo = dt.UTC
) -> list[WeeklyTrend]:
    """One :class:`WeeklyTrend` per week that has sessions or reps, oldest first.

    Sessions are counted in the week they started; reps in the week of their start. Per side: the best
    internal and external rotation and arc of the week, and the number of reps with a compensation.
    """
    sessions_by_week: dict[dt.date, set[str]] = defaultdict(set)
    reps_by_week: dict[dt.date, dict[str, list[RepRecord]]] = defaultdict(lambda: defaultdict(list))
    for session in sessions:
        sessions_by_week[week_start(session.started, tz)].add(session.id)
    for rep in reps:
        week = week_start(rep.t_start_s, tz)
        reps_by_week[week][rep.side].append(rep)
        sessions_by_week[week].add(rep.session)
    trends = []
    for week in sorted(sessions_by_week):
        by_side = reps_by_week.get(week, {})
        left = _side_trend(by_side["left"]) if by_side.get("left") else None
        right = _side_trend(by_side["right"]) if by_side.get("right") else None
        all_reps = [r for side_reps in by_side.values() for r in side_reps]
        trends.append(
            WeeklyTrend(
                week_start=week,
                sessions=len(sessions_by_week[week]),
                reps=len(all_reps),
                compensation_count=sum(1 for r in all_reps if r.compensated),
                left=left,
                right=right,
                symmetry_pct=symmetry_pct(left.max_arc_deg, right.max_arc_deg) if left and right else None,
            )
        )
    return trends


def trend_window(weeks: int, until: float | None, tz: dt.tzinfo) -> tuple[float, float]:
    """Unix-seconds window [since, until) covering the ``weeks`` ISO weeks that end with ``until``'s week."""
    end = dt.datetime.now(tz) if until is None else dt.datetime.fromtimestamp(until, tz)
    monday = end.date() - dt.timedelta(days=end.date().weekday())
    start = dt.datetime.combine(monday - dt.timedelta(weeks=weeks - 1), dt.time(), tz)
    stop = dt.datetime.combine(monday + dt.timedelta(weeks=1), dt.time(), tz)
    return start.timestamp(), stop.timestamp()


def _fmt(value: float) -> str:
    return "" if math.isnan(value) else repr(round(value, 6))


ANGLE_COLUMNS = (
    "time_unix_s",
    "time_utc",
    "athlete",
    "session",
    "side",
    "drill",
    "hip_flexion_deg",
    "hip_adduction_deg",
    "hip_rotation_deg",
    "pelvis_tilt_deg",
    "pelvis_obliquity_deg",
    "pelvis_rotation_deg",
)

REP_COLUMNS = (
    "index",
    "side",
    "t_start_unix_s",
    "t_end_unix_s",
    "duration_s",
    "peak_internal_rotation_deg",
    "peak_external_rotation_deg",
    "arc_deg",
    "compensations",
    "score",
    "score_components_json",
    "athlete",
    "session",
    "drill",
)


def _utc(t_s: float) -> str:
    return dt.datetime.fromtimestamp(t_s, dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def angles_csv(frames: Iterable[AngleFrame]) -> str:
    """CSV text (header + one row per frame, empty cell for a missing angle)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ANGLE_COLUMNS)
    for f in frames:
        writer.writerow(
            [
                f"{f.t_s:.6f}",
                _utc(f.t_s),
                f.athlete,
                f.session,
                f.side,
                f.drill,
                _fmt(f.hip_flexion_deg),
                _fmt(f.hip_adduction_deg),
                _fmt(f.hip_rotation_deg),
                _fmt(f.pelvis_tilt_deg),
                _fmt(f.pelvis_obliquity_deg),
                _fmt(f.pelvis_rotation_deg),
            ]
        )
    return out.getvalue()


def reps_csv(reps: Iterable[RepRecord]) -> str:
    """CSV text of a reps table; compensations joined with ``;``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REP_COLUMNS)
    for r in reps:
        writer.writerow(
            [
                r.index,
                r.side,
                f"{r.t_start_s:.6f}",
                f"{r.t_end_s:.6f}",
                _fmt(r.duration_s),
                _fmt(r.peak_internal_rotation_deg),
                _fmt(r.peak_external_rotation_deg),
                _fmt(r.arc_deg),
                ";".join(r.compensations),
                _fmt(r.score),
                json.dumps(dict(r.score_components), sort_keys=True),
                r.athlete,
                r.session,
                r.drill,
            ]
        )
    return out.getvalue()


def session_angles_csv(store: Store, session_id: str) -> str:
    """CSV of a stored session's angle frames."""
    return angles_csv(store.angles(session_id))


def session_reps_csv(store: Store, session_id: str) -> str:
    """CSV of a stored session's reps."""
    return reps_csv(store.reps(session_id))
