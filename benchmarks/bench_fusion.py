"""Throughput of orientation fusion: samples per second per method, batch and online per block.

Usage::

    python benchmarks/bench_fusion.py [--block 10]

"batch" is :func:`sensorhub.motion.fusion.fuse` on a whole recording; "online" feeds the same
samples through :class:`~sensorhub.motion.fusion.OrientationFilter` ``--block`` samples at a time
(one BLE notification block), and "online, 1 sample" one sample per call, the worst case for
per-call overhead. Input: a synthetic 9-axis recording at 100 Hz (random rotation with noise);
speed does not depend on the motion. Best of three runs.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from sensorhub.motion.fusion import METHODS, OrientationFilter, fuse
from sensorhub.samples import ImuSamples

RATE_HZ = 100.0


def synthetic_samples(n: int, seed: int = 0) -> ImuSamples:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / RATE_HZ
    gyr = 0.5 * np.sin(np.outer(t, [0.7, 1.1, 0.3])) + rng.normal(0.0, 0.01, (n, 3))
    acc = np.array([0.0, 0.0, 9.81]) + rng.normal(0.0, 0.3, (n, 3))
    mag = np.array([0.0, 25.0, -40.0]) + rng.normal(0.0, 1.0, (n, 3))
    return ImuSamples(t, acc, gyr, mag)


def best_rate(run: Callable[[], object], n: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return n / best


def online(samples: ImuSamples, method: str, block: int) -> None:
    filt = OrientationFilter(method, RATE_HZ, has_mag=True)
    assert samples.mag_uT is not None
    for start in range(0, len(samples), block):
        stop = start + block
        filt.update_block(samples.acc_m_s2[start:stop], samples.gyr_rad_s[start:stop], samples.mag_uT[start:stop])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fusion throughput per method")
    parser.add_argument("--block", type=int, default=10, help="samples per online block (default 10)")
    args = parser.parse_args(argv)

    print(f"samples/s, 9-axis, 100 Hz synthetic input, online block = {args.block} samples\n")
    print(f"| method | batch | online, {args.block}-sample blocks | online, 1 sample |")
    print("| --- | ---: | ---: | ---: |")
    for name, method, offline in [("vqf (offline)", "vqf", True), *((m, m, False) for m in METHODS)]:
        n = 200_000 if method == "vqf" else 4_000
        samples = synthetic_samples(n)
        batch_rate = best_rate(partial(fuse, samples, method, offline=offline), n)
        if offline:
            print(f"| {name} | {batch_rate:,.0f} | n/a (non-causal) | n/a |")
            continue
        n_small = min(n, 20_000)
        block_rate = best_rate(partial(online, samples, method, args.block), n)
        single_rate = best_rate(partial(online, synthetic_samples(n_small), method, 1), n_small)
        print(f"| {name} | {batch_rate:,.0f} | {block_rate:,.0f} | {single_rate:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
