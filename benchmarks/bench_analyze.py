"""End to end ``sensorhub analyze`` of a 30-minute two-sensor session, including file I/O.

Times the real command in a fresh process (interpreter start, imports, reading the input, ingest,
motion pipeline, reps, writing angles.csv / reps.json / calibration.json / report.png), for the
recording and for the IMU CSV pair of the same simulated session, and reports the median of
``--runs`` runs (wall time, and the CPU time of the command and its worker processes: the machine is
shared). ``--jobs 1,2`` times the command with each ``--jobs`` value (default: the command's own
default, the number of CPUs), runs interleaved. ``--stages`` adds an in-process breakdown of one run
in a single process (what each stage costs; with ``--jobs`` >= 2 the ingest and the report run in
worker processes alongside the main one), to see where the time goes.

    python benchmarks/bench_analyze.py [--minutes 30] [--runs 5] [--jobs 1,2] [--stages] [--method vqf]

The same measurement with hyperfine (sessions are cached in /tmp/sensorhub-bench):

    hyperfine -w 1 -r 5 'sensorhub analyze /tmp/sensorhub-bench/<session>.shrec --out /tmp/sensorhub-bench/out'
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import time

from _session import CACHE_DIR, BenchSession, load_average, session


def _command(bench: BenchSession, source: str, out: str, method: str, jobs: str) -> list[str]:
    cmd = [sys.executable, "-m", "sensorhub", "analyze", "--out", out, "--method", method]
    if jobs != "default":
        cmd += ["--jobs", jobs]
    if source == "recording":
        return [*cmd, str(bench.recording)]
    return [*cmd, "--pelvis", str(bench.csv_dir / "pelvis.csv"), "--thigh", str(bench.csv_dir / "thigh.csv"),
            "--side", "right", "--drill", bench.drill]  # the simulator's default leg


def _stages(bench: BenchSession, method: str) -> None:
    """One in-process run with a timer per stage (imports included)."""
    t0, c0 = time.perf_counter(), time.process_time()
    from sensorhub.analysis import import_motion_stage, load_recording_input, write_outputs

    import_motion_stage()  # imported on first use by the command; counted here with the other imports
    t1, c1 = time.perf_counter(), time.process_time()
    session_input = load_recording_input(bench.recording)
    t2, c2 = time.perf_counter(), time.process_time()
    from sensorhub.analysis import to_table
    from sensorhub.drills import detect_reps, summarize
    from sensorhub.motion.pipeline import analyze_imu

    leg = session_input.legs[0]
    angles = analyze_imu(leg.pelvis, leg.thigh, leg.side, method=method)
    t3, c3 = time.perf_counter(), time.process_time()
    table = to_table(angles)
    detection = detect_reps(table, session_input.drill)
    summarize(detection.reps, session_input.drill, leg.side, detection.incomplete)
    t4, c4 = time.perf_counter(), time.process_time()
    out = CACHE_DIR / "out_stages"
    angles.write_csv(out.with_suffix(".angles.csv"))
    t5, c5 = time.perf_counter(), time.process_time()
    from sensorhub.analysis import LegResult

    write_outputs(LegResult(leg.side, angles, table, detection, summarize(detection.reps, session_input.drill, leg.side)),
                  session_input.drill, out, source=str(bench.recording), report=False)
    t6, c6 = time.perf_counter(), time.process_time()
    from sensorhub.drills.report import render_report

    render_report(table, detection.reps, session_input.drill, leg.side, out / "report.png")
    t7, c7 = time.perf_counter(), time.process_time()
    names = ("imports", "read + ingest", "motion", "reps + summary", "angles.csv alone",
             "write_outputs without report (angles.csv, reps.json, calibration.json)", "report.png")
    walls = (t0, t1, t2, t3, t4, t5, t6, t7)
    cpus = (c0, c1, c2, c3, c4, c5, c6, c7)
    print("stages (wall / CPU s): " + " | ".join(
        f"{name} {walls[k + 1] - walls[k]:.2f} / {cpus[k + 1] - cpus[k]:.2f}" for k, name in enumerate(names)))
    print(f"total {t7 - t0:.2f} / {c7 - c0:.2f} s (angles.csv written twice) | {load_average()}")


def _parallel_stages(bench: BenchSession, method: str, workers: int) -> None:
    """The command's own calls with ``workers`` processes, in this process: wall and this process's CPU.

    Run after :func:`_stages` (modules already imported), so it shows the stages, not the imports.
    """
    from sensorhub.analysis import analyze_session, load_recording_input

    out = CACHE_DIR / "out_parallel_stages"
    t0, c0 = time.perf_counter(), time.process_time()
    session_input = load_recording_input(bench.recording, workers=workers)
    t1, c1 = time.perf_counter(), time.process_time()
    analyze_session(session_input, out, method=method, workers=workers)
    t2, c2 = time.perf_counter(), time.process_time()
    print(f"with {workers} processes (wall / CPU of the main process, s): read + ingest {t1 - t0:.2f} / {c1 - c0:.2f} | "
          f"motion, reps, outputs and report {t2 - t1:.2f} / {c2 - c1:.2f} | {load_average()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--method", default="vqf")
    ap.add_argument("--sources", default="recording,csv", help="inputs to time: recording and/or csv")
    ap.add_argument("--jobs", default="default", help="comma-separated --jobs values to time (default: the command's default)")
    ap.add_argument("--stages", action="store_true", help="also print an in-process per-stage breakdown")
    args = ap.parse_args()
    bench = session(args.minutes)
    print(f"session {bench.recording.name}: {bench.duration_s / 60:.1f} min, {bench.reps} reps")
    for source in args.sources.split(","):
        out = str(CACHE_DIR / f"out_{source}")
        jobs_values = args.jobs.split(",")
        times: dict[str, list[float]] = {j: [] for j in jobs_values}
        cpu: dict[str, list[float]] = {j: [] for j in jobs_values}
        for _ in range(args.runs):
            for jobs in jobs_values:  # interleaved, so load changes hit every setting alike
                shutil.rmtree(out, ignore_errors=True)
                # RUSAGE_CHILDREN counts every waited-for descendant: the command and its workers.
                r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.perf_counter()
                subprocess.run(_command(bench, source, out, args.method, jobs), check=True, stdout=subprocess.DEVNULL)
                times[jobs].append(time.perf_counter() - t0)
                r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[jobs].append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
                print(f"  {source:9s} --jobs {jobs:7s} wall {times[jobs][-1]:.2f} s, CPU {cpu[jobs][-1]:.2f} s | {load_average()}")
        for jobs in jobs_values:
            t, c = times[jobs], cpu[jobs]
            print(f"{source} --jobs {jobs}: median wall {statistics.median(t):.2f} s (min {min(t):.2f}, max {max(t):.2f}), "
                  f"median CPU {statistics.median(c):.2f} s over {len(t)} runs")
    if args.stages:
        _stages(bench, args.method)
        _parallel_stages(bench, args.method, 2)


if __name__ == "__main__":
    main()
