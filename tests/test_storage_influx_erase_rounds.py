"""How many rounds ``InfluxStore._drop_series_verified`` takes before it answers.

InfluxDB 1.x's in-memory index can keep an erased athlete's id in ``SHOW TAG VALUES`` with no series
or point left (docs/privacy.md); waiting does not clear it, so the store must raise at once in that
case, and keep dropping again (0.2 s apart) only while series are left.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest

try:
    from tests.influx_server import InfluxServer, influx_server
except ImportError:  # run from tests/
    from influx_server import InfluxServer, influx_server  # type: ignore[no-redef]

from sensorhub.storage import ErasureIncompleteError, StorageSettings
from sensorhub.storage import influx as influx_module
from sensorhub.storage.influx import InfluxStore

__all__ = ["influx_server"]  # the session fixture, imported for pytest

WEEK_S = 7 * 86400
T_OLD_S = 1793610000  # 2026-11-02 09:00 UTC


def _store(server: InfluxServer, db: str, data_dir: Path) -> InfluxStore:
    return InfluxStore(StorageSettings(influx_url=server.url, influx_token="t", influx_bucket=db, data_dir=data_dir,
                                       flush_interval_s=0.05, write_timeout_s=2.0, http_retries=1))


def _count_rounds(store: InfluxStore, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    counts = {"drops": 0, "sleeps": 0}
    query = store.influxql.query

    def counting(q: str, **kw: Any) -> Any:
        counts["drops"] += q.startswith("DROP SERIES")
        return query(q, **kw)

    monkeypatch.setattr(store.influxql, "query", counting)
    monkeypatch.setattr(influx_module.time, "sleep", lambda _s: counts.__setitem__("sleeps", counts["sleeps"] + 1))
    return counts


def test_a_stale_tag_index_entry_raises_after_one_round(influx_server: InfluxServer, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    db = "erase_rounds_stale"
    influx_server.create_database(db)
    # Two sessions of ana a week apart (two shards): 1.6 keeps her id in the tag index every time
    # (20 of 20 trials, benchmarks/influx_stale_tag_values.py, shape two_weeks).
    lines = [f"hip_angles,athlete=bob,session=b1 v=1 {T_OLD_S}"]
    lines += [f"hip_angles,athlete=ana,session=a1 v={k} {T_OLD_S + k}" for k in range(50)]
    lines += [f"hip_angles,athlete=ana,session=a2 v={k} {T_OLD_S + WEEK_S + k}" for k in range(50)]
    url = f"{influx_server.direct_url}/write?db={db}&precision=s"
    urllib.request.urlopen(urllib.request.Request(url, data="\n".join(lines).encode(), method="POST"), timeout=10).read()
    store = _store(influx_server, db, tmp_path)
    try:
        counts = _count_rounds(store, monkeypatch)
        with pytest.raises(ErasureIncompleteError, match="tag index still lists the id"):
            store._drop_series_verified("ana")
        assert counts == {"drops": 1, "sleeps": 0}
        assert store._athlete_series("ana") == []  # nothing of hers is left but the index entry
        assert store._athlete_series("bob") == ["hip_angles,athlete=bob,session=b1"]  # bob untouched
    finally:
        store.close()


def test_series_left_are_dropped_again_with_pauses(influx_server: InfluxServer, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    db = "erase_rounds_series"
    influx_server.create_database(db)
    store = _store(influx_server, db, tmp_path)
    try:
        counts = _count_rounds(store, monkeypatch)
        # A database that keeps showing a series of the athlete (and lists her id) after every DROP.
        monkeypatch.setattr(store, "_athlete_series", lambda _a: ["hip_angles,athlete=ana,session=x"])
        monkeypatch.setattr(store, "_measurements_listing", lambda _a: ["hip_angles"])
        with pytest.raises(ErasureIncompleteError, match="still holds 1 series"):
            store._drop_series_verified("ana")
        assert counts == {"drops": influx_module.ERASE_ROUNDS, "sleeps": influx_module.ERASE_ROUNDS - 1}
    finally:
        store.close()
