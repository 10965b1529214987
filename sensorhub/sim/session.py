"""A whole simulated session: scenario, sensors, BLE link, and the files it is written to.

:func:`simulate` turns a :class:`SimConfig` into a :class:`SimulatedSession` (all in memory, no
I/O); :func:`write_recording` writes it as a project recording (``RecordingWriter``) with the truth
files beside it, and :func:`write_csv_dir` writes it in the IMU CSV import format of the shared
examples. The same seed gives the same session: each concern (script, mounts, each sensor's noise,
each link) draws from its own child of ``SeedSequence(seed)``, so changing e.g. ``loss`` leaves the
motion and the sensor readings unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from sensorhub.errors import ConfigurationError
from sensorhub.notification import Notification
from sensorhub.protocol import SAMPLE_RATES_HZ
from sensorhub.recording import Athlete, MarkLabel, RecordingMeta, RecordingWriter
from sensorhub.samples import ImuSamples
from sensorhub.sim.ble import (
    U32,
    LinkConfig,
    LinkResult,
    SensorClock,
    merge_by_host_time,
    random_clock,
    transmit,
)
from sensorhub.sim.imu import (
    DipoleDisturbance,
    ImuErrorModel,
    ImuReadings,
    MagneticEnvironment,
    random_mount,
    synthesize_imu,
)
from sensorhub.sim.rotations import FloatArray, quat_wxyz_from_matrix
from sensorhub.sim.scenario import Scenario, build_scenario
from sensorhub.sim.truth import (
    TRUTH_RATE_HZ,
    TruthRep,
    truth_angles_deg,
    truth_reps,
    write_json,
    write_truth_csv,
)

logger = logging.getLogger(__name__)

SEGMENTS: tuple[str, str] = ("pelvis", "thigh")
CONN_INTERVALS_S: tuple[float, ...] = (0.0075, 0.015, 0.030, 0.050)
"""Connection intervals a link is given at random: firmware-requested fast ones and BlueZ defaults."""
TRUTH_SUFFIXES = {"truth": ".truth.csv", "reps": ".reps.json", "meta": ".meta.json"}


@dataclass(frozen=True)
class SimConfig:
    """Everything ``sensorhub simulate`` can choose. Rates are (pelvis, thigh) in Hz."""

    drill: str = "seated_rotation"
    side: str = "right"
    seed: int = 0
    reps: int = 6
    compensation_reps: Sequence[int] = (3, 5)
    rates_hz: tuple[float, float] = (100.0, 100.0)
    no_mag: bool = False
    mag_disturbance_uT: float = 0.0
    loss: float = 0.0
    loss_burst: float = 1.0
    """Mean length of a run of lost packets (1: independent losses)."""
    mtu: int = 247
    mount_spread_deg: float = 20.0
    errors: ImuErrorModel = field(default_factory=ImuErrorModel)
    sway: bool = True
    earth_field_uT: float = 49.0
    earth_dip_deg: float = 64.0
    thigh_soft_tissue: float = 0.0
    """Fraction of the hip's axial rotation the thigh sensor misses (soft-tissue artefact); 0 = rigid."""
    timestamp_wrap_at_s: float | None = None
    """If set, both sensor clocks start so that their u32 µs timestamps wrap near this session time
    (within ±1 s of each other); otherwise the start values are uniformly random."""

    def validate(self) -> None:
        for segment, rate in zip(SEGMENTS, self.rates_hz, strict=True):
            if rate not in SAMPLE_RATES_HZ.values():
                raise ConfigurationError(
                    f"--rates: {segment} rate {rate:g} Hz is not a protocol rate; "
                    f"expected one of {sorted(SAMPLE_RATES_HZ.values())}"
                )
        if not 0.0 <= self.loss < 1.0:
            raise ConfigurationError(f"--loss must be in [0, 1), got {self.loss}")
        if self.loss_burst < 1.0:
            raise ConfigurationError(f"--loss-burst must be >= 1 packet, got {self.loss_burst}")
        if self.mag_disturbance_uT < 0:
            raise ConfigurationError(f"--mag-disturbance must be >= 0 µT, got {self.mag_disturbance_uT}")
        if not 0.0 <= self.thigh_soft_tissue < 1.0:
            raise ConfigurationError(f"--soft-tissue must be in [0, 1), got {self.thigh_soft_tissue}")
        if self.mag_disturbance_uT > 0 and self.no_mag:
            raise ConfigurationError("--mag-disturbance needs magnetometers; it cannot be combined with --no-mag")


@dataclass
class SimulatedSensor:
    """One simulated sensor: identity, mounting, clock, readings and what its link delivered."""

    sensor_id: str
    segment: str
    rate_hz: float
    r_segment_sensor: FloatArray
    clock: SensorClock
    t_sensor_us: FloatArray
    readings: ImuReadings
    link_config: LinkConfig
    link: LinkResult

    @property
    def has_mag(self) -> bool:
        return self.readings.mag_uT is not None

    def imu_samples(self) -> ImuSamples:
        """Every sample the sensor took (before the link), on the true (host) time base."""
        r = self.readings
        return ImuSamples(r.t_true_s, r.acc_m_s2, r.gyr_rad_s, r.mag_uT)


@dataclass
class SimulatedSession:
    config: SimConfig
    scenario: Scenario
    sensors: dict[str, SimulatedSensor]
    magnetic: MagneticEnvironment | None
    truth: FloatArray
    """Truth table (n, 7) at 100 Hz, columns :data:`sensorhub.sim.truth.TRUTH_COLUMNS`."""
    reps: list[TruthRep]
    athlete_id: str
    athlete_name: str

    @property
    def notifications(self) -> list[Notification]:
        """Both sensors' notifications in host receive order."""
        return merge_by_host_time(*(s.link.notifications for s in self.sensors.values()))

    @property
    def dropped_packets(self) -> dict[str, int]:
        return {s.sensor_id: s.link.dropped for s in self.sensors.values()}

    def truth_meta(self, truth_files: dict[str, str] | None = None) -> dict[str, Any]:
        """``meta.json``: the examples' keys first, then what else the simulator knows."""
        sc = self.scenario
        cfg = self.config
        meta: dict[str, Any] = {
            "scenario": sc.scenario_label,
            "side": sc.side,
            "seed": cfg.seed,
            "no_mag": cfg.no_mag,
            "mag_disturbance": cfg.mag_disturbance_uT,
            "rates": ",".join(f"{r:g}" for r in cfg.rates_hz),
            "mount_spread": cfg.mount_spread_deg,
            "heading_deg": sc.kinematics.heading_deg,
            "duration_s": sc.duration_s,
            "segments": {k: [list(iv) for iv in v] for k, v in sc.phases.items()},
            "mounts_wxyz": {seg: quat_wxyz_from_matrix(s.r_segment_sensor).tolist() for seg, s in self.sensors.items()},
            "drill": sc.drill,
            "loss": cfg.loss,
            "loss_burst": cfg.loss_burst,
            "drill_start_s": sc.drill_start_s,
            "drill_end_s": sc.drill_end_s,
            "events": [{"t_s": t, "label": label} for t, label in sc.events],
            "dropped_packets": self.dropped_packets,
            "dropped_seq": {s.sensor_id: s.link.dropped_seq for s in self.sensors.values()},
            "sensors": {
                seg: {
                    "sensor_id": s.sensor_id,
                    "rate_hz": s.rate_hz,
                    "has_mag": s.has_mag,
                    "clock": asdict(s.clock),
                    "conn_interval_s": s.link_config.conn_interval_s,
                    "samples_per_packet": s.link.samples_per_packet,
                    "packets_sent": s.link.packets_sent,
                }
                for seg, s in self.sensors.items()
            },
            "pelvis_peak_excursion_deg": [r.peak_pelvis_excursion_deg for r in self.reps],
            "athlete": {"id": self.athlete_id, "name": self.athlete_name},
            "imu_errors": asdict(cfg.errors),
            "geometry": asdict(sc.kinematics.geometry),
            "thigh_soft_tissue": sc.kinematics.thigh_skin_lag,
        }
        if self.magnetic is not None:
            mag: dict[str, Any] = {"earth_uT": self.magnetic.earth_uT.tolist()}
            if self.magnetic.disturbance is not None:
                mag["disturbance"] = {
                    "sensor": self.magnetic.disturbed_sensor,
                    "dipole_position_m": self.magnetic.disturbance.position_m.tolist(),
                    "dipole_moment_A_m2": self.magnetic.disturbance.moment_A_m2.tolist(),
                }
            meta["magnetic"] = mag
        if truth_files:
            meta["truth_files"] = truth_files
        return meta


def simulate(config: SimConfig) -> SimulatedSession:
    """Simulate a whole session in memory (see the module docstring)."""
    config.validate()
    seeds = np.random.SeedSequence(config.seed).spawn(8)
    rng_script, rng_mount, rng_mag, rng_ids = (np.random.default_rng(s) for s in seeds[:4])
    rng_imu = {"pelvis": np.random.default_rng(seeds[4]), "thigh": np.random.default_rng(seeds[5])}
    rng_link = {"pelvis": np.random.default_rng(seeds[6]), "thigh": np.random.default_rng(seeds[7])}

    scenario = build_scenario(
        config.drill, config.side, rng_script, config.reps, config.compensation_reps, sway=config.sway
    )
    if config.thigh_soft_tissue:
        scenario = replace(scenario, kinematics=replace(scenario.kinematics, thigh_skin_lag=config.thigh_soft_tissue))
    kin = scenario.kinematics
    mounts = {seg: random_mount(rng_mount, seg, config.side, config.mount_spread_deg) for seg in SEGMENTS}

    magnetic: MagneticEnvironment | None = None
    if not config.no_mag:
        magnetic = MagneticEnvironment.earth(config.earth_field_uT, config.earth_dip_deg)
        if config.mag_disturbance_uT > 0:
            _, p_thigh = kin.sensor_positions(np.array([scenario.drill_pose_t_s]))
            dipole = DipoleDisturbance.placed(rng_mag, p_thigh[0], config.mag_disturbance_uT)
            magnetic = MagneticEnvironment(magnetic.earth_uT, dipole, "thigh")

    tag = f"{int(rng_ids.integers(0, 1 << 16)):04x}"
    sensors: dict[str, SimulatedSensor] = {}
    for seg, rate in zip(SEGMENTS, config.rates_hz, strict=True):
        rng_l = rng_link[seg]
        clock = random_clock(rng_l)
        if config.timestamp_wrap_at_s is not None:
            t_wrap = config.timestamp_wrap_at_s + float(rng_l.uniform(-1.0, 1.0))
            clock = replace(clock, start_us=int(U32 - (t_wrap - clock.t_on_s) * 1e6))
        t_sensor_us, t_true = clock.sample_times(rate, scenario.duration_s)
        readings = synthesize_imu(kin, seg, t_true, mounts[seg], config.errors, rng_imu[seg], rate, magnetic)
        link_cfg = LinkConfig(
            mtu=config.mtu, conn_interval_s=float(rng_l.choice(CONN_INTERVALS_S)), loss=config.loss,
            loss_burst=config.loss_burst,
        )
        sensor_id = f"sim-{seg}-{tag}"
        link = transmit(sensor_id, rng_l, clock, rate, t_sensor_us, t_true, readings.acc_m_s2,
                        readings.gyr_rad_s, readings.mag_uT, link_cfg)
        sensors[seg] = SimulatedSensor(sensor_id, seg, rate, mounts[seg], clock, t_sensor_us, readings, link_cfg, link)
        logger.debug("%s: %d samples, %d packets, %d dropped", sensor_id, len(t_true), link.packets_sent, link.dropped)

    t_truth = np.arange(0.0, scenario.duration_s, 1.0 / TRUTH_RATE_HZ)
    truth = truth_angles_deg(kin, t_truth)
    reps = truth_reps(kin, scenario.reps)
    return SimulatedSession(config, scenario, sensors, magnetic, truth, reps, f"sim-athlete-{tag}",
                            f"Simulated Athlete {tag.upper()}")


def truth_paths(recording_path: Path) -> dict[str, Path]:
    """Where the truth files of a recording go: its suffix replaced by ``.truth.csv`` etc."""
    return {key: recording_path.with_suffix(suffix) for key, suffix in TRUTH_SUFFIXES.items()}


def write_recording(session: SimulatedSession, path: Path, overwrite: bool = False) -> dict[str, Path]:
    """Write the recording at ``path`` and its truth files beside it; returns all paths written."""
    path = Path(path)
    paths = truth_paths(path)
    sc = session.scenario
    truth_files = {key: p.name for key, p in paths.items()}
    sim_extra = {
        "seed": session.config.seed,
        "dropped_packets": session.dropped_packets,
        "truth_files": truth_files,
        "scenario": sc.scenario_label,
        "rates": ",".join(f"{r:g}" for r in session.config.rates_hz),
        "no_mag": session.config.no_mag,
        "mag_disturbance": session.config.mag_disturbance_uT,
        "loss": session.config.loss,
        "loss_burst": session.config.loss_burst,
    }
    meta = RecordingMeta(
        athlete=Athlete(session.athlete_id, session.athlete_name),
        drill=sc.drill,
        side=sc.side,  # type: ignore[arg-type]
        source="sim",
        created="2026-01-01T00:00:00+00:00",
        extra={"sim": sim_extra},
    )
    marks: list[tuple[float, str, dict[str, Any]]] = [(sc.phases["static"][0][0], MarkLabel.CALIBRATION_START, {})]
    for phase, intervals in sc.phases.items():
        for start, end in intervals:
            marks.append((start, "calibration_phase", {"phase": phase, "t_end_s": end}))
    marks.append((sc.phases["static"][-1][1], MarkLabel.CALIBRATION_END, {}))
    for t, label in sc.events:
        marks.append((t, label, {}))
    marks.append((sc.drill_start_s, MarkLabel.DRILL_START, {"drill": sc.drill}))
    marks.append((sc.drill_end_s, MarkLabel.DRILL_END, {"drill": sc.drill}))
    marks.sort(key=lambda m: m[0])

    writer = RecordingWriter(path, meta, overwrite=overwrite, background_flush=False, flush_records=4096)
    try:
        for seg in SEGMENTS:
            s = session.sensors[seg]
            writer.add_sensor(
                s.sensor_id,
                segment=seg,
                side=sc.side if seg == "thigh" else None,
                has_mag=s.has_mag,
                rate_hz=s.rate_hz,
                name=f"simulated {seg} IMU",
                firmware="sim",
            )
        i_mark = 0
        for note in session.notifications:
            while i_mark < len(marks) and marks[i_mark][0] <= note.t_host_s:
                t, label, data = marks[i_mark]
                writer.write_mark(t, label, **data)
                i_mark += 1
            writer.write_notification(note)
        for t, label, data in marks[i_mark:]:
            writer.write_mark(t, label, **data)
    except BaseException:
        writer.close(status="error")
        raise
    writer.close(summary={"sim": {"dropped_packets": session.dropped_packets}})

    write_truth_csv(paths["truth"], session.truth)
    write_json(paths["reps"], [r.to_json() for r in session.reps])
    write_json(paths["meta"], session.truth_meta(truth_files))
    return {"recording": path, **paths}


def write_csv_dir(session: SimulatedSession, directory: Path) -> dict[str, Path]:
    """Write pelvis.csv, thigh.csv (shared true clock), truth.csv, reps.json, meta.json to ``directory``.

    The IMU CSVs hold every sample as the sensor took it (no BLE link, no quantisation), with the same
    columns and number format as /work/shared/examples.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for seg, s in session.sensors.items():
        r = s.readings
        cols = [r.t_true_s[:, None], r.acc_m_s2, r.gyr_rad_s] + ([r.mag_uT] if r.mag_uT is not None else [])
        header = "t,ax,ay,az,gx,gy,gz" + (",mx,my,mz" if r.mag_uT is not None else "")
        path = directory / f"{seg}.csv"
        np.savetxt(path, np.hstack(cols), fmt="%.6f", delimiter=",", header=header, comments="")
        written[seg] = path
    written["truth"] = directory / "truth.csv"
    write_truth_csv(written["truth"], session.truth)
    written["reps"] = directory / "reps.json"
    write_json(written["reps"], [r.to_json() for r in session.reps])
    written["meta"] = directory / "meta.json"
    write_json(written["meta"], session.truth_meta({"truth": "truth.csv", "reps": "reps.json", "meta": "meta.json"}))
    return written
