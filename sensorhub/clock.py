"""Sensor clock -> hub clock mapping for one sensor, online.

Each sensor stamps its samples with its own crystal clock; the hub stamps each BLE notification with
its receive time. The relation between the two is a line (offset plus drift, a crystal is good to
about ±100 ppm) seen through a delay that is *one-sided*: a notification is received some time after
its last sample was taken (waiting for the next connection event, radio retries, host scheduling),
never before. Averaging receive times therefore estimates the line plus the mean delay, which is
neither constant nor small; the useful information is in the *lower envelope* of the points
``(t_sensor, t_host)``.

:class:`ClockMapper` estimates that envelope with a windowed-minimum, lower-hull fit:

* sensor time is cut into bins (0.5 s by default); each bin keeps only its minimum
  ``t_host - t_sensor``, i.e. its least-delayed notification;
* when a bin closes, the drift is the slope of the lower convex hull of the bin minima of a sliding
  window (60 s by default), taken on the hull edge over the window's mean time (the linear-
  programming estimator of Moon, Skelly & Towsley, "Estimation and removal of clock skew from
  network delay measurements", INFOCOM 1999), shrunk towards a prior drift while the window is
  short;
* the offset puts the line through the lowest point for that slope, so it supports the envelope from
  below instead of running through the middle of the bin minima; bins delayed as a whole by a
  stalled link lie above the hull and do not matter;
* between refits every observation that falls below the line lowers the offset at once: under a
  one-sided delay such a point proves the line was too high.

The cost per observation is O(1); a refit costs O(window / bin) and happens once per bin.

The line is the *estimate*; the times handed out by :meth:`ClockMapper.to_host` must also be
monotonic and free of jumps, because fusion integrates over them. When the estimate changes, the
difference between the old and the new mapping at the last time handed out is kept as a correction
that decays linearly at a bounded slew rate (a fast rate during the first seconds of a clock epoch,
when the estimate still moves by the length of a connection interval, a slow one afterwards). The
mapping handed out is thus continuous and strictly increasing as long as the slew rate stays below
one.

What no receive-time estimator can see: a constant part of the delay (firmware and host latency that
every packet pays), and, when the packet period and the connection interval are commensurate, the
phase of the packets against the connection events: the least delay any packet sees is then up to
gcd(packet period, interval) and shrinks only as drift slides that phase. Expect errors of that size
(0-10 ms) until the phase has slid; ``tests/test_clock.py`` pins the bound.

This module is plain arithmetic on floats: no I/O, no knowledge of packets or BLE.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

log = logging.getLogger(__name__)

_BIN_CAPACITY = 256
"""Initial room for bin minima (2 min at 0.5-s bins); grows by doubling, compacting the dropped ones away."""

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ClockMapperConfig:
    """Tuning of :class:`ClockMapper`. Times in seconds, rates as fractions (1e-3 = 1000 ppm)."""

    bin_s: float = 0.5
    """Width of a minimum bin in sensor time; should hold several notifications."""
    window_s: float = 60.0
    """Span of sensor time whose bin minima the line is fitted to."""
    min_fit_span_s: float = 2.0
    """Below this span of bin minima the drift is not fitted: the prior drift is used."""
    prior_drift_sd_ppm: float = 100.0
    """Spread of crystal drifts expected before any fit (the prior the drift fit is shrunk to)."""
    bin_noise_s: float = 1e-3
    """Typical scatter of the bin minima around the envelope; with the prior sets the shrinkage."""
    max_drift_ppm: float = 1000.0
    """Fitted drifts beyond this are clamped: no working crystal is that far off."""
    warmup_s: float = 5.0
    """Length of the start of an epoch during which corrections slew at ``warmup_slew``."""
    warmup_slew: float = 0.02
    """Slew rate of corrections during warm-up (s of correction per s of sensor time)."""
    slew: float = 0.001
    """Slew rate of corrections after warm-up."""

    def __post_init__(self) -> None:
        if self.bin_s <= 0 or self.window_s < 2 * self.bin_s:
            raise ValueError(f"ClockMapperConfig: need bin_s > 0 and window_s >= 2*bin_s, got {self.bin_s}, {self.window_s}")
        if not (0 < self.slew < 0.5 and 0 < self.warmup_slew < 0.5):
            raise ValueError(f"ClockMapperConfig: slew rates must lie in (0, 0.5), got {self.slew}, {self.warmup_slew}")


@dataclass(frozen=True)
class ClockEstimate:
    """The current line ``t_host_s = t_sensor_s * (1 + drift_ppm * 1e-6) + offset_s``."""

    offset_s: float
    drift_ppm: float
    n_bins: int
    """Bin minima the drift was fitted to (0 while the prior drift is used)."""


class ClockMapper:
    """Online lower-envelope map from one sensor clock to the hub clock (see the module docstring).

    Feed every received notification with :meth:`observe` (sensor time of the packet's *last*
    sample, hub receive time), ask for hub times of samples with :meth:`to_host` in non-decreasing
    sensor time. After a sensor reboot (its clock restarted) call :meth:`reanchor`; the drift
    estimate is kept as the prior of the new epoch because it belongs to the crystal, not the epoch.
    """

    def __init__(self, config: ClockMapperConfig | None = None, prior_drift_ppm: float = 0.0) -> None:
        self.config = config or ClockMapperConfig()
        self._prior_drift = prior_drift_ppm * 1e-6
        self._reset_epoch()

    # -- state -------------------------------------------------------------------------------------

    def _reset_epoch(self) -> None:
        # Internally x is sensor time relative to the epoch's first observation and
        # y = t_host - x_abs; the line is y = a + b * x. Small numbers keep float64 exact to ns.
        self._x0: float | None = None
        self._a = 0.0
        self._b = self._prior_drift
        self._n_fit = 0
        # Closed bin minima of the epoch in two growing arrays; the window is [_lo, _n), and slot _n
        # takes the open bin's minimum at a refit, so the fit reads contiguous views, not a copy.
        self._bin_x = np.empty(_BIN_CAPACITY)
        self._bin_y = np.empty(_BIN_CAPACITY)
        self._lo = 0
        self._n = 0
        self._bin_index: int | None = None
        self._bin_min: tuple[float, float] = (math.nan, math.inf)
        # Slew state: correction c(x) = c_anchor decaying towards 0 from x_anchor at slew_rate.
        self._x_query: float | None = None
        self._c_anchor = 0.0
        self._x_anchor = 0.0
        self._slew_rate = self.config.warmup_slew

    def reanchor(self) -> None:
        """Start a new clock epoch (sensor rebooted): forget offset and bins, keep the drift."""
        self._prior_drift = self._b
        self._reset_epoch()

    @property
    def ready(self) -> bool:
        """True once at least one observation has been made in this epoch."""
        return self._x0 is not None

    @property
    def estimate(self) -> ClockEstimate:
        """The current line (not the slewed output); offset is NaN before the first observation."""
        if self._x0 is None:
            return ClockEstimate(math.nan, self._b * 1e6, 0)
        # t_host = x_abs + a + b (x_abs - x0)  =>  offset = a - b x0, slope 1 + b.
        return ClockEstimate(self._a - self._b * self._x0, self._b * 1e6, self._n_fit)

    @property
    def drift_ppm(self) -> float:
        return self._b * 1e6

    # -- input -------------------------------------------------------------------------------------

    def observe(self, t_sensor_s: float, t_host_s: float) -> None:
        """Take in one notification: sensor time of its last sample and its hub receive time."""
        if self._x0 is None:
            self._x0 = t_sensor_s
            self._a = t_host_s - t_sensor_s
        x = t_sensor_s - self._x0
        y = t_host_s - t_sensor_s
        old_a, old_b = self._a, self._b
        index = math.floor(x / self.config.bin_s)
        if self._bin_index is None:
            self._bin_index = index
            self._bin_min = (x, y)
        elif index > self._bin_index:
            self._close_bin()
            self._bin_index = index
            self._bin_min = (x, y)
            self._refit()
        elif index == self._bin_index and y < self._bin_min[1]:
            self._bin_min = (x, y)
        # A point of an already closed bin is late anyway, but it still bounds the line from below.
        if y < self._a + self._b * x:
            self._a = y - self._b * x
        if (self._a, self._b) != (old_a, old_b):
            self._keep_output_continuous(old_a, old_b)

    def _close_bin(self) -> None:
        """Append the open bin's minimum to the closed bins (room is kept for one more, the open bin)."""
        if self._n + 2 > len(self._bin_x):
            keep = slice(self._lo, self._n)
            size = max(_BIN_CAPACITY, 2 * (self._n - self._lo + 2))
            bin_x, bin_y = np.empty(size), np.empty(size)
            bin_x[: self._n - self._lo], bin_y[: self._n - self._lo] = self._bin_x[keep], self._bin_y[keep]
            self._bin_x, self._bin_y, self._n, self._lo = bin_x, bin_y, self._n - self._lo, 0
        self._bin_x[self._n], self._bin_y[self._n] = self._bin_min
        self._n += 1

    def _window(self) -> tuple[FloatArray, FloatArray]:
        """x and y of the window's closed bins and the open bin, x ascending (views, valid until the next bin)."""
        x_last = self._bin_min[0]
        lo, n, bin_x = self._lo, self._n, self._bin_x
        while lo < n and x_last - bin_x[lo] > self.config.window_s:
            lo += 1
        self._lo = lo
        bin_x[n], self._bin_y[n] = self._bin_min
        return bin_x[lo : n + 1], self._bin_y[lo : n + 1]

    def _refit(self) -> None:
        cfg = self.config
        xs, ys = self._window()
        if len(xs) >= 3 and xs[-1] - xs[0] >= cfg.min_fit_span_s:
            b = self._fit_slope(xs, ys)
            limit = cfg.max_drift_ppm * 1e-6
            if abs(b) > limit:
                log.warning("clock drift fit %.0f ppm beyond ±%.0f ppm; clamped", b * 1e6, cfg.max_drift_ppm)
                b = math.copysign(limit, b)
            self._b = float(b)
            self._n_fit = len(xs)
        # Support the envelope from below: for this slope the line touches the lowest point.
        self._a = float(np.min(ys - self._b * xs))

    def _fit_slope(self, xs: FloatArray, ys: FloatArray) -> float:
        """Drift of the line supporting the points from below, shrunk towards the prior drift.

        The slope is the one of the lower-convex-hull edge spanning the mean x: the LP estimator
        of Moon, Skelly & Towsley (1999), the line below all points with the least summed distance
        to them. Points pushed up by a stalled link never touch the hull, so no trimming is needed.
        The shrinkage is a Gaussian prior on the drift (``prior_drift_sd_ppm``) against points
        scattered by ``bin_noise_s``; it keeps a window of a few seconds from producing drifts of
        thousands of ppm and fades once the window spans tens of seconds.
        """
        cfg = self.config
        x_mean = float(xs.mean())
        dx = xs - x_mean
        sxx = float(dx @ dx)
        b_data = self._window_hull_slope(xs, ys, x_mean)
        if b_data is None:  # only with coincident x, which bins rule out; least squares then
            b_data = float(dx @ (ys - ys.mean())) / sxx if sxx > 0 else self._prior_drift
        lam = (cfg.bin_noise_s / (cfg.prior_drift_sd_ppm * 1e-6)) ** 2
        return (sxx * b_data + lam * self._prior_drift) / (sxx + lam)

    def _window_hull_slope(self, xs: FloatArray, ys: FloatArray, x_mean: float) -> float | None:
        """Hull slope over ``x_mean`` of the current window's points ``xs, ys`` (bins + open bin)."""
        return self._hull_slope(xs, ys, x_mean)

    @staticmethod
    def _hull_slope(xs: FloatArray, ys: FloatArray, x_mean: float) -> float | None:
        """Slope of the lower-convex-hull edge over ``x_mean`` (xs ascending); None if degenerate."""
        # Monotone chain on Python float tuples: element-wise indexing of NumPy arrays costs ~100 ns
        # per access, which made this loop the ingest's hot spot. The arithmetic is the same IEEE
        # double arithmetic in the same order, so the slope is bit-identical.
        hull: list[tuple[float, float]] = []
        for p in zip(xs.tolist(), ys.tolist()):
            px, py = p
            while len(hull) >= 2:
                (x0, y0), (x1, y1) = hull[-2], hull[-1]
                if (x1 - x0) * (py - y0) - (y1 - y0) * (px - x0) > 0:
                    break
                hull.pop()
            hull.append(p)
        for (x0, y0), (x1, y1) in itertools.pairwise(hull):
            if x0 <= x_mean <= x1 and x1 > x0:
                return (y1 - y0) / (x1 - x0)
        return None

    def _keep_output_continuous(self, old_a: float, old_b: float) -> None:
        xq = self._x_query
        if xq is None:
            return  # nothing handed out yet: the new line applies as is
        handed_out = xq + old_a + old_b * xq + float(self._correction(xq))
        self._c_anchor = handed_out - (xq + self._a + self._b * xq)
        self._x_anchor = xq
        self._slew_rate = self.config.warmup_slew if xq < self.config.warmup_s else self.config.slew

    def _correction(self, x: FloatArray | float) -> FloatArray:
        c = self._c_anchor
        left = np.maximum(0.0, abs(c) - self._slew_rate * np.maximum(0.0, np.asarray(x) - self._x_anchor))
        return np.copysign(left, c)

    # -- output ------------------------------------------------------------------------------------

    def to_host(self, t_sensor_s: ArrayLike) -> FloatArray:
        """Hub times of samples taken at ``t_sensor_s`` (non-decreasing, and not before earlier calls).

        The result is the current line plus the decaying correction, strictly increasing in
        ``t_sensor_s``. Raises ``RuntimeError`` before the first :meth:`observe` of the epoch.
        """
        if self._x0 is None:
            raise RuntimeError("ClockMapper.to_host called before any observation in this epoch")
        x_abs = np.asarray(t_sensor_s, dtype=np.float64)
        x = x_abs - self._x0
        corr = self._correction(x)
        # t_host = x_abs + a + b x, computed as x0 + (x (1 + b) + a) to keep precision.
        out: FloatArray = self._x0 + (x * (1.0 + self._b) + self._a) + corr
        if x.size:
            xmax = float(np.max(x))
            self._x_query = xmax if self._x_query is None else max(self._x_query, xmax)
        return out

    def to_host_deferred(self, t_first_s: float, t_last_s: float) -> tuple[ClockState, float, float]:
        """Batch form of :meth:`to_host` for the samples of one packet, evaluated later.

        Has the side effects of ``to_host(t)`` for samples spanning ``t_first_s``..``t_last_s`` and
        returns the mapping's current state (for :func:`host_times`, which evaluates many packets'
        samples in one vectorised pass) and the hub times of the first and last sample, computed in
        scalar arithmetic that is bit-identical to what :meth:`to_host` returns for them.
        """
        if self._x0 is None:
            raise RuntimeError("ClockMapper.to_host_deferred called before any observation in this epoch")
        state = ClockState(self._x0, self._a, self._b, self._c_anchor, self._x_anchor, self._slew_rate)
        first, last = state.at(t_first_s), state.at(t_last_s)
        x_last = t_last_s - self._x0
        self._x_query = x_last if self._x_query is None else max(self._x_query, x_last)
        return state, first, last

    def to_sensor(self, t_host_s: float) -> float:
        """Sensor time that the current line maps to ``t_host_s`` (for predictions, not output)."""
        if self._x0 is None:
            raise RuntimeError("ClockMapper.to_sensor called before any observation in this epoch")
        return self._x0 + (t_host_s - self._x0 - self._a) / (1.0 + self._b)


def _turns_left(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> bool:
    """Whether a -> b -> c turns counter-clockwise (the monotone chain's test, same arithmetic)."""
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]) > 0


class WindowHullClockMapper(ClockMapper):
    """:class:`ClockMapper` that keeps the lower hull of its window up to date instead of rebuilding it.

    The full monotone chain over the 60-s window at every bin (120 points, 7,200 times for a
    30-minute session) was the largest cost of ingesting a recording. Here the hull of the closed
    bins is kept: a closing bin is pushed onto it, and when the window drops its oldest bin (always
    the hull's first vertex) only the stretch up to the next vertex is rebuilt, since every other
    vertex of a set's lower hull stays a vertex of any subset holding it. The open bin is added
    without changing the kept hull. In exact arithmetic the hull, and so the slope, is the one the
    full rebuild finds; in floating point the two can differ only where three bin minima are
    collinear to rounding, by rounding. Used by the batch ingest, whose results are checked against
    the online path in ``tests/test_ingest_batch.py``; the online path keeps :class:`ClockMapper`.
    """

    def _reset_epoch(self) -> None:
        super()._reset_epoch()
        self._hull: list[tuple[float, float]] = []
        """Lower hull of the window's closed bins (x ascending)."""

    def _window_hull_slope(self, xs: FloatArray, ys: FloatArray, x_mean: float) -> float | None:
        hull = self._hull
        # Python floats from here on (element access to NumPy arrays is slow); the last point is the open bin.
        pts_x, pts_y = xs.tolist(), ys.tolist()
        n_closed = len(pts_x) - 1
        # Bins closed since the last fit (x beyond the kept hull's last vertex; usually one).
        x_synced = hull[-1][0] if hull else -math.inf
        k = n_closed
        while k > 0 and pts_x[k - 1] > x_synced:
            k -= 1
        new = list(zip(pts_x[k:n_closed], pts_y[k:n_closed]))
        # Bins the window dropped: rebuild the hull's start up to its first surviving vertex.
        if not n_closed:
            hull = []
        elif hull and hull[0][0] < pts_x[0]:
            keep = 0
            while keep < len(hull) and hull[keep][0] < pts_x[0]:
                keep += 1
            rest = hull[keep:]
            hull = []
            if rest:  # else every earlier bin is gone and only the new ones remain
                for p in zip(pts_x[:n_closed], pts_y[:n_closed]):
                    if p[0] >= rest[0][0]:
                        break
                    self._chain_push(hull, p)
                self._chain_push(hull, rest[0])
                hull += rest[1:]
        for p in new:
            self._chain_push(hull, p)
        self._hull = hull
        # The open bin on top, without changing the kept hull.
        top = self._bin_min
        k = len(hull)
        while k >= 2 and not _turns_left(hull[k - 2], hull[k - 1], top):
            k -= 1
        chain = [*hull[:k], top]
        for (x0, y0), (x1, y1) in itertools.pairwise(chain):
            if x0 <= x_mean <= x1 and x1 > x0:
                return (y1 - y0) / (x1 - x0)
        return None

    @staticmethod
    def _chain_push(hull: list[tuple[float, float]], p: tuple[float, float]) -> None:
        while len(hull) >= 2 and not _turns_left(hull[-2], hull[-1], p):
            hull.pop()
        hull.append(p)


@dataclass(frozen=True, slots=True)
class ClockState:
    """A snapshot of :class:`ClockMapper`'s output mapping: line plus decaying correction.

    ``t_host = x0 + ((t_sensor - x0) * (1 + b) + a) + correction``, the correction decaying from
    ``c_anchor`` at sensor time ``x0 + x_anchor`` at ``slew_rate``: exactly :meth:`ClockMapper.to_host`.
    """

    x0: float
    a: float
    b: float
    c_anchor: float
    x_anchor: float
    slew_rate: float

    def at(self, t_sensor_s: float) -> float:
        """Hub time of one sensor time, in the same operations (and so the same bits) as ``to_host``."""
        x = t_sensor_s - self.x0
        left = max(0.0, abs(self.c_anchor) - self.slew_rate * max(0.0, x - self.x_anchor))
        return self.x0 + (x * (1.0 + self.b) + self.a) + math.copysign(left, self.c_anchor)


def host_times(t_sensor_s: FloatArray, states: list[ClockState], counts: ArrayLike) -> FloatArray:
    """Hub times of many packets' samples at once: ``states[k]`` maps the next ``counts[k]`` samples.

    Element for element the arithmetic of :meth:`ClockMapper.to_host`, so the result is bit-identical
    to calling it per packet with the mapper in each of these states.
    """
    if not states:
        return np.zeros(0)
    params = np.array([(s.x0, s.a, s.b, s.c_anchor, s.x_anchor, s.slew_rate) for s in states], dtype=np.float64)
    x0, a, b, c, x_anchor, slew = np.repeat(params, np.asarray(counts), axis=0).T
    x = np.asarray(t_sensor_s, dtype=np.float64) - x0
    left = np.maximum(0.0, np.abs(c) - slew * np.maximum(0.0, x - x_anchor))
    out: FloatArray = x0 + (x * (1.0 + b) + a) + np.copysign(left, c)
    return out
