"""Shared helpers of the motion-engine benchmarks: a long simulated session and machine-load notes.

Sessions are made with the real ``sensorhub simulate`` command (so they are what a user would
analyse) into a cache directory outside the repository, and reused across runs: the same
``(minutes, drill, seed, mag)`` always gives the same files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sensorhub.samples import ImuSamples

T = TypeVar("T")

CACHE_DIR = Path(os.environ.get("SENSORHUB_BENCH_DIR", "/tmp/sensorhub-bench"))
#: A seated_rotation rep with its rests lasts about 7.7 s in the simulator; the calibration
#: protocol before the drill about 20 s.
SECONDS_PER_REP = 7.65
PROTOCOL_S = 20.0


@dataclass(frozen=True)
class BenchSession:
    """A simulated recording on disk and what it holds."""

    recording: Path
    csv_dir: Path
    duration_s: float
    reps: int
    drill: str


def session(minutes: float = 30.0, *, drill: str = "seated_rotation", seed: int = 7, no_mag: bool = False) -> BenchSession:
    """The cached simulated session of about ``minutes`` (recording and IMU CSV pair); made on first use."""
    reps = max(1, round((minutes * 60.0 - PROTOCOL_S) / SECONDS_PER_REP))
    name = f"{drill}_{reps}reps_seed{seed}{'_6axis' if no_mag else ''}"
    rec = CACHE_DIR / f"{name}.shrec"
    csv_dir = CACHE_DIR / f"{name}_csv"
    meta_path = CACHE_DIR / f"{name}.meta.json"
    if not (rec.exists() and meta_path.exists() and (csv_dir / "thigh.csv").exists()):
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "sensorhub", "simulate", "--drill", drill, "--reps", str(reps), "--seed", str(seed),
               "--out", str(rec), "--csv-dir", str(csv_dir), "--force"]
        if no_mag:
            cmd.append("--no-mag")
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    meta = json.loads(meta_path.read_text())
    return BenchSession(rec, csv_dir, float(meta["duration_s"]), reps, drill)


def load_samples(bench: BenchSession) -> tuple[str, ImuSamples, ImuSamples]:
    """(side, pelvis, thigh) of the session, assembled from the recording by the ingest stage."""
    from sensorhub.analysis import load_recording_input

    leg = load_recording_input(bench.recording).legs[0]
    return leg.side, leg.pelvis, leg.thigh


def load_average() -> str:
    """The 1/5/15-minute load averages and the core count: other engineers share this machine."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """(result, wall seconds) of one call of ``fn``."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0
