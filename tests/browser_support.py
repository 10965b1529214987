"""Helpers for the dashboard's browser tests: a real ``sensorhub serve`` replaying a recording, a
headless Debian Chromium driven by Playwright, and a recorder of the WebSocket messages the page
receives.

Nothing here downloads a browser: the tests use ``/usr/bin/chromium`` (Debian package ``chromium``)
and skip with a reason when it or the ``playwright`` package is missing.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import plotly
import pytest
import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from sensorhub.notification import Notification
from sensorhub.protocol import decode_packet, encode_packet_raw
from sensorhub.recording import Mark, Recording, RecordingWriter, open_recording

REPO = Path(__file__).resolve().parents[1]
REPLAY_DATA = REPO / "replay_data"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_DASHBOARD_LINE = re.compile(r"dashboard: (http://\S+/)")


def require_browser() -> Any:
    """The ``playwright.sync_api`` module, or skip the test with the reason it cannot run."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (install Debian's chromium: apt-get install -y chromium)")
    return pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


@contextmanager
def chromium_page(sync_api: Any, *, width: int = 1440, height: int = 1000) -> Iterator[Any]:
    """A fresh page in headless Chromium; console errors and page errors are collected on
    ``page.errors`` (a list of strings) so tests can assert the dashboard ran cleanly."""
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
            page.on("console", lambda msg: errors.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None)
            page.errors = errors  # type: ignore[attr-defined]
            yield page
        finally:
            browser.close()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page PNG to test-artifacts/ (gitignored) and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@dataclass
class WsRecorder:
    """Every JSON message the page's live WebSocket received, with the monotonic time it arrived."""

    messages: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        def on_socket(ws: Any) -> None:
            if ws.url.endswith("/ws/live"):
                ws.on("framereceived", self._on_payload)

        page.on("websocket", on_socket)

    def _on_payload(self, payload: str | bytes) -> None:
        text = payload.decode() if isinstance(payload, bytes) else payload
        self.messages.append((time.monotonic(), json.loads(text)))

    def frames(self, key: str) -> list[dict[str, Any]]:
        """The per-stream entries of all ``frame`` messages for stream ``key``, in arrival order."""
        return [s for _, m in self.messages if m.get("type") == "frame" for s in m["streams"] if s["key"] == key]

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [m for _, m in self.messages if m.get("type") == "event" and m.get("event") == kind]


class ServiceProcess:
    """``sensorhub serve --replay FILE --speed X`` on a free loopback port, in its own process.

    The service picks the port itself (``--port 0``) and announces the dashboard URL on stdout,
    so there is no race for a port. Storage is SQLite in ``data_dir``.
    """

    def __init__(self, recording: Path, *, speed: float, data_dir: Path, startup_timeout_s: float = 30.0) -> None:
        self.recording = recording
        self.speed = speed
        self.data_dir = data_dir
        self.startup_timeout_s = startup_timeout_s
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self._reader: threading.Thread | None = None

    def __enter__(self) -> Self:
        exe = shutil.which("sensorhub")
        cmd = [exe] if exe else [sys.executable, "-m", "sensorhub"]
        cmd += ["serve", "--replay", str(self.recording), "--speed", str(self.speed),
                "--host", "127.0.0.1", "--port", "0", "--data-dir", str(self.data_dir)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SENSORHUB_")}
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        found = threading.Event()

        def read() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self.output.append(line.rstrip())
                match = _DASHBOARD_LINE.search(line)
                if match and not found.is_set():
                    self.url = match.group(1)
                    found.set()
            found.set()

        self._reader = threading.Thread(target=read, name="serve-output", daemon=True)
        self._reader.start()
        if not found.wait(self.startup_timeout_s) or not self.url:
            self.__exit__(None, None, None)
            raise RuntimeError(f"sensorhub serve did not announce its URL within {self.startup_timeout_s} s: {self.log_tail()}")
        return self

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.output[-lines:])

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: uvicorn shuts down, the hub stops, the store closes
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self._reader is not None:
            self._reader.join(timeout=2)


def _lead_in(rec: Recording, lead_in_s: float) -> list[Notification]:
    """Notifications for ``lead_in_s`` seconds before the recording's first one: per sensor, copies
    of its first packet's samples with consecutive earlier sequence numbers and sensor timestamps,
    so the athlete simply stood still longer before the protocol (host times before the first)."""
    firsts: dict[str, Notification] = {}
    for note in rec.iter_notifications():
        firsts.setdefault(note.sensor_id, note)
        if len(firsts) == len(rec.sensors):
            break
    notes = []
    for note in firsts.values():
        p = decode_packet(note.payload)
        packet_us = p.n_samples * p.sample_period_us
        for j in range(1, math.ceil(lead_in_s * 1e6 / packet_us) + 1):
            payload = encode_packet_raw(
                seq=(p.seq - j) % 0x10000, t_first_us=round(p.t_first_us - j * packet_us) % 0x1_0000_0000,
                rate_code=p.rate_code, range_code=p.range_code, raw=p.raw, sensor_state=p.sensor_state)
            notes.append(Notification(note.sensor_id, note.t_host_s - j * packet_us * 1e-6, payload))
    return sorted(notes, key=lambda n: n.t_host_s)


def write_replay_variant(source: Path, target: Path, *, lead_in_s: float = 0.0,
                         dropout: tuple[str, float, float] | None = None) -> dict[str, str]:
    """Copy recording ``source`` to ``target`` with test scenarios built in; returns the sensor ids
    by segment.

    ``lead_in_s``: that many seconds of standing still before the recording starts (see
    :func:`_lead_in`); every time of the source, marks included, moves later by as much.
    ``dropout=(segment, start_s, end_s)``: the sensor on ``segment`` sends nothing between
    ``start_s`` and ``end_s`` (source times), as when it leaves radio range, and comes back with a
    sequence gap."""
    rec = open_recording(source)
    ids = {s.segment or s.sensor_id: s.sensor_id for s in rec.sensors}
    silent = ids[dropout[0]] if dropout else None
    with RecordingWriter(target, rec.meta, background_flush=False) as writer:
        for sensor in rec.sensors:
            writer.add_sensor(sensor)
        for calibration in rec.calibrations:
            writer.write_calibration(calibration)
        for note in _lead_in(rec, lead_in_s) if lead_in_s > 0 else ():
            writer.write_notification(Notification(note.sensor_id, note.t_host_s + lead_in_s, note.payload))
        for item in rec.iter_records():
            if isinstance(item, Mark):
                writer.write_mark(item.t_host_s + lead_in_s, item.label, **item.data)
            elif isinstance(item, Notification):
                if dropout and item.sensor_id == silent and dropout[1] <= item.t_host_s < dropout[2]:
                    continue
                writer.write_notification(Notification(item.sensor_id, item.t_host_s + lead_in_s, item.payload))
    return ids


@dataclass(frozen=True)
class MockStream:
    """One scripted stream of :class:`MockHub`: a sine of hip rotation and fixed session maxima."""

    athlete: str
    athlete_name: str
    side: str
    amplitude_deg: float
    session_max_ir: float
    session_max_er: float
    period_s: float = 6.0

    @property
    def key(self) -> str:
        return f"{self.athlete}/{self.side}"

    def frame(self, t_s: float, reps: int) -> dict[str, Any]:
        rotation = round(self.amplitude_deg * math.sin(2 * math.pi * t_s / self.period_s), 3)
        return {
            "key": self.key, "athlete": self.athlete, "side": self.side, "session": f"mock-{self.key}", "t_s": round(t_s, 4),
            "hip_rotation": rotation, "hip_rotation_min": rotation, "hip_rotation_max": rotation,
            "hip_flexion": 85.0, "hip_adduction": 0.0, "pelvis_tilt": 1.0, "pelvis_obliquity": -0.5,
            "pelvis_rotation": round(0.1 * rotation, 3), "session_max_ir": self.session_max_ir,
            "session_max_er": self.session_max_er, "reps": reps, "compensating": False, "calibrated": True,
            "gap": False, "n": 1,
        }

    def info(self) -> dict[str, Any]:
        return {
            "key": self.key, "athlete": self.athlete, "athlete_name": self.athlete_name, "side": self.side,
            "session": f"mock-{self.key}", "drill": "seated_rotation", "state": "streaming", "calibration": None,
            "calibrated": True, "reps": 0, "session_max_ir": self.session_max_ir, "session_max_er": self.session_max_er,
            "sensors": {"pelvis": f"{self.athlete}-pelvis", "thigh": f"{self.athlete}-{self.side}-thigh"},
            "targets": {"internal": 35.0, "external": 45.0},
        }


class MockHub:
    """A stand-in for the service with several scripted streams, for what one replay cannot show
    (both sides of two athletes at once): serves dashboards/ and plotly.js like the service and
    pushes ``hello``/``status``/``frame`` messages of docs/live-api.md at ``rate_hz`` on /ws/live.
    Runs uvicorn in a background thread on a free loopback port."""

    def __init__(self, streams: list[MockStream], *, rate_hz: float = 30.0) -> None:
        self.streams = streams
        self.rate_hz = rate_hz
        self.url = ""
        self.frames_sent = 0
        self.connections = 0
        self.calibration_starts: list[dict[str, Any]] = []
        self._injected: list[dict[str, Any]] = []  # append-only; each connection sends what it has not
        self._drop_generation = 0
        self._t0 = time.monotonic()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def inject(self, *messages: dict[str, Any]) -> None:
        """Send these messages to every connected client, between two frames."""
        self._injected.extend(messages)

    def drop_clients(self) -> None:
        """Close every current connection the way the service drops a slow client (code 1008)."""
        self._drop_generation += 1

    def _app(self) -> FastAPI:
        app = FastAPI()
        plotly_js = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"

        @app.get("/vendor/plotly.min.js")
        async def vendor() -> FileResponse:
            return FileResponse(plotly_js, media_type="application/javascript")

        @app.get("/api/calibration/steps")
        async def steps() -> list[dict[str, Any]]:
            names = ("still1", "swings", "bows", "still2")
            return [{"step": n, "prompt": n, "order": i} for i, n in enumerate(names)]

        @app.post("/api/calibration/start")
        async def calibration_start(body: dict[str, Any]) -> dict[str, Any]:
            self.calibration_starts.append(body)
            return {"key": body.get("key"), "state": "calibrating", "step": "still1", "progress": 0.0,
                    "prompt": "stand still (3 s)", "verdicts": [], "result": None}

        @app.websocket("/ws/live")
        async def live(ws: WebSocket) -> None:
            await ws.accept()
            self.connections += 1
            generation = self._drop_generation
            sent_injected = len(self._injected)
            sensors = [
                {"sensor_id": sid, "segment": seg, "side": s.side if seg == "thigh" else None, "athlete": s.athlete,
                 "connected": True, "lost": False, "battery_pct": 80, "rate_hz": 100.0, "nominal_rate_hz": 100.0,
                 "loss_fraction": 0.0, "last_seen_s_ago": 0.0}
                for s in self.streams for seg, sid in s.info()["sensors"].items()
            ]
            status = {"sensors": list({d["sensor_id"]: d for d in sensors}.values()),
                      "storage": {"state": "ok", "backend": "sqlite", "spool_points": 0},
                      "sessions": [], "streams": [s.info() for s in self.streams], "clients": 1}
            await ws.send_json({"type": "hello", "version": 1, "t": time.time(),
                                "server": {"name": "mock", "version": "0", "display_rate_hz": self.rate_hz, "mode": "replay"},
                                "drills": [], "streams": status["streams"], "status": status})
            t0 = self._t0  # session time runs on across reconnects, as in the service
            try:
                while True:
                    if self._drop_generation != generation:
                        await ws.close(code=1008, reason="client too slow: send queue full")
                        return
                    while sent_injected < len(self._injected):
                        await ws.send_json(self._injected[sent_injected])
                        sent_injected += 1
                    t_s = time.monotonic() - t0
                    await ws.send_json({"type": "frame", "t": time.time(),
                                        "streams": [s.frame(t_s, int(t_s // s.period_s)) for s in self.streams]})
                    self.frames_sent += 1
                    await asyncio.sleep(1.0 / self.rate_hz)
            except (WebSocketDisconnect, RuntimeError):
                return

        app.mount("/", StaticFiles(directory=REPO / "dashboards", html=True), name="dashboard")
        return app

    def __enter__(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(self._app(), log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, name="mock-hub", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("mock hub did not start within 10 s")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{port}/"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
