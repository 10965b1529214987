"""Load and soak through the running service (``benchmarks/soak.py``): bounded behaviour only.

The default suite runs a 20-s version (10 replayed athletes = 20 sensors, 50 WebSocket clients, real
InfluxDB) and asserts what must hold on any machine, however loaded: the service survives and exits
cleanly, no WebSocket client is dropped, every client receives frames, storage stays healthy and
loses no angle point, and memory stays within a generous bound. Latency and memory slope are
timings: they are reported by the full run (``pytest -m soak`` or ``python benchmarks/soak.py``),
whose figures are in ``docs/reliability.md``, and are not asserted here.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from soak import SoakResult, run_soak


def _require_influx() -> None:
    from influx_server import INFLUXD, NGINX

    missing = [p for p in (INFLUXD, NGINX) if not Path(p).exists() and not shutil.which(Path(p).name)]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (apt-get install -y influxdb nginx)")


def assert_bounded(r: SoakResult) -> None:
    assert r.service_exit_code == 0
    assert r.ws_dropped_clients == 0 and r.clients_closed_by_server == 0
    assert r.min_frames_per_client_per_s > 1.0  # every client kept receiving frames
    # The recordings carry 5-13 samples per notification: about 8 notifications/s per sensor in real time.
    assert r.notifications > 0.5 * r.sensors * 8 * (r.duration_s - 5)
    assert "down" not in r.storage_states_seen and r.store_dropped_records == 0
    assert r.sessions_stored >= r.athletes
    assert r.stored_points > 0 and r.lost_points == 0 and r.duplicate_points == 0
    assert r.rss_mb_max < 600.0


def test_short_soak_20s(tmp_path: Path) -> None:
    _require_influx()
    result = run_soak(20.0, athletes=10, clients=50, sample_s=2.0, work_dir=tmp_path)
    print(json.dumps(result.summary()))
    assert_bounded(result)


@pytest.mark.soak
def test_full_soak_10min(tmp_path: Path) -> None:
    """The full run (excluded from the default suite): bounded behaviour plus memory growth."""
    _require_influx()
    result = run_soak(600.0, athletes=10, clients=50, work_dir=tmp_path)
    print(json.dumps(result.summary()))
    assert_bounded(result)
    assert result.rss_slope_mb_per_min < 1.0
