"""What the REST API accepts and how it refuses: URL bounds, validated path parameters, error documentation.

* :class:`UrlLimitMiddleware` answers 414 to a path or query string beyond a few KiB before routing, so
  no handler ever sees an unbounded identifier (path parameters are dictionary keys and bound SQL
  parameters, never interpolated).
* :data:`AthleteIdPath`: the athlete id path parameter with the register's own pattern (422 otherwise).
* :func:`document_error_responses` completes the OpenAPI description with the error answers the app's
  exception handlers (main.py) give from any route: ``{"detail": "<message>"}`` with 400, 404, 409,
  503, 413 where a body is read, 401 and the bearer security scheme where a token is required (so
  ``/docs`` can send it), and 422 either as FastAPI's list of validation errors or as one message. Clients and schemathesis (tests/test_schemathesis.py) then
  see every status the service can actually answer.
* :func:`allow_header_handler`: a 405 lists every method of the path in ``Allow`` (Starlette lists
  only the methods of the first route that matched the path).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from fastapi import FastAPI, Path, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from sensorhub.service.athletes import ATHLETE_ID_RE
from sensorhub.service.security import ASGIApp, Receive, Scope, Send, _send_json, needs_token

#: Longest URL path and query string accepted (bytes, percent-encoded as sent).
MAX_PATH_BYTES: Final = 1024
MAX_QUERY_BYTES: Final = 4096

AthleteIdPath = Annotated[str, Path(pattern=ATHLETE_ID_RE.pattern, max_length=64,
                                    description="Athlete id: 1-64 letters, digits, '_', '.', '-'")]

_ERROR_SCHEMA: Final = {
    "title": "Error",
    "type": "object",
    "properties": {"detail": {"type": "string", "title": "Detail"}},
    "required": ["detail"],
}
_ALWAYS: Final = {
    "400": "Invalid request (message says what and where)",
    "404": "Unknown athlete, session, sensor, stream or drill",
    "409": "Conflicts with the current state (duplicate id, session already running or ended)",
    "503": "Storage or hub unavailable",
}


class UrlLimitMiddleware:
    """414 for a path over :data:`MAX_PATH_BYTES` or a query string over :data:`MAX_QUERY_BYTES`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path_bytes = len(scope.get("raw_path") or scope["path"].encode("utf-8"))
            if path_bytes > MAX_PATH_BYTES or len(scope.get("query_string", b"")) > MAX_QUERY_BYTES:
                await _send_json(send, 414, f'{{"detail":"URL too long (path up to {MAX_PATH_BYTES} bytes, '
                                            f'query up to {MAX_QUERY_BYTES})"}}'.encode())
                return
        await self.app(scope, receive, send)


async def allow_header_handler(request: Request, exc: Exception) -> Response:
    """HTTP errors as FastAPI renders them, with ``Allow`` on a 405 naming every method of the path."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        # Routes are nested in included routers; the OpenAPI paths are the flat view of them.
        methods: set[str] = set()
        for template, item in request.app.openapi().get("paths", {}).items():
            if re.fullmatch(re.sub(r"\\{[^/}]+\\}", "[^/]+", re.escape(template)), request.url.path):
                methods.update(m.upper() for m in item)
        if methods:
            exc.headers = {**(exc.headers or {}), "Allow": ", ".join(sorted(methods))}
    return await http_exception_handler(request, exc)


def document_error_responses(app: FastAPI, *, token_required: bool) -> None:
    """Have ``app.openapi()`` document the error answers every operation can give (see module doc)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Error"] = _ERROR_SCHEMA
        if token_required:
            schema["components"]["securitySchemes"] = {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "SENSORHUB_API_TOKEN"}}
        error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        for path, item in schema.get("paths", {}).items():
            for operation in item.values():
                responses = operation.setdefault("responses", {})
                for code, text in _ALWAYS.items():
                    responses.setdefault(code, {"description": text, **error})
                if "requestBody" in operation:
                    responses.setdefault("413", {"description": "Request body too large", **error})
                if token_required and needs_token(path):
                    responses.setdefault("401", {"description": "API token missing or wrong", **error})
                    operation["security"] = [{"bearerAuth": []}]
                responses.setdefault("414", {"description": "URL too long", **error})
                validation = responses.get("422")
                one_message = {"$ref": "#/components/schemas/Error"}
                if validation is None:
                    responses["422"] = {"description": "Invalid input", **error}
                else:
                    content = validation.setdefault("content", {}).setdefault("application/json", {})
                    listed = content.get("schema")
                    content["schema"] = {"anyOf": [listed, one_message]} if listed else one_message
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_limits(app: FastAPI, *, token_required: bool) -> None:
    """URL bounds, the 405 ``Allow`` fix and the documented error responses (see module doc)."""
    app.add_middleware(UrlLimitMiddleware)
    app.add_exception_handler(HTTPException, allow_header_handler)
    document_error_responses(app, token_required=token_required)
