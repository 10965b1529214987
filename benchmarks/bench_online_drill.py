"""Live per-notification CPU cost of ``OnlinePipeline.push`` for a chosen drill and sensor kind.

``bench_live_block.py`` times the seated 9-axis session; the live standing rest-drift fit
(``_LiveRestDrift``) and the magnetometer-free path are exercised by a standing 6-axis session,
which this script simulates (cached by ``_session.session``) and replays in ``--block``-sample
notifications per sensor, both sensors interleaved in time. Printed: p50 / p99 / max of the calling
thread's CPU time per push while streaming, and the load average.

    python benchmarks/bench_online_drill.py [--drill standing_rotation] [--no-mag] [--minutes 10] [--block 6]
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
from _session import load_average, load_samples, session

from sensorhub.motion.pipeline import OnlinePipeline
from sensorhub.samples import ImuSamples


def _slice(s: ImuSamples, i0: int, i1: int) -> ImuSamples:
    return ImuSamples(s.t_s[i0:i1], s.acc_m_s2[i0:i1], s.gyr_rad_s[i0:i1], None if s.mag_uT is None else s.mag_uT[i0:i1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--drill", default="standing_rotation")
    ap.add_argument("--no-mag", action="store_true", help="6-axis sensors")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--block", type=int, default=6, help="samples per notification and sensor")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    bench = session(args.minutes, drill=args.drill, no_mag=args.no_mag)
    side, pelvis, thigh = load_samples(bench)
    blocks: list[tuple[float, str, ImuSamples]] = []
    for name, smp in (("pelvis", pelvis), ("thigh", thigh)):
        for i0 in range(0, len(smp), args.block):
            i1 = min(len(smp), i0 + args.block)
            blocks.append((float(smp.t_s[i1 - 1]), name, _slice(smp, i0, i1)))
    blocks.sort(key=lambda b: (b[0], b[1]))
    online = OnlinePipeline(side)
    cpu = []
    for _, name, block in blocks:
        streaming = online.state == "streaming"
        c0 = time.thread_time()
        online.push(name, block)
        if streaming:
            cpu.append(time.thread_time() - c0)
    ms = np.array(cpu) * 1e3
    print(f"{args.drill} {'6-axis' if args.no_mag else '9-axis'} {args.minutes:g} min, {len(blocks)} notifications of "
          f"{args.block} samples | {load_average()}")
    print(f"streaming push, CPU  n={ms.size}  p50 {np.percentile(ms, 50):.3f} ms  p99 {np.percentile(ms, 99):.3f} ms  max {ms.max():.3f} ms")
    print("notes:", "; ".join(online.diagnostics.notes) or "-")


if __name__ == "__main__":
    main()
