"""CPU per ``OnlinePipeline.push`` call while streaming, as the live hub makes them (optionally profiled).

A simulated session's two sensors are cut into ``--block``-sample blocks, interleaved in time order
and pushed into a pipeline made as the hub makes it (``history_s=0``). The pushes until the
calibration has ended are not timed; the rest are, as one loop: printed is the mean process CPU time
per push (the figure the hub's capacity depends on) and, with ``--profile``, cProfile's top entries.

    python benchmarks/bench_online_push.py [--minutes 5] [--block 4] [--repeat 3] [--no-mag] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import pstats
import time

from _session import load_average, load_samples, session

from sensorhub.motion import align
from sensorhub.motion.pipeline import OnlinePipeline
from sensorhub.samples import ImuSamples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0, help="length of the simulated session")
    ap.add_argument("--block", type=int, default=4, help="samples per block and sensor")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs (a new pipeline each)")
    ap.add_argument("--no-mag", action="store_true", help="a 6-axis session (no magnetometers)")
    ap.add_argument("--profile", action="store_true", help="print cProfile's top 30 (by own time) of one more run")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    side, pelvis, thigh = load_samples(session(args.minutes, no_mag=args.no_mag))
    items: list[tuple[float, str, ImuSamples]] = []
    for name, smp in (("pelvis", pelvis), ("thigh", thigh)):
        for i0 in range(0, len(smp), args.block):
            i1 = min(len(smp), i0 + args.block)
            items.append((float(smp.t_s[i1 - 1]), name, align.slice_samples(smp, i0, i1)))
    items.sort(key=lambda b: (b[0], b[1]))

    def streaming_pipeline() -> tuple[OnlinePipeline, list[tuple[float, str, ImuSamples]]]:
        online = OnlinePipeline(side, history_s=0.0)
        k = 0
        while online.state != "streaming":
            online.push(items[k][1], items[k][2])
            k += 1
        return online, items[k:]

    per_push_us = []
    for _ in range(args.repeat):
        online, rest = streaming_pipeline()
        c0 = time.process_time()
        for _, name, block in rest:
            online.push(name, block)
        per_push_us.append(1e6 * (time.process_time() - c0) / len(rest))
    print(f"{len(rest)} streaming pushes of {args.block} samples | CPU per push (us): "
          f"{' '.join(f'{x:.1f}' for x in per_push_us)}, min {min(per_push_us):.1f} | {load_average()}")
    if args.profile:
        online, rest = streaming_pipeline()
        prof = cProfile.Profile()
        prof.enable()
        for _, name, block in rest:
            online.push(name, block)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
