"""Batch throughput of the core pipeline: decoded IMU samples of both sensors in, angles and scored reps out.

"Samples" are IMU samples of both sensors entering the pipeline (pelvis + thigh, each one
accelerometer + gyroscope + magnetometer triple): a 30-minute session at 100 Hz is 2 x 180,000 of
them. Timed end to end per run: :func:`sensorhub.motion.pipeline.analyze_imu` (alignment, calibration,
fusion, heading, angles) + rep detection and scoring + the session summary. Not timed: reading the
recording and ingest (they are part of ``bench_analyze.py``).

The same stages are run with VQF (the batch default, causal since the fourth round), with VQF's
offline variant (``vqf-offline``: ``offline=True``, the default before) and with ``ahrs`` Madgwick
(``method="madgwick"``).
Both wall time and the process's CPU time are printed: other engineers share the machine's two
cores, and CPU time is the better estimate of what one core does when the machine is loaded.
The motion column is split into the orientation filter's own runs (``filter``: the time inside the
filter backend's batch update, e.g. VQF's ``updateBatch``) and everything else of the motion stage
(``rest``). The first run of a process also pays for first-touching fresh memory (page faults),
which ``sensorhub analyze`` pays once; later runs reuse freed memory.

    python benchmarks/bench_pipeline.py [--minutes 30] [--methods vqf,vqf-offline,madgwick] [--repeat 3] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import pstats
import statistics
import time

from _session import load_average, load_samples, session

from sensorhub.analysis import to_table
from sensorhub.drills import detect_reps, summarize
from sensorhub.motion import fusion
from sensorhub.motion.pipeline import analyze_imu

#: CPU seconds spent inside the orientation filters' batch updates since the last reset.
_FILTER_CPU_S = [0.0]


def _time_filter_backends() -> None:
    """Count the CPU time of every filter backend's ``update`` (VQF's ``updateBatch``, the ahrs loop)."""
    for backend in (fusion._VqfBackend, fusion._AhrsBackend):
        update = backend.update

        def timed_update(self: object, *args: object, _update: object = update) -> object:
            c0 = time.process_time()
            try:
                return _update(self, *args)  # type: ignore[operator]
            finally:
                _FILTER_CPU_S[0] += time.process_time() - c0

        backend.update = timed_update  # type: ignore[method-assign,assignment]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="length of the simulated session")
    ap.add_argument("--methods", default="vqf,vqf-offline,madgwick", help="orientation filters to compare")
    ap.add_argument("--repeat", type=int, default=3, help="runs per method (Madgwick: 1)")
    ap.add_argument("--profile", action="store_true", help="print the top functions of one VQF run (cProfile)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    _time_filter_backends()

    bench = session(args.minutes)
    side, pelvis, thigh = load_samples(bench)
    n = len(pelvis) + len(thigh)
    print(f"session {bench.recording.name}: {bench.duration_s / 60:.1f} min, {bench.reps} reps, "
          f"{len(pelvis)} pelvis + {len(thigh)} thigh = {n} IMU samples")
    for method in args.methods.split(","):
        runs, cpu_runs = [], []
        filt, offline = ("vqf", True) if method == "vqf-offline" else (method, None)
        for _ in range(args.repeat if filt == "vqf" else 1):
            _FILTER_CPU_S[0] = 0.0
            c0, t0 = time.process_time(), time.perf_counter()
            angles = analyze_imu(pelvis, thigh, side, method=filt, offline=offline)
            c1 = time.process_time()
            detection = detect_reps(to_table(angles), bench.drill)
            c2 = time.process_time()
            summarize(detection.reps, bench.drill, side, detection.incomplete)
            c3, t3 = time.process_time(), time.perf_counter()
            total, cpu = t3 - t0, c3 - c0
            runs.append(total)
            cpu_runs.append(cpu)
            print(f"  {method:11s} wall {total:6.3f} s = {n / total / 1e6:.3f} M samples/s, CPU {cpu:6.3f} s = "
                  f"{n / cpu / 1e6:.3f} M samples/s | CPU s: motion {c1 - c0:.3f} (filter {_FILTER_CPU_S[0]:.3f}, "
                  f"rest {c1 - c0 - _FILTER_CPU_S[0]:.3f}), reps {c2 - c1:.3f} "
                  f"({len(angles) / (c2 - c1) / 1e3:.0f} k rows/s, {len(detection.reps)} reps, {len(detection.incomplete)} incomplete), "
                  f"summary {(c3 - c2) * 1e3:.1f} ms | {load_average()}")
        med, cpu_med = statistics.median(runs), statistics.median(cpu_runs)
        print(f"{method}: median wall {med:.3f} s ({n / med / 1e6:.3f} M samples/s), median CPU {cpu_med:.3f} s "
              f"({n / cpu_med / 1e6:.3f} M samples/s) over {len(runs)} run(s)")
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        angles = analyze_imu(pelvis, thigh, side)
        detect_reps(to_table(angles), bench.drill)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
