"""Throughput of the wire-protocol codec (not a test; run by hand).

    python benchmarks/bench_protocol.py [repeats]

Prints packets and samples per second for decoding and encoding 1-sample (MTU 23) and full
(16 x 6-axis, 13 x 9-axis) packets, and updates per second of SequenceUnwrapper. For scale: two
sensors at 100 Hz with one sample per packet need 200 decodes per second live; replaying a
one-hour session at that rate means 720 000 decodes.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from sensorhub.protocol import (
    SequenceUnwrapper,
    decode_packet,
    encode_packet,
    encode_packet_raw,
)


def rate(label: str, func: object, repeats: int, samples_per_call: int) -> None:
    assert callable(func)
    t0 = time.perf_counter()
    for _ in range(repeats):
        func()
    dt = time.perf_counter() - t0
    print(f"{label:<36} {repeats / dt:>12,.0f} /s  {repeats * samples_per_call / dt:>14,.0f} samples/s")


def main(repeats: int = 50_000) -> None:
    rng = np.random.default_rng(0)
    for n, axes in ((1, 6), (16, 6), (13, 9)):
        raw = rng.integers(-30000, 30000, size=(n, axes)).astype(np.int16)
        payload = encode_packet_raw(seq=1, t_first_us=2, rate_code=3, range_code=1, raw=raw)
        packet = decode_packet(payload)
        rate(f"decode {n} x {axes}-axis ({len(payload)} B)", lambda p=payload: decode_packet(p), repeats, n)
        mag = packet.mag_uT
        rate(
            f"encode {n} x {axes}-axis (SI)",
            lambda pk=packet, m=mag: encode_packet(
                seq=1, t_first_us=2, rate_code=3, range_code=1, acc_m_s2=pk.acc_m_s2, gyr_rad_s=pk.gyr_rad_s, mag_uT=m
            ),
            repeats,
            n,
        )
    seqs = iter(range(10 * repeats))
    unwrapper = SequenceUnwrapper()
    rate("SequenceUnwrapper.update", lambda: unwrapper.update(next(seqs) & 0xFFFF), repeats, 1)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)
