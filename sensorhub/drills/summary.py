"""Session summary of one leg's reps, left/right symmetry, and the reps.json document.

``summarize`` turns scored reps into what a coach reads first: the best and typical internal and
external rotation (mean ± SD, and the coefficient of variation of the peaks as consistency), how many
reps counted and how many were compensated, the IR/ER balance and a comparison with the normal
ranges of :mod:`sensorhub.drills.norms`. ``compare_sides`` judges left against right with the
minimal detectable change: a difference below it is within measurement error.

``reps_document`` / ``write_reps_json`` produce the issue's reps.json; writing is the only I/O here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sensorhub.drills.catalog import Direction, DrillDefinition, get_drill
from sensorhub.drills.norms import mdc_deg, normal_range_deg
from sensorhub.drills.reps import Rep, RepIncomplete

Side = Literal["left", "right"]


@dataclass(frozen=True)
class DirectionStats:
    """Peaks of one rotation direction over a session (positive degrees)."""

    direction: str
    n: int
    max_deg: float
    mean_deg: float
    sd_deg: float
    cv_percent: float  # SD / mean of the peaks: lower is more consistent
    normal_deg: float
    percent_of_normal: float  # max relative to the literature norm
    below_normal: bool  # max short of the norm by more than the MDC


@dataclass(frozen=True)
class SessionSummary:
    """What a coach reads first about one leg in one drill."""

    drill: str
    side: str
    reps_count: int
    incomplete_count: int
    compensated_count: int
    internal: DirectionStats | None
    external: DirectionStats | None
    ir_er_ratio: float  # mean internal peak / mean external peak; NaN when either is unmeasured
    mean_arc_deg: float
    mean_score: float
    score_sd: float

    def stats(self, direction: Direction | str) -> DirectionStats | None:
        return self.internal if Direction(direction) is Direction.INTERNAL else self.external


def _stats(direction: Direction, peaks: Sequence[float]) -> DirectionStats | None:
    values = np.array([p for p in peaks if p is not None and math.isfinite(p)], dtype=np.float64)
    if values.size == 0:
        return None
    mean = float(values.mean())
    sd = float(values.std(ddof=1)) if values.size > 1 else 0.0
    normal = normal_range_deg(direction.value)
    mx = float(values.max())
    return DirectionStats(
        direction=direction.value,
        n=int(values.size),
        max_deg=mx,
        mean_deg=mean,
        sd_deg=sd,
        cv_percent=100.0 * sd / mean if mean > 0 else math.nan,
        normal_deg=normal,
        percent_of_normal=100.0 * mx / normal,
        below_normal=mx < normal - mdc_deg(direction.value),
    )


def summarize(
    reps: Sequence[Rep],
    drill: DrillDefinition | str,
    side: str,
    incomplete: Sequence[RepIncomplete] = (),
) -> SessionSummary:
    """Summarise the counted ``reps`` of one leg (``side`` "left"/"right") in ``drill``."""
    drill = get_drill(drill) if isinstance(drill, str) else drill
    ir = _stats(Direction.INTERNAL, [r.peak_internal_rotation for r in reps if r.peak_internal_rotation is not None])
    er = _stats(Direction.EXTERNAL, [r.peak_external_rotation for r in reps if r.peak_external_rotation is not None])
    scores = np.array([r.score for r in reps], dtype=np.float64)
    return SessionSummary(
        drill=drill.name,
        side=side,
        reps_count=len(reps),
        incomplete_count=len(incomplete),
        compensated_count=sum(1 for r in reps if r.compensation),
        internal=ir,
        external=er,
        ir_er_ratio=ir.mean_deg / er.mean_deg if ir and er and er.mean_deg > 0 else math.nan,
        mean_arc_deg=float(np.mean([r.arc for r in reps])) if reps else math.nan,
        mean_score=float(scores.mean()) if scores.size else math.nan,
        score_sd=float(scores.std(ddof=1)) if scores.size > 1 else math.nan,
    )


@dataclass(frozen=True)
class SideDifference:
    """Left vs right for one direction."""

    direction: str
    statistic: str  # "mean" or "max" of the peaks
    left_deg: float
    right_deg: float
    difference_deg: float  # left - right
    symmetry_index_percent: float  # |L - R| / ((L + R) / 2) x 100
    mdc_deg: float
    flagged: bool  # |difference| exceeds the MDC: a real asymmetry, not measurement error


@dataclass(frozen=True)
class SymmetryReport:
    internal: SideDifference | None
    external: SideDifference | None

    @property
    def flagged(self) -> bool:
        return any(d is not None and d.flagged for d in (self.internal, self.external))


def compare_sides(left: SessionSummary, right: SessionSummary, statistic: Literal["mean", "max"] = "mean") -> SymmetryReport:
    """Symmetry of two legs' summaries; a direction is flagged when |L - R| exceeds its MDC (norms.py)."""
    out: dict[str, SideDifference | None] = {}
    for direction in Direction:
        ls, rs = left.stats(direction), right.stats(direction)
        if ls is None or rs is None:
            out[direction.value] = None
            continue
        lv = ls.mean_deg if statistic == "mean" else ls.max_deg
        rv = rs.mean_deg if statistic == "mean" else rs.max_deg
        diff = lv - rv
        mdc = mdc_deg(direction.value)
        out[direction.value] = SideDifference(
            direction=direction.value,
            statistic=statistic,
            left_deg=lv,
            right_deg=rv,
            difference_deg=diff,
            symmetry_index_percent=100.0 * abs(diff) / ((lv + rv) / 2.0) if lv + rv > 0 else math.nan,
            mdc_deg=mdc,
            flagged=abs(diff) > mdc,
        )
    return SymmetryReport(internal=out["internal"], external=out["external"])


def _clean(value: Any) -> Any:
    """JSON has no NaN: map non-finite floats to None, recursively; round to 1/1000 (of a degree, second)."""
    if isinstance(value, float):
        return round(value, 3) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k.value if isinstance(k, Direction) else k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, Direction):
        return value.value
    return value


def rep_record(rep: Rep) -> dict[str, Any]:
    """One rep as the issue's reps.json entry (required keys first)."""
    detail = rep.compensation_detail
    record: dict[str, Any] = {
        "index": rep.index,
        "t_start": rep.t_start,
        "t_end": rep.t_end,
        "peak_internal_rotation": rep.peak_internal_rotation,
        "peak_external_rotation": rep.peak_external_rotation,
        "arc": rep.arc,
        "hold_internal_s": rep.hold_internal_s,
        "hold_external_s": rep.hold_external_s,
        "tempo": dict(rep.tempo),
        "smoothness": rep.smoothness,
        "smoothness_measure": "SPARC (mean over movement phases; closer to 0 is smoother)",
        "compensation": rep.compensation,
        "compensation_detail": {
            "exceeded": list(detail.exceeded),
            "change_deg": detail.change_deg,
            "limit_deg": detail.limit_deg,
            "during": detail.during,
        },
        "score": rep.score,
        "score_components": asdict(rep.score_components),
        "neutral_deg": rep.neutral_deg,
        "hip_flexion_mean_deg": rep.hip_flexion_mean_deg,
        "posture_ok": rep.posture_ok,
        "gap_s": rep.gap_s,
    }
    return _clean(record)  # type: ignore[no-any-return]


def reps_document(reps: Sequence[Rep], summary: SessionSummary, incomplete: Sequence[RepIncomplete] = ()) -> dict[str, Any]:
    """The reps.json document: ``{"reps": [...], "incomplete": [...], "summary": {...}}``."""
    return {
        "reps": [rep_record(r) for r in reps],
        "incomplete": [
            _clean({"t_start": i.t_start, "t_end": i.t_end, "reason": i.reason, "peaks_deg": i.peaks_deg}) for i in incomplete
        ],
        "summary": _clean(asdict(summary)),
    }


def write_reps_json(path: str | Path, reps: Sequence[Rep], summary: SessionSummary, incomplete: Sequence[RepIncomplete] = ()) -> Path:
    """Write reps.json atomically (temporary file, then rename) and return its path."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(reps_document(reps, summary, incomplete), indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
