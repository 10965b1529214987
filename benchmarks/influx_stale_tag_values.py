"""How often InfluxDB 1.x keeps an erased athlete's id in ``SHOW TAG VALUES`` after ``DROP SERIES``.

Not a speed benchmark: a reproduction, with counts, of the InfluxDB 1.x in-memory index defect that
made ``tests/test_security_privacy.py::test_delete_athlete_on_influxdb_leaves_no_point`` flaky
(docs/privacy.md, "InfluxDB 1.x: the id can stay in the tag index"). Each trial writes line protocol
straight to a fresh database of a real ``influxd`` (tests/influx_server.py), drops athlete ``ana``
and checks ``SHOW TAG VALUES WITH KEY = "athlete"`` (no WHERE: that is what Grafana's variable
query and the test ask) and ``SHOW SERIES``.

    python benchmarks/influx_stale_tag_values.py --trials 20

Shapes (``bob`` always has one series beside them):

* ``test_case``: what the privacy test writes to ``sessions``: ana's stored session (1 point, two
  weeks ago) and the live session (2 points, this week), then one ``DROP SERIES``;
* ``two_weeks``: two sessions of ana (50 angle points each) in two weeks, one ``DROP SERIES``;
* ``spanning``: one series of ana (sensor status) with points in two weeks, one ``DROP SERIES``;
* ``one_shard``: both sessions of the ``test_case`` shape in the same week, one ``DROP SERIES``;
* ``one_shard_two_drops``: as ``one_shard``, but the 1-point series dropped first, then the 2-point.

``--restart`` additionally restarts influxd after each stale trial and checks again.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from influx_server import InfluxServer

WEEK_S = 7 * 86400
T_OLD_S = 1793610000  # 2026-11-02 09:00 UTC


def write(server: InfluxServer, db: str, lines: list[str]) -> None:
    url = f"{server.direct_url}/write?db={db}&precision=s"
    urllib.request.urlopen(urllib.request.Request(url, data="\n".join(lines).encode(), method="POST"), timeout=10).read()


def drop(server: InfluxServer, db: str, where: str) -> None:
    server.query(f"DROP SERIES WHERE {where}", db, post=True)


def shape_test_case(server: InfluxServer, db: str, now_s: int) -> None:
    write(server, db, [f"sessions,athlete=ana,session=a1 v=1 {T_OLD_S}", f"sessions,athlete=bob,session=b1 v=1 {T_OLD_S}"])
    write(server, db, [f"sessions,athlete=ana,session=live v=1 {now_s}", f"sessions,athlete=ana,session=live v=2 {now_s + 1}"])
    drop(server, db, "\"athlete\" = 'ana'")


def shape_two_weeks(server: InfluxServer, db: str, now_s: int) -> None:
    write(server, db, [f"hip_angles,athlete=bob,session=b1 v=1 {T_OLD_S}"])
    write(server, db, [f"hip_angles,athlete=ana,session=a1 v={k} {T_OLD_S + k}" for k in range(50)])
    write(server, db, [f"hip_angles,athlete=ana,session=a2 v={k} {T_OLD_S + WEEK_S + k}" for k in range(50)])
    drop(server, db, "\"athlete\" = 'ana'")


def shape_spanning(server: InfluxServer, db: str, now_s: int) -> None:
    write(server, db, [f"sensor_status,athlete=bob,sensor=b v=1 {T_OLD_S}"])
    write(server, db, [f"sensor_status,athlete=ana,sensor=s1 v={k} {T_OLD_S + k}" for k in range(50)])
    write(server, db, [f"sensor_status,athlete=ana,sensor=s1 v={k} {T_OLD_S + WEEK_S + k}" for k in range(50)])
    drop(server, db, "\"athlete\" = 'ana'")


def _one_shard(server: InfluxServer, db: str) -> None:
    write(server, db, [f"sessions,athlete=ana,session=a1 v=1 {T_OLD_S}", f"sessions,athlete=bob,session=b1 v=1 {T_OLD_S}"])
    write(server, db, [f"sessions,athlete=ana,session=a2 v=1 {T_OLD_S + 100}", f"sessions,athlete=ana,session=a2 v=2 {T_OLD_S + 101}"])


def shape_one_shard(server: InfluxServer, db: str, now_s: int) -> None:
    _one_shard(server, db)
    drop(server, db, "\"athlete\" = 'ana'")


def shape_one_shard_two_drops(server: InfluxServer, db: str, now_s: int) -> None:
    _one_shard(server, db)
    drop(server, db, "\"session\" = 'a1'")
    drop(server, db, "\"session\" = 'a2'")


SHAPES: dict[str, Callable[[InfluxServer, str, int], None]] = {
    "test_case": shape_test_case,
    "two_weeks": shape_two_weeks,
    "spanning": shape_spanning,
    "one_shard": shape_one_shard,
    "one_shard_two_drops": shape_one_shard_two_drops,
}


def stale_measurements(server: InfluxServer, db: str) -> list[str]:
    series = server.query('SHOW TAG VALUES WITH KEY = "athlete"', db)
    return sorted({s["name"] for s in series for row in s["values"] if row[1] == "ana"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES))
    parser.add_argument("--restart", action="store_true", help="restart influxd after a stale trial and check again")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sensorhub-stale-tags-"))
    server = InfluxServer(root)
    server.start()
    try:
        for shape in args.shapes:
            stale = left_series = cleared_by_restart = 0
            for trial in range(args.trials):
                db = f"stale_{shape}_{trial}"
                server.create_database(db)
                SHAPES[shape](server, db, int(time.time()))
                left_series += bool(server.query("SHOW SERIES WHERE \"athlete\" = 'ana'", db))
                if stale_measurements(server, db):
                    stale += 1
                    if args.restart:
                        server.stop_influxd()
                        server.start_influxd()
                        cleared_by_restart += not stale_measurements(server, db)
            restart = f", cleared by a restart: {cleared_by_restart}/{stale}" if args.restart else ""
            print(f"{shape:20s} id still in SHOW TAG VALUES: {stale:3d}/{args.trials}; "
                  f"series left: {left_series}/{args.trials}{restart}")
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
