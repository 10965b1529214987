"""Turning the wrapping u16 sequence number and u32 µs timestamp into increasing integers.

The wire fields wrap: ``seq`` after 65535 packets, ``t_first_us`` after 2^32 µs = 71.6 min. Both
are unwrapped the same way: of all integers congruent to the received value modulo 2^bits, take
the one nearest to a *reference* (the last unwrapped value, or a better guess). That is right as
long as the true distance to the reference is less than half the range:

* seq: fewer than 32768 packets lost in a row (at 16 samples per packet and 400 Hz that is
  21.8 minutes of silence; at 1 sample per packet and 100 Hz, 5.5 minutes).
* t_first_us: less than 2^31 µs = 35.8 min between the reference and the packet. After a longer
  outage pass ``reference = last_unwrapped_us + elapsed_host_time_us`` instead of the last value;
  then only the sensor clock's drift over the outage has to stay below 35.8 min.

A value *behind* the reference unwraps to a smaller integer (possibly negative right after the
first packet): that is how duplicates and reordered packets show. A sensor that reboots restarts
both counters; its seq then looks like a jump, so a stream should treat a large forward jump of
seq together with a backwards jump of the (unwrapped) timestamp as a restart.

:class:`SequenceUnwrapper` adds the bookkeeping a stream needs: gap size, duplicates and late
(reordered) packets. It holds state but does no I/O and never logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["SeqStatus", "SeqUpdate", "SequenceUnwrapper", "unwrap_counter", "unwrap_seq", "unwrap_time_us"]


def unwrap_counter(reference: int | None, value: int, bits: int) -> int:
    """The integer congruent to ``value`` mod 2^bits nearest to ``reference``.

    ``reference`` None (first packet) returns ``value``. Distances are taken in (-2^(bits-1),
    2^(bits-1)]: an exact half-range jump counts as forward.
    """
    if reference is None:
        return value
    modulus = 1 << bits
    delta = (value - reference) % modulus
    if delta > modulus // 2:
        delta -= modulus
    return reference + delta


def unwrap_seq(prev_unwrapped: int | None, seq16: int) -> int:
    """Unwrap a u16 packet sequence number against the previous unwrapped one.

    >>> unwrap_seq(65535, 0), unwrap_seq(65536, 65535), unwrap_seq(None, 7)
    (65536, 65535, 7)
    """
    return unwrap_counter(prev_unwrapped, seq16, 16)


def unwrap_time_us(reference_us: int | None, t32_us: int) -> int:
    """Unwrap a u32 sensor timestamp (µs) against a reference in the same unwrapped time base.

    >>> unwrap_time_us(4_294_967_000, 200)
    4294967496
    """
    return unwrap_counter(reference_us, t32_us, 32)


class SeqStatus(Enum):
    """How a packet's sequence number relates to what the stream has seen."""

    FIRST = "first"
    """The first packet of the stream."""
    IN_ORDER = "in_order"
    """Exactly one after the highest seen."""
    GAP = "gap"
    """Ahead of the highest seen by more than one; ``lost`` packets are missing (so far)."""
    LATE = "late"
    """Behind the highest seen and not seen before: a reordered packet that fills part of a gap."""
    DUPLICATE = "duplicate"
    """Already seen (BLE retransmission or a replayed record); drop it."""
    STALE = "stale"
    """Further behind the highest seen than the history window; cannot tell late from duplicate."""


@dataclass(frozen=True, slots=True)
class SeqUpdate:
    unwrapped: int
    """Unwrapped sequence number (starts at the first packet's seq, increases by 1 per packet)."""
    status: SeqStatus
    lost: int = 0
    """For GAP: number of sequence numbers skipped just before this packet; else 0."""


class SequenceUnwrapper:
    """Per-stream sequence bookkeeping: unwrapping plus gap, duplicate and reorder detection.

    Feed every received packet's ``seq`` in arrival order to :meth:`update`. Seen numbers are
    remembered for the last ``window`` sequence numbers behind the highest, so duplicates and late
    packets are told apart within that window (1024 packets is several seconds at any rate).
    """

    def __init__(self, window: int = 1024) -> None:
        if window < 1:
            raise ValueError(f"SequenceUnwrapper window must be >= 1, got {window}")
        self.window = window
        self.highest: int | None = None
        self._seen: set[int] = set()

    def update(self, seq16: int) -> SeqUpdate:
        unwrapped = unwrap_seq(self.highest, seq16)
        if self.highest is None:
            self.highest = unwrapped
            self._seen.add(unwrapped)
            return SeqUpdate(unwrapped, SeqStatus.FIRST)
        if unwrapped > self.highest:
            lost = unwrapped - self.highest - 1
            self.highest = unwrapped
            self._seen.add(unwrapped)
            if len(self._seen) > 2 * self.window:
                floor = self.highest - self.window
                self._seen = {s for s in self._seen if s > floor}
            return SeqUpdate(unwrapped, SeqStatus.GAP if lost else SeqStatus.IN_ORDER, lost)
        if unwrapped <= self.highest - self.window:
            return SeqUpdate(unwrapped, SeqStatus.STALE)
        if unwrapped in self._seen:
            return SeqUpdate(unwrapped, SeqStatus.DUPLICATE)
        self._seen.add(unwrapped)
        return SeqUpdate(unwrapped, SeqStatus.LATE)
