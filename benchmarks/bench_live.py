"""Live service benchmark: latency, capacity, and the cost of browser clients.

Runs the real app (``create_app``) under uvicorn on a loopback port with an SQLite store, fed by
simulated sessions (``sensorhub.sim``, written to a temporary directory) through the hub's
``NotificationSource`` seam, and real WebSocket clients in a separate process. The server process
is pinned to one CPU and the clients to the other, so "one core" means one core.

Latency is measured in the server, once per stream per frame message per client
(``LiveMetrics.latency_samples``): from :meth:`Hub.submit` of the notification that completed the
newest frame the message shows for that stream (a frame needs both sensors' samples at or past its
time; the later of the two notifications it needed, see :func:`sensorhub.service.hub.completed_at`)
to the moment ``send_text`` of that message has returned. Every frame message counts, those the
stale-frame timer sends included. Counting from the newest notification that had reached the hub
instead would hide the time a frame completed earlier waited for the stream to become due. BLE air
time is not included. ``stream_updates_per_s`` is how often each stream's angle was updated on a
client (display rate actually reached).

Each scenario fast-forwards through the calibration protocol (as fast as the hub takes it), then
paces the drill in real time and measures for ``--seconds``.

    python benchmarks/bench_live.py                  # all scenarios
    python benchmarks/bench_live.py --only latency   # 2 sensors at 200 Hz, 1 and 20 clients
    python benchmarks/bench_live.py --only capacity --sensors 40,50,60

Numbers go to docs/service.md; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sensorhub.notification import Notification
from sensorhub.recording import open_recording
from sensorhub.service import ServiceSettings, create_app
from sensorhub.service.metrics import LiveMetrics
from sensorhub.service.sources import HubInput, SensorInfo, SessionPlan
from sensorhub.storage import StorageSettings

CLIENT_SCRIPT = r"""
import asyncio, json, sys, time
import websockets

async def one(url, counts, i, stop):
    async with websockets.connect(url, max_size=None) as ws:
        counts[i] = 0
        while time.monotonic() < stop:
            try:
                await asyncio.wait_for(ws.recv(), 0.5)
                counts[i] += 1
            except asyncio.TimeoutError:
                pass

async def main(url, n, seconds):
    counts = {}
    stop = time.monotonic() + seconds
    await asyncio.gather(*(one(url, counts, i, stop) for i in range(n)), return_exceptions=True)
    print(json.dumps(counts))

asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
"""


def simulate(path: Path, rates: str, seed: int, mtu: int) -> Path:
    """A simulated seated-rotation session (recording + truth files) at ``path``."""
    if not path.exists():
        subprocess.run([sys.executable, "-m", "sensorhub", "simulate", "--rates", rates, "--mtu", str(mtu),
                        "--seed", str(seed), "--reps", "12", "--out", str(path), "--force"],
                       check=True, capture_output=True)
    return path


@dataclass
class Athlete:
    id: str
    pelvis: str
    thigh: str
    notes: list[Notification]


class BenchSource:
    """Several athletes' recordings merged: calibration as fast as possible, then the drill in real time."""

    name = "replay"

    def __init__(self, athletes: list[Athlete], fast_until_s: float) -> None:
        self.athletes = athletes
        self.fast_until_s = fast_until_s
        self.realtime_from: float | None = None
        self.offered = 0

    def _merged(self) -> Iterator[Notification]:
        return heapq.merge(*(a.notes for a in self.athletes), key=lambda n: n.t_host_s)

    async def run(self, hub: HubInput) -> None:
        for a in self.athletes:
            hub.sensor_found(SensorInfo(a.pelvis, "pelvis", None, a.id))
            hub.sensor_found(SensorInfo(a.thigh, "thigh", "right", a.id))
            hub.sensor_event(a.pelvis, "connected")
            hub.sensor_event(a.thigh, "connected")
            hub.plan_session(SessionPlan(a.id, a.id, "seated_rotation", "right"))
        wall0: float | None = None
        t0 = 0.0
        for k, note in enumerate(self._merged()):
            if note.t_host_s < self.fast_until_s:
                hub.submit(note)
                if k % 200 == 0:
                    await asyncio.sleep(0.002)  # let the consumer keep pace (bounded backlog)
                continue
            if wall0 is None:
                while getattr(hub, "queue_depth", 0) > 0:
                    await asyncio.sleep(0.01)
                wall0, t0 = time.perf_counter(), note.t_host_s
                self.realtime_from = time.monotonic()
            wait = wall0 + (note.t_host_s - t0) - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            hub.submit(note)
            self.offered += 1
        hub.source_finished()


def athletes_from(recording: Path, n: int, rng: random.Random) -> list[Athlete]:
    rec = open_recording(recording)
    pelvis = rec.sensor("pelvis").sensor_id
    thigh = rec.sensor("thigh").sensor_id
    notes = list(rec.iter_notifications())
    out = []
    for i in range(n):
        aid = f"a{i:02d}"
        # A random phase per athlete: their connection events do not line up.
        shift = rng.uniform(0.0, 0.2)
        ids = {pelvis: f"{aid}-pelvis", thigh: f"{aid}-thigh"}
        out.append(Athlete(aid, ids[pelvis], ids[thigh],
                           [Notification(ids[x.sensor_id], x.t_host_s + shift, x.payload) for x in notes]))
    return out


def runqueue_wait_s() -> float:
    """Seconds this thread has waited for a CPU while runnable (Linux schedstat; 0 elsewhere).

    On a shared machine this is the time other processes took from the hub; it shows how much of
    the measured latency is the machine's load rather than the hub's work.
    """
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/schedstat") as f:
            return int(f.read().split()[1]) * 1e-9
    except (OSError, ValueError, IndexError):
        return 0.0


def percentiles_ms(samples: list[float]) -> dict[str, float]:
    a = np.asarray(samples) * 1e3
    if a.size == 0:
        return {"n": 0}
    return {"n": int(a.size), "p50": round(float(np.percentile(a, 50)), 3), "p90": round(float(np.percentile(a, 90)), 3),
            "p99": round(float(np.percentile(a, 99)), 3), "max": round(float(a.max()), 3)}


async def scenario(label: str, athletes: list[Athlete], clients: int, seconds: float, fast_until_s: float,
                   data_dir: Path, *, deflate: bool = False) -> dict[str, Any]:
    import uvicorn

    settings = ServiceSettings(ble=False, storage=StorageSettings(data_dir=data_dir), client_queue_size=256)
    metrics = LiveMetrics(keep_latency_samples=2_000_000)
    source = BenchSource(athletes, fast_until_s)
    app = create_app(settings, source=source, metrics=metrics)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", ws="websockets",
                                           ws_per_message_deflate=deflate))
    serve = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    hub = app.state.hub
    port = server.servers[0].sockets[0].getsockname()[1]
    total_s = seconds + 4.0 + 60.0  # generous: clients leave when the server stops
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, never waited on in the loop
        ["taskset", "-c", "1", sys.executable, "-c", CLIENT_SCRIPT, f"ws://127.0.0.1:{port}/ws/live", str(clients), str(total_s)],
        stdout=subprocess.PIPE, text=True)
    try:
        while len(hub.broadcaster) < clients:
            await asyncio.sleep(0.05)
        while source.realtime_from is None:
            await asyncio.sleep(0.01)
        await asyncio.sleep(2.0)  # settle into real time
        metrics.latency_samples.clear()  # type: ignore[union-attr]
        n0 = sum(s.packets_received for s in hub.ingest.stats().values())
        offered0 = source.offered
        cpu0 = time.process_time()
        wait0 = runqueue_wait_s()
        t0 = time.perf_counter()
        max_depth = 0
        while time.perf_counter() - t0 < seconds:
            max_depth = max(max_depth, hub.queue_depth)
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        waited = runqueue_wait_s() - wait0
        n1 = sum(s.packets_received for s in hub.ingest.stats().values())
        lat = list(metrics.latency_samples or [])
        dropped = hub.broadcaster.dropped_total
        result = {
            "scenario": label, "sensors": 2 * len(athletes), "clients": clients,
            "offered_notifications_per_s": round((source.offered - offered0) / elapsed, 1),
            "ingested_notifications_per_s": round((n1 - n0) / elapsed, 1),
            "max_queue_depth": max_depth, "cpu_fraction": round(cpu / elapsed, 3),
            "runqueue_wait_fraction": round(waited / elapsed, 3),
            "latency_ms": percentiles_ms(lat), "dropped_clients": dropped,
            "stream_updates_per_s": round(len(lat) / max(clients, 1) / len(athletes) / elapsed, 1),
            "frame_pushes": metrics.frame_pushes._value.get(),
            "loadavg_1min": round(os.getloadavg()[0], 2), "per_message_deflate": deflate,
        }
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serve, 10.0)
        proc.terminate()
        with contextlib.suppress(Exception):
            proc.wait(5)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["latency", "clients", "capacity"], action="append")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured real-time seconds per scenario")
    ap.add_argument("--sensors", default="20,40,50,60", help="capacity: sensor counts at 100 Hz")
    ap.add_argument("--mtu", type=int, default=65, help="simulated ATT MTU (65: 3 samples per notification)")
    ap.add_argument("--deflate", action="store_true",
                    help="negotiate permessage-deflate (uvicorn's default; `sensorhub serve` turns it off)")
    args = ap.parse_args()
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {0})
    only = set(args.only or ["latency", "clients", "capacity"])
    rng = random.Random(1)
    work = Path(tempfile.mkdtemp(prefix="bench_live_"))
    rec200 = simulate(work / "s200.shr", "200,200", 7, args.mtu)
    rec100 = simulate(work / "s100.shr", "100,100", 8, args.mtu)
    fast200 = json.loads(rec200.with_suffix(".meta.json").read_text())["drill_start_s"] - 1.0
    fast100 = json.loads(rec100.with_suffix(".meta.json").read_text())["drill_start_s"] - 1.0
    results = []
    for clients in ([1] if "latency" in only else []) + ([20] if "clients" in only else []):
        r = asyncio.run(scenario("2 sensors @200 Hz", athletes_from(rec200, 1, rng), clients, args.seconds, fast200,
                                 Path(tempfile.mkdtemp(dir=work)), deflate=args.deflate))
        results.append(r)
        print(json.dumps(r), flush=True)
    if "capacity" in only:
        for n in (int(x) for x in args.sensors.split(",")):
            r = asyncio.run(scenario(f"{n} sensors @100 Hz", athletes_from(rec100, n // 2, rng), 1, args.seconds, fast100,
                                     Path(tempfile.mkdtemp(dir=work)), deflate=args.deflate))
            results.append(r)
            print(json.dumps(r), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
