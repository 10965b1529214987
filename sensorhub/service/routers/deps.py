"""Dependencies shared by the routers, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from sensorhub.service.hub import Hub
from sensorhub.storage import Store


def get_hub(request: Request) -> Hub:
    hub: Hub | None = getattr(request.app.state, "hub", None)
    if hub is None:
        raise HTTPException(503, "the hub is not running")
    return hub


def get_store(hub: Annotated[Hub, Depends(get_hub)]) -> Store:
    if hub.store is None:
        raise HTTPException(503, "no storage configured")
    return hub.store


HubDep = Annotated[Hub, Depends(get_hub)]
StoreDep = Annotated[Store, Depends(get_store)]
