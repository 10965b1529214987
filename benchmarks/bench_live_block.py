"""Live per-notification cost: ``OnlinePipeline.push`` + ``RepDetector.update`` for each block of samples.

A simulated session is replayed as it arrives live: each sensor's samples cut into notification-sized
blocks (``--block`` samples), the two sensors' blocks interleaved in time order. Per block the timer
covers pushing it into :class:`sensorhub.motion.pipeline.OnlinePipeline` and feeding every angle
frame that comes out to :class:`sensorhub.drills.RepDetector` (including scoring a rep when one
ends). Printed: p50 / p99 / max per notification while calibrating and while streaming, the share
of the two stages, and the cost of the notifications that completed a rep. Wall time includes
being preempted by other processes on a shared machine; the CPU time of the thread is printed too.

    python benchmarks/bench_live_block.py [--minutes 30] [--block 6] [--method vqf]
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
from _session import load_average, load_samples, session

from sensorhub.analysis import to_table
from sensorhub.drills import RepCompleted, RepDetector, detect_reps
from sensorhub.motion.pipeline import OnlinePipeline
from sensorhub.samples import ImuSamples


def _slice(s: ImuSamples, i0: int, i1: int) -> ImuSamples:
    return ImuSamples(s.t_s[i0:i1], s.acc_m_s2[i0:i1], s.gyr_rad_s[i0:i1], None if s.mag_uT is None else s.mag_uT[i0:i1])


def _stats(name: str, ms: np.ndarray) -> str:
    if ms.size == 0:
        return f"{name:28s} n=0"
    return (f"{name:28s} n={ms.size:6d}  p50 {np.percentile(ms, 50):.3f} ms  p99 {np.percentile(ms, 99):.3f} ms  "
            f"max {ms.max():.3f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="length of the simulated session")
    ap.add_argument("--block", type=int, default=6, help="samples per notification and sensor")
    ap.add_argument("--method", default="vqf", help="orientation filter of the online pipeline")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    bench = session(args.minutes)
    side, pelvis, thigh = load_samples(bench)
    blocks: list[tuple[float, str, ImuSamples]] = []
    for name, smp in (("pelvis", pelvis), ("thigh", thigh)):
        for i0 in range(0, len(smp), args.block):
            i1 = min(len(smp), i0 + args.block)
            blocks.append((float(smp.t_s[i1 - 1]), name, _slice(smp, i0, i1)))
    blocks.sort(key=lambda b: (b[0], b[1]))

    online = OnlinePipeline(side, method=args.method)
    detector = RepDetector(bench.drill)
    # Per notification: wall and thread-CPU time of push and of the detector, and the phase it fell in.
    wall_push, wall_det, cpu_push, cpu_det, phase, completed = [], [], [], [], [], []
    reps = []
    for _, name, block in blocks:
        before = online.state
        c0, t0 = time.thread_time(), time.perf_counter()
        frames = online.push(name, block)
        c1, t1 = time.thread_time(), time.perf_counter()
        events = []
        for f in frames:
            events.extend(detector.update(f.t_s, f.hip_rotation_deg, hip_flexion=f.hip_flexion_deg, hip_adduction=f.hip_adduction_deg,
                                          pelvis_tilt=f.pelvis_tilt_deg, pelvis_obliquity=f.pelvis_obliquity_deg,
                                          pelvis_rotation=f.pelvis_rotation_deg))
        c2, t2 = time.thread_time(), time.perf_counter()
        wall_push.append(t1 - t0)
        wall_det.append(t2 - t1)
        cpu_push.append(c1 - c0)
        cpu_det.append(c2 - c1)
        phase.append("streaming" if before == "streaming" else "transition" if online.state == "streaming" else "calibrating")
        done = [e.rep for e in events if isinstance(e, RepCompleted)]
        completed.append(bool(done))
        reps.extend(done)
    ph = np.array(phase)
    streaming, rep_done = ph == "streaming", np.array(completed)
    wall = (np.array(wall_push) + np.array(wall_det)) * 1e3
    cpu = (np.array(cpu_push) + np.array(cpu_det)) * 1e3
    print(f"session {bench.recording.name}: {bench.duration_s / 60:.1f} min, {len(blocks)} notifications of "
          f"{args.block} samples per sensor, method {args.method} | {load_average()}")
    print(_stats("calibrating, wall", wall[ph == "calibrating"]))
    print(_stats("calibration -> streaming", wall[ph == "transition"]) + "  (filters warmed up on the buffered data)")
    print(_stats("streaming, wall", wall[streaming]))
    print(_stats("streaming, CPU", cpu[streaming]))
    print(_stats("  push only, CPU", np.array(cpu_push)[streaming] * 1e3))
    print(_stats("  detector only, CPU", np.array(cpu_det)[streaming] * 1e3))
    print(_stats("  detector, rep scored, CPU", np.array(cpu_det)[rep_done] * 1e3))
    for name, values in (("wall", wall[streaming]), ("CPU", cpu[streaming])):
        over = int(np.count_nonzero(values > 1.0))
        print(f"streaming notifications over 1 ms ({name}): {over} ({100.0 * over / max(1, values.size):.2f} %)")
    # The live detector must count what batch detection counts on the same frames.
    batch = detect_reps(to_table(online.series()), bench.drill)
    print(f"reps live {len(reps)}, batch on the same frames {len(batch.reps)}, identical: {reps == batch.reps}")


if __name__ == "__main__":
    main()
