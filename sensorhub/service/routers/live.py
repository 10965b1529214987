"""``/ws/live`` (WebSocket: hello, frames, events, status) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from sensorhub.service.broadcast import Outgoing, dumps
from sensorhub.service.hub import Hub

router = APIRouter(tags=["live"])


@router.websocket("/ws/live")
async def live(websocket: WebSocket) -> None:
    hub: Hub = websocket.app.state.hub
    await websocket.accept()
    client = hub.broadcaster.add(websocket, Outgoing(dumps(hub.hello_json())))
    hub.metrics.clients.set(len(hub.broadcaster))
    try:
        await hub.broadcaster.serve(client)
    finally:
        hub.metrics.clients.set(len(hub.broadcaster))


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    hub.metrics.clients.set(len(hub.broadcaster))
    return Response(hub.metrics.render(), media_type=CONTENT_TYPE_LATEST)
