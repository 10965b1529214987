"""JSON views of the runtime's objects, shared by the REST routers and the WebSocket messages.

Shapes are the ones ``docs/live-api.md`` specifies; every float is finite or None.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sensorhub.drills import DrillDefinition, Rep, RepIncomplete
from sensorhub.drills.summary import rep_record, reps_document, summarize
from sensorhub.motion.calibration import (
    STEP_PROMPTS,
    CalibrationStep,
    LiveCalibrationStatus,
    StepReport,
)
from sensorhub.storage import RepRecord, SessionRecord, WeeklyTrend
from sensorhub.storage.base import SideTrend


def clean(value: Any) -> Any:
    """Non-finite floats to None, recursively (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def drill_json(drill: DrillDefinition) -> dict[str, Any]:
    return {
        "name": drill.name,
        "title": drill.title,
        "posture": drill.posture,
        "cue": drill.cue,
        "directions": [d.value for d in drill.directions],
        "targets": {"internal": drill.target_internal_deg, "external": drill.target_external_deg},
        "hip_flexion_range": list(drill.hip_flexion_range_deg),
        "tempo": {"move_s": drill.tempo.move_s, "hold_s": drill.tempo.hold_s, "tolerance": drill.tempo.tolerance},
        "compensation_limits": {
            "pelvis_tilt": drill.compensation.pelvis_tilt_deg,
            "pelvis_obliquity": drill.compensation.pelvis_obliquity_deg,
            "pelvis_rotation": drill.compensation.pelvis_rotation_deg,
        },
        "source": drill.source,
    }


def rep_json(rep: Rep, t0_unix_s: float | None = None) -> dict[str, Any]:
    """The drills module's reps.json entry, plus Unix start/end times when the clock origin is known."""
    out: dict[str, Any] = rep_record(rep)
    if t0_unix_s is not None:
        out["t_start_unix"] = t0_unix_s + rep.t_start
        out["t_end_unix"] = t0_unix_s + rep.t_end
    return out


def incomplete_json(ev: RepIncomplete) -> dict[str, Any]:
    return clean({"reason": ev.reason, "t_start": ev.t_start, "t_end": ev.t_end, "peaks_deg": dict(ev.peaks_deg)})  # type: ignore[no-any-return]


def stored_rep_json(r: RepRecord) -> dict[str, Any]:
    """A stored rep in the shape of a live one (index 1-based, peaks as positive degrees)."""
    return clean({  # type: ignore[no-any-return]
        "index": r.index + 1,
        "t_start_unix": r.t_start_s,
        "t_end_unix": r.t_end_s,
        "peak_internal_rotation": r.peak_internal_rotation_deg,
        "peak_external_rotation": r.peak_external_rotation_deg,
        "arc": r.arc_deg,
        "compensation": r.compensated,
        "compensations": list(r.compensations),
        # Live reps carry the drills module's detail; a stored rep keeps the exceeded axes only.
        "compensation_detail": {"exceeded": [c for c in r.compensations if c.startswith("pelvis_")]},
        "score": r.score,
        "score_components": dict(r.score_components),
    })


def session_summary(reps: list[Rep], drill: DrillDefinition, side: str, incomplete: list[RepIncomplete]) -> dict[str, Any]:
    """The drills module's session summary as JSON; ``{}`` before the first rep."""
    if not reps and not incomplete:
        return {}
    doc = reps_document(reps, summarize(reps, drill, side, incomplete), incomplete)
    return doc["summary"]  # type: ignore[no-any-return]


def stored_session_json(s: SessionRecord, reps: int | None = None) -> dict[str, Any]:
    return clean({  # type: ignore[no-any-return]
        "id": s.id, "athlete": s.athlete, "side": s.side, "drill": s.drill,
        "started": s.started, "ended": s.ended, "active": False,
        "reps": reps if reps is not None else (s.summary or {}).get("reps_count"),
        "summary": dict(s.summary or {}),
    })


def verdict_json(v: StepReport) -> dict[str, Any]:
    return clean({"step": v.step, "ok": v.ok, "metrics": dict(v.metrics), "advice": v.advice})  # type: ignore[no-any-return]


def calibration_steps_json() -> list[dict[str, Any]]:
    order = [CalibrationStep.STILL1, CalibrationStep.SWINGS, CalibrationStep.BOWS, CalibrationStep.STILL2]
    return [{"step": s.value, "prompt": STEP_PROMPTS[s], "order": i + 1} for i, s in enumerate(order)]


def live_status_json(status: LiveCalibrationStatus) -> dict[str, Any]:
    return {
        "step": status.step.value,
        "progress": round(float(status.progress), 3),
        "prompt": status.prompt,
        "verdicts": [verdict_json(v) for v in status.verdicts],
    }


def _side_trend_json(t: SideTrend | None) -> dict[str, Any] | None:
    if t is None:
        return None
    return clean({  # type: ignore[no-any-return]
        "reps": t.reps,
        "max_internal_rotation": t.max_internal_rotation_deg,
        "max_external_rotation": t.max_external_rotation_deg,
        "max_arc": t.max_arc_deg,
        "compensation_count": t.compensation_count,
    })


def trend_json(w: WeeklyTrend) -> dict[str, Any]:
    return clean({  # type: ignore[no-any-return]
        "week_start": w.week_start.isoformat(),
        "sessions": w.sessions,
        "reps": w.reps,
        "compensation_count": w.compensation_count,
        "left": _side_trend_json(w.left),
        "right": _side_trend_json(w.right),
        "symmetry_pct": w.symmetry_pct,
    })
