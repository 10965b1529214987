"""Normal ranges of hip rotation and measurement-error figures from the literature, with sources.

The session summary compares an athlete's peaks with these, and left/right symmetry is judged against
the minimal detectable change (MDC): a side-to-side difference smaller than the MDC of the
measurement cannot be told apart from measurement error. Degrees throughout.

This module is a table: no computation beyond looking values up.
"""

from __future__ import annotations

from dataclasses import dataclass

AAOS_INTERNAL_ROTATION_DEG = 35.0
AAOS_EXTERNAL_ROTATION_DEG = 45.0
KRAUSE_SEATED_IR_MDC_DEG = 5.4

_AAOS = (
    "American Academy of Orthopaedic Surgeons, Joint Motion: Method of Measuring and Recording "
    "(AAOS, 1965); normal hip rotation as commonly quoted from it"
)
_KRAUSE = (
    "Krause DA, Hollman JH, Krych AJ, Kalisvaart MM, Levy BA. Reliability of hip internal rotation range "
    "of motion measurement using a digital inclinometer. Knee Surg Sports Traumatol Arthrosc. "
    "2015;23(9):2562-2567"
)


@dataclass(frozen=True)
class RangeNorm:
    """A normal value of one rotation direction, with where it comes from."""

    direction: str  # "internal" or "external"
    normal_deg: float
    source: str
    note: str = ""


@dataclass(frozen=True)
class MeasurementError:
    """The minimal detectable change of one rotation measurement as reported by its source."""

    direction: str
    mdc_deg: float
    source: str
    note: str = ""


NORMS: dict[str, RangeNorm] = {
    "internal": RangeNorm("internal", AAOS_INTERNAL_ROTATION_DEG, _AAOS),
    "external": RangeNorm("external", AAOS_EXTERNAL_ROTATION_DEG, _AAOS),
}

# Krause et al. report mean active seated IR of 30.7-32.8° in 25 asymptomatic adults, consistent
# with the AAOS figure; they give no external-rotation MDC. Until we have one, external rotation uses
# the same 5.4° (stated wherever it is used) rather than an invented number.
MDC: dict[str, MeasurementError] = {
    "internal": MeasurementError(
        "internal", KRAUSE_SEATED_IR_MDC_DEG, _KRAUSE, "active seated single-leg IR, digital inclinometer"
    ),
    "external": MeasurementError(
        "external",
        KRAUSE_SEATED_IR_MDC_DEG,
        _KRAUSE,
        "no ER figure in the source; the seated IR value is applied provisionally",
    ),
}


def normal_range_deg(direction: str) -> float:
    """The normal value of ``direction`` ("internal" / "external") in degrees."""
    return NORMS[direction].normal_deg


def mdc_deg(direction: str) -> float:
    """The minimal detectable change of ``direction`` in degrees."""
    return MDC[direction].mdc_deg
