"""The live service on the BLE layer's fake peripherals (``sensorhub serve --fake-sensors``).

Two fake sensors stream a simulated session through bleak's client machinery; the service must
connect them, take their assignment from the assignment store (the demo athlete), report their
battery from the info record, and start guiding the calibration from their data.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from sensorhub.assignments import AssignmentStore
from sensorhub.ble.fake import FAKE_PELVIS_ID, FAKE_THIGH_ID
from sensorhub.service import ServiceSettings, create_app
from sensorhub.service.ble_source import FAKE_ATHLETE_ID
from sensorhub.storage import StorageSettings


def test_fake_sensors_stream_into_the_live_calibration(tmp_path: Path) -> None:
    settings = ServiceSettings(fake_sensors=True, storage=StorageSettings(data_dir=tmp_path))
    events: list[dict[str, Any]] = []
    with TestClient(create_app(settings)) as client, client.websocket_connect("/ws/live") as ws:
        assert ws.receive_json()["server"]["mode"] == "ble"
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline:
            m = ws.receive_json()
            if m["type"] == "event":
                events.append(m)
                if m["event"] == "calibration_step":
                    break
        sensors = {s["sensor_id"]: s for s in client.get("/api/sensors").json()}
        streams = client.get("/api/streams").json()

        # The first protocol step (standing still) was recognised from the fake sensors' data.
        step = events[-1]
        assert (step["event"], step["step"], step["ok"]) == ("calibration_step", "still1", True)
        assert step["key"] == f"{FAKE_ATHLETE_ID}/right"
        assert step["metrics"]["duration_s"] >= 2.5
        for sid, segment, battery in ((FAKE_PELVIS_ID, "pelvis", 91.0), (FAKE_THIGH_ID, "thigh", 64.0)):
            s = sensors[sid]
            assert (s["connected"], s["segment"], s["athlete"], s["battery_pct"]) == (True, segment, FAKE_ATHLETE_ID, battery)
            assert s["samples"] > 200 and s["packets_lost"] == 0
        (stream,) = streams
        assert stream["session"] is not None and stream["drill"] == "seated_rotation"

        # A REST assignment goes to the shared assignment store; a malformed BLE sensor id is refused.
        r = client.put(f"/api/sensors/{FAKE_THIGH_ID}/assignment",
                       json={"athlete": FAKE_ATHLETE_ID, "segment": "thigh", "side": "left"})
        assert r.status_code == 200 and r.json()["side"] == "left"
        assert AssignmentStore(tmp_path / "assignments.json").get(FAKE_THIGH_ID).side == "left"  # type: ignore[union-attr]
        bad = client.put("/api/sensors/not-a-ble-id/assignment", json={"athlete": FAKE_ATHLETE_ID, "segment": "pelvis"})
        assert bad.status_code == 422
    assert "sensor_battery" in {e["event"] for e in events}
