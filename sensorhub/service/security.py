"""Access control of the live service: API token, CORS, request and WebSocket message size limits.

Athlete data is personal health data, so the rule is simple: the service listens on loopback only,
unless the operator sets an API token (``SENSORHUB_API_TOKEN``). With a token every data route
(``/api/*`` except ``/api/health``, ``/ws/*``, ``/metrics``) requires it, whatever the bind address;
without one, :func:`check_bind` refuses any address other than loopback.

How a client presents the token (docs/privacy.md, "Access"):

* scripts, Prometheus, curl: ``Authorization: Bearer <token>``;
* the browser dashboard: the coach opens ``/login`` once and types the token; the page sets an
  HttpOnly, SameSite=Strict cookie, which the browser then sends with every request of the
  dashboard, including the WebSocket handshake;
* WebSocket clients that cannot set headers: ``/ws/live?token=<token>``.

Tokens are compared with :func:`hmac.compare_digest` and are never logged nor echoed in an error.
The static dashboard files, ``/login`` and the OpenAPI description stay open: they hold no data.
``/api/health`` stays open for probes, but without the token it shows only ``status``, ``uptime_s``
and the storage state (no storage target, error text or client count).

This module holds policy only (plain ASGI middleware and small helpers); it reads no athlete data.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Annotated, Any, Final
from urllib.parse import parse_qs

from fastapi import APIRouter, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from starlette.exceptions import HTTPException

from sensorhub.errors import ConfigurationError

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Cookie set by ``POST /login`` and read on every protected request.
COOKIE_NAME: Final = "sensorhub_token"
#: Paths that stay open with a token configured (exact match), besides the static dashboard.
OPEN_PATHS: Final = frozenset({"/api/health", "/login", "/logout", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
#: Dashboard entry pages: without a token the browser is sent to ``/login`` first.
DASHBOARD_PAGES: Final = frozenset({"/", "/index.html"})
#: Path prefixes that carry athlete data or service internals: token required.
PROTECTED_PREFIXES: Final = ("/api/", "/ws/", "/metrics")
#: WebSocket close code "message too big" (RFC 6455 7.4.1).
WS_CLOSE_TOO_BIG: Final = 1009
#: WebSocket close code "policy violation" (RFC 6455 7.4.1): missing or wrong token, foreign origin.
WS_CLOSE_POLICY: Final = 1008


class SecuritySettings(BaseSettings):
    """Token, CORS origins and size limits, read from ``SENSORHUB_*`` (nested in ServiceSettings)."""

    # hide_input_in_errors: a rejected token must not be echoed by a ValidationError.
    model_config = SettingsConfigDict(env_prefix="SENSORHUB_", extra="ignore", hide_input_in_errors=True)

    api_token: SecretStr | None = None
    """Shared secret required on data routes; needed to bind beyond loopback. Never logged."""
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Browser origins allowed to call the API cross-origin (comma-separated in the environment)."""
    max_body_bytes: int = Field(default=1 << 20, ge=1024, le=1 << 30)
    """Largest request body accepted; larger bodies get 413 before they are read whole."""
    max_ws_message_bytes: int = Field(default=64 << 10, ge=128, le=16 << 20)
    """Largest message a WebSocket client may send (the live protocol is server to client)."""

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
        return value

    @field_validator("api_token")
    @classmethod
    def _token_strength(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value()
        if secret == "":
            return None
        if len(secret) < 16:
            # The message must not contain the token itself.
            raise ValueError(f"SENSORHUB_API_TOKEN is too short ({len(secret)} characters, need at least 16)")
        return value

    @property
    def token_required(self) -> bool:
        return self.api_token is not None


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; False for wildcards (0.0.0.0, ::, "") and the rest."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def check_bind(host: str, security: SecuritySettings) -> None:
    """Refuse to listen beyond loopback without an API token (:class:`ConfigurationError`)."""
    if not is_loopback(host) and not security.token_required:
        raise ConfigurationError(
            f"refusing to listen on {host!r} without an API token: athlete data would be open to the "
            "network. Set SENSORHUB_API_TOKEN (at least 16 characters, e.g. from "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`) or bind to 127.0.0.1"
        )


def token_matches(presented: str | None, expected: SecretStr) -> bool:
    """Constant-time comparison of a presented token with the configured one."""
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), expected.get_secret_value().encode("utf-8"))


def presented_tokens(scope: Scope) -> list[str]:
    """Every token a request carries: bearer header, ``sensorhub_token`` cookie, ``?token=`` (WebSocket)."""
    found: list[str] = []
    cookie_header = ""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                found.append(credentials.strip())
        elif name == b"cookie":
            cookie_header += value.decode("latin-1") + ";"
    if cookie_header:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(cookie_header)
        except Exception:  # noqa: BLE001 - a malformed cookie header is simply no token
            jar = SimpleCookie()
        if COOKIE_NAME in jar:
            found.append(jar[COOKIE_NAME].value)
    if scope["type"] == "websocket":
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        found.extend(query.get("token", [])[:1])
    return found


def needs_token(path: str) -> bool:
    """Whether ``path`` carries data (token required) or is open (health, login, docs, static files)."""
    if path in OPEN_PATHS:
        return False
    return path == "/metrics" or path.startswith(PROTECTED_PREFIXES)


class TokenAuthMiddleware:
    """Require the API token on data routes (HTTP 401, WebSocket closed with 1008 before accept)."""

    def __init__(self, app: ASGIApp, token: SecretStr, allowed_origins: list[str] | None = None) -> None:
        self.app = app
        self.token = token
        self.allowed_origins = set(allowed_origins or ())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == HEALTH_PATH:
            if self._has_token(scope):
                await self.app(scope, receive, send)
            else:
                await self.app(scope, receive, _reduced_health(send))
            return
        if scope["type"] == "http" and scope["path"] in DASHBOARD_PAGES and scope["method"] == "GET" \
                and not self._has_token(scope):
            # The page itself holds no data, but without the cookie every call it makes would fail.
            await send({"type": "http.response.start", "status": 303,
                        "headers": [(b"location", b"/login"), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        if scope["type"] not in ("http", "websocket") or not needs_token(scope["path"]):
            await self.app(scope, receive, send)
            return
        authorised = self._has_token(scope)
        if scope["type"] == "websocket" and authorised and not self._same_origin_or_allowed(scope):
            # A cookie rides along with a cross-site handshake in old browsers: check the Origin too.
            authorised = False
        if authorised:
            await self.app(scope, receive, send)
            return
        client = scope.get("client") or ("?", 0)
        log.warning("rejected unauthenticated %s %s from %s", scope["type"], scope["path"], client[0])
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": WS_CLOSE_POLICY, "reason": "API token required"})
            return
        await _send_json(send, 401, b'{"detail":"API token required: Authorization: Bearer <token>, or log in at /login"}',
                         extra_headers=[(b"www-authenticate", b'Bearer realm="sensorhub"')])

    def _has_token(self, scope: Scope) -> bool:
        return any(token_matches(t, self.token) for t in presented_tokens(scope))

    def _same_origin_or_allowed(self, scope: Scope) -> bool:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}
        origin = headers.get("origin")
        if origin is None:
            return True  # not a browser
        host = headers.get("host", "")
        bare = origin.split("://", 1)[-1].rstrip("/")
        return bare == host or origin.rstrip("/") in self.allowed_origins


#: Health check: open, but without a token it answers only liveness and the storage state.
HEALTH_PATH: Final = "/api/health"
#: Keys of the health answer shown without a token (no storage target, error text, client count).
PUBLIC_HEALTH_KEYS: Final = ("status", "uptime_s")


def _reduced_health(send: Send) -> Send:
    """Wrap ``send`` so a 200 health answer keeps only :data:`PUBLIC_HEALTH_KEYS` and the storage state."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def reducing_send(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
            return
        if message["type"] != "http.response.body" or start is None:
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(chunks)
        if start["status"] == 200:
            try:
                full = json.loads(body)
                storage = full.get("storage") or {}
                reduced = {k: full[k] for k in PUBLIC_HEALTH_KEYS if k in full}
                reduced["storage"] = {"state": storage.get("state")}
                body = json.dumps(reduced).encode()
            except (ValueError, AttributeError):
                body = b'{"status":"unknown"}'
        headers = [(k, v) for k, v in start["headers"] if k != b"content-length"]
        await send({**start, "headers": headers + [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return reducing_send


class BodySizeLimitMiddleware:
    """413 for HTTP bodies over ``max_body_bytes``; close WebSockets sending larger messages (1009).

    A declared ``Content-Length`` over the limit is refused before anything is read; a chunked body
    is counted as it arrives and refused as soon as it passes the limit, so no body is ever held
    whole in memory beyond the limit.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_ws_message_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_ws_message_bytes = max_ws_message_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self.app(scope, self._ws_receive(receive, send), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_json(send, 400, b'{"detail":"invalid Content-Length header"}')
                    return
                if declared > self.max_body_bytes:
                    await self._too_large(send)
                    return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLarge(self.max_body_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not response_started:
                await self._too_large(send)

    async def _too_large(self, send: Send) -> None:
        detail = f'{{"detail":"request body larger than {self.max_body_bytes} bytes"}}'.encode()
        await _send_json(send, 413, detail, extra_headers=[(b"connection", b"close")])

    def _ws_receive(self, receive: Receive, send: Send) -> Receive:
        limit = self.max_ws_message_bytes

        async def limited() -> Message:
            message = await receive()
            if message["type"] == "websocket.receive":
                size = len(message.get("bytes") or b"") + len((message.get("text") or "").encode("utf-8"))
                if size > limit:
                    log.warning("closing a WebSocket that sent a %d-byte message (limit %d)", size, limit)
                    await send({"type": "websocket.close", "code": WS_CLOSE_TOO_BIG, "reason": "message too big"})
                    return {"type": "websocket.disconnect", "code": WS_CLOSE_TOO_BIG}
            return message

        return limited


class _BodyTooLarge(HTTPException):
    """Raised inside the app's receive() once a streamed body passes the limit (FastAPI answers 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


async def _send_json(send: Send, status: int, body: bytes, extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra_headers or [])})
    await send({"type": "http.response.body", "body": body})


# == login page for the browser dashboard ========================================================

#: How long the login cookie lasts (a training day).
COOKIE_MAX_AGE_S: Final = 12 * 3600
#: Why the dashboard sent the browser to ``/login?reason=...`` (dashboards/static/auth.js), as shown there.
LOGIN_REASONS: Final = {
    "token_rejected": "Token rejected: the hub did not accept this browser's access token (missing, wrong or "
                      "expired, e.g. after the operator changed it). Enter the token again.",
}

_LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>sensorhub login</title><link rel="icon" href="data:,">
<style>body{{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem}}
input,button{{font-size:1.1rem;padding:.5rem;width:100%;box-sizing:border-box;margin:.4rem 0}}
.err{{color:#b00020}}</style></head>
<body><h1>sensorhub</h1><p>Enter the access token the operator gave you.</p>{message}
<form method="post" action="/login"><input type="password" name="token" autocomplete="current-password"
 autofocus required aria-label="access token"><button type="submit">Open the dashboard</button></form>
</body></html>"""


def login_router(security: SecuritySettings) -> APIRouter:
    """``GET/POST /login`` (form setting the HttpOnly cookie) and ``POST /logout``; not in the OpenAPI."""
    router = APIRouter(include_in_schema=False)

    @router.get("/login")
    async def login_form(reason: str | None = None) -> HTMLResponse:
        # ``reason`` only selects one of the fixed texts; the query string itself is never echoed.
        text = LOGIN_REASONS.get(reason or "")
        message = f'<p class="err" role="alert" id="login-reason">{text}</p>' if text else ""
        return HTMLResponse(_LOGIN_PAGE.format(message=message), headers={"cache-control": "no-store"})

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        presented = (form.get("token") or [""])[0]
        if security.api_token is None:
            return RedirectResponse("/", status_code=303)  # nothing to log in to (loopback, no token)
        if not token_matches(presented, security.api_token):
            log.warning("failed login from %s", request.client.host if request.client else "?")
            page = _LOGIN_PAGE.format(message='<p class="err">Wrong token.</p>')
            return HTMLResponse(page, status_code=401, headers={"cache-control": "no-store"})
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE_NAME, presented, max_age=COOKIE_MAX_AGE_S, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/")
        return response

    @router.post("/logout")
    async def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE_NAME, path="/")
        return response

    return router


def install_security(app: FastAPI, security: SecuritySettings, host: str) -> None:
    """Apply the policy to ``app``: refuse an open bind, token check, size limits, CORS, login page.

    Middleware order, outermost first: CORS (answers preflight requests, which carry no token),
    size limits, token check, URL limits (:mod:`.limits`), the app.
    """
    from sensorhub.service.limits import install_limits  # limits builds on this module

    check_bind(host, security)
    app.include_router(login_router(security))
    install_limits(app, token_required=security.api_token is not None)
    if security.api_token is not None:
        app.add_middleware(TokenAuthMiddleware, token=security.api_token, allowed_origins=security.cors_origins)
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=security.max_body_bytes,
                       max_ws_message_bytes=security.max_ws_message_bytes)
    if security.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=security.cors_origins, allow_credentials=False,
                           allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"], max_age=600)
    log.info("API %s; CORS %s; bodies up to %d bytes",
             "token required" if security.api_token is not None else "open (loopback only)",
             ", ".join(security.cors_origins) or "closed", security.max_body_bytes)
