"""Where a displayed frame's latency goes: stage timestamps of the live path (a diagnostic).

The latency the service reports (``sensorhub_pipeline_latency_seconds``) runs from the notification
that completed the frame shown entering the hub to the message carrying it sent on one client's
WebSocket. With a :class:`StageTrace` attached to the hub (``hub.stage_trace``, off by default),
every such observation is also cut into its stages (all ``time.perf_counter`` seconds):

=============  ==================================================================================
``queue``      notification entered (``Hub.submit``) -> the consumer saw the block that completed
               the frame and decided to run the stream now or at its due time
``wait``       decision -> the stream's pipeline run started (the due-time wait of a frame
               completed early, or other streams of the same batch running first)
``run``        the pipeline run (all the stream's held blocks)
``publish``    run end -> the frame message encoded and offered to every client queue (includes
               waiting for the message slot and other streams' runs when a timer pushed it)
``dispatch``   offered -> this client's sender task started the send (event loop scheduling and
               the sends to the clients served before this one)
``send``       this client's ``send_text``
=============  ==================================================================================

Also recorded, for lining the slow observations up against them: the interpreter's garbage
collections (:meth:`StageTrace.watch_gc`) and any intervals a caller notes (e.g. the storage writer
thread's batches, :meth:`StageTrace.note_interval`).

It costs a few microseconds per observation and is meant for benchmarks (``benchmarks/soak.py
--stages``), not for a service that runs for days: it keeps at most ``max_observations`` rows.
"""

from __future__ import annotations

import gc
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

STAGES = ("queue", "wait", "run", "publish", "dispatch", "send")


@dataclass(slots=True)
class RunStages:
    """One pipeline run of a stream (``perf_counter`` seconds) and why it ran."""

    decided_s: float
    start_s: float
    end_s: float
    reason: str
    """``"now"`` (due when completed), ``"sparse"`` (completed before due on a sparse stream, run at
    once), ``"due"`` (completed early, run for the next frame or after the hold limit), ``"hold"``
    (blocks held too long), ``"calibrating"``, ``"flush"``."""


#: Reasons in the order of their code in :attr:`StageTrace.rows`; ``"stale"``: no run behind the frame.
REASONS = ("now", "sparse", "due", "hold", "calibrating", "flush", "stale")


@dataclass(slots=True)
class MessageStages:
    """What a frame message carries for the trace: per stream its run (None: stale push), and when
    it was offered to the clients."""

    runs: tuple[RunStages | None, ...]
    published_s: float


class StageTrace:
    """Collects per-observation stage times (see the module docstring) and summarises them."""

    def __init__(self, max_observations: int = 3_000_000) -> None:
        self._latest: dict[str, RunStages] = {}
        self.rows: deque[tuple[float, ...]] = deque(maxlen=max_observations)
        """Per observation: entered, decided, run start, run end, published, send start, sent,
        reason code (index in :data:`REASONS`), client id."""
        self.intervals: dict[str, list[tuple[float, float]]] = {}
        self._gc_started_s = math.nan

    # -- recording ---------------------------------------------------------------------------------

    def note_run(self, key: str, run: RunStages) -> None:
        """The newest run of stream ``key`` (what its next pushed frame came from)."""
        self._latest[key] = run

    def take(self, key: str) -> RunStages | None:
        """The run behind the frame of ``key`` being pushed now (None: pushed again without a run)."""
        return self._latest.pop(key, None)

    def observe(self, entered_s: tuple[float, ...], message: MessageStages, send_start_s: float, sent_s: float,
                client_id: int) -> None:
        """One message sent to one client: one row per stream it carries."""
        for t_enter, run in zip(entered_s, message.runs, strict=True):
            if run is None:
                self.rows.append((t_enter, math.nan, math.nan, math.nan, message.published_s, send_start_s, sent_s,
                                  float(REASONS.index("stale")), float(client_id)))
            else:
                self.rows.append((t_enter, run.decided_s, run.start_s, run.end_s, message.published_s, send_start_s,
                                  sent_s, float(REASONS.index(run.reason)), float(client_id)))

    def note_interval(self, kind: str, start_s: float, end_s: float) -> None:
        """Something that may hold the interpreter (``perf_counter`` seconds), e.g. a storage batch."""
        self.intervals.setdefault(kind, []).append((start_s, end_s))

    def watch_gc(self) -> None:
        """Record every garbage collection as an interval ``gc<generation>``."""
        if self._gc_callback not in gc.callbacks:
            gc.callbacks.append(self._gc_callback)

    def unwatch_gc(self) -> None:
        if self._gc_callback in gc.callbacks:
            gc.callbacks.remove(self._gc_callback)

    def _gc_callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started_s = time.perf_counter()
        elif math.isfinite(self._gc_started_s):
            self.note_interval(f"gc{info.get('generation', '?')}", self._gc_started_s, time.perf_counter())
            self._gc_started_s = math.nan

    # -- summary -----------------------------------------------------------------------------------

    def array(self, since_s: float = -math.inf) -> np.ndarray:
        """The rows as an (n, 9) array, only observations whose notification entered after ``since_s``."""
        a = np.array(self.rows, dtype=float).reshape(-1, 9)
        return a[a[:, 0] >= since_s]

    def summary(self, *, since_s: float = -math.inf, slow_ms: float = 20.0) -> dict[str, Any]:
        """Percentiles of the total and of each stage, and what the observations above ``slow_ms`` spent
        where (mean per stage, share by run reason, share overlapping each noted interval kind)."""
        a = self.array(since_s)
        out: dict[str, Any] = {"observations": len(a)}
        if not len(a):
            return out
        total_ms = (a[:, 6] - a[:, 0]) * 1e3
        # Stale pushes have no run: their whole wait before the publish counts as "publish".
        bounds = a[:, :7].copy()
        stale = np.isnan(bounds[:, 1])
        bounds[stale, 1:4] = bounds[stale, 0:1]
        stage_ms = np.diff(bounds, axis=1) * 1e3
        slow = total_ms > slow_ms
        out["total_ms"] = _percentiles(total_ms)
        out["slow_ms"] = slow_ms
        out["slow_fraction"] = round(float(slow.mean()), 5)
        out["stages_ms"] = {name: _percentiles(stage_ms[:, i]) for i, name in enumerate(STAGES)}
        out["stage_mean_ms_all"] = {name: round(float(stage_ms[:, i].mean()), 3) for i, name in enumerate(STAGES)}
        if slow.any():
            out["stage_mean_ms_slow"] = {name: round(float(stage_ms[slow, i].mean()), 3) for i, name in enumerate(STAGES)}
            # The stage that took most of each slow observation.
            worst = np.argmax(stage_ms[slow], axis=1)
            out["slow_dominant_stage"] = {name: round(float((worst == i).mean()), 4) for i, name in enumerate(STAGES)}
        codes = a[:, 7].astype(int)
        out["reasons"] = {
            reason: {"fraction": round(float((codes == i).mean()), 4),
                     "slow_fraction": round(float(slow[codes == i].mean()), 4) if (codes == i).any() else None,
                     "p99_ms": round(float(np.percentile(total_ms[codes == i], 99)), 2) if (codes == i).any() else None}
            for i, reason in enumerate(REASONS)}
        if slow.any():
            out["slow_by_reason"] = {reason: round(float((codes[slow] == i).mean()), 4) for i, reason in enumerate(REASONS)}
        overlap: dict[str, Any] = {}
        for kind, spans in sorted(self.intervals.items()):
            iv = np.array(spans, dtype=float).reshape(-1, 2)
            iv = iv[iv[:, 1] >= a[:, 0].min()]
            if not len(iv):
                continue
            durations = (iv[:, 1] - iv[:, 0]) * 1e3
            hit = _overlaps(a[:, 0], a[:, 6], iv)
            overlap[kind] = {
                "count": len(iv), "duration_ms": _percentiles(durations),
                "total_s": round(float(durations.sum()) / 1e3, 3),
                "all_overlapping": round(float(hit.mean()), 4),
                "slow_overlapping": round(float(hit[slow].mean()), 4) if slow.any() else None,
                # How slow the observations are with and without such an interval inside them.
                "slow_fraction_if_overlapping": round(float(slow[hit].mean()), 4) if hit.any() else None,
                "slow_fraction_otherwise": round(float(slow[~hit].mean()), 4) if (~hit).any() else None,
            }
        out["intervals"] = overlap
        return out


def _percentiles(values_ms: np.ndarray) -> dict[str, float]:
    v = values_ms[np.isfinite(values_ms)]
    if not len(v):
        return {}
    p50, p90, p99 = np.percentile(v, [50, 90, 99])
    return {"p50": round(float(p50), 3), "p90": round(float(p90), 3), "p99": round(float(p99), 3),
            "max": round(float(v.max()), 3), "mean": round(float(v.mean()), 3)}


def _overlaps(start_s: np.ndarray, end_s: np.ndarray, intervals: np.ndarray) -> np.ndarray:
    """Per observation [start, end], whether any interval overlaps it (intervals as (m, 2))."""
    iv = intervals[np.argsort(intervals[:, 0])]
    # The last interval starting before the observation's end; with intervals that do not nest
    # (gc pauses, one writer thread's batches) its end decides whether they overlap.
    idx = np.searchsorted(iv[:, 0], end_s, side="right") - 1
    ends = np.maximum.accumulate(iv[:, 1])
    ok = idx >= 0
    hit = np.zeros(len(start_s), dtype=bool)
    hit[ok] = ends[idx[ok]] >= start_s[ok]
    return hit
