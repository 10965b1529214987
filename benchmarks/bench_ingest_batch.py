"""Ingest of a whole recording: the online path (``assemble``) against the batch path (``assemble_batch``).

``sensorhub analyze`` assembles a recording with :func:`sensorhub.ingest.assemble_batch`; live data
and ``sensorhub replay`` go through :class:`~sensorhub.ingest.Ingest` notification by notification.
For the 30-minute benchmark session (reading the file excluded) this prints the CPU and wall time of
each path, median of ``--repeat`` runs, the batch decoder alone, and checks that both paths give the
same samples, hub times, gap flags and statistics.

    python benchmarks/bench_ingest_batch.py [--minutes 30] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from _session import load_average, session

from sensorhub.ingest import Ingest, assemble, assemble_batch
from sensorhub.protocol.data import decode_packets
from sensorhub.recording import open_recording


def _cpu_wall(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    cpu, wall = [], []
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - t0)
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    bench = session(args.minutes)
    c0 = time.process_time()
    notes = list(open_recording(bench.recording).iter_notifications())
    print(f"{bench.recording.name}: {len(notes)} notifications, read in {time.process_time() - c0:.2f} s CPU")
    for name, fn in (("online assemble", lambda: assemble(notes, Ingest())),
                     ("batch assemble_batch", lambda: assemble_batch(notes, Ingest())),
                     ("  of which decode_packets", lambda: decode_packets([n.payload for n in notes]))):
        cpu, wall = _cpu_wall(fn, args.repeat)
        print(f"{name:26s} CPU {cpu:.3f} s, wall {wall:.3f} s (median of {args.repeat}) | {load_average()}")
    online_ingest, batch_ingest = Ingest(), Ingest()
    online, batch = assemble(notes, online_ingest), assemble_batch(notes, batch_ingest)
    same = sorted(online) == sorted(batch) and all(
        np.array_equal(getattr(online[s], f), getattr(batch[s], f), equal_nan=f != "gap_before")
        for s in online for f in ("t_s", "acc_m_s2", "gyr_rad_s", "gap_before"))
    same &= {s: v.to_json() for s, v in online_ingest.stats().items()} == {s: v.to_json() for s, v in batch_ingest.stats().items()}
    print(f"batch == online (samples, hub times, gap flags, stats): {same}")


if __name__ == "__main__":
    main()
