"""Replay a recording as a source of notifications, paced like the session it came from.

A :class:`ReplaySource` yields the recording's :class:`~sensorhub.notification.Notification` objects
unchanged (same payload bytes, same ``t_host_s``), so everything downstream runs exactly as it would on
live BLE data. Pacing follows ``t_host_s``: ``speed=1.0`` is real time, ``4.0`` four times faster,
``None`` as fast as the consumer takes them. It iterates synchronously (``for n in source``) and
asynchronously (``async for n in source``; the live service uses this to run "as if sensors were
live" without blocking its event loop).

With ``loop=True`` the recording starts over after its end, forever; each pass's host times are
shifted by the recording's span plus ``loop_gap_s`` so they keep increasing. The sensors' own
sequence numbers and clocks start over too, so the ingest sees what a reboot of every sensor looks
like: a new clock epoch with a gap, not garbage.

The clock and the sleep functions are parameters so tests can measure pacing with a fake clock.
This module reads the recording through :mod:`sensorhub.recording` and does nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from sensorhub.errors import ConfigurationError
from sensorhub.notification import Notification
from sensorhub.recording import Recording, open_recording

log = logging.getLogger(__name__)

__all__ = ["ReplaySource", "aiter_replay", "iter_replay"]


@dataclass
class ReplaySource:
    """The notifications of ``recording``, paced by their host receive times (see the module docstring)."""

    recording: Recording
    speed: float | None = 1.0
    """Replay speed factor: 1.0 real time, 4.0 four times faster, None as fast as possible."""
    loop: bool = False
    loop_gap_s: float = 1.0
    """Session time inserted between two passes when looping."""
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    async_sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)

    def __post_init__(self) -> None:
        if self.speed is not None and not (self.speed > 0 and self.speed < float("inf")):
            raise ConfigurationError(f"replay speed must be a positive number, got {self.speed}")
        if self.loop_gap_s < 0:
            raise ConfigurationError(f"replay loop gap must be >= 0 s, got {self.loop_gap_s}")

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], speed: float | None = 1.0, *, loop: bool = False, loop_gap_s: float = 1.0
    ) -> ReplaySource:
        """Open the recording at ``path`` (RecordingError if it cannot be read) and wrap it."""
        return cls(open_recording(path), speed, loop=loop, loop_gap_s=loop_gap_s)

    def _schedule(self) -> Iterator[tuple[Notification, float]]:
        """Notifications with their due time in session seconds after the first one."""
        shift = 0.0
        t0: float | None = None
        while True:
            span: tuple[float, float] | None = None  # first and last host time of this pass
            for n in self.recording.iter_notifications():
                if t0 is None:
                    t0 = n.t_host_s
                span = (n.t_host_s if span is None else span[0], n.t_host_s)
                note = n if shift == 0.0 else Notification(n.sensor_id, n.t_host_s + shift, n.payload)
                yield note, note.t_host_s - t0
            if not self.loop or span is None:
                return
            shift += (span[1] - span[0]) + self.loop_gap_s
            log.info("replay of %s starts over (pass shifted by %.3f s)", self.recording.path, shift)

    def _wait_s(self, due_s: float, wall0: float) -> float:
        assert self.speed is not None
        return wall0 + due_s / self.speed - self.clock()

    def __iter__(self) -> Iterator[Notification]:
        wall0 = self.clock()
        for note, due_s in self._schedule():
            if self.speed is not None:
                wait = self._wait_s(due_s, wall0)
                if wait > 0:
                    self.sleep(wait)
            yield note

    async def __aiter__(self) -> AsyncIterator[Notification]:
        wall0 = self.clock()
        for note, due_s in self._schedule():
            if self.speed is not None:
                wait = self._wait_s(due_s, wall0)
                if wait > 0:
                    await self.async_sleep(wait)
            else:
                await asyncio.sleep(0)  # as fast as possible, but let the event loop breathe
            yield note


def iter_replay(recording: Recording, speed: float | None = None, *, loop: bool = False) -> Iterator[Notification]:
    """Notifications of ``recording`` paced at ``speed`` (None: as fast as possible)."""
    return iter(ReplaySource(recording, speed, loop=loop))


def aiter_replay(recording: Recording, speed: float | None = None, *, loop: bool = False) -> AsyncIterator[Notification]:
    """Async variant of :func:`iter_replay`."""
    return ReplaySource(recording, speed, loop=loop).__aiter__()
