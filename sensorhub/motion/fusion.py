"""Per-sensor orientation fusion: one IMU's samples in, ``q_earth_sensor`` out.

Every method returns ``q_earth_sensor`` as ``w, x, y, z`` quaternions that rotate vectors from the
sensor frame into an East-North-Up earth frame (docs/architecture.md). With a magnetometer the
frame's "North" is magnetic north; without one (6-axis) the heading of the earth frame is arbitrary
and differs per sensor and per run. Inputs are specific force in m/s² (+g up at rest), angular rate
in rad/s and magnetic field in µT.

Methods
    ``vqf`` (default)
        VQF (Laidig & Seel 2023) from the ``vqf`` package: gyroscope bias estimation, rest detection
        and magnetic disturbance rejection. Online (causal) through :class:`OrientationFilter`, or
        ``offline=True`` in :func:`fuse` for the non-causal ``offlineVQF`` (more accurate on
        undisturbed recordings, less robust to a persistent magnetic disturbance: docs/fusion.md). Its 6D quaternion, heading correction, rest and disturbance flags and bias
        estimate are returned as well (:class:`FusionResult`).
    ``madgwick``, ``mahony``, ``ekf``
        The ``ahrs`` package's filters, for comparison. Their native conventions differ (Madgwick:
        North-West-Up and an NED 9-axis initialisation; EKF: gravity instead of specific force and a
        fixed magnetic reference from Munich); this module converts inputs and outputs so that all of
        them share the ENU convention above, and initialises every filter itself from the first
        sample (accelerometer and, if present, magnetometer) so that online and batch runs agree.

Online and batch
    :class:`OrientationFilter` keeps the state of one filter and is fed one sample or one
    notification block at a time (``update_block``); :func:`fuse` runs a whole recording through the
    same code, so a recording fed block by block gives the same quaternions as a batch run.

Time base
    The filters run at a fixed sample rate (``rate_hz``; for a recording the median rate of its time
    stamps). The ingest stage delivers near-uniform samples and marks lost samples in
    ``ImuSamples.gap_before``. Across a gap the filter keeps its state and carries on at the nominal
    sample time: the rotation during the gap is unknown, so the gyroscope cannot bridge it and the
    accelerometer (and magnetometer) corrections pull the estimate back over the filter's time
    constants (VQF: ``tauAcc`` 3 s, ``tauMag`` 9 s). :func:`fuse` logs gaps and time-stamp jitter.

This module is pure computation: no file, network or device I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol, get_args

import numpy as np
import vqf
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.transform import Rotation

from sensorhub.errors import ConfigurationError, SensorhubError
from sensorhub.motion import kernels, quat
from sensorhub.samples import ImuSamples

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

Method = Literal["vqf", "madgwick", "mahony", "ekf"]
METHODS: Final[tuple[str, ...]] = get_args(Method)

#: Parameters accepted by VQF (names and meaning as in ``vqf.VQFParams``; note VQF's own units, e.g.
#: ``restThGyr`` in °/s, ``restThAcc`` in m/s², time constants in s).
VQF_PARAM_NAMES: Final[frozenset[str]] = frozenset(vqf.VQF(0.01).params)

#: Defaults for the ahrs filters. Madgwick and EKF use the package defaults. Mahony's package default
#: ``k_I = 0.3`` makes the bias estimate wander (about 30° error on BROAD, NOTES.md) and ``k_I = 0``
#: is rejected by ahrs, so a small integral gain is the default here (tuned values from NOTES.md).
AHRS_DEFAULTS: Final[dict[str, dict[str, Any]]] = {
    "madgwick": {},
    "mahony": {"k_P": 0.74, "k_I": 0.0012},
    "ekf": {},
}

#: Keyword arguments of the ahrs filters that may be passed as ``params`` (ahrs silently ignores
#: unknown keywords, so they are checked here). Rate, time step, initial orientation, frame and
#: magnetic reference are set by this module.
AHRS_PARAM_NAMES: Final[dict[str, frozenset[str]]] = {
    "madgwick": frozenset({"gain", "gain_imu", "gain_marg"}),
    "mahony": frozenset({"k_P", "k_I", "b0"}),
    "ekf": frozenset({"noises", "var_gyr", "var_acc", "var_mag", "P"}),
}

# Rotation taking North-West-Up coordinates to East-North-Up ones (+90° about the common up axis).
_Q_ENU_NWU: Final[FloatArray] = quat.from_axis_angle(np.array([0.0, 0.0, 1.0]), np.pi / 2)
_Q_NWU_ENU: Final[FloatArray] = quat.conjugate(_Q_ENU_NWU)


class FusionInputError(SensorhubError, ValueError):
    """IMU samples handed to orientation fusion are malformed (shapes, missing magnetometer, non-finite)."""


@dataclass(frozen=True)
class FusionResult:
    """Orientation of one sensor over ``n`` samples, plus the filter's internal estimates.

    ``q_earth_sensor`` (n, 4) is the estimate to use: 9D (magnetic north) when a magnetometer was
    used, else 6D. The remaining fields are only filled by VQF (None for the ahrs filters):

    - ``q_6d`` (n, 4): VQF's magnetometer-free estimate; its heading is arbitrary and drifts slowly.
    - ``delta_rad`` (n,): the heading correction from the magnetometer, such that
      ``q_earth_sensor = quat.multiply(quat.heading_rotation(delta_rad), q_6d)`` (9-axis only).
    - ``rest`` (n,): VQF's rest detection.
    - ``mag_dist`` (n,): magnetic disturbance detected (9-axis only). VQF also reports True at the
      start until it has accepted a reference field, which takes ``magNewFirstTime`` (5 s) of
      motion, and always when ``magDistRejectionEnabled`` is False (detection does not run).
    - ``bias_rad_s`` (n, 3) and ``bias_sigma_rad_s`` (n,): gyroscope bias estimate, sensor frame.
    """

    q_earth_sensor: FloatArray
    method: str
    offline: bool
    has_mag: bool
    q_6d: FloatArray | None = None
    delta_rad: FloatArray | None = None
    rest: BoolArray | None = None
    mag_dist: BoolArray | None = None
    bias_rad_s: FloatArray | None = None
    bias_sigma_rad_s: FloatArray | None = None

    def __len__(self) -> int:
        return len(self.q_earth_sensor)


def initial_orientation(acc_m_s2: ArrayLike, mag_uT: ArrayLike | None = None) -> FloatArray:
    """Orientation ``q_earth_sensor`` (ENU) of a sensor at rest from one accelerometer (+ magnetometer) sample.

    With a magnetometer: the earth's "up" is the specific-force direction, "east" is ``mag × up`` and
    "north" completes the right-handed frame (the horizontal part of the field). Without one (or if
    the field is parallel to gravity): the smallest rotation that brings the measured "up" onto the
    earth's z axis, so the heading is whatever that rotation leaves.
    """
    acc = np.asarray(acc_m_s2, dtype=np.float64)
    acc_norm = float(np.linalg.norm(acc))
    if not acc_norm > 0.0:
        raise FusionInputError(f"accelerometer sample {acc.tolist()} has no direction; cannot find 'up'")
    up = acc / acc_norm
    if mag_uT is not None:
        east = np.cross(np.asarray(mag_uT, dtype=np.float64), up)
        east_norm = np.linalg.norm(east)
        if east_norm > 1e-9 * (np.linalg.norm(mag_uT) + 1e-300):
            east /= east_norm
            north = np.cross(up, east)
            # Rows are the earth axes in sensor coordinates, i.e. the matrix R_earth_sensor.
            rot = np.stack((east, north, up))
            return quat.canonical(quat.from_rotation(Rotation.from_matrix(rot)))
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(up, z)
    sin_angle = np.linalg.norm(axis)
    cos_angle = float(up @ z)
    if sin_angle < 1e-12:
        return quat.IDENTITY.copy() if cos_angle > 0 else np.array([0.0, 1.0, 0.0, 0.0])
    return quat.from_axis_angle(axis, np.arctan2(sin_angle, cos_angle))


class _Backend(Protocol):
    def update(self, acc: FloatArray, gyr: FloatArray, mag: FloatArray | None) -> dict[str, FloatArray]: ...


class _VqfBackend:
    """Online VQF; ``updateBatch`` on each block continues the same C++ state as per-sample ``update``."""

    def __init__(self, rate_hz: float, params: Mapping[str, Any]) -> None:
        self._vqf = vqf.VQF(1.0 / rate_hz, **params)

    def update(self, acc: FloatArray, gyr: FloatArray, mag: FloatArray | None) -> dict[str, FloatArray]:
        return dict(self._vqf.updateBatch(gyr, acc, mag))


class _AhrsBackend:
    """One of the ahrs filters stepped sample by sample, with inputs and outputs converted to ENU."""

    def __init__(self, method: str, rate_hz: float, has_mag: bool, params: Mapping[str, Any]) -> None:
        # Imported here: ahrs takes a while to import and only these comparison methods need it.
        from ahrs.filters import EKF, Madgwick, Mahony

        self._method = method
        self._has_mag = has_mag
        self._dt_s = 1.0 / rate_hz
        unknown = sorted(set(params) - AHRS_PARAM_NAMES[method])
        if unknown:
            raise ConfigurationError(
                f"{method}: unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(sorted(AHRS_PARAM_NAMES[method]))}"
            )
        kwargs = {**AHRS_DEFAULTS[method], **params}
        self._filter: Any
        if method == "madgwick":
            self._filter = Madgwick(frequency=rate_hz, Dt=self._dt_s, **kwargs)
        elif method == "mahony":
            self._filter = Mahony(frequency=rate_hz, Dt=self._dt_s, **kwargs)
        else:
            self._filter = EKF(frequency=rate_hz, Dt=self._dt_s, frame="ENU", **kwargs)
            # ahrs' EKF chooses a 3- or 6-row measurement model by whether it was constructed with
            # magnetometer data (self.mag is not None); stepping it ourselves, we set that flag.
            self._filter.mag = np.empty((0, 3)) if has_mag else None
        self._q_native: FloatArray | None = None

    def _to_native(self, q_enu: FloatArray) -> FloatArray:
        return quat.multiply(_Q_NWU_ENU, q_enu) if self._method == "madgwick" else q_enu

    def _to_enu(self, q_native: FloatArray) -> FloatArray:
        return quat.multiply(_Q_ENU_NWU, q_native) if self._method == "madgwick" else q_native

    def update(self, acc: FloatArray, gyr: FloatArray, mag: FloatArray | None) -> dict[str, FloatArray]:
        out = np.empty((len(acc), 4))
        filt = self._filter
        for i in range(len(acc)):
            m = None if mag is None else mag[i]
            if self._q_native is None:
                q0 = initial_orientation(acc[i], m)
                if self._method == "ekf" and m is not None:
                    # The reference field in ENU is the first sample's field seen through q0:
                    # horizontal part due north, vertical part as measured (its dip).
                    m_ref = quat.rotate(q0, m)
                    filt.m_ref = m_ref / np.linalg.norm(m_ref)
                q = self._to_native(q0)
            elif self._method == "ekf":
                q = filt.update(self._q_native, gyr[i], -acc[i], m, dt=self._dt_s)
            elif m is None:
                q = filt.updateIMU(self._q_native, gyr[i], acc[i], dt=self._dt_s)
            else:
                q = filt.updateMARG(self._q_native, gyr[i], acc[i], m, dt=self._dt_s)
            self._q_native = np.asarray(q, dtype=np.float64)
            out[i] = self._q_native
        return {"q": self._to_enu(out)}


def _check_rate(rate_hz: float) -> float:
    rate = float(rate_hz)
    if not np.isfinite(rate) or rate <= 0.0:
        raise ConfigurationError(f"sample rate must be a positive number of Hz, got {rate_hz!r}")
    return rate


def _check_method(method: str) -> Method:
    if method not in METHODS:
        raise ConfigurationError(f"unknown fusion method {method!r}; choose one of {', '.join(METHODS)}")
    return method  # type: ignore[return-value]


def _check_vqf_params(params: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - VQF_PARAM_NAMES)
    if unknown:
        raise ConfigurationError(
            f"unknown VQF parameter(s) {', '.join(unknown)}; valid: {', '.join(sorted(VQF_PARAM_NAMES))}"
        )
    return dict(params)


def _as_vectors(arr: ArrayLike | None, name: str, n: int | None) -> FloatArray:
    if arr is None:
        raise FusionInputError(f"{name} is missing")
    out = np.ascontiguousarray(arr, dtype=np.float64)
    if out.ndim == 1 and out.shape == (3,):
        out = out.reshape(1, 3)
    if out.ndim != 2 or out.shape[1] != 3 or (n is not None and len(out) != n):
        expected = "(m, 3)" if n is None else f"({n}, 3)"
        raise FusionInputError(f"{name} has shape {out.shape}, expected {expected}")
    if not np.isfinite(out).all():  # one check for the whole block; the row only on failure
        bad = ~np.isfinite(out).all(axis=1)
        raise FusionInputError(f"{name} has non-finite values at sample {int(np.argmax(bad))} of the block")
    return out


class OrientationFilter:
    """Stateful orientation filter for one sensor, fed a block of samples at a time.

    ``method`` is one of :data:`METHODS`; ``rate_hz`` the sensor's nominal sample rate; ``has_mag``
    whether magnetometer samples will be given (9-axis) or not (6-axis). ``params`` passes options to
    the filter: VQF parameter names (``vqf.VQFParams``, e.g. ``{"restThGyr": 1.0,
    "magDistRejectionEnabled": False, "motionBiasEstEnabled": False}``) or the ahrs filter's keyword
    arguments (``gain`` for Madgwick, ``k_P``/``k_I`` for Mahony, ``noises``/``var_*`` for EKF).
    """

    def __init__(
        self,
        method: str = "vqf",
        rate_hz: float = 100.0,
        has_mag: bool = True,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self.method: Method = _check_method(method)
        self.rate_hz = _check_rate(rate_hz)
        self.has_mag = bool(has_mag)
        self.params: dict[str, Any] = dict(params or {})
        self._samples_seen = 0
        self._backend: _Backend = self._make_backend()

    def _make_backend(self) -> _Backend:
        if self.method == "vqf":
            return _VqfBackend(self.rate_hz, _check_vqf_params(self.params))
        try:
            return _AhrsBackend(self.method, self.rate_hz, self.has_mag, self.params)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, SensorhubError):
                raise
            raise ConfigurationError(f"{self.method}: invalid parameters {self.params!r}: {exc}") from exc

    @property
    def samples_seen(self) -> int:
        """Number of samples processed since construction or :meth:`reset`."""
        return self._samples_seen

    def reset(self) -> None:
        """Forget all state; the next sample initialises the filter again."""
        self._backend = self._make_backend()
        self._samples_seen = 0

    def update_block(self, acc_m_s2: ArrayLike, gyr_rad_s: ArrayLike, mag_uT: ArrayLike | None = None) -> FloatArray:
        """Process ``m`` samples (arrays (m, 3) or one sample (3,)); return ``q_earth_sensor`` (m, 4)."""
        # The live pipeline calls this for every block of a few samples: the quaternions straight
        # from the backend, without building the whole FusionResult (same arrays as its q_earth_sensor).
        acc, gyr, mag = self._checked(acc_m_s2, gyr_rad_s, mag_uT)
        if len(acc) == 0:
            return np.empty((0, 4))
        out = self._backend.update(acc, gyr, mag)
        self._samples_seen += len(acc)
        if "q" in out:
            return out["q"]
        return np.asarray(out["quat9D"] if self.has_mag else out["quat6D"])

    def _checked(self, acc_m_s2: ArrayLike, gyr_rad_s: ArrayLike,
                 mag_uT: ArrayLike | None) -> tuple[FloatArray, FloatArray, FloatArray | None]:
        """The block as contiguous float64 arrays, or FusionInputError before the filter is touched."""
        acc = _as_vectors(acc_m_s2, "accelerometer (acc_m_s2)", None)
        gyr = _as_vectors(gyr_rad_s, "gyroscope (gyr_rad_s)", len(acc))
        mag: FloatArray | None = None
        if self.has_mag:
            if mag_uT is None:
                raise FusionInputError(
                    "filter was set up for 9-axis fusion (has_mag=True) but no magnetometer block was given"
                )
            mag = _as_vectors(mag_uT, "magnetometer (mag_uT)", len(acc))
        elif mag_uT is not None:
            raise FusionInputError(
                "filter was set up for 6-axis fusion (has_mag=False) but a magnetometer block was given"
            )
        return acc, gyr, mag

    def update_block_detailed(
        self, acc_m_s2: ArrayLike, gyr_rad_s: ArrayLike, mag_uT: ArrayLike | None = None
    ) -> FusionResult:
        """Like :meth:`update_block` but return the full :class:`FusionResult` for the block.

        Inputs are validated before the filter is touched, so a rejected block leaves the state intact.
        """
        acc, gyr, mag = self._checked(acc_m_s2, gyr_rad_s, mag_uT)
        if len(acc) == 0:
            return _result_from(self.method, False, self.has_mag, {"q": np.empty((0, 4))})
        out = self._backend.update(acc, gyr, mag)
        self._samples_seen += len(acc)
        return _result_from(self.method, False, self.has_mag, out)


def _result_from(method: str, offline: bool, has_mag: bool, out: Mapping[str, FloatArray]) -> FusionResult:
    if "q" in out:
        return FusionResult(q_earth_sensor=out["q"], method=method, offline=offline, has_mag=has_mag)
    q_6d = np.asarray(out["quat6D"])
    return FusionResult(
        q_earth_sensor=np.asarray(out["quat9D"]) if has_mag else q_6d,
        method=method,
        offline=offline,
        has_mag=has_mag,
        q_6d=q_6d,
        delta_rad=np.asarray(out["delta"]) if has_mag else None,
        rest=np.asarray(out["restDetected"], dtype=bool),
        mag_dist=np.asarray(out["magDistDetected"], dtype=bool) if has_mag else None,
        bias_rad_s=np.asarray(out["bias"]),
        bias_sigma_rad_s=np.asarray(out["biasSigma"]),
    )


def _describe_time_base(samples: ImuSamples, rate_hz: float) -> None:
    if len(samples) < 2:
        return
    # Flagged gaps and the largest deviation of the other intervals from the period, in one compiled pass.
    flags = np.zeros(0, dtype=bool) if samples.gap_before is None else np.asarray(samples.gap_before, dtype=bool)
    gaps, jitter, any_ok = kernels.interval_jitter(np.ascontiguousarray(samples.t_s, dtype=np.float64), flags, float(rate_hz))
    if gaps:
        logger.info("fusion: %d gap(s) in the samples; filter state is carried across them", gaps)
    if any_ok and jitter > 0.25:
        logger.warning(
            "fusion: sample intervals deviate by up to %.0f%% from 1/%.3f Hz; the filters assume a fixed rate",
            100 * jitter,
            rate_hz,
        )


def fuse(
    samples: ImuSamples,
    method: str = "vqf",
    *,
    offline: bool = False,
    use_mag: bool = True,
    rate_hz: float | None = None,
    params: Mapping[str, Any] | None = None,
) -> FusionResult:
    """Orientation of one sensor over a whole recording.

    ``offline=True`` (VQF only) runs the non-causal ``offlineVQF``, which uses future samples: better
    on undisturbed recordings, worse than online VQF near a persistent magnetic disturbance on BROAD
    (docs/fusion.md); otherwise the result equals feeding the
    samples through :class:`OrientationFilter` block by block. The magnetometer is used when the
    samples have one and ``use_mag`` is true. ``rate_hz`` defaults to the samples' median rate.
    """
    method = _check_method(method)
    if len(samples) == 0:
        raise FusionInputError("no samples to fuse")
    rate = _check_rate(rate_hz if rate_hz is not None else (samples.rate_hz if len(samples) > 1 else 100.0))
    has_mag = use_mag and samples.has_mag
    mag = samples.mag_uT if has_mag else None
    _describe_time_base(samples, rate)
    if not offline:
        filt = OrientationFilter(method, rate, has_mag, params)
        return filt.update_block_detailed(samples.acc_m_s2, samples.gyr_rad_s, mag)
    if method != "vqf":
        raise ConfigurationError(f"offline fusion is only available for vqf, not {method}")
    acc = _as_vectors(samples.acc_m_s2, "accelerometer (acc_m_s2)", len(samples))
    gyr = _as_vectors(samples.gyr_rad_s, "gyroscope (gyr_rad_s)", len(samples))
    mag_c = None if mag is None else _as_vectors(mag, "magnetometer (mag_uT)", len(samples))
    out = vqf.offlineVQF(gyr, acc, mag_c, 1.0 / rate, _check_vqf_params(params or {}))
    return _result_from("vqf", True, has_mag, out)


def fuse_batch(
    samples: ImuSamples,
    method: str = "vqf",
    *,
    offline: bool = False,
    use_mag: bool = True,
    rate_hz: float | None = None,
    params: Mapping[str, Any] | None = None,
) -> FloatArray:
    """``q_earth_sensor`` (n, 4) for a whole recording; see :func:`fuse` for the arguments."""
    return fuse(samples, method, offline=offline, use_mag=use_mag, rate_hz=rate_hz, params=params).q_earth_sensor
