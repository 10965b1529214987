"""Storage throughput: sustained points/s into a real InfluxDB, spool fill and drain rates, SQLite store.

Runs Debian's influxd (1.6) behind the nginx v2-write proxy of ``tests/influx_server.py`` on this
machine (both compete with the benchmark for the same CPU cores) and compares the measured rates with
what a live hub produces: 4 sensors at 100 Hz on 2 athletes (one pelvis + one thigh sensor each).

    python benchmarks/bench_storage.py [--frames 100000]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from influx_server import InfluxServer

from sensorhub.storage import AngleFrame, StorageSettings, Store
from sensorhub.storage.influx import InfluxStore
from sensorhub.storage.sqlite_store import SqliteStore

T0 = 1_793_577_600.0
CHUNK = 100  # frames per write call, like a hub handing over 1 s of one athlete


def make_frames(n: int, rate_hz: float = 50.0) -> list[AngleFrame]:
    """n frames spread over 4 series (2 athletes x 2 sides), each frame in its own downsampling bucket."""
    out = []
    for i in range(n):
        series, k = i % 4, i // 4
        out.append(
            AngleFrame(
                T0 + (k + 0.5) / rate_hz,
                f"athlete{series // 2}",
                f"session{series // 2}",
                ("left", "right")[series % 2],
                "seated_rotation",
                20.0,
                -3.0,
                0.01 * k,
                4.0,
                -1.0,
                2.0,
            )
        )
    return out


def feed(store: Store, frames: list[AngleFrame]) -> float:
    """Hand frames over as fast as the queue takes them; returns seconds spent inside write calls."""
    spent = 0.0
    for start in range(0, len(frames), CHUNK):
        while store.health().buffered_records > 50_000:  # do not overrun the queue bound: measure, not drop
            time.sleep(0.001)
        t = time.perf_counter()
        store.write_frames(frames[start : start + CHUNK])
        spent += time.perf_counter() - t
    return spent


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000, help="angle frames per run (2 points each)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the outage run logs a warning per failed attempt
    root = Path(tempfile.mkdtemp(prefix="sensorhub-bench-"))
    server = InfluxServer(root)
    server.start()
    rows: list[tuple[str, int, float]] = []
    try:
        frames = make_frames(args.frames)
        n_points = 2 * len(frames)

        # 1. sustained stream into InfluxDB
        server.create_database("bench")
        st = StorageSettings(influx_url=server.url, influx_bucket="bench", data_dir=root / "d1")
        store = InfluxStore(st)
        submit_s = 0.0

        def run() -> None:
            nonlocal submit_s
            submit_s = feed(store, frames)
            assert store.flush(600)

        elapsed = timed(run)
        health = store.health()
        store.close()
        assert health.written_points == n_points and health.dropped_records == 0, health
        assert server.count("bench", "hip_angles", "rotation_deg") == len(frames)
        rows.append(("InfluxDB: stream -> database (sustained)", n_points, n_points / elapsed))
        rows.append(("caller: write_frames() cost, frames/s", len(frames), len(frames) / submit_s))

        # 2. outage: stream into the spool, then drain it
        server.create_database("bench_drain")
        st = StorageSettings(
            influx_url=server.url, influx_bucket="bench_drain", data_dir=root / "d2", retry_max_delay_s=0.2
        )
        server.stop_influxd()
        store = InfluxStore(st)
        t_fill = time.perf_counter()
        feed(store, frames)
        while store.health().spool_points < n_points:  # until the last batch is on disk
            time.sleep(0.005)
        rows.append(
            ("spool: stream -> disk while InfluxDB is down", n_points, n_points / (time.perf_counter() - t_fill))
        )
        server.start_influxd()
        drain_s = timed(lambda: store.flush(600))
        health = store.health()
        store.close()
        assert health.spool_points == 0 and server.count("bench_drain", "hip_angles", "rotation_deg") == len(frames)
        rows.append(("spool: drain into InfluxDB after the outage", n_points, n_points / drain_s))

        # 3. embedded SQLite store (frame rows; each row holds hip and pelvis angles)
        sqlite = SqliteStore(StorageSettings(data_dir=root / "d3"))
        elapsed = timed(lambda: (feed(sqlite, frames), sqlite.flush(600)))
        sqlite.close()
        rows.append(("SQLite store: stream -> rows", len(frames), len(frames) / elapsed))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)

    # Demand of a live hub: 2 athletes, each a pelvis + thigh sensor at 100 Hz (4 sensors).
    angle_points = 2 * 50 * 2  # 2 athletes x 50 Hz stored x (hip + pelvis point)
    status_points = 4 * 1  # 4 sensors, one status per second
    raw_points = 4 * 100  # only with store_raw_imu
    print(f"{'what':<48} {'n':>9} {'per second':>12}")
    for what, n, rate in rows:
        print(f"{what:<48} {n:>9} {rate:>12,.0f}")
    print(f"{'demand: 4 sensors @100 Hz, 2 athletes (points/s)':<48} {'':>9} {angle_points + status_points:>12,}")
    print(f"{'demand incl. raw IMU (store_raw_imu)':<48} {'':>9} {angle_points + status_points + raw_points:>12,}")
    sustained = rows[0][2]
    print(
        f"headroom: sustained InfluxDB rate is {sustained / (angle_points + status_points):,.0f}x the demand "
        f"({sustained / (angle_points + status_points + raw_points):,.0f}x with raw IMU)"
    )


if __name__ == "__main__":
    main()
