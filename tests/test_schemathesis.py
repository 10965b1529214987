"""Property-based API conformance: schemathesis against the OpenAPI description of the live service.

Every operation of ``/openapi.json`` is called in-process (ASGI, with the app's lifespan running: a
hub in idle mode, an SQLite store in a temporary directory, one registered athlete) with requests
generated from the schema, valid and invalid. Checks: no 5xx, responses conform to the schema
(status code documented, content type, body schema).

The default run is bounded (``SENSORHUB_SCHEMATHESIS_EXAMPLES``, default 20 examples per operation)
so the suite stays quick; the longer run documented in docs/reliability.md ("Security") raises it::

    SENSORHUB_SCHEMATHESIS_EXAMPLES=300 python -m pytest tests/test_schemathesis.py -q
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402

from sensorhub.service import ServiceSettings, create_app  # noqa: E402
from sensorhub.service.security import SecuritySettings  # noqa: E402
from sensorhub.storage import StorageSettings  # noqa: E402

EXAMPLES = int(os.environ.get("SENSORHUB_SCHEMATHESIS_EXAMPLES", "20"))
TOKEN = "schemathesis-token-0123456789"
CALLS: Counter[str] = Counter()
CONFIG = schemathesis.Config.from_dict({"checks": {
    # 414: an over-long path or query is refused before routing (sensorhub.service.limits).
    "negative_data_rejection": {"expected-statuses": [400, 401, 404, 405, 409, 413, 414, 415, 422]},
    # A schema-valid body naming an unknown drill or athlete is rightly refused (404 or 422 with a
    # message); every response check stays on.
    "positive_data_acceptance": {"enabled": False},
}})


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> object:
    data_dir: Path = tmp_path_factory.mktemp("schemathesis")
    (data_dir / "athletes.json").write_text(json.dumps([{"id": "ana", "name": "Ana", "notes": ""}]))
    app = create_app(ServiceSettings(ble=False, dashboards_dir=None, storage=StorageSettings(data_dir=data_dir),
                                     security=SecuritySettings(api_token=TOKEN)))
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.auth()
class BearerToken:
    """Sends the API token on every generated request, as the OpenAPI's ``bearerAuth`` scheme asks."""

    def get(self, case: schemathesis.Case, context: schemathesis.AuthContext) -> str:
        return TOKEN

    def set(self, case: schemathesis.Case, data: str, context: schemathesis.AuthContext) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    response = case.call_and_validate()  # the token comes from BearerToken, except in cases testing its absence
    CALLS["all"] += 1
    if (case.headers or {}).get("Authorization") == f"Bearer {TOKEN}":
        assert response.status_code != 401, f"{case.method} {case.path}: the right token was refused"
        CALLS["with_token"] += 1


def test_generated_requests_carried_the_token() -> None:
    """Without the token every data route answers a documented 401 and the run above tests nothing."""
    if CALLS["all"] == 0:
        pytest.skip("the schemathesis test did not run in this session")
    assert CALLS["with_token"] >= CALLS["all"] // 2, dict(CALLS)
