"""BLE transport effects: sensor clocks, batching into packets, connection-event timing and loss.

What one simulated sensor does, in the order the firmware and the radio do it:

1. Its crystal runs at ``1 + drift`` of true time (drift a few tens of ppm) and starts at a random
   u32 µs value, so the 32-bit timestamp may wrap during a session. Samples are taken every
   ``1e6 / rate`` µs *of the sensor clock*; their true times follow from the clock model.
2. Samples are batched, as many per notification as the ATT MTU allows
   (:func:`sensorhub.protocol.max_samples_per_packet`), quantised and encoded with
   :func:`sensorhub.protocol.encode_packet`; the 16-bit sequence number starts at a random value.
3. A packet is ready when its last sample has been taken (plus a little firmware latency) and leaves
   at the next connection event (the central's interval, 7.5-50 ms). Interference makes the link
   layer retry at later events; a few packets fit in one event, the rest queue.
4. The host stamps it with its own clock: event time plus a one-sided scheduling delay (mostly a
   millisecond or two, occasionally a stall of tens of ms that also delays the packets queued behind
   it). Per sensor, receive order is send order.
5. With probability ``loss`` a packet is lost above the link layer (as BlueZ drops notifications
   under load), independently or in bursts; the simulator records which.

The host clock is the simulation's true time (seconds since the recording started). Pure
computation: the caller writes the notifications.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from sensorhub.notification import Notification
from sensorhub.protocol import encode_packet, max_samples_per_packet
from sensorhub.protocol.spec import rate_code_for_hz
from sensorhub.sim.rotations import FloatArray

U32 = 1 << 32


@dataclass(frozen=True)
class SensorClock:
    """Sensor clock model: ``t_sensor_us = start_us + (t_true - t_on_s) * (1 + drift_ppm * 1e-6) * 1e6``."""

    start_us: int
    """Sensor clock (unwrapped µs) at its first sample."""
    t_on_s: float
    """True (host) time of the first sample."""
    drift_ppm: float

    def sample_times(self, rate_hz: float, duration_s: float) -> tuple[FloatArray, FloatArray]:
        """Unwrapped sensor times (µs) and true times (s) of every sample until ``duration_s``."""
        period_us = 1e6 / rate_hz
        scale = 1.0 + self.drift_ppm * 1e-6
        n = int(np.floor((duration_s - self.t_on_s) * rate_hz * scale)) + 1
        k = np.arange(max(n, 0), dtype=np.float64)
        t_sensor_us = self.start_us + k * period_us
        t_true_s = self.t_on_s + k * period_us * 1e-6 / scale
        return t_sensor_us, t_true_s


@dataclass(frozen=True)
class LinkConfig:
    """Connection and host behaviour of one sensor's link."""

    mtu: int = 247
    conn_interval_s: float = 0.015
    max_packets_per_event: int = 4
    retry_probability: float = 0.03
    """Chance that a packet misses a connection event (interference) and waits for the next."""
    firmware_latency_s: float = 0.0005
    host_delay_mean_s: float = 0.0015
    stall_probability: float = 0.004
    stall_range_s: tuple[float, float] = (0.02, 0.09)
    loss: float = 0.0
    loss_burst: float = 1.0
    """Mean number of consecutive packets lost together (1: independent losses)."""
    range_code: int = 1
    """Full-scale range code of the packets (1: ±4 g, ±500 °/s)."""


@dataclass
class LinkResult:
    """Notifications of one sensor as the host received them, and what the link lost."""

    notifications: list[Notification]
    packets_sent: int
    dropped_seq: list[int] = field(default_factory=list)
    samples_per_packet: int = 0
    first_seq: int = 0
    """Sequence number of the first packet the sensor sent (whether or not it arrived)."""

    @property
    def dropped(self) -> int:
        return len(self.dropped_seq)


def transmit(
    sensor_id: str,
    rng: np.random.Generator,
    clock: SensorClock,
    rate_hz: float,
    t_sensor_us: FloatArray,
    t_true_s: FloatArray,
    acc_m_s2: FloatArray,
    gyr_rad_s: FloatArray,
    mag_uT: FloatArray | None,
    link: LinkConfig,
) -> LinkResult:
    """Batch, encode, time and (maybe) drop the samples of one sensor; see the module docstring."""
    has_mag = mag_uT is not None
    per_packet = max_samples_per_packet(link.mtu, has_mag)
    if per_packet < 1:
        raise ValueError(f"ATT MTU {link.mtu} cannot carry one {'9' if has_mag else '6'}-axis sample")
    rate_code = rate_code_for_hz(rate_hz)
    n = len(t_true_s)
    n_packets = n // per_packet  # a trailing partial batch is never sent (streaming stopped)
    seq0 = int(rng.integers(0, 1 << 16))
    phase = float(rng.uniform(0.0, link.conn_interval_s))
    ci = link.conn_interval_s

    lost = lost_packets(rng.random(n_packets), link.loss, link.loss_burst)
    out: list[Notification] = []
    dropped: list[int] = []
    last_event_index = -1
    in_event = 0
    last_host = -np.inf
    for j in range(n_packets):
        lo, hi = j * per_packet, (j + 1) * per_packet
        seq = (seq0 + j) & 0xFFFF
        t_ready = t_true_s[hi - 1] + link.firmware_latency_s
        event = int(np.ceil((t_ready - phase) / ci))
        while rng.random() < link.retry_probability:
            event += 1
        event = max(event, last_event_index)
        if event == last_event_index:
            in_event += 1
            if in_event >= link.max_packets_per_event:
                event += 1
                in_event = 0
        else:
            in_event = 0
        last_event_index = event
        t_event = phase + event * ci
        delay = rng.exponential(link.host_delay_mean_s)
        if rng.random() < link.stall_probability:
            delay += rng.uniform(*link.stall_range_s)
        t_host = max(t_event + delay, last_host)
        last_host = t_host
        if lost[j]:
            dropped.append(seq)
            continue
        payload = encode_packet(
            seq=seq,
            t_first_us=int(np.rint(t_sensor_us[lo])) % U32,
            rate_code=rate_code,
            range_code=link.range_code,
            acc_m_s2=acc_m_s2[lo:hi],
            gyr_rad_s=gyr_rad_s[lo:hi],
            mag_uT=None if mag_uT is None else mag_uT[lo:hi],
        )
        out.append(Notification(sensor_id, float(t_host), payload))
    return LinkResult(out, n_packets, dropped, per_packet, seq0)


def lost_packets(u: FloatArray, loss: float, mean_burst: float) -> NDArray[np.bool_]:
    """Which packets are lost, from uniform draws ``u``: long-run fraction ``loss``.

    With ``mean_burst`` 1 each packet is lost independently. Above 1, a two-state (Gilbert) chain:
    a burst ends after each lost packet with probability ``1 / mean_burst``, and starts with the
    probability that keeps the long-run loss at ``loss`` - as when a busy host stack drops several
    notifications in a row.
    """
    if mean_burst <= 1.0 or loss <= 0.0:
        return np.asarray(u < loss)
    p_end = 1.0 / mean_burst
    p_start = loss * p_end / (1.0 - loss)
    out = np.empty(len(u), dtype=bool)
    lost = False
    for i, x in enumerate(u.tolist()):
        lost = x >= p_end if lost else x < p_start
        out[i] = lost
    return out


def random_clock(rng: np.random.Generator, drift_ppm_max: float = 50.0, t_on_max_s: float = 0.05) -> SensorClock:
    """A sensor clock with a random u32 start, drift in ±``drift_ppm_max`` and start-up delay."""
    return SensorClock(
        start_us=int(rng.integers(0, U32)),
        t_on_s=float(rng.uniform(0.002, t_on_max_s)),
        drift_ppm=float(rng.uniform(-drift_ppm_max, drift_ppm_max)),
    )


def merge_by_host_time(*streams: list[Notification]) -> list[Notification]:
    """All notifications in host receive order (stable for equal times)."""
    merged = [n for s in streams for n in s]
    merged.sort(key=lambda n: n.t_host_s)
    return merged
