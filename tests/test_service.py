"""The live service end to end: a replayed simulated session through the real app.

One replay of ``replay_data/seated_right_9axis.shr`` (8 seated rotation reps, reps 3 and 6 with
pelvis compensation in the simulator's truth) runs at 12x through ``create_app`` with an SQLite
store; one WebSocket client records every message. The tests below read that record and the REST
API afterwards, and compare with the truth files next to the recording.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from sensorhub.recording import open_recording
from sensorhub.service import ServiceSettings, create_app
from sensorhub.service.sources import HubInput, ReplayNotificationSource
from sensorhub.storage import StorageSettings

REPLAY = Path(__file__).resolve().parent.parent / "replay_data"
SEATED = REPLAY / "seated_right_9axis.shr"
SPEED = 12.0


@dataclass
class Run:
    messages: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    client: TestClient | None = None
    data_dir: Path | None = None
    late_hello: dict[str, Any] = field(default_factory=dict)
    """The hello of a client connecting after the session ended."""

    def of_type(self, kind: str) -> list[tuple[float, dict[str, Any]]]:
        return [(t, m) for t, m in self.messages if m["type"] == kind]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [m for _, m in self.messages if m["type"] == "event" and m["event"] == name]


class AfterFirstClient:
    """The replay, started once a WebSocket client is connected (so it sees every event)."""

    name = "replay"

    def __init__(self, inner: ReplayNotificationSource) -> None:
        self.inner = inner

    async def run(self, hub: HubInput) -> None:
        while not len(hub.broadcaster):  # type: ignore[attr-defined]
            await asyncio.sleep(0.01)
        await self.inner.run(hub)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    if not SEATED.is_file():
        pytest.skip(f"{SEATED} missing")
    data_dir = tmp_path_factory.mktemp("service")
    settings = ServiceSettings(replay=SEATED, replay_speed=SPEED, storage=StorageSettings(data_dir=data_dir))
    result = Run(data_dir=data_dir)
    source = AfterFirstClient(ReplayNotificationSource(SEATED, speed=SPEED))
    with TestClient(create_app(settings, source=source)) as client:
        result.client = client
        with client.websocket_connect("/ws/live") as ws:
            deadline = time.monotonic() + 30.0
            while time.monotonic() < deadline:
                message = ws.receive_json()
                result.messages.append((time.monotonic(), message))
                if message["type"] == "event" and message["event"] == "session_stopped":
                    break
        with client.websocket_connect("/ws/live") as ws:
            result.late_hello = ws.receive_json()
        yield result


def truth_reps() -> list[dict[str, Any]]:
    return json.loads((REPLAY / "seated_right_9axis.reps.json").read_text())  # type: ignore[no-any-return]


def test_hello_and_status_describe_the_replayed_stream(run: Run) -> None:
    _, hello = run.messages[0]
    assert hello["type"] == "hello"
    assert hello["server"]["mode"] == "replay"
    drills = {d["name"]: d for d in hello["drills"]}
    assert drills["seated_rotation"]["targets"] == {"internal": 35.0, "external": 45.0}
    # While calibrating: assignment from the recording's sensor descriptors, athlete and drill from
    # its metadata.
    status = run.of_type("status")[0][1]
    (stream,) = status["streams"]
    assert stream["key"] == "sim-athlete-4d5e/right"
    assert stream["athlete_name"] == "Simulated Athlete 4D5E"
    assert stream["sensors"] == {"pelvis": "sim-pelvis-4d5e", "thigh": "sim-thigh-4d5e"}
    assert stream["drill"] == "seated_rotation" and stream["state"] == "calibrating"
    assert status["sessions"][0]["drill"] == "seated_rotation"
    # A browser arriving later gets the current state in its hello.
    (late,) = run.late_hello["streams"]
    assert late["state"] == "streaming" and late["calibrated"] and late["reps"] == 8
    assert late["calibration"]["result"]["quality"]["steps"]


def test_calibration_steps_arrive_in_protocol_order_before_angles(run: Run) -> None:
    steps = [m["step"] for m in run.events("calibration_step")]
    assert steps == ["still1", "swings", "bows", "still2"]
    (done,) = run.events("calibration_done")
    assert [s["step"] for s in done["quality"]["steps"]][:1] == ["still1"]
    t_done = next(t for t, m in run.messages if m["type"] == "event" and m["event"] == "calibration_done")
    t_first_frame = run.of_type("frame")[0][0]
    assert t_first_frame >= t_done


def test_frames_arrive_at_display_rate_with_real_angles(run: Run) -> None:
    frames = run.of_type("frame")
    t = np.array([ts for ts, _ in frames])
    # The drill part of the recording (after calibration, 20-86 s of session) at 12x lasts ~5.5 s.
    assert t[-1] - t[0] > 4.0
    rate_hz = (len(t) - 1) / (t[-1] - t[0])
    assert 18.0 <= rate_hz <= 33.0, rate_hz
    assert np.percentile(np.diff(t), 90) < 0.1
    streams = [m["streams"][0] for _, m in frames]
    rot = np.array([s["hip_rotation"] for s in streams if s["hip_rotation"] is not None])
    flex = np.array([s["hip_flexion"] for s in streams[len(streams) // 3:] if s["hip_flexion"] is not None])
    # Seated rotation: internal and external peaks of 25-42 degrees, hip flexed near 80 degrees.
    assert rot.max() > 20.0 and rot.min() < -20.0
    assert 60.0 < float(np.median(flex)) < 100.0
    # min/max since the last push bracket the latest value, so peaks between pushes survive.
    for s in streams:
        if s["hip_rotation"] is not None:
            assert s["hip_rotation_min"] - 1e-6 <= s["hip_rotation"] <= s["hip_rotation_max"] + 1e-6
    assert all(s["calibrated"] for s in streams)


def test_reps_are_scored_and_match_the_simulated_truth(run: Run) -> None:
    reps = [m["rep"] for m in run.events("rep_completed")]
    truth = truth_reps()
    assert len(reps) == len(truth) == 8
    for rep, true in zip(reps, truth):
        assert 0.0 <= rep["score"] <= 100.0
        assert abs(rep["peak_internal_rotation"] - true["peak_internal_rotation"]) < 5.0
        assert abs(rep["peak_external_rotation"] - true["peak_external_rotation"]) < 5.0
        assert abs(rep["t_start"] - true["t_start"]) < 1.5
    # The last frame carries the session maxima of the completed reps.
    last = run.of_type("frame")[-1][1]["streams"][0]
    assert last["reps"] == 8
    assert math.isclose(last["session_max_ir"], max(r["peak_internal_rotation"] for r in reps), abs_tol=1e-3)


def test_compensation_events_only_on_the_compensated_reps(run: Run) -> None:
    flagged_truth = [i + 1 for i, r in enumerate(truth_reps()) if r["compensation"]]
    assert flagged_truth == [3, 6]
    assert [m["rep_index"] for m in run.events("compensation")] == flagged_truth
    assert all(m["exceeded"] for m in run.events("compensation"))
    scores = {m["rep"]["index"]: m["rep"]["score"] for m in run.events("rep_completed")}
    # A compensated rep loses points: both score below every clean rep.
    assert max(scores[i] for i in flagged_truth) < min(s for i, s in scores.items() if i not in flagged_truth)


def test_status_once_a_second(run: Run) -> None:
    status = run.of_type("status")
    t = np.array([ts for ts, _ in status])
    assert len(t) >= 5
    assert np.allclose(np.diff(t), 1.0, atol=0.3)
    sensors = {s["sensor_id"]: s for s in status[-1][1]["sensors"]}
    assert sensors["sim-thigh-4d5e"]["rate_hz"] == pytest.approx(100.0, rel=0.01)
    assert status[-1][1]["storage"]["backend"] == "sqlite"


def test_rest_after_the_session(run: Run) -> None:
    c = run.client
    assert c is not None
    sessions = c.get("/api/sessions").json()
    (session,) = [s for s in sessions if s["active"] is False and s["reps"] == 8]
    assert session["summary"]["reps_count"] == 8
    assert session["summary"]["compensated_count"] == 2
    sid = session["id"]
    reps = c.get(f"/api/sessions/{sid}/reps").json()
    assert [r["index"] for r in reps] == list(range(1, 9))
    csv_reps = c.get(f"/api/sessions/{sid}/export.csv").text.strip().splitlines()
    assert len(csv_reps) == 1 + 8
    csv_angles = c.get(f"/api/sessions/{sid}/export.csv", params={"what": "angles"}).text.strip().splitlines()
    # Stored at the storage rate (50 Hz) over the drill part (~65 s of session).
    assert 50 * 50 < len(csv_angles) < 50 * 75
    assert c.get(f"/api/sessions/{sid}").json()["summary"]["internal"]["n"] == 8
    trend = c.get("/api/history/trend", params={"athlete": "sim-athlete-4d5e", "drill": "seated_rotation"}).json()
    assert sum(w["reps"] for w in trend) == 8
    assert c.get("/api/athletes/sim-athlete-4d5e").json()["name"] == "Simulated Athlete 4D5E"


def test_metrics_exposed(run: Run) -> None:
    c = run.client
    assert c is not None
    text = c.get("/metrics").text
    for sensor_id, n in open_recording(SEATED).notification_counts.items():
        assert f'sensorhub_notifications_total{{sensor="{sensor_id}"}} {float(n)}' in text
    assert 'sensorhub_samples_total{sensor="sim-thigh-4d5e"}' in text
    count = float(next(line.split()[-1] for line in text.splitlines() if line.startswith("sensorhub_pipeline_latency_seconds_count")))
    assert count >= len(run.of_type("frame")) * 0.9
    assert "sensorhub_ws_clients" in text and "sensorhub_ws_dropped_clients_total 0.0" in text
    assert 'sensorhub_storage_state{backend="sqlite"} 0.0' in text
    assert "sensorhub_storage_spool_points" in text
    assert 'sensorhub_packets_lost_total{sensor="sim-thigh-4d5e"} 0.0' in text


def test_a_restarted_service_serves_the_stored_session(run: Run) -> None:
    assert run.client is not None and run.data_dir is not None
    assert run.client.app.state.hub.store.flush(5.0)  # type: ignore[attr-defined]
    settings = ServiceSettings(ble=False, storage=StorageSettings(data_dir=run.data_dir))
    with TestClient(create_app(settings)) as client:
        (session,) = client.get("/api/sessions").json()
        assert (session["active"], session["reps"], session["drill"]) == (False, 8, "seated_rotation")
        reps = client.get(f"/api/sessions/{session['id']}/reps").json()
        assert [r["index"] for r in reps if r["compensation"]] == [3, 6]
        assert all(r["compensation_detail"]["exceeded"] for r in reps if r["compensation"])
        live = [m["rep"] for m in run.events("rep_completed")]
        for stored, rep in zip(reps, live):
            assert stored["score"] == pytest.approx(rep["score"], abs=1e-3)
            assert stored["peak_external_rotation"] == pytest.approx(rep["peak_external_rotation"], abs=1e-3)
        assert client.get("/api/athletes").json()[0]["id"] == "sim-athlete-4d5e"
