"""Speed of the IMU CSV reader and writer (not a test; run by hand).

    python benchmarks/bench_csv_import.py [n_rows]

Writes n rows of 9-axis samples, reads them back (fast numpy path), then reads a copy with an error
on the last line (fast path fails, the careful per-line pass locates the error), and prints rows/s.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sensorhub.csv_import import CsvValueError, read_imu_csv, write_imu_csv
from sensorhub.samples import ImuSamples


def main(n: int = 1_000_000) -> None:
    rng = np.random.default_rng(0)
    samples = ImuSamples(
        t_s=np.arange(n) / 100.0,
        acc_m_s2=rng.normal([0, 0, 9.81], 1, (n, 3)),
        gyr_rad_s=rng.normal(0, 1, (n, 3)),
        mag_uT=rng.normal([20, 5, -40], 2, (n, 3)),
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "imu.csv"
        t0 = time.perf_counter()
        write_imu_csv(path, samples)
        t_write = time.perf_counter() - t0
        t0 = time.perf_counter()
        read_imu_csv(path)
        t_read = time.perf_counter() - t0
        with open(path, "a") as f:
            f.write(f"{n},0,0,9.8,0,0,nan,20,5,-40\n")
        t0 = time.perf_counter()
        try:
            read_imu_csv(path)
        except CsvValueError as exc:
            located = exc.line
        t_locate = time.perf_counter() - t0
        size_mb = path.stat().st_size / 1e6
    print(f"{n} rows, {size_mb:.0f} MB")
    print(f"write: {n / t_write / 1e3:8.0f} k rows/s")
    print(f"read (numpy path): {n / t_read / 1e3:8.0f} k rows/s")
    print(f"read with an error on line {located} (careful pass): {n / t_locate / 1e3:8.0f} k rows/s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
