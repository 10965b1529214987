"""``sensorhub replay FILE [--speed X | --fast] [--loop]``: run a recording through ingest as if live.

The recording's notifications are paced by their receive times (``--speed 4`` four times faster,
``--fast`` as fast as possible), fed through :class:`sensorhub.ingest.Ingest`, and once per second of
session time a status line shows, per sensor, the samples released so far, the sample rate on the
hub clock and the packet loss so far. ``--loop`` starts over at the end (each pass looks like a
reboot of the sensors to ingest) until Ctrl-C. Ctrl-C stops cleanly with a final summary.

:func:`run_replay` is the reusable part: it takes an ``on_block(sensor_id, samples)`` callback so
later stages (fusion, joint angles) can hang off the same replay loop and print their own output.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from sensorhub.ingest import Ingest, StreamStats
from sensorhub.notification import Notification
from sensorhub.replay import ReplaySource
from sensorhub.samples import ImuSamples

BlockCallback = Callable[[str, ImuSamples], None]
StatusCallback = Callable[[float, dict[str, StreamStats]], None]


@dataclass
class ReplayResult:
    """What a replay ended with."""

    stats: dict[str, StreamStats]
    session_s: float
    """Session time covered (host seconds from the first to the last notification fed)."""
    notifications: int
    interrupted: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    """sensor_id -> short label (segment, side) from the recording's sensor declarations."""


def feed(
    notifications: Iterable[Notification],
    ingest: Ingest,
    on_block: BlockCallback | None = None,
    on_status: StatusCallback | None = None,
    status_interval_s: float = 1.0,
) -> tuple[float, int, bool]:
    """Push ``notifications`` through ``ingest``, calling back per block and per status interval.

    ``on_status`` is called every ``status_interval_s`` of session time (host receive time of the
    notifications) and once at the end, after the flush. Ctrl-C (KeyboardInterrupt) stops the feed
    cleanly. Returns (session seconds covered, notifications fed, interrupted).
    """
    t0: float | None = None
    session_s = 0.0
    next_status = status_interval_s
    count = 0
    interrupted = False

    def deliver(blocks: list[tuple[str, ImuSamples]]) -> None:
        if on_block is not None:
            for sid, block in blocks:
                on_block(sid, block)

    try:
        for note in notifications:
            if t0 is None:
                t0 = note.t_host_s
            session_s = note.t_host_s - t0
            while on_status is not None and session_s >= next_status:
                on_status(next_status, ingest.stats())
                next_status += status_interval_s
            deliver(ingest.push(note))
            count += 1
    except KeyboardInterrupt:
        interrupted = True
    deliver(ingest.flush())
    if on_status is not None and count:
        on_status(session_s, ingest.stats())
    return session_s, count, interrupted


def sensor_labels(source: ReplaySource) -> dict[str, str]:
    """sensor_id -> "segment side" from the recording's sensor declarations."""
    return {s.sensor_id: s.segment + (f" {s.side}" if s.side else "") for s in source.recording.sensors}


def replay_source(
    source: ReplaySource,
    on_block: BlockCallback | None = None,
    *,
    on_status: StatusCallback | None = None,
    status_interval_s: float = 1.0,
) -> ReplayResult:
    """Feed an opened :class:`ReplaySource` through a fresh :class:`Ingest` (see :func:`run_replay`)."""
    ingest = Ingest()
    session_s, count, interrupted = feed(source, ingest, on_block, on_status, status_interval_s)
    return ReplayResult(ingest.stats(), session_s, count, interrupted, sensor_labels(source))


def run_replay(
    path: str | os.PathLike[str],
    speed: float | None,
    on_block: BlockCallback | None = None,
    *,
    on_status: StatusCallback | None = None,
    status_interval_s: float = 1.0,
    loop: bool = False,
) -> ReplayResult:
    """Replay the recording at ``path`` through a fresh :class:`Ingest`.

    ``speed`` None replays as fast as possible. ``on_block(sensor_id, samples)`` receives every
    released sample block (the hook for fusion and angles); ``on_status(session_s, stats)`` is called
    once per ``status_interval_s`` of session time. Ctrl-C ends the replay cleanly: the ingest is
    flushed and the result comes back with ``interrupted=True``. A missing or broken file raises
    :class:`~sensorhub.errors.RecordingError`.
    """
    source = ReplaySource.open(path, speed=speed, loop=loop)
    return replay_source(source, on_block, on_status=on_status, status_interval_s=status_interval_s)


def format_status(session_s: float, stats: dict[str, StreamStats], labels: dict[str, str] | None = None) -> str:
    """One status line: per sensor the samples released so far, the rate on the hub clock, the loss so far."""
    parts = [f"t={session_s:7.1f} s"]
    for sid, st in stats.items():
        label = (labels or {}).get(sid, sid)
        rate = "    - Hz" if math.isnan(st.rate_hz) else f"{st.rate_hz:6.2f} Hz"
        loss = 0.0 if math.isnan(st.loss_fraction) else 100.0 * st.loss_fraction
        text = f"{label}: {st.samples:7d} samples {rate} lost {st.packets_lost} ({loss:.1f}%)"
        if st.malformed:
            text += f" malformed {st.malformed}"
        if st.resets:
            text += f" resets {st.resets}"
        parts.append(text)
    return " | ".join(parts)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "replay",
        help="replay a recording through ingest, as if live, with a status line per second",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE", help="session recording")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=1.0, metavar="X", help="replay speed factor (default 1 = real time)")
    pace.add_argument("--fast", action="store_true", help="as fast as possible")
    p.add_argument("--loop", action="store_true", help="start over at the end, until Ctrl-C")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    stream = out if out is not None else sys.stdout
    source = ReplaySource.open(args.file, speed=None if args.fast else args.speed, loop=args.loop)
    labels = sensor_labels(source)

    def on_status(session_s: float, stats: dict[str, StreamStats]) -> None:
        print(format_status(session_s, stats, labels), file=stream, flush=True)

    try:
        result = replay_source(source, on_status=on_status)
        verdict = "interrupted" if result.interrupted else "done"
        print(f"{verdict}: {result.notifications} notifications, {result.session_s:.1f} s of session", file=stream)
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, as other command-line tools do.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep the interpreter's final flush quiet
        return 0
    return 130 if result.interrupted else 0
