"""WebSocket fan-out: one bounded send queue per browser, and the display-rate frame decimator.

Two rules make a slow or stuck browser harmless:

* :meth:`Broadcaster.publish` never waits. It encodes a message once and offers it to every client's
  queue with ``put_nowait``; a client whose queue is full is *dropped*: its sender task is cancelled
  and the socket is closed with code 1008 and a reason, so ingest and the other clients go on
  exactly as before.
* Each client has its own sender task, the only place that awaits the socket.

:class:`FrameDecimator` turns the pipeline's 100-200 Hz angle frames into display-rate pushes: per
stream the latest frame plus the minimum and maximum hip rotation since the previous push, so a
peak between two pushes is not lost. The pipeline latency of a frame (notification entering the hub
-> that frame leaving on the socket) is measured by the sender, after the send returned.

Message schemas are in ``docs/live-api.md``. This module knows nothing about the pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from sensorhub.motion.pipeline import AngleFrame

log = logging.getLogger(__name__)

#: WebSocket close code for a client dropped as too slow (RFC 6455 "policy violation").
CLOSE_TOO_SLOW = 1008
TOO_SLOW_REASON = "client too slow: send queue full"


def finite_or_none(value: float) -> float | None:
    """JSON has no NaN: a missing angle goes on the wire as null."""
    return value if math.isfinite(value) else None


def round_or_none(value: float | None, digits: int = 3) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


def dumps(message: dict[str, Any]) -> str:
    """Compact JSON; NaN is rejected so a stray one is a bug found, not a broken browser parser."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


@dataclass(slots=True)
class Outgoing:
    """One encoded message and, for frame messages, the hub entry times (``perf_counter``) of the
    notifications whose frames it carries."""

    text: str
    entered_s: tuple[float, ...] = ()
    stages: Any = None
    """What a :class:`~sensorhub.service.stages.StageTrace` needs of a frame message (None: no trace)."""


@dataclass(eq=False)
class Client:
    """One connected browser."""

    id: int
    websocket: WebSocket
    queue: asyncio.Queue[Outgoing]
    connected_at: float = field(default_factory=time.monotonic)
    dropped: asyncio.Event = field(default_factory=asyncio.Event)
    drop_reason: str = ""
    sent: int = 0


class Broadcaster:
    """The set of connected clients and the never-blocking fan-out to them."""

    def __init__(
        self,
        queue_size: int = 64,
        *,
        on_latency: Callable[[float], None] | None = None,
        on_drop: Callable[[Client], None] | None = None,
        on_sent: Callable[[Outgoing, float, float, int], None] | None = None,
    ) -> None:
        self.queue_size = queue_size
        self.clients: set[Client] = set()
        self._ids = itertools.count(1)
        self._on_latency = on_latency
        self._on_drop = on_drop
        self.on_sent = on_sent
        """Called with (message, send start, sent, client id) for messages carrying ``stages``."""
        self.dropped_total = 0

    def __len__(self) -> int:
        return len(self.clients)

    def add(self, websocket: WebSocket, first: Outgoing | None = None) -> Client:
        """Register an accepted socket; ``first`` (the hello) is queued before anything else."""
        client = Client(next(self._ids), websocket, asyncio.Queue(maxsize=self.queue_size))
        if first is not None:
            client.queue.put_nowait(first)
        self.clients.add(client)
        log.info("websocket client %d connected (%d now)", client.id, len(self.clients))
        return client

    def remove(self, client: Client) -> None:
        if client in self.clients:
            self.clients.discard(client)
            log.info("websocket client %d left (%d now)", client.id, len(self.clients))

    def publish(self, message: dict[str, Any] | str, entered_s: Sequence[float] = (), stages: Any = None) -> None:
        """Offer one message to every client without waiting; drop the clients that cannot take it."""
        if not self.clients:
            return
        out = Outgoing(message if isinstance(message, str) else dumps(message), tuple(entered_s), stages)
        for client in list(self.clients):
            if client.dropped.is_set():
                continue
            try:
                client.queue.put_nowait(out)
            except asyncio.QueueFull:
                self.drop(client, TOO_SLOW_REASON)

    def drop(self, client: Client, reason: str) -> None:
        """Stop serving ``client``: :meth:`serve` closes its socket with ``reason``."""
        if client.dropped.is_set():
            return
        client.drop_reason = reason
        client.dropped.set()
        self.dropped_total += 1
        self.remove(client)
        log.warning("websocket client %d dropped: %s", client.id, reason)
        if self._on_drop is not None:
            self._on_drop(client)

    async def serve(self, client: Client) -> None:
        """Run one client until it disconnects or is dropped (call from the WebSocket endpoint)."""
        sender = asyncio.create_task(self._send_loop(client), name=f"ws-send-{client.id}")
        receiver = asyncio.create_task(self._receive_loop(client), name=f"ws-recv-{client.id}")
        dropped = asyncio.create_task(client.dropped.wait(), name=f"ws-drop-{client.id}")
        try:
            await asyncio.wait({sender, receiver, dropped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, receiver, dropped):
                task.cancel()
            for task in (sender, receiver, dropped):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.remove(client)
        if client.dropped.is_set():
            # The peer may not read any more: never let closing it hang the handler.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.websocket.close(CLOSE_TOO_SLOW, client.drop_reason), 1.0)

    async def _send_loop(self, client: Client) -> None:
        ws = client.websocket
        on_latency = self._on_latency
        while True:
            out = await client.queue.get()
            start = time.perf_counter() if out.stages is not None else 0.0
            await ws.send_text(out.text)
            client.sent += 1
            if out.entered_s and on_latency is not None:
                now = time.perf_counter()
                for t in out.entered_s:
                    on_latency(now - t)
                if out.stages is not None and self.on_sent is not None:
                    self.on_sent(out, start, now, client.id)

    @staticmethod
    async def _receive_loop(client: Client) -> None:
        # The protocol is server -> client; reading only notices the disconnect.
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                msg = await client.websocket.receive()
                if msg.get("type") == "websocket.disconnect":
                    return


@dataclass(slots=True)
class _Pending:
    latest: AngleFrame
    rot_min: float
    rot_max: float
    n: int
    entered_s: float


class FrameDecimator:
    """Latest frame and hip-rotation extremes per stream since the last push."""

    def __init__(self) -> None:
        self._pending: dict[str, _Pending] = {}

    def __bool__(self) -> bool:
        return bool(self._pending)

    def add(self, key: str, frames: Sequence[AngleFrame], entered_s: float) -> None:
        """Take the frames one notification produced on stream ``key``."""
        if not frames:
            return
        rots = [f.hip_rotation_deg for f in frames if math.isfinite(f.hip_rotation_deg)]
        lo = min(rots) if rots else math.inf
        hi = max(rots) if rots else -math.inf
        p = self._pending.get(key)
        if p is None:
            self._pending[key] = _Pending(frames[-1], lo, hi, len(frames), entered_s)
        else:
            p.latest = frames[-1]
            p.rot_min = min(p.rot_min, lo)
            p.rot_max = max(p.rot_max, hi)
            p.n += len(frames)
            p.entered_s = entered_s

    def keys(self) -> list[str]:
        """Streams with frames waiting."""
        return list(self._pending)

    def take(self, keys: Sequence[str] | None = None) -> dict[str, tuple[AngleFrame, float | None, float | None, int, float]]:
        """Per stream (all, or ``keys``): (latest frame, min, max hip rotation, frame count, entry time)."""
        out: dict[str, tuple[AngleFrame, float | None, float | None, int, float]] = {}
        for k in list(self._pending) if keys is None else keys:
            p = self._pending.pop(k, None)
            if p is not None:
                out[k] = (p.latest, p.rot_min if math.isfinite(p.rot_min) else None,
                          p.rot_max if math.isfinite(p.rot_max) else None, p.n, p.entered_s)
        return out
