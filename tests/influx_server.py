"""Test harness: a real ``influxd`` (Debian's InfluxDB 1.6) behind ``nginx`` speaking the v2 write API.

InfluxDB 1.6 has no ``/api/v2/write``; nginx maps ``/api/v2/write?bucket=B&precision=P`` to
``/write?db=B&precision=P`` and passes ``/query`` and ``/ping`` through, so the real influxdb-client
writes to it exactly as it would to InfluxDB 2.x, and tests read back with InfluxQL. Everything runs
on loopback ports chosen free at runtime, with data in a temporary directory.

``influxd`` can be stopped and started again (same data directory) to simulate an outage: nginx
stays up and answers 502, as a proxy in front of a dead database would.

Import the fixture into a test module with ``from influx_server import influx_server``; it skips
with the reason when ``influxd`` or ``nginx`` is not installed
(``apt-get install -y influxdb nginx``).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

INFLUXD = shutil.which("influxd") or "/usr/bin/influxd"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

INFLUXD_CONF = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{root}/meta"
  logging-enabled = false
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
  trace-logging-enabled = false
[retention]
  enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = false
  log-enabled = false
  max-body-size = 0
[logging]
  level = "error"
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
"""

NGINX_CONF = """\
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/nginx_error.log crit;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {root}/client_body;
  proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi;
  uwsgi_temp_path {root}/uwsgi;
  scgi_temp_path {root}/scgi;
  # Keep request bodies in memory: nginx workers drop root privileges and could not write temp files
  # in the test's private temporary directory.
  client_max_body_size 256m;
  client_body_buffer_size 256m;
  proxy_buffering off;
  server {{
    listen 127.0.0.1:{port};
    location = /api/v2/write {{
      proxy_pass http://127.0.0.1:{influx_port}/write?db=$arg_bucket&precision=$arg_precision;
      proxy_connect_timeout 2s;
    }}
    location = /query {{ proxy_pass http://127.0.0.1:{influx_port}; proxy_connect_timeout 2s; }}
    location = /ping {{ proxy_pass http://127.0.0.1:{influx_port}; proxy_connect_timeout 2s; }}
    location / {{ return 404; }}
  }}
}}
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class InfluxServer:
    """``influxd`` + ``nginx`` in a temporary directory; :attr:`url` is what influxdb-client talks to."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.influx_port = free_port()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.direct_url = f"http://127.0.0.1:{self.influx_port}"
        (root / "influxd.conf").write_text(
            INFLUXD_CONF.format(root=root, rpc_port=free_port(), http_port=self.influx_port)
        )
        (root / "nginx.conf").write_text(NGINX_CONF.format(root=root, port=self.port, influx_port=self.influx_port))
        self._influxd: subprocess.Popen[bytes] | None = None
        self._nginx: subprocess.Popen[bytes] | None = None

    # -- processes
    def start_influxd(self) -> None:
        assert self._influxd is None, "influxd already running"
        self._influxd = subprocess.Popen(
            [INFLUXD, "run", "-config", str(self.root / "influxd.conf")],
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "influxd.log", "ab"),  # noqa: SIM115 - lives as long as the process
        )
        self._wait_ping(self.direct_url, "influxd")

    def stop_influxd(self) -> None:
        if self._influxd is None:
            return
        self._influxd.terminate()
        try:
            self._influxd.wait(10)
        except subprocess.TimeoutExpired:
            self._influxd.kill()
            self._influxd.wait()
        self._influxd = None

    def start(self) -> None:
        self.start_influxd()
        self._nginx = subprocess.Popen(
            [NGINX, "-c", str(self.root / "nginx.conf"), "-p", str(self.root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_ping(self.url, "nginx")

    def stop(self) -> None:
        self.stop_influxd()
        if self._nginx is not None:
            self._nginx.terminate()
            self._nginx.wait(10)
            self._nginx = None

    def _wait_ping(self, base: str, what: str, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=1) as response:
                    if response.status == 204:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{what} did not answer /ping at {base} within {timeout_s} s (logs in {self.root})")

    # -- InfluxQL helpers for assertions
    def query(self, q: str, db: str | None = None, *, post: bool = False) -> list[dict[str, Any]]:
        """Run InfluxQL directly against influxd; returns the series of the first statement."""
        params = {"q": q, "epoch": "ns", **({"db": db} if db else {})}
        url = f"{self.direct_url}/query?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(url, method="POST" if post else "GET")
        with urllib.request.urlopen(request, timeout=10) as response:
            payload = json.loads(response.read())
        result = payload["results"][0]
        if "error" in result:
            raise RuntimeError(f"InfluxQL {q!r} failed: {result['error']}")
        return list(result.get("series", []))

    def create_database(self, name: str) -> None:
        self.query(f'CREATE DATABASE "{name}"', post=True)

    def count(self, db: str, measurement: str, field: str, where: str = "") -> int:
        series = self.query(f'SELECT count("{field}") FROM "{measurement}" {where}', db)
        return int(series[0]["values"][0][1]) if series else 0


@pytest.fixture(scope="session")
def influx_server() -> Iterator[InfluxServer]:
    """A running influxd 1.6 + nginx v2-write proxy for the whole test session."""
    missing = [name for name, path in (("influxd", INFLUXD), ("nginx", NGINX)) if not Path(path).exists()]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (apt-get install -y influxdb nginx)")
    root = Path(tempfile.mkdtemp(prefix="sensorhub-influx-"))
    server = InfluxServer(root)
    try:
        server.start()
    except Exception as exc:  # noqa: BLE001 - any start failure is a skip reason
        server.stop()
        pytest.skip(f"could not start influxd + nginx: {exc}")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
