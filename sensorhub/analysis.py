"""Whole-session analysis: a recording or a pair of IMU CSV files in, angles, reps and a report out.

This is the batch edge of the pipeline that ``sensorhub analyze`` runs. It reads the input (the only
I/O besides writing the outputs), assembles each sensor's samples with the ingest's batch path (the
rules and results of the online path live data takes, computed in bulk), runs
:func:`sensorhub.motion.pipeline.analyze_imu` per measured leg, then the drills stage (rep detection,
scoring, summary) and writes ``angles.csv``, ``reps.json`` and ``report.png``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sensorhub.csv_import import read_imu_csv
from sensorhub.drills import AngleTable, RepDetection, SessionSummary, compare_sides, detect_reps, get_drill, summarize
from sensorhub.drills.summary import reps_document
from sensorhub.errors import ConfigurationError, SensorhubError
from sensorhub.ingest import Ingest, assemble_batch
from sensorhub.recording import read_recording_notifications
from sensorhub.samples import ImuSamples

if TYPE_CHECKING:
    from sensorhub.motion.calibration import Calibration
    from sensorhub.motion.pipeline import AngleSeries
    from sensorhub.workers import ForkedWorker

log = logging.getLogger(__name__)

SIDES = ("left", "right")


@dataclass
class LegInput:
    """The two sensors' samples for one measured leg."""

    side: str
    pelvis: ImuSamples
    thigh: ImuSamples


@dataclass
class SessionInput:
    drill: str
    legs: list[LegInput]
    source: str
    athlete: str | None = None
    ingest_stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class LegResult:
    side: str
    angles: AngleSeries
    table: AngleTable
    detection: RepDetection
    summary: SessionSummary


def _check_side(side: str | None) -> str:
    if side not in SIDES:
        raise ConfigurationError(f"--side must be 'left' or 'right', got {side!r}")
    return side


def load_recording_input(path: str | Path, *, drill: str | None = None, side: str | None = None,
                         workers: int = 1) -> SessionInput:
    """Assemble a recording's sensors by segment: one pelvis sensor and one thigh sensor per side.

    ``workers`` > 1 lets the ingest assemble sensors in forked processes (:func:`assemble_batch`).
    """
    rec, notifications = read_recording_notifications(path)
    ingest = Ingest()
    samples = assemble_batch(notifications, ingest, workers=workers,  # == assemble(), in bulk
                             meanwhile=import_motion_stage)
    pelvis = [s for s in rec.sensors if s.segment == "pelvis"]
    thighs = [s for s in rec.sensors if s.segment == "thigh"]
    if len(pelvis) != 1:
        raise ConfigurationError(f"{path}: expected exactly one pelvis sensor, the recording declares {len(pelvis)}")
    if not thighs:
        raise ConfigurationError(f"{path}: the recording declares no thigh sensor")
    legs = []
    for thigh in thighs:
        leg_side = thigh.side or rec.meta.side
        if side is not None and leg_side != side:
            continue
        for s in (pelvis[0], thigh):
            if len(samples.get(s.sensor_id, ())) == 0:
                raise ConfigurationError(f"{path}: sensor {s.sensor_id} ({s.segment}) has no decodable samples")
        legs.append(LegInput(_check_side(leg_side), samples[pelvis[0].sensor_id], samples[thigh.sensor_id]))
    if not legs:
        raise ConfigurationError(f"{path}: no thigh sensor on side {side!r}")
    drill_name = drill or rec.meta.drill
    if not drill_name:
        raise ConfigurationError(f"{path}: the recording names no drill; pass --drill")
    return SessionInput(
        drill=drill_name,
        legs=legs,
        source=str(path),
        athlete=rec.meta.athlete.name if rec.meta.athlete else None,
        ingest_stats={sid: st.to_json() for sid, st in ingest.stats().items()},
    )


def load_csv_input(pelvis_csv: str | Path, thigh_csv: str | Path, *, side: str, drill: str,
                   workers: int = 1) -> SessionInput:
    """One leg from a pelvis and a thigh IMU CSV file; ``workers`` > 1 reads them in forked processes."""
    side = _check_side(side)
    if workers > 1 and _can_fork():
        from sensorhub.workers import ForkedWorker

        # Both files in workers while this process imports the motion stage it needs next.
        with ForkedWorker(f"reading {pelvis_csv}", (read_imu_csv, (pelvis_csv,), {})) as pelvis_reader, \
                ForkedWorker(f"reading {thigh_csv}", (read_imu_csv, (thigh_csv,), {})) as thigh_reader:
            import_motion_stage()
            pelvis = pelvis_reader.result()  # two bad files: the pelvis file's error, as when read in order
            thigh = thigh_reader.result()
    else:
        pelvis, thigh = read_imu_csv(pelvis_csv), read_imu_csv(thigh_csv)
    return SessionInput(drill=drill, legs=[LegInput(side, pelvis, thigh)], source=f"{pelvis_csv} + {thigh_csv}")


def import_motion_stage() -> None:
    """Import the motion stage (SciPy, the orientation filters: about half a second of CPU).

    The modules are imported on first use rather than with this module, so that with ``workers`` > 1
    the main process imports them while forked workers read and assemble the input.
    """
    import sensorhub.motion.calibration
    import sensorhub.motion.pipeline  # noqa: F401


def _can_fork() -> bool:
    from sensorhub.workers import can_fork

    return can_fork()


def to_table(angles: AngleSeries) -> AngleTable:
    return AngleTable(
        t=angles.t_s,
        hip_rotation=angles.hip_rotation_deg,
        hip_flexion=angles.hip_flexion_deg,
        hip_adduction=angles.hip_adduction_deg,
        pelvis_tilt=angles.pelvis_tilt_deg,
        pelvis_obliquity=angles.pelvis_obliquity_deg,
        pelvis_rotation=angles.pelvis_rotation_deg,
    )


def analyze_leg(leg: LegInput, drill: str, *, method: str = "vqf", offline: bool | None = None,
                calibration: Calibration | None = None) -> LegResult:
    from sensorhub.motion.pipeline import analyze_imu

    angles = analyze_imu(leg.pelvis, leg.thigh, leg.side, method=method, offline=offline, calibration=calibration)
    table = to_table(angles)
    detection = detect_reps(table, drill)
    summary = summarize(detection.reps, drill, leg.side, detection.incomplete)
    return LegResult(leg.side, angles, table, detection, summary)


def write_outputs(result: LegResult, drill: str, out_dir: Path, *, source: str, report: bool = True,
                  reporter: ForkedWorker | None = None) -> dict[str, Path]:
    """Write angles.csv, reps.json (with the analysis diagnostics), calibration.json and report.png.

    With a ``reporter`` (see :func:`analyze_session`) the report is handed to that worker process
    first and drawn there while this process writes the rest; the caller collects its result.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"angles": out_dir / "angles.csv", "reps": out_dir / "reps.json"}
    report_job = (result.table, result.detection.reps, drill, result.side, out_dir / "report.png")
    report_options = {"summary": result.summary, "incomplete": result.detection.incomplete}
    if report and reporter is not None:
        reporter.submit(_render_report, *report_job, **report_options)
        paths["report"] = report_job[-1]
    result.angles.write_csv(paths["angles"])
    doc = reps_document(result.detection.reps, result.summary, result.detection.incomplete)
    doc["analysis"] = {"source": source, "side": result.side, "drill": drill, **result.angles.diagnostics.to_dict()}
    tmp = paths["reps"].with_name("reps.json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=_json_default) + "\n", encoding="utf-8")
    tmp.replace(paths["reps"])
    cal = result.angles.diagnostics.calibration
    if cal is not None:
        paths["calibration"] = out_dir / "calibration.json"
        cal.save(paths["calibration"])
    if report and reporter is None:
        paths["report"] = _render_report(*report_job, **report_options)
    return paths


def _render_report(*args: Any, **kwargs: Any) -> Path:
    """:func:`sensorhub.drills.report.render_report`, importing matplotlib only when a report is wanted."""
    from sensorhub.drills.report import render_report

    return render_report(*args, **kwargs)


REPORT_WORKER_NICE = 10
"""Niceness the report worker adds to its own: its matplotlib import must not take CPU time from the
stages in front of it (read, ingest, motion) when the machine has no idle core; it only gets ahead
of anything once this process waits for the report."""


def _load_report_module() -> None:
    """A report worker's first call: lower its priority and import matplotlib while the parent computes."""
    os.nice(REPORT_WORKER_NICE)
    import sensorhub.drills.report  # noqa: F401


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def analyze_session(session: SessionInput, out_dir: str | Path, *, method: str = "vqf", offline: bool | None = None,
                    calibration: Calibration | None = None, report: bool = True, workers: int = 1,
                    reporter: ForkedWorker | None = None) -> list[LegResult]:
    """Analyse every leg; one leg writes into ``out_dir``, two legs into ``out_dir/left`` and ``out_dir/right``
    plus ``out_dir/symmetry.json``.

    With ``workers`` > 1 and a process that may fork (:func:`sensorhub.workers.can_fork`), report.png is
    drawn in a forked worker process: it imports matplotlib while this process runs the motion stage,
    and draws each leg's report while this process writes that leg's other files and goes on to the
    next leg. ``reporter`` is such a worker started earlier by the caller (:func:`start_report_worker`;
    the caller closes it). The outputs are the same files; every report is finished when this
    function returns.
    """
    with naming_input(session.source):
        get_drill(session.drill)  # fail early with the list of valid drills
    out = Path(out_dir)
    results: list[LegResult] = []
    own_reporter = reporter is None and report and workers > 1
    if own_reporter:
        reporter = start_report_worker()
    elif not report:
        reporter = None
    try:
        for leg in session.legs:
            with naming_input(session.source, f"{leg.side} leg"):
                result = analyze_leg(leg, session.drill, method=method, offline=offline, calibration=calibration)
                leg_dir = out if len(session.legs) == 1 else out / leg.side
                write_outputs(result, session.drill, leg_dir, source=session.source, report=report, reporter=reporter)
            results.append(result)
        by_side = {r.side: r for r in results}
        if len(by_side) == 2:
            sym = compare_sides(by_side["left"].summary, by_side["right"].summary)
            (out / "symmetry.json").write_text(json.dumps(sym, indent=1, default=_dataclass_default) + "\n", encoding="utf-8")
        if reporter is not None:
            with naming_input(session.source, "report"):
                reporter.result()  # the import
            for result in results:
                with naming_input(session.source, f"{result.side} leg"):
                    reporter.result()
    finally:
        if own_reporter and reporter is not None:
            reporter.close()
    return results


def start_report_worker() -> ForkedWorker | None:
    """A forked worker process for report.png (:func:`analyze_session`), or None where forking is unsafe.

    Its first call imports matplotlib. Started before the input is read, the child shares only the
    few pages this process had then, so the large heap built afterwards is never copied on write.
    """
    from sensorhub.workers import ForkedWorker

    return ForkedWorker("report.png", (_load_report_module, (), {})) if _can_fork() else None


@contextmanager
def naming_input(source: str, part: str | None = None) -> Iterator[None]:
    """Make any error raised inside the block name the analysed input ``source`` (and ``part`` of it).

    The stages after reading (motion, drills, outputs) know arrays, not files: their messages say what
    went wrong and when ("no leg swings ... after t = 2.49 s"), not in which input. A
    :class:`SensorhubError` gets ``"<source>: <part>: "`` put in front of its message unless the
    message already names one of the input files (the readers' errors name file and byte or line);
    any other exception keeps its message and gets a note naming the input, shown with its traceback.
    """
    try:
        yield
    except SensorhubError as exc:
        where = f"{source}: {part}" if part else source
        message = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else None
        if message is None:
            exc.add_note(f"while analysing {where}")
        elif not any(name.strip() and name.strip() in message for name in source.split(" + ")):
            exc.args = (f"{where}: {message}",)
        raise
    except Exception as exc:
        exc.add_note(f"while analysing {source}" + (f" ({part})" if part else ""))
        raise


def _dataclass_default(value: Any) -> Any:
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return _json_default(value)
