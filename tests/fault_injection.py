"""Fault injection for the data-path fault campaign (tests/test_faults_*.py).

A simulated session (:func:`sensorhub.sim.simulate`) gives the notifications exactly as a hub would
have received them, plus ground truth. The functions here damage that notification stream the way
the field does — packet loss (random and in bursts), duplicates, reordering, corrupted and
truncated payloads, a sensor reboot, a sensor going silent, a disconnect with a reconnect — and
report exactly what they did, so a test can compare what the ingest counted with what happened.
Payloads are rebuilt with the real protocol codec where a fault changes header fields.

:func:`run_batch` and :func:`run_online` push a stream through the real path: ``Ingest`` then
``analyze_imu`` + ``detect_reps`` (the ``sensorhub analyze`` path), or ``Ingest`` then
``OnlinePipeline`` + ``RepDetector`` notification by notification (the live service's path).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sensorhub.analysis import to_table
from sensorhub.drills import RepCompleted, RepDetector, RepIncomplete, detect_reps
from sensorhub.drills.reps import Rep
from sensorhub.ingest import Ingest, StreamStats, assemble
from sensorhub.motion.pipeline import AngleSeries, OnlinePipeline, analyze_imu
from sensorhub.notification import Notification
from sensorhub.protocol import decode_packet, encode_packet_raw, unwrap_seq
from sensorhub.samples import FloatArray, ImuSamples
from sensorhub.sim import SimulatedSession
from sensorhub.sim.ble import lost_packets

# -- faults --------------------------------------------------------------------------------------------


@dataclass
class Injected:
    """A damaged stream and what was done to it (per sensor id)."""

    notifications: list[Notification]
    dropped_seq: dict[str, set[int]] = field(default_factory=dict)
    """Unwrapped sequence numbers (relative to the sensor's first packet) removed from the stream."""
    count: dict[str, int] = field(default_factory=dict)
    """How many notifications the fault touched (duplicated, swapped, corrupted...)."""
    spans_s: list[tuple[float, float]] = field(default_factory=list)
    """Host-time spans the fault covers, for "outside the faulty spans" checks."""


def packet_index(notes: Sequence[Notification]) -> dict[int, int]:
    """Position in ``notes`` -> unwrapped seq relative to the first packet of the same sensor."""
    first: dict[str, int] = {}
    prev: dict[str, int] = {}
    out: dict[int, int] = {}
    for i, n in enumerate(notes):
        seq16 = decode_packet(n.payload).seq
        if n.sensor_id not in first:
            first[n.sensor_id] = prev[n.sensor_id] = seq16
        u = unwrap_seq(prev[n.sensor_id], seq16)
        prev[n.sensor_id] = u
        out[i] = u - first[n.sensor_id]
    return out


def drop(notes: Sequence[Notification], which: Callable[[int, Notification], bool]) -> Injected:
    """Remove the notifications for which ``which(position, notification)`` is true."""
    index = packet_index(notes)
    kept: list[Notification] = []
    dropped: dict[str, set[int]] = {}
    for i, n in enumerate(notes):
        if which(i, n):
            dropped.setdefault(n.sensor_id, set()).add(index[i])
        else:
            kept.append(n)
    return Injected(kept, dropped, {sid: len(s) for sid, s in dropped.items()})


def packet_loss(
    notes: Sequence[Notification], loss: float, mean_burst: float, rng: np.random.Generator,
    t_from_s: float = -math.inf, t_to_s: float = math.inf,
) -> Injected:
    """Lose packets of every sensor between ``t_from_s`` and ``t_to_s`` (host time).

    Long-run fraction ``loss``; ``mean_burst`` > 1 gives runs of consecutive losses (the
    simulator's Gilbert model, :func:`sensorhub.sim.ble.lost_packets`), drawn per sensor.
    """
    lost: dict[int, bool] = {}
    by_sensor: dict[str, list[int]] = {}
    for i, n in enumerate(notes):
        if t_from_s <= n.t_host_s <= t_to_s:
            by_sensor.setdefault(n.sensor_id, []).append(i)
    for positions in by_sensor.values():
        flags = lost_packets(rng.random(len(positions)), loss, mean_burst)
        lost.update(zip(positions, flags.tolist(), strict=True))
    out = drop(notes, lambda i, _n: lost.get(i, False))
    out.spans_s = [(t_from_s, t_to_s)]
    return out


def duplicate(notes: Sequence[Notification], fraction: float, rng: np.random.Generator, max_delay: int = 3) -> Injected:
    """Deliver ``fraction`` of the notifications twice, the copy 0..``max_delay`` notifications later."""
    out = list(notes)
    count: dict[str, int] = {}
    picks = np.flatnonzero(rng.random(len(notes)) < fraction)
    for i in sorted(picks.tolist(), reverse=True):
        n = notes[i]
        j = min(len(out), i + 1 + int(rng.integers(0, max_delay + 1)))
        t = out[j - 1].t_host_s if j - 1 >= i else n.t_host_s
        out.insert(j, Notification(n.sensor_id, max(t, n.t_host_s), n.payload))
        count[n.sensor_id] = count.get(n.sensor_id, 0) + 1
    return Injected(out, {}, count)


def reorder(notes: Sequence[Notification], fraction: float, rng: np.random.Generator) -> Injected:
    """Delay ``fraction`` of the packets until just after the next packet of the same sensor.

    The delayed packet arrives 0.5 ms after its successor, so receive times stay physically
    possible (never before a packet's last sample was taken) and in arrival order.
    """
    delayed: dict[int, int] = {}  # position of the successor -> position of the delayed packet
    count: dict[str, int] = {}
    last_by_sensor: dict[str, int] = {}
    first: dict[str, int] = {}
    for i, n in enumerate(notes):
        j = last_by_sensor.get(n.sensor_id)
        last_by_sensor[n.sensor_id] = i
        # Never the first packet of a sensor: one older than the first seen cannot be put back (it is "late").
        if j is None or j == first.setdefault(n.sensor_id, j) or j in delayed or j in delayed.values() \
                or rng.random() >= fraction:
            continue
        delayed[i] = j
        count[n.sensor_id] = count.get(n.sensor_id, 0) + 1
    moved = set(delayed.values())
    out: list[Notification] = []
    for i, n in enumerate(notes):
        if i in moved:
            continue
        out.append(n)
        if i in delayed:
            late = notes[delayed[i]]
            out.append(Notification(late.sensor_id, n.t_host_s + 0.0005, late.payload))
    return Injected(out, {}, count)


def _with_descriptor(payload: bytes, mask: int, value: int) -> bytes:
    d = int.from_bytes(payload[:2], "little")
    return ((d & ~mask) | value).to_bytes(2, "little") + payload[2:]


CORRUPTIONS: dict[str, Callable[[bytes, np.random.Generator], bytes]] = {
    "truncated": lambda p, rng: p[: int(rng.integers(0, len(p)))],
    "extended": lambda p, rng: p + bytes(rng.integers(0, 256, int(rng.integers(1, 8)), dtype=np.uint8)),
    "version 0": lambda p, _rng: _with_descriptor(p, 0xC000, 0x0000),
    "version 2": lambda p, _rng: _with_descriptor(p, 0xC000, 0x8000),
    "reserved rate code": lambda p, _rng: _with_descriptor(p, 0x0038, 0x0038),
    "reserved range code": lambda p, _rng: _with_descriptor(p, 0x0007, 0x0007),
    "reserved sensor state": lambda p, _rng: _with_descriptor(p, 0x00C0, 0x00C0),
    "sample count off by one": lambda p, _rng: _with_descriptor(
        p, 0x3C00, ((((int.from_bytes(p[:2], "little") >> 10) & 0xF) ^ 1) << 10)),
}


def corrupt(notes: Sequence[Notification], fraction: float, rng: np.random.Generator) -> Injected:
    """Replace ``fraction`` of the payloads by damaged ones the decoder must reject (all kinds in turn).

    The protocol has no checksum (BLE's link layer has a CRC-24), so only damage that breaks the
    layout or a code is detectable; that is what these are. A damaged packet is a lost packet.
    """
    index = packet_index(notes)
    kinds = list(CORRUPTIONS)
    out: list[Notification] = []
    dropped: dict[str, set[int]] = {}
    for i, n in enumerate(notes):
        if rng.random() < fraction:
            kind = kinds[sum(len(s) for s in dropped.values()) % len(kinds)]
            out.append(Notification(n.sensor_id, n.t_host_s, CORRUPTIONS[kind](n.payload, rng)))
            dropped.setdefault(n.sensor_id, set()).add(index[i])
        else:
            out.append(n)
    return Injected(out, dropped, {sid: len(s) for sid, s in dropped.items()})


def reboot(notes: Sequence[Notification], sensor_id: str, t_s: float, downtime_s: float, rng: np.random.Generator) -> Injected:
    """The sensor reboots at host time ``t_s``: silent for ``downtime_s``, then seq and clock start over.

    After the reboot the sequence number starts at a random value and the µs clock near zero,
    as a fresh boot does; the samples themselves are the simulator's (the athlete kept moving).
    """
    seq0 = int(rng.integers(0, 1 << 16))
    t0_us: int | None = None
    out: list[Notification] = []
    k = 0
    for n in notes:
        if n.sensor_id != sensor_id or n.t_host_s < t_s:
            out.append(n)
            continue
        if n.t_host_s < t_s + downtime_s:
            continue
        p = decode_packet(n.payload)
        if t0_us is None:
            t0_us = p.t_first_us - int(rng.integers(200_000, 400_000))  # boot took 0.2-0.4 s
        payload = encode_packet_raw(
            seq=(seq0 + k) % 65536, t_first_us=(p.t_first_us - t0_us) % 2**32, rate_code=p.rate_code,
            range_code=p.range_code, raw=p.raw, sensor_state=p.sensor_state, clipping=p.clipping,
        )
        out.append(Notification(n.sensor_id, n.t_host_s, payload))
        k += 1
    return Injected(out, {}, {sensor_id: 1}, [(t_s, t_s + downtime_s)])


def pause(notes: Sequence[Notification], sensor_ids: Iterable[str], t0_s: float, t1_s: float) -> Injected:
    """A disconnect from ``t0_s`` to ``t1_s`` (host time) after which streaming resumes.

    Firmware stops producing packets while disconnected, so the sequence number continues where it
    stopped (PROTOCOL.md 3.5: seq is not reset by stop/start) while the sensor clock ran on.
    """
    ids = set(sensor_ids)
    shift: dict[str, int] = {}
    out: list[Notification] = []
    for n in notes:
        if n.sensor_id in ids and t0_s <= n.t_host_s < t1_s:
            shift[n.sensor_id] = shift.get(n.sensor_id, 0) + 1
            continue
        if shift.get(n.sensor_id):
            p = decode_packet(n.payload)
            n = Notification(n.sensor_id, n.t_host_s, encode_packet_raw(
                seq=(p.seq - shift[n.sensor_id]) % 65536, t_first_us=p.t_first_us, rate_code=p.rate_code,
                range_code=p.range_code, raw=p.raw, sensor_state=p.sensor_state, clipping=p.clipping))
        out.append(n)
    return Injected(out, {}, shift, [(t0_s, t1_s)])


# -- running the real path -----------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the user gets from one run: per-segment stream stats and samples, angles, reps."""

    stats: dict[str, StreamStats]
    samples: dict[str, ImuSamples]
    t_s: FloatArray
    hip_rotation_deg: FloatArray
    hip_flexion_deg: FloatArray
    gap: np.ndarray
    reps: list[Rep]
    incomplete: list[RepIncomplete]
    angles: AngleSeries | None = None


def _by_segment(session: SimulatedSession) -> dict[str, str]:
    return {s.sensor_id: seg for seg, s in session.sensors.items()}


def run_batch(session: SimulatedSession, notes: Sequence[Notification], **analyze_options: Any) -> Outcome:
    """Ingest -> analyze_imu -> detect_reps, as ``sensorhub analyze`` does for a recording.

    ``analyze_options`` go to :func:`analyze_imu` (e.g. ``offline=False`` for the causal filter).
    """
    ingest = Ingest()
    data = assemble(notes, ingest)
    seg = _by_segment(session)
    samples = {seg[sid]: x for sid, x in data.items()}
    angles = analyze_imu(samples["pelvis"], samples["thigh"], session.config.side, **analyze_options)
    detection = detect_reps(to_table(angles), session.config.drill)
    return Outcome({seg[sid]: s for sid, s in ingest.stats().items()}, samples, angles.t_s, angles.hip_rotation_deg,
                   angles.hip_flexion_deg, angles.gap, detection.reps, detection.incomplete, angles)


def run_online(session: SimulatedSession, notes: Sequence[Notification]) -> Outcome:
    """Ingest -> OnlinePipeline -> RepDetector, one notification at a time, as the live hub does."""
    seg = _by_segment(session)
    ingest = Ingest()
    pipe = OnlinePipeline(session.config.side, sensor_rates_hz={k: s.rate_hz for k, s in session.sensors.items()})
    detector = RepDetector(session.config.drill)
    rows: list[tuple[float, float, float, bool]] = []
    events: list[RepCompleted | RepIncomplete] = []
    blocks: dict[str, list[ImuSamples]] = {}

    def take(released: list[tuple[str, ImuSamples]]) -> None:
        for sid, block in released:
            blocks.setdefault(seg[sid], []).append(block)
            for f in pipe.push(seg[sid], block):
                rows.append((f.t_s, f.hip_rotation_deg, f.hip_flexion_deg, f.gap))
                events.extend(detector.update(
                    f.t_s, f.hip_rotation_deg, hip_flexion=f.hip_flexion_deg, hip_adduction=f.hip_adduction_deg,
                    pelvis_tilt=f.pelvis_tilt_deg, pelvis_obliquity=f.pelvis_obliquity_deg,
                    pelvis_rotation=f.pelvis_rotation_deg))

    for n in notes:
        take(ingest.push(n))
        take(ingest.poll(n.t_host_s))
    take(ingest.flush())
    events.extend(detector.finish())
    from sensorhub.ingest import concat_samples

    arr = np.array([r[:3] for r in rows], dtype=np.float64).reshape(-1, 3)
    return Outcome(
        {seg[sid]: s for sid, s in ingest.stats().items()},
        {k: concat_samples(v) for k, v in blocks.items()},
        arr[:, 0], arr[:, 1], arr[:, 2], np.array([r[3] for r in rows], dtype=bool),
        [e.rep for e in events if isinstance(e, RepCompleted)],
        [e for e in events if isinstance(e, RepIncomplete)],
    )


# -- comparing with the truth ---------------------------------------------------------------------------


def rotation_error_deg(session: SimulatedSession, t_s: FloatArray, hip_rotation_deg: FloatArray) -> FloatArray:
    """Estimated minus true hip internal rotation (deg) at ``t_s``."""
    truth = session.truth
    return hip_rotation_deg - np.interp(t_s, truth[:, 0], truth[:, 3])


def outside(t_s: FloatArray, spans: Iterable[tuple[float, float]], before_s: float, after_s: float) -> np.ndarray:
    """Mask of times not within ``[start - before_s, end + after_s]`` of any span."""
    m = np.ones(len(t_s), dtype=bool)
    for a, b in spans:
        m &= ~((t_s >= a - before_s) & (t_s <= b + after_s))
    return m


def matching_rep(reps: Sequence[Rep], t_start: float, t_end: float) -> Rep | None:
    """The detected rep covering the span ``[t_start, t_end]`` (a true rep, or part of one), or None.

    A detected rep matches when it overlaps the span by at least half of the shorter of the two, so a
    neighbouring rep whose end runs a few tenths of a second into the span does not count.
    """
    best, best_overlap = None, 0.0
    for r in reps:
        overlap = min(r.t_end, t_end) - max(r.t_start, t_start)
        if overlap >= 0.5 * min(r.t_end - r.t_start, t_end - t_start) and overlap > best_overlap:
            best, best_overlap = r, overlap
    return best
