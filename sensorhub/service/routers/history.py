"""``/api/history``: stored sessions and weekly trends per athlete and drill (storage queries)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from sensorhub.drills import get_drill
from sensorhub.service import views
from sensorhub.service.routers.deps import StoreDep

router = APIRouter(prefix="/api/history", tags=["history"])


@router.get("/athletes")
async def athletes(store: StoreDep) -> list[str]:
    return await run_in_threadpool(store.athletes)


@router.get("/trend")
async def trend(store: StoreDep, athlete: str, drill: str, weeks: int = Query(12, ge=1, le=520)) -> list[dict[str, Any]]:
    get_drill(drill)  # unknown drill -> 404 with the valid names
    rows = await run_in_threadpool(store.trend, athlete, drill, weeks)
    return [views.trend_json(w) for w in rows]


@router.get("/sessions")
async def sessions(store: StoreDep, athlete: str | None = None, drill: str | None = None,
                   since: float | None = None, until: float | None = None) -> list[dict[str, Any]]:
    rows = await run_in_threadpool(store.sessions, athlete, drill, since, until)
    return [views.stored_session_json(s) for s in sorted(rows, key=lambda s: -s.started)]
