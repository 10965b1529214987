"""Stream assembly: gaps, duplicates, reordering, wraps, sensor reboots and malformed payloads.

Packets are real protocol bytes (encode_packet_raw); the accelerometer x count of each sample
carries its global sample index, so every test can check exactly which samples came out.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensorhub.ingest import (
    Ingest,
    SensorStream,
    StreamConfig,
    assemble,
    concat_samples,
)
from sensorhub.notification import Notification
from sensorhub.protocol import RANGE_CODES, decode_packet, encode_packet_raw, unwrap_seq
from sensorhub.samples import ImuSamples

RATE_CODE_100HZ = 3
RANGE_CODE = 0
N_PER_PACKET = 4
PERIOD_US = 10_000
LSB = RANGE_CODES[RANGE_CODE].acc_m_s2_per_lsb
LATENCY_S = 0.002


def packet(k: int, *, seq0: int = 0, t0_us: int = 0, n: int = N_PER_PACKET, first_index: int | None = None) -> bytes:
    """The k-th packet of a stream starting at seq ``seq0`` and sensor time ``t0_us``."""
    first = k * n if first_index is None else first_index
    raw = np.zeros((n, 6), dtype=np.int64)
    raw[:, 0] = (first + np.arange(n)) % 30000
    raw[:, 2] = 1000
    return encode_packet_raw(
        seq=(seq0 + k) % 65536,
        t_first_us=(t0_us + k * n * PERIOD_US) % 2**32,
        rate_code=RATE_CODE_100HZ,
        range_code=RANGE_CODE,
        raw=raw,
    )


def arrival_s(k: int, host0_s: float = 100.0) -> float:
    """Host receive time of packet k: its last sample plus a fixed latency."""
    return host0_s + ((k + 1) * N_PER_PACKET - 1) * PERIOD_US * 1e-6 + LATENCY_S


def feed(stream: SensorStream, items: Iterable[tuple[float, bytes]]) -> ImuSamples:
    blocks = [b for t, p in items for b in stream.push(t, p)]
    blocks += stream.flush()
    return concat_samples(blocks)


def gaps(samples: ImuSamples) -> np.ndarray:
    assert samples.gap_before is not None  # the ingest always fills it
    return samples.gap_before


def indices(samples: ImuSamples) -> np.ndarray:
    return np.rint(samples.acc_m_s2[:, 0] / LSB).astype(int)


def in_order(ks: Iterable[int], **kw: int) -> list[tuple[float, bytes]]:
    return [(arrival_s(k), packet(k, **kw)) for k in ks]


def test_in_order_stream_releases_every_packet_at_once() -> None:
    stream = SensorStream("thigh")
    released = [len(stream.push(t, p)) for t, p in in_order(range(50))]
    assert released == [1] * 50  # bounded latency: each in-order packet comes out on its own push
    out = feed(SensorStream("thigh"), in_order(range(50)))
    assert len(out) == 200
    assert np.array_equal(indices(out), np.arange(200))
    assert not gaps(out).any()
    assert np.all(np.diff(out.t_s) > 0)
    assert np.allclose(np.diff(out.t_s), 0.01, atol=1e-6)


def test_gap_is_counted_and_flagged_not_filled() -> None:
    stream = SensorStream("s")
    out = feed(stream, in_order(k for k in range(30) if k not in (10, 11)))
    st = stream.stats()
    assert st.packets_lost == 2 and st.packets_received == 28 and st.gaps == 1
    assert st.loss_fraction == pytest.approx(2 / 30)
    assert len(out) == 28 * 4
    idx = indices(out)
    assert 40 not in idx and 47 not in idx
    first_after = int(np.flatnonzero(idx == 48)[0])
    assert np.flatnonzero(gaps(out)).tolist() == [first_after]
    # The time axis keeps the hole: 9 sample periods between sample 39 and 48.
    assert out.t_s[first_after] - out.t_s[first_after - 1] == pytest.approx(0.09, abs=1e-4)


def test_duplicate_is_dropped_and_counted() -> None:
    items = in_order(range(12))
    items.insert(6, (items[5][0] + 0.001, items[5][1]))
    stream = SensorStream("s")
    out = feed(stream, items)
    st = stream.stats()
    assert st.duplicates == 1 and st.packets_received == 12 and st.packets_lost == 0
    assert np.array_equal(indices(out), np.arange(48))


def test_reorder_within_window_is_put_back_in_order() -> None:
    items = in_order(range(20))
    items[7], items[8] = (items[7][0], packet(8)), (items[8][0], packet(7))
    stream = SensorStream("s")
    out = feed(stream, items)
    st = stream.stats()
    assert st.reordered == 1 and st.packets_lost == 0 and st.late == 0
    assert np.array_equal(indices(out), np.arange(80))
    assert not gaps(out).any()


def test_packet_later_than_window_is_late_and_leaves_a_gap() -> None:
    order = [k for k in range(20) if k != 7]
    order.insert(order.index(13) + 1, 7)  # 7 arrives after 13: past the 4-packet window
    stream = SensorStream("s", StreamConfig(reorder_window=4))
    out = feed(stream, [(arrival_s(max(k, 13 if k == 7 else k)) + 0.001 * (k == 7), packet(k)) for k in order])
    st = stream.stats()
    assert st.late == 1 and st.packets_lost == 0 and st.reordered == 0
    assert st.packets_received == 20 and st.loss_fraction == 0.0 and st.gaps == 1
    idx = indices(out)
    assert 28 not in idx and len(out) == 19 * 4
    assert gaps(out)[np.flatnonzero(idx == 32)[0]]


def test_missing_packet_is_declared_lost_after_host_timeout() -> None:
    stream = SensorStream("s", StreamConfig(reorder_window=8, reorder_timeout_s=0.25))
    for t, p in in_order(range(5)):
        stream.push(t, p)
    held = stream.push(arrival_s(6), packet(6))
    assert held == []  # packet 5 might still come
    assert stream.poll(arrival_s(6) + 0.1) == []
    released = stream.poll(arrival_s(6) + 0.3)
    assert len(released) == 1 and len(released[0]) == 4
    assert gaps(released[0])[0]
    assert stream.stats().packets_lost == 1


def test_seq_wrap_at_65535_is_seamless() -> None:
    stream = SensorStream("s")
    out = feed(stream, in_order(range(20), seq0=65530))
    st = stream.stats()
    assert st.packets_lost == 0 and st.resets == 0 and st.duplicates == 0
    assert len(out) == 80 and not gaps(out).any()


def test_timestamp_wrap_at_2_pow_32_us_is_seamless() -> None:
    stream = SensorStream("s")
    out = feed(stream, in_order(range(30), t0_us=2**32 - 55_000))
    st = stream.stats()
    assert st.resets == 0 and st.packets_lost == 0 and st.inconsistent == 0
    assert len(out) == 120 and not gaps(out).any()
    assert np.allclose(np.diff(out.t_s), 0.01, atol=1e-6)


def test_sensor_reboot_is_detected_reanchored_and_flagged() -> None:
    before = in_order(range(50), seq0=1200, t0_us=80_000_000)
    reboot_host_s = arrival_s(49) + 1.5
    after = [(reboot_host_s + arrival_s(k, 0.0), packet(k, first_index=1000 + 4 * k)) for k in range(20)]
    stream = SensorStream("s")
    out = feed(stream, before + after)
    st = stream.stats()
    assert st.resets == 1 and st.packets_lost == 0 and st.duplicates == 0 and st.inconsistent == 0
    assert len(out) == 280
    idx = indices(out)
    assert np.array_equal(idx[:200], np.arange(200)) and np.array_equal(idx[200:], 1000 + np.arange(80))
    assert np.flatnonzero(gaps(out)).tolist() == [200]
    assert np.all(np.diff(out.t_s) > 0)
    # The new epoch is mapped onto the hub clock again, not glued to the old one.
    # Its first sample was taken at reboot_host_s; the estimate is late by the receive latency only.
    assert out.t_s[200] - reboot_host_s == pytest.approx(LATENCY_S, abs=1e-4)


def test_reboot_to_seq_zero_soon_after_start_is_detected() -> None:
    # Sensor had sent 30 packets (seq 0..29, 1.2 s) and restarts at seq 0, time 0 after 1.2 s offline.
    before = in_order(range(30))
    t_restart = arrival_s(29) + 1.2
    after = [(t_restart + arrival_s(k, 0.0), packet(k, first_index=500 + 4 * k)) for k in range(10)]
    stream = SensorStream("s")
    out = feed(stream, before + after)
    st = stream.stats()
    assert st.resets == 1 and st.duplicates == 0
    assert len(out) == 160 and gaps(out)[120] and np.all(np.diff(out.t_s) > 0)


def test_one_packet_with_a_wild_timestamp_is_dropped_not_a_reboot() -> None:
    items = in_order(range(20))
    wild = encode_packet_raw(seq=10, t_first_us=3_000_000_000, rate_code=RATE_CODE_100HZ, range_code=RANGE_CODE,
                             raw=np.zeros((4, 6), dtype=np.int64))
    items[10] = (items[10][0], wild)
    stream = SensorStream("s")
    out = feed(stream, items)
    st = stream.stats()
    assert st.resets == 0 and st.inconsistent == 1
    # The wild packet's seq (10) is then missing: counted lost, gap flagged, rest intact.
    assert st.packets_lost == 1 and len(out) == 76
    assert np.all(np.diff(out.t_s) > 0)


def test_malformed_payloads_are_counted_and_the_stream_carries_on() -> None:
    items = in_order(range(10))
    bad = [b"", b"\x01", packet(3)[:-2], packet(4) + b"\x00\x00", b"\xff" * 20]
    mixed = items[:5] + [(items[4][0] + 0.001 * i, p) for i, p in enumerate(bad)] + items[5:]
    stream = SensorStream("s")
    out = feed(stream, mixed)
    st = stream.stats()
    assert st.malformed == 5 and st.packets_received == 10 and st.packets_lost == 0
    assert st.last_error is not None and "data packet" in st.last_error
    assert np.array_equal(indices(out), np.arange(40))


def test_ingest_routes_by_sensor_and_reports_stats() -> None:
    notes: list[Notification] = []
    for k in range(40):
        t, p = arrival_s(k), packet(k)
        notes.append(Notification("pelvis", t, p))
        if k != 17:
            notes.append(Notification("thigh", t + 0.003, packet(k, seq0=9, first_index=10_000 + 4 * k)))
    notes.append(Notification("thigh", 0.5 + arrival_s(39), b"junk"))
    ingest = Ingest()
    data = assemble(notes, ingest)
    assert set(data) == {"pelvis", "thigh"}
    assert len(data["pelvis"]) == 160 and len(data["thigh"]) == 156
    assert np.array_equal(indices(data["thigh"])[:4], 10_000 + np.arange(4))
    stats = ingest.stats()
    assert stats["pelvis"].packets_lost == 0 and stats["thigh"].packets_lost == 1
    assert stats["thigh"].malformed == 1 and stats["pelvis"].malformed == 0
    assert stats["thigh"].samples == 156
    assert stats["pelvis"].nominal_rate_hz == 100.0
    assert stats["pelvis"].to_json()["sensor_id"] == "pelvis"


def test_drift_and_rate_are_measured_from_a_stream() -> None:
    # Sensor clock runs 150 ppm slow against the hub: hub = 5 + sensor * (1 + 150e-6).
    drift = 150e-6
    rng = np.random.default_rng(3)
    stream = SensorStream("s")
    items = []
    for k in range(1500):  # 60 s
        t_last = ((k + 1) * N_PER_PACKET - 1) * PERIOD_US * 1e-6
        items.append((5.0 + t_last * (1 + drift) + rng.exponential(0.004), packet(k)))
    out = feed(stream, items)
    st = stream.stats()
    assert st.drift_ppm == pytest.approx(150, abs=15)
    assert st.rate_hz == pytest.approx(100 / (1 + drift), abs=2e-3)
    truth = 5.0 + np.arange(6000) * 0.01 * (1 + drift)
    assert np.abs(out.t_s - truth)[out.t_s > 10].max() < 1e-3


def test_empty_stream_flushes_to_nothing() -> None:
    stream = SensorStream("s")
    assert stream.flush() == []
    st = stream.stats()
    assert st.packets_received == 0 and math.isnan(st.loss_fraction) and math.isnan(st.rate_hz)


def test_silence_longer_than_both_wraps_is_a_counted_gap_not_a_reboot() -> None:
    # 50 minutes without data: 75 000 packets (> 32 768 seq numbers) and 3000 s (> 2^31 µs) pass.
    resume = 20 + 75_000
    items = in_order(range(20), seq0=60_000, t0_us=4_000_000_000)
    items += in_order(range(resume, resume + 10), seq0=60_000, t0_us=4_000_000_000)
    stream = SensorStream("s")
    out = feed(stream, items)
    st = stream.stats()
    assert st.resets == 0 and st.inconsistent == 0 and st.duplicates == 0
    assert st.packets_lost == 75_000 and st.packets_received == 30
    assert np.flatnonzero(gaps(out)).tolist() == [80]
    assert out.t_s[80] - out.t_s[79] == pytest.approx(75_000 * 0.04 + 0.01, abs=1e-3)


def test_packets_with_varying_sample_counts_stay_continuous() -> None:
    counts = [4, 1, 16, 7, 3, 16, 2, 5]
    items, first, t_us = [], 0, 0
    for k, n in enumerate(counts):
        raw = np.zeros((n, 6), dtype=np.int64)
        raw[:, 0] = first + np.arange(n)
        payload = encode_packet_raw(seq=k, t_first_us=t_us, rate_code=RATE_CODE_100HZ, range_code=RANGE_CODE, raw=raw)
        first += n
        t_us += n * PERIOD_US
        items.append((100.0 + t_us * 1e-6 + LATENCY_S, payload))
    stream = SensorStream("s")
    out = feed(stream, items)
    assert np.array_equal(indices(out), np.arange(sum(counts)))
    assert not gaps(out).any() and stream.stats().packets_lost == 0
    assert np.allclose(np.diff(out.t_s), 0.01, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=8, max_value=60),
    drops=st.sets(st.integers(min_value=1, max_value=58), max_size=12),
    dups=st.sets(st.integers(min_value=0, max_value=59), max_size=6),
    swaps=st.sets(st.integers(min_value=1, max_value=57), max_size=8),
)
def test_any_mix_of_loss_duplicates_and_swaps_keeps_the_invariants(
    n: int, drops: set[int], dups: set[int], swaps: set[int]
) -> None:
    drops = {d for d in drops if d < n - 1}  # the last packet arrives, so every gap is bounded
    order = [k for k in range(n) if k not in drops]
    swapped: set[int] = set()
    for i in sorted(swaps):
        # Disjoint neighbour swaps less than the 4-packet window apart in seq: never declared lost.
        if i + 1 < len(order) and i - 1 not in swapped and order[i + 1] - order[i] < 4:
            order[i], order[i + 1] = order[i + 1], order[i]
            swapped.add(i)
    deliveries: list[int] = []
    for k in order:
        deliveries.append(k)
        if k in dups:
            deliveries.append(k)
    items: list[tuple[float, bytes]] = []
    for k in deliveries:  # received after its last sample, in delivery order
        t = arrival_s(k) if not items else max(items[-1][0] + 0.0005, arrival_s(k))
        items.append((t, packet(k)))
    stream = SensorStream("s")
    out = feed(stream, items)
    stats = stream.stats()
    received = sorted(set(order))
    assert stats.duplicates == sum(1 for k in set(order) if k in dups)
    assert stats.packets_received == len(received) and stats.late == 0 and stats.resets == 0
    assert stats.reordered == len(swapped)
    assert stats.packets_lost == (received[-1] - received[0] + 1) - len(received)
    expected = np.concatenate([np.arange(4 * k, 4 * k + 4) for k in received])
    assert np.array_equal(indices(out), expected)
    runs = sum(1 for a, b in itertools.pairwise(received) if b != a + 1)
    assert int(gaps(out).sum()) == runs
    assert np.all(np.diff(out.t_s) > 0)


def test_simulated_session_lands_on_the_true_sample_times() -> None:
    from sensorhub.sim import SimConfig, simulate

    session = simulate(SimConfig(seed=21, loss=0.03, rates_hz=(100.0, 120.0)))
    ingest = Ingest()
    data = assemble(session.notifications, ingest)
    for sensor in session.sensors.values():
        out = data[sensor.sensor_id]
        st = ingest.stats()[sensor.sensor_id]
        assert np.all(np.diff(out.t_s) > 0)
        assert st.samples == len(out) == st.packets_received * sensor.link.samples_per_packet
        assert st.resets == 0 and st.duplicates == 0 and st.inconsistent == 0
        # Each released sample against the simulator's true time of the nearest true sample.
        _, t_true = sensor.clock.sample_times(sensor.rate_hz, session.scenario.duration_s)
        idx = np.clip(np.searchsorted(t_true, out.t_s), 1, len(t_true) - 1)
        nearest = np.where(np.abs(t_true[idx] - out.t_s) < np.abs(t_true[idx - 1] - out.t_s), idx, idx - 1)
        err_s = np.abs(out.t_s - t_true[nearest])[out.t_s > 10.0]
        assert np.median(err_s) < 4e-3 and err_s.max() < 6e-3
        # One flagged gap per run of consecutive dropped packets between the first and last received.
        first = decode_packet(sensor.link.notifications[0].payload).seq
        last = unwrap_seq(first, decode_packet(sensor.link.notifications[-1].payload).seq)
        dropped = {d for d in (unwrap_seq(first, q) for q in sensor.link.dropped_seq) if first < d < last}
        assert st.packets_lost == len(dropped)
        assert int(gaps(out).sum()) == sum(1 for d in dropped if d - 1 not in dropped)
