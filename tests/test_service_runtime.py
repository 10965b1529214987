"""The live service's REST API, link loss, slow clients and binding.

REST tests run the app without a notification source. The link-loss test feeds a recording through
a source that stops delivering one sensor for a while. The slow-client test runs the hub itself (no
HTTP) with one stuck and one healthy client and a replay as fast as the hub takes it.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sensorhub.notification import Notification
from sensorhub.recording import open_recording
from sensorhub.service import ServiceSettings, create_app
from sensorhub.service.athletes import AthleteRegistry
from sensorhub.service.broadcast import CLOSE_TOO_SLOW, TOO_SLOW_REASON, Broadcaster
from sensorhub.service.hub import Hub
from sensorhub.service.metrics import LiveMetrics
from sensorhub.service.sources import HubInput, ReplayNotificationSource
from sensorhub.storage import StorageSettings

REPLAY = Path(__file__).resolve().parent.parent / "replay_data"
SEATED = REPLAY / "seated_right_9axis.shr"


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[TestClient]:
    settings = ServiceSettings(ble=False, storage=StorageSettings(data_dir=tmp_path))
    with TestClient(create_app(settings)) as client:
        yield client


# -- REST --------------------------------------------------------------------------------------------


def test_health_and_openapi(api: TestClient) -> None:
    health = api.get("/api/health").json()
    assert health["status"] == "ok" and health["mode"] == "idle"
    assert health["storage"]["backend"] == "sqlite"
    paths = api.get("/openapi.json").json()["paths"]
    for path in ("/api/athletes", "/api/sessions/{session_id}/export.csv", "/api/sensors/{sensor_id}/assignment",
                 "/api/calibration/start", "/api/history/trend", "/api/drills"):
        assert path in paths
    assert api.get("/docs").status_code == 200


def test_athletes_crud_and_validation(api: TestClient, tmp_path: Path) -> None:
    r = api.post("/api/athletes", json={"id": "ana", "name": "Ana", "notes": "left hip surgery 2024"})
    assert r.status_code == 201 and r.json() == {"id": "ana", "name": "Ana", "notes": "left hip surgery 2024"}
    generated = api.post("/api/athletes", json={"name": "Bo"}).json()
    assert len(generated["id"]) == 10
    assert api.post("/api/athletes", json={"id": "ana", "name": "Other"}).status_code == 409
    assert api.post("/api/athletes", json={"id": "bad id!", "name": "X"}).status_code == 422
    assert api.post("/api/athletes", json={"name": ""}).status_code == 422
    assert api.post("/api/athletes", json={"name": "X", "age": 3}).status_code == 422
    assert api.put("/api/athletes/ana", json={"name": "Ana P."}).json()["name"] == "Ana P."
    assert [a["id"] for a in api.get("/api/athletes").json()] == ["ana", generated["id"]]
    # Persisted for the next start of the service.
    assert AthleteRegistry(tmp_path / "athletes.json").get("ana").name == "Ana P."
    assert api.delete("/api/athletes/ana").status_code == 200  # body: erasure report (docs/privacy.md)
    r = api.get("/api/athletes/ana")
    assert r.status_code == 404 and "ana" in r.json()["detail"]


def test_drills_catalog(api: TestClient) -> None:
    drills = {d["name"]: d for d in api.get("/api/drills").json()}
    assert drills["side_lying_internal"]["targets"] == {"internal": 35.0, "external": None}
    assert drills["hip_90_90"]["directions"] == ["external", "internal"]
    r = api.get("/api/drills/no_such_drill")
    assert r.status_code == 404 and "seated_rotation" in r.json()["detail"]


def test_sessions_sensors_and_calibration(api: TestClient) -> None:
    api.post("/api/athletes", json={"id": "a1", "name": "A"})
    assert api.post("/api/sessions", json={"athlete": "a1", "side": "right", "drill": "nope"}).status_code == 422
    assert api.post("/api/sessions", json={"athlete": "a1", "side": "middle", "drill": "seated_rotation"}).status_code == 422
    assert api.post("/api/sessions", json={"athlete": "ghost", "side": "left", "drill": "seated_rotation"}).status_code == 404
    # A thigh needs its side; the athlete must exist.
    assert api.put("/api/sensors/s-thigh/assignment", json={"athlete": "a1", "segment": "thigh"}).status_code == 422
    assert api.put("/api/sensors/s-thigh/assignment", json={"athlete": "zz", "segment": "pelvis"}).status_code == 422
    thigh = api.put("/api/sensors/s-thigh/assignment", json={"athlete": "a1", "segment": "thigh", "side": "right"}).json()
    assert (thigh["athlete"], thigh["segment"], thigh["side"], thigh["connected"]) == ("a1", "thigh", "right", False)
    pelvis = api.put("/api/sensors/s-pelvis/assignment", json={"athlete": "a1", "segment": "pelvis", "side": "left"}).json()
    assert pelvis["side"] is None  # the pelvis has no side
    (stream,) = api.get("/api/streams").json()
    assert stream["key"] == "a1/right" and stream["sensors"] == {"pelvis": "s-pelvis", "thigh": "s-thigh"}

    r = api.post("/api/sessions", json={"athlete": "a1", "side": "right", "drill": "seated_rotation"})
    assert r.status_code == 201
    session = r.json()
    assert session["active"] and session["reps"] == 0 and session["summary"] == {}
    again = api.post("/api/sessions", json={"athlete": "a1", "side": "right", "drill": "seated_rotation"})
    assert again.status_code == 409 and session["id"] in again.json()["detail"]
    assert [s["id"] for s in api.get("/api/sessions", params={"active": True}).json()] == [session["id"]]

    cal = api.get("/api/calibration", params={"key": "a1/right"}).json()
    assert (cal["step"], cal["progress"], cal["result"]) == ("still1", 0.0, None)
    assert [s["step"] for s in api.get("/api/calibration/steps").json()] == ["still1", "swings", "bows", "still2"]
    assert api.get("/api/calibration/result", params={"key": "a1/right"}).status_code == 404
    assert api.post("/api/calibration/start", json={"key": "a1/left"}).status_code == 404
    assert api.post("/api/calibration/start", json={"key": "a1/right"}).json()["step"] == "still1"

    stopped = api.post(f"/api/sessions/{session['id']}/stop").json()
    assert stopped["active"] is False and stopped["ended"] >= stopped["started"]
    assert api.post(f"/api/sessions/{session['id']}/stop").status_code == 409
    assert api.get(f"/api/sessions/{session['id']}/reps").json() == []
    assert api.get("/api/sessions/nope").status_code == 404
    assert api.delete("/api/sensors/s-thigh/assignment").status_code == 204
    assert api.get("/api/sensors/s-thigh").json()["athlete"] is None


def test_history_of_an_unknown_athlete_is_empty(api: TestClient) -> None:
    rows = api.get("/api/history/trend", params={"athlete": "x", "drill": "seated_rotation", "weeks": 4}).json()
    assert all(w["reps"] == 0 for w in rows)
    assert api.get("/api/history/trend", params={"athlete": "x", "drill": "seated_rotation", "weeks": 0}).status_code == 422
    assert api.get("/api/history/sessions").json() == []


def test_dashboard_vendor_plotly_served(api: TestClient) -> None:
    r = api.get("/vendor/plotly.min.js")
    assert r.status_code == 200 and len(r.content) > 1_000_000
    assert r.headers["content-type"].startswith("application/javascript")


# -- link loss ------------------------------------------------------------------------------------


class _Pause:
    """A HubInput proxy that withholds one sensor's notifications in a session-time window."""

    def __init__(self, hub: HubInput, sensor_id: str, t_from_s: float, t_to_s: float) -> None:
        self._hub = hub
        self._sensor_id = sensor_id
        self._window = (t_from_s, t_to_s)

    def submit(self, notification: Notification) -> None:
        if notification.sensor_id == self._sensor_id and self._window[0] <= notification.t_host_s < self._window[1]:
            return
        self._hub.submit(notification)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._hub, name)


class PausingSource:
    """The replay of a recording with one sensor silent for a while (as if out of range)."""

    name = "replay"

    def __init__(self, inner: ReplayNotificationSource, sensor_id: str, t_from_s: float, t_to_s: float) -> None:
        self.inner = inner
        self.args = (sensor_id, t_from_s, t_to_s)

    async def run(self, hub: HubInput) -> None:
        await self.inner.run(_Pause(hub, *self.args))


def test_sensor_lost_and_back(tmp_path: Path) -> None:
    # 20x: the thigh is silent from 4 s to 24 s of session time, 1.0 s of wall time.
    source = PausingSource(ReplayNotificationSource(SEATED, speed=20.0), "sim-thigh-4d5e", 4.0, 24.0)
    settings = ServiceSettings(ble=False, sensor_lost_after_s=0.4, storage=StorageSettings(data_dir=tmp_path))
    events: list[dict[str, Any]] = []
    with TestClient(create_app(settings, source=source)) as client, client.websocket_connect("/ws/live") as ws:
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            m = ws.receive_json()
            if m["type"] == "event":
                events.append(m)
                if m["event"] == "sensor_back":
                    break
        sensors = {s["sensor_id"]: s for s in client.get("/api/sensors").json()}
    link = [(e["event"], e["sensor_id"]) for e in events if e["event"] in ("sensor_lost", "sensor_back")]
    assert link == [("sensor_lost", "sim-thigh-4d5e"), ("sensor_back", "sim-thigh-4d5e")]
    lost = next(e for e in events if e["event"] == "sensor_lost")
    back = next(e for e in events if e["event"] == "sensor_back")
    assert lost["key"] == "sim-athlete-4d5e/right" and lost["segment"] == "thigh"
    assert 0.4 <= lost["silent_s"] < 1.0
    # Silent 20 s of session at 20x = about 1 s of wall time (the replay catches up when the event
    # loop was busy, e.g. while the calibration is computed), part of it before "lost".
    assert 0.0 < back["lost_s"] < 1.5
    assert sensors["sim-thigh-4d5e"]["lost"] is False and sensors["sim-pelvis-4d5e"]["lost"] is False


# -- slow clients -------------------------------------------------------------------------------


class FakeSocket:
    """Stands in for a starlette WebSocket; a stuck one never completes a send."""

    def __init__(self, stuck: bool) -> None:
        self.stuck = stuck
        self.sent: list[str] = []
        self.closed: tuple[int, str] | None = None
        self._never = asyncio.Event()

    async def send_text(self, text: str) -> None:
        if self.stuck:
            await self._never.wait()
        self.sent.append(text)

    async def receive(self) -> dict[str, Any]:
        await self._never.wait()
        return {"type": "websocket.disconnect"}

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed = (code, reason or "")


def test_stuck_client_is_dropped_and_ingest_goes_on(tmp_path: Path) -> None:
    async def scenario() -> tuple[Hub, FakeSocket, FakeSocket]:
        settings = ServiceSettings(ble=False, client_queue_size=8, storage=StorageSettings(data_dir=tmp_path))
        metrics = LiveMetrics()
        broadcaster = Broadcaster(settings.client_queue_size, on_drop=lambda _c: metrics.dropped_clients.inc())
        hub = Hub(settings, store=None, metrics=metrics, broadcaster=broadcaster, athletes=AthleteRegistry(None),
                  source=ReplayNotificationSource(SEATED, speed=None))
        stuck, healthy = FakeSocket(stuck=True), FakeSocket(stuck=False)
        tasks = [asyncio.create_task(broadcaster.serve(broadcaster.add(ws))) for ws in (stuck, healthy)]  # type: ignore[arg-type]
        await hub.start()
        await asyncio.wait_for(hub.source_done.wait(), 20.0)
        await asyncio.sleep(0.05)
        await hub.stop()
        for t in tasks:
            t.cancel()
        return hub, stuck, healthy

    hub, stuck, healthy = asyncio.run(scenario())
    assert stuck.closed == (CLOSE_TOO_SLOW, TOO_SLOW_REASON)
    assert stuck.sent == []
    assert hub.broadcaster.dropped_total == 1
    assert hub.metrics.dropped_clients._value.get() == 1.0
    healthy_events = [json.loads(t) for t in healthy.sent]
    reps = [m for m in healthy_events if m.get("event") == "rep_completed"]
    assert len(reps) == 8
    # Every notification went through ingest although one client never read anything.
    stats = hub.ingest.stats()
    assert sum(s.packets_received for s in stats.values()) == open_recording(SEATED).n_notifications
    session = next(iter(hub.sessions.values()))
    assert len(session.reps) == 8 and not math.isnan(session.reps[0].score)


@pytest.mark.parametrize("name", ["standing_right_9axis_loss5", "standing_right_9axis"])
def test_replay_as_fast_as_possible_gives_the_truths_reps(name: str, tmp_path: Path) -> None:
    """Huge coalesced batches (and, with 5 % loss, gaps inside them) must not change the result.

    Before the hub cut blocks at gaps and into short pieces, the lossy recording gave 3 of 8 reps
    and the clean one a compensation flag on a clean rep.
    """
    recording = REPLAY / f"{name}.shr"
    truth = json.loads(recording.with_suffix(".reps.json").read_text())

    async def scenario() -> Hub:
        settings = ServiceSettings(ble=False, storage=StorageSettings(data_dir=tmp_path))
        hub = Hub(settings, store=None, metrics=LiveMetrics(), broadcaster=Broadcaster(), athletes=AthleteRegistry(None),
                  source=ReplayNotificationSource(recording, speed=None))
        await hub.start()
        await asyncio.wait_for(hub.source_done.wait(), 20.0)
        await hub.stop()
        return hub

    hub = asyncio.run(scenario())
    dropped = open_recording(recording).meta.extra["sim"]["dropped_packets"]
    assert {sid: s.packets_lost for sid, s in hub.ingest.stats().items()} == dropped
    (session,) = hub.sessions.values()
    assert len(session.reps) == len(truth)
    assert [r.compensation for r in session.reps] == [t["compensation"] for t in truth]
    for rep, true in zip(session.reps, truth):
        assert rep.peak_internal_rotation is not None
        assert abs(rep.peak_internal_rotation - true["peak_internal_rotation"]) < 6.0


# -- binding ---------------------------------------------------------------------------------------


def test_serve_binds_to_loopback_by_default(tmp_path: Path) -> None:
    import uvicorn

    from sensorhub.cli import build_parser
    from sensorhub.commands.serve import build_settings, dashboard_url

    args = build_parser().parse_args(["serve", "--port", "0", "--data-dir", str(tmp_path), "--replay", str(SEATED)])
    settings = build_settings(args)
    assert settings.host == "127.0.0.1" and settings.replay == SEATED
    assert settings.storage.data_dir == tmp_path and not settings.storage.influx_enabled

    async def bound_address() -> tuple[str, int]:
        server = uvicorn.Server(uvicorn.Config(create_app(settings), host=settings.host, port=0, log_level="warning"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.02)
        addr = server.servers[0].sockets[0].getsockname()
        server.should_exit = True
        await task
        return addr[0], addr[1]

    host, port = asyncio.run(bound_address())
    assert host == "127.0.0.1" and port > 0
    assert dashboard_url(host, port) == f"http://127.0.0.1:{port}/"
    with pytest.raises(Exception, match="--speed only applies"):
        build_settings(build_parser().parse_args(["serve", "--speed", "2"]))
