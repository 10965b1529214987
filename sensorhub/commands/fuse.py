"""``sensorhub fuse IN.csv OUT.csv``: orientation of one sensor from an IMU CSV file.

Reads the IMU CSV import format (``t,ax,ay,az,gx,gy,gz[,mx,my,mz]``) and writes one row per input
row, ``t,qw,qx,qy,qz``: the orientation of the sensor frame in an East-North-Up earth frame
(magnetic north when a magnetometer is used; arbitrary heading otherwise), see
:mod:`sensorhub.motion.fusion`.

Default method: online (causal) VQF, the best on average over the BROAD trials in ../shared
(docs/fusion.md). Offline VQF is slightly better on undisturbed recordings but markedly worse with a
magnet near the sensor, the situation of an athlete on a metal chair; ``--offline`` selects it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from sensorhub.csv_import import read_imu_csv
from sensorhub.errors import ConfigurationError, ImportFormatError
from sensorhub.motion.fusion import METHODS, VQF_PARAM_NAMES, fuse

logger = logging.getLogger(__name__)

OUTPUT_HEADER = "t,qw,qx,qy,qz"


def register(subparsers: Any) -> None:
    """Add the ``fuse`` subcommand to the ``sensorhub`` parser."""
    parser = subparsers.add_parser(
        "fuse",
        help="orientation (quaternion, sensor to ENU earth) of one sensor from an IMU CSV file",
        description=(
            "Estimate the orientation of one IMU from a CSV file (t,ax,ay,az,gx,gy,gz[,mx,my,mz]; s, m/s², "
            "rad/s, µT) and write t,qw,qx,qy,qz, one row per input row: the rotation from the sensor frame to "
            "an East-North-Up earth frame (magnetic north with a magnetometer, arbitrary heading without)."
        ),
    )
    parser.add_argument("input", type=Path, metavar="IN.csv", help="IMU CSV file")
    parser.add_argument("output", type=Path, metavar="OUT.csv", help="quaternion CSV file to write")
    parser.add_argument(
        "--method", choices=METHODS, default="vqf", help="fusion filter (default: vqf; the others are ahrs filters)"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--offline",
        dest="offline",
        action="store_true",
        help="non-causal offline VQF (whole recording; better on undisturbed data, worse near magnets)",
    )
    mode.add_argument("--online", dest="offline", action="store_false", help="causal filter, as used live (default)")
    parser.set_defaults(offline=False)
    parser.add_argument("--no-mag", action="store_true", help="ignore the magnetometer columns (6-axis fusion)")
    parser.add_argument(
        "--rate", type=float, default=None, metavar="HZ", help="sample rate (default: median of the time stamps)"
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="filter parameter, repeatable, e.g. --param restThGyr=1.5 --param magDistRejectionEnabled=false",
    )
    parser.set_defaults(func=run)


def parse_params(items: list[str]) -> dict[str, Any]:
    """``["name=value", ...]`` to a dict; values are JSON literals (numbers, true/false, lists)."""
    params: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise ConfigurationError(f"--param {item!r}: expected NAME=VALUE, e.g. restThGyr=1.5")
        try:
            params[name.strip()] = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"--param {item!r}: value {raw!r} is not a number, true/false or a JSON list"
            ) from exc
    return params


def write_quaternion_csv(path: Path, t_s: np.ndarray, q_earth_sensor: np.ndarray) -> None:
    """Write ``t,qw,qx,qy,qz`` rows, replacing ``path`` only once the file is complete."""
    tmp = path.with_name(path.name + ".partial")
    table = np.column_stack((t_s, q_earth_sensor))
    try:
        np.savetxt(tmp, table, fmt="%.9f", delimiter=",", header=OUTPUT_HEADER, comments="")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigurationError(f"cannot write {path}: {exc.strerror or exc}") from exc


def run(args: argparse.Namespace) -> int:
    params = parse_params(args.param)
    # Option errors are reported before reading a possibly large file.
    if args.method == "vqf" and set(params) - VQF_PARAM_NAMES:
        unknown = ", ".join(sorted(set(params) - VQF_PARAM_NAMES))
        raise ConfigurationError(f"--param: unknown VQF parameter(s) {unknown}; see vqf.VQFParams")
    if args.offline and args.method != "vqf":
        raise ConfigurationError(f"--offline is only available for --method vqf, not {args.method}")
    samples = read_imu_csv(args.input)
    if len(samples) < 2:
        raise ImportFormatError(f"{args.input}: need at least two samples to fuse, found {len(samples)}")
    result = fuse(
        samples,
        args.method,
        offline=args.offline,
        use_mag=not args.no_mag,
        rate_hz=args.rate,
        params=params,
    )
    write_quaternion_csv(args.output, samples.t_s, result.q_earth_sensor)
    logger.info(
        "fused %d samples from %s with %s %s (%s) -> %s",
        len(samples),
        args.input,
        "offline" if args.offline else "online",
        args.method,
        "9-axis" if result.has_mag else "6-axis",
        args.output,
    )
    return 0
