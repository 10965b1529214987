"""Access control and input limits of the live service (sensorhub.service.security and .limits).

The app runs in-process (idle hub, SQLite store in a temporary directory) as it would when bound to
0.0.0.0 with ``SENSORHUB_API_TOKEN`` set; tests check what a client without, with a wrong and with
the right token gets, on REST, the WebSocket, metrics and the login page, plus CORS, size limits,
validation errors, the refusal to bind without a token, and that the token is never logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError
from starlette.websockets import WebSocketDisconnect

from sensorhub import cli
from sensorhub.errors import ConfigurationError
from sensorhub.service import ServiceSettings, create_app
from sensorhub.service.security import (
    COOKIE_NAME,
    BodySizeLimitMiddleware,
    SecuritySettings,
    is_loopback,
)
from sensorhub.storage import StorageSettings

TOKEN = "k7Qz-operator-secret-9fXw"
WRONG = "k7Qz-operator-secret-9fXv"  # same length, last character differs
BEARER = {"Authorization": f"Bearer {TOKEN}"}
DATA_ROUTES = ["/api/athletes", "/api/sessions", "/api/sensors", "/api/streams", "/api/history/athletes",
               "/api/calibration", "/metrics"]


def make_settings(data_dir: Path, **security: Any) -> ServiceSettings:
    return ServiceSettings(ble=False, host="0.0.0.0", storage=StorageSettings(data_dir=data_dir),
                           security=SecuritySettings(**({"api_token": TOKEN} | security)))


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(tmp_path))) as c:
        yield c


# == token ========================================================================================

@pytest.mark.parametrize("path", DATA_ROUTES)
def test_data_routes_need_the_right_token(client: TestClient, path: str) -> None:
    missing = client.get(path)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert "token" in missing.json()["detail"]
    assert client.get(path, headers={"Authorization": f"Bearer {WRONG}"}).status_code == 401
    assert client.get(path, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}x"}).status_code == 401
    assert client.get(path, headers=BEARER).status_code == 200


def test_writes_need_the_token_and_change_nothing_without_it(client: TestClient) -> None:
    assert client.post("/api/athletes", json={"id": "ana", "name": "Ana"}).status_code == 401
    assert client.get("/api/athletes", headers=BEARER).json() == []
    assert client.post("/api/athletes", json={"id": "ana", "name": "Ana"}, headers=BEARER).status_code == 201
    assert client.delete("/api/athletes/ana").status_code == 401
    assert [a["id"] for a in client.get("/api/athletes", headers=BEARER).json()] == ["ana"]


def test_health_is_open_but_reveals_only_liveness(client: TestClient, tmp_path: Path) -> None:
    open_health = client.get("/api/health")
    assert open_health.status_code == 200
    assert open_health.json().keys() == {"status", "uptime_s", "storage"}
    assert open_health.json()["storage"] == {"state": "ok"}
    assert str(tmp_path) not in open_health.text
    full = client.get("/api/health", headers=BEARER).json()
    assert full["storage"]["backend"] == "sqlite" and str(tmp_path) in full["storage"]["target"]


def test_login_page_open_dashboard_page_sends_to_login(client: TestClient) -> None:
    page = client.get("/login")
    assert page.status_code == 200 and 'name="token"' in page.text and TOKEN not in page.text
    if (Path(__file__).resolve().parents[1] / "dashboards" / "index.html").is_file():
        to_login = client.get("/", follow_redirects=False)
        assert to_login.status_code == 303 and to_login.headers["location"] == "/login"
        assert client.get("/", headers=BEARER).status_code == 200
        client.post("/login", data={"token": TOKEN})
        assert client.get("/").status_code == 200 and "<html" in client.get("/").text.lower()


def test_login_sets_an_httponly_strict_cookie_that_opens_the_data(client: TestClient) -> None:
    wrong = client.post("/login", data={"token": WRONG}, follow_redirects=False)
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers and "Wrong token" in wrong.text
    ok = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    cookie = ok.headers["set-cookie"].lower()
    assert cookie.startswith(f"{COOKIE_NAME}=") and "httponly" in cookie and "samesite=strict" in cookie
    assert client.get("/api/athletes").status_code == 200  # the client keeps the cookie, as a browser does
    client.post("/logout", follow_redirects=False)
    assert client.get("/api/athletes").status_code == 401


def test_websocket_refused_without_token(client: TestClient) -> None:
    for url, headers in (("/ws/live", {}), (f"/ws/live?token={WRONG}", {}), ("/ws/live", {"Authorization": f"Bearer {WRONG}"})):
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(url, headers=headers) as ws:
            ws.receive_json()
        assert refused.value.code == 1008


@pytest.mark.parametrize("how", ["query", "bearer", "cookie"])
def test_websocket_accepts_the_token(client: TestClient, how: str) -> None:
    url, headers = "/ws/live", {}
    if how == "query":
        url += f"?token={TOKEN}"
    elif how == "bearer":
        headers = BEARER
    else:
        client.cookies.set(COOKIE_NAME, TOKEN)
    with client.websocket_connect(url, headers=headers) as ws:
        hello = ws.receive_json()
    assert hello["type"] == "hello" and hello["server"]["mode"] == "idle"


def test_websocket_cookie_from_a_foreign_page_is_refused(client: TestClient) -> None:
    client.cookies.set(COOKIE_NAME, TOKEN)
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(
            "/ws/live", headers={"Origin": "https://evil.example"}) as ws:
        ws.receive_json()
    assert refused.value.code == 1008
    with client.websocket_connect("/ws/live", headers={"Origin": "http://testserver"}) as ws:
        assert ws.receive_json()["type"] == "hello"


def test_loopback_without_token_stays_open(tmp_path: Path) -> None:
    settings = ServiceSettings(ble=False, storage=StorageSettings(data_dir=tmp_path), security=SecuritySettings())
    with TestClient(create_app(settings)) as c:
        assert c.get("/api/athletes").status_code == 200
        assert "storage" in c.get("/api/health").json() and "version" in c.get("/api/health").json()


# == refusing to bind =============================================================================

@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("", False), ("192.168.1.20", False), ("coach-laptop.local", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_create_app_refuses_an_open_bind_without_token(tmp_path: Path) -> None:
    settings = ServiceSettings(ble=False, host="0.0.0.0", storage=StorageSettings(data_dir=tmp_path),
                               security=SecuritySettings())
    with pytest.raises(ConfigurationError, match="SENSORHUB_API_TOKEN"):
        create_app(settings)


def test_serve_without_token_beyond_loopback_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("SENSORHUB_API_TOKEN", raising=False)
    assert cli.main(["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "refusing to listen on '0.0.0.0'" in err and "SENSORHUB_API_TOKEN" in err
    assert "Traceback" not in err


def test_short_or_empty_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENSORHUB_API_TOKEN", "tooshort")
    with pytest.raises(ValidationError) as short:
        SecuritySettings()
    assert "too short" in str(short.value) and "tooshort" not in str(short.value)
    monkeypatch.setenv("SENSORHUB_API_TOKEN", "")
    assert SecuritySettings().api_token is None
    monkeypatch.setenv("SENSORHUB_API_TOKEN", TOKEN)
    monkeypatch.setenv("SENSORHUB_CORS_ORIGINS", "https://a.example, https://b.example/")
    env = ServiceSettings().security
    assert env.api_token is not None and env.api_token.get_secret_value() == TOKEN
    assert env.cors_origins == ["https://a.example", "https://b.example"]


# == the token never leaks ========================================================================

def test_token_never_appears_in_logs_or_answers(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []
    with TestClient(create_app(make_settings(tmp_path))) as c:
        for headers in ({}, {"Authorization": f"Bearer {WRONG}"}, BEARER):
            for path in [*DATA_ROUTES, "/api/health", "/api/athletes/nobody", "/api/sessions/nope"]:
                r = c.get(path, headers=headers)
                bodies.append(r.text + str({k: v for k, v in r.headers.items() if k != "set-cookie"}))
        bodies.append(c.post("/login", data={"token": WRONG}).text)
        bodies.append(c.post("/login", data={"token": TOKEN}, follow_redirects=False).text)
        bodies.append(c.post("/api/athletes", json={"id": "bad id!", "name": TOKEN[:3]}, headers=BEARER).text)
        for url in ("/ws/live", f"/ws/live?token={WRONG}", f"/ws/live?token={TOKEN}"):
            try:
                with c.websocket_connect(url) as ws:
                    bodies.append(str(ws.receive_json()))
            except WebSocketDisconnect as exc:
                bodies.append(str(exc.reason))
    monkeypatch.setenv("SENSORHUB_API_TOKEN", TOKEN)
    settings = ServiceSettings()
    texts = [caplog.text, *bodies, repr(settings), str(settings), settings.model_dump_json()]
    assert "rejected unauthenticated http /api/athletes" in caplog.text  # rejections are logged ...
    for secret in (TOKEN, WRONG):
        assert all(secret not in t for t in texts)  # ... but never with a token


# == CORS =========================================================================================

def test_cors_closed_by_default(client: TestClient) -> None:
    r = client.get("/api/athletes", headers={**BEARER, "Origin": "https://club.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    pre = client.options("/api/athletes", headers={"Origin": "https://club.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in pre.headers


def test_cors_open_for_a_configured_origin_only(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, cors_origins="https://club.example")
    with TestClient(create_app(settings)) as c:
        r = c.get("/api/athletes", headers={**BEARER, "Origin": "https://club.example"})
        assert r.headers["access-control-allow-origin"] == "https://club.example"
        pre = c.options("/api/athletes", headers={"Origin": "https://club.example", "Access-Control-Request-Method": "POST",
                                                  "Access-Control-Request-Headers": "authorization, content-type"})
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "https://club.example"
        assert "POST" in pre.headers["access-control-allow-methods"]
        other = c.get("/api/athletes", headers={**BEARER, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


# == sizes and validation =========================================================================

def test_oversized_body_is_413(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path, max_body_bytes=4096))) as c:
        declared = c.post("/api/athletes", content=b'{"name": "' + b"x" * 5000 + b'"}', headers={**BEARER, "content-type": "application/json"})
        assert declared.status_code == 413 and "4096" in declared.json()["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield b'{"name": "'
            for _ in range(10):
                yield b"x" * 1000
            yield b'"}'

        streamed = c.post("/api/athletes", content=chunks(), headers={**BEARER, "content-type": "application/json"})
        assert streamed.status_code == 413
        assert c.get("/api/athletes", headers=BEARER).json() == []
        assert c.post("/api/athletes", json={"name": "y" * 150}, headers=BEARER).status_code == 201


def test_streamed_body_stops_being_read_at_the_limit() -> None:
    reads: list[int] = []
    sent: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        raise AssertionError("the app must not get the whole body")

    async def receive() -> dict[str, Any]:
        reads.append(1)
        return {"type": "http.request", "body": b"x" * 1000, "more_body": len(reads) < 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    middleware = BodySizeLimitMiddleware(app, max_body_bytes=10_000, max_ws_message_bytes=1024)
    asyncio.run(middleware({"type": "http", "path": "/api/athletes", "headers": []}, receive, send))
    assert len(reads) == 11  # 11 000 bytes read of the 1 000 000 offered
    assert sent[0]["status"] == 413


def test_oversized_websocket_message_closes_the_socket(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path, max_ws_message_bytes=1024))) as c:
        with c.websocket_connect(f"/ws/live?token={TOKEN}") as ws:
            assert ws.receive_json()["type"] == "hello"
            ws.send_text("x" * 2000)
            with pytest.raises(WebSocketDisconnect) as closed:
                while True:
                    ws.receive_json()
        assert closed.value.code == 1009
        assert c.get("/api/health").status_code == 200


def test_invalid_inputs_get_clear_4xx(client: TestClient) -> None:
    def post(path: str, body: dict[str, Any]) -> Any:
        return client.post(path, json=body, headers=BEARER)

    assert post("/api/athletes", {"id": "ana", "name": "Ana"}).status_code == 201
    extra = post("/api/athletes", {"name": "X", "age": 3})
    assert extra.status_code == 422 and extra.json()["detail"][0]["loc"] == ["body", "age"]
    assert post("/api/athletes", {"name": "x" * 201}).status_code == 422
    assert post("/api/athletes", {"name": "X", "notes": "n" * 5001}).status_code == 422
    bad_path = client.get("/api/athletes/bad%20id!", headers=BEARER)
    assert bad_path.status_code == 422 and bad_path.json()["detail"][0]["loc"] == ["path", "athlete_id"]
    assert client.get("/api/athletes/" + "a" * 65, headers=BEARER).status_code == 422
    unknown = client.get("/api/athletes/nobody", headers=BEARER)
    assert unknown.status_code == 404 and "nobody" in unknown.json()["detail"]
    session = client.get("/api/sessions/0123456789abcdef", headers=BEARER)
    assert session.status_code == 404 and "0123456789abcdef" in session.json()["detail"]
    assert post("/api/sessions", {"athlete": "nobody", "side": "left", "drill": "seated_rotation"}).status_code == 404
    assert post("/api/sessions", {"athlete": "ana", "side": "up", "drill": "seated_rotation"}).status_code == 422
    assert client.get("/api/history/trend?athlete=ana&drill=seated_rotation&weeks=0", headers=BEARER).status_code == 422
    assert client.get("/api/sessions?athlete=" + "a" * 5000, headers=BEARER).status_code == 414
    not_json = client.post("/api/athletes", content=b"{name", headers={**BEARER, "content-type": "application/json"})
    assert not_json.status_code == 422


def test_openapi_documents_the_error_answers(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    create = spec["paths"]["/api/athletes"]["post"]["responses"]
    assert {"201", "400", "401", "404", "409", "413", "422", "503"} <= create.keys()
    assert "413" not in spec["paths"]["/api/athletes"]["get"]["responses"]
    assert "401" not in spec["paths"]["/api/health"]["get"]["responses"]
    assert spec["paths"]["/api/athletes"]["get"]["security"] == [{"bearerAuth": []}]
    assert "security" not in spec["paths"]["/api/health"]["get"]
    allowed = client.patch("/api/athletes", headers=BEARER)
    assert allowed.status_code == 405 and set(allowed.headers["allow"].split(", ")) == {"GET", "POST"}


def test_secret_is_a_secretstr() -> None:
    settings = SecuritySettings(api_token=SecretStr(TOKEN))
    assert TOKEN not in repr(settings) and settings.token_required
