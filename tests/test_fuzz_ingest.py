"""Property-based fuzzing of the ingest: arbitrary payloads and arbitrary (seq, time) orders.

Whatever arrives (garbage bytes, valid packets with any sequence number and sensor timestamp, host
receive times going backwards, rate and magnetometer changes mid-stream, duplicates and
reordering of a real stream), :class:`sensorhub.ingest.Ingest` must never raise and must release
samples whose hub times are finite and strictly increasing (fusion integrates over them). The
checks live in tests/fuzz_support.py; ``SENSORHUB_FUZZ_EXAMPLES`` raises the example count for
long sessions (docs/reliability.md).
"""

from __future__ import annotations

import math
import os

import numpy as np
from fuzz_support import IngestItem, check_ingest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensorhub.protocol import encode_packet_raw

EXAMPLES = int(os.environ.get("SENSORHUB_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

RATE_CODES = st.sampled_from([0, 1, 2, 3, 4, 5, 6])


def _packet(seq: int, t_us: int, n: int, mag: bool, rate_code: int, value: int = 100) -> bytes:
    raw = np.full((n, 9 if mag else 6), value, dtype=np.int64)
    return encode_packet_raw(seq=seq, t_first_us=t_us, rate_code=rate_code, range_code=1, raw=raw)


@st.composite
def arbitrary_packets(draw: st.DrawFn) -> bytes:
    return _packet(
        draw(st.integers(0, 0xFFFF)),
        draw(st.integers(0, 0xFFFFFFFF)),
        draw(st.integers(1, 16)),
        draw(st.booleans()),
        draw(RATE_CODES),
        draw(st.integers(-32768, 32767)),
    )


@st.composite
def wild_streams(draw: st.DrawFn) -> list[IngestItem]:
    """Any payloads, any seq/time, host time drifting forwards and (sometimes) backwards."""
    payload = st.one_of(arbitrary_packets(), st.binary(max_size=60))
    steps = draw(st.lists(st.tuples(
        st.sampled_from(["a", "b"]),
        payload,
        st.one_of(st.floats(0.0, 0.2), st.floats(-5.0, 5000.0)),
    ), max_size=60))
    t = draw(st.one_of(st.floats(0.0, 1e5), st.floats(9.9e9, 1e10)))
    items: list[IngestItem] = []
    for sid, p, dt in steps:
        t = max(0.0, t + dt)
        # Now and then a receive time only a damaged recording can hold.
        bad = draw(st.sampled_from([None] * 20 + [math.nan, math.inf, -math.inf, 1e308, -1e308, 2e10]))
        items.append((sid, t if bad is None else bad, p))
    return items


@st.composite
def damaged_streams(draw: st.DrawFn) -> list[IngestItem]:
    """A regular stream, then damaged: drops, duplicates, swaps, seq/clock jumps, reboots, garbage."""
    n = draw(st.integers(2, 80))
    per = draw(st.integers(1, 16))
    rate_code = draw(RATE_CODES)
    rate_hz = (25, 50, 60, 100, 120, 200, 400)[rate_code]
    period_us = 1e6 / rate_hz
    mag = draw(st.booleans())
    seq0 = draw(st.integers(0, 0xFFFF))
    t0_us = draw(st.integers(0, 0xFFFFFFFF))
    host0 = draw(st.floats(0.0, 1e4))
    latency = st.floats(0.0, 0.2)
    packets: list[tuple[float, bytes]] = []
    seq, t_us = seq0, float(t0_us)
    for k in range(n):
        action = draw(st.sampled_from(["ok"] * 6 + ["seq_jump", "time_jump", "reboot", "garbage", "rate"]))
        if action == "seq_jump":
            seq += draw(st.integers(-40000, 40000))
        elif action == "time_jump":
            t_us += draw(st.integers(-(2**33), 2**33))
        elif action == "reboot":
            seq, t_us = draw(st.integers(0, 0xFFFF)), float(draw(st.integers(0, 10**7)))
        elif action == "rate":
            rate_code = draw(RATE_CODES)
            period_us = 1e6 / (25, 50, 60, 100, 120, 200, 400)[rate_code]
        t_host = host0 + k * per * period_us * 1e-6 + draw(latency)
        if action == "garbage":
            packets.append((t_host, draw(st.binary(max_size=40))))
        packets.append((t_host, _packet(seq % 0x10000, int(t_us) % 2**32, per, mag, rate_code, k % 30000)))
        seq += 1
        t_us += per * period_us
    # Delivery damage: duplicates and swaps of neighbours; host time as delivered.
    order = list(range(len(packets)))
    for _ in range(draw(st.integers(0, 6))):
        i = draw(st.integers(0, len(order) - 1))
        order.insert(i, order[i])
    for _ in range(draw(st.integers(0, 6))):
        i = draw(st.integers(0, len(order) - 2))
        order[i], order[i + 1] = order[i + 1], order[i]
    keep = draw(st.lists(st.booleans(), min_size=len(order), max_size=len(order)))
    items: list[IngestItem] = []
    t_last = -np.inf
    for i, k in enumerate(order):
        if keep[i] or i == 0:
            t_last = max(t_last, packets[k][0])
            items.append(("s", t_last, packets[k][1]))
    return items


@FUZZ
@given(wild_streams())
def test_arbitrary_payloads_and_orders_never_raise_and_keep_time_increasing(items: list[IngestItem]) -> None:
    check_ingest(items)


@FUZZ
@given(damaged_streams())
def test_damaged_real_streams_never_raise_and_keep_time_increasing(items: list[IngestItem]) -> None:
    check_ingest(items)
