"""``/api/drills``: the drill catalog with range targets, tempo and compensation limits."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from sensorhub.drills import CATALOG, get_drill
from sensorhub.service import views

router = APIRouter(prefix="/api/drills", tags=["drills"])


@router.get("")
def list_drills() -> list[dict[str, Any]]:
    return [views.drill_json(d) for d in CATALOG.values()]


@router.get("/{name}")
def one_drill(name: str) -> dict[str, Any]:
    return views.drill_json(get_drill(name))  # UnknownDrillError -> 404 (main.py)
