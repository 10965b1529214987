"""Replay source pacing (fake clock), ``sensorhub replay`` and ``sensorhub inspect``.

Recordings are written here with RecordingWriter and protocol-encoded packets with known drops,
duplicates and malformed payloads; the acceptance check runs the project's simulator and compares
inspect's loss with what the simulator says it dropped.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sensorhub.cli import main
from sensorhub.commands.inspect import inspect_recording
from sensorhub.commands.replay import feed, run_replay
from sensorhub.ingest import Ingest
from sensorhub.notification import Notification
from sensorhub.protocol import decode_packet, encode_packet, unwrap_seq
from sensorhub.recording import Athlete, RecordingMeta, RecordingWriter, open_recording
from sensorhub.replay import ReplaySource
from sensorhub.samples import ImuSamples

RATE_CODE_100HZ = 3
N = 8  # samples per packet: one packet per 80 ms


def _payload(k: int, seq0: int, t0_us: int, mag: bool) -> bytes:
    acc = np.tile([0.0, 0.0, 9.81], (N, 1))
    gyr = np.zeros((N, 3))
    return encode_packet(
        seq=(seq0 + k) % 65536,
        t_first_us=(t0_us + k * N * 10_000) % 2**32,
        rate_code=RATE_CODE_100HZ,
        range_code=1,
        acc_m_s2=acc,
        gyr_rad_s=gyr,
        mag_uT=np.tile([20.0, 0.0, -40.0], (N, 1)) if mag else None,
    )


def write_session(
    path: Path,
    *,
    n_packets: int = 100,
    drop: dict[str, set[int]] | None = None,
    duplicate: dict[str, set[int]] | None = None,
    malformed: dict[str, int] | None = None,
    calibration: bool = False,
) -> Path:
    """Two sensors, 8 s of packets every 80 ms; ``drop``/``duplicate`` are packet indices per sensor."""
    drop = drop or {}
    duplicate = duplicate or {}
    malformed = malformed or {}
    meta = RecordingMeta(athlete=Athlete("a-17", "Ada"), drill="seated_rotation", side="left", source="test",
                         extra={"sim": {"dropped_packets": {sid: len(v) for sid, v in drop.items()}}})
    sensors = {"pel-1": (65500, 4_294_000_000, False), "thi-2": (7, 1_000, True)}  # both wrap mid-session
    with RecordingWriter(path, meta, background_flush=False) as w:
        w.add_sensor("pel-1", segment="pelvis", has_mag=False, rate_hz=100.0)
        w.add_sensor("thi-2", segment="thigh", side="left", has_mag=True, rate_hz=100.0)
        w.write_mark(0.5, "calibration_start")
        for k in range(n_packets):
            for i, (sid, (seq0, t0_us, mag)) in enumerate(sensors.items()):
                t_host = 0.1 + k * 0.08 + 0.003 * (i + 1)
                if k in drop.get(sid, set()):
                    continue
                note = Notification(sid, t_host, _payload(k, seq0, t0_us, mag))
                w.write_notification(note)
                if k in duplicate.get(sid, set()):
                    w.write_notification(Notification(sid, t_host + 0.001, note.payload))
            if k == 50:
                for sid, count in malformed.items():
                    for j in range(count):
                        w.write_notification(Notification(sid, 0.1 + k * 0.08 + 0.01 + 0.001 * j, b"\x40\x00\x01"))
        w.write_mark(6.0, "drill_start", drill="seated_rotation")
        if calibration:
            w.write_calibration({"thigh": {"q_segment_sensor": [1.0, 0.0, 0.0, 0.0]}})
    return path


class FakeClock:
    """Monotonic clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, dt: float) -> None:
        self.sleeps.append(dt)
        self.now += dt

    async def async_sleep(self, dt: float) -> None:
        self.sleep(dt)


# -- replay source -----------------------------------------------------------------------------------


@pytest.mark.parametrize("speed", [1.0, 4.0])
def test_replay_paces_by_host_time(tmp_path: Path, speed: float) -> None:
    rec = open_recording(write_session(tmp_path / "s.shr", n_packets=20))
    clock = FakeClock()
    source = ReplaySource(rec, speed, clock=clock, sleep=clock.sleep)
    t0 = rec.notifications()[0].t_host_s
    wall0 = clock.now
    for note in source:
        # Each notification comes out exactly when its session time (scaled) has passed.
        assert clock.now - wall0 == pytest.approx((note.t_host_s - t0) / speed, abs=1e-9)
    span = rec.notifications()[-1].t_host_s - t0
    assert sum(clock.sleeps) == pytest.approx(span / speed, abs=1e-9)
    assert all(dt > 0 for dt in clock.sleeps)


def test_replay_does_not_sleep_when_the_consumer_is_behind(tmp_path: Path) -> None:
    rec = open_recording(write_session(tmp_path / "s.shr", n_packets=20))
    clock = FakeClock()
    source = ReplaySource(rec, 1.0, clock=clock, sleep=clock.sleep)
    for i, _ in enumerate(source):
        if i == 3:
            clock.now += 10.0  # the consumer stalled for 10 s: catch up without sleeping
    assert len(clock.sleeps) <= 4


def test_replay_as_fast_as_possible_never_sleeps(tmp_path: Path) -> None:
    rec = open_recording(write_session(tmp_path / "s.shr", n_packets=20))
    clock = FakeClock()
    notes = list(ReplaySource(rec, None, clock=clock, sleep=clock.sleep))
    assert clock.sleeps == [] and notes == rec.notifications()


def test_async_replay_paces_like_the_sync_one(tmp_path: Path) -> None:
    rec = open_recording(write_session(tmp_path / "s.shr", n_packets=20))
    clock = FakeClock()
    source = ReplaySource(rec, 2.0, clock=clock, async_sleep=clock.async_sleep)

    async def collect() -> list[tuple[float, Notification]]:
        return [(clock.now, n) async for n in source]

    got = asyncio.run(collect())
    assert [n for _, n in got] == rec.notifications()
    t0 = got[0][1].t_host_s
    assert all(w - 1000.0 == pytest.approx((n.t_host_s - t0) / 2.0, abs=1e-9) for w, n in got)


def test_loop_starts_over_with_later_times_and_ingest_sees_a_reboot(tmp_path: Path) -> None:
    rec = open_recording(write_session(tmp_path / "s.shr", n_packets=30))
    one_pass = rec.notifications()
    source = ReplaySource(rec, None, loop=True, loop_gap_s=1.0)
    it = iter(source)
    two_passes = [next(it) for _ in range(2 * len(one_pass))]
    span = one_pass[-1].t_host_s - one_pass[0].t_host_s
    assert two_passes[len(one_pass)].t_host_s == pytest.approx(one_pass[0].t_host_s + span + 1.0)
    assert [n.payload for n in two_passes[len(one_pass):]] == [n.payload for n in one_pass]
    ingest = Ingest()
    for n in two_passes:
        ingest.push(n)
    ingest.flush()
    for st in ingest.stats().values():
        assert st.resets == 1 and st.packets_lost == 0 and st.samples == 2 * 30 * N


def test_replay_rejects_a_bad_speed(tmp_path: Path) -> None:
    rec = open_recording(write_session(tmp_path / "s.shr", n_packets=2))
    from sensorhub.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        ReplaySource(rec, 0.0)


# -- run_replay and the replay command ------------------------------------------------------------------


def test_run_replay_hands_every_block_to_the_hook(tmp_path: Path) -> None:
    path = write_session(tmp_path / "s.shr", drop={"thi-2": {10, 11}})
    blocks: dict[str, list[ImuSamples]] = {}
    statuses: list[float] = []
    result = run_replay(path, None, lambda sid, b: blocks.setdefault(sid, []).append(b),
                        on_status=lambda t, stats: statuses.append(t))
    assert not result.interrupted and result.notifications == 198
    assert sum(len(b) for b in blocks["pel-1"]) == 100 * N == result.stats["pel-1"].samples
    assert sum(len(b) for b in blocks["thi-2"]) == 98 * N
    assert sum(int(np.count_nonzero(b.gap_before)) for b in blocks["thi-2"] if b.gap_before is not None) == 1
    assert result.labels == {"pel-1": "pelvis", "thi-2": "thigh left"}
    # One status per session second (7.9 s of notifications) plus the final one.
    assert statuses[:7] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0] and len(statuses) == 8


def test_ctrl_c_ends_the_feed_cleanly() -> None:
    def interrupted_source():  # type: ignore[no-untyped-def]
        for k in range(10):
            yield Notification("s", 0.1 + 0.08 * k, _payload(k, 0, 0, False))
        raise KeyboardInterrupt

    ingest = Ingest()
    got: list[ImuSamples] = []
    _, count, interrupted = feed(interrupted_source(), ingest, lambda sid, b: got.append(b))
    assert interrupted and count == 10
    assert sum(len(b) for b in got) == 10 * N == ingest.stats()["s"].samples


def test_replay_command_prints_a_status_line_per_second(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_session(tmp_path / "s.shr", drop={"pel-1": {20}})
    assert main(["replay", str(path), "--fast"]) == 0
    lines = capsys.readouterr().out.splitlines()
    status = [ln for ln in lines if ln.startswith("t=")]
    assert len(status) == 8
    assert "pelvis:" in status[-1] and "thigh left:" in status[-1]
    assert "lost 1 (1.0%)" in status[-1]
    assert lines[-1].startswith("done: 199 notifications")


@pytest.mark.parametrize("command", ["replay", "inspect"])
def test_missing_or_broken_file_is_one_clear_line(tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, str(tmp_path / "nope.shr")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nope.shr" in err
    broken = tmp_path / "broken.shr"
    broken.write_bytes(b"this is not a recording at all")
    assert main([command, str(broken)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "broken.shr" in err


# -- inspect ---------------------------------------------------------------------------------------------


def test_inspect_json_reports_what_was_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_session(
        tmp_path / "s.shr",
        drop={"pel-1": {5, 6, 7, 40}, "thi-2": {77}},
        duplicate={"thi-2": {3, 60}},
        malformed={"pel-1": 2},
        calibration=True,
    )
    assert main(["inspect", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["athlete"] == {"id": "a-17", "name": "Ada"}
    assert (report["drill"], report["side"], report["source"]) == ("seated_rotation", "left", "test")
    assert report["calibration_stored"] is True and report["truncated"] is False
    assert [m["label"] for m in report["marks"]] == ["calibration_start", "drill_start"]
    # First notification at 0.103 s (pelvis, packet 0), last at 0.1 + 99 * 0.08 + 0.006 s (thigh, packet 99).
    assert report["duration_s"] == pytest.approx((0.1 + 99 * 0.08 + 0.006) - 0.103, abs=1e-3)
    pel, thi = report["sensors"]
    assert (pel["sensor_id"], pel["segment"], pel["side"], pel["axes"], pel["nominal_rate_hz"]) == (
        "pel-1", "pelvis", None, 6, 100.0)
    assert (thi["segment"], thi["side"], thi["axes"]) == ("thigh", "left", 9)
    assert pel["packets_received"] == 96 and pel["packets_lost"] == 4 and pel["malformed"] == 2
    assert pel["loss_percent"] == pytest.approx(4.0)
    assert pel["samples"] == 96 * N and pel["last_error"]
    assert thi["packets_received"] == 99 and thi["packets_lost"] == 1 and thi["duplicates"] == 2
    assert thi["loss_percent"] == pytest.approx(1.0)
    assert pel["sim_dropped_packets"] == 4 and thi["sim_dropped_packets"] == 1
    assert pel["measured_rate_hz"] == pytest.approx(100.0, abs=0.05)
    assert pel["resets"] == 0 and thi["resets"] == 0 and thi["inconsistent"] == 0


def test_inspect_text_names_every_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_session(tmp_path / "s.shr", drop={"pel-1": {5}})
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    for text in ("Ada (a-17)", "seated_rotation", "pel-1: pelvis, 6-axis, nominal 100 Hz",
                 "thi-2: thigh left, 9-axis", "1 lost (1.00 %)", "calibration not stored", "marks (2)"):
        assert text in out


def test_inspect_reports_a_cut_off_file(tmp_path: Path) -> None:
    path = write_session(tmp_path / "s.shr")
    data = path.read_bytes()
    cut = tmp_path / "cut.shr"
    cut.write_bytes(data[: len(data) - 1500])
    report = inspect_recording(cut)
    assert report["truncated"] is True and report["closed"] is False
    assert 0 < report["notifications"] < 200
    assert all(s["packets_lost"] == 0 for s in report["sensors"])


def _measurable_drops(rec_path: Path, sensor_id: str, dropped_seq: list[int]) -> int:
    """Drops that leave a sequence gap: those between the first and the last received packet."""
    notes = open_recording(rec_path).notifications(sensor_id)
    first = decode_packet(notes[0].payload).seq
    last = unwrap_seq(first, decode_packet(notes[-1].payload).seq)
    return sum(1 for s in dropped_seq if first < unwrap_seq(first, s) < last)


@pytest.mark.parametrize("seed, loss, no_mag", [(11, 0.04, False), (12, 0.08, True)])
def test_inspect_reports_the_loss_the_simulator_put_in(tmp_path: Path, seed: int, loss: float, no_mag: bool) -> None:
    from sensorhub.sim import SimConfig, simulate, write_recording

    session = simulate(SimConfig(seed=seed, loss=loss, no_mag=no_mag, rates_hz=(100.0, 120.0)))
    path = tmp_path / "sim.shr"
    write_recording(session, path)
    report = inspect_recording(path)
    truth = json.loads(path.with_suffix(".meta.json").read_text())
    assert report["source"] == "sim"
    for s in report["sensors"]:
        sid = s["sensor_id"]
        dropped = truth["dropped_seq"][sid]
        assert s["sim_dropped_packets"] == len(dropped) > 0
        assert s["packets_lost"] == _measurable_drops(path, sid, dropped)
        assert s["packets_lost"] >= len(dropped) - 2  # only a drop at either end can go unseen
        assert s["duplicates"] == 0 and s["malformed"] == 0 and s["resets"] == 0 and s["inconsistent"] == 0
        assert s["axes"] == (6 if no_mag else 9)


def test_ctrl_c_stops_the_replay_command_cleanly(tmp_path: Path) -> None:
    path = write_session(tmp_path / "s.shr")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sensorhub", "replay", str(path), "--speed", "5", "--loop"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the first status line: the replay is running
        assert first.startswith("t=")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert out.splitlines()[-1].startswith("interrupted: ")
    assert "Traceback" not in err


def test_inspect_a_sensor_with_only_garbage_and_one_without_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "g.shr"
    with RecordingWriter(path, RecordingMeta(source="test"), background_flush=False) as w:
        w.add_sensor("bad", segment="pelvis", rate_hz=100.0)
        w.add_sensor("quiet", segment="thigh", side="right", rate_hz=100.0)
        for k in range(5):
            w.write_notification(Notification("bad", 0.1 * k, b"\x00\x01\x02"))
    report = inspect_recording(path)
    bad, quiet = report["sensors"]
    assert bad["notifications"] == 5 and bad["malformed"] == 5 and bad["packets_received"] == 0
    assert bad["loss_percent"] is None and bad["measured_rate_hz"] is None and "protocol version" in bad["last_error"]
    assert quiet["notifications"] == 0 and quiet["packets_received"] == 0 and quiet["samples"] == 0
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count("no data") == 2 and "no data (5 malformed payloads; last: data packet: protocol version 0" in out
