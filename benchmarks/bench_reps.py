"""The drills stage alone on a long session: batch detection, live per-sample updates, rep scoring, report.

Input is the angle table the motion pipeline estimates from the cached simulated session (written
once to the cache directory as CSV, so that an older checkout of ``sensorhub.drills`` can be timed on
exactly the same rows). Prints CPU times (the machine is shared) and the wall time of the batch, the
batch's split into measuring closed reps and the detector itself, and (in a fresh interpreter) what
importing ``sensorhub.drills`` costs with its compiled kernels and what the first rep-completing
updates cost (a kernel compiled on the first rep would show there).

    python benchmarks/bench_reps.py [--minutes 30] [--no-report]
    # before/after: the same script against another checkout of the package
    git archive <commit> sensorhub | tar -x -C /tmp/base && PYTHONPATH=/tmp/base python benchmarks/bench_reps.py
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _session import CACHE_DIR, load_average, load_samples, session

import sensorhub.drills.reps as reps_module
from sensorhub.drills import AngleTable, RepDetector, detect_reps, summarize


def _angles_csv(minutes: float) -> Path:
    bench = session(minutes)
    path = CACHE_DIR / f"{bench.recording.stem}.angles.csv"
    if not path.exists():
        from sensorhub.motion.pipeline import analyze_imu

        side, pelvis, thigh = load_samples(bench)
        analyze_imu(pelvis, thigh, side).write_csv(path)
    return path


_FRESH = """
import time
c0 = time.process_time()
import sensorhub.drills
c1 = time.process_time()
import numpy as np
from sensorhub.drills import RepDetector
s = np.linspace(0, 1, 80)
ramp = 10 * s**3 - 15 * s**4 + 6 * s**5
one = np.concatenate([np.zeros(150), 30 * ramp, np.full(100, 30.0), 30 * ramp[::-1], np.zeros(60), -35 * ramp,
                      np.full(100, -35.0), -35 * ramp[::-1], np.zeros(150)])
rot = np.concatenate([one, one, one])
det = RepDetector("seated_rotation")
costs = []
for i, v in enumerate(rot.tolist()):
    a = time.process_time()
    if det.update(i / 100.0, v, hip_flexion=90.0):
        costs.append((time.process_time() - a) * 1e3)
print(f"fresh interpreter: import sensorhub.drills {c1 - c0:.3f} s CPU; the updates completing reps 1-3: "
      + ", ".join(f"{c:.2f}" for c in costs) + " ms CPU")
"""


def _split(table: AngleTable, drill: str) -> str:
    """CPU of one batch run split into measuring closed reps (``reps._measure_columns``, when present) and the rest."""
    measure = getattr(reps_module, "_measure_columns", None) or getattr(reps_module, "measure_rep", None)
    if measure is None:
        return "no measuring function found"
    name = measure.__name__
    spent = [0.0]

    def timed(*args: object) -> object:
        c0 = time.process_time()
        out = measure(*args)
        spent[0] += time.process_time() - c0
        return out

    setattr(reps_module, name, timed)
    try:
        best = None
        for _ in range(5):
            spent[0] = 0.0
            c0 = time.process_time()
            detect_reps(table, drill)
            total = time.process_time() - c0
            if best is None or total < best[0]:
                best = (total, spent[0])
    finally:
        setattr(reps_module, name, measure)
    total, meas = best
    return f"batch split (best of 5, CPU): measuring reps {meas * 1e3:.1f} ms, detector {(total - meas) * 1e3:.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--drill", default="seated_rotation")
    ap.add_argument("--no-report", action="store_true", help="skip drawing report.png")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    table = AngleTable.from_csv(_angles_csv(args.minutes))
    n = len(table)
    print(f"drills from {Path(reps_module.__file__).parent}; {n} angle rows | {load_average()}")

    walls, cpus = [], []
    for _ in range(3):
        c0, t0 = time.process_time(), time.perf_counter()
        result = detect_reps(table, args.drill)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    cpu = statistics.median(cpus)
    print(f"batch detect_reps: {len(result.reps)} reps, {len(result.incomplete)} incomplete; median CPU {cpu:.3f} s "
          f"({n / cpu / 1e3:.0f} k rows/s), median wall {statistics.median(walls):.3f} s")

    print(_split(table, args.drill))
    print(subprocess.run([sys.executable, "-c", _FRESH], check=True, capture_output=True, text=True).stdout.strip())

    detector = RepDetector(args.drill)
    cost, scoring = [], []
    columns = (table.t, table.hip_rotation, table.hip_flexion, table.hip_adduction, table.pelvis_tilt, table.pelvis_obliquity,
               table.pelvis_rotation)
    for t, rot, flx, add, tilt, obl, prot in zip(*(c.tolist() for c in columns)):
        c0 = time.thread_time()
        events = detector.update(t, rot, hip_flexion=flx, hip_adduction=add, pelvis_tilt=tilt, pelvis_obliquity=obl,
                                 pelvis_rotation=prot)
        dt = time.thread_time() - c0
        cost.append(dt)
        if events:
            scoring.append(dt)
    ms, rep_ms = np.array(cost) * 1e3, np.array(scoring) * 1e3
    print(f"online update per sample (CPU): p50 {np.percentile(ms, 50) * 1e3:.1f} µs, p99 {np.percentile(ms, 99) * 1e3:.1f} µs; "
          f"the update that scores a rep: p50 {np.median(rep_ms):.2f} ms, max {rep_ms.max():.2f} ms (n={rep_ms.size})")

    if args.no_report:
        return
    from sensorhub.drills.report import render_report

    summary = summarize(result.reps, args.drill, "right", result.incomplete)
    c0, t0 = time.process_time(), time.perf_counter()
    render_report(table, result.reps, args.drill, "right", CACHE_DIR / "bench_reps_report.png", summary=summary,
                  incomplete=result.incomplete)
    print(f"report.png: CPU {time.process_time() - c0:.2f} s, wall {time.perf_counter() - t0:.2f} s | {load_average()}")


if __name__ == "__main__":
    main()
