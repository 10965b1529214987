"""The session simulator: the test bed of the motion engine when there is no hardware.

It scripts an athlete's session (the calibration protocol, then a hip-rotation drill with per-rep
variation and chosen pelvis compensation), synthesises what two strapped-on IMUs measure along the
true pelvis and femur trajectories, passes the samples through a model of the BLE link (clock drift,
batching, connection events, loss) and writes a project recording plus exact ground truth.

Entry points: :func:`simulate` (a :class:`SimConfig` in, a :class:`SimulatedSession` out, no I/O),
:func:`write_recording` and :func:`write_csv_dir`. Conventions and checks: docs/simulator.md.
"""

from sensorhub.sim.imu import ImuErrorModel
from sensorhub.sim.scenario import DRILLS
from sensorhub.sim.session import (
    SimConfig,
    SimulatedSensor,
    SimulatedSession,
    simulate,
    truth_paths,
    write_csv_dir,
    write_recording,
)

__all__ = [
    "DRILLS",
    "ImuErrorModel",
    "SimConfig",
    "SimulatedSensor",
    "SimulatedSession",
    "simulate",
    "truth_paths",
    "write_csv_dir",
    "write_recording",
]
