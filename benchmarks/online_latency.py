"""Per-notification cost of :class:`sensorhub.motion.pipeline.OnlinePipeline`.

Feeds the shared example sessions through the online pipeline in notification-sized blocks
(13 samples per block, as with MTU 247 and 9-axis samples) and prints the p50 / p99 / max wall-clock time and
the p50 / p99 CPU time of the calling thread per ``push`` call, separately for the calibration phase
and the streaming phase. Wall-clock percentiles include scheduling delays when other processes load
the machine; the CPU time shows the pipeline's own cost.

    python benchmarks/online_latency.py [--examples DIR] [--block N]
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from sensorhub.motion.align import slice_samples
from sensorhub.motion.evaluate import load_case
from sensorhub.motion.pipeline import OnlinePipeline


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "examples")
    ap.add_argument("--block", type=int, default=13, help="samples per notification")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    for d in sorted(p for p in args.examples.iterdir() if (p / "truth.csv").exists()):
        case = load_case(d)
        online = OnlinePipeline(case.side)
        # Interleave the two sensors' notifications in time order, as they arrive live.
        events = []
        for name, smp in (("pelvis", case.pelvis), ("thigh", case.thigh)):
            for i0 in range(0, len(smp), args.block):
                i1 = min(len(smp), i0 + args.block)
                events.append((float(smp.t_s[i1 - 1]), name, i0, i1))
        events.sort()
        cost: dict[str, list[float]] = {"calibrating": [], "streaming": []}
        cpu: dict[str, list[float]] = {"calibrating": [], "streaming": []}
        for _, name, i0, i1 in events:
            smp = case.pelvis if name == "pelvis" else case.thigh
            block = slice_samples(smp, i0, i1)
            state = "streaming" if online.state == "streaming" else "calibrating"
            t0, c0 = time.perf_counter(), time.thread_time()
            online.push(name, block)
            cost[state].append(time.perf_counter() - t0)
            cpu[state].append(time.thread_time() - c0)
        for state, c in cost.items():
            if c:
                ms = np.array(c) * 1e3
                cms = np.array(cpu[state]) * 1e3
                print(f"{d.name:22s} {state:12s} n={len(ms):5d}  wall p50 {np.percentile(ms, 50):.3f} p99 {np.percentile(ms, 99):.3f} "
                      f"max {ms.max():.3f} ms | cpu p50 {np.percentile(cms, 50):.3f} p99 {np.percentile(cms, 99):.3f} ms")


if __name__ == "__main__":
    main()
