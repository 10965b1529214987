"""Prometheus metrics of the live service (``GET /metrics``).

Counters and the latency histogram are updated on the hot path (one ``inc``/``observe`` per
notification, block or sent frame). Values that already live elsewhere — per-sensor packet loss in
:class:`sensorhub.ingest.Ingest`, storage state and spool depth in the store's health — are read at
scrape time by a custom collector instead of being copied on every notification.

Every app gets its own :class:`~prometheus_client.CollectorRegistry`, so several apps (tests,
benchmarks) can live in one process.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

#: Latency buckets (s): sub-millisecond resolution where the 5 ms target lies.
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)

STORAGE_STATE_CODES = {"ok": 0, "degraded": 1, "down": 2}


class _ScrapeCollector(Collector):
    """Reads the hub's current numbers when Prometheus scrapes."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        snap = self._snapshot()
        lost = CounterMetricFamily("sensorhub_packets_lost", "Packets lost per sensor (sequence gaps)", labels=["sensor"])
        recv = CounterMetricFamily("sensorhub_packets_received", "Packets decoded and accepted per sensor", labels=["sensor"])
        loss = GaugeMetricFamily("sensorhub_packet_loss_ratio", "Fraction of packets lost per sensor so far", labels=["sensor"])
        rate = GaugeMetricFamily("sensorhub_sensor_rate_hz", "Sample rate on the hub clock per sensor", labels=["sensor"])
        conn = GaugeMetricFamily("sensorhub_sensor_connected", "1 while the sensor delivers data", labels=["sensor"])
        for s in snap.get("sensors", []):
            sid = s["sensor_id"]
            lost.add_metric([sid], s.get("packets_lost") or 0)
            recv.add_metric([sid], s.get("packets_received") or 0)
            loss.add_metric([sid], s.get("loss_fraction") or 0.0)
            rate.add_metric([sid], s.get("rate_hz") or 0.0)
            conn.add_metric([sid], 1.0 if s.get("connected") and not s.get("lost") else 0.0)
        yield from (lost, recv, loss, rate, conn)
        storage = snap.get("storage") or {}
        state = GaugeMetricFamily("sensorhub_storage_state", "Storage state: 0 ok, 1 degraded, 2 down", labels=["backend"])
        state.add_metric([str(storage.get("backend", ""))], STORAGE_STATE_CODES.get(str(storage.get("state")), 2))
        yield state
        yield GaugeMetricFamily("sensorhub_storage_spool_points", "Points waiting in the storage spool", value=storage.get("spool_points") or 0)
        yield GaugeMetricFamily("sensorhub_storage_buffered_records", "Records accepted by storage but not yet written",
                                value=storage.get("buffered_records") or 0)
        yield CounterMetricFamily("sensorhub_storage_dropped_records", "Records storage lost", value=storage.get("dropped_records") or 0)
        yield GaugeMetricFamily("sensorhub_ingest_queue_depth", "Notifications waiting for the hub's consumer",
                                value=snap.get("queue_depth", 0))


class LiveMetrics:
    """The service's metrics, in their own registry."""

    def __init__(self, *, keep_latency_samples: int = 0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.notifications = Counter("sensorhub_notifications", "Notifications that entered the hub", ["sensor"], registry=r)
        self.samples = Counter("sensorhub_samples", "IMU samples released by ingest", ["sensor"], registry=r)
        self.frames = Counter("sensorhub_angle_frames", "Angle frames produced by the pipeline", ["stream"], registry=r)
        self.reps = Counter("sensorhub_reps", "Reps completed", ["stream"], registry=r)
        self.processing_errors = Counter("sensorhub_processing_errors", "Blocks the pipeline could not process", registry=r)
        self.latency = Histogram(
            "sensorhub_pipeline_latency_seconds",
            "Notification entering the hub -> its angle frame sent on a WebSocket",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.clients = Gauge("sensorhub_ws_clients", "Connected WebSocket clients", registry=r)
        self.dropped_clients = Counter("sensorhub_ws_dropped_clients", "WebSocket clients dropped as too slow", registry=r)
        self.frame_pushes = Counter("sensorhub_ws_frame_pushes", "Frame messages published", registry=r)
        self.latency_samples: deque[float] | None = deque(maxlen=keep_latency_samples) if keep_latency_samples else None
        self._collector: _ScrapeCollector | None = None

    def observe_latency(self, seconds: float) -> None:
        self.latency.observe(seconds)
        if self.latency_samples is not None:
            self.latency_samples.append(seconds)

    def attach(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        """Register the scrape-time collector reading ``snapshot()`` (sensors, storage, queue depth)."""
        if self._collector is None:
            self._collector = _ScrapeCollector(snapshot)
            self.registry.register(self._collector)

    def render(self) -> bytes:
        return generate_latest(self.registry)
