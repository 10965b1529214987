"""Drills: the catalog, rep detection and scoring, compensation, session summary and report figure.

Input is a time series of hip and pelvis angles in degrees (:class:`~sensorhub.drills.table.AngleTable`);
output is scored reps, compensation flags, a session summary, ``reps.json`` and a report PNG.
The package never imports the BLE, fusion or storage stages.
"""

from sensorhub.drills.catalog import CATALOG, DrillDefinition, Direction, UnknownDrillError, get_drill
from sensorhub.drills.table import AngleTable

__all__ = ["CATALOG", "AngleTable", "Direction", "DrillDefinition", "UnknownDrillError", "get_drill"]
