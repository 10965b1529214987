"""Orientation accuracy of every fusion method on the BROAD trials in ../shared/data/broad.

Prints a Markdown table of BROAD's error measure (RMSE of the total orientation error over the
movement phase, NaN reference rows skipped) per trial and the mean, plus the mean heading and
inclination errors. Usage::

    python benchmarks/broad_eval.py [--shared ../shared] [--skip-ahrs]

"fuse default" runs the real ``sensorhub fuse`` command (in-process) on a CSV copy of each trial in
a temporary directory; "online VQF (vqf package)" calls ``vqf.VQF.updateBatch`` directly, as an
independent reference. The ahrs filters take about 10 s per trial together.

Data: BROAD — A Benchmark for Robust Inertial Orientation Estimation, D. Laidig, M. Caruso,
A. Cereatti, T. Seel, Data 6(7):72, 2021, doi:10.3390/data6070072, CC BY 4.0.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import vqf

from sensorhub.cli import main as sensorhub_main
from sensorhub.csv_import import write_imu_csv
from sensorhub.motion.fusion import fuse
from sensorhub.motion.fusion_eval import OrientationErrors, rmse_errors
from sensorhub.samples import ImuSamples

FloatArray = np.ndarray

REPO = Path(__file__).resolve().parent.parent


def load_trial(path: Path) -> tuple[ImuSamples, FloatArray, np.ndarray, float]:
    """BROAD trial -> (samples on a uniform time base, opt_quat, movement mask, rate in Hz)."""
    with np.load(path) as data:
        rate_hz = float(data["sampling_rate"])
        n = len(data["imu_acc"])
        samples = ImuSamples(
            t_s=np.arange(n) / rate_hz,
            acc_m_s2=data["imu_acc"].astype(np.float64),
            gyr_rad_s=data["imu_gyr"].astype(np.float64),
            mag_uT=data["imu_mag"].astype(np.float64),
        )
        return samples, data["opt_quat"].astype(np.float64), data["movement"].astype(bool), rate_hz


def run_fuse_command(samples: ImuSamples, workdir: Path, extra: list[str] | None = None) -> FloatArray:
    """Run ``sensorhub fuse IN.csv OUT.csv [extra]`` and return the quaternion columns of OUT.csv."""
    csv_in, csv_out = workdir / "trial.csv", workdir / "trial_q.csv"
    write_imu_csv(csv_in, samples)
    code = sensorhub_main(["fuse", str(csv_in), str(csv_out), *(extra or [])])
    if code != 0:
        raise RuntimeError(f"sensorhub fuse exited with {code}")
    out = np.loadtxt(csv_out, delimiter=",", skiprows=1)
    return np.asarray(out[:, 1:5])


def vqf_online_reference(samples: ImuSamples, rate_hz: float) -> FloatArray:
    """Online 9-axis VQF straight from the vqf package, bypassing sensorhub."""
    est = vqf.VQF(1.0 / rate_hz).updateBatch(
        np.ascontiguousarray(samples.gyr_rad_s),
        np.ascontiguousarray(samples.acc_m_s2),
        np.ascontiguousarray(samples.mag_uT),
    )
    return np.asarray(est["quat9D"])


def sensorhub_fusion(method: str, offline: bool = False) -> Callable[[ImuSamples, float], FloatArray]:
    def run(samples: ImuSamples, rate_hz: float) -> FloatArray:
        return fuse(samples, method, offline=offline, rate_hz=rate_hz).q_earth_sensor

    return run


def methods(include_ahrs: bool, workdir: Path) -> dict[str, Callable[[ImuSamples, float], FloatArray]]:
    def fuse_cli(samples: ImuSamples, rate_hz: float) -> FloatArray:
        return run_fuse_command(samples, workdir)

    table: dict[str, Callable[[ImuSamples, float], FloatArray]] = {
        "fuse default (CLI)": fuse_cli,
        "online VQF (vqf package)": vqf_online_reference,
        "offline VQF": sensorhub_fusion("vqf", offline=True),
    }
    if include_ahrs:
        for name in ("madgwick", "mahony", "ekf"):
            table[f"{name} (ahrs)"] = sensorhub_fusion(name)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="shared data directory")
    parser.add_argument("--skip-ahrs", action="store_true", help="only the VQF variants (seconds instead of a minute)")
    args = parser.parse_args(argv)
    trials = sorted((args.shared / "data" / "broad").glob("*.npz"))
    if not trials:
        print(f"no BROAD trials under {args.shared / 'data' / 'broad'}", file=sys.stderr)
        return 1

    results: dict[str, list[OrientationErrors]] = {}
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        table = methods(not args.skip_ahrs, Path(tmp))
        for trial in trials:
            samples, opt_quat, movement, rate_hz = load_trial(trial)
            for name, run in table.items():
                t0 = time.perf_counter()
                q = run(samples, rate_hz)
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0
                results.setdefault(name, []).append(rmse_errors(q, opt_quat, movement))

    names = [t.stem for t in trials]
    print("BROAD error measure, RMSE of the total orientation error in degrees over the movement phase")
    print("(data: BROAD, Laidig et al. 2021, CC BY 4.0)\n")
    print("| method | " + " | ".join(names) + " | mean | mean heading | mean inclination | run time |")
    print("| --- | " + " | ".join("---:" for _ in names) + " | ---: | ---: | ---: | ---: |")
    for name, errs in results.items():
        per_trial = " | ".join(f"{e.total_deg:.2f}" for e in errs)
        mean = np.mean([e.total_deg for e in errs])
        head = np.mean([e.heading_deg for e in errs])
        incl = np.mean([e.inclination_deg for e in errs])
        print(f"| {name} | {per_trial} | {mean:.2f} | {head:.2f} | {incl:.2f} | {seconds[name]:.1f} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
