"""Regenerate ``replay_data/``: simulated sessions with their ground truth, for replay and tests.

Run ``python -m sensorhub.sim.make_replay_data [--out replay_data]``. Every session is fixed by its
seed, so the notifications, truth and metadata come out identical on every run (only the
recording's END record carries the wall-clock time at which it was closed). The table below is the
catalogue; replay_data/README.md describes it for readers of the data.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, replace
from pathlib import Path

from sensorhub.sim.session import SimConfig, simulate, write_recording

logger = logging.getLogger(__name__)

MAX_SESSION_BYTES = 5_000_000
MIN_DISTURBED_SEATED_S = 240.0


@dataclass(frozen=True)
class ReplaySession:
    name: str
    config: SimConfig
    purpose: str


SESSIONS: tuple[ReplaySession, ...] = (
    ReplaySession(
        "seated_right_9axis",
        SimConfig(drill="seated_rotation", side="right", seed=101, reps=8, compensation_reps=(3, 6)),
        "baseline seated drill, 9-axis, 100/100 Hz",
    ),
    ReplaySession(
        "seated_left_6axis",
        SimConfig(drill="seated_rotation", side="left", seed=102, reps=6, compensation_reps=(2, 5), no_mag=True),
        "left side, no magnetometer (heading only from the gyroscope)",
    ),
    ReplaySession(
        "standing_right_9axis",
        SimConfig(drill="standing_rotation", side="right", seed=103, reps=6, compensation_reps=(4,)),
        "standing heel-pivot drill, 9-axis",
    ),
    ReplaySession(
        "standing_left_6axis",
        SimConfig(drill="standing_rotation", side="left", seed=104, reps=6, compensation_reps=(2, 5), no_mag=True),
        "standing, left, 6-axis (like the shared example)",
    ),
    ReplaySession(
        "seated_right_9axis_magdist30",
        SimConfig(drill="seated_rotation", side="right", seed=105, reps=38, compensation_reps=(5, 14, 23, 31),
                  mag_disturbance_uT=30.0),
        "30 µT disturbance at the thigh sensor (metal chair) over a >= 4-minute seated set",
    ),
    ReplaySession(
        "standing_right_9axis_loss5",
        SimConfig(drill="standing_rotation", side="right", seed=106, reps=8, compensation_reps=(3, 7), loss=0.05,
                  timestamp_wrap_at_s=40.0),
        "5 % random packet loss on both links; both u32 µs sensor timestamps wrap about 40 s in",
    ),
    ReplaySession(
        "seated_left_9axis_60_200hz",
        SimConfig(drill="seated_rotation", side="left", seed=107, reps=6, compensation_reps=(4,),
                  rates_hz=(60.0, 200.0)),
        "pelvis 60 Hz, thigh 200 Hz",
    ),
)


def generate(out_dir: Path) -> list[tuple[ReplaySession, int, float]]:
    """Write every session of :data:`SESSIONS` to ``out_dir``; returns (session, bytes, duration_s)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for entry in SESSIONS:
        config = entry.config
        session = simulate(config)
        if config.mag_disturbance_uT > 0:
            # The disturbed session must hold a long enough seated set; add reps until it does.
            while session.scenario.drill_end_s - session.scenario.drill_start_s < MIN_DISTURBED_SEATED_S:
                config = replace(config, reps=config.reps + 2)
                session = simulate(config)
        written = write_recording(session, out_dir / f"{entry.name}.shr", overwrite=True)
        size = sum(p.stat().st_size for p in written.values())
        if size > MAX_SESSION_BYTES:
            raise RuntimeError(f"{entry.name}: {size} bytes exceeds the {MAX_SESSION_BYTES}-byte budget")
        logger.info("%s: %.1f s, %d bytes, dropped %s", entry.name, session.scenario.duration_s, size,
                    session.dropped_packets)
        results.append((replace(entry, config=config), size, session.scenario.duration_s))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("replay_data"), help="output directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for entry, size, duration in generate(args.out):
        c = entry.config
        logger.info("| %s | %s | %s | %s | %.0f s | %.2f MB |", entry.name, c.drill, c.side,
                    "6" if c.no_mag else "9", duration, size / 1e6)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
