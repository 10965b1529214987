"""End-to-end accuracy evaluation against ground truth: angles and reps, as ``sensorhub analyze`` sees them.

Each case is a session with known truth: a recording (replay_data/ or freshly simulated) that goes
through the real path (protocol decoding, ingest, clock mapping, motion pipeline, rep detection), or
an IMU CSV pair (../shared/examples). For each case it reports the RMSE of hip flexion, adduction and
rotation over the drill (from the end of the calibration protocol to the end of the drill), the rep
count against the truth, the worst peak internal/external rotation error over matched reps and
whether compensation was flagged in exactly the reps that had it.

By default it evaluates the fixed set (the examples, replay_data/ and :data:`SIM_MATRIX`);
``--random N`` instead simulates N held-out sessions per condition of :data:`RANDOM_CONDITIONS` and
reports the pass rate per condition (conditions named ``stress_*`` go beyond the acceptance and do
not set the exit code). ``--online`` scores the live path instead of batch: the same input through
:class:`~sensorhub.motion.pipeline.OnlinePipeline` (live calibration, 0.1-s blocks per sensor) and
the rep detector over the frames it emitted. Results and commands: docs/accuracy.md.

Run ``python -m sensorhub.evaluation --help``. This module reads files and may run the simulator; it
is a measuring tool, not part of the live path.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sensorhub.analysis import (
    LegInput,
    LegResult,
    SessionInput,
    analyze_leg,
    load_csv_input,
    load_recording_input,
    to_table,
)

TARGETS = {"flexion": 2.0, "adduction": 3.0, "rotation": 2.0, "peak": 3.0}


@dataclass
class TruthSet:
    t_s: np.ndarray
    hip_deg: np.ndarray  # (n, 3) flexion, adduction, rotation
    reps: list[dict]
    drill_start_s: float
    drill_end_s: float


@dataclass
class CaseResult:
    name: str
    rmse_deg: tuple[float, float, float]
    reps_true: int
    reps_found: int
    peak_error_deg: float
    compensation_exact: bool
    seconds: float

    @property
    def passes(self) -> bool:
        f, a, r = self.rmse_deg
        return (f <= TARGETS["flexion"] and a <= TARGETS["adduction"] and r <= TARGETS["rotation"]
                and self.reps_true == self.reps_found and self.peak_error_deg <= TARGETS["peak"]
                and self.compensation_exact)


def read_truth(truth_csv: Path, reps_json: Path, drill_start_s: float, drill_end_s: float) -> TruthSet:
    with truth_csv.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = np.array([[float(v) for v in row] for row in reader])
    col = {name: i for i, name in enumerate(header)}
    hip = rows[:, [col["hip_flexion"], col["hip_adduction"], col["hip_rotation"]]]
    reps = json.loads(reps_json.read_text())
    reps = reps["reps"] if isinstance(reps, dict) else reps
    return TruthSet(rows[:, col["t"]], hip, reps, drill_start_s, drill_end_s)


def score(name: str, result: LegResult, truth: TruthSet, seconds: float) -> CaseResult:
    a = result.angles
    est = np.column_stack([a.hip_flexion_deg, a.hip_adduction_deg, a.hip_rotation_deg])
    inside = (truth.t_s >= truth.drill_start_s) & (truth.t_s <= truth.drill_end_s)
    inside &= (truth.t_s >= a.t_s[0]) & (truth.t_s <= a.t_s[-1])
    interp = np.column_stack([np.interp(truth.t_s[inside], a.t_s, est[:, k]) for k in range(3)])
    err = interp - truth.hip_deg[inside]
    err = err[np.all(np.isfinite(err), axis=1)]
    rmse = (float(np.sqrt(np.mean(err[:, 0] ** 2))), float(np.sqrt(np.mean(err[:, 1] ** 2))), float(np.sqrt(np.mean(err[:, 2] ** 2))))
    found = result.detection.reps
    # Match each true rep to the found rep with the nearest start; count mismatch is reported as such.
    peak_err = 0.0
    comp_exact = len(found) == len(truth.reps)
    for tr in truth.reps:
        if not found:
            break
        fr = min(found, key=lambda r: abs(r.t_start - tr["t_start"]))
        for key in ("peak_internal_rotation", "peak_external_rotation"):
            got = getattr(fr, key)
            if got is None or not math.isfinite(got):
                peak_err = math.inf
            else:
                peak_err = max(peak_err, abs(got - tr[key]))
        comp_exact &= bool(fr.compensation) == bool(tr["compensation"])
    return CaseResult(name, rmse, len(truth.reps), len(found), peak_err, comp_exact, seconds)


#: Blocks (s per sensor) the online mode feeds the live pipeline: about one BLE connection event's
#: worth of notifications at 100 Hz, as the hub hands them over (both sensors interleaved in time).
ONLINE_BLOCK_S = 0.1


def analyze_leg_online(leg: LegInput, drill: str, block_s: float = ONLINE_BLOCK_S) -> LegResult:
    """The live path on a whole leg: :class:`~sensorhub.motion.pipeline.OnlinePipeline` fed in
    ``block_s`` blocks with live calibration, then the rep detector over the frames it emitted (the
    hub runs the same detector frame by frame; ``detect_reps`` gives the same events)."""
    from sensorhub.drills import detect_reps, summarize
    from sensorhub.motion.evaluate import feed_online

    angles = feed_online(leg.side, leg.pelvis, leg.thigh, block_s).series()
    table = to_table(angles)
    detection = detect_reps(table, drill)
    summary = summarize(detection.reps, drill, leg.side, detection.incomplete)
    return LegResult(leg.side, angles, table, detection, summary)


def _analyze(leg: LegInput, drill: str, online: bool) -> LegResult:
    return analyze_leg_online(leg, drill) if online else analyze_leg(leg, drill)


def evaluate_recording(path: Path, online: bool = False) -> CaseResult:
    """Score one recording with its truth files; ``online``: through the live pipeline instead of batch."""
    meta = json.loads(path.with_suffix(".meta.json").read_text())
    truth = read_truth(path.with_suffix(".truth.csv"), path.with_suffix(".reps.json"),
                       meta["segments"]["static"][1][1], meta["drill_end_s"])
    t0 = time.perf_counter()
    session = load_recording_input(path)
    result = _analyze(session.legs[0], session.drill, online)
    return score(path.stem, result, truth, time.perf_counter() - t0)


def evaluate_example(folder: Path, online: bool = False) -> CaseResult:
    """Score one shared example folder; ``online``: through the live pipeline instead of batch."""
    meta = json.loads((folder / "meta.json").read_text())
    drill = {"seated": "seated_rotation", "standing": "standing_rotation"}[meta["scenario"]]
    truth = read_truth(folder / "truth.csv", folder / "reps.json", meta["segments"]["static"][1][1], math.inf)
    t0 = time.perf_counter()
    session: SessionInput = load_csv_input(folder / "pelvis.csv", folder / "thigh.csv", side=meta["side"], drill=drill)
    result = _analyze(session.legs[0], drill, online)
    return score(f"example {folder.name}", result, truth, time.perf_counter() - t0)


#: Extra simulated conditions beyond replay_data/, so every condition is covered on both sides.
SIM_MATRIX: list[tuple[str, list[str]]] = [
    ("seated_left_9axis_magdist30", ["--drill", "seated_rotation", "--side", "left", "--mag-disturbance", "30", "--reps", "30", "--seed", "101"]),
    ("standing_left_9axis_magdist30", ["--drill", "standing_rotation", "--side", "left", "--mag-disturbance", "30", "--seed", "102"]),
    ("standing_right_6axis", ["--drill", "standing_rotation", "--side", "right", "--no-mag", "--seed", "103"]),
    ("seated_right_6axis_loss5", ["--drill", "seated_rotation", "--side", "right", "--no-mag", "--loss", "0.05", "--seed", "104"]),
    ("standing_left_6axis_loss5_burst", ["--drill", "standing_rotation", "--side", "left", "--no-mag", "--loss", "0.05", "--loss-burst", "3", "--seed", "105"]),
    ("standing_left_9axis_60_200hz", ["--drill", "standing_rotation", "--side", "left", "--rates", "60,200", "--seed", "106"]),
    ("seated_right_6axis_200_60hz", ["--drill", "seated_rotation", "--side", "right", "--no-mag", "--rates", "200,60", "--seed", "107"]),
]


def simulate_matrix(out_dir: Path, names: set[str] | None = None) -> list[Path]:
    from sensorhub.cli import main as cli_main

    paths = []
    for name, args in SIM_MATRIX:
        if names is not None and name not in names:
            continue
        path = out_dir / f"{name}.shr"
        if not path.exists():
            rc = cli_main(["simulate", *args, "--out", str(path)])
            if rc != 0:
                raise RuntimeError(f"simulate {name} failed with exit code {rc}")
        paths.append(path)
    return paths


def _rnd_common(rng: np.random.Generator, drills: tuple[str, ...] = ("seated_rotation", "standing_rotation")) -> list[str]:
    drill = str(rng.choice(drills))
    return ["--drill", drill, "--side", str(rng.choice(["left", "right"]))]


def _cond_9axis(rng: np.random.Generator) -> list[str]:
    return _rnd_common(rng)


def _cond_6axis(rng: np.random.Generator) -> list[str]:
    return [*_rnd_common(rng), "--no-mag"]


def _cond_magdist_seated_long(rng: np.random.Generator) -> list[str]:
    # 30-38 reps: a seated set of about 4-5.5 minutes with the thigh next to the chair's dipole.
    return [*_rnd_common(rng, ("seated_rotation",)), "--mag-disturbance", "30", "--reps", str(int(rng.integers(30, 39)))]


def _cond_magdist_standing(rng: np.random.Generator) -> list[str]:
    return [*_rnd_common(rng, ("standing_rotation",)), "--mag-disturbance", "30"]


def _cond_rates(rng: np.random.Generator) -> list[str]:
    rates = str(rng.choice(["60,200", "200,60", "60,60", "200,200"]))
    extra = ["--no-mag"] if rng.random() < 0.5 else []
    return [*_rnd_common(rng), "--rates", rates, *extra]


def _cond_loss5(rng: np.random.Generator) -> list[str]:
    extra = ["--no-mag"] if rng.random() < 0.5 else []
    return [*_rnd_common(rng), "--loss", "0.05", *extra]


#: Conditions of the random held-out set (``--random N``). Each maps a seeded generator to the
#: ``sensorhub simulate`` options of one session; side, drill (where free), axes, rates and reps are
#: drawn per session. Every condition of the acceptance is covered: 9-axis, 6-axis, a 30-µT
#: disturbance at the thigh (seated with a set of >= 4 minutes, and standing), 60/200-Hz rates and
#: 5 % packet loss, on both sides.
def _cond_loss5_burst(rng: np.random.Generator) -> list[str]:
    # A stress case beyond the acceptance: the 5 % are lost in runs of 3 packets on average.
    extra = ["--no-mag"] if rng.random() < 0.5 else []
    return [*_rnd_common(rng), "--loss", "0.05", "--loss-burst", "3", *extra]


RANDOM_CONDITIONS: dict[str, Callable[[np.random.Generator], list[str]]] = {
    "9axis": _cond_9axis,
    "6axis": _cond_6axis,
    "magdist30_seated_4min": _cond_magdist_seated_long,
    "magdist30_standing": _cond_magdist_standing,
    "rates_60_200": _cond_rates,
    "loss5": _cond_loss5,
    "stress_loss5_burst3": _cond_loss5_burst,
}
#: First seed of the held-out set. Seeds 100-115 are the fixed replay_data/SIM_MATRIX sessions and
#: the motion module's own random set; development used 2000-2999; the reported set starts here.
HELD_OUT_SEED_BASE = 5000


def random_sessions(out_dir: Path, n_per_condition: int, seed_base: int = HELD_OUT_SEED_BASE,
                    conditions: list[str] | None = None) -> list[tuple[str, Path]]:
    """Simulate ``n_per_condition`` sessions per condition of :data:`RANDOM_CONDITIONS` (cached in ``out_dir``).

    The i-th session of the k-th condition uses seed ``seed_base + 100 * k + i`` both for drawing
    its options and for the simulator. Returns (condition, recording path) pairs.
    """
    from sensorhub.cli import main as cli_main

    out = []
    for k, (cond, make) in enumerate(RANDOM_CONDITIONS.items()):
        if conditions is not None and cond not in conditions:
            continue
        for i in range(n_per_condition):
            seed = seed_base + 100 * k + i
            args = make(np.random.default_rng(seed))
            drill, side = args[1].split("_")[0], args[3]
            path = out_dir / f"rnd_{cond}_{seed}_{drill}_{side}.shr"
            if not path.exists():
                with contextlib.redirect_stdout(io.StringIO()):  # the simulator's summary lines
                    rc = cli_main(["simulate", *args, "--seed", str(seed), "--out", str(path)])
                if rc != 0:
                    raise RuntimeError(f"simulate {path.name} failed with exit code {rc}")
            out.append((cond, path))
    return out


def format_pass_rates(by_condition: dict[str, list[CaseResult]]) -> str:
    """Per-condition pass rate and worst values of a random set."""
    lines = ["| condition | sessions passing | worst flexion / adduction / rotation RMSE (°) | worst peak error (°) | rep count exact | compensation exact | failing sessions |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for cond, rs in by_condition.items():
        worst = [max(r.rmse_deg[k] for r in rs) for k in range(3)]
        lines.append(f"| {cond} | {sum(r.passes for r in rs)} / {len(rs)} | {worst[0]:.2f} / {worst[1]:.2f} / {worst[2]:.2f} | "
                     f"{max(r.peak_error_deg for r in rs):.2f} | {sum(r.reps_found == r.reps_true for r in rs)} / {len(rs)} | "
                     f"{sum(r.compensation_exact for r in rs)} / {len(rs)} | {', '.join(r.name for r in rs if not r.passes) or '-'} |")
    return "\n".join(lines)


def format_table(results: list[CaseResult]) -> str:
    lines = ["| session | RMSE flexion / adduction / rotation (°) | reps found / true | worst peak error (°) | compensation exact | analyze time (s) | all targets |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        f, a, rot = r.rmse_deg
        lines.append(f"| {r.name} | {f:.2f} / {a:.2f} / {rot:.2f} | {r.reps_found} / {r.reps_true} | {r.peak_error_deg:.2f} | "
                     f"{'yes' if r.compensation_exact else 'NO'} | {r.seconds:.1f} | {'yes' if r.passes else '**NO**'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    repo = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(prog="python -m sensorhub.evaluation", description=__doc__.split("\n\n")[0])
    p.add_argument("--replay-data", type=Path, default=repo / "replay_data")
    p.add_argument("--examples", type=Path, default=repo.parent / "shared" / "examples")
    p.add_argument("--no-sim", action="store_true", help="skip the extra simulated conditions")
    p.add_argument("--sim-dir", type=Path, help="where simulated sessions are kept (default: a temporary folder)")
    p.add_argument("--random", type=int, default=0, metavar="N",
                   help="instead of the fixed set: N random held-out sessions per condition, pass rate per condition")
    p.add_argument("--seed-base", type=int, default=HELD_OUT_SEED_BASE, help="first seed of the random set")
    p.add_argument("--conditions", help="comma-separated subset of the random conditions: " + ", ".join(RANDOM_CONDITIONS))
    p.add_argument("--verbose", action="store_true", help="with --random: also the per-session table")
    p.add_argument("--online", action="store_true",
                   help="the live path instead of batch: OnlinePipeline with live calibration, fed in 0.1-s blocks, then rep detection")
    args = p.parse_args(argv)
    if args.random > 0:
        return _main_random(args)
    results = []
    if args.examples.is_dir():
        for folder in sorted(args.examples.iterdir()):
            if (folder / "truth.csv").exists():
                results.append(evaluate_example(folder, args.online))
    for path in sorted(args.replay_data.glob("*.shr")):
        results.append(evaluate_recording(path, args.online))
    if not args.no_sim:
        with tempfile.TemporaryDirectory() as tmp:
            sim_dir = args.sim_dir or Path(tmp)
            sim_dir.mkdir(parents=True, exist_ok=True)
            for path in simulate_matrix(sim_dir):
                results.append(evaluate_recording(path, args.online))
    print(format_table(results))
    failed = [r.name for r in results if not r.passes]
    print(f"\n{len(results) - len(failed)} of {len(results)} sessions meet every target" + (f"; missing: {', '.join(failed)}" if failed else ""))
    return 0 if not failed else 1


def _main_random(args: argparse.Namespace) -> int:
    conditions = None if not args.conditions else [c.strip() for c in args.conditions.split(",")]
    unknown = set(conditions or []) - set(RANDOM_CONDITIONS)
    if unknown:
        raise SystemExit(f"unknown condition(s) {', '.join(sorted(unknown))}; known: {', '.join(RANDOM_CONDITIONS)}")
    by_condition: dict[str, list[CaseResult]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        sim_dir = args.sim_dir or Path(tmp)
        sim_dir.mkdir(parents=True, exist_ok=True)
        for cond, path in random_sessions(sim_dir, args.random, args.seed_base, conditions):
            by_condition.setdefault(cond, []).append(evaluate_recording(path, args.online))
    if args.verbose:
        print(format_table([r for rs in by_condition.values() for r in rs]) + "\n")
    print(format_pass_rates(by_condition))
    total = [r for rs in by_condition.values() for r in rs]
    passed = sum(r.passes for r in total)
    print(f"\n{passed} of {len(total)} random sessions (seeds from {args.seed_base}) meet every target")
    acceptance = [r for cond, rs in by_condition.items() if not cond.startswith("stress_") for r in rs]
    return 0 if all(r.passes for r in acceptance) else 1


if __name__ == "__main__":
    sys.exit(main())
