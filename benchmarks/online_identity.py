"""Bit-identity check of the live pipeline: every replay_data recording through ``OnlinePipeline.push``.

Each recording's two sensors are cut into notification-sized blocks (a fixed size, or sizes 2-7
drawn from a seeded generator, as the hub hands them over) and pushed in time order. Kept per run:
every frame ``push`` returned, ``series()``, the diagnostics' notes, drift rates, disturbance
events, hard-iron offsets and the final calibration. ``--save FILE`` stores them (pickle), ``--check
FILE`` compares the current code's outputs with a saved file to the bit (NaNs equal) and exits 1 on
any difference. One run also starts from a stored calibration (the "waiting for still" path).

    python benchmarks/online_identity.py --save /tmp/online_before.pkl     # on the code before a change
    python benchmarks/online_identity.py --check /tmp/online_before.pkl    # after it
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import logging
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

from sensorhub.analysis import load_recording_input
from sensorhub.motion import align
from sensorhub.motion.pipeline import OnlinePipeline
from sensorhub.samples import ImuSamples

REPLAY_DIR = Path(__file__).resolve().parent.parent / "replay_data"
log = logging.getLogger("online_identity")


def _blocks(smp: ImuSamples, sizes: list[int]) -> list[tuple[int, int]]:
    out, i0, k = [], 0, 0
    while i0 < len(smp):
        i1 = min(len(smp), i0 + sizes[k % len(sizes)])
        out.append((i0, i1))
        i0, k = i1, k + 1
    return out


def _canonical(x: Any) -> Any:
    """``x`` with every float as its exact hex form and every array as (dtype, shape, bytes); the
    calibration's creation time left out (it is the wall clock)."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return (type(x).__name__, {f.name: _canonical(getattr(x, f.name)) for f in dataclasses.fields(x) if f.name != "created"})
    if isinstance(x, np.ndarray):
        return (str(x.dtype), x.shape, x.tobytes())
    if isinstance(x, dict):
        return {k: _canonical(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_canonical(v) for v in x)
    if isinstance(x, (float, np.floating)):
        return float(x).hex()
    if isinstance(x, enum.Enum):
        return repr(x)
    return x


def run(rec: Path, mode: str, calibration: Any = None) -> tuple[dict[str, Any], Any]:
    """Push one recording in ``mode`` ("fixed3", "fixed6" or "random") blocks; the outputs to compare."""
    leg = load_recording_input(rec).legs[0]
    rng = np.random.default_rng(7)
    sizes = {"fixed3": [3], "fixed6": [6]}.get(mode) or rng.integers(2, 8, size=997).tolist()
    items = []
    for name, smp in (("pelvis", leg.pelvis), ("thigh", leg.thigh)):
        for i0, i1 in _blocks(smp, sizes):
            items.append((float(smp.t_s[i1 - 1]), name, align.slice_samples(smp, i0, i1)))
    items.sort(key=lambda b: (b[0], b[1]))
    online = OnlinePipeline(leg.side, calibration=calibration, history_s=None)
    frames = []
    for _, name, block in items:
        frames.extend(online.push(name, block))
    rows = np.array([[f.t_s, f.hip_flexion_deg, f.hip_adduction_deg, f.hip_rotation_deg, f.pelvis_tilt_deg,
                      f.pelvis_obliquity_deg, f.pelvis_rotation_deg, float(f.gap)] for f in frames]).reshape(-1, 8)
    s = online.series()
    d = online.diagnostics
    out = {
        "frames": rows,
        "series": np.column_stack((s.as_array(), s.gap)),
        "notes": list(d.notes),
        "drift": dict(d.heading_trend_deg_min),
        "events": [repr(e) for e in d.disturbance_events],
        "hard_iron": dict(d.hard_iron_uT),
        "heading_mode": d.heading_mode,
        "calibration": _canonical(online.calibration),
        "state": online.state,
    }
    return out, online.calibration


def collect() -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for rec in sorted(REPLAY_DIR.glob("*.shr")):
        cal = None
        for mode in ("fixed3", "fixed6", "random"):
            results[f"{rec.stem}/{mode}"], c = run(rec, mode)
            cal = cal or c
        if rec.stem == "standing_right_9axis" and cal is not None:
            results[f"{rec.stem}/stored_calibration"], _ = run(rec, "random", calibration=cal)
    return results


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))
    return bool(a == b)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--save", type=Path)
    g.add_argument("--check", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("sensorhub").setLevel(logging.WARNING)
    results = collect()
    if args.save:
        args.save.write_bytes(pickle.dumps(results))
        log.info("saved %d runs to %s", len(results), args.save)
        return 0
    saved = pickle.loads(args.check.read_bytes())
    bad = 0
    for key in sorted(set(saved) | set(results)):
        if key not in saved or key not in results:
            log.info("%s: missing on one side", key)
            bad += 1
            continue
        for field, v in saved[key].items():
            if not _equal(v, results[key][field]):
                log.info("%s: %s differs", key, field)
                bad += 1
        log.info("%s: %d frames checked", key, len(results[key]["frames"]))
    log.info("%s", "IDENTICAL" if bad == 0 else f"{bad} DIFFERENCES")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
