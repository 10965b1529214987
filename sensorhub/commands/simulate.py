"""``sensorhub simulate``: synthesise a session (recording plus ground truth) without hardware.

``--out FILE`` writes the recording FILE and, beside it, FILE with its suffix replaced by
``.truth.csv``, ``.reps.json`` and ``.meta.json``. ``--csv-dir DIR`` writes the session in the IMU
CSV import format instead of (or as well as) the recording. See docs/simulator.md.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from sensorhub.errors import ConfigurationError

logger = logging.getLogger(__name__)


def _rates(text: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected PELVIS,THIGH rates in Hz (e.g. 100,100), got {text!r}")
    try:
        pelvis, thigh = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"rates must be numbers in Hz, got {text!r}") from None
    return pelvis, thigh


def _rep_list(text: str) -> tuple[int, ...]:
    if text.strip() in ("", "none"):
        return ()
    try:
        return tuple(int(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated rep numbers (e.g. 3,5), got {text!r}") from None


def register(subparsers: Any) -> None:
    from sensorhub.sim.scenario import DRILLS

    p = subparsers.add_parser(
        "simulate",
        help="synthesise a session recording with ground truth",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--drill", default="seated_rotation", choices=sorted(DRILLS), help="drill to perform")
    p.add_argument("--side", default="right", choices=("left", "right"), help="measured leg")
    p.add_argument("--no-mag", action="store_true", help="6-axis sensors (no magnetometer)")
    p.add_argument("--mag-disturbance", type=float, default=0.0, metavar="uT",
                   help="disturbance field at the thigh sensor during the drill (metal chair), µT")
    p.add_argument("--loss", type=float, default=0.0, metavar="P", help="probability of losing a packet")
    p.add_argument("--loss-burst", type=float, default=1.0, metavar="N",
                   help="mean number of packets lost in a row (1 = independent losses)")
    p.add_argument("--rates", type=_rates, default=(100.0, 100.0), metavar="PELVIS,THIGH",
                   help="sample rates in Hz (protocol rates: 25,50,60,100,120,200,400)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same session)")
    p.add_argument("--reps", type=int, default=6, help="number of reps")
    p.add_argument("--compensation-reps", type=_rep_list, default=(3, 5), metavar="3,5",
                   help="1-based reps with pelvis compensation ('none' for none)")
    p.add_argument("--soft-tissue", type=float, default=0.0, metavar="F",
                   help="fraction of hip axial rotation the thigh sensor's skin does not follow (0 = rigid)")
    p.add_argument("--mtu", type=int, default=247, help="ATT MTU (sets samples per notification)")
    p.add_argument("--noise-free", action="store_true", help="ideal sensors: no noise, bias or scale error")
    p.add_argument("--out", type=Path, help="recording to write (truth files go beside it)")
    p.add_argument("--csv-dir", type=Path, help="also write pelvis.csv, thigh.csv and the truth files here")
    p.add_argument("--force", action="store_true", help="overwrite an existing recording")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sensorhub.sim import (
        ImuErrorModel,
        SimConfig,
        simulate,
        write_csv_dir,
        write_recording,
    )

    if args.out is None and args.csv_dir is None:
        raise ConfigurationError("nothing to write: give --out FILE and/or --csv-dir DIR")
    if args.out is not None and args.out.exists() and not args.force:
        raise ConfigurationError(f"{args.out} exists; use --force to overwrite it")
    config = SimConfig(
        drill=args.drill,
        side=args.side,
        seed=args.seed,
        reps=args.reps,
        compensation_reps=args.compensation_reps,
        rates_hz=args.rates,
        no_mag=args.no_mag,
        mag_disturbance_uT=args.mag_disturbance,
        loss=args.loss,
        loss_burst=args.loss_burst,
        mtu=args.mtu,
        thigh_soft_tissue=args.soft_tissue,
        errors=ImuErrorModel.ideal() if args.noise_free else ImuErrorModel(),
    )
    t0 = time.perf_counter()
    session = simulate(config)
    logger.info("simulated %.1f s of %s in %.2f s", session.scenario.duration_s, config.drill,
                time.perf_counter() - t0)
    if args.out is not None:
        written = write_recording(session, args.out, overwrite=args.force)
        print(f"recording: {written['recording']}")
        for key in ("truth", "reps", "meta"):
            print(f"{key}: {written[key]}")
    if args.csv_dir is not None:
        write_csv_dir(session, args.csv_dir)
        print(f"csv: {args.csv_dir}")
    dropped = session.dropped_packets
    print(
        f"{config.drill} {config.side}: {session.scenario.duration_s:.1f} s, {len(session.reps)} reps, "
        f"dropped packets {dropped}"
    )
    return 0
