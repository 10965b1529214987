"""The committed replay_data/ sessions: complete, within budget, consistent, and reproducible."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sensorhub.protocol import decode_packet
from sensorhub.recording import open_recording
from sensorhub.sim.make_replay_data import MAX_SESSION_BYTES, SESSIONS, ReplaySession
from sensorhub.sim.session import simulate

REPLAY_DATA = Path(__file__).resolve().parent.parent / "replay_data"


@pytest.mark.parametrize("entry", SESSIONS, ids=[e.name for e in SESSIONS])
def test_replay_session_is_complete_and_consistent(entry: ReplaySession) -> None:
    files = {s: REPLAY_DATA / f"{entry.name}{s}" for s in (".shr", ".truth.csv", ".reps.json", ".meta.json")}
    assert all(p.is_file() for p in files.values()), "regenerate with python -m sensorhub.sim.make_replay_data"
    assert sum(p.stat().st_size for p in files.values()) < MAX_SESSION_BYTES
    rec = open_recording(files[".shr"])
    meta = json.loads(files[".meta.json"].read_text())
    reps = json.loads(files[".reps.json"].read_text())
    assert rec.meta.drill == entry.config.drill and rec.meta.side == entry.config.side
    assert rec.meta.extra["sim"]["dropped_packets"] == meta["dropped_packets"]
    counts = rec.notification_counts
    for sensor in meta["sensors"].values():
        assert counts[sensor["sensor_id"]] == sensor["packets_sent"] - meta["dropped_packets"][sensor["sensor_id"]]
    if entry.config.loss > 0:
        assert all(n > 0 for n in meta["dropped_packets"].values())
    assert len(reps) >= 6
    assert [r["compensation"] for r in reps] == [i + 1 in entry.config.compensation_reps for i in range(len(reps))]
    if entry.config.mag_disturbance_uT > 0:
        assert meta["drill_end_s"] - meta["drill_start_s"] >= 240.0


def test_committed_session_matches_a_fresh_simulation() -> None:
    entry = next(e for e in SESSIONS if e.config.loss > 0)
    session = simulate(entry.config)
    truth = np.loadtxt(REPLAY_DATA / f"{entry.name}.truth.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(truth, np.round(session.truth, 5), atol=2e-5)
    rec = open_recording(REPLAY_DATA / f"{entry.name}.shr")
    stored = list(rec.iter_notifications())
    fresh = session.notifications
    assert len(stored) == len(fresh)
    assert [n.sensor_id for n in stored] == [n.sensor_id for n in fresh]
    np.testing.assert_allclose([n.t_host_s for n in stored], [n.t_host_s for n in fresh], atol=1e-9)
    same = sum(a.payload == b.payload for a, b in zip(stored, fresh, strict=True))
    assert same == len(stored)
    assert decode_packet(stored[0].payload).has_mag
