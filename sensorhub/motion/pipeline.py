"""The analysis pipeline: two sensors' samples in, hip and pelvis angles out.

Batch (:func:`analyze_imu`) for a whole recording, and :class:`OnlinePipeline` for live use, built
from the same stages:

1. each sensor is brought onto its own uniform time base (lost samples filled for the filter) and
   onto a common grid for calibration (:mod:`sensorhub.motion.align`);
2. the calibration protocol is found and evaluated (:mod:`sensorhub.motion.calibration`), or a
   stored calibration is applied;
3. each sensor's orientation is estimated magnetometer-free with the gyroscope bias from the
   calibration still phases removed (:mod:`sensorhub.motion.fusion`);
4. the thigh's heading is aligned to the pelvis's at neutral standing and kept aligned with the
   magnetometers where they are undisturbed (:mod:`sensorhub.motion.heading`);
5. hip and pelvis angles follow ISB (:mod:`sensorhub.motion.angles`, docs/conventions.md).

No I/O apart from :meth:`AngleSeries.write_csv`, the edge where the drills stage picks angles up.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sensorhub.errors import CalibrationError, ConfigurationError
from sensorhub.motion import align, angles, heading, quat
from sensorhub.motion.calibration import (
    Calibration,
    CalibrationPhaseError,
    CalibrationPhases,
    Interval,
    calibrate,
    detect_phases,
)
from sensorhub.motion.fusion import fuse
from sensorhub.samples import ImuSamples

log = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

ANGLE_COLUMNS = ("t", "hip_flexion", "hip_adduction", "hip_rotation", "pelvis_tilt", "pelvis_obliquity", "pelvis_rotation")

#: VQF settings used for the 6D orientation of each sensor. The gyroscope bias measured in the
#: calibration still phases is removed before the filter, so the filter starts from a small bias
#: uncertainty; rest detection is tightened from 2 deg/s to 0.5 deg/s so that postural sway
#: (about 0.3-1 deg/s) is not taken as rest and absorbed into the bias estimate (NOTES.md).
VQF_PARAMS: dict[str, Any] = {"biasSigmaInit": 0.05, "restThGyr": 0.5}

#: Largest thigh-mount correction (deg) the magnetometers may make at neutral standing; a larger
#: disagreement means one of the two is wrong and the swing axis is kept.
MAX_MAG_MOUNT_REFINEMENT_DEG = 15.0


@dataclass
class Diagnostics:
    """What the pipeline found and did besides the angles."""

    calibration: Calibration | None = None
    calibration_source: str = ""
    drill_start_s: float | None = None
    neutral: Interval | None = None
    heading_mode: str = ""
    disturbance_events: list[heading.DisturbanceEvent] = field(default_factory=list)
    gap_fraction: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "calibration": None if self.calibration is None else {
                "side": self.calibration.side,
                "created": self.calibration.created,
                "quality": self.calibration.quality.to_dict(),
            },
            "calibration_source": self.calibration_source,
            "drill_start_s": self.drill_start_s,
            "neutral": None if self.neutral is None else [self.neutral.start_s, self.neutral.end_s],
            "heading_mode": self.heading_mode,
            "disturbance_events": [e.describe() for e in self.disturbance_events],
            "gap_fraction": self.gap_fraction,
            "notes": list(self.notes),
        }


@dataclass
class AngleSeries:
    """Hip and pelvis angles (deg) on a uniform grid ``t_s`` in the input's time base.

    ``gap[i]`` is True where either sensor had lost samples around ``t_s[i]``; inside gaps longer
    than :data:`sensorhub.motion.align.DEFAULT_MAX_BRIDGE_S` the angles are NaN.
    """

    t_s: FloatArray
    hip_flexion_deg: FloatArray
    hip_adduction_deg: FloatArray
    hip_rotation_deg: FloatArray
    pelvis_tilt_deg: FloatArray
    pelvis_obliquity_deg: FloatArray
    pelvis_rotation_deg: FloatArray
    gap: BoolArray
    side: str
    diagnostics: Diagnostics = field(default_factory=Diagnostics)

    def __len__(self) -> int:
        return len(self.t_s)

    def as_array(self) -> FloatArray:
        """Columns in :data:`ANGLE_COLUMNS` order, shape (n, 7)."""
        return np.column_stack(
            (self.t_s, self.hip_flexion_deg, self.hip_adduction_deg, self.hip_rotation_deg,
             self.pelvis_tilt_deg, self.pelvis_obliquity_deg, self.pelvis_rotation_deg)
        )

    def hip_deg(self) -> FloatArray:
        """Flexion, adduction, internal rotation (n, 3)."""
        return np.column_stack((self.hip_flexion_deg, self.hip_adduction_deg, self.hip_rotation_deg))

    def write_csv(self, path: str | Path) -> None:
        """Write ``angles.csv`` with the columns ``t,hip_flexion,...,pelvis_rotation`` (deg, s)."""
        np.savetxt(path, self.as_array(), delimiter=",", header=",".join(ANGLE_COLUMNS), comments="", fmt="%.5f")


def _check_side(side: str) -> None:
    if side not in ("left", "right"):
        raise ConfigurationError(f"side is {side!r}, expected 'left' or 'right'")


def _neutral_span(phases: CalibrationPhases) -> Interval:
    """The final still phase (trimmed): neutral standing right before the drill."""
    iv = phases.still2
    trim = min(0.25, 0.2 * iv.duration_s)
    return Interval(iv.start_s + trim, iv.end_s - trim)


def _first_still_span(t_s: FloatArray, gyr_p: FloatArray, gyr_t: FloatArray, min_s: float = 1.0) -> Interval | None:
    dt = float(np.median(np.diff(t_s)))
    w = max(1, int(round(0.5 / dt)))
    from scipy.ndimage import uniform_filter1d

    p = uniform_filter1d(np.degrees(np.linalg.norm(gyr_p, axis=1)), w)
    th = uniform_filter1d(np.degrees(np.linalg.norm(gyr_t, axis=1)), w)
    still = (p < 5.0) & (th < 5.0)
    d = np.diff(np.concatenate(([0], still.astype(np.int8), [0])))
    for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)):
        if (b - a) * dt >= min_s:
            return Interval(float(t_s[a]), float(t_s[b - 1]))
    return None


def _fuse_6d(samples: ImuSamples, bias_rad_s: FloatArray | None, method: str, offline: bool,
             params: Mapping[str, Any] | None) -> tuple[FloatArray, ImuSamples]:
    """6D orientation of one sensor at its own uniform rate, gyroscope bias removed first."""
    uni = align.to_uniform_rate(samples)
    gyr = uni.gyr_rad_s - (0.0 if bias_rad_s is None else bias_rad_s)
    corrected = ImuSamples(uni.t_s, uni.acc_m_s2, gyr, uni.mag_uT, uni.gap_before)
    p = dict(VQF_PARAMS if method == "vqf" else {})
    p.update(params or {})
    res = fuse(corrected, method, offline=offline, use_mag=False, rate_hz=uni.rate_hz, params=p)
    return res.q_earth_sensor, uni


def analyze_imu(
    pelvis: ImuSamples,
    thigh: ImuSamples,
    side: str,
    *,
    method: str = "vqf",
    calibration: Calibration | None = None,
    rate_hz: float = 100.0,
    offline: bool = False,
    use_mag: bool = True,
    fusion_params: Mapping[str, Any] | None = None,
) -> AngleSeries:
    """Hip and pelvis angles for a whole recording of the two sensors.

    Without ``calibration`` the recording must contain the calibration protocol (found
    automatically; the drill is what follows it, ``diagnostics.drill_start_s``). With a stored
    ``calibration`` the first still span of the recording is taken as neutral standing.
    ``method`` selects the orientation filter (:data:`sensorhub.motion.fusion.METHODS`);
    ``offline=True`` uses the non-causal offline VQF. Raises :class:`CalibrationError` when no
    calibration can be found or applied.
    """
    _check_side(side)
    if rate_hz < 50.0:
        raise ConfigurationError(f"output rate {rate_hz} Hz is below the 50 Hz minimum")
    diag = Diagnostics()
    grid = align.common_grid(pelvis.t_s, thigh.t_s, rate_hz)
    t = grid.t_s
    pg = align.resample_samples(pelvis, t)
    tg = align.resample_samples(thigh, t)
    _, long_p = align.gap_mask(pelvis, t)
    _, long_t = align.gap_mask(thigh, t)
    gap = np.asarray(pg.gap_before, dtype=bool) | np.asarray(tg.gap_before, dtype=bool)
    diag.gap_fraction = float(np.mean(gap))

    if calibration is None:
        calibration = calibrate(pg, tg, side)
        diag.calibration_source = "protocol found in this recording"
        assert calibration.phases is not None
        neutral = _neutral_span(calibration.phases)
        diag.drill_start_s = calibration.phases.end_s
        bias = calibration.gyr_bias_rad_s
    else:
        if calibration.side != side:
            raise CalibrationError(f"the calibration is for the {calibration.side} side, the analysis for the {side} side")
        diag.calibration_source = f"stored calibration created {calibration.created}"
        try:
            phases = detect_phases(t, pg.gyr_rad_s, tg.gyr_rad_s)
            neutral = _neutral_span(phases)
            diag.drill_start_s = phases.end_s
        except CalibrationPhaseError:
            span = _first_still_span(t, pg.gyr_rad_s, tg.gyr_rad_s)
            if span is None:
                raise CalibrationError("no still span (>= 1 s) in the recording to take as neutral standing") from None
            neutral = span
            diag.notes.append(f"neutral standing taken from the first still span {span.start_s:.1f}-{span.end_s:.1f} s")
        m = neutral.mask(t)
        bias = {"pelvis": pg.gyr_rad_s[m].mean(axis=0), "thigh": tg.gyr_rad_s[m].mean(axis=0)}
    diag.neutral = neutral

    q6 = {}
    uni = {}
    for name, smp in (("pelvis", pelvis), ("thigh", thigh)):
        q_native, uni[name] = _fuse_6d(smp, bias.get(name), method, offline, fusion_params)
        q6[name] = align.resample_quat(uni[name].t_s, q_native, t)
    q_earth_pelvis = angles.segment_orientation(q6["pelvis"], calibration.q_segment_sensor["pelvis"])
    q_earth_femur = angles.segment_orientation(q6["thigh"], calibration.q_segment_sensor["thigh"])

    nm = neutral.mask(t)
    delta0 = heading.neutral_heading_offset(q_earth_pelvis[nm], q_earth_femur[nm])
    delta_mag = None
    valid = None
    if use_mag and pg.mag_uT is not None and tg.mag_uT is not None:
        masks = []
        for name, q, smp in (("pelvis", q6["pelvis"], pg), ("thigh", q6["thigh"], tg)):
            assert smp.mag_uT is not None
            ref = heading.reference_from(q[nm], smp.mag_uT[nm])
            bad, dn, dd = heading.disturbed_mask(t, q, smp.mag_uT, ref)
            masks.append(bad)
            diag.disturbance_events.extend(heading.events_from_mask(name, t, bad, dn, dd))
        valid = ~(masks[0] | masks[1])
        assert pg.mag_uT is not None and tg.mag_uT is not None
        delta_mag = heading.magnetic_relative_heading(q6["pelvis"], pg.mag_uT, q6["thigh"], tg.mag_uT)
        diag.heading_mode = "magnetometer relative heading (held from the gyroscope while disturbed)"
        ref_ok = nm & valid
        if np.count_nonzero(ref_ok) >= max(10, 0.5 * np.count_nonzero(nm)):
            # The swing axis leaves the thigh's rotation about its long axis uncertain by a few
            # degrees (any ab/adduction coupled to the swing tilts it). With an undisturbed field at
            # neutral standing the magnetometers give the thigh's heading relative to the pelvis
            # directly, so the thigh mount is turned about the femur's Y axis to agree with it.
            delta_mag_neutral = float(np.angle(np.mean(np.exp(1j * delta_mag[ref_ok]))))
            residual = float(heading.wrap_rad(delta0 - delta_mag_neutral))
            if abs(residual) <= np.radians(MAX_MAG_MOUNT_REFINEMENT_DEG):
                q_thigh_mount = quat.multiply(quat.from_axis_angle(np.array([0.0, 1.0, 0.0]), -residual), calibration.q_segment_sensor["thigh"])
                calibration = dataclasses.replace(calibration, q_segment_sensor={**calibration.q_segment_sensor, "thigh": q_thigh_mount})
                q_earth_femur = angles.segment_orientation(q6["thigh"], q_thigh_mount)
                delta0 = delta_mag_neutral
                diag.notes.append(f"thigh mount turned by {np.degrees(residual):.1f}° about the femur axis to match the magnetometer heading at neutral")
            else:
                diag.notes.append(f"magnetometer and calibration disagree on the thigh heading by {np.degrees(residual):.0f}°; magnetometer heading at neutral not used for the mount")
        else:
            diag.notes.append("magnetometers disturbed at neutral standing: thigh mount from the swing axis only")
    else:
        diag.heading_mode = "gyroscope only (relative heading fixed at neutral standing)"
    diag.calibration = calibration
    for ev in diag.disturbance_events:
        log.info("%s", ev.describe())
    delta = heading.batch_relative_heading(t, delta_mag, valid, delta0, nm)
    q_earth_femur = quat.multiply(quat.heading_rotation(delta), q_earth_femur)

    hip = angles.hip_angles_deg(q_earth_pelvis, q_earth_femur, side)
    q_neutral = _mean_quat(q_earth_pelvis[nm])
    pel = angles.pelvis_angles_deg(q_earth_pelvis, q_neutral)
    dead = long_p | long_t
    hip[dead] = np.nan
    pel[dead] = np.nan
    return AngleSeries(
        t_s=t, hip_flexion_deg=hip[:, 0], hip_adduction_deg=hip[:, 1], hip_rotation_deg=hip[:, 2],
        pelvis_tilt_deg=pel[:, 0], pelvis_obliquity_deg=pel[:, 1], pelvis_rotation_deg=pel[:, 2],
        gap=gap, side=side, diagnostics=diag,
    )


def _mean_quat(q: FloatArray) -> FloatArray:
    """Mean orientation of nearby quaternions (sign-aligned average, renormalised)."""
    q = quat.make_continuous(q)
    return quat.normalize(q.mean(axis=0))
