"""The latency stage trace (:mod:`sensorhub.service.stages`): rows and summary on hand-built times,
and through the real app, that the stages of every observation add up to the latency observed.
"""

from __future__ import annotations

import gc
import math
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from sensorhub.service import ServiceSettings, create_app
from sensorhub.service.metrics import LiveMetrics
from sensorhub.service.sources import ReplayNotificationSource
from sensorhub.service.stages import (
    REASONS,
    STAGES,
    MessageStages,
    RunStages,
    StageTrace,
)
from sensorhub.storage import StorageSettings

REPLAY = Path(__file__).resolve().parent.parent / "replay_data"


def test_rows_and_summary_of_hand_built_observations() -> None:
    trace = StageTrace()
    # Stream a: entered 0, decided 1 ms, run 3-5 ms, published 6 ms; sent to two clients.
    trace.note_run("a", RunStages(0.001, 0.003, 0.005, "now"))
    runs = (trace.take("a"), trace.take("b"))  # b pushed again without a run: stale
    assert runs[1] is None and trace.take("a") is None  # a run is taken once
    message = MessageStages(runs, 0.006)
    trace.observe((0.0, -0.010), message, 0.007, 0.008, client_id=1)
    trace.observe((0.0, -0.010), message, 0.020, 0.0305, client_id=2)
    a = trace.array()
    assert a.shape == (4, 9)
    assert a[0, :7] == pytest.approx([0.0, 0.001, 0.003, 0.005, 0.006, 0.007, 0.008])
    assert a[0, 7] == REASONS.index("now") and a[0, 8] == 1
    assert a[1, 7] == REASONS.index("stale") and math.isnan(a[1, 1])
    s = trace.summary(slow_ms=20.0)
    assert s["observations"] == 4
    # Totals: 8, 18, 30.5, 40.5 ms; the last two are slow.
    assert s["total_ms"]["max"] == pytest.approx(40.5)
    assert s["slow_fraction"] == pytest.approx(0.5)
    # Slow ones: client 2 of a (dispatch 14 ms, send 10.5 ms) and of stale b (publish 16 ms).
    slow = s["stage_mean_ms_slow"]
    assert slow["dispatch"] == pytest.approx(14.0)
    assert slow["send"] == pytest.approx(10.5)
    assert slow["publish"] == pytest.approx((1.0 + 16.0) / 2)
    assert slow["queue"] == pytest.approx(0.5) and slow["run"] == pytest.approx(1.0)
    assert s["slow_by_reason"]["stale"] == pytest.approx(0.5)
    assert s["slow_dominant_stage"]["publish"] == pytest.approx(0.5)
    assert s["slow_dominant_stage"]["dispatch"] == pytest.approx(0.5)
    # Only observations entered from 0 on.
    assert trace.summary(since_s=0.0)["observations"] == 2


def test_intervals_overlapping_slow_observations() -> None:
    trace = StageTrace()
    for k in range(10):
        t0 = k * 0.1
        trace.note_run("a", RunStages(t0, t0, t0 + 0.001, "now"))
        sent = t0 + (0.030 if k == 4 else 0.002)
        trace.observe((t0,), MessageStages((trace.take("a"),), t0 + 0.001), sent - 0.0005, sent, 1)
    trace.note_interval("storage", 0.41, 0.425)  # inside observation 4 only
    trace.note_interval("storage", 0.95, 0.99)   # after observation 9 was sent (0.902)
    s = trace.summary(slow_ms=20.0)
    assert s["slow_fraction"] == pytest.approx(0.1)
    st = s["intervals"]["storage"]
    assert st["count"] == 2 and st["slow_overlapping"] == 1.0 and st["all_overlapping"] == pytest.approx(0.1)
    assert st["duration_ms"]["max"] == pytest.approx(40.0)


def test_gc_collections_are_recorded() -> None:
    trace = StageTrace()
    trace.watch_gc()
    try:
        gc.collect()
    finally:
        trace.unwatch_gc()
    assert trace.intervals["gc2"] and all(b >= a for a, b in trace.intervals["gc2"])


def test_stages_add_up_to_the_latency_observed(tmp_path: Path) -> None:
    """Through the real app: one row per latency observation, stages in time order, same totals."""
    metrics = LiveMetrics(keep_latency_samples=100_000)
    settings = ServiceSettings(ble=False, storage=StorageSettings(data_dir=tmp_path))
    source = ReplayNotificationSource(REPLAY / "seated_right_9axis.shr", speed=12.0)
    app = create_app(settings, source=source, metrics=metrics)
    trace = StageTrace()
    with TestClient(app) as client:
        hub = app.state.hub
        hub.trace_stages(trace)
        with client.websocket_connect("/ws/live") as ws:
            frames = 0
            while frames < 60:
                if ws.receive_json()["type"] == "frame":
                    frames += 1
        hub.trace_stages(None)
    a = trace.array()
    assert len(a) >= 50
    ran = ~np.isnan(a[:, 1])
    assert ran.any()
    # entered <= decided <= run start <= run end <= published <= send start <= sent
    assert np.all(np.diff(a[ran, :7], axis=1) >= 0.0)
    assert np.all(np.diff(a[~ran][:, [0, 4, 5, 6]], axis=1) >= 0.0)
    # Each row's total is one latency observation of the metric (the trace sees every frame message
    # sent while it was attached; the metric also those before).
    observed = np.array(metrics.latency_samples)
    totals = a[:, 6] - a[:, 0]
    assert np.isin(np.round(totals, 9), np.round(observed, 9)).all()
    assert set(STAGES) == set(trace.summary()["stages_ms"])
