"""Rep detection: a stream of hip and pelvis angles in, scored reps (and aborted attempts) out.

One detector serves live use and whole recordings. :class:`RepDetector` takes one sample at a time
and returns a :class:`RepCompleted` event the moment a rep is over (the hip is back at neutral, or at
most ``settle_s`` after it crossed back inside ``exit_deg``); :func:`detect_reps` runs the same detector
over a whole :class:`~sensorhub.drills.table.AngleTable`, so live and batch give identical reps by
construction. For speed the batch path (:meth:`RepDetector.update_table`) applies the stretches of
samples that cannot change the state in a compiled kernel (:func:`kernels.scan_quiet`: the smoothing
EMAs in the blocked form of :class:`_Gains` and the neutral tracker, in the same floating-point
operations and order as the per-sample code) and sends every sample that may change it through
:meth:`RepDetector.update`; tests/test_reps_batch.py checks events and state against the
sample-by-sample path. A closed rep is measured by one kernel (:func:`kernels.measure_core`) on
both paths.

How a rep is found (angles relative to the athlete's neutral, see docs/drills.md):

1. A causal, lightly smoothed hip rotation drives a small state machine. Leaving neutral by more than
   ``enter_deg`` opens an *excursion* in that direction; coming back inside ``exit_deg`` closes it.
   Small wobbles and hesitations near neutral never reach ``enter_deg``; hysteresis keeps noise from
   splitting an excursion.
2. An excursion whose peak stays below the drill's ``min_peak_deg`` is an aborted attempt.
3. Excursions are paired by the drill's direction order: for a combined drill ONE rep is
   neutral -> first end -> neutral -> second end -> neutral. A first half that is not followed by the
   second in time, a second half without a first, and aborted halves are reported as
   :class:`RepIncomplete` and never counted.
4. When a rep closes, the buffered raw samples of that rep are measured with zero-phase filtering:
   boundaries, peaks, holds, tempo, smoothness and pelvis compensation, then scored.

Neutral is tracked while the hip rests (a slow exponential average), and peaks are measured from the
neutral the athlete held just before the rep, so a calibration offset or slow heading drift of the
angle estimate does not bias them. Pelvis compensation is measured relative to the pelvis's own
position at the rep's start for the same reason. NaN samples are gaps: short gaps are bridged, a gap
longer than ``max_gap_s`` aborts the rep in progress.

No I/O here; logging only at debug level.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np
from numpy.typing import NDArray

from sensorhub.drills import kernels
from sensorhub.drills.catalog import Direction, DrillDefinition, get_drill
from sensorhub.drills.scoring import RepMeasures, ScoreComponents, score_rep, sparc
from sensorhub.drills.scoring import mean_short as _mean_short
from sensorhub.drills.table import AngleTable

log = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]
PELVIS_AXES = ("pelvis_tilt", "pelvis_obliquity", "pelvis_rotation")
# Knee tracking (the knee drifting in or out while the hip turns) shows as a change of hip adduction.
# It is measured and reported alongside the pelvis but not flagged: there are no labelled reps yet to
# set a limit from.
TRACKED_AXES = (*PELVIS_AXES, "hip_adduction")


@dataclass(frozen=True)
class DetectorConfig:
    """Thresholds of the rep detector (degrees, seconds). Defaults are justified in docs/drills.md."""

    smoothing_tau_s: float = 0.03  # two cascaded causal EMAs for the state machine (~0.06 s lag)
    enter_deg: float = 6.0  # leaving neutral by this much opens an excursion
    exit_deg: float = 3.0  # back inside this closes it
    onset_deg: float = 1.0  # rep boundaries: where the smoothed angle leaves/reaches neutral
    settle_s: float = 0.5  # longest wait after exit for the angle to reach the onset band
    hold_tolerance_deg: float = 2.0  # "at end range" = within this of the peak ...
    hold_speed_deg_s: float = 10.0  # ... and (nearly) still: slower than this
    hold_lowpass_hz: float = 3.0  # low-pass for the hold speed (keeps 0.5° noise well under the limit)
    neutral_tau_s: float = 2.0  # time constant of the neutral tracker while resting
    max_gap_s: float = 1.0  # a longer gap aborts the rep in progress
    pre_s: float = 0.5  # quiet time before a rep used for the neutral and pelvis baselines
    min_pause_for_neutral_s: float = 0.15  # a pause between halves this long re-measures the neutral
    lowpass_hz: float = 6.0  # zero-phase low-pass used when measuring a closed rep
    rotating_fraction: float = 0.25  # pelvis is judged where |hip rotation| > this x the half's peak
    max_excursion_s: float = 30.0  # an excursion longer than this is abandoned (athlete stopped)


@dataclass(frozen=True)
class HalfRep:
    """One excursion of a rep: neutral -> end range in ``direction`` -> neutral (times in s, angles in deg)."""

    direction: Direction
    t_onset: float
    t_end_range: float  # end range reached (start of the hold)
    t_hold_end: float
    t_return: float
    t_peak: float
    peak_deg: float  # positive, relative to ``neutral_deg``
    hold_s: float
    smoothness_sparc: float
    neutral_deg: float  # hip rotation this half's peak is measured from

    @property
    def end_range_deg(self) -> float:
        """Hip rotation at the end reached, in the input's own zero (for plotting)."""
        return self.neutral_deg + self.direction.sign * self.peak_deg

    @property
    def out_s(self) -> float:
        return self.t_end_range - self.t_onset

    @property
    def back_s(self) -> float:
        return self.t_return - self.t_hold_end


@dataclass(frozen=True)
class PelvisCompensation:
    """Peak change of each pelvis angle from its value at the rep's start, while the hip was rotated.

    ``change_deg`` also holds ``hip_adduction`` (knee tracking), reported but never flagged.
    """

    flagged: bool
    change_deg: dict[str, float]  # axis -> peak absolute change (NaN: not measured)
    limit_deg: dict[str, float]
    exceeded: tuple[str, ...]
    worst_ratio: float  # max over axes of change / limit
    during: dict[str, str]  # axis -> direction of the half where its peak change happened


@dataclass(frozen=True)
class Rep:
    """One complete, scored rep."""

    index: int  # 1-based, in order of completion
    drill: str
    t_start: float
    t_end: float
    neutral_deg: float  # hip rotation the peaks are measured from
    halves: tuple[HalfRep, ...]
    peak_internal_rotation: float | None  # positive degrees; None when the drill does not measure it
    peak_external_rotation: float | None
    hold_internal_s: float | None
    hold_external_s: float | None
    tempo: dict[str, float]
    smoothness: float  # mean SPARC of the movement phases
    compensation: bool
    compensation_detail: PelvisCompensation
    hip_flexion_mean_deg: float
    posture_ok: bool
    gap_s: float  # time without data inside the rep
    score: float
    score_components: ScoreComponents

    @property
    def arc(self) -> float:
        """Total arc from the internal to the external end (or the single measured peak)."""
        return (self.peak_internal_rotation or 0.0) + (self.peak_external_rotation or 0.0)


@dataclass(frozen=True)
class RepCompleted:
    """Event: ``rep`` ended; emitted at hub time ``t_emit``."""

    t_emit: float
    rep: Rep


@dataclass(frozen=True)
class RepIncomplete:
    """Event: an attempt that does not count (aborted, missing half, interrupted by a gap)."""

    t_emit: float
    t_start: float
    t_end: float
    reason: str
    peaks_deg: dict[str, float]  # direction -> peak reached (positive degrees)


RepEvent = RepCompleted | RepIncomplete


@dataclass
class _Excursion:
    """Coarse timing of one excursion, as seen by the causal state machine."""

    direction: Direction
    t_leave: float  # last time inside the onset band before leaving neutral
    t_enter: float
    neutral_deg: float
    peak_deg: float = 0.0
    t_exit: float = math.nan
    t_back: float = math.nan
    after_gap: bool = False  # started right after a data gap, before any quiet sample: onset unseen


class _State(Enum):
    NEUTRAL = "neutral"
    EXCURSION = "excursion"


_ROW_COLUMNS = ("t", "hip_rotation", "hip_flexion", "hip_adduction", "pelvis_tilt", "pelvis_obliquity", "pelvis_rotation")


class _Buffer:
    """Raw rows ``(t, *angles)`` in the order of :data:`_ROW_COLUMNS`, kept for measuring the rep in progress.

    A growable (n, 7) array with a moving start: appending a row or a block and dropping old rows
    are O(1) amortised, and a window is a slice found by binary search (rows are in time order).
    """

    def __init__(self, capacity: int = 2048) -> None:
        self._rows = np.empty((capacity, len(_ROW_COLUMNS)), dtype=np.float64)
        self._start = 0
        self._end = 0

    def __len__(self) -> int:
        return self._end - self._start

    def append(self, row: tuple[float, float, float, float, float, float, float]) -> None:
        if self._end == len(self._rows):
            self._make_room(1)
        self._rows[self._end] = row
        self._end += 1

    def extend(self, block: FloatArray) -> None:
        """Append rows (n, 7)."""
        n = len(block)
        if self._end + n > len(self._rows):
            self._make_room(n)
        self._rows[self._end : self._end + n] = block
        self._end += n

    def _make_room(self, n: int) -> None:
        live = self._end - self._start
        capacity = len(self._rows)
        if live + n > capacity // 2:
            capacity = max(2 * capacity, 2 * (live + n))
            rows = np.empty((capacity, len(_ROW_COLUMNS)), dtype=np.float64)
            rows[:live] = self._rows[self._start : self._end]
            self._rows = rows
        else:
            self._rows[:live] = self._rows[self._start : self._end].copy()
        self._start, self._end = 0, live

    def trim_before(self, t_keep: float) -> None:
        """Drop the rows before ``t_keep``."""
        if self._end > self._start and self._rows[self._start, 0] < t_keep:
            self._start += int(np.searchsorted(self._rows[self._start : self._end, 0], t_keep, side="left"))

    def columns(self, t0: float, t1: float) -> FloatArray:
        """The kept rows with ``t0 <= t <= t1`` as columns (7, n) in the order of :data:`_ROW_COLUMNS` (a copy)."""
        t = self._rows[self._start : self._end, 0]
        i0 = self._start + int(np.searchsorted(t, t0, side="left"))
        i1 = self._start + int(np.searchsorted(t, t1, side="right"))
        return self._rows[i0:i1].T.copy()

    def window(self, t0: float, t1: float) -> AngleTable:
        """The kept rows with ``t0 <= t <= t1`` (a copy)."""
        arr = self.columns(t0, t1)
        return AngleTable(**{name: arr[k] for k, name in enumerate(_ROW_COLUMNS)})


@dataclass(frozen=True, eq=False)
class _Gains:
    """Per-sample gains of the smoothing EMAs and of the neutral tracker for one sample interval.

    Each first-order filter is ``y = keep * y_prev + gain * x``. The neutral tracker is evaluated
    in exactly that form. The two smoothing EMAs are evaluated in *blocks* of ``ema_block``
    samples (:meth:`RepDetector._step_emas`, and per sample in :func:`kernels.scan_quiet` for the
    batch path): inside a block that starts from ``s``, sample ``j`` is
    ``y_j = keep^(j+1) · (s + P_j)`` with ``P_j`` the running sum of ``(gain · x_i) · keep^-(i+1)``.
    (This form let an earlier NumPy batch path use one cumulative sum per block; it is kept so that
    the values stay those of the previous rounds.) Both paths perform the same operations in the
    same order, so both give the same values to the bit; they equal the plain recurrence to
    about 1e-15 of the signal (tests/test_reps_kernels.py). ``ema_block`` keeps
    ``keep^-block`` below 1e6; intervals so long that even two samples would exceed it
    (``ema_block == 0``) use the plain recurrence in both paths.
    """

    ema: float
    ema_keep: float
    neutral: float
    neutral_keep: float
    ema_block: int
    ema_pow: tuple[float, ...]  # keep^(j+1), j = 0 .. ema_block - 1
    ema_inv: tuple[float, ...]  # keep^-(j+1)
    ema_pow_arr: FloatArray
    ema_inv_arr: FloatArray


#: Longest EMA block (:class:`_Gains`) and the largest growth ``keep^-block`` allowed inside one.
_EMA_MAX_BLOCK = 64
_EMA_MAX_GROWTH = 1e6


def _make_gains(dt_s: float, smoothing_tau_s: float, neutral_tau_s: float) -> _Gains:
    ema = -math.expm1(-dt_s / smoothing_tau_s)
    neutral = -math.expm1(-dt_s / neutral_tau_s)
    keep = 1.0 - ema
    decay = -math.log(keep) if keep > 0.0 else math.inf
    block = min(_EMA_MAX_BLOCK, int(math.log(_EMA_MAX_GROWTH) / decay)) if decay > 0.0 else _EMA_MAX_BLOCK
    if block < 2:
        block = 0
    pw = [keep ** (j + 1) for j in range(block)]
    inv = [1.0 / v for v in pw]
    return _Gains(ema, keep, neutral, 1.0 - neutral, block, tuple(pw), tuple(inv), np.array(pw), np.array(inv))


def _interval_key(dt_s: float) -> int:
    """The sample interval rounded to whole microseconds: a uniform grid whose float timestamps differ
    in the last bits still gets one set of gains (which is what lets batch use a linear filter)."""
    return math.floor(dt_s * 1e6 + 0.5)


_MAX_CACHED_GAINS = 4096


class RepDetector:
    """Online rep detector for one drill and one leg: feed samples with :meth:`update`, end with :meth:`finish`.

    Every call returns the events that became known with that sample (usually none). Samples must come
    in increasing time; NaN hip rotation marks a gap. :meth:`update_table` feeds many samples at once
    and is equivalent to calling :meth:`update` for every row (same events, same state afterwards),
    only much faster: it runs the quiet stretches between decisions with NumPy.
    """

    def __init__(self, drill: DrillDefinition | str, config: DetectorConfig | None = None) -> None:
        self.drill = get_drill(drill) if isinstance(drill, str) else drill
        self.config = config or DetectorConfig()
        self._buffer = _Buffer()
        self._state = _State.NEUTRAL
        self._ema1 = math.nan
        self._ema2 = math.nan
        # Block state of the two EMAs (see :class:`_Gains`): interval key of the block in progress
        # (-1: the next sample starts a block), position in it, the values it started from and
        # the running sums.
        self._ema_key = -1
        self._ema_phase = 0
        self._ema_s1 = self._ema_s2 = 0.0
        self._ema_p1 = self._ema_p2 = 0.0
        self._neutral = 0.0  # the calibration zero until the athlete has rested
        self._t_last = -math.inf
        self._t_last_valid = -math.inf
        self._t_last_quiet = math.nan
        self._t_last_exit = -math.inf
        self._since_gap = False  # a gap aborted the attempt and no quiet sample or exit has been seen since
        self._current: _Excursion | None = None
        self._closing: _Excursion | None = None
        self._pending: list[_Excursion] = []
        self._reps_done = 0
        self._gain_cache: dict[int, _Gains] = {}
        # The fixed thresholds of the batch path's kernel (:meth:`_skip`), in the layout of its parameters.
        cfg = self.config
        lo, hi = self.drill.hip_flexion_range_deg
        self._scan_fixed = (cfg.enter_deg, cfg.exit_deg, cfg.onset_deg, lo, hi, cfg.max_excursion_s, cfg.settle_s,
                            self.drill.max_mid_pause_s)

    # ------------------------------------------------------------------ public API
    def update(
        self,
        t: float,
        hip_rotation: float,
        *,
        hip_flexion: float = math.nan,
        hip_adduction: float = math.nan,
        pelvis_tilt: float = math.nan,
        pelvis_obliquity: float = math.nan,
        pelvis_rotation: float = math.nan,
    ) -> list[RepEvent]:
        """Process one sample (time in s, angles in degrees); returns the events it completes."""
        if not t > self._t_last:  # also rejects a NaN time
            log.debug("drills: sample at t=%.3f s not after previous %.3f s; ignored", t, self._t_last)
            return []
        self._t_last = t
        self._buffer.append((t, hip_rotation, hip_flexion, hip_adduction, pelvis_tilt, pelvis_obliquity, pelvis_rotation))
        events: list[RepEvent] = []
        if not math.isfinite(hip_rotation):
            return events
        cfg = self.config
        gap = t - self._t_last_valid
        self._t_last_valid = t
        key = _interval_key(gap) if math.isfinite(gap) else -1
        gains = self._gains(key) if math.isfinite(gap) else None
        if gap > cfg.max_gap_s and math.isfinite(gap):
            events.extend(self._abort_all(t, f"data gap of {gap:.2f} s"))
            self._ema1 = self._ema2 = math.nan
            # Nothing is known about the gap: an excursion seen right after it starts here, not at
            # the last quiet sample before the gap (that would glue the halves of two reps together).
            self._t_last_quiet = math.nan
            self._t_last_exit = -math.inf
            self._since_gap = True
        # Two cascaded EMAs with a dt-dependent gain: correct for irregular sampling and after gaps.
        if math.isnan(self._ema1) or gains is None:
            self._ema1 = self._ema2 = hip_rotation
            self._ema_key = -1
        else:
            self._step_emas(hip_rotation, key, gains)
        x = self._ema2 - self._neutral
        posture_ok = self._posture_ok(hip_flexion)

        if self._state is _State.EXCURSION:
            cur = self._current
            assert cur is not None
            y = cur.direction.sign * x
            cur.peak_deg = max(cur.peak_deg, y)
            if y < cfg.exit_deg:
                cur.t_exit = t
                self._t_last_exit = t
                self._since_gap = False
                self._closing = cur
                self._current = None
                self._state = _State.NEUTRAL
            elif t - cur.t_enter > cfg.max_excursion_s:
                events.extend(self._abort_all(t, f"no return to neutral within {cfg.max_excursion_s:.0f} s"))
            else:
                return events

        # NEUTRAL
        if abs(x) < cfg.onset_deg:
            self._t_last_quiet = t
            self._since_gap = False
        starting = abs(x) > cfg.enter_deg and posture_ok
        if self._closing is not None and (
            abs(x) < cfg.onset_deg or t - self._closing.t_exit >= cfg.settle_s or starting
        ):
            self._closing.t_back = t
            events.extend(self._close_half(self._closing, t))
            self._closing = None
        if self._pending and self._closing is None:
            last = self._pending[-1]
            if t - last.t_back > self.drill.max_mid_pause_s:
                events.extend(self._abort_all(t, "second half of the rep never came"))
        if starting:
            direction = Direction.INTERNAL if x > 0 else Direction.EXTERNAL
            # Swinging straight through neutral (90/90) leaves no quiet sample: start at the crossing.
            t_leave = max(self._t_last_quiet, self._t_last_exit) if math.isfinite(self._t_last_quiet) else t
            self._current = _Excursion(direction, t_leave, t, self._neutral, peak_deg=abs(x), after_gap=self._since_gap)
            self._state = _State.EXCURSION
        elif self._closing is None and not self._pending and abs(x) < cfg.enter_deg and gains is not None:
            # Resting: let the neutral follow slow drift of the estimate.
            self._neutral = gains.neutral_keep * self._neutral + gains.neutral * self._ema2
        self._trim()
        return events

    def update_table(self, table: AngleTable) -> list[RepEvent]:
        """Feed every row of ``table``; returns the events in order (the same as :meth:`update` per row).

        Rows are handled in stretches between *decision rows* (a sample that may change the state:
        leaving neutral, crossing back, a timeout, a gap). Inside a stretch of uniformly sampled,
        finite data the rows up to the first one where a threshold is crossed are applied by
        :func:`kernels.scan_quiet` (the EMAs, the neutral tracker, the peak and the quiet time, as
        :meth:`update` computes them); every decision row then goes through :meth:`update` itself,
        so both paths share one rule book.
        """
        cols = np.column_stack([getattr(table, name) for name in _ROW_COLUMNS]).astype(np.float64, copy=False)
        n = len(cols)
        t, rot = cols[:, 0], cols[:, 1]
        first = int(np.searchsorted(t, self._t_last, side="right")) if n else 0
        # Fast rows: finite, after a finite row, a normal interval; runs share one interval key.
        fast = np.zeros(n, dtype=bool)
        key = np.zeros(n, dtype=np.float64)
        if n > 1:
            dt = np.diff(t)
            finite = np.isfinite(rot)
            fast[1:] = finite[1:] & finite[:-1] & (dt <= self.config.max_gap_s)
            key[1:] = np.floor(dt * 1e6 + 0.5)
        fast[: first + 1] = False
        new_run = fast.copy()
        new_run[1:] &= ~fast[:-1] | (key[1:] != key[:-1])
        starts = np.flatnonzero(new_run)
        ends = np.flatnonzero(fast & np.append(new_run[1:] | ~fast[1:], True)) + 1 if n else starts
        events: list[RepEvent] = []
        i = first
        for r0, r1 in zip(starts.tolist(), ends.tolist()):
            for row in cols[i:r0].tolist():
                events.extend(self._update_row(row))
            events.extend(self._run(cols, r0, r1, int(key[r0])))
            i = r1
        for row in cols[i:].tolist():
            events.extend(self._update_row(row))
        return events

    def finish(self) -> list[RepEvent]:
        """End of stream: close a returning excursion and report whatever is left unfinished."""
        events: list[RepEvent] = []
        if self._closing is not None:
            self._closing.t_back = self._t_last
            events.extend(self._close_half(self._closing, self._t_last))
            self._closing = None
        events.extend(self._abort_all(self._t_last, "stream ended during the rep"))
        return events

    # ------------------------------------------------------------------ batch path
    def _update_row(self, row: list[float]) -> list[RepEvent]:
        t, rot, flx, add, tilt, obl, prot = row
        return self.update(t, rot, hip_flexion=flx, hip_adduction=add, pelvis_tilt=tilt, pelvis_obliquity=obl, pelvis_rotation=prot)

    def _gains(self, key: int) -> _Gains:
        gains = self._gain_cache.get(key)
        if gains is None:
            if len(self._gain_cache) >= _MAX_CACHED_GAINS:  # irregular timestamps: do not grow without bound
                self._gain_cache.clear()
            gains = self._gain_cache[key] = _make_gains(key * 1e-6, self.config.smoothing_tau_s, self.config.neutral_tau_s)
        return gains

    def _step_emas(self, x: float, key: int, g: _Gains) -> None:
        """One sample of the two smoothing EMAs in the blocked form of :class:`_Gains` (what :func:`kernels.scan_quiet` does per row)."""
        if g.ema_block == 0:
            self._ema1 = g.ema_keep * self._ema1 + g.ema * x
            self._ema2 = g.ema_keep * self._ema2 + g.ema * self._ema1
            self._ema_key, self._ema_phase = key, 0
            return
        j = self._ema_phase + 1
        if key != self._ema_key or j == g.ema_block:
            j = 0
            self._ema_key = key
            self._ema_s1, self._ema_s2 = self._ema1, self._ema2
            p1 = (g.ema * x) * g.ema_inv[0]
        else:
            p1 = self._ema_p1 + (g.ema * x) * g.ema_inv[j]
        y1 = g.ema_pow[j] * (self._ema_s1 + p1)
        p2 = (g.ema * y1) * g.ema_inv[j]
        if j:
            p2 = self._ema_p2 + p2
        self._ema1, self._ema2 = y1, g.ema_pow[j] * (self._ema_s2 + p2)
        self._ema_phase, self._ema_p1, self._ema_p2 = j, p1, p2

    def _run(self, cols: FloatArray, r0: int, r1: int, key: int) -> list[RepEvent]:
        """Rows ``r0:r1`` of ``cols``: finite, each right after a finite row, one sample interval (``key``)."""
        gains = self._gains(key)
        events: list[RepEvent] = []
        k = r0
        while k < r1:
            e = self._skip(cols, k, r1, key, gains)
            if e < r1:
                events.extend(self._update_row(cols[e].tolist()))
                k = e + 1
            else:
                k = r1
        return events

    def _skip(self, cols: FloatArray, k: int, r1: int, key: int, gains: _Gains) -> int:
        """Apply every row from ``k`` up to the next decision row (returned; ``r1`` if none) with :func:`kernels.scan_quiet`."""
        enter, exit_deg, onset, flex_lo, flex_hi, max_excursion, settle, max_mid_pause = self._scan_fixed
        sign = t_enter = t_exit = t_back = 0.0
        cur = self._current
        if self._state is _State.EXCURSION:
            assert cur is not None
            mode = kernels.MODE_EXCURSION
            sign, t_enter = float(cur.direction.sign), cur.t_enter
        elif self._closing is not None:
            mode = kernels.MODE_CLOSING
            t_exit = self._closing.t_exit
        elif self._pending:
            mode = kernels.MODE_PENDING
            t_back = self._pending[-1].t_back
        else:
            mode = kernels.MODE_RESTING
        # Layout of kernels.Q_* and kernels.S_*.
        q = np.array((gains.ema, gains.ema_keep, gains.neutral, gains.neutral_keep, enter, exit_deg, onset, flex_lo, flex_hi,
                      sign, t_enter, max_excursion, t_exit, settle, t_back, max_mid_pause))
        st = np.array((self._ema1, self._ema2, 1.0 if self._ema_key == key else -1.0, self._ema_phase, self._ema_s1,
                       self._ema_s2, self._ema_p1, self._ema_p2, self._neutral, self._t_last_quiet,
                       1.0 if self._since_gap else 0.0, cur.peak_deg if cur is not None else 0.0))
        e = kernels.scan_quiet(cols, k, r1, mode, q, gains.ema_pow_arr, gains.ema_inv_arr, st)
        if e > k:
            (self._ema1, self._ema2, _, phase, self._ema_s1, self._ema_s2, self._ema_p1, self._ema_p2, self._neutral,
             t_quiet, since_gap, peak) = st.tolist()
            if not math.isnan(t_quiet):  # NaN: no quiet sample yet (keep the per-sample path's own NaN object)
                self._t_last_quiet = t_quiet
            self._ema_key, self._ema_phase, self._since_gap = key, int(phase), since_gap != 0.0
            if cur is not None and mode == kernels.MODE_EXCURSION:
                cur.peak_deg = peak
            self._buffer.extend(cols[k:e])
            self._t_last = self._t_last_valid = float(cols[e - 1, 0])
            if mode != kernels.MODE_EXCURSION:
                self._trim()
        return e

    # ------------------------------------------------------------------ internals
    def _posture_ok(self, hip_flexion: float) -> bool:
        if not math.isfinite(hip_flexion):
            return True  # unknown posture does not block detection
        lo, hi = self.drill.hip_flexion_range_deg
        return lo <= hip_flexion <= hi

    def _trim(self) -> None:
        starts = [e.t_leave for e in (*self._pending, self._closing, self._current) if e is not None]
        keep_from = (min(starts) if starts else self._t_last) - 2.0 * self.config.pre_s
        self._buffer.trim_before(keep_from)

    def _abort_all(self, t: float, reason: str) -> list[RepEvent]:
        halves = [e for e in (*self._pending, self._closing, self._current) if e is not None]
        self._pending.clear()
        self._closing = None
        self._current = None
        self._state = _State.NEUTRAL
        if not halves:
            return []
        return [self._incomplete(halves, t, reason)]

    def _incomplete(self, halves: Sequence[_Excursion], t: float, reason: str) -> RepIncomplete:
        peaks: dict[str, float] = {}
        for h in halves:
            peaks[h.direction.value] = max(peaks.get(h.direction.value, 0.0), h.peak_deg)
        t_end = halves[-1].t_back if math.isfinite(halves[-1].t_back) else t
        log.debug("drills: incomplete rep %.2f-%.2f s: %s", halves[0].t_leave, t_end, reason)
        return RepIncomplete(t_emit=t, t_start=halves[0].t_leave, t_end=t_end, reason=reason, peaks_deg=peaks)

    def _close_half(self, half: _Excursion, t: float) -> list[RepEvent]:
        events: list[RepEvent] = []
        drill = self.drill
        if half.direction not in drill.directions:
            log.debug("drills: %s excursion ignored; %s measures %s", half.direction.value, drill.name, [d.value for d in drill.directions])
            return events
        if half.after_gap:
            # Seen only from the middle on (the data came back with the hip already out): its onset and
            # its true peak may lie in the gap, so it is reported, never counted or paired.
            attempt = [*self._pending, half]
            self._pending.clear()
            return [self._incomplete(attempt, t, f"{half.direction.value} half started during a data gap")]
        if half.peak_deg < drill.min_peak_deg:
            # An aborted half also ends the attempt it belonged to.
            attempt = [*self._pending, half]
            self._pending.clear()
            return [self._incomplete(attempt, t, f"aborted: {half.direction.value} peak {half.peak_deg:.1f}° < {drill.min_peak_deg:.0f}°")]
        position = drill.directions.index(half.direction)
        if position != len(self._pending):
            # Out of order: a first half again (the previous attempt was abandoned) or a stray second half.
            if self._pending:
                events.append(self._incomplete(self._pending, t, f"{drill.directions[len(self._pending)].value} half missing"))
                self._pending.clear()
            if position != 0:
                events.append(self._incomplete([half], t, f"{half.direction.value} half without a preceding {drill.directions[0].value} half"))
                return events
        self._pending.append(half)
        if len(self._pending) == len(drill.directions):
            halves = list(self._pending)
            self._pending.clear()
            rep = self._measure(halves, t)
            if rep is None:
                events.append(self._incomplete(halves, t, "too few samples to measure"))
            else:
                events.append(RepCompleted(t_emit=t, rep=rep))
        return events

    def _measure(self, halves: Sequence[_Excursion], t: float) -> Rep | None:
        cfg = self.config
        window = self._buffer.columns(halves[0].t_leave - cfg.pre_s, halves[-1].t_back)
        rep = _measure_columns(window, self.drill, halves, self._reps_done + 1, cfg)
        if rep is not None:
            self._reps_done += 1
        return rep


@functools.lru_cache(maxsize=64)
def _butter_ba(cutoff_hz: float, fs_hz: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """2nd-order Butterworth low-pass ``(b, a)`` and its steady-state initial conditions, cached per rate.

    The design ``scipy.signal.butter(2, cutoff_hz, fs=fs_hz)`` makes (bilinear transform with the
    cut-off pre-warped, ``K = tan(π·fc/fs)``), written out; ``zi`` is ``scipy.signal.lfilter_zi``'s
    solution of ``(I - Aᵀ) zi = b[1:] - a[1:]·b[0]`` for the 2 x 2 companion matrix ``A``, here
    solved in closed form.
    Transfer-function form is well conditioned at 2nd order for any cut-off used here (>= 1 % of
    the sample rate). tests/test_reps_filters.py compares all three with SciPy's.
    """
    k = math.tan(math.pi * cutoff_hz / fs_hz)
    kk = k * k
    norm = 1.0 / (1.0 + math.sqrt(2.0) * k + kk)
    b0 = kk * norm
    b = np.array([b0, 2.0 * b0, b0])
    a = np.array([1.0, 2.0 * (kk - 1.0) * norm, (1.0 - math.sqrt(2.0) * k + kk) * norm])
    # Numerator and denominator cancel to a few digits at low cut-offs: summed exactly (fsum).
    b0, b1, b2, a1, a2 = (float(c) for c in (b[0], b[1], b[2], a[1], a[2]))
    zi0 = math.fsum((b1, -a1 * b0, b2, -a2 * b0)) / math.fsum((1.0, a1, a2))
    zi = np.array([zi0, math.fsum((b2, -a2 * b0, -a2 * zi0))])
    return b, a, zi


@functools.lru_cache(maxsize=64)
def _filter_coef(cutoff_hz: float, fs_hz: float) -> FloatArray:
    """``(b0, b1, b2, a1, a2, zi0, zi1)`` of :func:`_butter_ba` for :func:`kernels.filtfilt2`."""
    b, a, zi = _butter_ba(cutoff_hz, fs_hz)
    return np.array([b[0], b[1], b[2], a[1], a[2], zi[0], zi[1]])


#: Zero-phase filtering pads each end with an odd extension of ``3 * (filter order + 1)`` samples
#: (SciPy's default for a 2nd-order filter), fewer when the window is shorter.
_PADLEN = 18
#: Windows shorter than this are measured unfiltered (NaN bridged only).
_MIN_FILTER_ROWS = 16
#: SPARC of a movement phase longer than this (samples) is computed with one FFT
#: (:func:`sensorhub.drills.scoring.sparc`) instead of the kernel's direct DFT of the kept bins,
#: whose cost grows with the square of the length: at 100 Hz the DFT is the cheaper one up to
#: about this length, and a phase of a normal rep (about 0.5-1.5 s) is well below it.
_SPARC_DFT_MAX_ROWS = 256


def measure_rep(window: AngleTable, drill: DrillDefinition, coarse: Sequence[_Excursion], index: int, cfg: DetectorConfig) -> Rep | None:
    """Measure and score one rep from the raw samples ``window`` (from ``pre_s`` before its start to its end)."""
    columns = np.array([getattr(window, name) for name in _ROW_COLUMNS], dtype=np.float64)
    return _measure_columns(columns, drill, coarse, index, cfg)


def _measure_columns(columns: FloatArray, drill: DrillDefinition, coarse: Sequence[_Excursion], index: int,
                     cfg: DetectorConfig) -> Rep | None:
    """:func:`measure_rep` of a window given as columns (7, n) in the order of :data:`_ROW_COLUMNS`.

    The numbers come from :func:`kernels.measure_core` (filtering, neutrals, holds, boundaries,
    SPARC, compensation); this function turns them into the :class:`Rep` and scores it.
    """
    if len(coarse) > kernels.MAX_HALVES:
        raise ValueError(f"measure_rep: {len(coarse)} halves; a rep has at most {kernels.MAX_HALVES}")
    fs = kernels.window_rate_hz(columns)
    if not fs > 0.0:  # fewer than 8 samples with a hip rotation
        return None
    t = columns[0]
    n = t.size
    filtered = n >= _MIN_FILTER_ROWS
    params = _measure_params(cfg).copy()
    filter_angles = filtered and cfg.lowpass_hz < 0.45 * fs
    filter_hold = filtered and cfg.hold_lowpass_hz < 0.45 * fs
    params[kernels.M_FILTER_ANGLES] = 1.0 if filter_angles else 0.0
    params[kernels.M_FILTER_HOLD] = 1.0 if filter_hold else 0.0
    params[kernels.M_PADLEN] = min(n - 1, _PADLEN)
    coef_angles = _filter_coef(cfg.lowpass_hz, fs) if filter_angles else _NO_COEF
    coef_hold = _filter_coef(cfg.hold_lowpass_hz, fs) if filter_hold else _NO_COEF
    halves_in = np.array([[_SIGN[c.direction] for c in coarse], [c.t_leave for c in coarse], [c.t_back for c in coarse]])
    out = np.empty(kernels.RESULT_SIZE)
    speed = np.empty(n)
    kernels.measure_core(columns, halves_in, coarse[0].neutral_deg, coef_angles, coef_hold, params, fs, kernels.TWIDDLE_COS,
                         out, speed)
    res = out.tolist()
    halves: list[HalfRep] = []
    for k, c in enumerate(coarse):
        base = 3 + k * kernels.HALF_SIZE
        i_on, i_h0, i_h1, i_ret, i_peak = map(int, res[base : base + 5])
        t_on, t_h0, t_h1, t_ret, t_peak = t[[i_on, i_h0, i_h1, i_ret, i_peak]].tolist()
        values = []
        for p, (p0, p1) in enumerate(((i_on, i_h0 + 1), (i_h1, i_ret + 1))):
            v = res[base + kernels.H_SPARC_OUT + p]
            if v == kernels.SPARC_BY_FFT:
                v = sparc(speed[p0:p1], fs)
            if math.isfinite(v):
                values.append(v)
        halves.append(HalfRep(
            direction=c.direction,
            t_onset=t_on,
            t_end_range=t_h0,
            t_hold_end=t_h1,
            t_return=t_ret,
            t_peak=t_peak,
            peak_deg=res[base + kernels.H_PEAK],
            hold_s=t_h1 - t_h0,
            smoothness_sparc=_mean_short(values) if values else math.nan,
            neutral_deg=res[base + kernels.H_NEUTRAL],
        ))
    t_start, t_end = halves[0].t_onset, halves[-1].t_return
    by_dir = {h.direction: h for h in halves}
    ir, er = by_dir.get(Direction.INTERNAL), by_dir.get(Direction.EXTERNAL)
    comp = _compensation(res[kernels.R_COMP :], halves, drill)
    tempo: dict[str, float] = {}
    for h in halves:
        out_key, hold_key, back_key = _TEMPO_KEYS[h.direction]
        tempo[out_key] = h.out_s
        tempo[hold_key] = h.hold_s
        tempo[back_key] = h.back_s
    if len(halves) == 2:
        tempo["mid_pause_s"] = halves[1].t_onset - halves[0].t_return
    tempo["total_s"] = t_end - t_start
    sparcs = [h.smoothness_sparc for h in halves if math.isfinite(h.smoothness_sparc)]
    smoothness = _mean_short(sparcs) if sparcs else math.nan
    flex_mean = res[kernels.R_FLEX_MEAN]
    lo, hi = drill.hip_flexion_range_deg
    posture_ok = not math.isfinite(flex_mean) or lo <= flex_mean <= hi

    measures = RepMeasures(
        peak_deg={h.direction: h.peak_deg for h in halves},
        hold_s={h.direction: h.hold_s for h in halves},
        move_phase_s=[p for h in halves for p in (h.out_s, h.back_s)],
        smoothness_sparc=smoothness,
        compensation_ratio=comp.worst_ratio,
    )
    components = score_rep(drill, measures)
    return Rep(
        index=index,
        drill=drill.name,
        t_start=t_start,
        t_end=t_end,
        neutral_deg=res[kernels.R_NEUTRAL],
        halves=tuple(halves),
        peak_internal_rotation=ir.peak_deg if ir else None,
        peak_external_rotation=er.peak_deg if er else None,
        hold_internal_s=ir.hold_s if ir else None,
        hold_external_s=er.hold_s if er else None,
        tempo=tempo,
        smoothness=smoothness,
        compensation=comp.flagged,
        compensation_detail=comp,
        hip_flexion_mean_deg=flex_mean,
        posture_ok=posture_ok,
        gap_s=res[kernels.R_GAP_S],
        score=components.total,
        score_components=components,
    )


_NO_COEF = np.zeros(7)
_SIGN = {d: float(d.sign) for d in Direction}
# Enum attribute access is slow on the per-rep path: names and tempo keys looked up once.
_NAME = {d: d.value for d in Direction}
_TEMPO_KEYS = {d: (f"{d.value}_out_s", f"{d.value}_hold_s", f"{d.value}_back_s") for d in Direction}


@functools.lru_cache(maxsize=16)
def _measure_params(cfg: DetectorConfig) -> FloatArray:
    """The parameters of :func:`kernels.measure_core` that depend on the configuration only (the filter
    switches and the pad length are set per window); callers copy it."""
    params = np.zeros(kernels.MEASURE_PARAMS)
    params[kernels.M_PRE], params[kernels.M_ENTER], params[kernels.M_EXIT] = cfg.pre_s, cfg.enter_deg, cfg.exit_deg
    params[kernels.M_MIN_PAUSE], params[kernels.M_HOLD_TOL] = cfg.min_pause_for_neutral_s, cfg.hold_tolerance_deg
    params[kernels.M_HOLD_SPEED], params[kernels.M_ONSET] = cfg.hold_speed_deg_s, cfg.onset_deg
    params[kernels.M_ROT_FRACTION] = cfg.rotating_fraction
    # SPARC as scoring.sparc's defaults (cut-off 10 Hz, threshold 0.05, padding level 4).
    params[kernels.M_FC], params[kernels.M_AMP], params[kernels.M_PAD] = 10.0, 0.05, 4.0
    params[kernels.M_SPARC_MAX_LEN] = _SPARC_DFT_MAX_ROWS
    return params


def _compensation(values: Sequence[float], halves: Sequence[HalfRep], drill: DrillDefinition) -> PelvisCompensation:
    """The compensation verdict from :func:`kernels.measure_core`'s per-axis results (``values``: changes, the half
    each peaked in, whether the axis has any raw sample; in the order of :data:`TRACKED_AXES`)."""
    limits = drill.compensation
    limit = {
        "pelvis_tilt": limits.pelvis_tilt_deg,
        "pelvis_obliquity": limits.pelvis_obliquity_deg,
        "pelvis_rotation": limits.pelvis_rotation_deg,
    }
    k = kernels.N_TRACKED
    change: dict[str, float] = {}
    during: dict[str, str] = {}
    for j, axis in enumerate(TRACKED_AXES):
        if not values[2 * k + j]:
            change[axis] = math.nan
            continue
        change[axis] = values[j]
        half = int(values[k + j])
        during[axis] = _NAME[halves[half].direction] if half >= 0 else ""
    ratios = [change[a] / limit[a] for a in PELVIS_AXES if math.isfinite(change[a]) and limit[a] > 0]
    worst = max(ratios) if ratios else math.nan
    exceeded = tuple(a for a in PELVIS_AXES if math.isfinite(change[a]) and change[a] > limit[a])
    return PelvisCompensation(
        flagged=bool(exceeded), change_deg=change, limit_deg=limit, exceeded=exceeded, worst_ratio=worst, during=during
    )


@dataclass(frozen=True)
class RepDetection:
    """Result of :func:`detect_reps`: counted reps and the attempts that did not count."""

    drill: str
    reps: list[Rep]
    incomplete: list[RepIncomplete]


def collect(events: Iterable[RepEvent], drill: str) -> RepDetection:
    reps: list[Rep] = []
    incomplete: list[RepIncomplete] = []
    for e in events:
        if isinstance(e, RepCompleted):
            reps.append(e.rep)
        else:
            incomplete.append(e)
    return RepDetection(drill=drill, reps=reps, incomplete=incomplete)


def detect_reps(table: AngleTable, drill: DrillDefinition | str, config: DetectorConfig | None = None) -> RepDetection:
    """Batch detection over a whole table: the online detector run over every row, then finished."""
    det = RepDetector(drill, config)
    events = det.update_table(table)
    events.extend(det.finish())
    return collect(events, det.drill.name)
