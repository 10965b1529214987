"""The hub's display pacing decisions and its bounded memory.

* :func:`~sensorhub.service.hub.completed_at` and :meth:`StreamRuntime.makes_new_frame` on
  hand-built blocks: where a displayed frame's latency starts, and which arriving block completes
  a new frame (the one of the sensor that is behind).
* Ended sessions: only the newest :data:`~sensorhub.service.hub.ENDED_SESSIONS_KEPT` stay in
  memory, the others are answered from the store with the summary they ended with.
* A looped replay (a session per pass, as ``sensorhub serve --replay F --loop`` runs for days): the
  hub's sessions, streams and recent events stay bounded, and pipelines keep no frame history.
  Counts only; timings are in ``benchmarks/soak.py``.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from sensorhub.motion.pipeline import AngleFrame, OnlinePipeline
from sensorhub.samples import ImuSamples
from sensorhub.service import ServiceSettings, create_app
from sensorhub.service import hub as hub_module
from sensorhub.service.athletes import AthleteRegistry
from sensorhub.service.broadcast import Broadcaster
from sensorhub.service.hub import ENDED_SESSIONS_KEPT, Hub, StreamRuntime, completed_at
from sensorhub.service.metrics import LiveMetrics
from sensorhub.service.sources import ReplayNotificationSource
from sensorhub.storage import StorageSettings

REPLAY = Path(__file__).resolve().parent.parent / "replay_data"


def _block(t0_s: float, n: int, rate_hz: float = 100.0) -> ImuSamples:
    t = t0_s + np.arange(n) / rate_hz
    return ImuSamples(t, np.zeros((n, 3)), np.zeros((n, 3)), None, np.zeros(n, dtype=bool))


def _frame(t_s: float) -> AngleFrame:
    return AngleFrame(t_s, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False)


# -- where latency starts, and which block completes a frame ----------------------------------------


def test_completed_at_is_the_later_of_the_two_blocks_the_frame_needed() -> None:
    # Pelvis blocks entered at 1.0 (samples to 0.12) and 2.0 (to 0.15); thigh at 1.5 (to 0.13).
    held = {"pelvis": [(_block(0.10, 3), 1.0), (_block(0.13, 3), 2.0)], "thigh": [(_block(0.11, 3), 1.5)]}
    # The frame at 0.12 needed the first pelvis block and the thigh block: the thigh came later.
    assert completed_at(held, 0.12) == 1.5
    # At 0.13 the pelvis needed its second block (the first ends at 0.12), entered at 2.0.
    assert completed_at(held, 0.13) == 2.0
    # A segment whose needed block went to the pipeline in an earlier run does not count.
    assert completed_at({"thigh": [(_block(0.20, 3), 4.0)], "pelvis": [(_block(0.30, 2), 5.0)]}, 0.21) == 5.0
    # No held block reaches the frame: the earliest entry, which can only overstate the latency.
    assert completed_at({"pelvis": [(_block(0.0, 2), 7.0)], "thigh": [(_block(0.0, 2), 6.0)]}, 0.5) == 6.0


def test_only_the_block_of_the_sensor_behind_makes_a_new_frame() -> None:
    stream = StreamRuntime("a", "right", OnlinePipeline("right", history_s=0.0))
    dt = 0.01
    stream.hold("pelvis", _block(0.00, 3), 1.0)  # pelvis to 0.02
    assert stream.frames_end_s == -math.inf  # no thigh yet: no frame possible
    end0 = stream.frames_end_s
    stream.hold("thigh", _block(0.00, 2), 1.1)  # thigh to 0.01
    assert stream.frames_end_s == pytest.approx(0.01)
    assert stream.makes_new_frame(end0, dt)  # no frame shown yet: any end is new
    stream.last_frame = _frame(0.01)
    # The pelvis (ahead, at 0.02) sends more: frames still end at the thigh's 0.01.
    end1 = stream.frames_end_s
    stream.hold("pelvis", _block(0.03, 3), 1.2)
    assert stream.frames_end_s == pytest.approx(0.01) and not stream.makes_new_frame(end1, dt)
    # The thigh (behind) reaches 0.035: a frame at 0.02 and 0.03 become possible.
    end2 = stream.frames_end_s
    stream.hold("thigh", _block(0.015, 3), 1.3)
    assert stream.frames_end_s == pytest.approx(0.035) and stream.makes_new_frame(end2, dt)
    # Moving the end within one frame interval (0.035 -> 0.0375) completes no grid point.
    stream.last_frame = _frame(0.03)
    end3 = stream.frames_end_s
    stream.hold("thigh", _block(0.0375, 1), 1.4)
    assert not stream.makes_new_frame(end3, dt)


# -- ended sessions ----------------------------------------------------------------------------------


def test_only_the_newest_ended_sessions_stay_in_memory_the_store_answers_for_the_rest(tmp_path: Path) -> None:
    settings = ServiceSettings(ble=False, storage=StorageSettings(data_dir=tmp_path))
    runs = ENDED_SESSIONS_KEPT + 5
    with TestClient(create_app(settings)) as api:
        hub: Hub = api.app.state.hub  # type: ignore[attr-defined]
        assert api.post("/api/athletes", json={"id": "ana", "name": "Ana"}).status_code == 201
        ids = []
        for _ in range(runs):
            session = api.post("/api/sessions", json={"athlete": "ana", "side": "left", "drill": "seated_rotation"}).json()
            assert api.post(f"/api/sessions/{session['id']}/stop").status_code == 200
            ids.append(session["id"])
        running = api.post("/api/sessions", json={"athlete": "ana", "side": "left", "drill": "seated_rotation"}).json()
        # The newest ended ones and the running one are in memory; the oldest five are not.
        assert set(hub.sessions) == {*ids[-ENDED_SESSIONS_KEPT:], running["id"]}
        assert hub.store is not None and hub.store.flush(10.0)
        oldest = api.get(f"/api/sessions/{ids[0]}")
        assert oldest.status_code == 200
        body = oldest.json()
        assert body["id"] == ids[0] and body["active"] is False and body["athlete"] == "ana"
        assert api.get(f"/api/sessions/{ids[0]}/reps").json() == []
        listed = [s["id"] for s in api.get("/api/sessions", params={"athlete": "ana"}).json()]
        assert sorted(listed) == sorted([*ids, running["id"]])  # every session, from memory or the store


# -- a looped replay ---------------------------------------------------------------------------------


def test_looped_replay_keeps_sessions_streams_and_pipelines_bounded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(hub_module, "ENDED_SESSIONS_KEPT", 2)
    passes = 5
    source = ReplayNotificationSource(REPLAY / "standing_left_6axis.shr", speed=None, loop=True, loop_gap_s=0.0)

    async def scenario() -> Hub:
        settings = ServiceSettings(ble=False, storage=StorageSettings(data_dir=tmp_path))
        hub = Hub(settings, store=None, metrics=LiveMetrics(), broadcaster=Broadcaster(), athletes=AthleteRegistry(None),
                  source=source)
        await hub.start()
        while source.passes < passes:
            await asyncio.sleep(0.05)
        await hub.stop()
        return hub

    hub = asyncio.run(asyncio.wait_for(scenario(), 120.0))
    # One session per pass was started; at most the newest two ended ones and the current one stay.
    assert len(hub.sessions) <= 3
    assert len(hub.streams) == 1
    (stream,) = hub.streams.values()
    assert stream.frames > 0  # (a new pass may have just begun: its calibration runs again)
    assert len(stream.pipeline.series()) == 0  # history_s=0: the hub keeps no frame history
    assert stream.unrecorded == [] and not stream.held
    # Every complete pass kept in memory found the recording's reps (the last session was ended by
    # stop() right after its pass began).
    truth = json.loads((REPLAY / "standing_left_6axis.reps.json").read_text())
    complete = sorted((s for s in hub.sessions.values() if not s.active), key=lambda s: s.started)[:-1]
    assert complete and all(len(s.reps) == len(truth) for s in complete)
    assert len(hub.recent_events) <= hub.recent_events.maxlen  # type: ignore[operator]


# -- under uvloop (what uvicorn runs `sensorhub serve` on) -------------------------------------------


class _Socket:
    """A WebSocket stand-in that takes every message."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self._never = asyncio.Event()

    async def send_text(self, text: str) -> None:
        self.sent.append(text)

    async def receive(self) -> dict[str, str]:
        await self._never.wait()
        return {"type": "websocket.disconnect"}

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        pass


def test_push_timer_rearms_under_uvloop(tmp_path: Path) -> None:
    """uvloop's ``call_later(0)`` returns a handle without ``when()``: re-arming the push timer must
    not rely on it (the hub's consumer died on exactly this in a soak run)."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> Hub:
        settings = ServiceSettings(ble=False, storage=StorageSettings(data_dir=tmp_path))
        hub = Hub(settings, store=None, metrics=LiveMetrics(), broadcaster=Broadcaster(), athletes=AthleteRegistry(None))
        hub._loop = asyncio.get_running_loop()
        hub._decimator.add("a/left", [_frame(1.0)], 0.0)
        hub._fresh.add("a/left")
        now = hub._last_message = time.perf_counter()
        hub._arm_timer(now + 0.02)  # the message slot (10 ms after the last message) has passed: no delay
        hub._arm_timer(now + 0.02)  # again while that timer is pending
        await asyncio.sleep(0.05)
        return hub

    hub = uvloop.run(scenario())
    assert "a/left" in hub._last_push and not hub._decimator  # the timer pushed the pending frame


def test_hub_under_uvloop_pushes_frames_without_errors(tmp_path: Path) -> None:
    """The whole hub on uvloop: frames out, reps found, no task died, no processing error."""
    uvloop = pytest.importorskip("uvloop")
    recording = REPLAY / "standing_left_6axis.shr"

    async def scenario() -> tuple[Hub, _Socket]:
        settings = ServiceSettings(ble=False, storage=StorageSettings(data_dir=tmp_path))
        hub = Hub(settings, store=None, metrics=LiveMetrics(), broadcaster=Broadcaster(), athletes=AthleteRegistry(None),
                  source=ReplayNotificationSource(recording, speed=8.0))
        socket = _Socket()
        client = asyncio.create_task(hub.broadcaster.serve(hub.broadcaster.add(socket)))  # type: ignore[arg-type]
        await hub.start()
        await asyncio.wait_for(hub.source_done.wait(), 60.0)
        await hub.stop()
        client.cancel()
        return hub, socket

    hub, socket = uvloop.run(scenario())
    assert all(not t.done() or t.cancelled() for t in hub._tasks)
    assert hub.metrics.processing_errors._value.get() == 0.0
    frames = [m for m in socket.sent if m.startswith('{"type":"frame"')]
    truth = json.loads(recording.with_suffix(".reps.json").read_text())
    assert len(frames) > 100
    (session,) = hub.sessions.values()
    assert len(session.reps) == len(truth)


class _StubPipeline:
    """Stands in for a calibrated OnlinePipeline: one frame at the end of every thigh block."""

    state = "streaming"

    def __init__(self) -> None:
        self.pushed: list[tuple[str, int]] = []

    def push(self, segment: str, block: ImuSamples) -> list[AngleFrame]:
        self.pushed.append((segment, len(block)))
        return [_frame(float(block.t_s[-1]))] if segment == "thigh" else []


def _stub_stream_hub(tmp_path: Path) -> tuple[Hub, StreamRuntime, _StubPipeline]:
    """A hub on the running loop with one calibrated stream a/left run by a :class:`_StubPipeline`."""
    from sensorhub.service.sources import SensorInfo

    settings = ServiceSettings(ble=False, storage=StorageSettings(data_dir=tmp_path))
    hub = Hub(settings, store=None, metrics=LiveMetrics(), broadcaster=Broadcaster(), athletes=AthleteRegistry(None))
    hub._loop = asyncio.get_running_loop()
    hub.sensor_found(SensorInfo("p", "pelvis", None, "a"))
    hub.sensor_found(SensorInfo("t", "thigh", "left", "a"))
    stream = hub.streams["a/left"]
    stub = _StubPipeline()
    stream.pipeline = stub  # type: ignore[assignment]
    stream.calibration_reported = True
    stream.last_frame = _frame(0.0)
    return hub, stream, stub


def test_a_sparse_streams_frame_completed_before_it_is_due_is_shown_at_once(tmp_path: Path) -> None:
    """A replay sends every ~130 ms per sensor, pelvis and thigh often a few ms apart: the frames
    complete less often than the display rate allows. Holding such a frame to the stream's due time
    (up to half a display interval) was most of the soak's latency tail; it must be run and pushed at
    once, and the due schedule starts over from that push."""

    async def scenario() -> tuple[Hub, StreamRuntime, _StubPipeline, float, float, list[StreamRuntime]]:
        hub, stream, stub = _stub_stream_hub(tmp_path)
        stream.completion_interval_s = 0.065  # frames complete every 65 ms on average: sparse
        now = time.perf_counter()
        due_at = hub._due_at["a/left"] = now + 0.02
        ready = hub._process_blocks({"p": [_block(0.0, 6)], "t": [_block(0.0, 6)]}, {"p": [now], "t": [now]})
        await hub._run_ready(ready)
        return hub, stream, stub, now, due_at, ready

    hub, stream, stub, now, due_at, ready = asyncio.run(scenario())
    assert ready == [stream] and not hub._waiting
    assert stub.pushed == [("pelvis", 6), ("thigh", 6)] and not stream.held
    assert stream.last_frame is not None and stream.last_frame.t_s == pytest.approx(0.05)
    pushed = hub._last_push["a/left"]
    assert now <= pushed < due_at - 0.01  # at once, not at the due time
    # The next push is due one display interval after this one.
    assert hub._due_at["a/left"] == pytest.approx(pushed + 1.0 / hub.settings.display_rate_hz)


def test_a_dense_streams_frame_completed_before_it_is_due_waits_for_the_next(tmp_path: Path) -> None:
    """Sensors sending every 15-30 ms: a frame completed before the stream is due is not pushed; the
    next completed frame is shown instead, fresh, or this one after MAX_HOLD_S at the latest."""

    async def scenario() -> tuple[Hub, StreamRuntime, _StubPipeline, float]:
        hub, stream, stub = _stub_stream_hub(tmp_path)
        stream.completion_interval_s = 0.02  # dense
        stream.last_completion_s = time.perf_counter() - 0.02
        now = time.perf_counter()
        hub._due_at["a/left"] = now + 0.02
        ready = hub._process_blocks({"p": [_block(0.0, 6)], "t": [_block(0.0, 6)]}, {"p": [now], "t": [now]})
        assert ready == [] and hub._waiting == {"a/left"} and stub.pushed == []
        await asyncio.sleep(hub_module.MAX_HOLD_S + 0.05)
        return hub, stream, stub, now

    hub, stream, stub, now = asyncio.run(scenario())
    # No next frame came: run after the hold limit (not at the stale timer, not never).
    assert stub.pushed == [("pelvis", 6), ("thigh", 6)] and not stream.held and not hub._waiting
    assert now + hub_module.MAX_HOLD_S - 1e-3 <= hub._last_push["a/left"] < now + hub_module.MAX_HOLD_S + 0.05


def test_frame_messages_average_the_message_rate_with_bursts_of_two(tmp_path: Path) -> None:
    """A second message may follow the first at once (a frame completed 3 ms after another stream's
    message used to wait the rest of 10 ms); over time messages stay within max_message_rate_hz."""
    settings = ServiceSettings(ble=False, storage=StorageSettings(data_dir=tmp_path))
    hub = Hub(settings, store=None, metrics=LiveMetrics(), broadcaster=Broadcaster(), athletes=AthleteRegistry(None))
    interval = 1.0 / settings.max_message_rate_hz
    assert hub._message_slot_at() == -math.inf  # nothing sent yet
    hub._take_message_slot(10.0)
    assert hub._message_slot_at() == pytest.approx(10.0)  # the burst's second message: at once
    hub._take_message_slot(10.003)
    # Both slots used: the next one when the bucket, refilled since the first, holds a slot again.
    assert hub._message_slot_at() == pytest.approx(10.0 + interval)
    hub._take_message_slot(10.0 + interval)
    assert hub._message_slot_at() == pytest.approx(10.0 + 2 * interval)
    # Sending whenever allowed for 10 s: never more than the rate plus the burst in any second.
    sent = [10.0 + 2 * interval]
    hub._take_message_slot(sent[-1])
    while sent[-1] < 20.0:
        sent.append(hub._message_slot_at())
        hub._take_message_slot(sent[-1])
    times = np.array(sent)
    per_second = np.searchsorted(times, times + 1.0) - np.arange(len(times))
    assert per_second.max() <= settings.max_message_rate_hz + hub_module.MESSAGE_BURST
    # After a pause the bucket refills to the burst, no further.
    hub._take_message_slot(30.0)
    assert hub._message_slot_at() == pytest.approx(30.0)
    hub._take_message_slot(30.0)
    assert hub._message_slot_at() == pytest.approx(30.0 + interval)


def test_streams_made_ready_together_share_one_message(tmp_path: Path) -> None:
    """The runs of one batch go first and share one frame message: published one by one, every
    stream after the first waited for the next message slot, and each message costs a send per client."""
    from sensorhub.service.sources import SensorInfo

    async def scenario() -> tuple[list[Any], list[_StubPipeline]]:
        settings = ServiceSettings(ble=False, storage=StorageSettings(data_dir=tmp_path))
        hub = Hub(settings, store=None, metrics=LiveMetrics(), broadcaster=Broadcaster(), athletes=AthleteRegistry(None))
        hub._loop = asyncio.get_running_loop()
        published: list[Any] = []
        hub.broadcaster.publish = lambda message, entered_s=(), stages=None: published.append(message)  # type: ignore[method-assign]
        stubs = []
        for athlete in ("a", "b"):
            hub.sensor_found(SensorInfo(f"{athlete}p", "pelvis", None, athlete))
            hub.sensor_found(SensorInfo(f"{athlete}t", "thigh", "left", athlete))
            stream = hub.streams[f"{athlete}/left"]
            stub = _StubPipeline()
            stream.pipeline = stub  # type: ignore[assignment]
            stream.calibration_reported = True
            stream.last_frame = _frame(0.0)
            stubs.append(stub)
        now = time.perf_counter()
        blocks = {sid: [_block(0.0, 6)] for sid in ("ap", "at", "bp", "bt")}
        ready = hub._process_blocks(blocks, {sid: [now] for sid in blocks})
        assert [s.key for s in ready] == ["a/left", "b/left"]
        await hub._run_ready(ready)
        return published, stubs

    published, stubs = asyncio.run(scenario())
    assert all(stub.pushed == [("pelvis", 6), ("thigh", 6)] for stub in stubs)
    (message,) = published
    assert [s["key"] for s in json.loads(message)["streams"]] == ["a/left", "b/left"]
