"""Shared pieces of the fuzz tests (tests/test_fuzz_*.py) and the atheris harnesses (fuzz/).

Each *check* takes one input, runs it through the real code and fails (AssertionError, or any
exception that is not of the documented family) if the code under test misbehaves:

* :func:`check_data_packet`, :func:`check_control`, :func:`check_info`: the protocol decoders either
  return a record consistent with the bytes or raise a :class:`~sensorhub.errors.ProtocolError`;
  :func:`check_bulk_decoder`: the batch decoder ``decode_packets`` agrees with ``decode_packet``.
* :func:`check_ingest`: a sequence of ``(t_host_s, payload)`` notifications never makes the ingest
  raise, and the samples it releases have finite, strictly increasing times.
* :func:`check_recording_bytes`: the recording reader either reads a file (then every notification
  time is finite) or raises a :class:`~sensorhub.errors.RecordingError` naming the file and offset.
* :func:`check_csv_bytes`: the IMU CSV importer either returns valid samples or raises an
  :class:`~sensorhub.errors.ImportFormatError` naming the file (and the line where there is one).

The regression corpus (tests/fuzz_corpus/) stores inputs in the byte form these checks take, so a
corpus file, a hypothesis example and an atheris input all go through the same function.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sensorhub.csv_import import CsvFormatError, read_imu_csv
from sensorhub.errors import ImportFormatError, ProtocolError, RecordingError
from sensorhub.ingest import MAX_HOST_TIME_S, Ingest, concat_samples
from sensorhub.notification import Notification
from sensorhub.protocol import (
    DATA_HEADER_BYTES,
    INFO_LENGTH,
    RANGE_CODES,
    SAMPLE_RATES_HZ,
    DataPacket,
    decode_control,
    decode_info,
    decode_packet,
    encode_control,
    encode_info,
    encode_packet_raw,
)
from sensorhub.protocol.data import decode_packets
from sensorhub.recording import RecordingFormatError, open_recording
from sensorhub.samples import ImuSamples

__all__ = [
    "check_bulk_decoder",
    "check_control",
    "check_csv_bytes",
    "check_data_packet",
    "check_info",
    "check_ingest",
    "check_recording_bytes",
    "ingest_items_from_bytes",
    "ingest_items_to_json",
]


# -- protocol ----------------------------------------------------------------------------------------


def check_data_packet(payload: bytes) -> None:
    """Decode ``payload`` as a data packet: a record that matches the bytes, or a ProtocolError."""
    try:
        pkt = decode_packet(payload)
    except ProtocolError as exc:
        assert str(exc).startswith("data packet:"), f"message does not name the record kind: {exc}"
        return
    axes = 9 if pkt.has_mag else 6
    assert len(payload) == DATA_HEADER_BYTES + 2 * axes * pkt.n_samples
    assert 1 <= pkt.n_samples <= 16 and pkt.version == 1
    assert pkt.sample_rate_hz in SAMPLE_RATES_HZ.values() and pkt.range_code in RANGE_CODES
    assert pkt.raw.shape == (pkt.n_samples, axes)
    assert np.array_equal(pkt.raw.ravel(), np.frombuffer(payload, "<i2", offset=DATA_HEADER_BYTES))
    for arr in (pkt.acc_m_s2, pkt.gyr_rad_s) + ((pkt.mag_uT,) if pkt.mag_uT is not None else ()):
        assert arr.shape == (pkt.n_samples, 3) and np.isfinite(arr).all()
    # Re-encoding the counts gives the same bytes, except that the encoder sets the clipping bit
    # whenever a count sits on a rail (PROTOCOL.md 3.4).
    again = encode_packet_raw(
        seq=pkt.seq, t_first_us=pkt.t_first_us, rate_code=pkt.rate_code, range_code=pkt.range_code,
        raw=pkt.raw, sensor_state=pkt.sensor_state, clipping=pkt.clipping,
    )
    clip_bit = 1 << 8
    on_rail = bool(np.any((pkt.raw == -32768) | (pkt.raw == 32767)))
    expected = bytes(payload) if not on_rail else (
        struct.pack("<H", struct.unpack_from("<H", payload)[0] | clip_bit) + bytes(payload[2:])
    )
    assert again == expected


def check_bulk_decoder(payloads: Sequence[bytes]) -> None:
    """``decode_packets`` (the batch decoder the recording analysis uses) equals ``decode_packet`` per payload."""
    bulk = decode_packets(payloads)
    assert len(bulk) == len(payloads)
    for payload, got in zip(payloads, bulk, strict=True):
        try:
            want = decode_packet(payload)
        except ProtocolError as exc:
            assert type(got) is type(exc) and str(got) == str(exc), (got, exc)
            continue
        assert isinstance(got, DataPacket), got
        for name in ("version", "seq", "t_first_us", "rate_code", "sample_rate_hz", "sample_period_us", "n_samples",
                     "has_mag", "clipping", "sensor_state", "range_code", "acc_range_g", "gyr_range_dps"):
            assert getattr(got, name) == getattr(want, name), name
        for name in ("raw", "acc_m_s2", "gyr_rad_s"):
            assert np.array_equal(getattr(got, name), getattr(want, name)), name
        if want.mag_uT is None or got.mag_uT is None:
            assert got.mag_uT is None and want.mag_uT is None
        else:
            assert np.array_equal(got.mag_uT, want.mag_uT)


def check_control(payload: bytes) -> None:
    """Decode ``payload`` as a control message: re-encodes to the same bytes, or a ProtocolError."""
    try:
        msg = decode_control(payload)
    except ProtocolError as exc:
        assert str(exc).startswith("control"), f"message does not name the record kind: {exc}"
        return
    assert encode_control(msg) == bytes(payload)


def check_info(payload: bytes) -> None:
    """Decode ``payload`` as the info record: re-encodes to the same bytes, or a ProtocolError."""
    try:
        info = decode_info(payload)
    except ProtocolError as exc:
        assert str(exc).startswith("info"), f"message does not name the record kind: {exc}"
        return
    assert len(payload) == INFO_LENGTH
    assert encode_info(info) == bytes(payload)


# -- ingest ------------------------------------------------------------------------------------------

IngestItem = tuple[str, float, bytes]
"""(sensor id, hub receive time in s, payload)"""


def check_ingest(items: Sequence[IngestItem]) -> dict[str, ImuSamples]:
    """Push every notification through one :class:`Ingest`, polling now and then, then flush.

    Asserts: nothing raises; per sensor the released samples have finite, strictly increasing
    times and a ``gap_before`` flag per sample; the statistics count what was released and every
    undecodable payload. Returns the released samples per sensor.
    """
    ingest = Ingest()
    blocks: dict[str, list[ImuSamples]] = {}
    undecodable: dict[str, int] = {}
    for i, (sid, t_host_s, payload) in enumerate(items):
        if not (math.isfinite(t_host_s) and abs(t_host_s) <= MAX_HOST_TIME_S):
            undecodable[sid] = undecodable.get(sid, 0) + 1
        else:
            try:
                decode_packet(payload)
            except ProtocolError:
                undecodable[sid] = undecodable.get(sid, 0) + 1
        for out_sid, block in ingest.push(Notification(sid, t_host_s, payload)):
            blocks.setdefault(out_sid, []).append(block)
        if i % 7 == 6:
            for out_sid, block in ingest.poll(t_host_s + 0.3):
                blocks.setdefault(out_sid, []).append(block)
    for out_sid, block in ingest.flush():
        blocks.setdefault(out_sid, []).append(block)
    out: dict[str, ImuSamples] = {}
    for sid, stats in ingest.stats().items():
        parts = blocks.get(sid, [])
        for b in parts:
            assert b.gap_before is not None and b.gap_before.shape == b.t_s.shape
            assert not b.gap_before[1:].any(), f"{sid}: a released block has a gap after its first sample"
        samples = concat_samples(parts)
        t = samples.t_s
        assert np.isfinite(t).all(), f"{sid}: non-finite sample times"
        assert np.all(np.diff(t) > 0), f"{sid}: sample times not strictly increasing"
        assert stats.samples == len(t)
        assert stats.malformed == undecodable.get(sid, 0)
        assert min(stats.packets_received, stats.packets_lost, stats.duplicates, stats.reordered,
                   stats.late, stats.inconsistent, stats.resets, stats.gaps) >= 0
        assert math.isnan(stats.loss_fraction) or 0.0 <= stats.loss_fraction <= 1.0
        assert stats.gaps == int(samples.gap_before.sum()) if samples.gap_before is not None else True
        out[sid] = samples
    return out


def ingest_items_to_json(items: Sequence[IngestItem]) -> str:
    """The corpus form of an ingest input: JSON lines ``[sensor_id, t_host_s, payload_hex]``."""
    return "".join(json.dumps([sid, t, payload.hex()]) + "\n" for sid, t, payload in items)


def ingest_items_from_bytes(data: bytes) -> list[IngestItem]:
    """Parse the corpus form written by :func:`ingest_items_to_json`."""
    items: list[IngestItem] = []
    for line in data.decode("utf-8").splitlines():
        if line.strip():
            sid, t, hexed = json.loads(line)
            items.append((str(sid), float(t), bytes.fromhex(hexed)))
    return items


# -- files -------------------------------------------------------------------------------------------


def check_recording_bytes(data: bytes, path: Path) -> None:
    """Write ``data`` to ``path`` and read it as a recording: success, or a RecordingError at an offset."""
    path.write_bytes(data)
    try:
        rec = open_recording(path)
        notes = [n for n in rec.iter_records() if isinstance(n, Notification)]
    except RecordingFormatError as exc:
        assert str(exc).startswith(f"{path}: byte {exc.offset}: "), str(exc)
        assert 0 <= exc.offset <= len(data)
        return
    except RecordingError as exc:
        assert str(path) in str(exc), str(exc)
        return
    assert len(notes) == rec.n_notifications
    for n in notes:
        assert math.isfinite(n.t_host_s) and abs(n.t_host_s) <= MAX_HOST_TIME_S, f"notification time {n.t_host_s} accepted"
    for m in rec.marks:
        assert math.isfinite(m.t_host_s), f"mark time {m.t_host_s} accepted"


def check_csv_bytes(data: bytes, path: Path) -> ImuSamples | None:
    """Write ``data`` to ``path`` and import it: valid samples, or an ImportFormatError naming file and line."""
    path.write_bytes(data)
    try:
        samples = read_imu_csv(path)
    except ImportFormatError as exc:
        assert isinstance(exc, CsvFormatError)
        assert str(exc).startswith(str(path)), str(exc)
        return None
    assert len(samples) >= 1
    assert np.isfinite(samples.t_s).all() and np.all(np.diff(samples.t_s) > 0)
    for arr in (samples.acc_m_s2, samples.gyr_rad_s) + ((samples.mag_uT,) if samples.mag_uT is not None else ()):
        assert arr.shape == (len(samples), 3) and np.isfinite(arr).all()
    return samples
