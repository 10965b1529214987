"""``sensorhub analyze``: a whole session to angles.csv, reps.json and report.png."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sensorhub.errors import ConfigurationError

if TYPE_CHECKING:
    from sensorhub.workers import ForkedWorker

METHODS = ("vqf", "madgwick", "mahony", "ekf")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "analyze",
        help="analyse a recording (or two IMU CSV files): hip angles, scored reps, report",
        description=(
            "Analyse a whole session. Input is a recording (sensorhub's .shr format) or a pelvis and a thigh "
            "IMU CSV file. Writes OUT/angles.csv (t,hip_flexion,hip_adduction,hip_rotation,pelvis_tilt,"
            "pelvis_obliquity,pelvis_rotation in degrees), OUT/reps.json (reps with peaks, holds, tempo, "
            "compensation and score, plus the session summary), OUT/calibration.json and OUT/report.png. "
            "A recording with both thighs writes OUT/left/, OUT/right/ and OUT/symmetry.json."
        ),
    )
    p.add_argument("recording", nargs="?", help="recording file (omit when using --pelvis/--thigh)")
    p.add_argument("--pelvis", metavar="P.csv", help="pelvis sensor IMU CSV (with --thigh)")
    p.add_argument("--thigh", metavar="T.csv", help="thigh sensor IMU CSV (with --pelvis)")
    p.add_argument("--side", choices=("left", "right"), help="measured leg (required with CSV input; selects a leg of a recording)")
    p.add_argument("--drill", help="drill name (required with CSV input; default: the recording's drill)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created)")
    p.add_argument("--method", choices=METHODS, default="vqf", help="orientation filter (default vqf)")
    p.add_argument("--offline", action="store_true", default=None,
                   help="non-causal offline VQF for the orientation, for comparison (the default is the causal "
                        "VQF, restarted after long gaps; see docs/accuracy.md)")
    p.add_argument("--online", dest="offline", action="store_false", help="causal VQF (the default for vqf)")
    p.add_argument("--calibration", metavar="FILE", help="apply a stored calibration.json instead of finding the protocol")
    p.add_argument("--no-report", action="store_true", help="skip report.png")
    p.add_argument("--jobs", type=_positive_int, default=None, metavar="N",
                   help="processes to use: with 2 or more, the sensors are ingested (or the two CSV files read) and "
                        "report.png is drawn in forked child processes alongside the main one; 1 runs everything in one "
                        "process (default: the CPUs this process may use). The outputs are the same either way.")
    p.set_defaults(func=run)


def default_jobs() -> int:
    """Processes for ``--jobs`` when not given: the CPUs this process may run on (its affinity mask).

    Not adjusted to the machine's load: the load average also counts this command's own recent runs
    (a benchmark loop would switch itself to one process), and the measured cost of the workers on a
    busy machine is small next to their gain on an idle core (docs/performance.md, "Fourth round:
    analyze").
    """
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    from sensorhub.analysis import start_report_worker

    if args.jobs is None:
        args.jobs = default_jobs()

    # The report worker is forked first, while this process is still small (see start_report_worker).
    reporter = start_report_worker() if args.jobs > 1 and not args.no_report else None
    with reporter if reporter is not None else contextlib.nullcontext():
        return _run(args, reporter)


def _run(args: argparse.Namespace, reporter: ForkedWorker | None) -> int:
    from sensorhub.analysis import analyze_session, load_csv_input, load_recording_input

    if args.recording and (args.pelvis or args.thigh):
        raise ConfigurationError("give either a recording or --pelvis/--thigh, not both")
    if args.recording:
        if not Path(args.recording).exists():
            raise ConfigurationError(f"recording not found: {args.recording}")
        session = load_recording_input(args.recording, drill=args.drill, side=args.side, workers=args.jobs)
    elif args.pelvis and args.thigh:
        if not args.side or not args.drill:
            raise ConfigurationError("CSV input needs --side left|right and --drill DRILL")
        session = load_csv_input(args.pelvis, args.thigh, side=args.side, drill=args.drill, workers=args.jobs)
    else:
        raise ConfigurationError("give a recording, or both --pelvis P.csv and --thigh T.csv")
    calibration = None
    if args.calibration:
        from sensorhub.motion.calibration import Calibration

        calibration = Calibration.load(args.calibration)
    results = analyze_session(session, args.out, method=args.method, offline=args.offline,
                              calibration=calibration, report=not args.no_report, workers=args.jobs,
                              reporter=reporter)
    for r in results:
        s = r.summary
        ir = f"{s.internal.max_deg:.1f}" if s.internal else "-"
        er = f"{s.external.max_deg:.1f}" if s.external else "-"
        print(f"{r.side}: {s.reps_count} reps ({s.compensated_count} with compensation), "
              f"max IR {ir} deg, max ER {er} deg, mean score {s.mean_score:.0f}", file=sys.stdout)
    print(f"wrote {args.out}")
    return 0
