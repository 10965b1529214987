"""Throughput of the recording writer and reader (not a test; run by hand).

    python benchmarks/bench_recording.py [n_notifications]

Writes n notifications of 2 sensors with 120-byte payloads (a typical batched IMU packet), then
scans the file and iterates all notifications, and prints records per second for each step.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from sensorhub.notification import Notification
from sensorhub.recording import RecordingWriter, open_recording


def main(n: int = 200_000) -> None:
    payload = bytes(range(120))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.shr"
        notes = [Notification("PT"[i % 2], i * 0.0025, payload) for i in range(n)]
        t0 = time.perf_counter()
        with RecordingWriter(path, {"source": "bench"}) as writer:
            writer.add_sensor("P", segment="pelvis")
            writer.add_sensor("T", segment="thigh", side="right")
            for note in notes:
                writer.write_notification(note)
        t_write = time.perf_counter() - t0
        t0 = time.perf_counter()
        rec = open_recording(path)
        t_scan = time.perf_counter() - t0
        t0 = time.perf_counter()
        count = sum(1 for _ in rec.iter_notifications())
        t_iter = time.perf_counter() - t0
        assert count == n
        size_mb = path.stat().st_size / 1e6
    print(f"{n} notifications, {size_mb:.1f} MB ({size_mb * 1e6 / n - len(payload):.0f} bytes overhead each)")
    print(f"write: {n / t_write / 1e3:8.0f} k notifications/s")
    print(f"scan (open_recording): {n / t_scan / 1e3:8.0f} k records/s")
    print(f"iter_notifications: {n / t_iter / 1e3:8.0f} k notifications/s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
