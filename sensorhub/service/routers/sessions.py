"""``/api/sessions``: list, create, stop; one session with its summary; its reps; CSV export."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from sensorhub.service import views
from sensorhub.service.routers.deps import HubDep
from sensorhub.service.schemas import SessionCreate
from sensorhub.storage import session_angles_csv, session_reps_csv

router = APIRouter(prefix="/api/sessions", tags=["sessions"])


@router.get("")
async def list_sessions(hub: HubDep, athlete: str | None = None, drill: str | None = None,
                        active: bool | None = None) -> list[dict[str, Any]]:
    live = [s for s in hub.sessions.values()
            if (athlete is None or s.athlete == athlete) and (drill is None or s.drill.name == drill)]
    out = [s.to_json() for s in sorted(live, key=lambda s: (not s.active, -s.started))
           if active is None or s.active == active]
    if active is not True and hub.store is not None:
        stored = await run_in_threadpool(hub.store.sessions, athlete, drill)
        seen = {s["id"] for s in out}
        out += [views.stored_session_json(s) for s in sorted(stored, key=lambda s: -s.started) if s.id not in seen]
    return out


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_session(body: SessionCreate, hub: HubDep) -> dict[str, Any]:
    return hub.start_session(body.athlete, body.side, body.drill).to_json()


@router.get("/{session_id}")
async def get_session(session_id: str, hub: HubDep) -> dict[str, Any]:
    live = hub.sessions.get(session_id)
    if live is not None:
        return live.to_json()
    if hub.store is not None:
        stored = await run_in_threadpool(hub.store.session, session_id)
        if stored is not None:
            return views.stored_session_json(stored)
    raise HTTPException(404, f"no session {session_id!r}")


@router.post("/{session_id}/stop")
async def stop_session(session_id: str, hub: HubDep) -> dict[str, Any]:
    return hub.stop_session(session_id).to_json()


@router.get("/{session_id}/reps")
async def session_reps(session_id: str, hub: HubDep) -> list[dict[str, Any]]:
    live = hub.sessions.get(session_id)
    if live is not None:
        return [views.rep_json(r, hub.unix_origin_s) for r in live.reps]
    if hub.store is not None and await run_in_threadpool(hub.store.session, session_id) is not None:
        return [views.stored_rep_json(r) for r in await run_in_threadpool(hub.store.reps, session_id)]
    raise HTTPException(404, f"no session {session_id!r}")


@router.get("/{session_id}/export.csv", response_class=PlainTextResponse)
async def export_csv(session_id: str, hub: HubDep,
                     what: Literal["reps", "angles"] = Query("reps", description="reps table or angle frames")) -> PlainTextResponse:
    store = hub.store
    if store is None:
        raise HTTPException(503, "no storage configured")
    if session_id not in hub.sessions and await run_in_threadpool(store.session, session_id) is None:
        raise HTTPException(404, f"no session {session_id!r}")
    # Everything accepted so far must be in the database before it is read back.
    await run_in_threadpool(store.flush, 5.0)
    fn = session_reps_csv if what == "reps" else session_angles_csv
    text = await run_in_threadpool(fn, store, session_id)
    return PlainTextResponse(text, media_type="text/csv",
                             headers={"Content-Disposition": f'attachment; filename="session-{session_id}-{what}.csv"'})
