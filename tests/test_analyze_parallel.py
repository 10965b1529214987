"""``sensorhub analyze`` on two cores: forked workers give the same results as one process, and fail cleanly.

The batch ingest can assemble sensors in forked processes (``assemble_batch(workers=2)``) and
``analyze_session(workers=2)`` draws report.png in a forked worker. These tests hold both to the
single-process results (to the bit, and byte for byte in the files) and check the worker's failure
modes: exceptions come back with their type and message, a dead child is an error naming the
worker, and no child outlives its parent's call.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPLAY_DATA
from test_ingest_batch import _faults, session  # noqa: F401 - fixtures

from sensorhub import workers as workers_module
from sensorhub.analysis import analyze_session, load_csv_input, load_recording_input
from sensorhub.cli import main
from sensorhub.commands.analyze import default_jobs
from sensorhub.csv_import import CsvColumnCountError, CsvValueError
from sensorhub.errors import CalibrationError, SensorhubError
from sensorhub.ingest import Ingest, assemble_batch
from sensorhub.notification import Notification
from sensorhub.protocol import decode_packet
from sensorhub.recording import RecordCrcError, open_recording
from sensorhub.sim import SimulatedSession
from sensorhub.workers import ForkedWorker, WorkerError, can_fork

RECORDINGS = sorted(REPLAY_DATA.glob("*.shr"))

pytestmark = [
    pytest.mark.skipif(not can_fork(), reason="needs fork and a single-threaded test process"),
    pytest.mark.usefixtures("quiet_sensorhub_logs"),
]


def _children() -> set[int]:
    """Process ids of this process's live children (from /proc)."""
    me = str(os.getpid())
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def _assert_same(notes: list[Notification]) -> None:
    one, two = Ingest(), Ingest()
    ref = assemble_batch(notes, one)
    got = assemble_batch(notes, two, workers=2)
    assert list(got) == list(ref)
    for sid, a in ref.items():
        b = got[sid]
        for name in ("t_s", "acc_m_s2", "gyr_rad_s", "gap_before"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), (sid, name)
        assert (a.mag_uT is None) == (b.mag_uT is None)
        if a.mag_uT is not None:
            assert np.array_equal(a.mag_uT, b.mag_uT, equal_nan=True)
    assert list(two.stats()) == list(one.stats())
    for sid, st in one.stats().items():
        assert two.stats()[sid].to_json() == st.to_json(), sid


# ---------------------------------------------------------------------------------------- ingest


@pytest.mark.skipif(not RECORDINGS, reason="replay_data/ holds no recordings")
@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: Path(p).stem)
def test_parallel_ingest_equals_one_process_on_replay_data(path: Path) -> None:
    _assert_same(list(open_recording(path).iter_notifications()))
    assert not _children()


def test_parallel_ingest_equals_one_process_on_fault_injected_streams(session: SimulatedSession) -> None:  # noqa: F811
    for name, notes in _faults(session).items():
        try:
            _assert_same(notes)
        except AssertionError as exc:
            raise AssertionError(f"fault {name!r}: {exc}") from exc


def test_parallel_ingest_keeps_a_custom_decoder(session: SimulatedSession) -> None:  # noqa: F811
    def strict(payload: bytes):  # type: ignore[no-untyped-def] - a closure: pickle cannot send it back
        return decode_packet(payload)

    ingest = Ingest(decode=strict)
    samples = assemble_batch(session.notifications[:800], ingest, workers=2)
    assert len(samples) == 2
    assert all(stream._decode is strict for stream in ingest.streams.values())


def test_meanwhile_runs_once_while_workers_assemble_every_sensor(session: SimulatedSession) -> None:  # noqa: F811
    notes = session.notifications
    ref = assemble_batch(notes, Ingest())
    for workers in (1, 2, 3):
        calls: list[int] = []

        def meanwhile(calls: list[int] = calls) -> None:
            calls.append(len(_children()))

        got = assemble_batch(notes, Ingest(), workers=workers, meanwhile=meanwhile)
        assert len(calls) == 1, workers
        if workers > 1:
            assert calls[0] == 2  # both sensors in workers while this process does its own work
        for sid, a in ref.items():
            assert np.array_equal(a.t_s, got[sid].t_s) and np.array_equal(a.gyr_rad_s, got[sid].gyr_rad_s)
    assert not _children()


# --------------------------------------------------------------------------------------- workers


class _Unpicklable(SensorhubError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.handle = lambda: None  # pickle refuses lambdas


def _boom(kind: str) -> None:
    if kind == "calibration":
        raise CalibrationError("no still span")
    if kind == "unpicklable":
        raise _Unpicklable("x.shr: byte 40: bad CRC")
    if kind == "exit":
        os._exit(7)
    raise ValueError("plain")


def test_worker_returns_results_in_order_and_reraises_exceptions_with_their_type() -> None:
    with ForkedWorker("test", (pow, (2, 10), {})) as worker:
        worker.submit(pow, 3, 2)
        worker.submit(_boom, "calibration")
        worker.submit(_boom, "plain")
        worker.submit(_boom, "unpicklable")
        assert worker.result() == 1024
        assert worker.result() == 9
        with pytest.raises(CalibrationError) as info:
            worker.result()
        assert str(info.value) == "no still span"
        assert any("raised in a worker process" in note for note in info.value.__notes__)
        with pytest.raises(ValueError) as plain:
            worker.result()
        assert str(plain.value) == "plain"
        # Cannot be rebuilt from its args: a SensorhubError with the same message (same exit code in the CLI).
        with pytest.raises(SensorhubError) as crc:
            worker.result()
        assert str(crc.value) == "x.shr: byte 40: bad CRC"
    assert not _children()


def test_dead_worker_is_an_error_naming_it() -> None:
    with ForkedWorker("test worker", (_boom, ("exit",), {})) as worker, pytest.raises(WorkerError, match=r"test worker: .*exit code 7"):
        worker.result()
    assert not _children()


def test_idle_worker_exits_when_its_parent_closes_or_dies() -> None:
    worker = ForkedWorker("idle")
    pid = worker._process.pid
    assert pid in _children()
    worker.close()
    assert pid not in _children()
    # A parent killed with SIGKILL closes nothing: the child must see the end of the pipe by itself.
    script = (
        "import os, signal, sys\n"
        "from sensorhub.workers import ForkedWorker\n"
        "w = ForkedWorker('idle')\n"
        "print(w._process.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    orphan = int(proc.stdout.split()[0])
    deadline = time.monotonic() + 10.0
    while _alive(orphan):
        assert time.monotonic() < deadline, f"worker {orphan} outlived its killed parent"
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent (now init) has yet to reap it


def test_workers_alive_together_each_see_their_own_end() -> None:
    # The second child inherits the parent's end of the first one's pipe; unless it closes that copy,
    # the first never sees end-of-file and close() has to terminate it after a timeout.
    first, second = ForkedWorker("first"), ForkedWorker("second")
    first.close()
    assert first._process.exitcode == 0  # exited by itself, not terminated (-15)
    second.close()
    assert second._process.exitcode == 0
    assert not _children()


def test_no_fork_with_threads_running(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers_module.threading, "active_count", lambda: 2)
    assert not can_fork()
    notes = list(open_recording(RECORDINGS[0]).iter_notifications())
    assert len(assemble_batch(notes, Ingest(), workers=2)) == 2  # in this process, without a child
    assert not _children()


# ------------------------------------------------------------------------------------------ analyze


@pytest.mark.skipif(not RECORDINGS, reason="replay_data/ holds no recordings")
def test_analyze_with_two_jobs_writes_the_same_files(tmp_path: Path) -> None:
    rec = REPLAY_DATA / "seated_right_9axis.shr"
    assert main(["analyze", str(rec), "--out", str(tmp_path / "one"), "--jobs", "1"]) == 0
    assert main(["analyze", str(rec), "--out", str(tmp_path / "two"), "--jobs", "2"]) == 0
    assert not _children()
    for name in ("angles.csv", "report.png"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    for name in ("reps.json", "calibration.json"):  # equal but for the moment they were written
        one, two = ([line for line in (tmp_path / d / name).read_text().splitlines() if '"created"' not in line]
                    for d in ("one", "two"))
        assert one == two, name


@pytest.mark.skipif(not RECORDINGS, reason="replay_data/ holds no recordings")
def test_report_failure_in_the_worker_names_the_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from sensorhub.drills import report

    def broken(*args: object, **kwargs: object) -> Path:
        raise CalibrationError("cannot draw")  # any SensorhubError raised while drawing

    monkeypatch.setattr(report, "render_report", broken)  # the forked worker inherits the patch
    rec = REPLAY_DATA / "seated_right_9axis.shr"
    assert main(["analyze", str(rec), "--out", str(tmp_path), "--jobs", "2"]) == 2
    err = capsys.readouterr().err
    assert f"sensorhub analyze: error: {rec}: right leg: cannot draw" in err, err
    assert (tmp_path / "angles.csv").exists() and (tmp_path / "reps.json").exists()  # written meanwhile
    assert not _children()


@pytest.mark.skipif(not RECORDINGS, reason="replay_data/ holds no recordings")
def test_bad_input_with_two_jobs_is_one_line_and_leaves_no_worker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The CLI forks the report worker before reading the input; a bad input must not leave it behind.
    bad = tmp_path / "bad.shr"
    data = (REPLAY_DATA / "seated_right_9axis.shr").read_bytes()
    bad.write_bytes(data[:5000] + bytes([data[5000] ^ 0xFF]) + data[5001:])
    assert main(["analyze", str(bad), "--out", str(tmp_path / "out"), "--jobs", "2"]) == 2
    err = capsys.readouterr().err
    assert f"sensorhub analyze: error: {bad}: byte " in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    assert not _children()


def test_abandoned_worker_is_terminated_only_without_submitted_work() -> None:
    idle = ForkedWorker("warm-up only", (time.sleep, (30.0,), {}))
    idle.close(abandon=True)
    assert idle._process.exitcode == -signal.SIGTERM  # not waited for: its work is useless now
    busy = ForkedWorker("submitted", (time.sleep, (0.0,), {}))
    busy.submit(time.sleep, 0.2)
    busy.close(abandon=True)
    assert busy._process.exitcode == 0  # submitted work (a report being written) is waited for
    assert not _children()


@pytest.mark.skipif(not RECORDINGS, reason="replay_data/ holds no recordings")
def test_motion_failure_stops_the_report_worker(tmp_path: Path) -> None:
    cut = tmp_path / "cut.shr"
    cut.write_bytes((REPLAY_DATA / "seated_right_9axis.shr").read_bytes()[:60_000])
    session_input = load_recording_input(cut, workers=2)
    with pytest.raises(CalibrationError, match=f"^{cut}: right leg: "):
        analyze_session(session_input, tmp_path / "out", workers=2)
    assert not _children()


def test_csv_pair_read_in_two_processes_equals_one(examples_dir: Path) -> None:
    ex = examples_dir / "seated_right_9axis"
    one = load_csv_input(ex / "pelvis.csv", ex / "thigh.csv", side="right", drill="seated_rotation")
    two = load_csv_input(ex / "pelvis.csv", ex / "thigh.csv", side="right", drill="seated_rotation", workers=2)
    for a, b in ((one.legs[0].pelvis, two.legs[0].pelvis), (one.legs[0].thigh, two.legs[0].thigh)):
        for name in ("t_s", "acc_m_s2", "gyr_rad_s", "mag_uT"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert not _children()


def test_csv_errors_cross_the_pipe_with_their_type_and_pelvis_first(examples_dir: Path, tmp_path: Path) -> None:
    good = examples_dir / "seated_right_9axis" / "thigh.csv"
    bad_pelvis, bad_thigh = tmp_path / "p.csv", tmp_path / "t.csv"
    bad_pelvis.write_text("t,ax,ay,az,gx,gy,gz\n0,1,2,3,4,5\n")
    bad_thigh.write_text("t,ax,ay,az,gx,gy,gz\n0,1,2,3,4,5,x\n")
    with pytest.raises(CsvColumnCountError) as info:  # raised in the child
        load_csv_input(bad_pelvis, good, side="right", drill="seated_rotation", workers=2)
    assert (info.value.path, info.value.line, str(info.value)) == (
        bad_pelvis, 2, f"{bad_pelvis}, line 2: 6 fields; expected 7 (t,ax,ay,az,gx,gy,gz)")
    with pytest.raises(CsvColumnCountError, match=f"^{bad_pelvis}, line 2"):  # both bad: the pelvis file's error
        load_csv_input(bad_pelvis, bad_thigh, side="right", drill="seated_rotation", workers=2)
    with pytest.raises(CsvValueError, match=f"^{bad_thigh}, line 2, column 'gz'"):
        load_csv_input(good, bad_thigh, side="right", drill="seated_rotation", workers=2)
    assert not _children()


def test_reader_errors_pickle_with_their_fields() -> None:
    for exc in (RecordCrcError("x.shr", 40, "bad CRC"), CsvValueError("a.csv", 3, "gx", "'x' is not a number")):
        exc.add_note("a note")
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc) and str(back) == str(exc) and back.__notes__ == ["a note"]
        assert vars(back) == vars(exc)


def test_default_jobs_is_the_usable_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5})
    assert default_jobs() == 3
