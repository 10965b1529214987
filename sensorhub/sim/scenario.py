"""Scripted sessions: the calibration protocol followed by a hip-rotation drill, with per-rep variation.

A scenario is the athlete's whole choreography as keyframes (see :mod:`sensorhub.sim.kinematics`)
plus what the script knows to be true about it: calibration phase intervals, drill start and end,
and each rep's interval and whether the pelvis was made to compensate. All randomness comes from the
generator passed in, so a seed fixes the session.

Calibration protocol (as in the shared examples): >= 3 s standing still, 5 hip flexion-extension
swings of the measured leg, 3 bows from the hips (pelvis tilting forward about 30° while the femur
stays roughly vertical), >= 2 s standing still.

Drills:

* ``seated_rotation``: sits down (trunk leans forward, then the pelvis settles in slight posterior
  tilt with the thigh about horizontal), reps of rotation about the femur's long axis, stands up.
* ``standing_rotation``: hip extended, slight abduction, heel-pivot rotation about the (vertical)
  femur long axis.
* ``supine_rotation``: down to the floor, lies back (pelvis turned ~90°, femur pointing at the
  ceiling), rotation with hip and knee at ~90°, sits up and stands up.
* ``long_sitting_rotation``: sitting on the floor with straight legs (hip ~90°, femur horizontal),
  toes turn in and drop out.
* ``hip_90_90``: sitting on the floor, knees up; the knees drop to the measured side (external
  rotation with abduction, the front leg of the 90/90) and then to the other side (internal rotation
  with abduction and less flexion, the back leg). Its reps run external first.

One rep = neutral -> internal end (hold) -> neutral -> external end (hold) -> neutral. In a
compensated rep the pelvis rotates and tilts along with the hip by well over 10° (rotation
12-17°, obliquity 6-9° at the internal end); in a clean rep it moves less than about 2°. The pelvis
follows the hip's rotation direction: with ``s = +1`` (right) / ``-1`` (left), internal rotation of
the hip comes with pelvis rotation ``s * c`` (a right hip turning in pulls the pelvis to the left).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from sensorhub.errors import ConfigurationError
from sensorhub.sim.kinematics import BodyGeometry, Kinematics, MotionScript, Sway


@dataclass(frozen=True)
class ScriptedRep:
    """One rep as scripted: interval (s), end-range targets (degrees, positive) and compensation."""

    t_start_s: float
    t_end_s: float
    internal_target_deg: float
    external_target_deg: float
    compensation: bool


@dataclass(frozen=True)
class DrillOptions:
    """Choices the caller can make about the drill; everything else is drawn at random per session."""

    reps: int = 6
    compensation_reps: Sequence[int] = (3, 5)
    """1-based rep numbers in which the pelvis compensates."""
    internal_range_deg: tuple[float, float] = (25.0, 40.0)
    external_range_deg: tuple[float, float] = (30.0, 45.0)
    hold_range_s: tuple[float, float] = (1.0, 2.0)


@dataclass(frozen=True)
class Scenario:
    """A scripted session with its ground-truth structure."""

    drill: str
    scenario_label: str
    """Short label as in the shared examples' meta.json ("seated", "standing")."""
    side: str
    kinematics: Kinematics
    phases: dict[str, list[tuple[float, float]]]
    """Calibration phase intervals: ``static``, ``functional``, ``hinge``."""
    drill_start_s: float
    drill_end_s: float
    reps: list[ScriptedRep]
    drill_pose_t_s: float
    """A time at which the measured thigh sits in its drill neutral pose (used to place disturbances)."""
    events: list[tuple[float, str]] = field(default_factory=list)
    """Other scripted moments (sit down, stand up), for recording marks."""

    @property
    def duration_s(self) -> float:
        return self.kinematics.duration_s


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _calibration(script: MotionScript, rng: np.random.Generator) -> dict[str, list[tuple[float, float]]]:
    """Append the calibration protocol to ``script``; returns the phase intervals."""
    t0 = script.t_s
    script.hold(_u(rng, 3.3, 4.5))
    t_static1 = script.t_s

    # Five flexion-extension swings of the measured leg. Nobody swings exactly in the sagittal plane:
    # each swing runs in its own plane, tilted by up to ~7° (adduction and rotation proportional to
    # flexion), so a swing-axis calibration sees a realistic spread.
    for _ in range(5):
        k_add, k_rot = _u(rng, -0.12, 0.12), _u(rng, -0.1, 0.1)
        flex = _u(rng, 24, 36)
        script.move(_u(rng, 0.55, 0.75), hip_flexion=flex, hip_adduction=k_add * flex, hip_rotation=k_rot * flex)
        ext = -_u(rng, 10, 17)
        script.move(_u(rng, 0.6, 0.8), hip_flexion=ext, hip_adduction=k_add * ext, hip_rotation=k_rot * ext)
    script.move(_u(rng, 0.5, 0.7), hip_flexion=0.0, hip_adduction=0.0, hip_rotation=0.0)
    script.hold(_u(rng, 0.4, 0.8))
    t_functional = script.t_s

    # Three bows from the hips: the pelvis tilts forward, the femur stays about vertical, the hips
    # shift back a little to keep balance.
    for _ in range(3):
        bow = _u(rng, 26, 34)
        script.move(
            _u(rng, 0.75, 1.0),
            pelvis_tilt=-bow,
            hip_flexion=bow + _u(rng, -2, 3),
            pelvis_anterior=-_u(rng, 0.03, 0.06),
        )
        script.hold(_u(rng, 0.1, 0.3))
        script.move(_u(rng, 0.75, 1.0), pelvis_tilt=0.0, hip_flexion=0.0, pelvis_anterior=0.0)
        script.hold(_u(rng, 0.05, 0.2))
    t_hinge = script.t_s
    script.hold(_u(rng, 2.2, 3.0))
    return {
        "static": [(t0, t_static1), (t_hinge, script.t_s)],
        "functional": [(t_static1, t_functional)],
        "hinge": [(t_functional, t_hinge)],
    }


@dataclass(frozen=True)
class DrillPart:
    """What a drill builder appended to the script after the calibration protocol."""

    drill_start_s: float
    drill_end_s: float
    reps: list[ScriptedRep]
    pose_t_s: float
    """A moment in the drill's neutral pose (where a magnetic disturbance is placed)."""
    events: list[tuple[float, str]]


@dataclass(frozen=True)
class RepStyle:
    """How a drill's reps move beyond the rotation itself.

    ``internal_offsets`` / ``external_offsets`` give ranges (degrees) of hip flexion or adduction
    added to the drill's neutral at that end, e.g. the abduction of the knee dropping to the floor in
    the 90/90 switch.
    """

    tempo_s: tuple[float, float] = (0.7, 1.2)
    external_first: bool = False
    internal_offsets: tuple[tuple[str, float, float], ...] = ()
    external_offsets: tuple[tuple[str, float, float], ...] = ()


def _reps(
    script: MotionScript,
    rng: np.random.Generator,
    options: DrillOptions,
    side_sign: float,
    style: RepStyle,
) -> list[ScriptedRep]:
    """Append the rotation reps around the current posture (the drill's neutral)."""
    base = {name: script.current(name) for name in ("hip_flexion", "hip_adduction", "pelvis_tilt")}
    # Per-session coupling of flexion and adduction to rotation (the femur is not a perfect hinge).
    k_add = _u(rng, -0.08, 0.08)
    k_flex = _u(rng, -0.06, 0.06)
    comp_reps = set(options.compensation_reps)
    reps: list[ScriptedRep] = []
    tempo_s = style.tempo_s
    for number in range(1, options.reps + 1):
        ir = _u(rng, *options.internal_range_deg)
        er = _u(rng, *options.external_range_deg)
        comp = number in comp_reps
        if comp:
            p_in = (_u(rng, 12, 17), _u(rng, 6, 9), _u(rng, -3, 3))
            p_out = (-_u(rng, 6, 10), -_u(rng, 3, 5), _u(rng, -3, 3))
        else:
            p_in = (_u(rng, 0.3, 1.5), _u(rng, -0.5, 0.8), _u(rng, -0.4, 0.4))
            p_out = (-_u(rng, 0.3, 1.5), _u(rng, -0.8, 0.5), _u(rng, -0.4, 0.4))

        def end(rot: float, pelvis: tuple[float, float, float],
                offsets: tuple[tuple[str, float, float], ...]) -> dict[str, float]:
            p_rot, p_obl, p_tilt = pelvis
            posture = {
                "hip_rotation": rot,
                "hip_adduction": base["hip_adduction"] + k_add * rot,
                "hip_flexion": base["hip_flexion"] + k_flex * abs(rot),
                "pelvis_rotation": side_sign * p_rot,
                "pelvis_obliquity": side_sign * p_obl,
                "pelvis_tilt": base["pelvis_tilt"] + p_tilt,
            }
            for name, lo, hi in offsets:
                posture[name] += _u(rng, lo, hi)
            return posture

        neutral = end(0.0, (0.0, 0.0, 0.0), ())
        halves = [end(ir, p_in, style.internal_offsets), end(-er, p_out, style.external_offsets)]
        if style.external_first:
            halves.reverse()
        t_start = script.t_s
        script.move(_u(rng, *tempo_s), **halves[0])
        script.hold(_u(rng, *options.hold_range_s))
        script.move(_u(rng, *tempo_s), **neutral)
        script.hold(_u(rng, 0.05, 0.4))
        script.move(_u(rng, *tempo_s), **halves[1])
        script.hold(_u(rng, *options.hold_range_s))
        script.move(_u(rng, *tempo_s), **neutral)
        reps.append(ScriptedRep(t_start, script.t_s, ir, er, comp))
        script.hold(_u(rng, 0.3, 0.9))
    return reps


def _seated(script: MotionScript, rng: np.random.Generator, options: DrillOptions, side_sign: float) -> DrillPart:
    seat_flex = _u(rng, 76, 86)
    seat_tilt = _u(rng, 5, 12)
    seat_up = -_u(rng, 0.40, 0.46)
    seat_back = -_u(rng, 0.14, 0.22)
    t_sit = script.t_s
    # Sitting down: lean forward while bending, then settle back onto the chair.
    script.move_through(_u(rng, 0.9, 1.2), hip_flexion=_u(rng, 50, 60), pelvis_tilt=-_u(rng, 12, 20),
                pelvis_up=0.45 * seat_up, pelvis_anterior=0.4 * seat_back)
    script.move(_u(rng, 0.9, 1.3), hip_flexion=seat_flex, pelvis_tilt=seat_tilt, pelvis_up=seat_up,
                pelvis_anterior=seat_back, hip_adduction=_u(rng, -3, 1))
    script.hold(_u(rng, 1.0, 1.8))
    drill_start = script.t_s
    pose_t = drill_start - 0.3
    reps = _reps(script, rng, options, side_sign, RepStyle(tempo_s=(0.7, 1.2)))
    drill_end = script.t_s
    t_stand = script.t_s
    script.move_through(_u(rng, 0.9, 1.2), hip_flexion=_u(rng, 50, 60), pelvis_tilt=-_u(rng, 12, 20),
                pelvis_up=0.45 * seat_up, pelvis_anterior=0.4 * seat_back, pelvis_rotation=0.0,
                pelvis_obliquity=0.0, hip_rotation=0.0)
    script.move(_u(rng, 1.0, 1.3), hip_flexion=0.0, hip_adduction=0.0, pelvis_tilt=0.0, pelvis_up=0.0,
                pelvis_anterior=0.0)
    script.hold(_u(rng, 1.5, 2.5))
    return DrillPart(drill_start, drill_end, reps, pose_t, [(t_sit, "sit_down"), (t_stand, "stand_up")])


def _standing(script: MotionScript, rng: np.random.Generator, options: DrillOptions, side_sign: float) -> DrillPart:
    t_setup = script.t_s
    # Step the measured foot slightly out (abduction) with the hip extended.
    script.move(_u(rng, 0.7, 1.0), hip_adduction=-_u(rng, 2, 6), hip_flexion=_u(rng, -3, 4))
    script.hold(_u(rng, 0.6, 1.2))
    drill_start = script.t_s
    pose_t = drill_start - 0.3
    reps = _reps(script, rng, options, side_sign, RepStyle(tempo_s=(0.6, 1.0)))
    drill_end = script.t_s
    script.move(_u(rng, 0.7, 1.0), hip_adduction=0.0, hip_flexion=0.0, hip_rotation=0.0, pelvis_rotation=0.0,
                pelvis_obliquity=0.0, pelvis_tilt=0.0)
    script.hold(_u(rng, 1.5, 2.5))
    return DrillPart(drill_start, drill_end, reps, pose_t, [(t_setup, "stance")])


def _down_to_floor(script: MotionScript, rng: np.random.Generator, flexion: float, tilt: float) -> tuple[float, float]:
    """Squat down and sit on the floor; returns (pelvis_up, pelvis_anterior) of the seat on the floor."""
    floor_up = -(_u(rng, 0.72, 0.80))
    floor_back = -_u(rng, 0.30, 0.40)
    script.move_through(_u(rng, 1.1, 1.5), hip_flexion=_u(rng, 95, 110), pelvis_tilt=-_u(rng, 10, 20),
                pelvis_up=0.55 * floor_up, pelvis_anterior=0.3 * floor_back)
    script.move(_u(rng, 1.0, 1.4), hip_flexion=flexion, pelvis_tilt=tilt, pelvis_up=floor_up,
                pelvis_anterior=floor_back)
    script.hold(_u(rng, 0.5, 1.0))
    return floor_up, floor_back


def _up_from_floor(script: MotionScript, rng: np.random.Generator, floor_up: float, floor_back: float) -> None:
    """From sitting on the floor, back to standing (via a squat), ending at the standing neutral."""
    script.move_through(_u(rng, 1.0, 1.4), hip_flexion=_u(rng, 95, 110), pelvis_tilt=-_u(rng, 10, 20),
                pelvis_up=0.55 * floor_up, pelvis_anterior=0.3 * floor_back, hip_rotation=0.0, hip_adduction=0.0,
                pelvis_rotation=0.0, pelvis_obliquity=0.0)
    script.move(_u(rng, 1.2, 1.6), hip_flexion=0.0, pelvis_tilt=0.0, pelvis_up=0.0, pelvis_anterior=0.0)
    script.hold(_u(rng, 1.5, 2.5))


def _supine(script: MotionScript, rng: np.random.Generator, options: DrillOptions, side_sign: float) -> DrillPart:
    t_down = script.t_s
    floor_up, floor_back = _down_to_floor(script, rng, flexion=_u(rng, 80, 90), tilt=_u(rng, 5, 12))
    # Lie back: the pelvis turns about 90° (front up); hip and knee stay flexed about 90°, so the
    # femur points at the ceiling. The hip centres end up about 10 cm above the floor.
    t_lie = script.t_s
    lying_up = floor_up - _u(rng, 0.0, 0.03)
    script.move(_u(rng, 1.6, 2.2), pelvis_tilt=_u(rng, 84, 94), hip_flexion=_u(rng, 85, 95),
                pelvis_anterior=floor_back - _u(rng, 0.05, 0.10), pelvis_up=lying_up)
    script.hold(_u(rng, 1.0, 1.6))
    drill_start = script.t_s
    pose_t = drill_start - 0.3
    reps = _reps(script, rng, options, side_sign, RepStyle(tempo_s=(0.7, 1.2)))
    drill_end = script.t_s
    t_sit_up = script.t_s
    script.move(_u(rng, 1.4, 2.0), pelvis_tilt=_u(rng, 5, 12), hip_flexion=_u(rng, 80, 90), hip_rotation=0.0,
                pelvis_rotation=0.0, pelvis_obliquity=0.0, pelvis_anterior=floor_back, pelvis_up=floor_up)
    script.hold(_u(rng, 0.4, 0.8))
    t_up = script.t_s
    _up_from_floor(script, rng, floor_up, floor_back)
    events = [(t_down, "sit_down"), (t_lie, "lie_down"), (t_sit_up, "sit_up"), (t_up, "stand_up")]
    return DrillPart(drill_start, drill_end, reps, pose_t, events)


def _hip_90_90(script: MotionScript, rng: np.random.Generator, options: DrillOptions, side_sign: float) -> DrillPart:
    # Sitting on the floor, knees up (hip flexed ~105°), feet flat: the neutral. The knees drop to
    # the measured side (its hip turns out and abducts: the front leg of the 90/90, flexion ~90°) and
    # then to the other side (its hip turns in and abducts: the back leg, flexion ~55°), sitting tall.
    t_down = script.t_s
    floor_up, floor_back = _down_to_floor(script, rng, flexion=_u(rng, 100, 110), tilt=_u(rng, 0, 8))
    script.move(_u(rng, 0.6, 0.9), hip_adduction=-_u(rng, 4, 8))
    script.hold(_u(rng, 0.6, 1.0))
    drill_start = script.t_s
    pose_t = drill_start - 0.3
    style = RepStyle(
        tempo_s=(1.0, 1.6),
        external_first=True,
        external_offsets=(("hip_adduction", -25.0, -15.0), ("hip_flexion", -20.0, -10.0)),
        internal_offsets=(("hip_adduction", -30.0, -20.0), ("hip_flexion", -55.0, -40.0)),
    )
    reps = _reps(script, rng, replace(options, hold_range_s=(1.5, 2.5)), side_sign, style)
    drill_end = script.t_s
    t_up = script.t_s
    _up_from_floor(script, rng, floor_up, floor_back)
    return DrillPart(drill_start, drill_end, reps, pose_t, [(t_down, "sit_down"), (t_up, "stand_up")])


def _long_sitting(script: MotionScript, rng: np.random.Generator, options: DrillOptions, side_sign: float) -> DrillPart:
    # Sitting on the floor, legs straight in front, trunk upright: hip flexed ~90° with the femur
    # horizontal; toes turn in (internal) and drop out (external) with the heels in place.
    t_down = script.t_s
    floor_up, floor_back = _down_to_floor(script, rng, flexion=_u(rng, 84, 94), tilt=_u(rng, -4, 4))
    script.move(_u(rng, 0.6, 0.9), hip_adduction=-_u(rng, 3, 8))
    script.hold(_u(rng, 0.6, 1.0))
    drill_start = script.t_s
    pose_t = drill_start - 0.3
    reps = _reps(script, rng, options, side_sign, RepStyle(tempo_s=(0.7, 1.2)))
    drill_end = script.t_s
    t_up = script.t_s
    _up_from_floor(script, rng, floor_up, floor_back)
    return DrillPart(drill_start, drill_end, reps, pose_t, [(t_down, "sit_down"), (t_up, "stand_up")])


DrillBuilder = Callable[[MotionScript, np.random.Generator, DrillOptions, float], DrillPart]


@dataclass(frozen=True)
class DrillSpec:
    name: str
    scenario_label: str
    builder: DrillBuilder
    default_internal_deg: tuple[float, float]
    default_external_deg: tuple[float, float]
    description: str


DRILLS: dict[str, DrillSpec] = {
    spec.name: spec
    for spec in (
        DrillSpec("seated_rotation", "seated", _seated, (25.0, 40.0), (30.0, 45.0),
                  "seated on a chair, hip flexed ~90°, rotation about the femur's long axis"),
        DrillSpec("standing_rotation", "standing", _standing, (20.0, 35.0), (28.0, 42.0),
                  "standing, hip extended, heel-pivot rotation about the vertical axis"),
        DrillSpec("supine_rotation", "supine", _supine, (25.0, 40.0), (30.0, 45.0),
                  "lying on the back, hip and knee flexed ~90°, foot out (internal) and across (external)"),
        DrillSpec("long_sitting_rotation", "long_sitting", _long_sitting, (25.0, 38.0), (30.0, 45.0),
                  "sitting on the floor, legs straight: toes in (internal) and out (external)"),
        DrillSpec("hip_90_90", "90_90", _hip_90_90, (25.0, 38.0), (35.0, 50.0),
                  "sitting on the floor, knees switch side to side: external (front leg) then internal (back leg)"),
    )
}


def build_scenario(
    drill: str,
    side: str,
    rng: np.random.Generator,
    reps: int = 6,
    compensation_reps: Sequence[int] = (3, 5),
    sway: bool = True,
) -> Scenario:
    """Script a whole session: calibration protocol, then ``drill`` on ``side`` with random variation."""
    if drill not in DRILLS:
        raise ConfigurationError(f"unknown drill {drill!r}; simulated drills: {', '.join(sorted(DRILLS))}")
    if side not in ("left", "right"):
        raise ConfigurationError(f"side must be 'left' or 'right', got {side!r}")
    if reps < 1:
        raise ConfigurationError(f"--reps must be at least 1, got {reps}")
    bad = [r for r in compensation_reps if not 1 <= r <= reps]
    if bad:
        raise ConfigurationError(f"compensation rep numbers {bad} are outside 1..{reps}")
    spec = DRILLS[drill]
    options = DrillOptions(
        reps=reps,
        compensation_reps=tuple(compensation_reps),
        internal_range_deg=spec.default_internal_deg,
        external_range_deg=spec.default_external_deg,
    )
    side_sign = 1.0 if side == "right" else -1.0
    heading_deg = float(rng.uniform(0.0, 360.0))
    geometry = BodyGeometry(
        hip_half_width_m=_u(rng, 0.075, 0.095),
        pelvis_sensor_m=(-_u(rng, 0.09, 0.13), _u(rng, 0.02, 0.08), _u(rng, -0.02, 0.02)),
        thigh_sensor_m=(_u(rng, -0.03, 0.04), -_u(rng, 0.15, 0.28), _u(rng, 0.06, 0.09)),
        standing_height_m=_u(rng, 0.85, 0.98),
    )
    script = MotionScript()
    phases = _calibration(script, rng)
    part = spec.builder(script, rng, options, side_sign)
    keyframes = script.build()
    sway_model = (
        Sway.random(
            rng,
            {
                "hip_flexion": 0.35, "hip_adduction": 0.25, "hip_rotation": 0.35,
                "pelvis_tilt": 0.3, "pelvis_obliquity": 0.25, "pelvis_rotation": 0.3,
                "pelvis_anterior": 0.004, "pelvis_up": 0.0015, "pelvis_right": 0.003,
            },
            duration_s=float(keyframes.t_s[-1]),
        )
        if sway
        else Sway.none()
    )
    kin = Kinematics(keyframes, side, heading_deg, sway_model, geometry)
    return Scenario(drill, spec.scenario_label, side, kin, phases, part.drill_start_s, part.drill_end_s, part.reps,
                    part.pose_t_s, part.events)
