"""The batch ingest (:func:`sensorhub.ingest.assemble_batch`) equals the online one (:func:`assemble`).

``sensorhub analyze`` assembles a whole recording with the batch path (bulk decoding, output built
in one vectorised pass); the live service and ``sensorhub replay`` use :class:`Ingest` notification
by notification. The batch path is meant to be an implementation detail: same samples, same hub
times to the bit, same gap flags, same statistics. These tests hold it to that on every recording
in replay_data/, on simulated streams damaged by every fault of tests/fault_injection.py, and on
the fuzzers' arbitrary streams. They also pin :func:`sensorhub.protocol.data.decode_packets`
(the bulk decoder) to :func:`decode_packet`, errors and messages included.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from conftest import REPLAY_DATA
from fault_injection import (
    CORRUPTIONS,
    corrupt,
    duplicate,
    packet_loss,
    pause,
    reboot,
    reorder,
)
from fuzz_support import IngestItem
from hypothesis import HealthCheck, given, settings
from test_fuzz_ingest import damaged_streams, wild_streams

from sensorhub.errors import ConfigurationError, ProtocolError
from sensorhub.ingest import Ingest, assemble, assemble_batch
from sensorhub.notification import Notification
from sensorhub.protocol import decode_packet
from sensorhub.protocol.data import decode_packets
from sensorhub.recording import open_recording
from sensorhub.sim import SimConfig, SimulatedSession, simulate

RECORDINGS = sorted(REPLAY_DATA.glob("*.shr"))


pytestmark = pytest.mark.usefixtures("quiet_sensorhub_logs")


def assert_same_assembly(notes: Sequence[Notification]) -> dict[str, int]:
    """Run both paths; assert identical samples, times, gap flags and stats. Returns samples per sensor."""
    online_ingest, batch_ingest = Ingest(), Ingest()
    online = assemble(notes, online_ingest)
    batch = assemble_batch(notes, batch_ingest)
    assert sorted(batch) == sorted(online)  # key order is release order online, first arrival in batch
    for sid, ref in online.items():
        got = batch[sid]
        for name in ("t_s", "acc_m_s2", "gyr_rad_s", "gap_before"):
            a, b = getattr(ref, name), getattr(got, name)
            assert a.shape == b.shape and a.dtype == b.dtype, (sid, name)
            assert np.array_equal(a, b), (sid, name, np.flatnonzero(a != b)[:5])
        assert (ref.mag_uT is None) == (got.mag_uT is None), sid
        if ref.mag_uT is not None:
            assert np.array_equal(ref.mag_uT, got.mag_uT, equal_nan=True), sid
    assert list(batch_ingest.stats()) == list(online_ingest.stats())
    for sid, st in online_ingest.stats().items():
        assert batch_ingest.stats()[sid].to_json() == st.to_json(), sid
    return {sid: len(s) for sid, s in online.items()}


@pytest.mark.skipif(not RECORDINGS, reason="replay_data/ holds no recordings")
@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: Path(p).stem)
def test_batch_equals_online_on_replay_data(path: Path) -> None:
    notes = list(open_recording(path).iter_notifications())
    n = assert_same_assembly(notes)
    assert len(n) == 2 and min(n.values()) > 1000  # both sensors, a real session each


@pytest.fixture(scope="module")
def session() -> SimulatedSession:
    return simulate(SimConfig(seed=11, reps=2, compensation_reps=()))


def _faults(session: SimulatedSession) -> dict[str, list[Notification]]:
    notes = session.notifications
    rng = np.random.default_rng(3)
    pelvis, thigh = session.sensors["pelvis"].sensor_id, session.sensors["thigh"].sensor_id
    t_mid = 0.5 * (notes[0].t_host_s + notes[-1].t_host_s)
    damaged = {
        "random loss 20 %": packet_loss(notes, 0.2, 1.0, rng).notifications,
        "burst loss": packet_loss(notes, 0.2, 8.0, rng).notifications,
        "duplicates": duplicate(notes, 0.1, rng).notifications,
        "reordering": reorder(notes, 0.1, rng).notifications,
        "corrupted payloads": corrupt(notes, 0.05, rng).notifications,
        "thigh reboot": reboot(notes, thigh, t_mid, 1.0, rng).notifications,
        "pause of both": pause(notes, [pelvis, thigh], t_mid, t_mid + 3.0).notifications,
    }
    # corrupt() last: the other faults decode the payloads they move.
    shuffled = reorder(duplicate(packet_loss(notes, 0.1, 1.0, rng).notifications, 0.05, rng).notifications,
                       0.05, rng).notifications
    damaged["loss + duplicates + reordering + corruption"] = corrupt(shuffled, 0.03, rng).notifications
    damaged["all that and a reboot"] = corrupt(reboot(shuffled, pelvis, t_mid, 0.5, rng).notifications,
                                               0.03, rng).notifications
    return damaged


def test_batch_equals_online_on_fault_injected_streams(session: SimulatedSession) -> None:
    for name, notes in _faults(session).items():
        try:
            assert_same_assembly(notes)
        except AssertionError as exc:
            raise AssertionError(f"fault {name!r}: {exc}") from exc


def test_the_fault_injected_streams_do_exercise_the_rules(session: SimulatedSession) -> None:
    """Guard against the previous test passing on streams the faults left untouched."""
    faults = _faults(session)
    ingest = Ingest()
    assemble_batch(faults["loss + duplicates + reordering + corruption"], ingest)
    for st in ingest.stats().values():
        assert st.packets_lost > 0 and st.duplicates > 0 and st.reordered > 0 and st.malformed > 0
    ingest = Ingest()
    assemble_batch(faults["thigh reboot"], ingest)
    assert sorted(st.resets for st in ingest.stats().values()) == [0, 1]


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _notes(items: Sequence[IngestItem]) -> list[Notification]:
    return [Notification(sid, t, payload) for sid, t, payload in items]


@FUZZ
@given(wild_streams())
def test_batch_equals_online_on_arbitrary_streams(items: list[IngestItem]) -> None:
    assert_same_assembly(_notes(items))


@FUZZ
@given(damaged_streams())
def test_batch_equals_online_on_damaged_streams(items: list[IngestItem]) -> None:
    assert_same_assembly(_notes(items))


def test_batch_needs_a_fresh_ingest(session: SimulatedSession) -> None:
    ingest = Ingest()
    ingest.push(session.notifications[0])
    with pytest.raises(ConfigurationError, match="fresh Ingest"):
        assemble_batch(session.notifications, ingest)


def test_batch_with_a_custom_decoder_uses_it(session: SimulatedSession) -> None:
    calls = []

    def counting(payload: bytes):  # type: ignore[no-untyped-def]
        calls.append(len(payload))
        return decode_packet(payload)

    notes = session.notifications[:500]
    samples = assemble_batch(notes, Ingest(decode=counting))
    assert len(calls) == 500
    assert sum(len(s) for s in samples.values()) == sum(len(s) for s in assemble(notes).values())


def test_decode_packets_equals_decode_packet_field_by_field(session: SimulatedSession) -> None:
    rng = np.random.default_rng(8)
    payloads: list[bytes] = [n.payload for n in session.notifications[:400]]
    kinds = list(CORRUPTIONS)
    damaged = [CORRUPTIONS[kinds[i % len(kinds)]](p, rng) for i, p in enumerate(payloads[:120])]
    payloads += damaged + [b"", b"\x01", bytes(7), bytes(rng.integers(0, 256, 200, dtype=np.uint8))]
    got = decode_packets(payloads)
    assert len(got) == len(payloads)
    n_errors = 0
    for payload, packet in zip(payloads, got, strict=True):
        try:
            ref = decode_packet(payload)
        except ProtocolError as exc:
            n_errors += 1
            assert type(packet) is type(exc) and str(packet) == str(exc)
            continue
        assert not isinstance(packet, ProtocolError)
        for f in dataclasses.fields(ref):
            a, b = getattr(ref, f.name), getattr(packet, f.name)
            if isinstance(a, np.ndarray):
                assert isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b), f.name
                assert not b.flags.writeable, f.name
            else:
                assert type(a) is type(b) and a == b, f.name
    assert n_errors >= 100  # every corruption kind but a lucky few is rejected, and the 4 garbage payloads
