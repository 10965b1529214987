"""``sensorhub serve``: run the live service (REST, WebSocket, dashboard) on live or replayed sensors.

``--replay FILE`` serves a recording as if its sensors were live: its notifications enter the hub
exactly where BLE notifications do, paced by their receive times (``--speed``, ``--loop``); the
sensor assignment comes from the recording's sensor descriptors and a session of its drill starts
on its own. Without ``--replay`` the hub runs the BLE manager (``--fake-sensors``: simulated
peripherals instead of a radio).

The service binds to 127.0.0.1 unless ``--host`` says otherwise; any other address needs an API
token in ``SENSORHUB_API_TOKEN`` (never on the command line), see docs/privacy.md. Storage
is the embedded SQLite store in ``--data-dir`` unless an InfluxDB URL is given (flags or
``SENSORHUB_INFLUX_*``). Once listening it prints the dashboard address.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any, TextIO

from pydantic import SecretStr, ValidationError

from sensorhub.errors import ConfigurationError

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run the live service and dashboard (live sensors or a replayed recording)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="TCP port (default 8000; 0 picks a free one)")
    p.add_argument("--replay", type=Path, metavar="FILE", help="serve this recording as if its sensors were live")
    p.add_argument("--speed", type=float, default=None, metavar="X", help="replay speed factor (default 1 = real time)")
    p.add_argument("--loop", action="store_true", help="replay: start over at the end (each pass is a new session)")
    p.add_argument("--fake-sensors", action="store_true", help="live mode on simulated BLE peripherals")
    p.add_argument("--data-dir", type=Path, metavar="D", help="SQLite store, spool and athlete register (default: SENSORHUB_DATA_DIR or ~/.local/share/sensorhub)")
    p.add_argument("--influx-url", metavar="URL", help="store in InfluxDB at URL instead of SQLite")
    p.add_argument("--influx-token", metavar="TOKEN")
    p.add_argument("--influx-org", metavar="ORG")
    p.add_argument("--influx-bucket", metavar="BUCKET")
    p.set_defaults(func=run)


def build_settings(args: argparse.Namespace) -> Any:
    """ServiceSettings from the environment, overridden by the flags that were given."""
    from sensorhub.service.settings import ServiceSettings
    from sensorhub.storage import StorageSettings

    if args.speed is not None and args.replay is None:
        raise ConfigurationError("--speed only applies with --replay FILE")
    if args.loop and args.replay is None:
        raise ConfigurationError("--loop only applies with --replay FILE")
    if args.replay is not None and args.fake_sensors:
        raise ConfigurationError("--replay and --fake-sensors exclude each other")
    storage_update: dict[str, Any] = {}
    for flag, key in (("data_dir", "data_dir"), ("influx_url", "influx_url"), ("influx_org", "influx_org"),
                      ("influx_bucket", "influx_bucket")):
        value = getattr(args, flag)
        if value is not None:
            storage_update[key] = value
    if args.influx_token is not None:
        storage_update["influx_token"] = SecretStr(args.influx_token)
    try:
        storage = StorageSettings().model_copy(update=storage_update)
        fields: dict[str, Any] = {"storage": storage, "fake_sensors": args.fake_sensors, "replay_loop": args.loop}
        if args.host is not None:
            fields["host"] = args.host
        if args.port is not None:
            fields["port"] = args.port
        if args.replay is not None:
            fields["replay"] = args.replay
        if args.speed is not None:
            fields["replay_speed"] = args.speed
        return ServiceSettings(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"sensorhub serve: {problems}") from None


def dashboard_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


async def _serve(settings: Any, out: TextIO) -> None:
    import uvicorn

    from sensorhub.service.main import create_app

    app = create_app(settings)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning", lifespan="on",
                            ws_ping_interval=20.0, ws_ping_timeout=20.0,
                            ws_max_size=settings.security.max_ws_message_bytes,
                            # Compression runs once per client per message (the frame text is encoded
                            # once for all): with 20 clients it cost 0.04 core and 1 ms of median
                            # latency (benchmarks/bench_live.py --deflate), for bytes a LAN does not miss.
                            ws_per_message_deflate=False)
    server = uvicorn.Server(config)

    async def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.05)
        port = settings.port
        for s in server.servers:
            for sock in s.sockets:
                port = sock.getsockname()[1]
        url = dashboard_url(settings.host, port)
        source = f"replay of {settings.replay}" if settings.replay else ("fake sensors" if settings.fake_sensors else "BLE sensors")
        print(f"sensorhub live service on {source}", file=out)
        print(f"dashboard: {url}    API docs: {url}docs    metrics: {url}metrics", file=out, flush=True)

    task = asyncio.create_task(announce())
    try:
        await server.serve()
    finally:
        task.cancel()


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from sensorhub.service.security import check_bind

    settings = build_settings(args)
    check_bind(settings.host, settings.security)  # no token, not loopback: exit 2 before listening
    try:
        asyncio.run(_serve(settings, out if out is not None else sys.stdout))
    except KeyboardInterrupt:
        pass
    return 0
