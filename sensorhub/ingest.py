"""Stream assembly: raw notifications in, timed sample blocks on the hub clock out.

This is the one path both live BLE data and replayed recordings take between
:class:`~sensorhub.notification.Notification` and :class:`~sensorhub.samples.ImuSamples`:

* :class:`SensorStream` handles one sensor. It decodes payloads (a malformed one is counted and its
  message kept, never raised), unwraps the 16-bit sequence number and the 32-bit µs timestamp,
  drops duplicates, puts packets that arrive out of order back in order within a small window,
  declares a missing packet lost once the window has moved past it or it is overdue in host time,
  detects a sensor reboot (sequence and clock start again) and re-anchors, and maps every sample's
  sensor time onto the hub clock with :class:`~sensorhub.clock.ClockMapper`. Lost data stays
  visible downstream: the first sample after any gap has ``gap_before`` set; nothing is filled in.
* :class:`Ingest` routes notifications to one :class:`SensorStream` per ``sensor_id`` and collects
  per-sensor :class:`StreamStats`.
* :func:`assemble` runs a whole batch (a recording) and concatenates each sensor's blocks.

Release latency is bounded: a packet is released as soon as everything before it has been released;
a gap holds later packets back for at most ``reorder_window`` packets or ``reorder_timeout_s`` of
host time (checked on every push, and by :meth:`SensorStream.poll` when the link goes quiet).

Reboot detection. A packet continues the current clock epoch when its sequence number and its
timestamp agree with each other (the time a seq jump implies is bounded by 1..16 samples per
packet) and, for a packet that is not ahead of the newest one, when it is not older than
``max_backward_s`` relative to the host time that has passed. A packet whose timestamp jumped
ahead further than its sequence number allows continues the epoch too when the jump matches the
host time that passed (``pause_tolerance_s``): the stream paused (link lost, streaming stopped and
restarted) while the sensor clock ran on, which is a gap, not a reboot. Otherwise it starts a *candidate*
epoch, confirmed by the next packet continuing it (then: the old epoch's held packets are released,
the clock map is re-anchored with its drift kept, and the next sample is marked as a gap) or
dropped as an inconsistent packet when the next packet continues the old epoch.

This module does no I/O; it logs gaps, reboots and malformed payloads at debug/warning level. Only
:func:`assemble_batch` with ``workers`` > 1 starts processes (through :mod:`sensorhub.workers`).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from sensorhub.clock import (
    ClockMapper,
    ClockMapperConfig,
    ClockState,
    WindowHullClockMapper,
    host_times,
)
from sensorhub.errors import ConfigurationError, ProtocolError
from sensorhub.notification import Notification
from sensorhub.protocol import DataPacket, decode_packet, unwrap_counter, unwrap_time_us
from sensorhub.protocol.data import decode_packets
from sensorhub.protocol.spec import MAX_SAMPLES_PER_PACKET
from sensorhub.samples import FloatArray, ImuSamples

log = logging.getLogger(__name__)

Decoder = Callable[[bytes], DataPacket]

_LOST_MEMORY = 4096

MAX_HOST_TIME_S = 1e10
"""Largest magnitude of a hub receive time: 317 years, so session clocks, monotonic clocks and Unix
time all fit, while float64 still resolves 2 µs there (the output nudges times by 1 µs)."""

__all__ = [
    "MAX_HOST_TIME_S",
    "Ingest",
    "SensorStream",
    "StreamConfig",
    "StreamStats",
    "assemble",
    "assemble_batch",
    "concat_samples",
]


@dataclass(frozen=True)
class StreamConfig:
    """Tuning of :class:`SensorStream`. Times are host seconds unless the name says otherwise."""

    reorder_window: int = 4
    """A missing packet is declared lost once a packet this many seq numbers after it has arrived."""
    reorder_timeout_s: float = 0.25
    """... or once the packets held behind it have waited this long (host time)."""
    seq_time_tolerance_s: float = 0.05
    """Slack when checking that a packet's timestamp agrees with its sequence number."""
    max_backward_s: float = 1.0
    """A packet not ahead of the newest one may be at most this much older than host time implies."""
    pause_tolerance_s: float = 0.5
    """A packet whose sensor time jumped further ahead than its seq allows still continues the epoch
    (the stream paused: link lost, streaming stopped and started) when the jump matches the host time
    that passed within this much."""
    clock: ClockMapperConfig = field(default_factory=ClockMapperConfig)

    def __post_init__(self) -> None:
        if self.reorder_window < 1 or self.reorder_timeout_s <= 0:
            raise ValueError(
                f"StreamConfig: reorder_window must be >= 1 and reorder_timeout_s > 0, "
                f"got {self.reorder_window}, {self.reorder_timeout_s}"
            )


@dataclass(frozen=True)
class StreamStats:
    """What happened on one sensor's stream so far. Counts are packets unless named samples."""

    sensor_id: str
    packets_received: int
    """Distinct packets decoded and accepted, late ones included (duplicates and inconsistent ones not)."""
    packets_lost: int
    """Sequence numbers never received (gaps), excluding packets that arrived too late to use."""
    duplicates: int
    reordered: int
    """Packets that arrived after a later one but in time to be put back in order."""
    late: int
    """Packets that arrived after their gap had been declared lost (dropped; the gap stays)."""
    malformed: int
    """Payloads that do not decode (and notifications with an impossible hub receive time)."""
    inconsistent: int
    """Decodable packets whose seq/time fit neither the current clock epoch nor a new one."""
    resets: int
    """Sensor reboots detected (new clock epochs after the first)."""
    samples: int
    """Samples released downstream."""
    gaps: int
    """Places where ``gap_before`` was set (packet loss, late packets, reboots, timestamp jumps)."""
    nominal_rate_hz: float
    rate_hz: float
    """Sample rate on the hub clock: the nominal rate corrected by the measured drift."""
    drift_ppm: float
    """Sensor clock drift against the hub clock (positive: the sensor clock runs slow)."""
    offset_s: float
    """``t_hub = t_sensor * (1 + drift) + offset`` for the current epoch (sensor time from its µs counter)."""
    loss_fraction: float
    """packets_lost / (packets_lost + packets_received); NaN before any packet."""
    last_error: str | None
    has_mag: bool | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None)."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


@dataclass(slots=True)
class _Entry:
    seq: int
    """Unwrapped sequence number within the epoch."""
    t_first_us: int
    """Unwrapped sensor time of the first sample within the epoch."""
    packet: DataPacket
    t_host_s: float

    @property
    def t_end_us(self) -> float:
        """Sensor time where the next packet's first sample is expected."""
        return self.t_first_us + self.packet.n_samples * self.packet.sample_period_us

    @property
    def t_last_s(self) -> float:
        """Sensor time of this packet's last sample, in seconds."""
        return (self.t_first_us + (self.packet.n_samples - 1) * self.packet.sample_period_us) * 1e-6


class SensorStream:
    """Assembly of one sensor's notifications into timed sample blocks (see the module docstring)."""

    def __init__(self, sensor_id: str, config: StreamConfig | None = None, decode: Decoder = decode_packet) -> None:
        self.sensor_id = sensor_id
        self.config = config or StreamConfig()
        self._decode = decode
        self.clock = ClockMapper(self.config.clock)
        self._received = 0
        self._lost = 0
        self._duplicates = 0
        self._reordered = 0
        self._late = 0
        self._malformed = 0
        self._inconsistent = 0
        self._resets = 0
        self._samples = 0
        self._gaps = 0
        self._last_error: str | None = None
        self._nominal_rate_hz = math.nan
        self._has_mag: bool | None = None
        self._last_t_out_s = -math.inf
        self._candidate: tuple[DataPacket, float] | None = None
        self._last_unwrap: tuple[_Entry, DataPacket, float, tuple[int, int]] | None = None
        self._new_epoch()

    def _new_epoch(self) -> None:
        self._newest: _Entry | None = None
        self._next_seq = 0
        self._first_seq = 0
        self._held: dict[int, _Entry] = {}
        # Recently declared-lost seq numbers, to tell a late packet from a duplicate. A packet older
        # than max_backward_s never gets here, so a short memory is enough.
        self._lost_seqs: set[int] = set()
        self._lost_order: deque[int] = deque()
        self._expected_t_us: float | None = None
        self._gap_pending = self._received > 0

    # -- input -------------------------------------------------------------------------------------

    def push(self, t_host_s: float, payload: bytes) -> list[ImuSamples]:
        """Take one notification payload received at ``t_host_s``; return the blocks it releases.

        Never raises for bad payloads: they are counted in ``malformed`` and the stream carries on.
        A receive time that is not finite or beyond ``MAX_HOST_TIME_S`` (only a damaged recording
        can hold one) is counted as malformed too.
        """
        if not self._host_time_ok(t_host_s):
            return []
        try:
            packet = self._decode(payload)
        except ProtocolError as exc:
            return self._push_malformed(exc, t_host_s)
        return self.push_packet(packet, t_host_s)

    def _push_malformed(self, exc: ProtocolError, t_host_s: float) -> list[ImuSamples]:
        self._malformed += 1
        self._last_error = str(exc)
        log.debug("%s: malformed payload at t=%.3f s: %s", self.sensor_id, t_host_s, exc)
        return self._release(t_host_s)

    def push_packet(self, packet: DataPacket, t_host_s: float) -> list[ImuSamples]:
        """Take one decoded packet received at ``t_host_s``; return the blocks it releases."""
        if not self._host_time_ok(t_host_s):
            return []
        out: list[ImuSamples] = []
        if self._candidate is not None:
            cand_packet, cand_t_host = self._candidate
            self._candidate = None
            if self._newest is not None and self._continues(self._newest, packet, t_host_s):
                self._inconsistent += 1
                log.warning(
                    "%s: dropped a packet (seq %d, t %d µs) that fits neither the stream nor a restart",
                    self.sensor_id, cand_packet.seq, cand_packet.t_first_us,
                )
            elif self._continues(self._entry_of(cand_packet, cand_t_host), packet, t_host_s):
                out += self._restart(cand_packet, cand_t_host)
            else:
                self._inconsistent += 1
                self._candidate = (packet, t_host_s)
                return out + self._release(t_host_s)
        if self._newest is not None and not self._continues(self._newest, packet, t_host_s):
            self._candidate = (packet, t_host_s)
            return out + self._release(t_host_s)
        self._accept(packet, t_host_s)
        return self._merge(out + self._release(t_host_s))

    def poll(self, t_host_s: float) -> list[ImuSamples]:
        """Release what has waited longer than the reorder timeout (call when the link is quiet)."""
        if not (math.isfinite(t_host_s) and abs(t_host_s) <= MAX_HOST_TIME_S):
            return []
        return self._release(t_host_s)

    def _host_time_ok(self, t_host_s: float) -> bool:
        # Arithmetic on the hub clock (seq predictions, the clock map, 1 µs nudges) needs times whose
        # float64 spacing is far below a sample period; a damaged recording can hold anything.
        if math.isfinite(t_host_s) and abs(t_host_s) <= MAX_HOST_TIME_S:
            return True
        self._malformed += 1
        self._last_error = f"hub receive time {t_host_s!r} s; expected a finite time within ±{MAX_HOST_TIME_S:g} s"
        log.debug("%s: %s", self.sensor_id, self._last_error)
        return False

    def flush(self) -> list[ImuSamples]:
        """End of stream: release everything held, declaring remaining gaps lost."""
        out: list[ImuSamples] = []
        if self._candidate is not None:
            # A restart candidate with nothing after it: the sensor rebooted and sent one packet.
            packet, t_host_s = self._candidate
            self._candidate = None
            out += self._restart(packet, t_host_s)
        out += self._release(math.inf, drain=True)
        return self._merge(out)

    # -- epoch logic -------------------------------------------------------------------------------

    @staticmethod
    def _entry_of(packet: DataPacket, t_host_s: float) -> _Entry:
        return _Entry(packet.seq, packet.t_first_us, packet, t_host_s)

    def _unwrap(self, newest: _Entry, packet: DataPacket, t_host_s: float) -> tuple[int, int]:
        # push_packet asks twice for the same packet (_continues, then _accept): keep the last answer.
        last = self._last_unwrap
        if last is not None and last[0] is newest and last[1] is packet and last[2] == t_host_s:
            return last[3]
        # References move on with host time, so a silence longer than half the seq range (32768
        # packets) or the timestamp range (35.8 min) cannot alias a wrap.
        elapsed_s = max(0.0, t_host_s - newest.t_host_s)
        packet_s = newest.packet.n_samples * newest.packet.sample_period_us * 1e-6
        ref_seq = newest.seq + round(elapsed_s / packet_s)
        ref_us = newest.t_first_us + round(elapsed_s * 1e6)
        result = unwrap_counter(ref_seq, packet.seq, 16), unwrap_time_us(ref_us, packet.t_first_us)
        self._last_unwrap = (newest, packet, t_host_s, result)
        return result

    def _continues(self, newest: _Entry, packet: DataPacket, t_host_s: float) -> bool:
        """Whether ``packet`` belongs to the clock epoch whose newest packet is ``newest``."""
        seq, t_first_us = self._unwrap(newest, packet, t_host_s)
        period_us = newest.packet.sample_period_us
        tol_us = self.config.seq_time_tolerance_s * 1e6
        d_seq = seq - newest.seq
        d_t_us = t_first_us - newest.t_first_us
        if d_seq > 0:
            # Between newest and this packet lie d_seq - 1 packets of 1..16 samples each.
            low = newest.packet.n_samples * period_us + (d_seq - 1) * period_us
            high = newest.packet.n_samples * period_us + (d_seq - 1) * MAX_SAMPLES_PER_PACKET * period_us
            # The sensor clock cannot run ahead of the hub's by more than the newest packet's delay
            # (bounded like a late packet's age): a seq jump of thousands of packets within a second
            # of host time is a reboot whose new counters happen to fit the loose 1..16-sample window.
            elapsed_us = (t_host_s - newest.t_host_s) * 1e6
            if d_t_us > elapsed_us + (self.config.max_backward_s + self.config.seq_time_tolerance_s) * 1e6:
                return False
            if low - tol_us <= d_t_us <= high + tol_us:
                return True
            # A pause: the sensor produced no packets for a while (seq did not move on) but its clock
            # ran on with the hub's. That is a gap, not a reboot, which restarts the clock as well.
            return d_t_us > high and abs(d_t_us - elapsed_us) <= self.config.pause_tolerance_s * 1e6
        if d_seq == 0:
            if abs(d_t_us) > tol_us:
                return False
        else:
            low = -d_seq * period_us
            high = -d_seq * MAX_SAMPLES_PER_PACKET * period_us
            if not low - tol_us <= -d_t_us <= high + tol_us:
                return False
        # Not ahead of the newest packet: a duplicate or a reordered one, which cannot be very old.
        age_s = (newest.t_first_us - t_first_us) * 1e-6 + (t_host_s - newest.t_host_s)
        return age_s <= self.config.max_backward_s

    def _restart(self, packet: DataPacket, t_host_s: float) -> list[ImuSamples]:
        out = self._release(math.inf, drain=True)
        self._resets += 1
        log.warning(
            "%s: sensor restarted at t=%.3f s (seq %d, sensor time %d µs); re-anchoring its clock",
            self.sensor_id, t_host_s, packet.seq, packet.t_first_us,
        )
        self._new_epoch()
        self.clock.reanchor()
        self._accept(packet, t_host_s)
        return out + self._release(t_host_s)

    def _accept(self, packet: DataPacket, t_host_s: float) -> None:
        newest = self._newest
        if newest is None:
            seq, t_first_us = packet.seq, packet.t_first_us
            self._first_seq = self._next_seq = seq
        else:
            seq, t_first_us = self._unwrap(newest, packet, t_host_s)
        released = seq < self._next_seq
        if seq in self._held or (released and seq >= self._first_seq and seq not in self._lost_seqs):
            self._duplicates += 1
            return
        entry = _Entry(seq, t_first_us, packet, t_host_s)
        self._received += 1
        self._nominal_rate_hz = packet.sample_rate_hz
        self._has_mag = packet.has_mag if self._has_mag is None else (self._has_mag or packet.has_mag)
        self.clock.observe(entry.t_last_s, t_host_s)
        if newest is None or seq > newest.seq:
            self._newest = entry
            self._held[seq] = entry
        elif not released:
            self._reordered += 1
            self._held[seq] = entry
        else:
            # Its gap was already declared lost and later samples went out: it cannot go back in time.
            self._late += 1
            if seq in self._lost_seqs:
                self._lost_seqs.discard(seq)
                self._lost -= 1  # it was counted lost when its gap was declared
            log.debug("%s: packet seq %d arrived after its gap was declared lost", self.sensor_id, seq)

    # -- output ------------------------------------------------------------------------------------

    def _release(self, t_host_s: float, drain: bool = False) -> list[ImuSamples]:
        blocks: list[ImuSamples] = []
        held = self._held
        while held:
            while self._next_seq in held:
                blocks.append(self._emit(held.pop(self._next_seq)))
                self._next_seq += 1
            if not held:
                break
            first_held = min(held)
            waited_s = t_host_s - min(e.t_host_s for e in held.values())
            if drain or waited_s >= self.config.reorder_timeout_s:
                resume = first_held
            else:
                # Each missing seq gets its own window: it is lost once `reorder_window` later ones came.
                resume = min(first_held, max(held) - self.config.reorder_window + 1)
                if resume <= self._next_seq:
                    break
            missing = resume - self._next_seq
            self._lost += missing
            for lost_seq in range(max(self._next_seq, resume - _LOST_MEMORY), resume):
                self._lost_seqs.add(lost_seq)
                self._lost_order.append(lost_seq)
            while len(self._lost_order) > _LOST_MEMORY:
                self._lost_seqs.discard(self._lost_order.popleft())
            self._gap_pending = True
            log.debug("%s: %d packet(s) lost before seq %d", self.sensor_id, missing, resume)
            self._next_seq = resume
        return self._merge(blocks)

    def _take_gap(self, entry: _Entry) -> bool:
        """Whether a gap precedes ``entry``, which is released next; counts its samples and gap."""
        packet = entry.packet
        gap = self._gap_pending
        if self._expected_t_us is not None and abs(entry.t_first_us - self._expected_t_us) > 0.5 * packet.sample_period_us:
            # Consecutive seq but the sensor's own time jumped: samples were lost on the sensor side.
            log.debug("%s: sensor time jumps by %.0f µs at seq %d", self.sensor_id,
                      entry.t_first_us - self._expected_t_us, entry.seq)
            gap = True
        self._gap_pending = False
        self._expected_t_us = entry.t_end_us
        self._gaps += int(gap)
        self._samples += packet.n_samples
        return gap

    def _emit(self, entry: _Entry) -> ImuSamples:
        packet = entry.packet
        n = packet.n_samples
        gap = self._take_gap(entry)
        t_sensor_s = (entry.t_first_us + packet.sample_times_us()) * 1e-6
        t_s = self.clock.to_host(t_sensor_s)
        if t_s[0] <= self._last_t_out_s:
            # Only after a restart can the new epoch's first estimate fall behind what was released.
            t_s = t_s + (self._last_t_out_s - t_s[0] + 1e-6)
        self._last_t_out_s = float(t_s[-1])
        gap_before = np.zeros(n, dtype=bool)
        gap_before[0] = gap
        return ImuSamples(
            t_s=t_s,
            acc_m_s2=np.array(packet.acc_m_s2, dtype=np.float64),
            gyr_rad_s=np.array(packet.gyr_rad_s, dtype=np.float64),
            mag_uT=None if packet.mag_uT is None else np.array(packet.mag_uT, dtype=np.float64),
            gap_before=gap_before,
        )

    @staticmethod
    def _merge(blocks: list[ImuSamples]) -> list[ImuSamples]:
        """Concatenate consecutive blocks, starting a new one at every gap.

        A released block thus has a gap at most before its first sample, so a consumer that bridges
        or flags gaps at block boundaries (the live pipeline) never meets one in the middle.
        """
        if len(blocks) <= 1:
            return blocks
        runs: list[list[ImuSamples]] = []
        for block in blocks:
            starts_gap = block.gap_before is not None and len(block) > 0 and bool(block.gap_before[0])
            if not runs or starts_gap:
                runs.append([block])
            else:
                runs[-1].append(block)
        return [concat_samples(run) for run in runs]

    # -- reporting ---------------------------------------------------------------------------------

    def stats(self) -> StreamStats:
        est = self.clock.estimate
        drift = est.drift_ppm
        seen = self._lost + self._received
        return StreamStats(
            sensor_id=self.sensor_id,
            packets_received=self._received,
            packets_lost=self._lost,
            duplicates=self._duplicates,
            reordered=self._reordered,
            late=self._late,
            malformed=self._malformed,
            inconsistent=self._inconsistent,
            resets=self._resets,
            samples=self._samples,
            gaps=self._gaps,
            nominal_rate_hz=self._nominal_rate_hz,
            rate_hz=self._nominal_rate_hz / (1.0 + drift * 1e-6),
            drift_ppm=drift,
            offset_s=est.offset_s,
            loss_fraction=self._lost / seen if seen else math.nan,
            last_error=self._last_error,
            has_mag=self._has_mag,
        )


def concat_samples(blocks: Iterable[ImuSamples]) -> ImuSamples:
    """Concatenate blocks of one sensor in order. Magnetometer rows missing in a block become NaN."""
    parts = list(blocks)
    if not parts:
        empty = np.zeros((0, 3))
        return ImuSamples(np.zeros(0), empty, empty.copy(), None, np.zeros(0, dtype=bool))
    if len(parts) == 1:
        return parts[0]
    any_mag = any(b.mag_uT is not None for b in parts)
    mag: FloatArray | None = None
    if any_mag:
        mag = np.concatenate([b.mag_uT if b.mag_uT is not None else np.full((len(b), 3), np.nan) for b in parts])
    return ImuSamples(
        t_s=np.concatenate([b.t_s for b in parts]),
        acc_m_s2=np.concatenate([b.acc_m_s2 for b in parts]),
        gyr_rad_s=np.concatenate([b.gyr_rad_s for b in parts]),
        mag_uT=mag,
        gap_before=np.concatenate([b.gap_before if b.gap_before is not None else np.zeros(len(b), bool) for b in parts]),
    )


class Ingest:
    """Notifications of any number of sensors in, ``(sensor_id, ImuSamples)`` blocks out."""

    def __init__(self, config: StreamConfig | None = None, decode: Decoder = decode_packet) -> None:
        self.config = config or StreamConfig()
        self._decode = decode
        self.streams: dict[str, SensorStream] = {}

    def stream(self, sensor_id: str) -> SensorStream:
        """The stream of ``sensor_id``, created on first use."""
        stream = self.streams.get(sensor_id)
        if stream is None:
            stream = self.streams[sensor_id] = SensorStream(sensor_id, self.config, self._decode)
        return stream

    def push(self, notification: Notification) -> list[tuple[str, ImuSamples]]:
        """Take one notification; return the blocks released by it (usually 0 or 1)."""
        sid = notification.sensor_id
        return [(sid, b) for b in self.stream(sid).push(notification.t_host_s, notification.payload)]

    def poll(self, t_host_s: float) -> list[tuple[str, ImuSamples]]:
        """Release packets held past the reorder timeout on every stream."""
        return [(sid, b) for sid, s in self.streams.items() for b in s.poll(t_host_s)]

    def flush(self) -> list[tuple[str, ImuSamples]]:
        """End of input: release everything held on every stream."""
        return [(sid, b) for sid, s in self.streams.items() for b in s.flush()]

    def stats(self) -> dict[str, StreamStats]:
        return {sid: s.stats() for sid, s in self.streams.items()}


class _DeferredSensorStream(SensorStream):
    """A :class:`SensorStream` for a whole recording: the same state machine, output built at the end.

    Releasing a packet records what the online stream would compute for it (its gap flag, the
    clock mapping's state at that moment, the nudge after a restart) instead of building a block;
    :meth:`collect` then builds the sensor's samples in one vectorised pass. Every value is computed
    with the same floating-point operations as the online path, and the clock map keeps its lower
    hull incrementally (:class:`~sensorhub.clock.WindowHullClockMapper`, the same hull as the
    online rebuild), so the result equals the online stream's blocks concatenated
    (``tests/test_ingest_batch.py`` checks this to the bit).
    """

    def __init__(self, sensor_id: str, config: StreamConfig | None = None, decode: Decoder = decode_packet) -> None:
        super().__init__(sensor_id, config, decode)
        self.clock = WindowHullClockMapper(self.config.clock)
        self._out_packets: list[DataPacket] = []
        self._out_t_first_us: list[int] = []
        self._out_states: list[ClockState] = []
        self._out_shift_s: list[float] = []
        self._out_gap: list[bool] = []

    def push_decoded(self, t_host_s: float, packet: DataPacket | ProtocolError) -> None:
        """:meth:`SensorStream.push` of a payload decoded beforehand (or the error decoding raised)."""
        if not self._host_time_ok(t_host_s):
            return
        if isinstance(packet, ProtocolError):
            self._push_malformed(packet, t_host_s)
        else:
            self.push_packet(packet, t_host_s)

    def _emit(self, entry: _Entry) -> ImuSamples:
        packet = entry.packet
        self._out_gap.append(self._take_gap(entry))
        # The sensor times of the packet's first and last sample exactly as _emit computes them.
        t_first_s = (entry.t_first_us + 0.0) * 1e-6
        t_last_s = (entry.t_first_us + (packet.n_samples - 1) * packet.sample_period_us) * 1e-6
        state, first, last = self.clock.to_host_deferred(t_first_s, t_last_s)
        shift = 0.0
        if first <= self._last_t_out_s:
            shift = self._last_t_out_s - first + 1e-6
            last = last + shift
        self._last_t_out_s = last
        self._out_packets.append(packet)
        self._out_t_first_us.append(entry.t_first_us)
        self._out_states.append(state)
        self._out_shift_s.append(shift)
        return _NO_BLOCK

    @staticmethod
    def _merge(blocks: list[ImuSamples]) -> list[ImuSamples]:
        return []  # nothing is released block by block; see collect()

    def release_output(self) -> None:
        """Drop the packets kept for :meth:`collect` (after it): the stream then holds only its state
        and counters, small enough to hand to another process for :meth:`stats`."""
        self._out_packets, self._out_t_first_us, self._out_states, self._out_shift_s, self._out_gap = [], [], [], [], []

    def collect(self) -> ImuSamples:
        """All samples released so far, as :func:`assemble` would concatenate them."""
        packets = self._out_packets
        if not packets:
            return concat_samples([])
        counts = np.array([p.n_samples for p in packets], dtype=np.int64)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        total = int(counts.sum())
        k = (np.arange(total) - np.repeat(starts, counts)).astype(np.float64)
        period_us = np.repeat(np.array([p.sample_period_us for p in packets], dtype=np.float64), counts)
        t_first_us = np.repeat(np.array(self._out_t_first_us, dtype=np.float64), counts)
        t_sensor_s = (t_first_us + k * period_us) * 1e-6
        t_s = host_times(t_sensor_s, self._out_states, counts)
        shift_s = np.array(self._out_shift_s, dtype=np.float64)
        if np.any(shift_s != 0.0):
            t_s = t_s + np.repeat(shift_s, counts)
        gap_before = np.zeros(total, dtype=bool)
        gap_before[starts[np.array(self._out_gap, dtype=bool)]] = True
        mag: FloatArray | None = None
        if any(p.has_mag for p in packets):
            mag = np.concatenate([p.mag_uT if p.mag_uT is not None else np.full((p.n_samples, 3), np.nan) for p in packets])
        return ImuSamples(
            t_s=t_s,
            acc_m_s2=np.concatenate([p.acc_m_s2 for p in packets]),
            gyr_rad_s=np.concatenate([p.gyr_rad_s for p in packets]),
            mag_uT=mag,
            gap_before=gap_before,
        )


_NO_BLOCK = ImuSamples(np.zeros(0), np.zeros((0, 3)), np.zeros((0, 3)), None, np.zeros(0, dtype=bool))


_SensorJob = tuple[str, list[Notification], StreamConfig, Decoder]


def assemble_batch(
    notifications: Iterable[Notification], ingest: Ingest | None = None, *, workers: int = 1,
    meanwhile: Callable[[], object] | None = None,
) -> dict[str, ImuSamples]:
    """:func:`assemble` for a whole recording at once, several times faster, with the same result.

    Each sensor's payloads are decoded in bulk (:func:`sensorhub.protocol.data.decode_packets`),
    run through the same per-packet rules as :class:`SensorStream` (loss, duplicates, reordering,
    reboots, the online clock map) and its samples are assembled and mapped to the hub clock in
    one vectorised pass at the end. Samples, times, gap flags and :meth:`Ingest.stats` are
    bit-identical to :func:`assemble`. Only for complete batches: nothing is released before the
    end, so the live service and ``sensorhub replay`` keep using :class:`Ingest`.

    Sensors are independent of each other, so with ``workers`` > 1 (and a process that may fork,
    :func:`sensorhub.workers.can_fork`) up to ``workers - 1`` forked child processes assemble some of
    the sensors while this process assembles the rest: the same code on the same data, so the same
    result, in about half the wall time on two cores. ``meanwhile`` is other work for this process
    (a caller's imports for the next stage): when given, forked workers (up to ``workers`` of them)
    assemble every sensor while this process calls it. It is called exactly once in any case.

    ``ingest`` (to read its stats afterwards) must not have seen notifications yet. The result's keys
    are in order of each sensor's first notification (:func:`assemble`: of its first released block).
    """
    ingest = ingest or Ingest()
    if ingest.streams:
        raise ConfigurationError(
            f"assemble_batch needs a fresh Ingest; this one already has streams {sorted(ingest.streams)}"
        )
    by_sensor: dict[str, list[Notification]] = {}
    for notification in notifications:
        by_sensor.setdefault(notification.sensor_id, []).append(notification)
    jobs = [(sid, notes, ingest.config, ingest._decode) for sid, notes in by_sensor.items()]
    if workers > 1:
        done = _assemble_in_parallel(jobs, workers, meanwhile)
    else:
        if meanwhile is not None:
            meanwhile()
        done = _assemble_sensors(jobs)
    out: dict[str, ImuSamples] = {}
    for sid in by_sensor:
        ingest.streams[sid], out[sid] = done[sid]
    return out


def _assemble_in_parallel(
    jobs: list[_SensorJob], workers: int, meanwhile: Callable[[], object] | None
) -> dict[str, tuple[SensorStream, ImuSamples]]:
    """:func:`_assemble_sensors` of ``jobs`` shared out over forked workers and, unless it has
    ``meanwhile`` to do, this process."""
    from sensorhub.workers import ForkedWorker, can_fork  # process handling only where asked for

    in_here = meanwhile is None
    if not can_fork() or len(jobs) < (2 if in_here else 1):
        if meanwhile is not None:
            meanwhile()
        return _assemble_sensors(jobs)
    # Greedy split into groups of about equal notification counts; group 0 stays here unless busy.
    groups: list[list[_SensorJob]] = [[] for _ in range(min(workers, len(jobs)))]
    loads = [0] * len(groups)
    for job in sorted(jobs, key=lambda j: -len(j[1])):
        k = loads.index(min(loads))
        groups[k].append(job)
        loads[k] += len(job[1])
    children = [ForkedWorker(f"ingest of {', '.join(j[0] for j in group)}", (_assemble_sensors_in_child, (group,), {}))
                for group in (groups[1:] if in_here else groups)]
    try:
        done = _assemble_sensors(groups[0]) if in_here else {}
        if meanwhile is not None:
            meanwhile()
        for child in children:
            done.update(child.result())
    finally:
        for child in children:
            child.close()
    for sid, _, _, decode in jobs:
        done[sid][0]._decode = decode  # see _assemble_sensors_in_child
    return done


def _assemble_sensors_in_child(jobs: list[_SensorJob]) -> dict[str, tuple[SensorStream, ImuSamples]]:
    """:func:`_assemble_sensors` whose streams can be pickled: the decoder (perhaps a closure, which
    pickle refuses) does not travel back; the parent puts it back in."""
    done = _assemble_sensors(jobs)
    for stream, _ in done.values():
        stream._decode = decode_packet
    return done


def _assemble_sensors(jobs: list[_SensorJob]) -> dict[str, tuple[SensorStream, ImuSamples]]:
    """Batch-assemble each sensor of ``jobs``: its stream (for the stats) and its samples."""
    done: dict[str, tuple[SensorStream, ImuSamples]] = {}
    for sid, notes, config, decode in jobs:
        stream = _DeferredSensorStream(sid, config, decode)
        payloads = [n.payload for n in notes]
        decoded: list[DataPacket | ProtocolError]
        if decode is decode_packet:
            decoded = decode_packets(payloads)
        else:
            decoded = [_decode_or_error(decode, p) for p in payloads]
        for note, packet in zip(notes, decoded, strict=True):
            stream.push_decoded(note.t_host_s, packet)
        stream.flush()
        done[sid] = (stream, stream.collect())
        stream.release_output()
    return done


def _decode_or_error(decode: Decoder, payload: bytes) -> DataPacket | ProtocolError:
    try:
        return decode(payload)
    except ProtocolError as exc:
        return exc


def assemble(notifications: Iterable[Notification], ingest: Ingest | None = None) -> dict[str, ImuSamples]:
    """Run a whole batch through :class:`Ingest` and concatenate each sensor's blocks.

    Pass your own ``ingest`` to read its :meth:`Ingest.stats` afterwards.
    """
    ingest = ingest or Ingest()
    blocks: dict[str, list[ImuSamples]] = {}
    for notification in notifications:
        for sid, block in ingest.push(notification):
            blocks.setdefault(sid, []).append(block)
    for sid, block in ingest.flush():
        blocks.setdefault(sid, []).append(block)
    for sid in ingest.streams:
        blocks.setdefault(sid, [])
    return {sid: concat_samples(parts) for sid, parts in blocks.items()}
