"""The live runtime: notifications in, angles, reps and events out to storage and browsers.

One asyncio task (the *consumer*) owns all pipeline state::

    source --submit()--> queue --> Ingest --(sensor_id, ImuSamples)--> assignment
        --> OnlinePipeline per stream (athlete/side; live calibration, then angle frames)
        --> RepDetector of the stream's running session --> rep / compensation events
        --> storage (non-blocking writes) and the display decimator --> WebSocket fan-out

* :meth:`Hub.submit` is the single entry point for live BLE and replay alike. It only stamps the
  entry time and enqueues, so a BLE callback never waits for the maths.
* The consumer drains whatever is queued and pushes each notification through :class:`Ingest`;
  released blocks are held by their stream until it is due for display and a block completes a
  new frame, then the stream's pipeline runs once on all of it (one call per sensor): the
  pipeline's cost is mostly per call. After each run the new frame is published and the consumer
  yields, so it is sent before the next stream's run; rep detection and storage follow.
* A stream is one measured hip: the athlete's pelvis sensor plus one thigh sensor. With both thighs
  assigned the athlete has two streams sharing the pelvis sensor.
* A session (drill on a stream) feeds the stream's frames to a :class:`RepDetector`; calibration
  belongs to the stream and carries over from one session to the next.
* Control actions that must keep their order with the data (a replay pass starting over, the end of
  a source) travel through the same queue as the notifications.
* Each stream's frames go out on average at most ``display_rate_hz`` times a second, pushed by the
  first frame completed once the stream is due, so a pushed frame has waited only for its own
  processing (see :data:`MIN_PUSH_GAP_FRACTION`, :meth:`Hub._maybe_push` and
  :class:`~sensorhub.service.broadcast.FrameDecimator`). The latency of a pushed frame starts at
  the notification that completed it (:func:`completed_at`).
* Memory stays bounded in a service that runs for days: pipelines keep no frame history, and only
  the newest :data:`ENDED_SESSIONS_KEPT` ended sessions stay in memory (the store has them all).

Bad input never stops the hub: a block the pipeline rejects is logged and counted, not raised.
Storage, BLE and HTTP are reached only through the interfaces handed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import math
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sensorhub import __version__
from sensorhub.assignments import AssignmentStore
from sensorhub.drills import (
    CATALOG,
    DrillDefinition,
    RepCompleted,
    RepDetector,
    RepEvent,
    RepIncomplete,
    get_drill,
)
from sensorhub.drills.reps import Rep
from sensorhub.errors import ConfigurationError, SensorhubError
from sensorhub.ingest import Ingest, concat_samples
from sensorhub.motion.calibration import CalibrationStep
from sensorhub.motion.pipeline import AngleFrame, OnlinePipeline
from sensorhub.notification import Notification
from sensorhub.samples import ImuSamples
from sensorhub.service import views
from sensorhub.service.athletes import AthleteRegistry
from sensorhub.service.broadcast import (
    Broadcaster,
    FrameDecimator,
    dumps,
    round_or_none,
)
from sensorhub.service.metrics import LiveMetrics
from sensorhub.service.settings import ServiceSettings
from sensorhub.service.sources import (
    SEGMENTS,
    NotificationSource,
    SensorInfo,
    SessionPlan,
)
from sensorhub.service.stages import MessageStages, RunStages, StageTrace
from sensorhub.storage import AngleFrame as StoredFrame
from sensorhub.storage import RepRecord, SensorStatus, SessionRecord, Store

log = logging.getLogger(__name__)

SIDES = ("left", "right")
#: Most queued items the consumer takes in one turn.
MAX_BATCH = 512
#: Display pacing per stream: each push moves the stream's due time one display interval on from
#: the previous due time (credit for at most one interval, after a pause), but at least this
#: fraction of an interval past the push itself. The first frame completed once the stream is due is
#: pushed, so pushes land on the moments frames complete while the long-run rate stays at
#: ``display_rate_hz`` (a memoryless "0.8 interval after the last push" made frames completed every
#: 30 ms, with a little jitter, skip every other push); the floor bounds pipeline runs per second
#: when the hub works off a backlog.
MIN_PUSH_GAP_FRACTION = 0.5
#: A stream whose frames complete on average more than this many display intervals apart is
#: "sparse": a frame completed before its due time is shown at the due time instead of waiting for
#: the next one. Dense simulated sensors average 15-25 ms (jitter can take the mean past one
#: interval); a replay averages ~65 ms.
SPARSE_FRAMES_FACTOR = 1.5
#: Completions of a stream's frames closer than this belong to one burst (several notifications of
#: one connection event) when estimating how often its frames complete.
MIN_COMPLETION_GAP_S = 0.002
#: Frame messages that may go out back to back; on average they stay within
#: ``max_message_rate_hz`` (see :meth:`Hub._message_slot_at`).
MESSAGE_BURST = 2.0
#: Longest time a stream's blocks wait for its next pipeline run (rep detection stays timely).
MAX_HOLD_S = 0.1
#: Pipeline runs of one batch of notifications share one frame message unless they take longer than
#: this (s); then what is ready goes out on the way (see :meth:`Hub._run_ready`).
RUN_BATCH_BUDGET_S = 0.004
#: Longest block handed to the pipeline in one push (samples); real-time runs hold 10-30.
MAX_PIECE_SAMPLES = 32
#: Ended sessions kept in memory (newest first); older ones are answered from the store, where each
#: session was written when it ended. A looped replay ends a session per pass: unbounded, they grew
#: the process by ~70 kB each.
ENDED_SESSIONS_KEPT = 16
#: Freeze the objects alive when a hub starts (``gc.freeze``): a full collection of the service's
#: ~230 000 objects held the event loop for 150-280 ms about every 30 s in the soak (each one
#: delayed every frame message of that moment); after the freeze a full collection only scans what
#: was created since. Costs one ``gc.collect()`` (~0.3 s) at start.
FREEZE_STARTUP_OBJECTS = True
_COLLECTED_BEFORE_FREEZE = False
#: Interpreter thread switch interval while a hub runs (s; Python's default is 5 ms). The storage
#: writer thread formats its batches in Python, about 30 ms a second at 50 sensors in one burst;
#: each time the event loop gives up the GIL (every select and socket send) it waits up to a
#: switch interval to get it back, so frames sent during a burst queued for 5 ms per step.
SWITCH_INTERVAL_S = 0.0005


def split_at_gaps(block: ImuSamples) -> list[ImuSamples]:
    """``block`` cut before every sample after lost data (``gap_before``) and into pieces of at
    most :data:`MAX_PIECE_SAMPLES`.

    A block assembled from several notifications (ingest releasing packets held behind a gap, or the
    hub coalescing a stream's blocks) can hold a gap inside. When this cut was added the pipeline took
    the samples inside one block as contiguous (a 5 %-loss recording replayed as fast as possible lost
    5 of 8 reps); since then ``OnlinePipeline`` also cuts a block where its sample times skip
    (docs/reliability.md, M4). This cut on ingest's own flags was kept: it is what the tests and
    the live/replay equality were measured with, and dropping it was not re-checked.
    Long blocks only occur when the hub is behind (or a replay runs as fast as possible); cutting
    them keeps the pipeline's input like real-time input, whose results do not depend on timing.
    """
    n = len(block)
    gap = block.gap_before if block.gap_before is not None else np.zeros(n, dtype=bool)
    cuts = set((np.flatnonzero(gap[1:]) + 1).tolist()) | set(range(MAX_PIECE_SAMPLES, n, MAX_PIECE_SAMPLES))
    if not cuts:
        return [block]
    bounds = [0, *sorted(cuts), n]
    mag = block.mag_uT
    return [
        ImuSamples(block.t_s[a:b], block.acc_m_s2[a:b], block.gyr_rad_s[a:b],
                   None if mag is None else mag[a:b], gap[a:b])
        for a, b in itertools.pairwise(bounds)
    ]


def completed_at(held: dict[str, list[tuple[ImuSamples, float]]], t_frame_s: float) -> float:
    """Hub entry time of the notification that completed the frame at ``t_frame_s``.

    A frame exists once both sensors have samples at or past its time; per segment the first held
    block reaching ``t_frame_s`` is the one it needed, and the later of those two notifications is
    the one the frame waited for. A segment whose needed block was handed over in an earlier run
    arrived earlier and does not count. This is where the latency of a displayed frame starts
    (``sensorhub_pipeline_latency_seconds``); should no held block reach the frame, the earliest
    held one is taken, which can only overstate the latency.
    """
    needed = []
    earliest = math.inf
    for parts in held.values():
        for block, t_enter in parts:
            earliest = min(earliest, t_enter)
            if len(block) and block.t_s[-1] >= t_frame_s:
                needed.append(t_enter)
                break
    return max(needed) if needed else earliest


class HubError(SensorhubError):
    """A request the runtime cannot carry out in its current state."""


class NotFoundError(HubError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConflictError(HubError):
    pass


@dataclass
class Assignment:
    """Which body segment of which athlete a sensor is strapped to."""

    athlete: str
    segment: str
    side: str | None = None

    def __post_init__(self) -> None:
        if self.segment not in SEGMENTS:
            raise ConfigurationError(f"segment is {self.segment!r}, expected one of {SEGMENTS}")
        if self.segment == "thigh" and self.side not in SIDES:
            raise ConfigurationError(f"a thigh sensor needs side 'left' or 'right', got {self.side!r}")
        if self.segment == "pelvis":
            self.side = None


@dataclass
class SensorState:
    sensor_id: str
    info: SensorInfo | None = None
    assignment: Assignment | None = None
    connected: bool = False
    lost: bool = False
    lost_at: float | None = None
    battery_pct: float | None = None
    notifications_counter: Any = None
    """This sensor's child of the notifications counter (looked up once, not per notification)."""
    samples_counter: Any = None


@dataclass(eq=False)
class LiveSession:
    """One drill on one stream, with its rep detector and results so far."""

    id: str
    athlete: str
    side: str
    drill: DrillDefinition
    started: float
    detector: RepDetector | None
    """None once the session has ended: the hub keeps ended sessions, not their detectors' sample buffers."""
    ended: float | None = None
    reps: list[Rep] = field(default_factory=list)
    incomplete: list[RepIncomplete] = field(default_factory=list)
    max_ir: float | None = None
    max_er: float | None = None
    compensating: bool = False

    @property
    def key(self) -> str:
        return f"{self.athlete}/{self.side}"

    @property
    def active(self) -> bool:
        return self.ended is None

    def summary(self) -> dict[str, Any]:
        return views.session_summary(self.reps, self.drill, self.side, self.incomplete)

    def record(self) -> SessionRecord:
        return SessionRecord(self.id, self.athlete, self.drill.name, self.side, self.started, self.ended, self.summary())

    def to_json(self, *, summary: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "athlete": self.athlete, "side": self.side, "key": self.key, "drill": self.drill.name,
            "started": self.started, "ended": self.ended, "active": self.active, "reps": len(self.reps),
        }
        if summary:
            out["summary"] = self.summary()
        return out


@dataclass(eq=False)
class StreamRuntime:
    """One measured hip: its pipeline (calibration, angles) and its current session."""

    athlete: str
    side: str
    pipeline: OnlinePipeline
    session: LiveSession | None = None
    reported_steps: set[str] = field(default_factory=set)
    calibration_reported: bool = False
    frames: int = 0
    last_frame: AngleFrame | None = None
    frames_counter: Any = None
    held: dict[str, list[tuple[ImuSamples, float]]] = field(default_factory=dict)
    """Blocks waiting for the stream's next pipeline run, per segment, each with the hub entry time
    (``perf_counter``) of the notification that released it."""
    held_since: float = math.inf
    unrecorded: list[tuple[LiveSession | None, list[AngleFrame]]] = field(default_factory=list)
    """Frames shown but not yet through rep detection and storage, with the session they belong to."""
    newest_t_s: dict[str, float] = field(default_factory=dict)
    """Per segment, the newest sample time handed to this stream (held or run)."""
    last_completion_s: float = -math.inf
    """When a block last completed a new frame (``perf_counter``)."""
    completion_interval_s: float = math.nan
    """Moving mean of the time between two completed frames (s)."""
    decided_s: float = math.nan
    """When the hub decided to run the held blocks (now, or at the due time), ``perf_counter``;
    NaN until then (for :class:`~sensorhub.service.stages.StageTrace`)."""
    decided_reason: str = ""

    def hold(self, segment: str, block: ImuSamples, entered_s: float) -> None:
        if not self.held:
            self.held_since = time.perf_counter()
        self.held.setdefault(segment, []).append((block, entered_s))
        if len(block):
            self.newest_t_s[segment] = max(self.newest_t_s.get(segment, -math.inf), float(block.t_s[-1]))

    @property
    def frames_end_s(self) -> float:
        """Up to where frames can be computed: a frame needs both sensors' samples at or past its time."""
        return min(self.newest_t_s.values()) if len(self.newest_t_s) == 2 else -math.inf

    def makes_new_frame(self, end_before_s: float, frame_interval_s: float) -> bool:
        """Whether the blocks held since :attr:`frames_end_s` was ``end_before_s`` complete a new frame.

        Only a block of the segment that is behind moves the end; one of the segment ahead would
        only re-run the pipeline to show a frame that was complete earlier (and has waited since).
        """
        end_s = self.frames_end_s
        if not end_s > end_before_s:
            return False
        if self.last_frame is None:
            return True
        # Frames lie on the pipeline's grid (the last frame's time plus whole frame intervals):
        # the newest grid point reachable now must be new and must not have been reachable before.
        t0_s = self.last_frame.t_s
        k_now = math.floor((end_s - t0_s) / frame_interval_s + 1e-9)
        k_before = math.floor((end_before_s - t0_s) / frame_interval_s + 1e-9) if math.isfinite(end_before_s) else 0
        return k_now >= 1 and k_now > k_before

    def completed(self, now_s: float) -> float:
        """Note that a block just completed a new frame; return the mean time between completions."""
        dt_s = now_s - self.last_completion_s
        if dt_s < MIN_COMPLETION_GAP_S:
            return self.completion_interval_s  # the same connection event (notifications come in pairs)
        if math.isfinite(dt_s):
            self.completion_interval_s = dt_s if math.isnan(self.completion_interval_s) else (
                0.8 * self.completion_interval_s + 0.2 * dt_s)
        self.last_completion_s = now_s
        return self.completion_interval_s

    def take_held(self) -> dict[str, list[tuple[ImuSamples, float]]]:
        held, self.held = self.held, {}
        self.held_since = math.inf
        return held

    @property
    def key(self) -> str:
        return f"{self.athlete}/{self.side}"

    @property
    def calibrated(self) -> bool:
        return self.pipeline.state == "streaming"


@dataclass
class _Control:
    """An action that must run in order with the queued notifications."""

    run: Callable[[], None]


class Hub:
    """The runtime (see the module docstring). Create, then ``await start()``; ``await stop()`` at the end."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        store: Store | None,
        metrics: LiveMetrics,
        broadcaster: Broadcaster,
        athletes: AthleteRegistry,
        source: NotificationSource | None = None,
        assignments: AssignmentStore | None = None,
    ) -> None:
        self.settings = settings
        self.assignment_store = assignments
        """Where REST assignment changes are persisted (live BLE; None for replay)."""
        self.store = store
        self.metrics = metrics
        self.broadcaster = broadcaster
        self.athletes = athletes
        self.source = source
        self.mode = source.name if source is not None else "idle"
        self.ingest = Ingest()
        self.sensors: dict[str, SensorState] = {}
        self.streams: dict[str, StreamRuntime] = {}
        self.sessions: dict[str, LiveSession] = {}
        self.recent_events: deque[dict[str, Any]] = deque(maxlen=500)
        self.source_done = asyncio.Event()
        self.started_at = time.monotonic()
        self._queue: asyncio.Queue[tuple[Notification, float] | _Control] = asyncio.Queue()
        self._last_seen: dict[str, float] = {}
        self._latest_t_host_s = -math.inf
        self._unix_origin_s: float | None = None
        self._decimator = FrameDecimator()
        self._push_interval_s = 1.0 / settings.display_rate_hz
        self._message_interval_s = 1.0 / settings.max_message_rate_hz
        self._last_push: dict[str, float] = {}
        self._due_at: dict[str, float] = {}
        """Per stream, when its next frame may be pushed (see :data:`MIN_PUSH_GAP_FRACTION`)."""
        self._last_message = -math.inf
        self._message_tokens = MESSAGE_BURST
        """Message slots left right after the last message (see :meth:`_message_slot_at`)."""
        self._fresh: set[str] = set()
        self._push_timer: asyncio.TimerHandle | None = None
        self._push_timer_at = math.inf
        """When the armed push timer fires (``perf_counter``); uvloop's handles cannot say."""
        self._waiting: set[str] = set()
        """Streams holding a frame completed before they were due, to run at ``_run_at``."""
        self._run_at: dict[str, float] = {}
        self._due_timer: asyncio.TimerHandle | None = None
        self._due_timer_at = math.inf
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._switch_interval_before_s = sys.getswitchinterval()
        self._tasks: list[asyncio.Task[Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._froze_objects = False
        self.stage_trace: StageTrace | None = None
        """Set to cut every latency observation into its stages (a diagnostic; see ``stages.py``)."""
        metrics.attach(self.metrics_snapshot)

    # == lifecycle ================================================================================

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._switch_interval_before_s = sys.getswitchinterval()
        if self._switch_interval_before_s > SWITCH_INTERVAL_S:
            sys.setswitchinterval(SWITCH_INTERVAL_S)
        self._froze_objects = FREEZE_STARTUP_OBJECTS
        if self._froze_objects:
            # Everything alive now (modules, the app, the hub) lives as long as the process: out of
            # the cyclic collector's sight, its full collections stop costing 150-280 ms each.
            # Garbage is collected first, once per process (a frozen cycle is never freed).
            global _COLLECTED_BEFORE_FREEZE
            if not _COLLECTED_BEFORE_FREEZE:
                gc.collect()
                _COLLECTED_BEFORE_FREEZE = True
            gc.freeze()
        self._tasks = [
            asyncio.create_task(self._consume(), name="hub-consumer"),
            asyncio.create_task(self._periodic(self.settings.status_interval_s, self._status_tick), name="hub-status"),
            asyncio.create_task(self._watchdog(0.25), name="hub-watchdog"),
        ]
        if self.source is not None:
            self._tasks.append(asyncio.create_task(self._run_source(self.source), name=f"source-{self.source.name}"))
        for task in self._tasks:
            task.add_done_callback(self._task_ended)
        log.info("hub started (mode %s)", self.mode)

    def trace_stages(self, trace: StageTrace | None) -> None:
        """Cut every latency observation into its stages into ``trace`` (None: stop); a diagnostic."""
        self.stage_trace = trace
        self.broadcaster.on_sent = None if trace is None else (
            lambda out, start, sent, client_id: trace.observe(out.entered_s, out.stages, start, sent, client_id))

    @staticmethod
    def _task_ended(task: asyncio.Task[Any]) -> None:
        """A hub task must only end when stopped: say loudly if one died (its work has stopped)."""
        if not task.cancelled() and task.exception() is not None:
            log.error("hub task %s died; its work has stopped", task.get_name(), exc_info=task.exception())

    async def stop(self) -> None:
        """Cancel the tasks, end running sessions (stored with their summary)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._push_timer is not None:
            self._push_timer.cancel()
        if self._due_timer is not None:
            self._due_timer.cancel()
        for task in list(self._side_tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for session in list(self.sessions.values()):
            if session.active:
                self._end_session(session)
        if sys.getswitchinterval() == SWITCH_INTERVAL_S < self._switch_interval_before_s:
            sys.setswitchinterval(self._switch_interval_before_s)
        if self._froze_objects:
            # Back to normal collection (a process that runs hubs one after another, like the tests,
            # must not keep every stopped hub's cycles).
            gc.unfreeze()
            self._froze_objects = False

    async def _run_source(self, source: NotificationSource) -> None:
        try:
            await source.run(self)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("notification source %s failed", source.name)
            self.source_finished()

    async def _periodic(self, interval_s: float, fn: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                fn()
            except Exception:
                log.exception("hub periodic task %s failed", getattr(fn, "__name__", fn))

    # == HubInput: what sources call =============================================================

    def submit(self, notification: Notification) -> None:
        """Enter one notification (event loop thread). Only stamps and enqueues."""
        t = time.perf_counter()
        self._last_seen[notification.sensor_id] = t
        self._queue.put_nowait((notification, t))

    def submit_threadsafe(self, notification: Notification) -> None:
        """:meth:`submit` from another thread (e.g. a BLE stack calling back on its own thread)."""
        assert self._loop is not None, "hub not started"
        self._loop.call_soon_threadsafe(self.submit, notification)

    def sensor_found(self, info: SensorInfo) -> None:
        state = self._sensor(info.sensor_id)
        state.info = info
        if info.segment is not None and info.athlete is not None and state.assignment is None:
            self.assign_sensor(info.sensor_id, info.athlete, info.segment, info.side, persist=False)

    def sensor_event(self, sensor_id: str, kind: str, **data: Any) -> None:
        state = self._sensor(sensor_id)
        if kind == "connected":
            state.connected = True
            self._last_seen.setdefault(sensor_id, time.perf_counter())
        elif kind == "disconnected":
            # Deliberately stopped (or the source ended): not a lost link.
            state.connected = False
            state.lost = False
        elif kind == "lost":
            self._mark_lost(state, str(data.get("reason", "link lost")))
        elif kind == "back":
            state.connected = True
            self._mark_back(state)
        elif kind == "battery":
            pct = float(data.get("battery_pct", math.nan))
            if state.battery_pct is None or abs(pct - state.battery_pct) >= 1.0:
                self.emit("sensor_battery", self._key_of(sensor_id), sensor_id=sensor_id, battery_pct=round_or_none(pct, 1))
            state.battery_pct = pct
        else:
            log.debug("ignored sensor event %r for %s", kind, sensor_id)

    def plan_session(self, plan: SessionPlan) -> None:
        """Queued: the source's session (re)starts once everything before it is processed."""
        self._queue.put_nowait(_Control(lambda: self._apply_plan(plan)))

    def source_finished(self) -> None:
        self._queue.put_nowait(_Control(self._finish_source))

    # == API operations ==========================================================================

    def assign_sensor(self, sensor_id: str, athlete: str, segment: str, side: str | None = None, *,
                      persist: bool = True) -> SensorState:
        """Strap ``sensor_id`` to ``segment`` (and ``side``) of ``athlete``; recalibrates affected streams."""
        new = Assignment(athlete, segment, side)
        if self.assignment_store is not None and persist:
            self.assignment_store.assign(sensor_id, athlete, segment, new.side)  # AssignmentError: 422
        state = self._sensor(sensor_id)
        old = state.assignment
        state.assignment = new
        affected = {self._stream_key_for(a) for a in (old, new) if a is not None}
        if new.segment == "thigh":
            self._ensure_stream(athlete, new.side or "")
        for stream in self.streams.values():
            uses_it = stream.key in affected or (new.segment == "pelvis" and stream.athlete == athlete) or (
                old is not None and old.segment == "pelvis" and stream.athlete == old.athlete
            )
            # A stream that has seen data under the old strapping must calibrate again.
            if uses_it and (stream.frames or stream.pipeline.state != "calibrating"):
                self._reset_pipeline(stream, f"sensor {sensor_id} reassigned")
        return state

    def unassign_sensor(self, sensor_id: str) -> None:
        state = self.sensors.get(sensor_id)
        if state is None:
            raise NotFoundError(f"no sensor {sensor_id!r}")
        if self.assignment_store is not None:
            self.assignment_store.unassign(sensor_id)
        state.assignment = None

    def start_session(self, athlete: str, side: str, drill: str) -> LiveSession:
        if side not in SIDES:
            raise ConfigurationError(f"side is {side!r}, expected 'left' or 'right'")
        definition = get_drill(drill)
        if athlete not in self.athletes:
            raise NotFoundError(f"no athlete with id {athlete!r}; create it with POST /api/athletes")
        stream = self._ensure_stream(athlete, side)
        if stream.session is not None and stream.session.active:
            raise ConflictError(f"session {stream.session.id} is already running on {stream.key}; stop it first")
        session = LiveSession(uuid.uuid4().hex[:16], athlete, side, definition, time.time(), RepDetector(definition))
        stream.session = session
        self.sessions[session.id] = session
        if self.store is not None:
            self.store.write_session(session.record())
        log.info("session %s started: %s %s %s", session.id, athlete, side, definition.name)
        self.emit("session_started", stream.key, session=session.to_json(summary=False))
        return session

    def stop_session(self, session_id: str) -> LiveSession:
        session = self.sessions.get(session_id)
        if session is None:
            raise NotFoundError(f"no running session {session_id!r}")
        if not session.active:
            raise ConflictError(f"session {session_id} has already ended")
        self._end_session(session)
        return session

    def restart_calibration(self, key: str) -> StreamRuntime:
        stream = self.streams.get(key)
        if stream is None:
            raise NotFoundError(f"no stream {key!r}; known: {sorted(self.streams)}")
        self._reset_pipeline(stream, "calibration restarted on request")
        return stream

    # == consumer ================================================================================

    async def _consume(self) -> None:
        """Take whatever is queued, ingest it, then run the streams it made ready, pushing as they go.

        Ingest is cheap (tens of microseconds per notification), a pipeline run is not: taking the
        queued notifications together lets a stream that fell behind catch up in one run instead of
        one per notification, so a backlog shrinks instead of feeding itself.
        """
        queue = self._queue
        while True:
            batch = [await queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            ready: dict[str, StreamRuntime] = {}
            for item in batch:
                try:
                    if isinstance(item, _Control):
                        # In order with the data: what the items before it made ready runs first.
                        for stream in ready.values():
                            if stream.held:
                                self._run_stream(stream)
                        ready.clear()
                        item.run()
                        continue
                    for stream in self._take_in(*item):
                        ready.setdefault(stream.key, stream)
                except Exception:
                    # Never let one bad item stop the service; its data is lost.
                    self.metrics.processing_errors.inc()
                    log.exception("hub: processing %s failed", "a control action" if isinstance(item, _Control) else "a notification")
            if ready:
                try:
                    await self._run_ready(list(ready.values()))
                except Exception:
                    self.metrics.processing_errors.inc()
                    log.exception("hub: running %d streams failed", len(ready))
            elif self._fresh:
                self._maybe_push()  # frames of runs a control action made first

    async def _run_ready(self, ready: list[StreamRuntime]) -> None:
        """Run the pipelines of ``ready``, then let one message with all their new frames out at once.

        Messages go out at most ``max_message_rate_hz`` times a second, so a message per stream
        made every stream after the first of a batch wait for the next message slot (up to 10 ms)
        and made the clients' sends (one per client per message) run once per stream. The runs of
        a batch are cheap (~0.5 ms each), so they all go first and share one message; only when
        they take longer than :data:`RUN_BATCH_BUDGET_S` is what is ready pushed on the way. A
        message published here is only *sent* when the event loop gets to the clients' sender
        tasks; the hub yields right after publishing, and rep detection (scoring a completed rep
        takes ~1 ms) and storage come after that.
        """
        ran: list[StreamRuntime] = []
        started = time.perf_counter()
        for stream in ready:
            if self.streams.get(stream.key) is not stream or not stream.held:
                continue  # erased or reset while this task yielded
            try:
                self._run_stream(stream, record=False)
            except Exception:
                self.metrics.processing_errors.inc()
                log.exception("hub: pipeline run of %s failed", stream.key)
            ran.append(stream)
            if time.perf_counter() - started >= RUN_BATCH_BUDGET_S and self._maybe_push():
                await asyncio.sleep(0)
                started = time.perf_counter()
        if self._maybe_push():
            await asyncio.sleep(0)
        for stream in ran:
            try:
                self._record_frames(stream)
            except Exception:
                self.metrics.processing_errors.inc()
                log.exception("hub: rep detection or storage of %s failed", stream.key)

    def _take_in(self, note: Notification, t_enter: float) -> list[StreamRuntime]:
        """Ingest one notification; return the streams it made ready to run."""
        sid = note.sensor_id
        if self._unix_origin_s is None:
            self._unix_origin_s = time.time() - note.t_host_s
        self._latest_t_host_s = max(self._latest_t_host_s, note.t_host_s)
        state = self.sensors.get(sid) or self._sensor(sid)
        if not state.connected:
            state.connected = True
        if state.lost:
            self._mark_back(state)
        state.notifications_counter.inc()
        released = self.ingest.push(note)
        if not released:
            return []
        blocks: dict[str, list[ImuSamples]] = {}
        for bsid, block in released:
            blocks.setdefault(bsid, []).append(block)
        return self._process_blocks(blocks, {bsid: [t_enter] * len(parts) for bsid, parts in blocks.items()})

    def _process_blocks(self, blocks: dict[str, list[ImuSamples]], entered: dict[str, list[float]], *,
                        sweep: bool = False, flush_all: bool = False) -> list[StreamRuntime]:
        """Hand released blocks to their streams; return the streams whose pipelines should run now.

        ``entered``: per sensor, the hub entry time of each block's notification.
        """
        touched: dict[str, StreamRuntime] = {}
        end_before_s: dict[str, float] = {}
        for sid, parts in blocks.items():
            state = self.sensors.get(sid) or self._sensor(sid)
            state.samples_counter.inc(sum(len(b) for b in parts))
            if state.assignment is None:
                continue  # counted, not processed: nobody is wearing it yet
            targets = self._targets(state.assignment)
            for block, t_enter in zip(parts, entered[sid], strict=True):
                for stream, segment in targets:
                    if stream.key not in touched:
                        touched[stream.key] = stream
                        end_before_s[stream.key] = stream.frames_end_s
                    stream.hold(segment, block, t_enter)
        now = time.perf_counter()
        frame_interval_s = 1.0 / self.settings.angle_rate_hz
        ready: list[StreamRuntime] = []
        for stream in (self.streams.values() if flush_all or sweep else touched.values()):
            if not stream.held:
                continue
            # Run the pipeline when the stream is due for display and the blocks just taken in
            # complete a new frame (it goes out at once, so it has waited only for its own
            # processing), or when its data has waited long enough; in between, blocks accumulate,
            # which saves whole pipeline runs (the per-block cost is mostly per call, not per
            # sample). A frame completed before the stream was due is not run for when the partner
            # sensor's block arrives: the next completed frame is shown instead, fresh, so pushes
            # settle on the moments frames complete.
            if flush_all or not stream.calibrated or now - stream.held_since >= MAX_HOLD_S:
                ready.append(stream)
                if math.isnan(stream.decided_s):
                    stream.decided_s = now
                    stream.decided_reason = "flush" if flush_all else "calibrating" if not stream.calibrated else "hold"
            elif stream.makes_new_frame(end_before_s.get(stream.key, math.inf), frame_interval_s):
                every_s = stream.completed(now)
                due_at = self._due_at.get(stream.key, -math.inf)
                stream.decided_s = now
                if now >= due_at:
                    stream.decided_reason = "now"
                    ready.append(stream)
                elif not every_s <= SPARSE_FRAMES_FACTOR * self._push_interval_s:
                    # Completed before the stream is due, but its frames are sparse (a replay
                    # sends every ~130 ms, pelvis and thigh often a few ms apart): they complete
                    # less often than the display rate allows on average, so the rate needs no
                    # pacing and the frame is shown at once. Holding it to the due time cost up
                    # to 0.5 display intervals (17 ms) and was the largest part of the soak's tail.
                    stream.decided_reason = "sparse"
                    self._due_at[stream.key] = now
                    ready.append(stream)
                else:
                    # Completed before the stream is due, and frames complete often (sensors
                    # sending every 15-30 ms): the next one is shown instead, fresh. A stream
                    # waiting for its next frame still runs if none comes within MAX_HOLD_S.
                    stream.decided_reason = "due"
                    self._run_at[stream.key] = now + MAX_HOLD_S
                    self._waiting.add(stream.key)
        if self._waiting:
            self._arm_due_timer(now)
        return ready

    def _arm_due_timer(self, now: float) -> None:
        """Run streams holding a completed frame when they become due (see :meth:`_process_blocks`)."""
        if self._loop is None:
            return
        at = min(self._run_at.get(k, now) for k in self._waiting)
        if self._due_timer is not None:
            if self._due_timer_at <= at + 1e-4:
                return
            self._due_timer.cancel()
        self._due_timer_at = at
        self._due_timer = self._loop.call_later(max(at - now, 0.0), self._run_waiting)

    def _run_waiting(self) -> None:
        self._due_timer = None
        now = time.perf_counter()
        due = [k for k in self._waiting if now + 1e-4 >= self._run_at.get(k, -math.inf)]
        self._waiting.difference_update(due)
        ready = [s for k in due if (s := self.streams.get(k)) is not None and s.held]
        if ready:
            task = asyncio.create_task(self._run_ready(ready), name="hub-due-runs")
            self._side_tasks.add(task)
            task.add_done_callback(self._side_tasks.discard)
        if self._waiting:
            self._arm_due_timer(now)

    def _targets(self, a: Assignment) -> list[tuple[StreamRuntime, str]]:
        if a.segment == "pelvis":
            return [(s, "pelvis") for s in self.streams.values() if s.athlete == a.athlete]
        stream = self.streams.get(f"{a.athlete}/{a.side}")
        return [] if stream is None else [(stream, "thigh")]

    def _run_stream(self, stream: StreamRuntime, *, record: bool = True) -> None:
        """Run the stream's pipeline on its held blocks and hand the new frames to the display.

        With ``record=False`` the frames wait in ``stream.unrecorded`` for :meth:`_record_frames`
        (rep detection, storage), so the caller can get the frame out to the browsers first.
        """
        held = stream.take_held()
        self._waiting.discard(stream.key)
        frames: list[AngleFrame] = []
        t_start = time.perf_counter()
        for segment, parts in held.items():
            block = parts[0][0] if len(parts) == 1 else concat_samples([b for b, _ in parts])
            for piece in split_at_gaps(block):
                try:
                    frames += stream.pipeline.push(segment, piece)
                except SensorhubError as exc:
                    self.metrics.processing_errors.inc()
                    log.warning("%s: %s block rejected: %s", stream.key, segment, exc)
        if self.stage_trace is not None:
            decided = stream.decided_s if math.isfinite(stream.decided_s) else t_start
            self.stage_trace.note_run(stream.key, RunStages(decided, t_start, time.perf_counter(),
                                                            stream.decided_reason or "hold"))
        stream.decided_s = math.nan
        if not stream.calibration_reported:
            self._check_calibration(stream)
        if frames:
            self._show_frames(stream, frames, completed_at(held, frames[-1].t_s))
            session = stream.session
            stream.unrecorded.append((session if session is not None and session.active else None, frames))
        if record:
            self._record_frames(stream)

    def _check_calibration(self, stream: StreamRuntime) -> None:
        pipe = stream.pipeline
        lc = pipe.live_calibration
        if lc is not None:
            status = lc.status()
            for v in status.verdicts:
                if v.step not in stream.reported_steps and v.step in ("still1", "swings", "bows", "still2"):
                    stream.reported_steps.add(v.step)
                    self.emit("calibration_step", stream.key, next_step=status.step.value, prompt=status.prompt,
                              **views.verdict_json(v))
            if status.step is CalibrationStep.FAILED:
                stream.calibration_reported = True
                advice = [v.advice for v in status.verdicts if not v.ok and v.advice]
                self.emit("calibration_failed", stream.key, advice=advice)
                return
        if pipe.state == "streaming" and pipe.calibration is not None:
            stream.calibration_reported = True
            q = pipe.calibration.quality
            self.emit("calibration_done", stream.key, ok=q.ok, quality=views.clean(q.to_dict()), advice=q.advice)

    def _show_frames(self, stream: StreamRuntime, frames: list[AngleFrame], t_enter: float) -> None:
        stream.frames += len(frames)
        stream.last_frame = frames[-1]
        if stream.frames_counter is None:
            stream.frames_counter = self.metrics.frames.labels(stream.key)
        stream.frames_counter.inc(len(frames))
        self._decimator.add(stream.key, frames, t_enter)
        self._fresh.add(stream.key)

    def _record_frames(self, stream: StreamRuntime) -> None:
        """Rep detection and storage of the stream's frames not recorded yet, in order.

        Each batch belongs to the session that was running when its frames were made; a session
        stopped since still gets them stored, but its detector has already finished.
        """
        pending, stream.unrecorded = stream.unrecorded, []
        for session, frames in pending:
            if session is None:
                continue
            detector = session.detector
            if detector is not None:
                for f in frames:
                    events = detector.update(
                        f.t_s, f.hip_rotation_deg, hip_flexion=f.hip_flexion_deg, hip_adduction=f.hip_adduction_deg,
                        pelvis_tilt=f.pelvis_tilt_deg, pelvis_obliquity=f.pelvis_obliquity_deg,
                        pelvis_rotation=f.pelvis_rotation_deg,
                    )
                    for ev in events:
                        self._on_rep_event(stream, session, ev)
            if self.store is not None:
                origin = self._unix_origin_s or 0.0
                self.store.write_frames([
                    StoredFrame(origin + f.t_s, session.athlete, session.id, session.side, session.drill.name,
                                f.hip_flexion_deg, f.hip_adduction_deg, f.hip_rotation_deg,
                                f.pelvis_tilt_deg, f.pelvis_obliquity_deg, f.pelvis_rotation_deg)
                    for f in frames
                ])

    def _on_rep_event(self, stream: StreamRuntime, session: LiveSession, ev: RepEvent) -> None:
        if isinstance(ev, RepIncomplete):
            session.incomplete.append(ev)
            self.emit("rep_incomplete", stream.key, session=session.id, **views.incomplete_json(ev))
            return
        if not isinstance(ev, RepCompleted):
            return
        rep = ev.rep
        session.reps.append(rep)
        if rep.peak_internal_rotation is not None and math.isfinite(rep.peak_internal_rotation):
            session.max_ir = max(session.max_ir or 0.0, rep.peak_internal_rotation)
        if rep.peak_external_rotation is not None and math.isfinite(rep.peak_external_rotation):
            session.max_er = max(session.max_er or 0.0, rep.peak_external_rotation)
        session.compensating = rep.compensation
        self.metrics.reps.labels(stream.key).inc()
        body = views.rep_json(rep, self._unix_origin_s)
        self.emit("rep_completed", stream.key, session=session.id, rep=body)
        if rep.compensation:
            d = rep.compensation_detail
            self.emit("compensation", stream.key, session=session.id, rep_index=rep.index,
                      exceeded=list(d.exceeded), change_deg=views.clean(dict(d.change_deg)),
                      limit_deg=views.clean(dict(d.limit_deg)))
        if self.store is not None:
            origin = self._unix_origin_s or 0.0
            self.store.write_reps([RepRecord(
                athlete=session.athlete, session=session.id, side=session.side, drill=session.drill.name,
                index=rep.index - 1, t_start_s=origin + rep.t_start, t_end_s=origin + rep.t_end,
                peak_internal_rotation_deg=abs(rep.peak_internal_rotation) if rep.peak_internal_rotation is not None else math.nan,
                peak_external_rotation_deg=abs(rep.peak_external_rotation) if rep.peak_external_rotation is not None else math.nan,
                arc_deg=abs(rep.arc), compensations=tuple(rep.compensation_detail.exceeded) or (("compensation",) if rep.compensation else ()),
                score=rep.score, score_components=body.get("score_components") or {},
            )])

    # == sessions, streams, sensors ==============================================================

    def _sensor(self, sensor_id: str) -> SensorState:
        state = self.sensors.get(sensor_id)
        if state is None:
            state = self.sensors[sensor_id] = SensorState(sensor_id)
            state.notifications_counter = self.metrics.notifications.labels(sensor_id)
            state.samples_counter = self.metrics.samples.labels(sensor_id)
        return state

    @staticmethod
    def _stream_key_for(a: Assignment) -> str | None:
        return f"{a.athlete}/{a.side}" if a.segment == "thigh" else None

    def _key_of(self, sensor_id: str) -> str | None:
        state = self.sensors.get(sensor_id)
        if state is None or state.assignment is None:
            return None
        return self._stream_key_for(state.assignment) or next(
            (s.key for s in self.streams.values() if s.athlete == state.assignment.athlete), None)

    def _new_pipeline(self, side: str) -> OnlinePipeline:
        # The hub forwards frames as they come and never reads OnlinePipeline.series(): keeping no
        # frame history saves about 6 kB/s per stream (20 MB per stream-hour).
        return OnlinePipeline(side, rate_hz=self.settings.angle_rate_hz, history_s=0.0)

    def _ensure_stream(self, athlete: str, side: str) -> StreamRuntime:
        key = f"{athlete}/{side}"
        stream = self.streams.get(key)
        if stream is None:
            stream = self.streams[key] = StreamRuntime(athlete, side, self._new_pipeline(side))
            log.info("stream %s created", key)
        return stream

    def _reset_pipeline(self, stream: StreamRuntime, why: str) -> None:
        log.info("%s: new calibration (%s)", stream.key, why)
        stream.pipeline = self._new_pipeline(stream.side)
        stream.take_held()
        stream.decided_s = math.nan
        stream.reported_steps = set()
        stream.calibration_reported = False
        stream.last_frame = None

    def _end_session(self, session: LiveSession) -> None:
        stream = self.streams.get(session.key)
        if stream is not None and stream.session is session:
            # The session's last samples count: frames not recorded yet, then what is held.
            self._record_frames(stream)
            if stream.held:
                self._run_stream(stream)
        if session.detector is not None:
            for ev in session.detector.finish():
                if stream is not None:
                    self._on_rep_event(stream, session, ev)
        # Released: about 120 kB of samples per ended session would otherwise stay for the process's life.
        session.detector = None
        session.ended = time.time()
        if self.store is not None:
            self.store.write_session(session.record())
        log.info("session %s stopped: %d reps", session.id, len(session.reps))
        self.emit("session_stopped", session.key, session=session.to_json())
        self._forget_ended_sessions()

    def _forget_ended_sessions(self) -> None:
        """Keep the newest :data:`ENDED_SESSIONS_KEPT` ended sessions; the store has the others.

        A stream's last session stays reachable through the stream (its rep count and maxima are
        shown until the next session starts). Without a store, forgotten sessions are gone.
        """
        ended = [s for s in self.sessions.values() if not s.active]
        for old in sorted(ended, key=lambda s: s.ended or 0.0)[:max(0, len(ended) - ENDED_SESSIONS_KEPT)]:
            del self.sessions[old.id]
            log.debug("session %s ended at %s: no longer kept in memory", old.id, old.ended)

    def _apply_plan(self, plan: SessionPlan) -> None:
        """A replay pass begins: (re)start its session on a fresh calibration."""
        self.athletes.ensure(plan.athlete_id, plan.athlete_name)
        if plan.side not in SIDES:
            log.warning("replay: recording names no side; no session started")
            return
        stream = self._ensure_stream(plan.athlete_id, plan.side)
        if stream.session is not None and stream.session.active:
            self._end_session(stream.session)
        if stream.frames or stream.pipeline.state != "calibrating":
            self._reset_pipeline(stream, "replay starts over")
        if plan.drill is None or plan.drill not in CATALOG:
            log.warning("replay: drill %r is not in the catalog; no session started", plan.drill)
            return
        self.start_session(plan.athlete_id, plan.side, plan.drill)

    def _finish_source(self) -> None:
        """The source ended: release what ingest holds, end sessions, sensors disconnected."""
        for stream in self._process_blocks(*self._flush_ingest(), flush_all=True):
            self._run_stream(stream)
        for session in list(self.sessions.values()):
            if session.active:
                self._end_session(session)
        for state in self.sensors.values():
            state.connected = False
            state.lost = False
        self.source_done.set()
        log.info("source %s finished", self.mode)

    def _flush_ingest(self) -> tuple[dict[str, list[ImuSamples]], dict[str, list[float]]]:
        blocks: dict[str, list[ImuSamples]] = {}
        now = time.perf_counter()
        for sid, block in self.ingest.flush():
            blocks.setdefault(sid, []).append(block)
        return blocks, {sid: [now] * len(parts) for sid, parts in blocks.items()}

    def _mark_lost(self, state: SensorState, reason: str) -> None:
        if state.lost:
            return
        state.lost = True
        state.lost_at = time.perf_counter()
        seen = self._last_seen.get(state.sensor_id)
        silent = None if seen is None else round(state.lost_at - seen, 3)
        segment = state.assignment.segment if state.assignment else None
        log.warning("sensor %s lost (%s)", state.sensor_id, reason)
        self.emit("sensor_lost", self._key_of(state.sensor_id), sensor_id=state.sensor_id, segment=segment,
                  silent_s=silent, reason=reason)

    def _mark_back(self, state: SensorState) -> None:
        if not state.lost:
            return
        state.lost = False
        lost_s = None if state.lost_at is None else round(time.perf_counter() - state.lost_at, 3)
        segment = state.assignment.segment if state.assignment else None
        log.info("sensor %s back after %s s", state.sensor_id, lost_s)
        self.emit("sensor_back", self._key_of(state.sensor_id), sensor_id=state.sensor_id, segment=segment, lost_s=lost_s)

    # == output ==================================================================================

    def emit(self, event: str, key: str | None, **data: Any) -> None:
        """Publish one event to every client (and keep it in ``recent_events``)."""
        message = {"type": "event", "event": event, "t": time.time(), "key": key, **data}
        self.recent_events.append(message)
        self.broadcaster.publish(message)

    def _maybe_push(self) -> bool:
        """Push the streams that just got a new frame and are due; arm the timer for the others.

        A stream is pushed by the first frame completed once it is due (pacing:
        :data:`MIN_PUSH_GAP_FRACTION`), so what it shows has waited only for its own processing,
        and pushes average at most ``display_rate_hz``. Should no new frame come for two
        intervals, the timer pushes what is
        pending. Messages (each carrying every stream pushed at that moment) go out at most
        ``max_message_rate_hz`` times a second. True when a message was published.
        """
        if not self._fresh:
            return False
        now = time.perf_counter()
        pushed = now >= self._message_slot_at() and self._push_due(now)
        self._arm_timer(now)
        return pushed

    def _push_due(self, now: float) -> bool:
        """One message with every fresh stream that is due and every stale one (True if published)."""
        stale_after = 2.0 * self._push_interval_s - 1e-3
        keys = [k for k in self._decimator.keys()  # noqa: SIM118 - FrameDecimator.keys(), not a dict
                if ((now >= self._due_at.get(k, -math.inf)) if k in self._fresh
                    else now - self._last_push.get(k, -math.inf) >= stale_after)]
        # A fresh frame that is not due yet is no longer fresh when its stream becomes due.
        self._fresh.clear()
        return bool(keys) and self._push_frames(keys, now)

    def _arm_timer(self, now: float) -> None:
        """Make sure a push happens when the next message may go out (fresh frames) or a pending
        frame goes stale; an armed timer is moved earlier when a fresh frame needs that."""
        if self._loop is None:
            return
        pending = self._decimator.keys()
        if not pending:
            return
        at = min(self._last_push.get(k, -math.inf) for k in pending) + 2.0 * self._push_interval_s
        slot_at = self._message_slot_at()
        if self._fresh:
            at = min(at, slot_at)
        at = max(at, slot_at)
        timer = self._push_timer
        if timer is not None:
            if self._push_timer_at <= at + 1e-4:
                return
            timer.cancel()
        self._push_timer_at = at
        self._push_timer = self._loop.call_later(max(at - now, 0.0), self._timer_push)

    def _timer_push(self) -> None:
        self._push_timer = None
        now = time.perf_counter()
        if self._decimator and now >= self._message_slot_at():
            self._push_due(now)
        self._arm_timer(now)

    def _message_slot_at(self) -> float:
        """When the next frame message may go out (``perf_counter``).

        A token bucket: messages average at most ``max_message_rate_hz`` and up to
        :data:`MESSAGE_BURST` may go out back to back. With a fixed gap of 1/rate between any two
        messages, a frame completed a few ms after another stream's message waited for the rest of
        the gap (up to 10 ms), a large part of the soak's tail.
        """
        return self._last_message + max(0.0, 1.0 - self._message_tokens) * self._message_interval_s

    def _take_message_slot(self, now: float) -> None:
        refill = (now - self._last_message) / self._message_interval_s
        self._message_tokens = min(MESSAGE_BURST, self._message_tokens + refill) - 1.0
        self._last_message = now

    def _push_frames(self, keys: list[str], now: float) -> bool:
        streams: list[dict[str, Any]] = []
        entered: list[float] = []
        for key, (f, lo, hi, n, t_enter) in self._decimator.take(keys).items():
            self._last_push[key] = now
            interval_s = self._push_interval_s
            # A push before the due time (a stale frame, a held-too-long run) must not move the
            # schedule further ahead: the due time never runs more than an interval past now.
            base_s = max(min(self._due_at.get(key, -math.inf), now), now - interval_s)
            self._due_at[key] = max(base_s + interval_s, now + MIN_PUSH_GAP_FRACTION * interval_s)
            stream = self.streams.get(key)
            if stream is None:
                continue
            session = stream.session
            streams.append({
                "key": key, "athlete": stream.athlete, "side": stream.side,
                "session": session.id if session else None,
                "t_s": round(f.t_s, 4),
                "hip_rotation": round_or_none(f.hip_rotation_deg),
                "hip_rotation_min": round_or_none(lo), "hip_rotation_max": round_or_none(hi),
                "hip_flexion": round_or_none(f.hip_flexion_deg), "hip_adduction": round_or_none(f.hip_adduction_deg),
                "pelvis_tilt": round_or_none(f.pelvis_tilt_deg), "pelvis_obliquity": round_or_none(f.pelvis_obliquity_deg),
                "pelvis_rotation": round_or_none(f.pelvis_rotation_deg),
                "session_max_ir": round_or_none(session.max_ir) if session else None,
                "session_max_er": round_or_none(session.max_er) if session else None,
                "reps": len(session.reps) if session else 0,
                "compensating": bool(session and session.compensating),
                "calibrated": stream.calibrated, "gap": f.gap, "n": n,
            })
            entered.append(t_enter)
        if not streams:
            return False
        self._take_message_slot(now)
        self.metrics.frame_pushes.inc()
        text = dumps({"type": "frame", "t": time.time(), "streams": streams})
        trace = self.stage_trace
        if trace is None:
            self.broadcaster.publish(text, entered)
        else:
            runs = tuple(trace.take(s["key"]) for s in streams)
            self.broadcaster.publish(text, entered, MessageStages(runs, time.perf_counter()))
        return True

    def _status_tick(self) -> None:
        self.metrics.clients.set(len(self.broadcaster))
        sensors = self.sensors_json()
        if self.store is not None and sensors:
            now = time.time()
            self.store.write_status([
                SensorStatus(s["sensor_id"], s["battery_pct"] if s["battery_pct"] is not None else math.nan,
                             s["loss_fraction"] or 0.0, s["rate_hz"] or 0.0, bool(s["connected"] and not s["lost"]),
                             now, s["athlete"] or "")
                for s in sensors
            ])
        if len(self.broadcaster):
            self.broadcaster.publish({"type": "status", **self.status_json(sensors)})

    async def _watchdog(self, interval_s: float) -> None:
        """Every ``interval_s``: lost sensors, overdue reordered packets, blocks held too long."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                ready = self._watchdog_tick()
            except Exception:
                log.exception("hub watchdog failed")
                continue
            await self._run_ready(ready)
            self._maybe_push()

    def _watchdog_tick(self) -> list[StreamRuntime]:
        """Mark silent sensors lost; return the streams whose held blocks must run now."""
        now = time.perf_counter()
        limit = self.settings.sensor_lost_after_s
        for state in self.sensors.values():
            if state.connected and not state.lost:
                seen = self._last_seen.get(state.sensor_id)
                if seen is not None and now - seen > limit:
                    self._mark_lost(state, f"no data for {now - seen:.1f} s")
        blocks: dict[str, list[ImuSamples]] = {}
        if math.isfinite(self._latest_t_host_s):
            # Packets held for reordering behind a gap are released once they are overdue.
            for sid, block in self.ingest.poll(self._latest_t_host_s):
                blocks.setdefault(sid, []).append(block)
        # Blocks held too long (their partner sensor went quiet) run now.
        return self._process_blocks(blocks, {sid: [now] * len(parts) for sid, parts in blocks.items()}, sweep=True)

    # == views ===================================================================================

    def sensors_json(self) -> list[dict[str, Any]]:
        stats = self.ingest.stats()
        now = time.perf_counter()
        out = []
        for sid in sorted(set(self.sensors) | set(stats)):
            state = self.sensors.get(sid) or SensorState(sid)
            st = stats.get(sid)
            a = state.assignment
            seen = self._last_seen.get(sid)
            info = state.info
            out.append(views.clean({
                "sensor_id": sid,
                "name": info.name if info else None,
                "segment": a.segment if a else None,
                "side": a.side if a else None,
                "athlete": a.athlete if a else None,
                "connected": state.connected,
                "lost": state.lost,
                "battery_pct": state.battery_pct,
                "rate_hz": round(st.rate_hz, 3) if st and math.isfinite(st.rate_hz) else None,
                "nominal_rate_hz": st.nominal_rate_hz if st else (info.rate_hz if info else None),
                "loss_fraction": st.loss_fraction if st else None,
                "packets_received": st.packets_received if st else 0,
                "packets_lost": st.packets_lost if st else 0,
                "samples": st.samples if st else 0,
                "last_seen_s_ago": None if seen is None else round(now - seen, 3),
                "has_mag": st.has_mag if st and st.has_mag is not None else (info.has_mag if info else None),
            }))
        return out

    def calibration_json(self, stream: StreamRuntime) -> dict[str, Any]:
        pipe = stream.pipeline
        out: dict[str, Any] = {"key": stream.key, "state": pipe.state, "step": None, "progress": None,
                               "prompt": None, "verdicts": [], "result": None}
        lc = pipe.live_calibration
        if lc is not None:
            # The pipeline's status: the live protocol's, with the swings verdict revised once the drill
            # showed a flipped thigh frame (OnlinePipeline._watch_flipped_thigh).
            out.update(views.live_status_json(pipe.status or lc.status()))
        if pipe.calibration is not None:
            q = pipe.calibration.quality
            out["result"] = {"ok": q.ok, "quality": views.clean(q.to_dict()), "advice": q.advice,
                             "created": pipe.calibration.created}
            if lc is None:
                out["step"] = "done"
                out["progress"] = 1.0
        return out

    def stream_json(self, stream: StreamRuntime) -> dict[str, Any]:
        session = stream.session
        athlete = self.athletes.find(stream.athlete)
        sensors: dict[str, str | None] = {"pelvis": None, "thigh": None}
        for state in self.sensors.values():
            a = state.assignment
            if a is not None and a.athlete == stream.athlete and (a.segment == "pelvis" or a.side == stream.side):
                sensors[a.segment] = state.sensor_id
        drill = session.drill if session else None
        return {
            "key": stream.key, "athlete": stream.athlete, "athlete_name": athlete.name if athlete else stream.athlete,
            "side": stream.side, "session": session.id if session and session.active else None,
            "drill": drill.name if drill and session and session.active else None,
            "state": stream.pipeline.state,
            "calibration": self.calibration_json(stream), "calibrated": stream.calibrated,
            "reps": len(session.reps) if session else 0,
            "session_max_ir": round_or_none(session.max_ir) if session else None,
            "session_max_er": round_or_none(session.max_er) if session else None,
            "sensors": sensors,
            "targets": {"internal": drill.target_internal_deg, "external": drill.target_external_deg} if drill else None,
        }

    def streams_json(self) -> list[dict[str, Any]]:
        return [self.stream_json(s) for s in self.streams.values()]

    def storage_json(self) -> dict[str, Any]:
        if self.store is None:
            return {"state": "down", "backend": "none", "alert": "no store configured"}
        try:
            return views.clean(self.store.health().as_dict())  # type: ignore[no-any-return]
        except Exception as exc:  # noqa: BLE001 - health must never take the status down with it
            return {"state": "down", "backend": "unknown", "last_error": str(exc)}

    def status_json(self, sensors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return {
            "t": time.time(),
            "sensors": sensors if sensors is not None else self.sensors_json(),
            "storage": self.storage_json(),
            "sessions": [s.to_json(summary=False) for s in self.sessions.values() if s.active],
            "streams": self.streams_json(),
            "clients": len(self.broadcaster),
        }

    def hello_json(self) -> dict[str, Any]:
        return {
            "type": "hello", "version": 1, "t": time.time(),
            "server": {"name": "sensorhub", "version": __version__, "display_rate_hz": self.settings.display_rate_hz,
                       "mode": self.mode},
            "drills": [views.drill_json(d) for d in CATALOG.values()],
            "streams": self.streams_json(),
            "status": self.status_json(),
        }

    def metrics_snapshot(self) -> dict[str, Any]:
        return {"sensors": self.sensors_json(), "storage": self.storage_json(), "queue_depth": self.queue_depth}

    @property
    def queue_depth(self) -> int:
        """Notifications and control actions waiting for the consumer."""
        return self._queue.qsize()

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self.started_at

    @property
    def unix_origin_s(self) -> float | None:
        return self._unix_origin_s
