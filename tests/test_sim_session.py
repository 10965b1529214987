"""The simulated session as files: recording round trip, BLE effects, truth files, determinism, CLI."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from sensorhub.cli import main as cli_main
from sensorhub.errors import ConfigurationError
from sensorhub.protocol import decode_packet, unwrap_time_us
from sensorhub.recording import open_recording
from sensorhub.sim import (
    ImuErrorModel,
    SimConfig,
    SimulatedSession,
    simulate,
    write_csv_dir,
    write_recording,
)
from sensorhub.sim.ble import LinkConfig, SensorClock, transmit
from sensorhub.sim.truth import TRUTH_COLUMNS


@pytest.fixture(scope="module")
def lossy_session() -> SimulatedSession:
    return simulate(
        SimConfig(drill="standing_rotation", side="left", seed=21, reps=3, compensation_reps=(2,),
                  rates_hz=(60.0, 200.0), loss=0.05, no_mag=False)
    )


@pytest.fixture(scope="module")
def written(lossy_session: SimulatedSession, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_recording(lossy_session, tmp_path_factory.mktemp("sim") / "session.shr")


def test_truth_files_sit_beside_the_recording(written: dict[str, Path]) -> None:
    rec = written["recording"]
    assert written["truth"] == rec.with_name("session.truth.csv")
    assert written["reps"] == rec.with_name("session.reps.json")
    assert written["meta"] == rec.with_name("session.meta.json")
    for path in written.values():
        assert path.is_file()


def test_recording_metadata(written: dict[str, Path], lossy_session: SimulatedSession) -> None:
    rec = open_recording(written["recording"])
    assert rec.meta.drill == "standing_rotation"
    assert rec.meta.side == "left"
    assert rec.meta.source == "sim"
    assert rec.meta.athlete is not None and rec.meta.athlete.id.startswith("sim-athlete-")
    sim = rec.meta.extra["sim"]
    assert sim["dropped_packets"] == lossy_session.dropped_packets
    assert sim["truth_files"] == {"truth": "session.truth.csv", "reps": "session.reps.json",
                                  "meta": "session.meta.json"}
    by_segment = {s.segment: s for s in rec.sensors}
    assert by_segment["pelvis"].rate_hz == 60.0 and by_segment["thigh"].rate_hz == 200.0
    assert by_segment["thigh"].side == "left"
    assert all(s.has_mag for s in rec.sensors)
    labels = [m.label for m in rec.marks]
    assert labels[0] == "calibration_start"
    assert labels.count("calibration_phase") == 4
    assert labels.index("calibration_end") < labels.index("drill_start") < labels.index("drill_end")
    marks = {m.label: m.t_host_s for m in rec.marks}
    assert marks["drill_start"] == pytest.approx(lossy_session.scenario.drill_start_s)


def test_packets_decode_to_the_synthetic_samples_with_exact_loss_accounting(
    written: dict[str, Path], lossy_session: SimulatedSession
) -> None:
    rec = open_recording(written["recording"])
    for sensor in lossy_session.sensors.values():
        notes = rec.notifications(sensor.sensor_id)
        packets = [decode_packet(n.payload) for n in notes]
        per = sensor.link.samples_per_packet
        assert all(p.n_samples == per for p in packets)
        assert packets[0].sample_rate_hz == sensor.rate_hz

        # Sequence numbers: the received and the dropped packets are exactly all packets sent.
        slots = [(p.seq - sensor.link.first_seq) & 0xFFFF for p in packets]
        dropped_slots = [(q - sensor.link.first_seq) & 0xFFFF for q in sensor.link.dropped_seq]
        assert sorted(slots + dropped_slots) == list(range(sensor.link.packets_sent))
        assert slots == sorted(slots)  # in order per sensor
        assert sensor.link.dropped > 0  # 5 % of several hundred packets

        # Samples: each packet holds the quantised readings of its slot, stamped with its sensor time.
        for slot, p in zip(slots, packets, strict=True):
            lo = slot * per
            assert p.t_first_us == int(np.rint(sensor.t_sensor_us[lo])) % 2**32
            np.testing.assert_allclose(p.acc_m_s2, sensor.readings.acc_m_s2[lo:lo + per], atol=1.3e-3)
            np.testing.assert_allclose(p.gyr_rad_s, sensor.readings.gyr_rad_s[lo:lo + per], atol=3e-4)
            assert p.mag_uT is not None and sensor.readings.mag_uT is not None
            np.testing.assert_allclose(p.mag_uT, sensor.readings.mag_uT[lo:lo + per], atol=0.08)


def test_host_times_are_after_the_last_sample_and_follow_the_sensor_clock(
    written: dict[str, Path], lossy_session: SimulatedSession
) -> None:
    rec = open_recording(written["recording"])
    for sensor in lossy_session.sensors.values():
        notes = rec.notifications(sensor.sensor_id)
        packets = [decode_packet(n.payload) for n in notes]
        t_host = np.array([n.t_host_s for n in notes])
        assert np.all(np.diff(t_host) >= 0)
        ref = None
        t_first_us = []
        for p in packets:
            ref = unwrap_time_us(ref, p.t_first_us)
            t_first_us.append(ref)
        t_last_sensor_s = (np.array(t_first_us, dtype=float) + (packets[0].n_samples - 1) * packets[0].sample_period_us) / 1e6
        clock = sensor.clock
        t_last_true = clock.t_on_s + (t_last_sensor_s - clock.start_us / 1e6) / (1 + clock.drift_ppm * 1e-6)
        latency = t_host - t_last_true
        assert latency.min() > 0.0  # one-sided: never received before the sample was taken
        assert np.median(latency) < sensor.link_config.conn_interval_s + 0.01
        assert latency.max() < 0.3
        # The sensor clock runs at 1 + drift of host time: a line fit over the session recovers it.
        slope = np.polyfit(t_last_true, t_last_sensor_s, 1)[0]
        assert (slope - 1) * 1e6 == pytest.approx(clock.drift_ppm, abs=0.5)


def test_timestamps_and_sequence_numbers_wrap() -> None:
    rng = np.random.default_rng(0)
    clock = SensorClock(start_us=2**32 - 3_000_000, t_on_s=0.01, drift_ppm=30.0)
    t_us, t_true = clock.sample_times(100.0, 10.0)
    zeros = np.zeros((len(t_true), 3))
    link = transmit("s", rng, clock, 100.0, t_us, t_true, zeros, zeros, None, LinkConfig())
    packets = [decode_packet(n.payload) for n in link.notifications]
    raw = [p.t_first_us for p in packets]
    assert any(b < a for a, b in itertools.pairwise(raw)), "the u32 timestamp should wrap in this session"
    ref = None
    unwrapped = []
    for p in packets:
        ref = unwrap_time_us(ref, p.t_first_us)
        unwrapped.append(ref)
    steps = np.diff(unwrapped)
    assert np.all(np.abs(steps - 16 * 10_000) <= 1)


def test_truth_files_follow_the_example_layout(written: dict[str, Path], lossy_session: SimulatedSession) -> None:
    with written["truth"].open() as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == TRUTH_COLUMNS
    t = np.array([float(r[0]) for r in rows[1:]])
    np.testing.assert_allclose(np.diff(t), 0.01, atol=1e-5)
    assert all(len(r[1].split(".")[1]) == 5 for r in rows[1:20])
    reps = json.loads(written["reps"].read_text())
    assert [set(r) for r in reps] == [
        {"t_start", "t_end", "peak_internal_rotation", "peak_external_rotation", "compensation"}
    ] * 3
    assert [r["compensation"] for r in reps] == [False, True, False]
    meta = json.loads(written["meta"].read_text())
    for key in ("scenario", "side", "seed", "no_mag", "mag_disturbance", "rates", "mount_spread", "heading_deg",
                "duration_s", "segments", "mounts_wxyz"):
        assert key in meta
    assert meta["rates"] == "60,200"
    assert set(meta["segments"]) == {"static", "functional", "hinge"}
    assert meta["dropped_packets"] == lossy_session.dropped_packets
    for q in meta["mounts_wxyz"].values():
        assert np.linalg.norm(q) == pytest.approx(1.0)


def test_csv_dir_matches_the_import_format(lossy_session: SimulatedSession, tmp_path: Path) -> None:
    written = write_csv_dir(lossy_session, tmp_path / "csv")
    header = written["thigh"].read_text().splitlines()[0]
    assert header == "t,ax,ay,az,gx,gy,gz,mx,my,mz"
    data = np.loadtxt(written["thigh"], delimiter=",", skiprows=1)
    np.testing.assert_allclose(np.median(np.diff(data[:, 0])), 1 / 200.0, rtol=1e-3)
    pelvis = np.loadtxt(written["pelvis"], delimiter=",", skiprows=1)
    np.testing.assert_allclose(np.median(np.diff(pelvis[:, 0])), 1 / 60.0, rtol=1e-3)
    assert {p.name for p in written.values()} == {"pelvis.csv", "thigh.csv", "truth.csv", "reps.json", "meta.json"}


def test_same_seed_same_session_and_loss_does_not_change_the_motion() -> None:
    base = SimConfig(drill="seated_rotation", side="right", seed=5, reps=1, compensation_reps=())
    a, b = simulate(base), simulate(base)
    assert [n.payload for n in a.notifications] == [n.payload for n in b.notifications]
    assert [n.t_host_s for n in a.notifications] == [n.t_host_s for n in b.notifications]
    np.testing.assert_array_equal(a.truth, b.truth)
    c = simulate(SimConfig(drill="seated_rotation", side="right", seed=5, reps=1, compensation_reps=(), loss=0.2))
    np.testing.assert_array_equal(a.truth, c.truth)
    np.testing.assert_array_equal(a.sensors["thigh"].readings.gyr_rad_s, c.sensors["thigh"].readings.gyr_rad_s)
    assert sum(c.dropped_packets.values()) > 0 == sum(a.dropped_packets.values())
    d = simulate(SimConfig(drill="seated_rotation", side="right", seed=6, reps=1, compensation_reps=()))
    assert a.scenario.kinematics.heading_deg != d.scenario.kinematics.heading_deg


def test_magnetic_disturbance_ramps_in_when_seated() -> None:
    cfg = SimConfig(drill="seated_rotation", side="right", seed=3, reps=2, compensation_reps=(),
                    mag_disturbance_uT=30.0, errors=ImuErrorModel.ideal())
    session = simulate(cfg)
    thigh = session.sensors["thigh"].readings
    pelvis = session.sensors["pelvis"].readings
    assert thigh.mag_uT is not None and pelvis.mag_uT is not None
    assert session.magnetic is not None
    earth = np.linalg.norm(session.magnetic.earth_uT)
    disturbance = np.linalg.norm(
        np.einsum("nij,nj->ni", thigh.r_earth_sensor, thigh.mag_uT) - session.magnetic.earth_uT, axis=1
    )
    sc = session.scenario
    calib = thigh.t_true_s < sc.phases["static"][0][1]
    drill = (thigh.t_true_s > sc.drill_start_s) & (thigh.t_true_s < sc.drill_end_s)
    assert disturbance[calib].max() < 5.0
    assert 20.0 < np.median(disturbance[drill]) < 40.0
    assert disturbance[drill].max() - disturbance[drill].min() > 2.0  # changes with the thigh's pose
    np.testing.assert_allclose(np.linalg.norm(pelvis.mag_uT, axis=1), earth, rtol=1e-9)


def test_invalid_options_raise_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="not a protocol rate"):
        simulate(SimConfig(rates_hz=(100.0, 90.0)))
    with pytest.raises(ConfigurationError, match="unknown drill"):
        simulate(SimConfig(drill="handstand"))
    with pytest.raises(ConfigurationError, match="outside 1..2"):
        simulate(SimConfig(reps=2, compensation_reps=(3,)))
    with pytest.raises(ConfigurationError, match="no-mag"):
        simulate(SimConfig(no_mag=True, mag_disturbance_uT=30.0))


def test_cli_writes_recording_and_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.shr"
    rc = cli_main(["simulate", "--drill", "standing_rotation", "--side", "right", "--no-mag", "--reps", "2",
                   "--compensation-reps", "2", "--seed", "1", "--out", str(out), "--csv-dir", str(tmp_path / "c")])
    assert rc == 0
    assert out.is_file() and out.with_suffix(".truth.csv").is_file()
    rec = open_recording(out)
    assert not any(s.has_mag for s in rec.sensors)
    assert (tmp_path / "c" / "thigh.csv").read_text().startswith("t,ax,ay,az,gx,gy,gz\n")
    assert cli_main(["simulate", "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err


def test_forced_timestamp_wrap_happens_where_asked() -> None:
    session = simulate(SimConfig(drill="standing_rotation", seed=2, reps=1, compensation_reps=(),
                                 timestamp_wrap_at_s=20.0))
    for sensor in session.sensors.values():
        wrap = np.flatnonzero(np.diff(sensor.t_sensor_us % 2**32) < 0)
        assert len(wrap) == 1
        assert abs(sensor.readings.t_true_s[wrap[0] + 1] - 20.0) <= 1.01


def test_bursty_loss_keeps_the_rate_and_groups_losses() -> None:
    from sensorhub.sim.ble import lost_packets

    u = np.random.default_rng(0).random(200_000)
    independent = lost_packets(u, 0.05, 1.0)
    bursty = lost_packets(u, 0.05, 4.0)

    def mean_run(lost: np.ndarray) -> float:
        edges = np.diff(np.concatenate(([0], lost.astype(int), [0])))
        return float(np.mean(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)))

    assert independent.mean() == pytest.approx(0.05, abs=0.003)
    assert bursty.mean() == pytest.approx(0.05, abs=0.005)
    assert mean_run(independent) == pytest.approx(1.05, abs=0.05)
    assert mean_run(bursty) == pytest.approx(4.0, rel=0.1)
