"""Load and soak run of the live service: many replayed sensors, many browsers, real InfluxDB, minutes.

What runs:

* the service (``create_app`` under uvicorn) in its own process, fed by ``--athletes`` replayed
  athletes (pelvis + thigh each, so 2 x athletes sensors), each looping one of the loss-free
  recordings of ``replay_data/`` under its own athlete and sensor ids, with a random start offset
  so their connection events do not line up (:class:`SoakSource`: first calibration fast, then
  real time); every pass is a new session;
* storage: a real ``influxd`` (Debian's 1.6) behind nginx's v2-write mapping
  (``tests/influx_server.py``), so stored points can be counted with InfluxQL;
* ``--clients`` WebSocket clients on ``/ws/live`` in a separate process, counting messages and
  noting any close by the server (a client dropped as too slow).

What is measured (sampled every ``--sample-s``):

* service RSS over time (``/proc/<pid>/status``) and its least-squares slope after the warm-up,
* service CPU (user + system of its process) and the machine's load average and CPU use,
* the pipeline latency histogram from ``/metrics`` (the notification that completed the frame shown
  entering the hub -> the message carrying it sent on a WebSocket, once per client), taken as the difference between the end and the end of the warm-up, with p50 and
  p99 interpolated inside the histogram's buckets,
* storage loss: after the service is stopped cleanly and the store has delivered everything, every
  stored session series must have one point in each 20-ms bucket from its first to its last point
  (``angle_rate_hz`` = 50); missing buckets are lost points. The store's own ``dropped_records``
  and the written/stored point counts are reported too,
* WebSocket clients dropped (``sensorhub_ws_dropped_clients`` and the clients' own view).

    python benchmarks/soak.py                      # 10 athletes (20 sensors), 50 clients, 600 s
    python benchmarks/soak.py --duration-s 20      # the short version the default test suite runs
    python benchmarks/soak.py --json out.json      # also write the full result (time series included)

Nothing is asserted here: ``tests/test_service_faults_soak.py`` asserts bounded behaviour of a short
run, and the numbers of the full run go to ``docs/reliability.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import dataclasses
import json
import logging
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
REPLAY = REPO / "replay_data"
#: Loss-free recordings (the storage check needs a frame every 10 ms): one per athlete, in turn.
RECORDINGS = (
    "seated_right_9axis.shr",
    "standing_right_9axis.shr",
    "seated_left_6axis.shr",
    "standing_left_6axis.shr",
    "seated_left_9axis_60_200hz.shr",
    "seated_right_9axis_magdist30.shr",
)
STORED_RATE_HZ = 50.0
LATENCY_METRIC = "sensorhub_pipeline_latency_seconds"

log = logging.getLogger("soak")


# == the service process ============================================================================


@dataclass
class _Athlete:
    id: str
    plan: Any
    """The recording's SessionPlan under this athlete's id."""
    sensors: list[Any]
    """SensorInfo of its two sensors under this athlete's ids."""
    notes: list[Any]
    """The recording's notifications under this athlete's sensor ids."""
    drill_start_s: float
    """Receive time at which the drill begins (after the calibration protocol)."""
    delay_s: float


class SoakSource:
    """``athletes`` looping replays under their own ids, started at random offsets within ``stagger_s``.

    Each athlete's first calibration protocol is fed as fast as the hub takes it (so angles flow
    within seconds, as in ``bench_live.py``); from the drill on, and in every later pass, the
    recording is paced in real time by its receive times. Every pass is a new session, and receive
    times keep increasing across passes (the sensors look rebooted to ingest), as with
    ``sensorhub serve --replay FILE --loop``.
    """

    name = "replay"

    def __init__(self, athletes: int, stagger_s: float = 5.0, seed: int = 1, loop_gap_s: float = 1.0,
                 stage_trace: Any = None) -> None:
        from sensorhub.notification import Notification
        from sensorhub.recording import open_recording
        from sensorhub.service.sources import ReplayNotificationSource

        rng = random.Random(seed)
        self.loop_gap_s = loop_gap_s
        self.stage_trace = stage_trace
        """A :class:`sensorhub.service.stages.StageTrace` to attach to the hub (``--stages``)."""
        self.started_s = math.nan
        self.athletes: list[_Athlete] = []
        cache: dict[str, tuple[Any, list[Any], float]] = {}
        for i in range(athletes):
            name = RECORDINGS[i % len(RECORDINGS)]
            if name not in cache:
                rec = open_recording(REPLAY / name)
                meta = json.loads((REPLAY / name).with_suffix(".meta.json").read_text())
                cache[name] = (ReplayNotificationSource(rec), list(rec.iter_notifications()), float(meta["drill_start_s"]))
            replay, notes, drill_start_s = cache[name]
            aid = f"soak{i:02d}"
            ids = {info.sensor_id: f"{aid}-{info.sensor_id}" for info in replay.sensors()}
            self.athletes.append(_Athlete(
                aid,
                dataclasses.replace(replay.plan(), athlete_id=aid, athlete_name=aid),
                [dataclasses.replace(info, sensor_id=ids[info.sensor_id], athlete=aid) for info in replay.sensors()],
                [Notification(ids[n.sensor_id], n.t_host_s, n.payload) for n in notes],
                drill_start_s,
                rng.uniform(0.0, stagger_s),
            ))

    async def _run_one(self, hub: Any, a: _Athlete) -> None:
        from sensorhub.notification import Notification

        await asyncio.sleep(a.delay_s)
        for info in a.sensors:
            hub.sensor_found(info)
            hub.sensor_event(info.sensor_id, "connected")
        first, last = a.notes[0].t_host_s, a.notes[-1].t_host_s
        shift_s = 0.0
        fast_until_s = a.drill_start_s - 1.0
        passes = 0
        while True:
            hub.plan_session(a.plan)
            wall0: float | None = None
            for k, note in enumerate(a.notes):
                if passes == 0 and note.t_host_s < fast_until_s:
                    if k % 100 == 0:
                        await asyncio.sleep(0.005)  # let the consumer keep pace (bounded backlog)
                else:
                    if wall0 is None:
                        wall0, t0 = time.perf_counter(), note.t_host_s
                    wait_s = wall0 + (note.t_host_s - t0) - time.perf_counter()
                    if wait_s > 0:
                        await asyncio.sleep(wait_s)
                hub.submit(note if shift_s == 0.0 else Notification(note.sensor_id, note.t_host_s + shift_s, note.payload))
            passes += 1
            shift_s += (last - first) + self.loop_gap_s
            await asyncio.sleep(self.loop_gap_s)

    async def run(self, hub: Any) -> None:
        self.started_s = time.perf_counter()
        if self.stage_trace is not None:
            hub.trace_stages(self.stage_trace)
        try:
            await asyncio.gather(*(self._run_one(hub, a) for a in self.athletes))
        finally:
            hub.source_finished()


def serve(args: argparse.Namespace) -> int:
    """The service process: the app on ``args.port`` with a :class:`SoakSource` and InfluxDB storage."""
    import uvicorn

    from sensorhub.service import ServiceSettings, create_app
    from sensorhub.storage import StorageSettings, open_store

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    storage = StorageSettings(data_dir=Path(args.data_dir), influx_url=args.influx_url, influx_bucket=args.bucket)
    settings = ServiceSettings(ble=False, storage=storage, port=args.port)
    store = open_store(storage)
    trace = None
    if args.stages_out:
        from sensorhub.service.stages import StageTrace

        trace = StageTrace()
        trace.watch_gc()
        _trace_storage_batches(store, trace)
    source = SoakSource(args.athletes, stage_trace=trace)
    app = create_app(settings, source=source, store=store)
    # The WebSocket settings of `sensorhub serve` (no permessage-deflate).
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", ws="websockets",
                ws_ping_interval=20.0, ws_ping_timeout=20.0, ws_per_message_deflate=False)
    if trace is not None:
        trace.unwatch_gc()
        summary = trace.summary(since_s=source.started_s + args.warmup_s)
        cpu = trace.intervals.pop("storage_cpu", [])
        summary["storage_thread_cpu_s"] = round(sum(b - a for a, b in cpu), 3)
        Path(args.stages_out).write_text(json.dumps(summary, indent=1))
    # The app's lifespan has ended the sessions; deliver everything, then report what the store counted.
    delivered = store.flush(60.0)
    health = store.health()
    store.close()
    counts = {"written_points": health.written_points, "dropped_records": health.dropped_records,
              "spool_points": health.spool_points, "delivered": delivered}
    print("SOAK-STORE " + json.dumps(counts), file=sys.stderr, flush=True)
    return 0


def _trace_storage_batches(store: Any, trace: Any) -> None:
    """Note every batch the storage writer thread handles (wall interval, and its CPU time)."""
    sink = getattr(store, "_sink", None)
    if sink is None:
        return
    handle = sink.handle

    def timed(batch: Any) -> None:
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            handle(batch)
        finally:
            trace.note_interval("storage", t0, time.perf_counter())
            trace.note_interval("storage_cpu", c0, time.thread_time())

    sink.handle = timed


# == browsers ===========================================================================================

CLIENT_SCRIPT = r"""
import asyncio, json, sys, time
import websockets

async def one(url, stats, i, stop_at):
    s = stats[i] = {"messages": 0, "frames": 0, "closed_by_server": None}
    try:
        async with websockets.connect(url, max_size=None, open_timeout=30) as ws:
            while time.monotonic() < stop_at:
                try:
                    text = await asyncio.wait_for(ws.recv(), 0.5)
                except asyncio.TimeoutError:
                    continue
                s["messages"] += 1
                if text.startswith('{"type":"frame"'):
                    s["frames"] += 1
    except websockets.ConnectionClosed as exc:
        s["closed_by_server"] = f"{exc.rcvd.code if exc.rcvd else None} {exc.rcvd.reason if exc.rcvd else ''}"
    except OSError as exc:
        s["closed_by_server"] = f"error {exc}"

async def main(url, n, seconds):
    stats = {}
    stop_at = time.monotonic() + seconds
    await asyncio.gather(*(one(url, stats, i, stop_at) for i in range(n)))
    print(json.dumps(stats))

asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
"""


# == sampling ================================================================================================


def _get(url: str, timeout_s: float = 10.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return bytes(response.read())


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return math.nan


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def runqueue_wait_s(pid: int) -> float:
    """Seconds the process's main thread waited for a CPU while runnable (Linux schedstat): the
    machine's load as the service felt it."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[1]) * 1e-9
    except (OSError, ValueError, IndexError):
        return math.nan


def machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot (``/proc/stat``)."""
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = values[3] + values[4]
    return (sum(values) - idle) / tick, sum(values) / tick


def histogram(metrics_text: str, name: str = LATENCY_METRIC) -> list[tuple[float, float]]:
    """Cumulative (upper bound s, count) pairs of a Prometheus histogram, +Inf last."""
    out = []
    prefix = name + "_bucket{"
    for line in metrics_text.splitlines():
        if line.startswith(prefix):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out.append((math.inf if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    return sorted(out)


def metric(metrics_text: str, name: str) -> float:
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith(name) and line[len(name)] in " {":
            total += float(line.rsplit(" ", 1)[1])
    return total


def quantile_ms(before: list[tuple[float, float]], after: list[tuple[float, float]], q: float) -> float:
    """Quantile of the observations between two histogram snapshots, linear inside its bucket (ms)."""
    base = dict(before)
    bounds = [b for b, _ in after]
    counts = [c - base.get(b, 0.0) for b, c in after]
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return math.nan
    rank = q * total
    i = bisect.bisect_left(counts, rank)
    lo_bound = bounds[i - 1] if i > 0 else 0.0
    lo_count = counts[i - 1] if i > 0 else 0.0
    hi_bound = bounds[i]
    if math.isinf(hi_bound):
        return lo_bound * 1e3  # beyond the last finite bucket: report its bound (a lower limit)
    frac = (rank - lo_count) / max(counts[i] - lo_count, 1e-12)
    return (lo_bound + frac * (hi_bound - lo_bound)) * 1e3


def slope_per_min(ts_s: list[float], ys: list[float]) -> float:
    """Least-squares slope of ``ys`` over ``ts_s``, per minute."""
    n = len(ts_s)
    if n < 2:
        return math.nan
    mt, my = sum(ts_s) / n, sum(ys) / n
    var = sum((t - mt) ** 2 for t in ts_s)
    return 60.0 * sum((t - mt) * (y - my) for t, y in zip(ts_s, ys, strict=True)) / var if var else math.nan


@dataclass
class Sample:
    t_s: float
    rss_mb: float
    cpu_fraction: float
    """Service CPU since the previous sample, in cores."""
    machine_busy_fraction: float
    """Whole machine CPU use since the previous sample, 0..1 of all cores."""
    loadavg_1min: float
    storage_state: str
    spool_points: int
    buffered_records: int
    clients: int


@dataclass
class SoakResult:
    duration_s: float
    athletes: int
    sensors: int
    clients: int
    warmup_s: float
    rss_mb_start: float = math.nan
    rss_mb_end: float = math.nan
    rss_mb_max: float = math.nan
    rss_slope_mb_per_min: float = math.nan
    """Slope of RSS after the warm-up."""
    service_cpu_cores: float = math.nan
    service_runqueue_wait_fraction: float = math.nan
    """Share of the time the service's event-loop thread was runnable but waiting for a CPU."""
    machine_busy_fraction: float = math.nan
    loadavg_1min_start: float = math.nan
    loadavg_1min_end: float = math.nan
    latency_p50_ms: float = math.nan
    latency_p99_ms: float = math.nan
    latency_observations: int = 0
    latency_over_20ms_fraction: float = math.nan
    notifications: int = 0
    frame_pushes: int = 0
    sessions_stored: int = 0
    stored_points: int = 0
    expected_points: int = 0
    lost_points: int = 0
    duplicate_points: int = 0
    store_written_points: int = 0
    store_dropped_records: int = 0
    storage_states_seen: list[str] = field(default_factory=list)
    max_spool_points: int = 0
    ws_dropped_clients: int = 0
    clients_closed_by_server: int = 0
    min_frames_per_client_per_s: float = math.nan
    service_exit_code: int | None = None
    samples: list[Sample] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("samples")
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}


# == the run ====================================================================================================


def count_stored(server: Any, bucket: str) -> tuple[int, int, int, int]:
    """(sessions, stored points, expected points, duplicates) of hip and pelvis angles in ``bucket``.

    Expected: one point per 20-ms bucket from the first to the last point of each session series.
    """
    sessions = stored = expected = duplicates = 0
    for measurement in ("hip_angles", "pelvis_angles"):
        for series in server.query(f'SELECT "rotation_deg" FROM "{measurement}" GROUP BY "session"', bucket):
            buckets = [math.floor(int(v[0]) / 1e9 * STORED_RATE_HZ) for v in series["values"]]
            stored += len(buckets)
            expected += buckets[-1] - buckets[0] + 1
            duplicates += len(buckets) - len(set(buckets))
            sessions += measurement == "hip_angles"
    return sessions, stored, expected, duplicates


def run_soak(duration_s: float, *, athletes: int = 10, clients: int = 50, sample_s: float = 5.0,
             warmup_s: float | None = None, work_dir: Path | None = None,
             stages_out: Path | None = None) -> SoakResult:
    """Run the soak (see the module docstring) and return its result. Needs influxd and nginx.

    ``stages_out``: the service cuts every latency observation into its stages
    (:mod:`sensorhub.service.stages`) and writes the summary there when it stops.
    """
    sys.path.insert(0, str(REPO / "tests"))
    from influx_server import InfluxServer, free_port

    warmup_s = min(30.0, duration_s / 4) if warmup_s is None else warmup_s
    work = Path(tempfile.mkdtemp(prefix="soak_", dir=work_dir))
    (work / "influx").mkdir()
    server = InfluxServer(work / "influx")
    server.start()
    bucket = "soak"
    server.create_database(bucket)
    result = SoakResult(duration_s, athletes, 2 * athletes, clients, warmup_s)
    port = free_port()
    service = subprocess.Popen(
        [sys.executable, __file__, "serve", "--port", str(port), "--data-dir", str(work / "data"),
         "--influx-url", server.url, "--bucket", bucket, "--athletes", str(athletes),
         "--warmup-s", str(warmup_s), *(["--stages-out", str(stages_out)] if stages_out else [])],
        stderr=open(work / "service.log", "wb"),  # noqa: SIM115 - lives as long as the process
    )
    base = f"http://127.0.0.1:{port}"
    client_proc: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(base + "/api/health", 2)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if service.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"service did not start: {(work / 'service.log').read_text()[-2000:]}") from None
                time.sleep(0.2)
        client_proc = subprocess.Popen(
            [sys.executable, "-c", CLIENT_SCRIPT, f"ws://127.0.0.1:{port}/ws/live", str(clients), str(duration_s)],
            stdout=subprocess.PIPE, text=True)
        t0 = time.monotonic()
        result.loadavg_1min_start = os.getloadavg()[0]
        cpu0, (busy0, total0) = cpu_s(service.pid), machine_busy_s()
        prev_cpu, prev_busy, prev_total, prev_t = cpu0, busy0, total0, t0
        hist_warm: list[tuple[float, float]] | None = None
        states: set[str] = set()
        while True:
            now = time.monotonic()
            elapsed = now - t0
            if elapsed >= duration_s:
                break
            time.sleep(min(sample_s, duration_s - elapsed))
            now = time.monotonic()
            health = json.loads(_get(base + "/api/health"))
            storage = health["storage"]
            c, (b, tot) = cpu_s(service.pid), machine_busy_s()
            result.samples.append(Sample(
                round(now - t0, 2), rss_mb(service.pid), (c - prev_cpu) / (now - prev_t),
                (b - prev_busy) / max(tot - prev_total, 1e-9), os.getloadavg()[0], storage["state"],
                int(storage["spool_points"]), int(storage["buffered_records"]), int(health["clients"])))
            prev_cpu, prev_busy, prev_total, prev_t = c, b, tot, now
            states.add(storage["state"])
            if hist_warm is None and now - t0 >= warmup_s:
                hist_warm = histogram(_get(base + "/metrics").decode())
                cpu_warm, (busy_warm, total_warm), t_warm = c, (b, tot), now
                rq_warm = runqueue_wait_s(service.pid)
        text = _get(base + "/metrics").decode()
        t_end = time.monotonic()
        c_end, (busy_end, total_end) = cpu_s(service.pid), machine_busy_s()
        rq_end = runqueue_wait_s(service.pid)
        if hist_warm is None:
            hist_warm, cpu_warm, busy_warm, total_warm, t_warm = [], cpu0, busy0, total0, t0
            rq_warm = math.nan
        hist_end = histogram(text)
        result.latency_p50_ms = quantile_ms(hist_warm, hist_end, 0.50)
        result.latency_p99_ms = quantile_ms(hist_warm, hist_end, 0.99)
        base_counts = dict(hist_warm)
        n_obs = hist_end[-1][1] - base_counts.get(math.inf, 0.0) if hist_end else 0.0
        under_20 = dict(hist_end).get(0.02, 0.0) - base_counts.get(0.02, 0.0)
        result.latency_observations = int(n_obs)
        result.latency_over_20ms_fraction = 1.0 - under_20 / n_obs if n_obs else math.nan
        result.service_cpu_cores = (c_end - cpu_warm) / (t_end - t_warm)
        result.service_runqueue_wait_fraction = (rq_end - rq_warm) / (t_end - t_warm)
        result.machine_busy_fraction = (busy_end - busy_warm) / max(total_end - total_warm, 1e-9)
        result.loadavg_1min_end = os.getloadavg()[0]
        result.notifications = int(metric(text, "sensorhub_notifications_total"))
        result.frame_pushes = int(metric(text, "sensorhub_ws_frame_pushes_total"))
        result.ws_dropped_clients = int(metric(text, "sensorhub_ws_dropped_clients_total"))
        result.storage_states_seen = sorted(states)
        result.max_spool_points = max((s.spool_points for s in result.samples), default=0)
        after_warm = [s for s in result.samples if s.t_s >= warmup_s] or result.samples
        if result.samples:
            result.rss_mb_start = after_warm[0].rss_mb
            result.rss_mb_end = result.samples[-1].rss_mb
            result.rss_mb_max = max(s.rss_mb for s in result.samples)
            result.rss_slope_mb_per_min = slope_per_min([s.t_s for s in after_warm], [s.rss_mb for s in after_warm])
        out, _ = client_proc.communicate(timeout=60)
        stats = json.loads(out) if out.strip() else {}
        result.clients_closed_by_server = sum(1 for s in stats.values() if s["closed_by_server"])
        frames = [s["frames"] for s in stats.values()]
        result.min_frames_per_client_per_s = min(frames) / duration_s if frames and len(frames) == clients else 0.0
        # Clean stop: sessions end, the store writes what it holds (nothing should be spooled).
        service.send_signal(signal.SIGINT)
        result.service_exit_code = service.wait(60)
        store = _final_store_health(work / "service.log")
        result.store_written_points = store.get("written_points", 0)
        result.store_dropped_records = store.get("dropped_records", 0)
        result.sessions_stored, result.stored_points, result.expected_points, result.duplicate_points = count_stored(
            server, bucket)
        result.lost_points = result.expected_points - (result.stored_points - result.duplicate_points)
    finally:
        if client_proc is not None and client_proc.poll() is None:
            client_proc.kill()
        if service.poll() is None:
            service.kill()
            service.wait(10)
        server.stop()
    return result


def _final_store_health(log_path: Path) -> dict[str, int]:
    """The store's last health line, written by the service process on exit (see :func:`serve`)."""
    for line in reversed(log_path.read_text(errors="replace").splitlines()):
        if line.startswith("SOAK-STORE "):
            return dict(json.loads(line[len("SOAK-STORE "):]))
    return {}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command")
    s = sub.add_parser("serve", help="(internal) the service process")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--data-dir", required=True)
    s.add_argument("--influx-url", required=True)
    s.add_argument("--bucket", required=True)
    s.add_argument("--athletes", type=int, required=True)
    s.add_argument("--warmup-s", type=float, default=30.0)
    s.add_argument("--stages-out", help="write the latency stage summary here on exit")
    ap.add_argument("--duration-s", type=float, default=600.0, help="length of the run (default 600 s)")
    ap.add_argument("--athletes", type=int, default=10, help="replayed athletes, 2 sensors each (default 10)")
    ap.add_argument("--clients", type=int, default=50, help="WebSocket clients (default 50)")
    ap.add_argument("--sample-s", type=float, default=5.0, help="sampling interval of RSS, CPU, storage")
    ap.add_argument("--json", type=Path, help="write the full result (with the time series) here")
    ap.add_argument("--stages", type=Path,
                    help="also cut every latency observation into its stages (sensorhub.service.stages) and "
                         "write their summary here (costs a few microseconds per observation)")
    args = ap.parse_args(argv)
    if args.command == "serve":
        return serve(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = run_soak(args.duration_s, athletes=args.athletes, clients=args.clients, sample_s=args.sample_s,
                      stages_out=args.stages)
    print(json.dumps(result.summary(), indent=1))
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(result), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
