"""Test harness for service-level faults: the real ``sensorhub serve`` process, a WebSocket watcher, and
a fault-injecting HTTP proxy in front of InfluxDB.

* :class:`ServiceProcess` starts ``sensorhub serve --replay FILE ...`` on a free loopback port in its
  own process (so ``kill -9`` is a real crash), waits until it listens, and reads ``/api/health`` and
  ``/metrics``.
* :class:`LiveWatcher` is one browser: a WebSocket client on ``/ws/live`` in a thread that keeps the
  arrival time of every ``frame`` message and every ``status`` message's storage block, so a test
  can ask "did frames keep coming at about 30 Hz while InfluxDB was down, and what did the status
  say?".
* :class:`FaultProxy` sits between the service and nginx/influxd and, on command, passes requests
  through, delays them, answers a fixed error status (503, 429 with ``Retry-After``), or refuses
  the connection.

Used by ``tests/test_service_faults.py`` and ``tests/test_kill9.py``; nothing here asserts.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

REPO = Path(__file__).resolve().parent.parent
REPLAY = REPO / "replay_data"

#: Storage settings that make the outage cycle fit a test: short timeouts, quick retries, small batches.
FAST_STORAGE_ENV = {
    "SENSORHUB_WRITE_TIMEOUT_S": "1.0",
    "SENSORHUB_HTTP_RETRIES": "0",
    "SENSORHUB_RETRY_INITIAL_DELAY_S": "0.2",
    "SENSORHUB_RETRY_MAX_DELAY_S": "1.0",
    "SENSORHUB_FLUSH_INTERVAL_S": "0.25",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.1) -> None:
    """Poll ``predicate`` until it holds; AssertionError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


# -- the service process ----------------------------------------------------------------------------


class ServiceProcess:
    """``sensorhub serve`` in a subprocess on a free loopback port."""

    def __init__(self, data_dir: Path, replay: Path, *, speed: float = 1.0, loop: bool = False,
                 influx_url: str | None = None, bucket: str = "sensorhub", env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "sensorhub", "serve", "--replay", str(replay), "--speed", str(speed),
                "--port", str(self.port), "--data-dir", str(data_dir)]
        if loop:
            args.append("--loop")
        if influx_url is not None:
            args += ["--influx-url", influx_url, "--influx-bucket", bucket]
        self.args = args
        self.env = {**os.environ, **FAST_STORAGE_ENV, **(env or {})}
        self.log_path = data_dir / f"serve-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> ServiceProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log_path, "ab"))  # noqa: SIM115 - lives as long as the process
        wait_for(self._listening, timeout_s, f"sensorhub serve on port {self.port} (log {self.log_path})")
        return self

    def _listening(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"sensorhub serve exited with {self.proc.returncode}: {self.log()[-2000:]}")
        try:
            self.health()
            return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5) as response:
            return json.loads(response.read())

    def health(self) -> dict[str, Any]:
        return dict(self.get_json("/api/health"))

    def storage(self) -> dict[str, Any]:
        return dict(self.health()["storage"])

    def metrics_text(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as response:
            return response.read().decode()

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGINT (like Ctrl-C: the store is closed cleanly), SIGKILL if it does not exit."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            return None


# -- one browser --------------------------------------------------------------------------------------


@dataclass
class StatusSeen:
    t: float
    """monotonic arrival time"""
    storage: dict[str, Any]


@dataclass
class LiveWatcher:
    """A WebSocket client on ``/ws/live`` keeping frame arrival times and status storage blocks."""

    url: str
    frames: list[float] = field(default_factory=list)
    statuses: list[StatusSeen] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    closed_reason: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> LiveWatcher:
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-watcher", daemon=True)
        self._thread.start()
        if not self._connected.wait(10):
            raise AssertionError(f"no WebSocket hello from {self.url}")
        return self

    def _run(self) -> None:
        try:
            with ws_connect(self.url, max_size=None, open_timeout=10) as ws:
                while not self._stop.is_set():
                    try:
                        text = ws.recv(timeout=0.2)
                    except TimeoutError:
                        continue
                    now = time.monotonic()
                    msg = json.loads(text)
                    kind = msg.get("type")
                    with self._lock:
                        if kind == "frame":
                            self.frames.append(now)
                        elif kind == "status":
                            self.statuses.append(StatusSeen(now, msg["storage"]))
                        elif kind == "hello":
                            self._connected.set()
                        elif kind == "event":
                            self.events.append(msg)
        except ConnectionClosed as exc:
            self.closed_reason = f"closed: {exc}"
        except OSError as exc:
            self.closed_reason = f"socket error: {exc}"

    def frame_rate_hz(self, since: float, until: float | None = None) -> float:
        """Frame messages per second received in [since, until] (monotonic times)."""
        until = time.monotonic() if until is None else until
        with self._lock:
            n = sum(1 for t in self.frames if since <= t <= until)
        return n / max(until - since, 1e-9)

    def longest_frame_gap_s(self, since: float, until: float) -> float:
        with self._lock:
            times = [since] + [t for t in self.frames if since <= t <= until] + [until]
        return max(b - a for a, b in itertools.pairwise(times))

    def storage_seen(self, since: float, until: float | None = None) -> list[dict[str, Any]]:
        until = time.monotonic() if until is None else until
        with self._lock:
            return [s.storage for s in self.statuses if since <= s.t <= until]

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


# -- a fault-injecting proxy in front of InfluxDB --------------------------------------------------------


class FaultProxy:
    """HTTP proxy to ``upstream`` whose behaviour a test switches at run time.

    Modes: ``"pass"``; ``"delay"`` (sleep ``delay_s`` before forwarding); ``"status"`` (answer
    ``status`` with ``Retry-After: 1`` for 429/503, without forwarding); ``"refuse"`` (close the
    connection without an answer). ``forwarded_writes`` counts write requests passed upstream.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.mode = "pass"
        self.delay_s = 0.0
        self.status = 503
        self.forwarded_writes = 0
        self.refused_writes = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                is_write = self.path.startswith("/api/v2/write")
                mode = proxy.mode
                if is_write and mode == "refuse":
                    proxy.refused_writes += 1
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if is_write and mode == "status":
                    proxy.refused_writes += 1
                    payload = b'{"code":"unavailable","message":"injected by FaultProxy"}'
                    self.send_response(proxy.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    if proxy.status in (429, 503):
                        self.send_header("Retry-After", "1")
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if is_write and mode == "delay":
                    time.sleep(proxy.delay_s)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length",
                                                                                     "connection")}
                request = urllib.request.Request(proxy.upstream + self.path, data=body, method=self.command,
                                                 headers=headers)
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        status, data, ctype = response.status, response.read(), response.headers.get("Content-Type")
                except urllib.error.HTTPError as exc:
                    status, data, ctype = exc.code, exc.read(), exc.headers.get("Content-Type")
                except (urllib.error.URLError, OSError) as exc:
                    status, data, ctype = 502, str(exc).encode(), "text/plain"
                if is_write and status < 300:
                    proxy.forwarded_writes += 1
                # The service may have given up on a delayed request (write timeout): it is gone.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    if ctype:
                        self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

            do_GET = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="fault-proxy", daemon=True)

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def set(self, mode: str, *, delay_s: float = 0.0, status: int = 503) -> None:
        self.mode, self.delay_s, self.status = mode, delay_s, status

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- what InfluxDB and the spool hold ----------------------------------------------------------------------


def spool_lines(data_dir: Path) -> list[str]:
    """Every line-protocol line in the service's spool file (read-only)."""
    path = data_dir / "influx_spool.sqlite3"
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT body FROM batches ORDER BY id").fetchall()
    finally:
        conn.close()
    return [line for (body,) in rows for line in bytes(body).decode().split("\n") if line]


def metric_value(text: str, name: str) -> float:
    """Sum of every sample of a Prometheus metric ``name`` (all label sets) in an exposition text."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total
