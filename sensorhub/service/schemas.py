"""Request bodies of the REST API (pydantic). Responses are the JSON views of :mod:`.views`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Side = Literal["left", "right"]
Segment = Literal["pelvis", "thigh"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AthleteCreate(_Body):
    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$",
                           description="Stable id (generated when absent)")
    name: str = Field(min_length=1, max_length=200)
    notes: str = Field(default="", max_length=5000)


class AthleteUpdate(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    notes: str | None = Field(default=None, max_length=5000)


class AthleteOut(BaseModel):
    id: str
    name: str
    notes: str = ""


class SessionCreate(_Body):
    athlete: str = Field(min_length=1, max_length=64)
    side: Side
    drill: str = Field(min_length=1, max_length=64, description="A drill name of GET /api/drills")


class SensorAssignmentIn(_Body):
    athlete: str = Field(min_length=1, max_length=64)
    segment: Segment
    side: Side | None = Field(default=None, description="Required for a thigh sensor")


class CalibrationStart(_Body):
    key: str = Field(pattern=r"^[^/]+/(left|right)$", max_length=80, description="Stream key '<athlete>/<side>'")
