"""How long the simulator takes for a 10-minute session (run: python benchmarks/bench_sim.py).

The requirement is seconds, not minutes: the kinematics, IMU synthesis and truth are vectorised;
the BLE link loop runs once per packet.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from sensorhub.sim import SimConfig, simulate, write_recording


def main() -> None:
    for rates in ((100.0, 100.0), (60.0, 200.0), (400.0, 400.0)):
        config = SimConfig(drill="seated_rotation", side="right", seed=1, reps=80, rates_hz=rates)
        t0 = time.perf_counter()
        session = simulate(config)
        t1 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            write_recording(session, Path(tmp) / "bench.shr")
        t2 = time.perf_counter()
        print(
            f"rates {rates}: {session.scenario.duration_s / 60:.1f} min session, simulate {t1 - t0:.2f} s, "
            f"write {t2 - t1:.2f} s"
        )


if __name__ == "__main__":
    main()
