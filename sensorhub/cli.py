"""The ``sensorhub`` console command.

Each subcommand lives in its own module under :mod:`sensorhub.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable taking the parsed
arguments and returning an exit code. Errors derived from :class:`SensorhubError` are reported as one
clear line on stderr with exit code 2; they never surface as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from sensorhub import __version__
from sensorhub.errors import SensorhubError

# Order is the order shown in --help.
COMMAND_MODULES = (
    "simulate",
    "replay",
    "inspect",
    "analyze",
    "fuse",
    "serve",
    "record",
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or with ``only`` just that subcommand's (so ``sensorhub analyze`` does not pay for
    importing the simulator, the service and the BLE stack)."""
    parser = argparse.ArgumentParser(
        prog="sensorhub",
        description="Hip internal/external rotation from wearable IMUs: simulate, record, replay, analyze, serve.",
    )
    parser.add_argument("--version", action="version", version=f"sensorhub {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES if only is None else (only,):
        try:
            module = importlib.import_module(f"sensorhub.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"sensorhub.commands.{name}":
                continue  # command not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(first if first in COMMAND_MODULES else None)
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except SensorhubError as exc:
        print(f"sensorhub {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
