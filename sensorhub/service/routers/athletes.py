"""``/api/athletes``: create, list, read, update, delete athletes (the service's register)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response, status

from sensorhub.service.routers.deps import HubDep
from sensorhub.service.schemas import AthleteCreate, AthleteOut, AthleteUpdate

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/athletes", tags=["athletes"])


@router.get("", response_model=list[AthleteOut])
async def list_athletes(hub: HubDep) -> list[AthleteOut]:
    return [AthleteOut(id=a.id, name=a.name, notes=a.notes) for a in hub.athletes.list()]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AthleteOut)
async def create_athlete(body: AthleteCreate, hub: HubDep) -> AthleteOut:
    a = hub.athletes.create(body.name, body.id, body.notes)
    return AthleteOut(id=a.id, name=a.name, notes=a.notes)


@router.get("/{athlete_id}", response_model=AthleteOut)
async def get_athlete(athlete_id: str, hub: HubDep) -> AthleteOut:
    a = hub.athletes.get(athlete_id)
    return AthleteOut(id=a.id, name=a.name, notes=a.notes)


@router.put("/{athlete_id}", response_model=AthleteOut)
async def update_athlete(athlete_id: str, body: AthleteUpdate, hub: HubDep) -> AthleteOut:
    a = hub.athletes.update(athlete_id, name=body.name, notes=body.notes)
    return AthleteOut(id=a.id, name=a.name, notes=a.notes)


@router.delete("/{athlete_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_athlete(athlete_id: str, hub: HubDep, purge: bool = False) -> Response:
    hub.athletes.delete(athlete_id)
    if purge and hub.store is not None:
        hub.store.delete_athlete(athlete_id)
        log.info("athlete %s and stored data deleted", athlete_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
