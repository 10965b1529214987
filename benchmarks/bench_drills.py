"""Throughput of the rep detector (samples per second), batch and sample-by-sample.

Run: python benchmarks/bench_drills.py [path/to/truth.csv]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from sensorhub.drills.reps import RepDetector, detect_reps
from sensorhub.drills.table import AngleTable

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "examples" / "seated_right_9axis" / "truth.csv"


def main() -> None:
    table = AngleTable.from_csv(sys.argv[1] if len(sys.argv) > 1 else DEFAULT)
    n = len(table)
    t0 = time.perf_counter()
    for _ in range(5):
        result = detect_reps(table, "seated_rotation")
    batch_s = (time.perf_counter() - t0) / 5
    det = RepDetector("seated_rotation")
    worst = 0.0
    for i in range(n):
        t1 = time.perf_counter()
        det.update(float(table.t[i]), float(table.hip_rotation[i]), hip_flexion=float(table.hip_flexion[i]),
                   hip_adduction=float(table.hip_adduction[i]),
                   pelvis_tilt=float(table.pelvis_tilt[i]), pelvis_obliquity=float(table.pelvis_obliquity[i]),
                   pelvis_rotation=float(table.pelvis_rotation[i]))
        worst = max(worst, time.perf_counter() - t1)
    print(f"{n} samples, {len(result.reps)} reps: batch {batch_s * 1e3:.1f} ms ({n / batch_s / 1e3:.0f} k samples/s); "
          f"online worst single update {worst * 1e3:.2f} ms (includes measuring a finished rep)")


if __name__ == "__main__":
    main()
