"""Drills: the catalog, rep detection and scoring, compensation, session summary and report figure.

Input is a time series of hip and pelvis angles in degrees (:class:`~sensorhub.drills.table.AngleTable`);
output is scored reps, compensation flags, a session summary, ``reps.json`` and a report PNG
(:func:`sensorhub.drills.report.render_report`, not imported here so that the live service does not
load matplotlib). The package never imports the BLE, fusion or storage stages.
"""

from sensorhub.drills.catalog import (
    CATALOG,
    Direction,
    DrillDefinition,
    UnknownDrillError,
    get_drill,
)
from sensorhub.drills.reps import (
    DetectorConfig,
    Rep,
    RepCompleted,
    RepDetection,
    RepDetector,
    RepEvent,
    RepIncomplete,
    detect_reps,
)
from sensorhub.drills.summary import (
    SessionSummary,
    SymmetryReport,
    compare_sides,
    summarize,
    write_reps_json,
)
from sensorhub.drills.table import AngleTable

__all__ = [
    "CATALOG",
    "AngleTable",
    "DetectorConfig",
    "Direction",
    "DrillDefinition",
    "Rep",
    "RepCompleted",
    "RepDetection",
    "RepDetector",
    "RepEvent",
    "RepIncomplete",
    "SessionSummary",
    "SymmetryReport",
    "UnknownDrillError",
    "compare_sides",
    "detect_reps",
    "get_drill",
    "summarize",
    "write_reps_json",
]
