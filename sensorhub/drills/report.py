"""The session report figure: one PNG a coach can read without the app.

Top: hip rotation over time (internal up, external down) with every counted rep shaded and numbered,
the ends reached marked with their values, the holds drawn as thick bars, compensated reps in a
warning colour and the literature norms as dashed lines. Middle: the pelvis angles, so the coach sees
what moved in a flagged rep. Bottom: the score of each rep. Right: the session summary.

Rendering uses matplotlib's object API on an Agg canvas (no pyplot global state), so it is safe in a
server thread. Writing the PNG is the only I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from sensorhub.drills.catalog import Direction, DrillDefinition, get_drill
from sensorhub.drills.norms import (
    AAOS_EXTERNAL_ROTATION_DEG,
    AAOS_INTERNAL_ROTATION_DEG,
)
from sensorhub.drills.reps import Rep, RepIncomplete
from sensorhub.drills.summary import SessionSummary, summarize
from sensorhub.drills.table import AngleTable

CLEAN_COLOUR = "#4c9be8"
WARN_COLOUR = "#e8743b"
IR_COLOUR = "#1b7837"
ER_COLOUR = "#762a83"
PELVIS_COLOURS = {"pelvis_tilt": "#1f77b4", "pelvis_obliquity": "#2ca02c", "pelvis_rotation": "#d62728"}
PELVIS_LABELS = {"pelvis_tilt": "tilt", "pelvis_obliquity": "obliquity", "pelvis_rotation": "rotation"}
#: Above this many reps the figure leaves out per-rep values and numbers only about
#: :data:`DENSE_REP_LABELS` reps (compensated ones always), so that labels do not overlap.
MAX_LABELLED_REPS = 40
DENSE_REP_LABELS = 20


def _fmt(value: float | None, unit: str = "°", digits: int = 1) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}f}{unit}"


def _summary_text(summary: SessionSummary, drill: DrillDefinition) -> str:
    lines = [
        f"{drill.title}",
        f"{summary.side} leg",
        "",
        f"reps counted   {summary.reps_count}",
        f"compensated    {summary.compensated_count}",
        f"incomplete     {summary.incomplete_count}",
        f"mean score     {_fmt(summary.mean_score, '', 0)} / 100",
        "",
    ]
    for stats, name in ((summary.internal, "internal"), (summary.external, "external")):
        if stats is None:
            continue
        flag = "\n  ↓ short of the norm by > MDC" if stats.below_normal else ""
        lines += [
            f"{name.upper()} rotation",
            f"  max          {_fmt(stats.max_deg)}",
            f"  mean ± SD    {stats.mean_deg:.1f} ± {stats.sd_deg:.1f}°",
            f"  consistency  CV {_fmt(stats.cv_percent, '%')}",
            f"  norm (AAOS)  {stats.normal_deg:.0f}° ({stats.percent_of_normal:.0f}%){flag}",
            "",
        ]
    if math.isfinite(summary.ir_er_ratio):
        lines.append(f"IR/ER balance  {summary.ir_er_ratio:.2f}")
        lines.append(f"  (norm {AAOS_INTERNAL_ROTATION_DEG / AAOS_EXTERNAL_ROTATION_DEG:.2f})")
    lines += ["", "peaks are measured from", "the resting neutral", "before each rep"]
    return "\n".join(lines)


def render_report(
    angles: AngleTable,
    reps: Sequence[Rep],
    drill: DrillDefinition | str,
    side: str,
    path: str | Path,
    *,
    summary: SessionSummary | None = None,
    incomplete: Sequence[RepIncomplete] = (),
    t_range: tuple[float, float] | None = None,
    dpi: int = 110,
) -> Path:
    """Draw the session report of one leg in ``drill`` to the PNG ``path`` and return the path.

    ``t_range`` limits the time axis; by default it spans the reps with a few seconds either side.
    """
    drill = get_drill(drill) if isinstance(drill, str) else drill
    summary = summary or summarize(reps, drill, side, incomplete)
    path = Path(path)
    if t_range is None:
        if reps:
            t_range = (reps[0].t_start - 3.0, reps[-1].t_end + 3.0)
        else:
            t_range = (float(angles.t[0]), float(angles.t[-1])) if len(angles) else (0.0, 1.0)
    view = angles.slice_time(*t_range)

    # Fixed margins rather than layout="constrained": the figure's size and furniture never change,
    # and the constrained-layout solver measured every text twice (a third of the rendering time).
    fig = Figure(figsize=(15, 9), dpi=dpi)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(3, 2, width_ratios=(4.0, 1.3), height_ratios=(3.2, 1.5, 1.1),
                            left=0.055, right=0.995, bottom=0.055, top=0.95, wspace=0.03, hspace=0.32)
    ax_rot = fig.add_subplot(grid[0, 0])
    ax_pel = fig.add_subplot(grid[1, 0], sharex=ax_rot)
    ax_score = fig.add_subplot(grid[2, 0])
    ax_text = fig.add_subplot(grid[:, 1])
    fig.suptitle(
        f"{drill.title} — {side} hip — {summary.reps_count} reps, {summary.compensated_count} with compensation",
        fontsize=14,
        fontweight="bold",
    )

    # --- hip rotation
    ax_rot.plot(view.t, view.hip_rotation, color="black", lw=1.4, label="hip rotation")
    ax_rot.axhline(0.0, color="grey", lw=0.8)
    for direction, norm, colour in ((Direction.INTERNAL, AAOS_INTERNAL_ROTATION_DEG, IR_COLOUR), (Direction.EXTERNAL, AAOS_EXTERNAL_ROTATION_DEG, ER_COLOUR)):
        if drill.measures(direction):
            ax_rot.axhline(direction.sign * norm, color=colour, lw=1.0, ls="--", alpha=0.7)
    finite = view.hip_rotation[np.isfinite(view.hip_rotation)]
    top = max(AAOS_INTERNAL_ROTATION_DEG, float(finite.max()) if finite.size else 0.0) + 30.0  # room for labels
    bottom = min(-AAOS_EXTERNAL_ROTATION_DEG, float(finite.min()) if finite.size else 0.0) - 22.0  # room for the legend
    ax_rot.set_ylim(bottom, top)
    # Many reps (a long session) would bury the curve under labels: then only every k-th rep is
    # numbered (compensated ones always), and the end-range values and per-bar scores are left out.
    dense = len(reps) > MAX_LABELLED_REPS
    label_every = math.ceil(len(reps) / DENSE_REP_LABELS) if dense else 1
    for ax in (ax_rot, ax_pel):
        for flagged in (False, True):
            spans = [[(r.t_start, 0.0), (r.t_start, 1.0), (r.t_end, 1.0), (r.t_end, 0.0)] for r in reps if r.compensation is flagged]
            if spans:
                ax.add_collection(PolyCollection(spans, transform=ax.get_xaxis_transform(), facecolors=WARN_COLOUR if flagged else CLEAN_COLOUR,
                                                 alpha=0.22 if flagged else 0.12, linewidths=0))
    for k, rep in enumerate(reps):
        if rep.compensation or k % label_every == 0:
            label = f"{rep.index}" + ("  ⚠" if rep.compensation else "")
            mid = (rep.t_start + rep.t_end) / 2
            ax_rot.text(mid, top - 2.0, label, ha="center", va="top", fontsize=9 if dense else 12,
                        fontweight="bold", color=WARN_COLOUR if rep.compensation else "#1f4e79")
            if rep.compensation and not dense:
                detail = rep.compensation_detail
                moved = "\n".join(f"{PELVIS_LABELS[a]} {detail.change_deg[a]:.0f}°" for a in detail.exceeded)
                ax_rot.text(mid, top - 7.0, f"pelvis moved:\n{moved}", ha="center", va="top", fontsize=8, color=WARN_COLOUR, linespacing=1.1)
    for direction, c in ((Direction.INTERNAL, IR_COLOUR), (Direction.EXTERNAL, ER_COLOUR)):
        halves = [h for rep in reps for h in rep.halves if h.direction is direction]
        if not halves:
            continue
        ax_rot.add_collection(LineCollection([[(h.t_end_range, h.end_range_deg), (h.t_hold_end, h.end_range_deg)] for h in halves],
                                             colors=c, linewidths=5, alpha=0.55, capstyle="butt"))
        ax_rot.plot([h.t_peak for h in halves], [h.end_range_deg for h in halves], ls="none",
                    marker="^" if direction.sign > 0 else "v", color=c, ms=5 if dense else 7)
        if not dense:
            s = direction.sign
            for h in halves:
                ax_rot.annotate(f"{h.peak_deg:.0f}°", xy=(h.t_peak, h.end_range_deg), xytext=(0, 7 * s), textcoords="offset points",
                                ha="center", va="bottom" if s > 0 else "top", fontsize=9, color=c, fontweight="bold")
    for inc in incomplete:
        if t_range[0] <= inc.t_start <= t_range[1]:
            ax_rot.axvspan(inc.t_start, inc.t_end, facecolor="none", edgecolor="grey", hatch="//", lw=0)
    ax_rot.set_ylabel("hip rotation (°)\n← external   internal →")
    ax_rot.grid(alpha=0.3)
    legend: list[Artist] = [
        Patch(color=CLEAN_COLOUR, alpha=0.3, label="rep"),
        Patch(color=WARN_COLOUR, alpha=0.45, label="rep with pelvis compensation"),
        Patch(color=IR_COLOUR, alpha=0.55, label="hold at internal end"),
        Patch(color=ER_COLOUR, alpha=0.55, label="hold at external end"),
        Line2D([], [], color="grey", ls="--", label=f"AAOS normal: {AAOS_INTERNAL_ROTATION_DEG:.0f}° IR / {AAOS_EXTERNAL_ROTATION_DEG:.0f}° ER"),
    ]
    if incomplete:
        legend.append(Patch(facecolor="none", edgecolor="grey", hatch="//", label="incomplete (not counted)"))
    ax_rot.legend(handles=legend, loc="lower left", fontsize=8.5, ncol=3, framealpha=0.9)
    ax_rot.tick_params(labelbottom=False)

    # --- pelvis
    any_pelvis = False
    for axis, colour in PELVIS_COLOURS.items():
        values = getattr(view, axis)
        if np.isfinite(values).any():
            any_pelvis = True
            ax_pel.plot(view.t, values, color=colour, lw=1.1, label=f"pelvis {PELVIS_LABELS[axis]}")
    if any_pelvis and reps:
        # Scale to the drill itself, not to the calibration movements before it.
        inside = view.slice_time(reps[0].t_start - 1.0, reps[-1].t_end + 1.0)
        stacked = np.concatenate([getattr(inside, a) for a in PELVIS_COLOURS])
        stacked = stacked[np.isfinite(stacked)]
        if stacked.size:
            ax_pel.set_ylim(float(stacked.min()) - 3.0, float(stacked.max()) + 3.0)
    if any_pelvis:
        ax_pel.legend(loc="upper left", fontsize=8.5, ncol=3, framealpha=0.9)
    else:
        ax_pel.text(0.5, 0.5, "no pelvis angles", transform=ax_pel.transAxes, ha="center", va="center", color="grey")
    limits = drill.compensation
    ax_pel.set_ylabel("pelvis (°)")
    ax_pel.set_xlabel("time (s)")
    ax_pel.set_title(
        f"pelvis — flagged when it moves more than {limits.pelvis_rotation_deg:.0f}° rotation / "
        f"{limits.pelvis_obliquity_deg:.0f}° obliquity / {limits.pelvis_tilt_deg:.0f}° tilt from its start while the hip rotates",
        fontsize=9.5, loc="left",
    )
    ax_pel.grid(alpha=0.3)
    ax_pel.set_xlim(*t_range)

    # --- scores
    if reps:
        idx = [r.index for r in reps]
        colours = [WARN_COLOUR if r.compensation else CLEAN_COLOUR for r in reps]
        if dense:
            ax_score.vlines(idx, 0.0, [r.score for r in reps], colors=colours, linewidths=max(1.0, 600.0 / len(reps)))
            ax_score.set_xlim(0.0, idx[-1] + 1.0)
            ax_score.set_xlabel("rep")
        else:
            ax_score.bar(idx, [r.score for r in reps], color=colours)
            for r in reps:
                ax_score.text(r.index, r.score + 2, f"{r.score:.0f}", ha="center", va="bottom", fontsize=9)
            ax_score.set_xticks(idx, [f"rep {i}" for i in idx])
    ax_score.set_ylim(0, 115)
    ax_score.set_ylabel("score (0–100)")
    ax_score.set_title("rep score: range 40 + hold 20 + tempo 15 + control 25 − compensation penalty", fontsize=9.5, loc="left")
    ax_score.grid(axis="y", alpha=0.3)

    # --- summary box
    ax_text.axis("off")
    ax_text.text(0.02, 0.98, _summary_text(summary, drill), transform=ax_text.transAxes, va="top", ha="left",
                 family="monospace", fontsize=10.5, bbox={"boxstyle": "round,pad=0.6", "facecolor": "#f4f6f8", "edgecolor": "#b0b8c0"})

    # zlib level 1: a fifth larger file, encoding several times faster than the default level 6.
    fig.savefig(path, dpi=dpi, pil_kwargs={"compress_level": 1})
    return path
