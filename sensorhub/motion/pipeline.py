"""The analysis pipeline: two sensors' samples in, hip and pelvis angles out.

Batch (:func:`analyze_imu`) for a whole recording, and :class:`OnlinePipeline` for live use, built
from the same stages:

1. each sensor is brought onto its own uniform time base (lost samples filled for the filter) and
   onto a common grid for calibration (:mod:`sensorhub.motion.align`);
2. the calibration protocol is found and evaluated (:mod:`sensorhub.motion.calibration`), or a
   stored calibration is applied;
3. each sensor's orientation is estimated magnetometer-free with the gyroscope bias from the
   calibration still phases removed (:mod:`sensorhub.motion.fusion`; batch: VQF's offline variant);
4. heading drift is removed: the pelvis's linear trend over the drill, and the thigh's drift
   relative to the pelvis (batch: fitted jointly to the still phases and every quasi-static rest of
   the drill, online: running trends); the thigh's heading is aligned to the pelvis's at neutral
   standing and, with magnetometers, kept aligned by them where both fields are undisturbed
   (:mod:`sensorhub.motion.heading`);
5. hip and pelvis angles follow ISB (:mod:`sensorhub.motion.angles`, docs/conventions.md).

What each step buys, measured against ground truth, is in docs/accuracy.md.

No I/O apart from :meth:`AngleSeries.write_csv`, the edge where the drills stage picks angles up.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.interpolate import Akima1DInterpolator
from scipy.ndimage import uniform_filter1d

from sensorhub.errors import CalibrationError, ConfigurationError
from sensorhub.motion import align, angles, heading, kernels, quat
from sensorhub.motion.calibration import (
    SMOOTH_S,
    STILL_MAX_DEG_S,
    Calibration,
    CalibrationPhaseError,
    CalibrationPhases,
    CalibrationQuality,
    CalibrationStep,
    Interval,
    LiveCalibration,
    LiveCalibrationStatus,
    StepReport,
    calibrate,
    detect_phases,
    runs,
)
from sensorhub.motion.fusion import fuse
from sensorhub.samples import ImuSamples

log = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

# The batch path's compiled kernels are loaded (or compiled, once per install) with this module, not
# inside the first analysis: `sensorhub analyze` imports the motion stage while its workers ingest.
kernels.warm_up()

ANGLE_COLUMNS = ("t", "hip_flexion", "hip_adduction", "hip_rotation", "pelvis_tilt", "pelvis_obliquity", "pelvis_rotation")

#: VQF settings used for the 6D orientation of each sensor. The gyroscope bias measured in the
#: calibration still phases is removed before the filter, so the filter starts from a small bias
#: uncertainty; rest detection is tightened from 2 deg/s to 0.5 deg/s so that postural sway
#: (about 0.3-1 deg/s) is not taken as rest and absorbed into the bias estimate (NOTES.md).
VQF_PARAMS: dict[str, Any] = {"biasSigmaInit": 0.05, "restThGyr": 0.5}

#: Batch default: VQF's causal filter, as live (``True``: the non-causal offline variant). The offline
#: variant's inclination is better during the reps (the magnetic heading taken in the 6D frame turns
#: by about tan(dip) ≈ 2x any inclination error), and with the whole recording re-sampled onto a
#: uniform grid it was needed to meet the targets. Since the filter gets the received samples as they
#: are (BATCH_FILL_GAPS_ONLY) and restarts after long gaps (BATCH_CAUSAL_RESTART), the causal filter
#: meets every target on the fixed and held-out sets at 0.4 of the offline filter's cost; the mean
#: errors are somewhat larger (docs/accuracy.md, "Fourth round").
BATCH_OFFLINE_VQF = False

#: Batch: give the orientation filter each sensor's received samples as they are and put back only
#: the lost ones (align.fill_gaps), instead of re-sampling the whole recording onto an exactly
#: uniform grid (align.to_uniform_rate, 0.08 s per sensor and 30 minutes). See docs/accuracy.md.
BATCH_FILL_GAPS_ONLY = True

#: Batch with the causal filter: after a gap longer than align.DEFAULT_MAX_BRIDGE_S a new filter
#: takes over (its inclination comes from the accelerometer at once, as in OnlinePipeline), its
#: heading turned onto the bridged filter's. Integrating an interpolated gyroscope through such a gap
#: during fast rotation left the thigh up to 7° off for several seconds (tests/test_faults_stream.py);
#: continuing the last heading instead (as live) lost the turn during the gap (a 3.4° peak error on
#: the fixed set's 6-axis burst-loss session).
BATCH_CAUSAL_RESTART = True

#: Largest thigh-mount correction (deg) the magnetometers may make at neutral standing; a larger
#: disagreement means one of the two is wrong and the swing axis is kept.
MAX_MAG_MOUNT_REFINEMENT_DEG = 15.0
#: Assumed uncertainty (1σ, deg) of the thigh's heading about its long axis from the swing axis
#: (ab/adduction coupled to the swing at 5-10 % of the flexion tilts the axis by 3-6°) and from
#: two magnetometers at neutral standing (residual hard/soft-iron errors of each sensor).
SWING_AXIS_SIGMA_DEG = 4.0
MAG_HEADING_SIGMA_DEG = 2.0
#: The thigh's heading trend over the drill is only trusted as drift when the heading stays within
#: this spread (deg, 1σ) of the trend line.
THIGH_TREND_MAX_SPREAD_DEG = 5.0
#: Shortest still seated span (s) taken as the seated neutral hold, and the largest hip rotation
#: (deg) it may show before the correction (more means it is an end-range hold, not neutral).
SEATED_NEUTRAL_MIN_S = 0.8
SEATED_NEUTRAL_MAX_DEG = 10.0
#: Plausibility of the thigh frame after the protocol: the hip extends to about 20-30° at most, so
#: hip flexion below FLIPPED_FLEXION_DEG for FLIPPED_MIN_S in all (a seated hold measured as about
#: -90°) means the front of the thigh found from the swings points backwards. Without a compass
#: nothing else tells front from back (an athlete who swung further back than forward); standing
#: drills (flexion near 0°, its own mirror) cannot show it this way.
FLIPPED_FLEXION_DEG = -45.0
FLIPPED_MIN_S = 3.0
#: Assumed spread (1σ, deg) of an athlete's hip rotation in the seated neutral hold; the thigh mount
#: blends this with the swing axis (SWING_AXIS_SIGMA_DEG) by inverse variance.
SEATED_NEUTRAL_SIGMA_DEG = 1.5
#: Batch: apply the seated neutral hold also when the magnetometers refined the thigh mount, blended
#: with their uncertainty: a field slightly disturbed at calibration (a metal chair a metre away) or a
#: residual hard iron turns the magnetic thigh heading by a few degrees. On the development set this
#: took the worst seated 9-axis rotation RMSE from 3.3° to 0.9° (adduction worse by up to 0.6° in
#: some sessions, better in others; docs/accuracy.md).
SEATED_NEUTRAL_WITH_MAG = True
#: Batch: fit the thigh's relative heading drift jointly to the still phases and all rests in the
#: drill (heading.fit_rest_drift) instead of the still phases alone or a trend over all samples.
REST_DRIFT = True
#: Let that fit place a heading step at each longer gap of either sensor (heading.STEP_MIN_GAP_S).
HEADING_STEPS = True
#: Fit the residual hard iron online from the calibration data (see heading.estimate_hard_iron).
ONLINE_HARD_IRON = True
#: Raw data kept (s) while waiting for the protocol (or for neutral with a stored calibration).
WAITING_BUFFER_S = 30.0
#: Span of drill data (s) before the online pipeline trusts its running heading trends.
ONLINE_TREND_MIN_S = 20.0
#: With a stored calibration, the online pipeline takes STORED_CAL_NEUTRAL_S of standing with both
#: sensors below this rate as neutral (and measures the gyroscope biases there).
STILL_FOR_NEUTRAL_DEG_S = 2.5
STORED_CAL_NEUTRAL_S = 3.0
#: Frames :class:`OnlinePipeline` keeps for :meth:`OnlinePipeline.series` by default (s): one hour
#: at 100 Hz is 360,000 rows of 7 floats, 20 MB. Longer live sessions keep their last hour; a
#: caller that forwards the frames as they come (the service) can pass ``history_s=0``.
DEFAULT_HISTORY_S = 3600.0


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
    heading_trend_deg_min: dict[str, float] = field(default_factory=dict)
    hard_iron_uT: dict[str, list[float]] = field(default_factory=dict)
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
            "heading_trend_deg_min": dict(self.heading_trend_deg_min),
            "hard_iron_uT": dict(self.hard_iron_uT),
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
        # The text np.savetxt(fmt="%.5f") writes, formatted by one %-operation over all values
        # (Python floats) instead of one per row: half the time for a 30-minute session.
        values = self.as_array()
        row = ",".join(["%.5f"] * values.shape[1]) + "\n"
        text = ",".join(ANGLE_COLUMNS) + "\n" + (row * len(values)) % tuple(values.ravel().tolist())
        Path(path).write_text(text, encoding="utf-8", newline="\n")


def _check_side(side: str) -> None:
    if side not in ("left", "right"):
        raise ConfigurationError(f"side is {side!r}, expected 'left' or 'right'")


def _neutral_span(phases: CalibrationPhases) -> Interval:
    """The final still phase (trimmed): neutral standing right before the drill."""
    iv = phases.still2
    trim = min(0.25, 0.2 * iv.duration_s)
    return Interval(iv.start_s + trim, iv.end_s - trim)


def _still_runs(t: FloatArray, gyr_p: FloatArray, gyr_t: FloatArray, *, dt: float | None = None,
                rates_deg_s: tuple[FloatArray, FloatArray] | None = None) -> tuple[BoolArray, float]:
    """Both sensors still (0.5-s mean rate below the calibration's still threshold); and the period.

    ``calibration.smoothed_rate_deg_s``'s values (same norm, same filter), from the grid's median
    step ``dt`` and the two rate norms (deg/s, :func:`kernels.rate_norm_deg_s`) if the caller has them.
    """
    if dt is None:
        dt = float(np.median(np.diff(t)))
    if rates_deg_s is None:
        rates_deg_s = (kernels.rate_norm_deg_s(gyr_p), kernels.rate_norm_deg_s(gyr_t))
    w = max(1, round(SMOOTH_S * (1.0 / dt)))  # calibration.smoothed_rate_deg_s's window at rate 1 / dt
    p = uniform_filter1d(rates_deg_s[0], w, mode="nearest")
    th = uniform_filter1d(rates_deg_s[1], w, mode="nearest")
    return (p < STILL_MAX_DEG_S) & (th < STILL_MAX_DEG_S), dt


def _first_still_span(t_s: FloatArray, gyr_p: FloatArray, gyr_t: FloatArray, min_s: float = 1.0) -> Interval | None:
    still, dt = _still_runs(t_s, gyr_p, gyr_t)
    for a, b in runs(still):
        if (b - a) * dt >= min_s:
            return Interval(float(t_s[a]), float(t_s[b - 1]))
    return None


def _fuse_6d(samples: ImuSamples, bias_rad_s: FloatArray | None, method: str, offline: bool,
             params: Mapping[str, Any] | None, rate_hz: float | None = None) -> tuple[FloatArray, ImuSamples]:
    """6D orientation of one sensor at its own sample rate, gyroscope bias removed first.

    The filter runs at the sensor's median rate on its samples with lost ones filled
    (:data:`BATCH_FILL_GAPS_ONLY`), or on the samples re-sampled onto a uniform grid; the returned
    samples carry the times the orientations belong to. ``rate_hz``: ``samples.rate_hz`` if the
    caller has it.
    """
    if rate_hz is None:
        rate_hz = samples.rate_hz
    imu6 = ImuSamples(samples.t_s, samples.acc_m_s2, samples.gyr_rad_s, None, samples.gap_before)
    uni = align.fill_gaps(imu6, rate_hz) if BATCH_FILL_GAPS_ONLY else align.to_uniform_rate(imu6)
    gyr = uni.gyr_rad_s - (0.0 if bias_rad_s is None else bias_rad_s)
    corrected = ImuSamples(uni.t_s, uni.acc_m_s2, gyr, None, uni.gap_before)
    p = dict(VQF_PARAMS if method == "vqf" else {})
    p.update(params or {})
    rate = rate_hz if BATCH_FILL_GAPS_ONLY else uni.rate_hz
    q = fuse(corrected, method, offline=offline, use_mag=False, rate_hz=rate, params=p).q_earth_sensor
    long_gaps = np.flatnonzero(np.diff(samples.t_s) > align.DEFAULT_MAX_BRIDGE_S)
    if offline or not BATCH_CAUSAL_RESTART or not BATCH_FILL_GAPS_ONLY or not long_gaps.size or len(samples) < 4:
        return q, uni
    # After each long gap a new filter takes over up to the next one: its inclination comes from the
    # accelerometer at once, where the bridged filter needs seconds to recover from integrating an
    # interpolated gyroscope through fast rotation. Its heading is turned onto the bridged filter's at
    # the gap's end, which keeps the rotation integrated across the gap (better than none at all).
    assert uni.gap_before is not None  # fill_gaps flags the inserted samples, and only those
    received = np.flatnonzero(~uni.gap_before)
    q = q.copy()
    starts = received[long_gaps + 1].tolist()
    ends = [*received[long_gaps[1:]].tolist(), received[-1]]
    for a, b in zip(starts, ends):
        q_seg = fuse(align.slice_samples(corrected, a, b + 1), method, offline=False, use_mag=False, rate_hz=rate,
                     params=p).q_earth_sensor
        d = quat.multiply(q[a], quat.conjugate(q_seg[0]))
        q[a : b + 1] = quat.turn_heading(2.0 * np.arctan2(d[3], d[0]), q_seg)
    return q, uni


def analyze_imu(
    pelvis: ImuSamples,
    thigh: ImuSamples,
    side: str,
    *,
    method: str = "vqf",
    calibration: Calibration | None = None,
    rate_hz: float = 100.0,
    offline: bool | None = None,
    use_mag: bool = True,
    fusion_params: Mapping[str, Any] | None = None,
    detrend_heading: bool = True,
    seated_neutral: bool | None = None,
) -> AngleSeries:
    """Hip and pelvis angles for a whole recording of the two sensors.

    Without ``calibration`` the recording must contain the calibration protocol (found
    automatically; the drill is what follows it, ``diagnostics.drill_start_s``). With a stored
    ``calibration`` the protocol's still phases are used if present, else the first still span of
    the recording is taken as neutral standing. ``method`` selects the orientation filter
    (:data:`sensorhub.motion.fusion.METHODS`); ``offline=True`` uses the non-causal offline VQF,
    ``False`` the causal one as live, ``None`` (default) :data:`BATCH_OFFLINE_VQF` for VQF;
    ``fusion_params`` override :data:`VQF_PARAMS`. ``use_mag=False`` ignores magnetometers;
    ``detrend_heading=False`` keeps linear heading drift (for comparison). ``seated_neutral``: take
    hip rotation as zero in the first still seated span after the protocol (the clinical seated
    neutral, shank vertical) and correct the thigh mount about the femur axis accordingly; default
    (None): only when the magnetometers did not give the thigh's heading. ``rate_hz`` (>= 50) is
    the output grid. Raises :class:`CalibrationError` when no calibration can be found or applied.
    """
    _check_side(side)
    if offline is None:
        offline = BATCH_OFFLINE_VQF and method == "vqf"
    if rate_hz < 50.0:
        raise ConfigurationError(f"output rate {rate_hz} Hz is below the 50 Hz minimum")
    diag = Diagnostics()
    grid = align.common_grid(pelvis.t_s, thigh.t_s, rate_hz)
    t = grid.t_s
    dt = float(np.median(np.diff(t)))  # the grid's median step, as every helper below computed it
    # Each sensor's median period and the sample interval of every grid point, found once: the gap
    # masks, the raw samples on the grid, the filter's rate and (for a sensor without filled gaps)
    # its orientation on the grid use them.
    period = {"pelvis": _median_period_s(pelvis), "thigh": _median_period_s(thigh)}
    j_grid = {"pelvis": kernels.grid_intervals(pelvis.t_s, t), "thigh": kernels.grid_intervals(thigh.t_s, t)}
    pg, long_p = _on_grid(pelvis, t, j_grid["pelvis"], period["pelvis"])
    tg, long_t = _on_grid(thigh, t, j_grid["thigh"], period["thigh"])
    rates_deg_s = (kernels.rate_norm_deg_s(pg.gyr_rad_s), kernels.rate_norm_deg_s(tg.gyr_rad_s))
    gap = np.asarray(pg.gap_before, dtype=bool) | np.asarray(tg.gap_before, dtype=bool)
    diag.gap_fraction = float(np.mean(gap))

    found_phases: CalibrationPhases | None = None
    if calibration is None:
        calibration = calibrate(pg, tg, side)
        found_phases = calibration.phases
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
            found_phases = phases
        except CalibrationPhaseError:
            span = _first_still_span(t, pg.gyr_rad_s, tg.gyr_rad_s)  # the stored-calibration path only
            if span is None:
                raise CalibrationError("no still span (>= 1 s) in the recording to take as neutral standing") from None
            neutral = span
            diag.notes.append(f"neutral standing taken from the first still span {span.start_s:.1f}-{span.end_s:.1f} s")
        m = neutral.mask(t)
        if found_phases is not None:
            m = m | _trimmed_mask(found_phases.still1, t)
        bias = {"pelvis": pg.gyr_rad_s[m].mean(axis=0), "thigh": tg.gyr_rad_s[m].mean(axis=0)}
    diag.neutral = neutral

    q6 = {}
    uni = {}
    q_seg = {}
    for name, smp in (("pelvis", pelvis), ("thigh", thigh)):
        rate = 1.0 / period[name] if len(smp) >= 2 else None
        q_native, uni[name] = _fuse_6d(smp, bias.get(name), method, offline, fusion_params, rate)
        same_times = uni[name].t_s is smp.t_s or np.array_equal(uni[name].t_s, smp.t_s)
        # Orientation on the grid (normalised lerp) and the segment's orientation, in one pass.
        q6[name], q_seg[name] = _grid_orientation(uni[name].t_s, q_native, t, j_grid[name] if same_times else None,
                                                  calibration.q_segment_sensor[name])
    q_earth_pelvis, q_earth_femur = q_seg["pelvis"], q_seg["thigh"]

    nm = neutral.mask(t)
    drill = t > neutral.end_s
    if detrend_heading:
        q_earth_pelvis, q_earth_femur, q6 = _remove_heading_trends(
            t, q_earth_pelvis, q_earth_femur, q6, neutral, drill & ~(long_p | long_t),
            found_phases, diag, rest_rate_deg_s=_rest_rate_deg_s(t, pg.gyr_rad_s, tg.gyr_rad_s, dt=dt, rates_deg_s=rates_deg_s),
            steps=_heading_steps(pelvis, neutral.end_s) + _heading_steps(thigh, neutral.end_s), dt=dt)
    delta0 = heading.neutral_heading_offset(q_earth_pelvis[nm], q_earth_femur[nm])
    delta_mag: FloatArray | None = None
    valid: BoolArray | None = None
    if use_mag and pg.mag_uT is not None and tg.mag_uT is not None:
        mh = _magnetic_heading(t, q6, pg.mag_uT, tg.mag_uT, nm, delta0, calibration.q_segment_sensor["thigh"], diag,
                               refine=calibration.thigh_mag_refined_deg is None)
        if mh is not None:
            delta_mag, valid, new_delta0, q_thigh_mount = mh
            if calibration.thigh_mag_refined_deg is None:
                calibration = dataclasses.replace(
                    calibration, q_segment_sensor={**calibration.q_segment_sensor, "thigh": q_thigh_mount},
                    thigh_mag_refined_deg=float(np.degrees(delta0 - new_delta0)))
                q_earth_femur = kernels.segment_orientation(q6["thigh"], q_thigh_mount)
            delta0 = new_delta0
    if delta_mag is None:
        diag.heading_mode = "gyroscope only (relative heading fixed at neutral standing, linear drift removed)"
    diag.calibration = calibration
    for ev in diag.disturbance_events:
        log.info("%s", ev.describe())
    delta = heading.batch_relative_heading(t, delta_mag, valid, delta0, nm, dt_s=dt)
    # Hip angles of the femur turned by Δ (turn, relative orientation and Cardan arguments in one
    # kernel pass; the identity mount leaves q_earth_femur as it is).
    sign = angles.side_sign(side)
    args = kernels.hip_cardan_args(q_earth_pelvis, q_earth_femur, quat.IDENTITY, delta)  # reused below
    hip = kernels.cardan_deg(args, sign)

    # Uncertainty (1σ, deg) of the thigh mount about the femur axis so far: the swing axis alone, or
    # blended with the magnetometers' heading at neutral standing.
    mount_sigma = SWING_AXIS_SIGMA_DEG
    if calibration.thigh_mag_refined_deg is not None and delta_mag is not None:
        mount_sigma = float((SWING_AXIS_SIGMA_DEG**-2 + MAG_HEADING_SIGMA_DEG**-2) ** -0.5)
    if seated_neutral is None:
        seated_neutral = SEATED_NEUTRAL_WITH_MAG or delta_mag is None
    if seated_neutral:
        span = _seated_neutral_span(t, hip[:, 0], pg.gyr_rad_s, tg.gyr_rad_s, neutral.end_s,
                                    still_dt=_still_runs(t, pg.gyr_rad_s, tg.gyr_rad_s, dt=dt, rates_deg_s=rates_deg_s))
        if span is not None and abs(float(np.mean(hip[span.mask(t), 2]))) > SEATED_NEUTRAL_MAX_DEG:
            diag.notes.append(f"first seated still span {span.start_s:.1f}-{span.end_s:.1f} s is not a neutral hold "
                              f"(hip rotation {np.mean(hip[span.mask(t), 2]):.0f}°); thigh mount from the swing axis only")
            span = None
        if span is not None:
            sm = span.mask(t)
            q_mount = calibration.q_segment_sensor["thigh"]
            total = 0.0
            w = mount_sigma**2 / (mount_sigma**2 + SEATED_NEUTRAL_SIGMA_DEG**2)
            target = (1.0 - w) * float(np.mean(hip[sm, 2]))  # inverse-variance blend with the swing axis
            # The iterations need the hip rotation only inside the hold and the thigh only at neutral
            # standing: computed on those rows (element-wise, so the same values as on all rows),
            # and the whole series once at the end.
            rot_sm = hip[sm, 2]
            d0 = delta0
            for _ in range(3):  # the standing alignment re-absorbs part of each turn: iterate
                gamma = float(np.radians((np.mean(rot_sm) - target) * angles.side_sign(side)))
                q_mount = quat.multiply(quat.from_axis_angle(np.array([0.0, 1.0, 0.0]), gamma), q_mount)
                total += gamma
                d0 = heading.neutral_heading_offset(q_earth_pelvis[nm], angles.segment_orientation(q6["thigh"][nm], q_mount))
                q_fem_sm = quat.turn_heading(delta[sm] - delta0 + d0, angles.segment_orientation(q6["thigh"][sm], q_mount))
                rot_sm = angles.hip_angles_deg(q_earth_pelvis[sm], q_fem_sm, side)[:, 2]
            # turn(Δ - Δ0 + d0) ⊗ (thigh ⊗ mount*) and the hip angles in one kernel pass (same operations).
            kernels.hip_cardan_args_into(q_earth_pelvis, q6["thigh"], q_mount, delta - delta0 + d0, args)
            hip = kernels.cardan_deg(args, sign, out=hip.T)
            calibration = dataclasses.replace(calibration, q_segment_sensor={**calibration.q_segment_sensor, "thigh": q_mount})
            diag.calibration = calibration
            diag.notes.append(f"thigh mount turned by {np.degrees(total):.1f}° about the femur axis so that hip rotation is zero "
                              f"in the seated neutral hold {span.start_s:.1f}-{span.end_s:.1f} s")

    dead = long_p | long_t
    after = drill if diag.drill_start_s is None else t > diag.drill_start_s
    flipped = _flipped_thigh_advice(t, hip[:, 0], after & ~dead, diag.calibration_source)
    if flipped is not None:
        advice, metrics = flipped
        diag.notes.append(advice)
        log.warning("calibration of the %s leg looks wrong: %s", side, advice)
        calibration = _with_failed_swings(calibration, advice, metrics)
        diag.calibration = calibration

    q_neutral = _mean_quat(q_earth_pelvis[nm])
    kernels.cardan_args_into(q_neutral[None, :], q_earth_pelvis, args)
    pel = kernels.cardan_deg(args)  # angles.pelvis_angles_deg
    hip[dead] = np.nan
    pel[dead] = np.nan
    return AngleSeries(
        t_s=t, hip_flexion_deg=hip[:, 0], hip_adduction_deg=hip[:, 1], hip_rotation_deg=hip[:, 2],
        pelvis_tilt_deg=pel[:, 0], pelvis_obliquity_deg=pel[:, 1], pelvis_rotation_deg=pel[:, 2],
        gap=gap, side=side, diagnostics=diag,
    )


def _median_period_s(samples: ImuSamples) -> float:
    """Median sample interval (s) of one sensor: ``1 / samples.rate_hz``'s denominator, computed once."""
    return float(np.median(np.diff(samples.t_s))) if len(samples) >= 2 else float("nan")


def _on_grid(samples: ImuSamples, t: FloatArray, j: NDArray[np.int64], period_s: float) -> tuple[ImuSamples, BoolArray]:
    """One sensor's raw samples on the grid (``gap_before``: grid points in a gap) and the points in a long gap.

    ``align.gap_mask`` and ``align.resample_samples(..., shared_weights=True)`` in one kernel pass
    (same values); ``j``: ``align.grid_intervals`` of the samples and the grid.
    """
    if len(samples) < 2:
        in_gap, in_long = align.gap_mask(samples, t, j=j)
        return align.resample_samples(samples, t, in_gap, shared_weights=True, j=j), in_long
    parts = [samples.acc_m_s2, samples.gyr_rad_s] + ([] if samples.mag_uT is None else [samples.mag_uT])
    flags = np.zeros(0, dtype=bool) if samples.gap_before is None else np.asarray(samples.gap_before, dtype=bool)
    values, in_gap, in_long = kernels.resample_on_grid(
        np.ascontiguousarray(samples.t_s, dtype=np.float64), tuple(np.ascontiguousarray(p, dtype=np.float64) for p in parts),
        flags, t, j, 1.5 * period_s, align.DEFAULT_MAX_BRIDGE_S)
    return ImuSamples(t_s=t, acc_m_s2=values[:, 0:3], gyr_rad_s=values[:, 3:6],
                      mag_uT=None if samples.mag_uT is None else values[:, 6:9], gap_before=in_gap), in_long


def _grid_orientation(t_s: FloatArray, q: FloatArray, t: FloatArray, j: NDArray[np.int64] | None,
                      q_segment_sensor: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``align.resample_quat(t_s, q, t, nlerp=True)`` and ``angles.segment_orientation`` of it, in one kernel pass."""
    mount = np.ascontiguousarray(q_segment_sensor, dtype=np.float64)
    if len(t_s) < 2:
        q_grid = align.resample_quat(t_s, q, t, nlerp=True)
        return q_grid, angles.segment_orientation(q_grid, mount)
    t_s = np.ascontiguousarray(t_s, dtype=np.float64)
    if j is None:
        j = kernels.grid_intervals(t_s, t)
    return kernels.nlerp_segment(t_s, np.ascontiguousarray(q, dtype=np.float64), j, t, mount)


def _magnetic_heading(
    t: FloatArray,
    q6: dict[str, FloatArray],
    mag_pelvis_uT: FloatArray,
    mag_thigh_uT: FloatArray,
    nm: BoolArray,
    delta0: float,
    q_thigh_mount: FloatArray,
    diag: Diagnostics,
    refine: bool = True,
) -> tuple[FloatArray, BoolArray, float, FloatArray] | None:
    """Magnetometer relative heading for a whole recording, or None when the fields cannot be trusted.

    Returns the raw magnetic relative heading, the mask of samples where both fields match their
    neutral reference, Δ at neutral, and the thigh mount refined about the femur axis. The fields
    are rejected altogether when the two sensors disagree on the field at neutral standing (one of
    them sits in a disturbance already) or when the magnetic heading contradicts the calibration by
    more than :data:`MAX_MAG_MOUNT_REFINEMENT_DEG`.
    """
    # Residual hard iron first: it turns the magnetic heading by a degree or two depending on the
    # sensor's orientation. Fit on samples whose field norm is near the neutral one.
    mags = {"pelvis": mag_pelvis_uT, "thigh": mag_thigh_uT}
    for name in ("pelvis", "thigh"):
        m = mags[name]
        norm = quat.norm3(m)
        ref_norm = float(np.median(norm[nm]))
        up = quat.rotate_axis(quat.conjugate(q6[name]), 2)
        h = heading.estimate_hard_iron(m, up, np.abs(norm - ref_norm) < 0.1 * ref_norm)
        mags[name] = m - h
        diag.hard_iron_uT[name] = [float(x) for x in h]
    mag_pelvis_uT, mag_thigh_uT = mags["pelvis"], mags["thigh"]
    refs = {"pelvis": heading.reference_from(q6["pelvis"][nm], mag_pelvis_uT[nm]),
            "thigh": heading.reference_from(q6["thigh"][nm], mag_thigh_uT[nm])}
    if not _references_agree(refs, diag):
        return None
    masks = []
    # The field in each sensor's earth frame, once: the disturbance masks and the relative heading use it.
    m_earth = {"pelvis": quat.rotate(q6["pelvis"], mag_pelvis_uT), "thigh": quat.rotate(q6["thigh"], mag_thigh_uT)}
    for name, mag in (("pelvis", mag_pelvis_uT), ("thigh", mag_thigh_uT)):
        bad, dn, dd = heading.disturbed_mask(t, q6[name], mag, refs[name], m_earth=m_earth[name])
        masks.append(bad)
        diag.disturbance_events.extend(heading.events_from_mask(name, t, bad, dn, dd))
    valid = ~(masks[0] | masks[1])
    delta_mag = heading.magnetic_relative_heading(q6["pelvis"], mag_pelvis_uT, q6["thigh"], mag_thigh_uT,
                                                  m_earth_pelvis=m_earth["pelvis"], m_earth_thigh=m_earth["thigh"])
    ref_ok = nm & valid
    if np.count_nonzero(ref_ok) < max(10, 0.5 * np.count_nonzero(nm)):
        diag.notes.append("magnetometers disturbed at neutral standing: heading from the gyroscopes only")
        return None
    delta_mag_neutral = float(np.angle(np.mean(np.exp(1j * delta_mag[ref_ok]))))
    if not refine:
        # A stored calibration was refined already: the magnetic heading at neutral only sets Δ.
        diag.heading_mode = "magnetometer relative heading (interpolated from the gyroscopes across disturbances)"
        return delta_mag, valid, delta_mag_neutral, q_thigh_mount
    refined = _refine_thigh_mount(delta0, delta_mag_neutral, q_thigh_mount, diag)
    if refined is None:
        return None
    diag.heading_mode = "magnetometer relative heading (interpolated from the gyroscopes across disturbances)"
    return delta_mag, valid, refined[0], refined[1]


def _references_agree(refs: dict[str, heading.MagReference], diag: Diagnostics) -> bool:
    """Both sensors must see the same field at neutral standing, else one sits in a disturbance."""
    d_norm = abs(refs["pelvis"].norm_uT - refs["thigh"].norm_uT)
    d_dip = abs(refs["pelvis"].dip_deg - refs["thigh"].dip_deg)
    if d_norm > heading.MAG_AGREE_NORM_TOL * refs["pelvis"].norm_uT or d_dip > heading.MAG_AGREE_DIP_DEG:
        diag.notes.append(f"the two magnetometers disagree at neutral standing (norm by {d_norm:.1f} µT, dip by {d_dip:.1f}°): "
                          "a disturbance at calibration; heading from the gyroscopes only")
        return False
    return True


def _refine_thigh_mount(delta0: float, delta_mag_neutral: float, q_thigh_mount: FloatArray,
                        diag: Diagnostics) -> tuple[float, FloatArray] | None:
    """Blend the swing-axis and magnetic thigh headings at neutral; None when they contradict.

    The swing axis leaves the thigh's rotation about its long axis uncertain by a few degrees
    (ab/adduction coupled to the swing tilts it); the magnetometers give the thigh's heading
    relative to the pelvis at neutral directly. The two are blended by inverse variance and the
    thigh mount is turned about the femur's Y axis accordingly. Returns (Δ at neutral, new mount).
    """
    residual = float(heading.wrap_rad(delta0 - delta_mag_neutral))
    if abs(residual) > np.radians(MAX_MAG_MOUNT_REFINEMENT_DEG):
        diag.notes.append(f"magnetometers and calibration disagree on the thigh heading by {np.degrees(residual):.0f}°: "
                          "a disturbed field at neutral; heading from the gyroscopes only")
        return None
    w_mag = SWING_AXIS_SIGMA_DEG**2 / (SWING_AXIS_SIGMA_DEG**2 + MAG_HEADING_SIGMA_DEG**2)
    residual *= w_mag
    q_mount = quat.multiply(quat.from_axis_angle(np.array([0.0, 1.0, 0.0]), -residual), q_thigh_mount)
    diag.notes.append(f"thigh mount turned by {np.degrees(residual):.1f}° about the femur axis towards the magnetometer heading at neutral")
    return delta0 - residual, q_mount


def _flipped_thigh_advice(t: FloatArray, flexion_deg: FloatArray, drill: BoolArray,
                          calibration_source: str) -> tuple[str, dict[str, float]] | None:
    """Advice and metrics when the hip flexion after the protocol says the thigh frame is flipped front to back.

    ``drill``: the rows after the protocol with data. Hip flexion below :data:`FLIPPED_FLEXION_DEG`
    for :data:`FLIPPED_MIN_S` in all is a hip extension nobody can hold; the mirror of a flexed
    posture is what a thigh frame turned 180° about the femur's long axis reports.
    """
    if len(t) < 2:
        return None
    dt = float(np.median(np.diff(t)))
    with np.errstate(invalid="ignore"):
        extended = drill & (flexion_deg < FLIPPED_FLEXION_DEG)
    n = int(np.count_nonzero(extended))
    if n * dt < FLIPPED_MIN_S:
        return None
    return _flipped_thigh_message(float(np.median(flexion_deg[extended])), n * dt, calibration_source)


def _flipped_thigh_message(held_deg: float, extension_s: float, calibration_source: str) -> tuple[str, dict[str, float]]:
    """Advice and metrics of a flipped thigh frame (batch and live word it the same way).

    ``held_deg``: the median hip flexion of the rows below :data:`FLIPPED_FLEXION_DEG`;
    ``extension_s``: how long they lasted in all; ``calibration_source`` starting with "protocol"
    (found in this recording, or run live) asks to redo the swings, otherwise the whole calibration.
    """
    redo = ("redo the swings of the calibration, further forward than back" if calibration_source.startswith("protocol")
            else "redo the calibration, with the swings further forward than back")
    advice = (f"hip flexion was about {held_deg:.0f}° for {extension_s:.0f} s after the calibration, a hip extension nobody can hold: "
              f"the front of the thigh found from the swings probably points backwards (thigh frame flipped); {redo}")
    return advice, {"drill_flexion_deg": held_deg, "drill_extension_s": extension_s}


def _with_failed_swings(calibration: Calibration, advice: str, metrics: dict[str, float]) -> Calibration:
    """``calibration`` with its swings step judged poor (``advice``), keeping the step's own metrics."""
    steps = list(calibration.quality.steps)
    for k, step in enumerate(steps):
        if step.step == "swings":
            steps[k] = StepReport("swings", False, {**step.metrics, **metrics}, advice)
            break
    else:
        steps.append(StepReport("swings", False, dict(metrics), advice))
    return dataclasses.replace(calibration, quality=CalibrationQuality(tuple(steps)))


def _seated_neutral_span(t: FloatArray, flexion_deg: FloatArray, gyr_p: FloatArray, gyr_t: FloatArray,
                         after_s: float, still_dt: tuple[BoolArray, float] | None = None) -> Interval | None:
    """First span after ``after_s`` of >= SEATED_NEUTRAL_MIN_S sitting (hip flexion > 60°) with both sensors still.

    ``still_dt``: :func:`_still_runs` of the same data, if the caller has it.
    """
    still, dt = _still_runs(t, gyr_p, gyr_t) if still_dt is None else still_dt
    for a, b in runs(still & (t > after_s) & (flexion_deg > 60.0)):
        if (b - a) * dt >= SEATED_NEUTRAL_MIN_S:
            trim = round(0.2 / dt)
            return Interval(float(t[a + trim]), float(t[b - 1 - trim]))
    return None


class _SegmentAxes:
    """A segment's X and Y axes in the earth frame (component rows, :func:`kernels.axes_xy`) and their
    headings (``arctan2``), each computed at most once.

    ``reuse``: axes no longer needed (of the same length), whose arrays are overwritten: fresh
    full-length arrays cost as much again in page faults as the arithmetic that fills them.
    """

    def __init__(self, q_earth_segment: FloatArray, reuse: _SegmentAxes | None = None) -> None:
        q = np.ascontiguousarray(q_earth_segment)
        if reuse is None:
            self.x, self.y = kernels.axes_xy(q)
            self._spare: list[FloatArray] = []
        else:
            self.x, self.y = reuse.x, reuse.y
            kernels.axes_xy_into(q, self.x, self.y)
            self._spare = list(reuse._heading.values())
        self._heading: dict[int, FloatArray] = {}

    def heading_of(self, axis: int) -> FloatArray:
        """Heading (rad, wrapped) of the X (``axis`` 0) or Y (1) axis projected onto the horizontal plane."""
        if axis not in self._heading:
            v = self.x if axis == 0 else self.y
            self._heading[axis] = np.arctan2(v[1], v[0], out=self._spare.pop() if self._spare else None)
        return self._heading[axis]

    def segment_heading(self, mask: BoolArray) -> tuple[FloatArray, BoolArray]:
        """:func:`heading.segment_heading_rad` from these axes: (unwrapped heading, where it is defined)."""
        axis = 0 if kernels.masked_abs_mean(self.x[2], mask) <= kernels.masked_abs_mean(self.y[2], mask) else 1
        v = self.x if axis == 0 else self.y
        return kernels.unwrap(self.heading_of(axis)), kernels.abs_below(v[2], 0.5)


def _heading_trend_rad_s(t: FloatArray, axes: _SegmentAxes, mask: BoolArray) -> float:
    """:func:`heading.heading_trend_rad_s` from a segment's axes (the line fit in one kernel pass)."""
    h, ok = axes.segment_heading(mask)
    count, span_s, slope, _, _ = kernels.line_fit(t, h, mask & ok)
    return 0.0 if count < 50 or span_s < 10.0 else float(slope)


def _remove_heading_trends(
    t: FloatArray,
    q_earth_pelvis: FloatArray,
    q_earth_femur: FloatArray,
    q6: dict[str, FloatArray],
    neutral: Interval,
    drill: BoolArray,
    phases: CalibrationPhases | None,
    diag: Diagnostics,
    rest_rate_deg_s: FloatArray | None = None,
    steps: list[tuple[float, float]] | None = None,
    dt: float | None = None,
) -> tuple[FloatArray, FloatArray, dict[str, FloatArray]]:
    """Remove linear heading drift from both segments (batch; see :func:`heading.heading_trend_rad_s`).

    The pelvis's heading trend over the drill is drift. The trend of the thigh's heading relative
    to the pelvis's is used when it stays within a few degrees of the trend line (seated: the
    femur's long axis barely turns relative to the pelvis); when it swings widely (standing rotation reps) a trend fit would follow the reps,
    so the relative drift measured between the two neutral still phases of the protocol is used.
    ``dt``: the grid's median step, if the caller has it. The per-sample work runs in
    :mod:`sensorhub.motion.kernels`; the quaternion arrays given (segments and ``q6``'s sensors) are
    turned in place and returned.
    """
    t_ref = 0.5 * (neutral.start_s + neutral.end_s)
    if dt is None:
        dt = float(np.median(np.diff(t)))
    # The quaternion arrays are turned in place (the caller's own, unturned values are not used again):
    # no fresh (n, 4) arrays.
    q6 = {**q6, "pelvis": np.ascontiguousarray(q6["pelvis"]), "thigh": np.ascontiguousarray(q6["thigh"])}
    q_earth_pelvis, q_earth_femur = np.ascontiguousarray(q_earth_pelvis), np.ascontiguousarray(q_earth_femur)

    def turn(q: FloatArray, q_sensor: FloatArray, rate: float) -> None:
        """The segment and its sensor turned back by the same drift (one cosine and sine), in place."""
        kernels.turn_linear_pair_inplace(rate, t, t_ref, q, q_sensor)

    axes_p0 = _SegmentAxes(q_earth_pelvis)
    rate_p = _heading_trend_rad_s(t, axes_p0, drill)
    turn(q_earth_pelvis, q6["pelvis"], rate_p)
    diag.heading_trend_deg_min["pelvis"] = float(np.degrees(rate_p) * 60.0)
    # The thigh's heading relative to the pelvis's: pelvis compensation (the thigh turning along
    # with the pelvis) is not drift and drops out.
    # Segment axes and headings in the earth frame, once: the trend below and the rest-drift fit both use them.
    axes_f, axes_p = _SegmentAxes(q_earth_femur), _SegmentAxes(q_earth_pelvis, reuse=axes_p0)
    h_f, ok_f = axes_f.segment_heading(drill)
    h_p, ok_p = axes_p.segment_heading(drill)
    h = h_f - h_p
    m = drill & ok_f & ok_p
    rate_t = 0.0
    source = "none"
    count, span_s, slope, _, resid_std = kernels.line_fit(t, h, m)
    if count >= 50 and span_s >= 10.0:
        spread = float(np.degrees(resid_std))
        if spread <= THIGH_TREND_MAX_SPREAD_DEG:
            rate_t, source = float(slope), f"thigh heading trend over the drill (spread {spread:.1f}°)"
    if source == "none" and phases is not None:
        m1, m2 = _trimmed_mask(phases.still1, t), _trimmed_mask(phases.still2, t)
        if np.any(m1) and np.any(m2):
            d1 = heading.neutral_heading_offset(q_earth_pelvis[m1], q_earth_femur[m1])
            d2 = heading.neutral_heading_offset(q_earth_pelvis[m2], q_earth_femur[m2])
            dt_phases = float(np.mean(t[m2]) - np.mean(t[m1]))
            # Δ grows when the thigh frame turns clockwise relative to the pelvis frame.
            rate_t = -float(heading.wrap_rad(d2 - d1)) / dt_phases
            source = "relative drift between the two neutral still phases"
    curve = None
    if REST_DRIFT and rest_rate_deg_s is not None and phases is not None:
        curve = _rest_drift_curve(t, axes_f, axes_p, drill, phases, t_ref, rate_t, rest_rate_deg_s, steps or [], dt)
    if curve is not None:
        source = (f"joint fit over {curve.n_rest_used} neutral rests and both still phases "
                  f"(residual {curve.rms_residual_deg:.1f}°; {source} {np.degrees(rate_t) * 60:.1f}°/min)")
        rate_t = curve.mean_rate_rad_s()
        drift = curve(t)
        np.negative(drift, out=drift)
        kernels.turn_pair_inplace(drift, q_earth_femur, q6["thigh"])
    elif source != "none":
        turn(q_earth_femur, q6["thigh"], rate_t)
    diag.heading_trend_deg_min["thigh"] = float(np.degrees(rate_t) * 60.0)
    diag.notes.append(f"heading drift removed: pelvis {np.degrees(rate_p) * 60:.1f}°/min, thigh {np.degrees(rate_t) * 60:.1f}°/min ({source})")
    return q_earth_pelvis, q_earth_femur, q6


def _rest_rate_deg_s(t: FloatArray, gyr_p: FloatArray, gyr_t: FloatArray, *, dt: float | None = None,
                     rates_deg_s: tuple[FloatArray, FloatArray] | None = None) -> FloatArray:
    """The larger of the two sensors' angular rates (deg/s), as a heading.REST_SMOOTH_S moving mean.

    ``dt`` (the grid's median step) and ``rates_deg_s`` (both rate norms, :func:`kernels.rate_norm_deg_s`)
    if the caller has them.
    """
    if dt is None:
        dt = float(np.median(np.diff(t)))
    if rates_deg_s is None:
        rates_deg_s = (kernels.rate_norm_deg_s(gyr_p), kernels.rate_norm_deg_s(gyr_t))
    n = max(1, round(heading.REST_SMOOTH_S / dt))
    rates = [uniform_filter1d(r, n, mode="nearest") for r in rates_deg_s]
    return np.asarray(np.maximum(rates[0], rates[1]))


def _rest_drift_curve(t: FloatArray, axes_f: _SegmentAxes, axes_p: _SegmentAxes, drill: BoolArray,
                      phases: CalibrationPhases, t_ref: float, rate_init: float,
                      rest_rate_deg_s: FloatArray, steps: list[tuple[float, float]], dt: float) -> heading.DriftCurve | None:
    """Thigh-relative heading drift fitted jointly to both still phases and every rest in the drill.

    The relative heading is the femur's heading minus the pelvis's: of the femur's X axis while the
    femur is upright (standing: hip rotation) and of its long axis while it lies flat (seated:
    adduction, independent of the rotation about the long axis). Each posture has its own level.
    ``axes_f``, ``axes_p``: the femur's and the pelvis's axes; ``dt``: the grid's median step.
    """
    rel, group, upright = kernels.relative_heading_groups(axes_f.y[2], axes_p.x[2], axes_f.heading_of(0),
                                                          axes_f.heading_of(1), axes_p.heading_of(0))
    fixed = []
    for iv in (phases.still1, phases.still2):
        m = _trimmed_mask(iv, t) & upright
        if np.count_nonzero(m) < 5:
            return None
        fixed.append((float(np.mean(t[m])), float(np.angle(np.mean(np.exp(1j * rel[m]))))))
    # Centre each group's headings near zero so that averages over a rest never straddle ±π.
    for g in (0, 1):
        c = fixed[1][1] if g == 0 else kernels.circular_mean(rel, group, 1, drill)
        kernels.wrap_about(rel, group, g, 0.0 if math.isnan(c) else c)
    pts = [heading.RestPoint(tm, v, np.radians(heading.STILL_PHASE_SIGMA_DEG), 0, fixed=True) for tm, v in fixed]
    t_rest, h_rest, g_rest = kernels.rest_runs(t, rel, group, rest_rate_deg_s, drill, heading.REST_MAX_DEG_S, dt,
                                               heading.REST_MIN_S)
    sigma = np.radians(heading.REST_SIGMA_DEG)
    pts += [heading.RestPoint(a, b, sigma, g) for a, b, g in zip(t_rest.tolist(), h_rest.tolist(), g_rest.tolist())]
    in_drill = np.flatnonzero(drill)
    end = float(t[in_drill[-1]]) if in_drill.size else float(t[-1])
    return heading.fit_rest_drift(pts, t_ref, end, rate_init, steps=sorted(steps) if HEADING_STEPS else ())


def _heading_steps(samples: ImuSamples, after_s: float) -> list[tuple[float, float]]:
    """(time, prior σ in rad) of a possible heading jump at every gap >= heading.STEP_MIN_GAP_S after ``after_s``."""
    t = samples.t_s
    d = np.diff(t)
    gaps = np.flatnonzero((d >= heading.STEP_MIN_GAP_S) & (t[1:] > after_s))
    # The angular rate at the two edges of each gap only (the same values as over all samples).
    rate_before = np.degrees(quat.norm3(samples.gyr_rad_s[gaps]))
    rate_after = np.degrees(quat.norm3(samples.gyr_rad_s[gaps + 1]))
    out = []
    for k, i in enumerate(gaps):
        edge_deg_s = 0.5 * (rate_before[k] + rate_after[k])
        sigma = max(heading.STEP_MIN_SIGMA_DEG, heading.STEP_FRACTION * edge_deg_s * float(d[i]))
        out.append((float(0.5 * (t[i] + t[i + 1])), float(np.radians(sigma))))
    return out


def _trimmed_mask(iv: Interval, t: FloatArray) -> BoolArray:
    trim = min(0.25, 0.2 * iv.duration_s)
    return Interval(iv.start_s + trim, iv.end_s - trim).mask(t)


def _mean_quat(q: FloatArray) -> FloatArray:
    """Mean orientation of nearby quaternions (sign-aligned average, renormalised)."""
    q = quat.make_continuous(q)
    return quat.normalize(q.mean(axis=0))


# --------------------------------------------------------------------------------------------
# Online


@dataclass(frozen=True)
class AngleFrame:
    """One output frame of :class:`OnlinePipeline` (degrees; NaN inside long gaps)."""

    t_s: float
    hip_flexion_deg: float
    hip_adduction_deg: float
    hip_rotation_deg: float
    pelvis_tilt_deg: float
    pelvis_obliquity_deg: float
    pelvis_rotation_deg: float
    gap: bool


def _heading_of(q_earth_segment: FloatArray, axis: FloatArray) -> tuple[FloatArray, BoolArray]:
    v = quat.rotate(q_earth_segment, axis)
    return np.asarray(np.arctan2(v[:, 1], v[:, 0])), np.asarray(np.abs(v[:, 2]) < 0.5)


def _slerp_at(t_s: FloatArray, q: FloatArray, t_new: FloatArray) -> FloatArray:
    """Interpolate a quaternion series at times inside ``[t_s[0], t_s[-1]]`` (normalised lerp).

    Between consecutive samples a sensor turns by at most a few degrees, where normalised linear
    interpolation differs from slerp by well under 0.01° and costs a fraction.
    """
    # Called twice per live notification on a handful of rows: np.clip and np.linalg.norm cost more
    # in call overhead than in arithmetic; minimum/maximum and sqrt(add.reduce) compute the same bits.
    i = np.minimum(np.maximum(np.searchsorted(t_s, t_new, side="right") - 1, 0), len(t_s) - 2)
    u = ((t_new - t_s[i]) / (t_s[i + 1] - t_s[i]))[:, None]
    a, b = q[i], q[i + 1]
    b = b * np.sign(np.einsum("ij,ij->i", a, b) + 1e-300)[:, None]
    out = a + u * (b - a)
    return np.asarray(out / np.sqrt(np.add.reduce(out * out, axis=1, keepdims=True)))


class _FrameHistory:
    """The last ``capacity`` emitted angle rows (t and six angles) and their gap flags.

    ``capacity`` None keeps every row (grows by doubling); 0 keeps none. A bounded history is a ring
    buffer that grows by doubling up to ``capacity`` rows and then overwrites its oldest rows.
    """

    def __init__(self, capacity: int | None, width: int = 7) -> None:
        self.capacity = capacity
        self.n_total = 0
        """Rows appended so far, kept or not."""
        size = 0 if capacity == 0 else (1024 if capacity is None else min(capacity, 1024))
        self._rows = np.empty((size, width))
        self._gap = np.zeros(size, dtype=bool)

    def _grow(self, needed: int) -> None:
        """Enlarge the buffer (only before the ring has wrapped: rows 0..n_total-1 are in order)."""
        size = max(needed, 2 * len(self._rows))
        if self.capacity is not None:
            size = min(size, self.capacity)
        rows = np.empty((size, self._rows.shape[1]))
        gap = np.zeros(size, dtype=bool)
        n = min(self.n_total, len(self._rows))
        rows[:n], gap[:n] = self._rows[:n], self._gap[:n]
        self._rows, self._gap = rows, gap

    def append(self, rows: FloatArray, gap: BoolArray) -> None:
        k, cap = len(rows), self.capacity
        if cap == 0 or k == 0:
            self.n_total += k
            return
        if cap is not None and k > cap:
            self.n_total += k - cap
            rows, gap, k = rows[-cap:], gap[-cap:], cap
        end = self.n_total + k
        if cap is None or end <= cap:
            if end > len(self._rows):
                self._grow(end)
            self._rows[self.n_total:end], self._gap[self.n_total:end] = rows, gap
        else:
            if len(self._rows) < cap:
                self._grow(cap)
            start = self.n_total % cap
            first = min(k, cap - start)
            self._rows[start:start + first], self._gap[start:start + first] = rows[:first], gap[:first]
            self._rows[:k - first], self._gap[:k - first] = rows[first:], gap[first:]
        self.n_total = end

    def arrays(self) -> tuple[FloatArray, BoolArray]:
        """(rows, gap flags) kept, oldest first (copies)."""
        cap = self.capacity
        if cap is None or cap == 0 or self.n_total <= cap:
            n = 0 if cap == 0 else self.n_total
            return self._rows[:n].copy(), self._gap[:n].copy()
        start = self.n_total % cap
        return (np.concatenate((self._rows[start:], self._rows[:start])),
                np.concatenate((self._gap[start:], self._gap[:start])))


#: A sensor's orientation tail is trimmed to what the next grid point needs once it is longer than this.
_TAIL_TRIM_ROWS = 24
#: Subtracted from the right-neighbour indices j: rows (j - 1, j).
_LEFT_RIGHT = np.array([[1], [0]])


class _Tail:
    """A sensor's recent orientations for the grid interpolation: times, quaternions, field, gap flags.

    Blocks are appended and old rows dropped from the front once per pushed block; the rows live in
    preallocated arrays (compacted or doubled when the end is reached), so a block costs four slice
    assignments instead of four concatenations. The properties are views of the live rows.
    """

    def __init__(self) -> None:
        self._t = np.zeros(0)
        self._q = np.zeros((0, 4))
        self._mag = np.zeros((0, 3))
        self._gap = np.zeros(0, dtype=bool)
        self._i0 = 0
        self._i1 = 0

    def reset(self, t_s: FloatArray, q: FloatArray, mag: FloatArray, gap: BoolArray) -> None:
        """Replace the rows by these (copied)."""
        self._i0, self._i1 = 0, 0
        self._allocate(max(64, 2 * len(t_s)))
        self.append(t_s, q, mag, gap)

    def _allocate(self, capacity: int) -> None:
        n = self._i1 - self._i0
        t, q, mag, gap = np.empty(capacity), np.empty((capacity, 4)), np.empty((capacity, 3)), np.zeros(capacity, dtype=bool)
        t[:n], q[:n], mag[:n], gap[:n] = self.t_s, self.q, self.mag, self.gap
        self._t, self._q, self._mag, self._gap = t, q, mag, gap
        self._i0, self._i1 = 0, n

    def append(self, t_s: FloatArray, q: FloatArray, mag: FloatArray | float, gap: BoolArray) -> None:
        """Add rows at the end (``mag`` 0.0: no field, zeros)."""
        k = len(t_s)
        if self._i1 + k > len(self._t):
            self._allocate(max(64, 2 * (self._i1 - self._i0 + k)))
        i1 = self._i1
        self._t[i1:i1 + k], self._q[i1:i1 + k], self._mag[i1:i1 + k], self._gap[i1:i1 + k] = t_s, q, mag, gap
        self._i1 = i1 + k

    def drop(self, k: int) -> None:
        """Forget the oldest ``k`` rows."""
        self._i0 = min(self._i0 + k, self._i1)

    def __len__(self) -> int:
        return self._i1 - self._i0

    @property
    def t_s(self) -> FloatArray:
        return self._t[self._i0:self._i1]

    @property
    def q(self) -> FloatArray:
        return self._q[self._i0:self._i1]

    @property
    def mag(self) -> FloatArray:
        return self._mag[self._i0:self._i1]

    @property
    def gap(self) -> BoolArray:
        return self._gap[self._i0:self._i1]


#: Live: across a gap longer than align.DEFAULT_MAX_BRIDGE_S the restarted filter takes the heading
#: of the last orientation turned by the gyroscope interpolated through the gap (_Stream._gap_turn),
#: as batch's bridged restart (BATCH_CAUSAL_RESTART), instead of the last heading as it was: a
#: 0.5-s gap during fast rotation otherwise leaves a heading step of several degrees.
ONLINE_BRIDGE_GAP_TURN = True


class _Stream:
    """One sensor's live state: raw buffer until calibrated, then its filter and a short tail."""

    def __init__(self, name: str, nominal_rate_hz: float | None) -> None:
        self.name = name
        self.rate_hz = nominal_rate_hz
        # Raw samples (gaps filled) kept until the filters start; one growing array each.
        self.raw: ImuSamples | None = None
        self.filter: Any = None
        self.bias = np.zeros(3)
        self.hard_iron = np.zeros(3)
        self.tail = _Tail()
        self.last_t: float | None = None
        # The latest blocks (all, and those with a field), enough for three samples each: the left
        # neighbours of a possible gap (hist_*), put together only when a gap comes.
        self._recent: list[ImuSamples] = []
        self._recent_mag: list[ImuSamples] = []
        # Heading continuity across filter restarts after long gaps (see restart_filter).
        self.q_before_restart: FloatArray | None = None
        self.q_heading_fix: FloatArray | None = None
        self.gap_turn: FloatArray | None = None

    def fill_gap(self, block: ImuSamples) -> tuple[ImuSamples, BoolArray, bool]:
        """Bridge a short gap before ``block``; return (samples, gap flags, whether the gap was long).

        Up to :data:`sensorhub.motion.align.DEFAULT_MAX_BRIDGE_S` between the last sample and the
        block's first, the missing samples are inserted on the nominal grid (Akima through three
        neighbours on each side, as in batch) and flagged. A longer gap is not filled — nothing is
        invented: the block comes back unchanged, its first sample flagged, and ``True`` tells the
        caller to re-initialise the orientation (:meth:`restart_filter`).
        """
        if self.last_t is None or self.rate_hz is None or len(block) == 0:
            return block, np.zeros(len(block), dtype=bool), False
        dt = 1.0 / self.rate_hz
        missing = round((block.t_s[0] - self.last_t) / dt) - 1
        if missing <= 0:
            return block, np.zeros(len(block), dtype=bool), False
        if block.t_s[0] - self.last_t > align.DEFAULT_MAX_BRIDGE_S:
            gap = np.zeros(len(block), dtype=bool)
            gap[0] = True
            self.gap_turn = self._gap_turn(block) if ONLINE_BRIDGE_GAP_TURN else None
            return block, gap, True
        t_fill = self.last_t + (block.t_s[0] - self.last_t) * np.arange(1, missing + 1) / (missing + 1)
        k = min(3, len(block))
        t_nb = np.concatenate((self.hist_t, block.t_s[:k]))

        def fill(hist: FloatArray, new: FloatArray) -> FloatArray:
            y = np.vstack((hist, new[:k]))
            if len(t_nb) < 3:
                return np.asarray(hist[-1] + (new[0] - hist[-1]) * ((t_fill - t_nb[0]) / (t_nb[-1] - t_nb[0]))[:, None])
            return np.asarray(Akima1DInterpolator(t_nb, y, axis=0)(t_fill))

        mag = None
        if block.mag_uT is not None:
            mag = np.vstack((fill(self.hist_mag, block.mag_uT) if len(self.hist_mag) == len(self.hist_t) else np.repeat(block.mag_uT[:1], missing, 0), block.mag_uT))
        filled = ImuSamples(
            np.concatenate((t_fill, block.t_s)),
            np.vstack((fill(self.hist_acc, block.acc_m_s2), block.acc_m_s2)),
            np.vstack((fill(self.hist_gyr, block.gyr_rad_s), block.gyr_rad_s)),
            mag,
        )
        gap = np.zeros(len(filled), dtype=bool)
        gap[: missing + 1] = True
        return filled, gap, False

    def split_at_gaps(self, block: ImuSamples) -> list[ImuSamples]:
        """``block`` cut before every sample that follows a missing one (same test as :meth:`fill_gap`).

        Each piece then gets its own gap handling, so the result does not depend on how a source cut
        the stream into blocks.
        """
        t = block.t_s
        # Fast path (the usual block): every step well below 1.5 sample periods.
        if self.rate_hz is None or len(t) < 2 or float((t[1:] - t[:-1]).max()) * self.rate_hz < 1.4:
            return [block]
        cuts = np.flatnonzero(np.rint(np.diff(t) * self.rate_hz) >= 2.0) + 1
        if len(cuts) == 0:
            return [block]
        edges = [0, *cuts.tolist(), len(block)]
        return [align.slice_samples(block, a, b) for a, b in itertools.pairwise(edges)]

    def _gap_turn(self, block: ImuSamples) -> FloatArray | None:
        """The sensor's turn across the gap before ``block`` (body frame, w x y z), from its gyroscope
        interpolated through the gap (Akima through three samples on each side, as a short gap is
        filled, bias removed) and integrated on the nominal grid; None without neighbours.

        Batch bridges a long gap the same way (its filter runs through the interpolated samples and
        the restarted filter takes that heading); live the turn is applied when the filter restarts.
        """
        if self.rate_hz is None or self.last_t is None or len(self.hist_t) == 0:
            return None
        k = min(3, len(block))
        t_nb = np.concatenate((self.hist_t, block.t_s[:k]))
        g_nb = np.vstack((self.hist_gyr, block.gyr_rad_s[:k])) - self.bias
        t0, t1 = self.last_t, float(block.t_s[0])
        m = max(1, round((t1 - t0) * self.rate_hz))
        edges = t0 + (t1 - t0) * np.arange(m + 1) / m
        mid = 0.5 * (edges[1:] + edges[:-1])
        if len(t_nb) >= 3:
            w = np.asarray(Akima1DInterpolator(t_nb, g_nb, axis=0)(mid))
        else:
            w = g_nb[0] + (g_nb[-1] - g_nb[0]) * ((mid - t_nb[0]) / (t_nb[-1] - t_nb[0]))[:, None]
        q = quat.IDENTITY.copy()
        for rv in w * ((t1 - t0) / m):
            angle = float(np.sqrt(rv @ rv))
            if angle > 0.0:
                q = quat.multiply(q, quat.from_axis_angle(rv / angle, angle))
        return q

    def restart_filter(self) -> None:
        """After a long gap: forget the filter's state (it re-initialises its inclination from the
        accelerometer on the next samples) and carry the heading on (:meth:`fix_heading`): the last
        orientation before the gap, turned by the gyroscope interpolated through the gap
        (:meth:`_gap_turn`, when :data:`ONLINE_BRIDGE_GAP_TURN`)."""
        if self.filter is None or len(self.tail) == 0:
            return
        self.filter.reset()
        q = self.tail.q[-1].copy()
        if self.gap_turn is not None:
            q = quat.normalize(quat.multiply(q, self.gap_turn))
        self.gap_turn = None
        self.q_before_restart = q

    def fix_heading(self, q_earth_sensor: FloatArray) -> FloatArray:
        """Apply the heading correction that continues the heading across a filter restart.

        The first orientation after a restart is turned about the vertical onto the last one before
        it (the twist about earth Z of ``q_before · q_first⁻¹``): the heading during the gap is
        unknowable from gravity alone, and the last known one is the best guess.
        """
        if self.q_before_restart is not None and len(q_earth_sensor):
            d = quat.multiply(self.q_before_restart, quat.conjugate(q_earth_sensor[0]))
            self.q_heading_fix = quat.from_axis_angle(np.array([0.0, 0.0, 1.0]), 2.0 * np.arctan2(d[3], d[0]))
            self.q_before_restart = None
        if self.q_heading_fix is None:
            return q_earth_sensor
        return quat.multiply(self.q_heading_fix, q_earth_sensor)

    def remember(self, block: ImuSamples) -> None:
        """Keep the last three samples as the left neighbours of a possible gap."""
        self.last_t = float(block.t_s[-1])
        _keep_last_three(self._recent, block)
        if block.mag_uT is not None:
            _keep_last_three(self._recent_mag, block)

    @property
    def hist_t(self) -> FloatArray:
        """Times of the last (up to) three samples."""
        return np.concatenate([b.t_s for b in self._recent] or [np.zeros(0)])[-3:]

    @property
    def hist_acc(self) -> FloatArray:
        return np.vstack([b.acc_m_s2 for b in self._recent] or [np.zeros((0, 3))])[-3:]

    @property
    def hist_gyr(self) -> FloatArray:
        return np.vstack([b.gyr_rad_s for b in self._recent] or [np.zeros((0, 3))])[-3:]

    @property
    def hist_mag(self) -> FloatArray:
        """Field of the last (up to) three samples that had one."""
        return np.vstack([b.mag_uT for b in self._recent_mag if b.mag_uT is not None] or [np.zeros((0, 3))])[-3:]


def _keep_last_three(blocks: list[ImuSamples], block: ImuSamples) -> None:
    """Append ``block`` and drop the oldest blocks not needed for the last three samples."""
    blocks.append(block)
    n = 0
    for k in range(len(blocks) - 1, -1, -1):
        n += len(blocks[k])
        if n >= 3:
            del blocks[:k]
            return


_REST_NOTE = "relative heading drift (standing) fitted live to"
#: Rests the live fit keeps (the latest; about 20 minutes of a standing drill): bounds its memory
#: and the cost of each refit in a session that runs for hours.
_LIVE_REST_MAX = 600

#: Live: fit the thigh's relative heading drift in the standing posture to the drill's rests as well
#: as the protocol's still phases (_LiveRestDrift), as batch does, instead of the still phases alone.
ONLINE_REST_DRIFT = True


class _LiveRestDrift:
    """Live counterpart of the batch rest-drift fit (:func:`heading.fit_rest_drift`), standing posture only.

    The thigh's heading relative to the pelvis's (femur X against pelvis X, before any correction)
    at every rest of the drill — both sensors below heading.REST_MAX_DEG_S as a
    heading.REST_SMOOTH_S trailing mean, for at least heading.REST_MIN_S — lies on one line
    ``level + rate·(t − t_ref)`` together with the protocol's two neutral still phases (σ
    heading.STILL_PHASE_SIGMA_DEG for those, heading.REST_SIGMA_DEG for each rest): the athlete
    returns to the same neutral. End-range holds are gated out against the current line
    (heading.REST_GATES_DEG, starting from the still-phase rate), as in batch; with fewer than 4
    rests agreeing the fit gives nothing. One straight line, no knots (batch bends every 60 s) and
    no steps at gaps. Refitted when a rest ends (a 2-parameter weighted least squares).

    Why: the still phases alone are two numbers about 15 s apart, each off by postural sway, so the
    rate they give is off by several °/min, which a standing rotation drill (whose relative heading
    swings too far for a trend) kept for its whole length.
    """

    def __init__(self, t_ref_s: float, fixed: list[tuple[float, float]], rate_init_rad_s: float, dt_s: float) -> None:
        self._t_ref = t_ref_s
        self._center = fixed[-1][1]
        self._fixed_t = np.array([f[0] for f in fixed])
        self._fixed_y = np.array([f[1] for f in fixed])
        self._rate_init = rate_init_rad_s
        self._dt = dt_s
        self._n_smooth = max(1, round(heading.REST_SMOOTH_S / dt_s))
        # Frames wait this many frames for the rest of their centred window (scipy's centring of an
        # even-sized uniform filter: n // 2 before, n - 1 - n // 2 after).
        self._lag = self._n_smooth - 1 - self._n_smooth // 2
        self._recent: list[float] = []
        self._pending: list[tuple[float, float, float, bool]] = []
        self._run_t: list[float] = []
        self._run_y: list[float] = []
        self._rest_t: list[float] = []
        self._rest_y: list[float] = []
        #: Fitted drift rate of the relative heading (rad/s), None until enough rests agree.
        self.rate_rad_s: float | None = None
        self.n_used = 0

    def add(self, t: FloatArray, rate_deg_s: FloatArray, rel_rad: FloatArray, ok: BoolArray) -> bool:
        """One block of frames: time, larger sensor rate, relative heading, whether the frame may be a
        standing rest. True when a rest ended and the fit changed.

        A frame is judged once the moving mean centred on it is known (as batch's
        ``uniform_filter1d``), i.e. about heading.REST_SMOOTH_S / 2 after it arrived: a trailing mean
        would let the first frames of each movement into the rest before it.
        """
        changed = False
        recent, pending, n_smooth, lag = self._recent, self._pending, self._n_smooth, self._lag
        for frame in zip(t.tolist(), rate_deg_s.tolist(), rel_rad.tolist(), ok.tolist()):
            recent.append(frame[1])
            if len(recent) > n_smooth:
                del recent[0]
            pending.append(frame)
            if len(pending) <= lag:
                continue
            ti, _, yi, oki = pending.pop(0)
            if oki and math.isfinite(yi) and sum(recent) / len(recent) < heading.REST_MAX_DEG_S:
                self._run_t.append(ti)
                self._run_y.append((yi - self._center + math.pi) % (2.0 * math.pi) - math.pi + self._center)
            elif self._run_t:
                changed |= self._close_run()
        return changed

    def _close_run(self) -> bool:
        n = len(self._run_t)
        long_enough = n * self._dt >= heading.REST_MIN_S
        if long_enough:
            self._rest_t.append(sum(self._run_t) / n)
            self._rest_y.append(sum(self._run_y) / n)
            if len(self._rest_t) > _LIVE_REST_MAX:
                del self._rest_t[0], self._rest_y[0]
        self._run_t, self._run_y = [], []
        return long_enough and self._fit()

    def _fit(self) -> bool:
        if len(self._rest_t) < 4:
            return False
        t_rest, y_rest = np.array(self._rest_t), np.array(self._rest_y)
        w_fixed = np.radians(heading.STILL_PHASE_SIGMA_DEG) ** -2
        w_rest = np.radians(heading.REST_SIGMA_DEG) ** -2
        rate = self._rate_init
        level = float(np.mean(self._fixed_y))
        fitted: float | None = None
        used = 0
        for gate in heading.REST_GATES_DEG:
            dev = y_rest - (level + rate * (t_rest - self._t_ref))
            m = np.abs(dev) <= np.radians(gate)
            used = int(np.count_nonzero(m))
            if used < 4:
                fitted = None
                break
            x = np.concatenate((self._fixed_t, t_rest[m])) - self._t_ref
            y = np.concatenate((self._fixed_y, y_rest[m]))
            w = np.concatenate((np.full(len(self._fixed_t), w_fixed), np.full(used, w_rest)))
            # Weighted least squares of y = level + rate·x (normal equations, 2x2).
            sw, sx, sy = w.sum(), (w * x).sum(), (w * y).sum()
            sxx, sxy = (w * x * x).sum(), (w * x * y).sum()
            det = sw * sxx - sx * sx
            if not det > 0.0:
                fitted = None
                break
            rate = float((sw * sxy - sx * sy) / det)
            level = float((sy - rate * sx) / sw)
            fitted = rate
        changed = fitted != self.rate_rad_s
        self.rate_rad_s = fitted
        self.n_used = used if fitted is not None else 0
        return changed


#: Live: apply the seated neutral hold also when the magnetometers refined the thigh mount at neutral
#: standing, blended with their uncertainty (the mag-refined mount as σ 1.8°, from
#: SWING_AXIS_SIGMA_DEG and MAG_HEADING_SIGMA_DEG), as batch does (SEATED_NEUTRAL_WITH_MAG). Without
#: it the live seated 9-axis rotation kept the whole error of the magnetic refinement (a field turned
#: by a chair nearby or a residual hard iron: 2.1-2.3° rotation RMSE on the table's 200/60-Hz seated
#: session, docs/accuracy.md "Session 3").
ONLINE_SEATED_NEUTRAL_WITH_MAG = True


class OnlinePipeline:
    """Live hip and pelvis angles: blocks of samples per sensor in, angle frames out.

    Life cycle: without a ``calibration`` the pipeline first runs :class:`LiveCalibration` on the
    incoming data (``status`` tells the athlete what to do); with one, it waits for 1 s of standing
    still to take as neutral. It then warms the orientation filters up on the buffered data (so the
    neutral heading alignment is the same as in batch mode) and from then on emits one
    :class:`AngleFrame` per grid point (``rate_hz``) as soon as both sensors have data past it.

    Heading: the thigh's heading relative to the pelvis follows the magnetometers through a causal
    low-pass where both fields match their reference, and is frozen (gyroscope only) while either
    is disturbed — see :class:`sensorhub.motion.heading.OnlineRelativeHeading`. Without
    magnetometers it stays at the neutral alignment. Heading drift is removed causally
    (:meth:`_remove_drift`: running trends; standing, the relative drift fitted to the drill's rests,
    :class:`_LiveRestDrift`). The first still seated span corrects the thigh mount about the femur
    axis (:meth:`_watch_seated_neutral`, also with the magnetometers' heading, as batch), and a
    drill that reads as an impossible hip extension flags the thigh frame as flipped
    (:meth:`_watch_flipped_thigh`). Per-block cost is a few hundred microseconds
    (benchmarks/online_latency.py, benchmarks/bench_live_block.py).

    Gaps, as in batch: a block is first cut at every missing sample, so the result does not depend
    on how a source cut the stream. Up to :data:`sensorhub.motion.align.DEFAULT_MAX_BRIDGE_S` the
    missing samples are interpolated (frames flagged ``gap``); a longer gap is never filled — its
    frames are NaN (and ``gap``), which the rep detector takes as a break — and the sensor's filter
    restarts on the samples after it: inclination from the accelerometer at once, heading carried
    on from the last orientation before the gap turned by the gyroscope interpolated through it
    (``_Stream.restart_filter``, ``_Stream._gap_turn``).

    ``history_s``: how much of the emitted frames :meth:`series` can return (the last ``history_s``
    seconds; default :data:`DEFAULT_HISTORY_S`); None keeps all, 0 none. It bounds the pipeline's
    memory in long live sessions and changes nothing else.
    """

    def __init__(self, side: str, *, calibration: Calibration | None = None, rate_hz: float = 100.0, method: str = "vqf",
                 use_mag: bool = True, sensor_rates_hz: Mapping[str, float] | None = None, detrend_heading: bool = True,
                 seated_neutral: bool | None = None, history_s: float | None = DEFAULT_HISTORY_S) -> None:
        _check_side(side)
        if history_s is not None and not history_s >= 0.0:
            raise ConfigurationError(f"OnlinePipeline: history_s must be >= 0 s or None, got {history_s}")
        self.side = side
        self.rate_hz = float(rate_hz)
        self.method = method
        self.use_mag = use_mag
        self.detrend_heading = detrend_heading
        self.seated_neutral = seated_neutral
        self._seated_pending = False
        self._given_calibration = calibration
        self.calibration: Calibration | None = None
        self.live_calibration = None if calibration is not None else LiveCalibration(side, rate_hz)
        self.state = "calibrating" if calibration is None else "waiting_for_still"
        rates = dict(sensor_rates_hz or {})
        self._streams = {n: _Stream(n, rates.get(n)) for n in ("pelvis", "thigh")}
        self._next_t: float | None = None
        self._history = _FrameHistory(None if history_s is None else math.ceil(history_s * self.rate_hz))
        self._heading = heading.OnlineRelativeHeading(self.rate_hz)
        self._mag_ref: dict[str, heading.MagReference] = {}
        self._q_neutral = quat.IDENTITY.copy()
        self._still_run: float | None = None
        self.diagnostics = Diagnostics()
        self._dist_open: dict[str, list[float] | None] = {"pelvis": None, "thigh": None}
        self._side_sign = angles.side_sign(side)
        self._m_sensor_segment: dict[str, FloatArray] = {}
        self._m_pair = np.zeros((2, 1, 3, 3))
        self._mag_ref_arrays: tuple[FloatArray, FloatArray, FloatArray] | None = None
        # Thigh mount uncertainty about the femur axis (1σ, deg) for the seated neutral blend.
        self._mount_sigma_deg = SWING_AXIS_SIGMA_DEG
        # Flipped-thigh check (see _watch_flipped_thigh): armed once streaming; hip flexion of the
        # frames below FLIPPED_FLEXION_DEG so far; the swings verdict once the check fired.
        self._flip_pending = False
        self._flip_flexion_deg: list[float] = []
        self._flip_verdict: StepReport | None = None
        # Standing rest-drift fit (None: not used) and each sensor's last frame orientation, for the rates it needs.
        self._rest_drift: _LiveRestDrift | None = None
        self._q_prev: FloatArray | None = None

    @property
    def status(self) -> LiveCalibrationStatus | None:
        """The live calibration status (step, progress, prompt, verdicts); None with a stored calibration.

        Once the drill's posture showed a flipped thigh frame (:meth:`_watch_flipped_thigh`) the
        swings verdict is the failed one, with its advice.
        """
        if self.live_calibration is None:
            return None
        status = self.live_calibration.status()
        if self._flip_verdict is None:
            return status
        verdicts = [v for v in status.verdicts if v.step != "swings"]
        return dataclasses.replace(status, verdicts=(*verdicts, self._flip_verdict))

    # -- input -------------------------------------------------------------------------------

    def push(self, sensor: str, block: ImuSamples) -> list[AngleFrame]:
        """Add one block of samples of ``sensor`` ("pelvis" or "thigh"); return the new frames.

        The pipeline keeps references to the last samples of the block (the neighbours of a
        possible gap): the caller must not change the block's arrays afterwards.
        """
        if sensor not in self._streams:
            raise ConfigurationError(f"unknown sensor {sensor!r}, expected 'pelvis' or 'thigh'")
        if len(block) == 0:
            return []
        st = self._streams[sensor]
        if st.last_t is not None:
            keep = block.t_s > st.last_t
            if not keep.all():
                block = ImuSamples(block.t_s[keep], block.acc_m_s2[keep], block.gyr_rad_s[keep],
                                   None if block.mag_uT is None else block.mag_uT[keep])
                if len(block) == 0:
                    return []
        if st.rate_hz is None:
            # Learn the nominal rate from the first samples (needs two).
            t_all = block.t_s if st.raw is None else np.concatenate((st.raw.t_s, block.t_s))
            if len(t_all) >= 2:
                st.rate_hz = float(1.0 / np.median(np.diff(t_all)))
        frames: list[AngleFrame] = []
        for piece in st.split_at_gaps(block):
            filled, gap, long_gap = st.fill_gap(piece)
            st.remember(piece)
            if self.state != "streaming":
                st.raw = filled if st.raw is None else align.concat_samples(st.raw, filled)
                frames += self._calibration_step()
            else:
                if long_gap:
                    st.restart_filter()
                frames += self._stream_block(st, filled, gap)
        return frames

    # -- calibration -------------------------------------------------------------------------

    def _trim_waiting_buffers(self) -> None:
        """While nobody has started the protocol, keep only the last WAITING_BUFFER_S of raw data."""
        waiting = self.live_calibration is None or self.live_calibration.step is CalibrationStep.STILL1
        if not waiting:
            return
        for st in self._streams.values():
            if st.raw is not None and st.raw.t_s[-1] - st.raw.t_s[0] > 2 * WAITING_BUFFER_S:
                k0 = int(np.searchsorted(st.raw.t_s, st.raw.t_s[-1] - WAITING_BUFFER_S))
                st.raw = align.slice_samples(st.raw, k0, len(st.raw))

    def _raw(self, name: str) -> ImuSamples | None:
        return self._streams[name].raw

    def _calibration_step(self) -> list[AngleFrame]:
        self._trim_waiting_buffers()
        raw = {n: self._raw(n) for n in self._streams}
        if raw["pelvis"] is None or raw["thigh"] is None or len(raw["pelvis"]) < 2 or len(raw["thigh"]) < 2:
            return []
        p, th = raw["pelvis"], raw["thigh"]
        assert p is not None and th is not None
        end = min(p.t_s[-1], th.t_s[-1])
        dt = 1.0 / self.rate_hz
        if self._next_t is None:
            self._next_t = float(np.ceil(max(p.t_s[0], th.t_s[0]) / dt - 1e-9) * dt)
        n = int(np.floor((end - self._next_t) / dt + 1e-9)) + 1
        if n <= 0:
            return []
        t: FloatArray = self._next_t + np.arange(n, dtype=np.float64) * dt
        self._next_t = float(t[-1] + dt)
        # Only the samples around the new grid points are needed.
        i_p = max(0, int(np.searchsorted(p.t_s, t[0])) - 2)
        i_t = max(0, int(np.searchsorted(th.t_s, t[0])) - 2)
        pg = align.resample_samples(align.slice_samples(p, i_p, len(p)), t)
        tg = align.resample_samples(align.slice_samples(th, i_t, len(th)), t)
        if self.live_calibration is not None:
            status = self.live_calibration.feed(pg, tg)
            if status.calibration is not None:
                cal = status.calibration
                assert cal.phases is not None
                return self._start_streaming(cal, _neutral_span(cal.phases), dict(cal.gyr_bias_rad_s))
            return []
        # A stored calibration: wait for 1 s of standing still as neutral.
        w = np.degrees(np.maximum(np.linalg.norm(pg.gyr_rad_s, axis=1), np.linalg.norm(tg.gyr_rad_s, axis=1)))
        for ti, wi in zip(t, w):
            if wi < 2.0 * STILL_FOR_NEUTRAL_DEG_S:
                self._still_run = ti if self._still_run is None else self._still_run
                if ti - self._still_run >= STORED_CAL_NEUTRAL_S:
                    neutral = Interval(self._still_run, ti)
                    m_p, m_t = neutral.mask(p.t_s), neutral.mask(th.t_s)
                    bias = {"pelvis": p.gyr_rad_s[m_p].mean(axis=0), "thigh": th.gyr_rad_s[m_t].mean(axis=0)}
                    assert self._given_calibration is not None
                    return self._start_streaming(self._given_calibration, neutral, bias)
            else:
                self._still_run = None
        return []

    def _start_streaming(self, cal: Calibration, neutral: Interval, bias: dict[str, FloatArray]) -> list[AngleFrame]:
        """Warm the filters up on everything buffered, set the heading alignment, then stream."""
        from sensorhub.motion.fusion import OrientationFilter

        self.diagnostics.neutral = neutral
        self.diagnostics.drill_start_s = neutral.end_s
        q6: dict[str, FloatArray] = {}
        raw: dict[str, ImuSamples] = {}
        for name, st in self._streams.items():
            r = self._raw(name)
            assert r is not None and st.rate_hz is not None
            raw[name] = r
            st.bias = bias.get(name, np.zeros(3))
            has_mag = self.use_mag and r.mag_uT is not None
            p = dict(VQF_PARAMS if self.method == "vqf" else {})
            st.filter = OrientationFilter(self.method, st.rate_hz, has_mag=False, params=p)
            q6[name] = st.filter.update_block(r.acc_m_s2, r.gyr_rad_s - st.bias)
            st.tail.reset(r.t_s, q6[name], r.mag_uT if has_mag and r.mag_uT is not None else np.zeros((len(r), 3)),
                          np.zeros(len(r), dtype=bool))
        t = np.arange(np.ceil(neutral.start_s * self.rate_hz), np.floor(neutral.end_s * self.rate_hz) + 1) / self.rate_hz
        qp = _slerp_at(raw["pelvis"].t_s, q6["pelvis"], t)
        qt = _slerp_at(raw["thigh"].t_s, q6["thigh"], t)
        q_pel = angles.segment_orientation(qp, cal.q_segment_sensor["pelvis"])
        q_fem = angles.segment_orientation(qt, cal.q_segment_sensor["thigh"])
        delta0 = heading.neutral_heading_offset(q_pel, q_fem)
        self._q_neutral = _mean_quat(q_pel)
        delta_mag_ref = None
        self._mag_ref = {}
        self.diagnostics.heading_mode = "gyroscope only (relative heading fixed at neutral standing, causal drift removal)"
        if self.use_mag and raw["pelvis"].mag_uT is not None and raw["thigh"].mag_uT is not None:
            if ONLINE_HARD_IRON and self.live_calibration is not None:
                for name in ("pelvis", "thigh"):
                    r = raw[name]
                    assert r.mag_uT is not None
                    norm = np.linalg.norm(r.mag_uT, axis=1)
                    up = quat.rotate(quat.conjugate(q6[name]), np.array([0.0, 0.0, 1.0]))
                    ref_norm = float(np.median(norm[neutral.mask(r.t_s)])) if np.any(neutral.mask(r.t_s)) else float(np.median(norm))
                    self._streams[name].hard_iron = heading.estimate_hard_iron(r.mag_uT, up, np.abs(norm - ref_norm) < 0.1 * ref_norm)
                    raw[name] = ImuSamples(r.t_s, r.acc_m_s2, r.gyr_rad_s, r.mag_uT - self._streams[name].hard_iron)
                    tail_mag = self._streams[name].tail.mag  # a view: subtracted in place
                    tail_mag -= self._streams[name].hard_iron
                    self.diagnostics.hard_iron_uT[name] = [float(x) for x in self._streams[name].hard_iron]
            mp = align.resample_vec(raw["pelvis"].t_s, raw["pelvis"].mag_uT, t)
            mt = align.resample_vec(raw["thigh"].t_s, raw["thigh"].mag_uT, t)
            refs = {"pelvis": heading.reference_from(qp, mp), "thigh": heading.reference_from(qt, mt)}
            if _references_agree(refs, self.diagnostics):
                dm = heading.magnetic_relative_heading(qp, mp, qt, mt)
                dm_neutral = float(np.angle(np.mean(np.exp(1j * dm))))
                refined: tuple[float, FloatArray] | None = (dm_neutral, cal.q_segment_sensor["thigh"])
                if cal.thigh_mag_refined_deg is None:
                    refined = _refine_thigh_mount(delta0, dm_neutral, cal.q_segment_sensor["thigh"], self.diagnostics)
                    if refined is not None:
                        cal = dataclasses.replace(cal, q_segment_sensor={**cal.q_segment_sensor, "thigh": refined[1]},
                                                  thigh_mag_refined_deg=float(np.degrees(delta0 - refined[0])))
                if refined is not None:
                    delta0 = refined[0]
                    delta_mag_ref = delta0
                    self._mag_ref = refs
                    self.diagnostics.heading_mode = "magnetometer relative heading, causal low-pass, frozen while disturbed"
        # Drift: the relative drift between the protocol's two neutral still phases is the first
        # estimate for the thigh; running trends over the drill take over once long enough.
        self._t_ref = 0.5 * (neutral.start_s + neutral.end_s)
        self._rel_rate_still = 0.0
        # The same still phases also anchor the standing rest-drift fit: the femur's X heading minus
        # the pelvis's, as _remove_drift measures it at the drill's rests.
        still_rel: list[tuple[float, float]] = []
        if cal.phases is not None and self.live_calibration is not None:
            d = []
            for iv in (cal.phases.still1, cal.phases.still2):
                tt = np.arange(np.ceil((iv.start_s + 0.25) * self.rate_hz), np.floor((iv.end_s - 0.25) * self.rate_hz) + 1) / self.rate_hz
                if len(tt) < 2:
                    break
                q_pel_iv = angles.segment_orientation(_slerp_at(raw["pelvis"].t_s, q6["pelvis"], tt), cal.q_segment_sensor["pelvis"])
                q_fem_iv = angles.segment_orientation(_slerp_at(raw["thigh"].t_s, q6["thigh"], tt), cal.q_segment_sensor["thigh"])
                d.append((float(np.mean(tt)), heading.neutral_heading_offset(q_pel_iv, q_fem_iv)))
                vx_f, vx_p = quat.rotate_axis(q_fem_iv, 0), quat.rotate_axis(q_pel_iv, 0)
                rel_iv = np.arctan2(vx_f[:, 1], vx_f[:, 0]) - np.arctan2(vx_p[:, 1], vx_p[:, 0])
                still_rel.append((float(np.mean(tt)), float(np.angle(np.mean(np.exp(1j * rel_iv))))))
            if len(d) == 2 and d[1][0] > d[0][0]:
                self._rel_rate_still = -float(heading.wrap_rad(d[1][1] - d[0][1])) / (d[1][0] - d[0][0])
        self._rest_drift = None
        self._q_prev = None
        if ONLINE_REST_DRIFT and self.detrend_heading and len(still_rel) == 2 and still_rel[1][0] > still_rel[0][0]:
            self._rest_drift = _LiveRestDrift(self._t_ref, still_rel, self._rel_rate_still, 1.0 / self.rate_hz)
        self._trend_p = heading.OnlineTrend(ONLINE_TREND_MIN_S)
        self._trend_rel = heading.OnlineTrend(ONLINE_TREND_MIN_S)
        self._rel_anchor = (0.0, self._t_ref)
        self._rel_rate = self._rel_rate_still
        self._thigh_axis = 0  # column of R_earth_femur whose heading is tracked: 0 = X, 1 = Y
        self._heading.start(delta0, delta_mag_ref)
        # Kept to re-align the heading if the seated neutral hold turns the thigh mount later.
        self._neutral_pelvis = q_pel
        self._neutral_thigh_sensor = qt
        # As batch: with the magnetometers' heading the mount refined by them is blended with the
        # seated neutral hold too (σ of the mag-refined mount; a stored calibration refined earlier
        # counts the same way).
        mag_refined = delta_mag_ref is not None and cal.thigh_mag_refined_deg is not None
        self._mount_sigma_deg = (float((SWING_AXIS_SIGMA_DEG**-2 + MAG_HEADING_SIGMA_DEG**-2) ** -0.5) if mag_refined
                                 else SWING_AXIS_SIGMA_DEG)
        self._seated_pending = (self.seated_neutral if self.seated_neutral is not None
                                else ONLINE_SEATED_NEUTRAL_WITH_MAG or delta_mag_ref is None)
        self._flip_pending = True
        self._flip_flexion_deg = []
        self._seated_hist = np.zeros((0, 3))
        # Constant matrices for the per-block work: R_sensor_segment per sensor, R_neutralᵀ.
        self._set_mounts(*(angles.rotation_matrices(quat.conjugate(cal.q_segment_sensor[k])[None, :])[0] for k in ("pelvis", "thigh")))
        # Field references as (2, 1) columns (pelvis, thigh) for both sensors' rows at once in _emit.
        self._mag_ref_arrays = (np.array([[self._mag_ref[k].norm_uT] for k in ("pelvis", "thigh")]),
                                np.array([[self._mag_ref[k].dip_deg] for k in ("pelvis", "thigh")]),
                                np.array([[heading.MAG_NORM_TOL * self._mag_ref[k].norm_uT] for k in ("pelvis", "thigh")])
                                ) if self._mag_ref else None
        self._r_neutral_t = angles.rotation_matrices(self._q_neutral[None, :])[0].T
        self.calibration = cal
        self.diagnostics.calibration = cal
        self.state = "streaming"
        for st in self._streams.values():
            st.raw = None
        # Frames from the end of the neutral span on.
        self._next_t = float(np.floor(neutral.end_s * self.rate_hz) / self.rate_hz + 1.0 / self.rate_hz)
        return self._emit()

    # -- streaming ---------------------------------------------------------------------------

    def _stream_block(self, st: _Stream, block: ImuSamples, gap: BoolArray) -> list[AngleFrame]:
        q = st.fix_heading(st.filter.update_block(block.acc_m_s2, block.gyr_rad_s - st.bias))
        mag = block.mag_uT - st.hard_iron if (self.use_mag and block.mag_uT is not None and self._mag_ref) else 0.0
        st.tail.append(block.t_s, q, mag, gap)
        return self._emit()

    def _emit(self) -> list[AngleFrame]:
        """Angles at every grid point both sensors have passed; rotation matrices throughout (cheap).

        Called once per pushed block with 0-7 new grid points: the cost is the number of NumPy calls,
        not the data, so both sensors go through each step together (stacked rows; every operation is
        element- or row-wise, so each row gets the same bits as in a call of its own).
        """
        p, th = self._streams["pelvis"], self._streams["thigh"]
        if self._next_t is None or len(p.tail) < 2 or len(th.tail) < 2:
            return []
        t_p, t_th = p.tail.t_s, th.tail.t_s
        end = min(t_p[-1], t_th[-1])
        dt = 1.0 / self.rate_hz
        n = math.floor(float(end - self._next_t) / dt + 1e-9) + 1
        if n <= 0:
            return []
        t: FloatArray = self._next_t + np.arange(n, dtype=np.float64) * dt
        self._next_t = float(t[-1] + dt)
        use_mag = bool(self._mag_ref)
        q_rows, mag_rows, u_parts, gaps = [], [], [], []
        long_gap: BoolArray | None = None
        for tail, tt in ((p.tail, t_p), (th.tail, t_th)):
            # Left and right neighbours (i, j) = (j - 1, j) of each grid point, clamped to the tail, as one (2, n) index.
            j = np.minimum(np.maximum(tt.searchsorted(t, side="right"), 1), len(tt) - 1)
            ij = j - _LEFT_RIGHT
            t_ij = tt[ij]
            step = t_ij[1] - t_ij[0]
            u_parts.append((t - t_ij[0]) / step)
            q_rows.append(tail.q[ij])
            if use_mag:
                mag_rows.append(tail.mag[ij])
            gaps.append(tail.gap[j])
            lg = step > align.DEFAULT_MAX_BRIDGE_S
            long_gap = lg if long_gap is None else long_gap | lg
            # Keep only what the next grid point can need (trimmed every few blocks: the rows before the
            # grid are never a neighbour, so when they go does not change a result).
            if len(tt) > _TAIL_TRIM_ROWS:
                tail.drop(max(0, int(tt.searchsorted(self._next_t)) - 2))
        assert long_gap is not None
        u = np.concatenate(u_parts)[:, None]
        # Normalised lerp between the neighbouring orientations (see _slerp_at), both sensors at once.
        q_ab = np.concatenate(q_rows, axis=1)  # (2, 2n, 4): left, right neighbours; pelvis rows, then thigh
        qa, qb = q_ab[0], q_ab[1]
        qb = qb * np.sign(np.einsum("ij,ij->i", qa, qb) + 1e-300)[:, None]
        q = qa + u * (qb - qa)
        q = q / np.sqrt(np.add.reduce(q * q, axis=1, keepdims=True))
        rest_rate = self._frame_rates_deg_s(q, n) if self._rest_drift is not None else None
        # z[0]: R_earth_sensor, z[1]: R_earth_segment = R_earth_sensor · R_segment_sensorᵀ; [.., 0] pelvis, [.., 1] thigh.
        z = np.empty((2, 2, n, 3, 3))
        angles.rotation_matrices(q, out=z[0].reshape(2 * n, 3, 3))
        np.matmul(z[0], self._m_pair, out=z[1])
        if self.detrend_heading:
            h = self._remove_drift(t, z[1, 0], z[1, 1], long_gap, rest_rate)
            z = np.matmul(h.reshape(2, n, 3, 3), z)
        r_pel, r_fem = z[1, 0], z[1, 1]
        if use_mag:
            m_ab = np.concatenate(mag_rows, axis=1)
            mags = m_ab[0] + u * (m_ab[1] - m_ab[0])
            m_e = np.einsum("nij,nj->ni", z[0].reshape(2 * n, 3, 3), mags)
            norm = np.sqrt(np.add.reduce(m_e * m_e, axis=1))  # np.linalg.norm(m_e, axis=1)'s arithmetic
            dip = np.degrees(np.arcsin(np.minimum(np.maximum(m_e[:, 2] / np.maximum(norm, 1e-12), -1.0), 1.0)))
            assert self._mag_ref_arrays is not None
            ref_norm, ref_dip, tol_norm = self._mag_ref_arrays
            dn, dd = np.abs(norm.reshape(2, n) - ref_norm), np.abs(dip.reshape(2, n) - ref_dip)
            b = (dn > tol_norm) | (dd > heading.MAG_DIP_TOL_DEG)
            if self._dist_open["pelvis"] is not None or self._dist_open["thigh"] is not None or b.any():
                self._track_events("pelvis", t, b[0], dn[0], dd[0])
                self._track_events("thigh", t, b[1], dn[1], dd[1])
            psi = np.arctan2(m_e[:, 1], m_e[:, 0])
            delta = self._heading.update(np.asarray(heading.wrap_rad(psi[:n] - psi[n:])), ~(b[0] | b[1]))
        else:
            delta = np.full(n, self._heading.delta0_rad)
        r_fem = angles.heading_matrices(delta) @ r_fem
        # Hip and pelvis angles in one call (element-wise: the same values as one call each).
        a_both = angles.cardan_zxy_deg_from_matrix(np.concatenate((np.transpose(r_pel, (0, 2, 1)) @ r_fem, self._r_neutral_t @ r_pel)))
        a_hip, a_pel = a_both[:n], a_both[n:]
        a_hip[:, 1:] *= self._side_sign
        if self._seated_pending:
            self._watch_seated_neutral(t, a_hip)
        gap = gaps[0] | gaps[1]
        if long_gap.any():
            a_hip[long_gap] = np.nan
            a_pel[long_gap] = np.nan
        if self._flip_pending:
            self._watch_flipped_thigh(a_hip[:, 0])
        block = np.concatenate((t[:, None], a_hip, a_pel), axis=1)
        self._history.append(block, gap)
        return [AngleFrame(r[0], r[1], r[2], r[3], r[4], r[5], r[6], g) for r, g in zip(block.tolist(), gap.tolist())]

    def _set_mounts(self, m_pelvis: FloatArray, m_thigh: FloatArray) -> None:
        """R_sensor_segment of each sensor, as a dict and stacked (2, 1, 3, 3) for :meth:`_emit`."""
        self._m_sensor_segment = {"pelvis": m_pelvis, "thigh": m_thigh}
        self._m_pair = np.stack((m_pelvis, m_thigh))[:, None]

    def _frame_rates_deg_s(self, q: FloatArray, n: int) -> FloatArray:
        """The larger of the two sensors' angular rates (deg/s) at each of the ``n`` new grid points,
        from the orientation change since the previous grid point (``q``: pelvis rows, then thigh)."""
        qq = q.reshape(2, n, 4)
        prev = qq[:, :1] if self._q_prev is None else self._q_prev
        full = np.concatenate((prev, qq), axis=1)
        a, b = full[:, :-1], full[:, 1:]
        dq = b - a * np.sign(np.einsum("kij,kij->ki", a, b) + 1e-300)[..., None]
        # |q₁ − q₂| = 2 sin(θ/4) for a turn by θ: θ ≈ 2 |Δq| at these small steps.
        rate = np.sqrt(np.add.reduce(dq * dq, axis=2)) * (2.0 * math.degrees(1.0) * self.rate_hz)
        self._q_prev = qq[:, -1:].copy()
        return np.asarray(np.maximum(rate[0], rate[1]))

    def _remove_drift(self, t: FloatArray, r_pel: FloatArray, r_fem: FloatArray, long_gap: BoolArray,
                      rest_rate_deg_s: FloatArray | None = None) -> FloatArray:
        """Causal counterpart of the batch drift removal: heading corrections (2n, 3, 3), pelvis rows then femur.

        Running least-squares trends of the pelvis heading and of the thigh's heading relative to
        the pelvis since neutral (see :class:`sensorhub.motion.heading.OnlineTrend`); standing, the
        relative drift rate comes from the drill's rests once enough agree (:class:`_LiveRestDrift`).
        """
        # Pelvis: heading of its X axis (first column of R_earth_pelvis).
        h_p = np.arctan2(r_pel[:, 1, 0], r_pel[:, 0, 0])
        ok_p = np.abs(r_pel[:, 2, 0]) < 0.5
        col = self._thigh_axis
        # The femur's long axis lying flat (seated) is the better heading reference (with hysteresis).
        vy_z = float(np.add.reduce(np.abs(r_fem[:, 2, 1]))) / len(t)  # np.mean's arithmetic, without its overhead
        if col == 0 and vy_z < 0.4:
            col = 1
        elif col == 1 and vy_z > 0.7:
            col = 0
        if col != self._thigh_axis:
            # Posture changed (sat down / stood up): the relative heading series restarts and the
            # correction so far is kept (anchored) so that the output does not jump.
            self._thigh_axis = col
            self._trend_rel = heading.OnlineTrend(ONLINE_TREND_MIN_S)
            self._rel_anchor = (self._rel_anchor[0] + self._rel_rate * (float(t[0]) - self._rel_anchor[1]), float(t[0]))
        h_f = np.arctan2(r_fem[:, 1, col], r_fem[:, 0, col])
        ok_f = np.abs(r_fem[:, 2, col]) < 0.5
        ok_p &= ~long_gap
        self._trend_p.add(t, h_p, ok_p)
        self._trend_rel.add(t, h_f - h_p, ok_p & ok_f)
        rate_p = self._trend_p.rate if self._trend_p.ready else 0.0
        rel = self._rel_rate_still
        if self._trend_rel.ready and math.degrees(self._trend_rel.spread) <= THIGH_TREND_MAX_SPREAD_DEG:
            rel = self._trend_rel.rate
        rest = self._rest_drift
        if rest is not None and rest_rate_deg_s is not None:
            # Standing rests: the femur upright, its X heading (col 0) against the pelvis's.
            ok_rest = ok_p & ok_f & (np.abs(r_fem[:, 2, 1]) > 0.7) if col == 0 else np.zeros(len(t), dtype=bool)
            if rest.add(t, rest_rate_deg_s, h_f - h_p, ok_rest) and rest.rate_rad_s is not None:
                self.diagnostics.notes[:] = [n for n in self.diagnostics.notes if not n.startswith(_REST_NOTE)]
                self.diagnostics.notes.append(f"{_REST_NOTE} {rest.n_used} standing rests and both still phases: "
                                              f"{math.degrees(rest.rate_rad_s) * 60:.1f}°/min")
            if col == 0 and rest.rate_rad_s is not None:
                rel = rest.rate_rad_s
        self._rel_rate = rel
        phi_p = rate_p * (t - self._t_ref)
        phi_f = phi_p + self._rel_anchor[0] + rel * (t - self._rel_anchor[1])
        # math.degrees multiplies by the same constant 180/π as np.degrees.
        self.diagnostics.heading_trend_deg_min = {"pelvis": math.degrees(rate_p) * 60, "thigh": math.degrees(rate_p + rel) * 60}
        return angles.heading_matrices(-np.concatenate((phi_p, phi_f)))  # one call for both (element-wise)

    def _watch_seated_neutral(self, t: FloatArray, a_hip: FloatArray) -> None:
        """Live counterpart of the batch seated-neutral correction (see :func:`analyze_imu`).

        Waits for SEATED_NEUTRAL_MIN_S of sitting still (hip flexion > 60°, flexion and rotation
        changing by < 3°/s), then turns the thigh mount about the femur axis so that hip rotation
        is zero there. A turn ε of the mount changes seated rotation by about ε·(1 − cos flexion),
        which sets ε. Frames from then on are corrected; earlier frames stay as sent.
        """
        hist = np.vstack((self._seated_hist, np.column_stack((t, a_hip[:, 0], a_hip[:, 2]))))
        n_need = round(SEATED_NEUTRAL_MIN_S * self.rate_hz)
        hist = hist[-n_need:]
        self._seated_hist = hist
        if len(hist) < n_need:
            return
        dt = np.diff(hist[:, 0])
        rates = np.abs(np.diff(hist[:, 1:], axis=0)) / dt[:, None]
        if not (np.all(hist[:, 1] > 60.0) and np.all(rates < 3.0)):
            return
        self._seated_pending = False
        rot = float(np.mean(hist[:, 2]))
        if abs(rot) > SEATED_NEUTRAL_MAX_DEG or self.calibration is None:
            self.diagnostics.notes.append(f"first seated still span ends at {hist[-1, 0]:.1f} s with hip rotation {rot:.0f}°: not a neutral hold")
            return
        flex = np.radians(float(np.mean(hist[:, 1])))
        # Inverse-variance blend of the mount so far (swing axis, or swing axis and magnetometers)
        # with the athlete's seated neutral.
        w = self._mount_sigma_deg**2 / (self._mount_sigma_deg**2 + SEATED_NEUTRAL_SIGMA_DEG**2)
        eps = w * np.radians(rot * angles.side_sign(self.side)) / max(1.0 - np.cos(flex), 0.2)
        q_mount = quat.multiply(quat.from_axis_angle(np.array([0.0, 1.0, 0.0]), eps), self.calibration.q_segment_sensor["thigh"])
        q_fem_old = angles.segment_orientation(self._neutral_thigh_sensor, self.calibration.q_segment_sensor["thigh"])
        q_fem_new = angles.segment_orientation(self._neutral_thigh_sensor, q_mount)
        shift = heading.neutral_heading_offset(self._neutral_pelvis, q_fem_new) - heading.neutral_heading_offset(self._neutral_pelvis, q_fem_old)
        self._heading.delta0_rad += shift
        # Standing rests measured with the old mount no longer match the new one: the seated posture
        # has its own trend, and the rate in use is kept as the still-phase estimate.
        if self._rest_drift is not None and self._rest_drift.rate_rad_s is not None:
            self._rel_rate_still = self._rest_drift.rate_rad_s
        self._rest_drift = None
        self.calibration = dataclasses.replace(self.calibration, q_segment_sensor={**self.calibration.q_segment_sensor, "thigh": q_mount})
        self.diagnostics.calibration = self.calibration
        self._set_mounts(self._m_sensor_segment["pelvis"], angles.rotation_matrices(quat.conjugate(q_mount)[None, :])[0])
        self.diagnostics.notes.append(f"thigh mount turned by {np.degrees(eps):.1f}° about the femur axis so that hip rotation is zero "
                                      f"in the seated neutral hold ending at {hist[-1, 0]:.1f} s")

    def _watch_flipped_thigh(self, flexion_deg: FloatArray) -> None:
        """Live counterpart of the batch flipped-thigh check (:func:`_flipped_thigh_advice`).

        Counts the frames since the drill started whose hip flexion is below
        :data:`FLIPPED_FLEXION_DEG` (NaN frames of long gaps do not count); once they add up to
        :data:`FLIPPED_MIN_S`, the swings step is judged poor with the advice batch gives: in
        ``diagnostics.notes``, ``calibration.quality`` (what the service shows as the calibration
        result) and the swings verdict of :attr:`status`, plus a warning in the log. Angles are not
        changed. Checked once per session: it stops after firing.
        """
        extended = flexion_deg < FLIPPED_FLEXION_DEG  # False for NaN
        if not extended.any():
            return
        self._flip_flexion_deg += flexion_deg[extended].tolist()
        extension_s = len(self._flip_flexion_deg) / self.rate_hz
        if extension_s < FLIPPED_MIN_S or self.calibration is None:
            return
        self._flip_pending = False
        source = ("protocol run live" if self.live_calibration is not None
                  else f"stored calibration created {self.calibration.created}")
        advice, metrics = _flipped_thigh_message(float(np.median(self._flip_flexion_deg)), extension_s, source)
        self.diagnostics.notes.append(advice)
        log.warning("calibration of the %s leg looks wrong: %s", self.side, advice)
        self.calibration = _with_failed_swings(self.calibration, advice, metrics)
        self.diagnostics.calibration = self.calibration
        self._flip_verdict = next(s for s in self.calibration.quality.steps if s.step == "swings")

    def _track_events(self, name: str, t: FloatArray, bad: BoolArray, dn: FloatArray, dd: FloatArray) -> None:
        """Open and close :class:`DisturbanceEvent` s as a sensor's field leaves and regains its reference."""
        state = self._dist_open[name]
        if state is None and not bad.any():
            return  # the usual case: nothing to do
        for i in range(len(t)):
            if bad[i]:
                if state is None:
                    state = [float(t[i]), 0.0, 0.0]
                state[1], state[2] = max(state[1], float(dn[i])), max(state[2], float(dd[i]))
            elif state is not None:
                ev = heading.DisturbanceEvent(name, state[0], float(t[i]), state[1], state[2])
                self.diagnostics.disturbance_events.append(ev)
                log.info("%s", ev.describe())
                state = None
        self._dist_open[name] = state

    def series(self) -> AngleSeries:
        """The frames emitted so far (the last ``history_s`` seconds of them) as one :class:`AngleSeries`."""
        a, g = self._history.arrays()
        if self._history.n_total > len(a):
            log.debug("OnlinePipeline.series: the first %d of %d frames are no longer kept (history_s)",
                      self._history.n_total - len(a), self._history.n_total)
        return AngleSeries(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5], a[:, 6], g, self.side, self.diagnostics)
