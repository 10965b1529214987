"""The catalog of hip-rotation drills: posture, measured direction(s), targets and compensation limits.

One frozen :class:`DrillDefinition` per drill, taken from the two seed articles (the standing heel and
toe pivots, seated and supine bent-knee rotations, long-sitting straight-leg rotations, side-lying
isolated rotations, 90/90, lunge with the back leg extended, tempo squat and split squat). The rep
detector, the scorer and the report read everything drill-specific from here; nothing else in
:mod:`sensorhub.drills` branches on a drill's name.

Angles are in degrees, times in seconds. Hip rotation follows docs/architecture.md: internal rotation
positive on either side. Range targets default to the AAOS normal values quoted in
:mod:`sensorhub.drills.norms` (internal ~35°, external ~45°) where the drill is a plain rotation of
the hip; drills that load the hip (squats, lunges) get smaller, provisional targets that a coach is
expected to adjust.

This module does no I/O and no signal processing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from sensorhub.drills.norms import (
    AAOS_EXTERNAL_ROTATION_DEG,
    AAOS_INTERNAL_ROTATION_DEG,
)
from sensorhub.errors import ConfigurationError


class Direction(str, Enum):
    """A direction of hip rotation; ``sign`` is its sign in the hip_rotation angle."""

    INTERNAL = "internal"
    EXTERNAL = "external"

    @property
    def sign(self) -> int:
        return 1 if self is Direction.INTERNAL else -1


class UnknownDrillError(ConfigurationError, KeyError):
    """``get_drill`` was given a name that is not in the catalog."""

    def __str__(self) -> str:  # KeyError would quote the message; show it as written
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class CompensationLimits:
    """How far the pelvis may move away from where it was at the rep's start while the hip rotates.

    Each limit is a peak absolute change in degrees of the pelvis's own angle relative to its
    standing neutral (tilt: sagittal, about the pelvis Z axis; obliquity: frontal, about X;
    rotation: transverse, about Y). See docs/drills.md for how the defaults were chosen.
    """

    pelvis_tilt_deg: float = 6.0
    pelvis_obliquity_deg: float = 4.0
    pelvis_rotation_deg: float = 6.0


@dataclass(frozen=True)
class TempoTarget:
    """Tempo of one half-rep: the move out, the hold at end range, the move back (seconds).

    A phase inside ``[target * (1 - tolerance), target * (1 + tolerance)]`` scores full marks; the
    hold only has a lower bound (holding longer is never penalised).
    """

    move_s: float = 1.0
    hold_s: float = 1.0
    tolerance: float = 0.6


@dataclass(frozen=True)
class DrillDefinition:
    """One drill, as a row of the catalog.

    ``directions`` lists the rotation directions a rep consists of, in the order they are performed.
    A drill with two directions is a *combined* drill: ONE rep is one full cycle
    neutral -> first end -> neutral -> second end -> neutral.
    """

    name: str
    title: str
    posture: str
    hip_flexion_range_deg: tuple[float, float]
    directions: tuple[Direction, ...]
    target_internal_deg: float | None
    target_external_deg: float | None
    tempo: TempoTarget
    compensation: CompensationLimits
    cue: str
    source: str
    # An excursion must reach this far from neutral to count as a half-rep (else: aborted).
    min_peak_deg: float = 10.0
    # Longest pause at neutral between the two halves of a combined rep.
    max_mid_pause_s: float = 4.0

    @property
    def combined(self) -> bool:
        return len(self.directions) == 2

    def target_deg(self, direction: Direction) -> float | None:
        """Range target of ``direction`` in positive degrees, or None when it is not measured."""
        return self.target_internal_deg if direction is Direction.INTERNAL else self.target_external_deg

    def measures(self, direction: Direction) -> bool:
        return direction in self.directions


_IR = Direction.INTERNAL
_ER = Direction.EXTERNAL
_SEED_ZAICHIK = "seed 001 (Zaichik, step-by-step guide to hip internal and external rotation)"
_SEED_ATHLETE = "seed 000 (hip internal and external rotation for squatting and athletic movements)"
_DEFAULT_LIMITS = CompensationLimits()
# When the trunk is loaded in standing drills the pelvis sways more; allow a little more before flagging.
_LOADED_LIMITS = CompensationLimits(pelvis_tilt_deg=8.0, pelvis_obliquity_deg=5.0, pelvis_rotation_deg=8.0)

_DRILLS: tuple[DrillDefinition, ...] = (
    DrillDefinition(
        name="seated_rotation",
        title="Seated rotation (bent knee)",
        posture="sitting on a chair, hip flexed about 90°, knee bent, foot hovering; thigh kept still",
        hip_flexion_range_deg=(65.0, 110.0),
        directions=(_IR, _ER),
        target_internal_deg=AAOS_INTERNAL_ROTATION_DEG,
        target_external_deg=AAOS_EXTERNAL_ROTATION_DEG,
        tempo=TempoTarget(move_s=1.0, hold_s=1.0),
        compensation=_DEFAULT_LIMITS,
        cue="foot out to the side for internal, in across for external; keep the pelvis square on the chair",
        source=f"{_SEED_ZAICHIK} #9-10",
    ),
    DrillDefinition(
        name="standing_rotation",
        title="Standing heel pivot (combined)",
        posture="standing tall, hip extended, toes lifted, pivot on the heel",
        hip_flexion_range_deg=(-15.0, 20.0),
        directions=(_IR, _ER),
        target_internal_deg=AAOS_INTERNAL_ROTATION_DEG,
        target_external_deg=AAOS_EXTERNAL_ROTATION_DEG,
        tempo=TempoTarget(move_s=1.0, hold_s=1.0),
        compensation=_DEFAULT_LIMITS,
        cue="toes in toward the other foot, then out to the side; the pelvis faces forward throughout",
        source=f"{_SEED_ZAICHIK} #1-3",
    ),
    DrillDefinition(
        name="standing_toe_pivot",
        title="Standing toe pivot (combined)",
        posture="standing tall, hip extended, heel lifted, pivot on the toes",
        hip_flexion_range_deg=(-15.0, 20.0),
        directions=(_IR, _ER),
        target_internal_deg=AAOS_INTERNAL_ROTATION_DEG,
        target_external_deg=AAOS_EXTERNAL_ROTATION_DEG,
        tempo=TempoTarget(move_s=1.0, hold_s=1.0),
        compensation=_DEFAULT_LIMITS,
        cue="heel out for internal, heel forward for external",
        source=f"{_SEED_ZAICHIK} #4-5",
    ),
    DrillDefinition(
        name="supine_rotation",
        title="Supine bent-hip, bent-knee rotation",
        posture="lying on the back, hip and knee flexed about 90°",
        hip_flexion_range_deg=(65.0, 110.0),
        directions=(_IR, _ER),
        target_internal_deg=AAOS_INTERNAL_ROTATION_DEG,
        target_external_deg=AAOS_EXTERNAL_ROTATION_DEG,
        tempo=TempoTarget(move_s=1.0, hold_s=1.0),
        compensation=_DEFAULT_LIMITS,
        cue="knee stays over the hip; foot moves out (internal) and across (external)",
        source=f"{_SEED_ZAICHIK} #13-14",
    ),
    DrillDefinition(
        name="long_sitting_rotation",
        title="Long-sitting straight-leg rotation",
        posture="sitting on the floor, legs straight in front, trunk upright (hip flexed about 90°)",
        hip_flexion_range_deg=(70.0, 110.0),
        directions=(_IR, _ER),
        target_internal_deg=AAOS_INTERNAL_ROTATION_DEG,
        target_external_deg=AAOS_EXTERNAL_ROTATION_DEG,
        tempo=TempoTarget(move_s=1.0, hold_s=1.0),
        compensation=_DEFAULT_LIMITS,
        cue="toes toward each other, then drop them out to the sides; heels stay put",
        source=f"{_SEED_ZAICHIK} #6-8",
    ),
    DrillDefinition(
        name="side_lying_internal",
        title="Side-lying isolated internal rotation",
        posture="lying on the side, top knee bent 90°, foot lifts toward the ceiling",
        hip_flexion_range_deg=(-10.0, 60.0),
        directions=(_IR,),
        target_internal_deg=AAOS_INTERNAL_ROTATION_DEG,
        target_external_deg=None,
        tempo=TempoTarget(move_s=1.5, hold_s=2.0),
        compensation=_DEFAULT_LIMITS,
        cue="small range is normal; do not roll the pelvis back",
        source=f"{_SEED_ZAICHIK} #19",
    ),
    DrillDefinition(
        name="side_lying_external",
        title="Side-lying isolated external rotation",
        posture="lying on the side, bottom knee bent 90°, foot lifts off the floor",
        hip_flexion_range_deg=(-10.0, 60.0),
        directions=(_ER,),
        target_internal_deg=None,
        target_external_deg=AAOS_EXTERNAL_ROTATION_DEG,
        tempo=TempoTarget(move_s=1.5, hold_s=2.0),
        compensation=_DEFAULT_LIMITS,
        cue="the floor stabilises the pelvis; keep it stacked",
        source=f"{_SEED_ZAICHIK} #20; {_SEED_ATHLETE} (side-lying rotations, clamshells)",
    ),
    DrillDefinition(
        name="hip_90_90",
        title="90/90 switch (measured leg external, then internal)",
        posture="sitting on the floor, both hips and knees at about 90°, knees switch side to side",
        hip_flexion_range_deg=(50.0, 110.0),
        directions=(_ER, _IR),
        target_internal_deg=AAOS_INTERNAL_ROTATION_DEG,
        target_external_deg=AAOS_EXTERNAL_ROTATION_DEG,
        tempo=TempoTarget(move_s=1.5, hold_s=2.0),
        compensation=_LOADED_LIMITS,
        cue="sit tall; let the hips turn, not the trunk",
        source=f"{_SEED_ATHLETE} (90/90 hip stretch, active circles and isometrics)",
        max_mid_pause_s=6.0,
    ),
    DrillDefinition(
        name="lunge_rotation",
        title="Lunge, back leg extended: rotation of the back hip",
        posture="lunge stance, back leg straight, hip extended",
        hip_flexion_range_deg=(-30.0, 10.0),
        directions=(_IR, _ER),
        target_internal_deg=25.0,
        target_external_deg=30.0,
        tempo=TempoTarget(move_s=1.0, hold_s=1.0),
        compensation=_LOADED_LIMITS,
        cue="outer border of the foot to the floor (internal), inner border (external)",
        source=f"{_SEED_ZAICHIK} #17-18",
    ),
    DrillDefinition(
        name="tempo_squat",
        title="Tempo squat with external-rotation cue",
        posture="standing to deep squat and back; hip flexion varies through the rep",
        hip_flexion_range_deg=(0.0, 120.0),
        directions=(_ER,),
        target_internal_deg=None,
        target_external_deg=20.0,
        tempo=TempoTarget(move_s=3.0, hold_s=1.0, tolerance=0.5),
        compensation=_LOADED_LIMITS,
        cue="knees track over the toes as the hips turn out on the way down",
        source=f"{_SEED_ATHLETE} (tempo squats)",
        min_peak_deg=8.0,
    ),
    DrillDefinition(
        name="split_squat",
        title="Split squat with a controlled hip turn",
        posture="split stance, front hip flexed through the rep",
        hip_flexion_range_deg=(0.0, 110.0),
        directions=(_IR, _ER),
        target_internal_deg=20.0,
        target_external_deg=25.0,
        tempo=TempoTarget(move_s=1.5, hold_s=1.0),
        compensation=_LOADED_LIMITS,
        cue="deliberate hip turn each rep; pelvis stays level",
        source=f"{_SEED_ATHLETE} (split squats and step-ups with a deliberate hip turn)",
        min_peak_deg=8.0,
    ),
)

CATALOG: dict[str, DrillDefinition] = {drill.name: drill for drill in _DRILLS}


def drill_names() -> tuple[str, ...]:
    """Names of every drill in the catalog, in catalog order."""
    return tuple(CATALOG)


def get_drill(name: str) -> DrillDefinition:
    """The drill called ``name``; raises :class:`UnknownDrillError` (a ConfigurationError) listing valid names."""
    try:
        return CATALOG[name]
    except KeyError:
        raise UnknownDrillError(
            f"unknown drill {name!r}; valid drills: {', '.join(drill_names())}"
        ) from None
