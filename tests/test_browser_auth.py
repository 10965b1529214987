"""The dashboard when the hub rejects the browser's access token (docs/dashboard.md, docs/privacy.md).

The real service app (``create_app``) with ``SENSORHUB_API_TOKEN`` set runs under uvicorn on a free
loopback port, serving the real ``dashboards/``; a headless Debian Chromium logs in through
``/login``. Then the token goes bad the two ways a coach meets it: the cookie is replaced by a wrong
one and the live WebSocket has to reconnect (service restart, network blip), or the cookie is gone
and the page makes a REST call (History tab). Either way the page must go to ``/login`` and the
login page must say the token was rejected; logging in again must bring the live dashboard back.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import pytest
import uvicorn
from browser_support import chromium_page, require_browser, screenshot

from sensorhub.service import ServiceSettings, create_app
from sensorhub.service.security import COOKIE_NAME, LOGIN_REASONS, SecuritySettings
from sensorhub.storage import StorageSettings

TOKEN = "browser-test-token-0123456789"
WRONG_TOKEN = "not-the-token-0123456789"
#: Console messages a rejected token legitimately causes (the browser logs refused requests).
EXPECTED_CONSOLE = ("401 (Unauthorized)", "WebSocket connection to", "status of 401")


class Idle:
    """A notification source that delivers nothing: the page gets hello/status messages only."""

    name = "idle"

    async def run(self, hub: object) -> None:
        return None


class TokenService:
    """``create_app`` with an API token, under uvicorn in a background thread on a free loopback port."""

    def __init__(self, data_dir: Path) -> None:
        settings = ServiceSettings(ble=False, storage=StorageSettings(data_dir=data_dir),
                                   security=SecuritySettings(api_token=TOKEN))
        self.app = create_app(settings, source=Idle())
        self.url = ""
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, name="token-service",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the service did not start within 15 s")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenService]:
    with TokenService(tmp_path_factory.mktemp("token-service")) as svc:
        yield svc


def log_in(page: Any, service: TokenService, token: str = TOKEN) -> None:
    """Open the dashboard, get sent to /login, type the token, and wait for the live connection."""
    page.goto(f"{service.url}/")
    page.wait_for_url(f"{service.url}/login")
    assert page.locator("#login-reason").count() == 0  # a first visit is not a rejection
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{service.url}/")
    page.wait_for_function("document.querySelector('#connection').dataset.state === 'open'", timeout=15000)


def assert_on_login_with_reason(page: Any, service: TokenService) -> None:
    page.wait_for_url(f"{service.url}/login?reason=token_rejected", timeout=15000)
    reason = page.locator("#login-reason")
    assert reason.is_visible()
    assert reason.inner_text() == LOGIN_REASONS["token_rejected"]
    assert reason.inner_text().startswith("Token rejected")


def unexpected_errors(page: Any) -> list[str]:
    return [e for e in page.errors if not any(marker in e for marker in EXPECTED_CONSOLE)]


def test_login_page_explains_only_known_reasons(service: TokenService) -> None:
    """``?reason=`` picks a fixed text; anything else (markup included) is never echoed."""
    def login_page(query: str) -> str:
        with urllib.request.urlopen(f"{service.url}/login{query}", timeout=10) as response:
            return str(response.read().decode())

    assert LOGIN_REASONS["token_rejected"] in login_page("?reason=token_rejected")
    plain = login_page("")
    assert 'id="login-reason"' not in plain
    crafted = login_page("?reason=%3Cscript%3Ealert(1)%3C/script%3E")
    assert "<script>" not in crafted and 'id="login-reason"' not in crafted


def test_wrong_token_on_websocket_reconnect_goes_to_login(service: TokenService) -> None:
    sync_api = require_browser()
    with chromium_page(sync_api) as page:
        log_in(page, service)
        assert page.context.cookies()[0]["name"] == COOKIE_NAME
        # The operator changed the token: the browser still holds the old one, and the live socket
        # reconnects (as after a service restart or a network blip).
        page.context.add_cookies([{"name": COOKIE_NAME, "value": WRONG_TOKEN, "url": service.url,
                                   "httpOnly": True, "sameSite": "Strict"}])
        assert [c["value"] for c in page.context.cookies() if c["name"] == COOKIE_NAME] == [WRONG_TOKEN]
        page.evaluate("window.sensorhubDashboard.client.socket.close()")
        assert_on_login_with_reason(page, service)
        screenshot(page, "auth-token-rejected-login")
        # Logging in with the right token brings the live dashboard back, without the reason.
        page.fill("input[name=token]", TOKEN)
        page.click("button[type=submit]")
        page.wait_for_url(f"{service.url}/")
        page.wait_for_function("document.querySelector('#connection').dataset.state === 'open'", timeout=15000)
        assert unexpected_errors(page) == []


def test_missing_token_on_rest_call_goes_to_login(service: TokenService) -> None:
    sync_api = require_browser()
    with chromium_page(sync_api) as page:
        log_in(page, service)
        page.context.clear_cookies()  # logged out elsewhere, or the 12-h cookie expired
        page.click("[role=tab][data-view=history]")  # GET /api/history/athletes answers 401
        assert_on_login_with_reason(page, service)
        assert unexpected_errors(page) == []


def test_valid_token_keeps_the_dashboard(service: TokenService) -> None:
    """A socket drop with a good token only reconnects, and REST calls work: no trip to /login."""
    sync_api = require_browser()
    with chromium_page(sync_api) as page:
        log_in(page, service)
        page.evaluate("window.sensorhubDashboard.client.socket.close()")
        page.wait_for_function("document.querySelector('#connection').dataset.state === 'closed'", timeout=5000)
        page.wait_for_function("document.querySelector('#connection').dataset.state === 'open'", timeout=15000)
        page.click("[role=tab][data-view=history]")
        page.wait_for_timeout(1000)
        assert page.url == f"{service.url}/#history"
        assert page.locator("#history-message").inner_text() == "" or "401" not in page.locator(
            "#history-message").inner_text()
        assert page.errors == []
