"""Deployment files: docker-compose.yml, Dockerfile, Grafana provisioning and the dashboard's InfluxQL.

The compose file is checked with Debian's ``docker-compose config`` when it is installed (no Docker
engine needed), else parsed with PyYAML. Every dashboard query must be InfluxQL naming measurements,
fields and tags of :mod:`sensorhub.storage.schema`, and must run on a real InfluxDB when the test
harness is available.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

try:  # tests/ as a package (tests/__init__.py present) or as a plain directory on sys.path
    from tests.influx_server import InfluxServer, influx_server
except ModuleNotFoundError:
    from influx_server import InfluxServer, influx_server  # type: ignore[no-redef]  # noqa: F401

from sensorhub.storage import RepRecord, SensorStatus, SessionRecord, StorageSettings
from sensorhub.storage.influx import InfluxStore
from sensorhub.storage.schema import MEASUREMENTS

REPO = Path(__file__).resolve().parent.parent
GRAFANA = REPO / "dashboards" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "sensorhub.json"
DATASOURCE = GRAFANA / "provisioning" / "datasources" / "sensorhub-influxdb.yaml"
QUERY_RE = re.compile(
    r'^SELECT (?P<select>.+?) FROM "(?P<measurement>\w+)"'
    r"(?: WHERE (?P<where>.+?))?(?: GROUP BY (?P<group>.+?))?(?: fill\((?:none|null|previous|linear|0)\))?$"
)


def compose_config() -> dict[str, Any]:
    env = {**os.environ, "SENSORHUB_INFLUX_TOKEN": "test-token"}
    tool = shutil.which("docker-compose")
    if tool is None:
        return yaml.safe_load((REPO / "docker-compose.yml").read_text())
    done = subprocess.run(
        [tool, "-f", str(REPO / "docker-compose.yml"), "config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def test_compose_runs_influxdb2_grafana_and_sensorhub_on_host_network_with_dbus() -> None:
    services = compose_config()["services"]
    assert set(services) == {"influxdb", "grafana", "sensorhub"}
    assert services["influxdb"]["image"].startswith("influxdb:2")
    hub = services["sensorhub"]
    assert hub["network_mode"] == "host"
    assert any(str(v).startswith("/var/run/dbus:/var/run/dbus") for v in hub["volumes"])
    assert "build" in hub
    for key in ("URL", "TOKEN", "ORG", "BUCKET"):
        assert hub["environment"][f"SENSORHUB_INFLUX_{key}"]
    mounts = {str(v).split(":")[1]: Path(str(v).split(":")[0]) for v in services["grafana"]["volumes"]}
    for target in ("/etc/grafana/provisioning", "/var/lib/grafana/dashboards/sensorhub"):
        source = mounts[target]
        assert (source if source.is_absolute() else REPO / source).is_dir(), target


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_compose_refuses_to_start_without_a_token() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SENSORHUB_INFLUX_TOKEN"}
    done = subprocess.run(
        ["docker-compose", "-f", str(REPO / "docker-compose.yml"), "--project-directory", str(REPO), "config", "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0 and "set SENSORHUB_INFLUX_TOKEN" in done.stderr


def test_dockerfile_builds_from_python_311_slim_with_pip_install() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.MULTILINE)
    assert "pip install ." in text and 'ENTRYPOINT ["sensorhub"]' in text


def test_datasource_is_influxql_and_matches_the_dashboard() -> None:
    (source,) = yaml.safe_load(DATASOURCE.read_text())["datasources"]
    assert source["type"] == "influxdb" and source["jsonData"]["version"] == "InfluxQL"
    assert source["jsonData"]["httpHeaderName1"] == "Authorization"
    dashboard = json.loads(DASHBOARD.read_text())
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]}
    assert uids == {source["uid"]}


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["query"]) for p in dashboard["panels"] for t in p["targets"]]


def test_every_panel_query_is_influxql_on_schema_measurements_fields_and_tags() -> None:
    queries = dashboard_queries()
    titles = " ".join(title for title, _ in queries).lower()
    for needed in ("hip rotation", "range per session", "reps", "compensation", "battery", "loss", "rate"):
        assert needed in titles, needed
    for title, query in queries:
        assert "|>" not in query and "from(bucket" not in query, f"{title}: Flux, not InfluxQL"
        match = QUERY_RE.match(query)
        assert match, f'{title}: not a SELECT ... FROM "measurement" InfluxQL query: {query}'
        measurement = MEASUREMENTS.get(match["measurement"])
        assert measurement is not None, f"{title}: unknown measurement {match['measurement']}"
        select = re.sub(r'AS "[^"]*"', "", match["select"])
        for name in re.findall(r'"(\w+)"', select):
            assert measurement.has_field(name), f"{title}: {measurement.name} has no field {name}"
        for clause in (match["where"] or "", match["group"] or ""):
            for name in re.findall(r'"(\w+)"', clause):
                assert name in measurement.tags, f"{title}: {measurement.name} has no tag {name}"


def test_dashboard_queries_run_on_a_real_influxdb(influx_server: InfluxServer, tmp_path: Path) -> None:
    db = "sensorhub_dashboard"
    influx_server.create_database(db)
    t0 = 1_793_577_600.0
    st = StorageSettings(influx_url=influx_server.url, influx_bucket=db, data_dir=tmp_path, flush_interval_s=0.05)
    with InfluxStore(st) as store:
        store.write_session(SessionRecord("s1", "ann", "seated", "left", t0, t0 + 60))
        store.write_reps(
            [
                RepRecord(
                    "ann", "s1", "left", "seated", 0, t0 + 1, t0 + 5, 30.0, 41.0, 71.0, ("pelvis_rotation",), 80.0
                ),
                RepRecord("ann", "s1", "left", "seated", 1, t0 + 6, t0 + 10, 34.0, 39.0, 73.0, (), 90.0),
            ]
        )
        store.write_status([SensorStatus("imu-1", 90.0, 0.05, 100.0, True, t_s=t0 + 2)])
        assert store.flush(10)
    macros = {
        "$timeFilter": f"time >= {int(t0)}s AND time < {int(t0) + 3600}s",
        "$__interval": "1s",
        "/^$athlete$/": "/^ann$/",
        "/^$drill$/": "/.*/",
    }
    results = {}
    for title, query in dashboard_queries():
        for macro, value in macros.items():
            query = query.replace(macro, value)
        results[title] = influx_server.query(query, db)  # raises on an InfluxQL error
    (per_session,) = results["Rotation range per session"]
    assert per_session["tags"] == {"session": "s1", "side": "left"}
    assert per_session["values"][0][1:] == [34.0, 41.0, 73.0, 2]
    assert len(results["Reps"][0]["values"]) == 2
