"""End-to-end accuracy evaluation against ground truth: angles and reps, as ``sensorhub analyze`` sees them.

Each case is a session with known truth: a recording (replay_data/ or freshly simulated) that goes
through the real path (protocol decoding, ingest, clock mapping, motion pipeline, rep detection), or
an IMU CSV pair (../shared/examples). For each case it reports the RMSE of hip flexion, adduction and
rotation over the drill (from the end of the calibration protocol to the end of the drill), the rep
count against the truth, the worst peak internal/external rotation error over matched reps and
whether compensation was flagged in exactly the reps that had it.

Run ``python -m sensorhub.evaluation --help``. This module reads files and may run the simulator; it
is a measuring tool, not part of the live path.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sensorhub.analysis import LegResult, SessionInput, analyze_leg, load_csv_input, load_recording_input

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
    rmse = tuple(float(np.sqrt(np.mean(err[:, k] ** 2))) for k in range(3))
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


def evaluate_recording(path: Path) -> CaseResult:
    meta = json.loads(path.with_suffix(".meta.json").read_text())
    truth = read_truth(path.with_suffix(".truth.csv"), path.with_suffix(".reps.json"),
                       meta["segments"]["static"][1][1], meta["drill_end_s"])
    t0 = time.perf_counter()
    session = load_recording_input(path)
    result = analyze_leg(session.legs[0], session.drill)
    return score(path.stem, result, truth, time.perf_counter() - t0)


def evaluate_example(folder: Path) -> CaseResult:
    meta = json.loads((folder / "meta.json").read_text())
    drill = {"seated": "seated_rotation", "standing": "standing_rotation"}[meta["scenario"]]
    truth = read_truth(folder / "truth.csv", folder / "reps.json", meta["segments"]["static"][1][1], math.inf)
    t0 = time.perf_counter()
    session: SessionInput = load_csv_input(folder / "pelvis.csv", folder / "thigh.csv", side=meta["side"], drill=drill)
    result = analyze_leg(session.legs[0], drill)
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
    args = p.parse_args(argv)
    results = []
    if args.examples.is_dir():
        for folder in sorted(args.examples.iterdir()):
            if (folder / "truth.csv").exists():
                results.append(evaluate_example(folder))
    for path in sorted(args.replay_data.glob("*.shr")):
        results.append(evaluate_recording(path))
    if not args.no_sim:
        with tempfile.TemporaryDirectory() as tmp:
            sim_dir = args.sim_dir or Path(tmp)
            sim_dir.mkdir(parents=True, exist_ok=True)
            for path in simulate_matrix(sim_dir):
                results.append(evaluate_recording(path))
    print(format_table(results))
    failed = [r.name for r in results if not r.passes]
    print(f"\n{len(results) - len(failed)} of {len(results)} sessions meet every target" + (f"; missing: {', '.join(failed)}" if failed else ""))
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
