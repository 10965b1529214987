"""The fake peripheral speaks firmware_protocol/PROTOCOL.md byte for byte (driven through bleak itself)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import numpy as np
import pytest
from bleak import BleakClient, BleakScanner

from sensorhub.ble.fake import (
    ArraySource,
    FakePeripheral,
    FakeRadio,
    RotatingSource,
    StillSource,
)
from sensorhub.ingest import Ingest, assemble
from sensorhub.notification import Notification
from sensorhub.protocol import (
    CONTROL_CHAR_UUID,
    DATA_CHAR_UUID,
    INFO_CHAR_UUID,
    SERVICE_UUID,
    decode_info,
    decode_packet,
    encode_info,
)

SID = "c0ffee000001"


async def _connected(p: FakePeripheral) -> tuple[FakeRadio, BleakClient, list[bytes], list[bytes]]:
    """A real BleakClient on the fake backend, subscribed to data and control."""
    radio = FakeRadio([p])
    devices = await BleakScanner.discover(0.01, return_adv=True, service_uuids=[SERVICE_UUID],
                                          backend=radio.scanner_backend)
    (device, _adv), = devices.values()
    client = BleakClient(device, backend=radio.client_backend)
    await client.connect()
    data: list[bytes] = []
    control: list[bytes] = []
    await client.start_notify(CONTROL_CHAR_UUID, lambda _s, d: control.append(bytes(d)))
    await client.start_notify(DATA_CHAR_UUID, lambda _s, d: data.append(bytes(d)))
    return radio, client, data, control


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_scan_reports_only_sensorhub_advertisers_with_the_service_uuid() -> None:
    async def main() -> Any:
        radio = FakeRadio([FakePeripheral(SID, name="pelvis-imu")])
        everything = await BleakScanner.discover(0.01, return_adv=True, backend=radio.scanner_backend)
        filtered = await BleakScanner.discover(0.01, return_adv=True, service_uuids=[SERVICE_UUID],
                                               backend=radio.scanner_backend)
        return everything, filtered

    everything, filtered = run(main())
    assert len(everything) == 2  # the fake sensor and a heart-rate strap
    ((device, adv),) = filtered.values()
    assert device.address == "C0:FF:EE:00:00:01"
    assert adv.local_name == "pelvis-imu" and adv.service_uuids == [SERVICE_UUID]


@pytest.mark.parametrize(
    ("written", "reply"),
    [
        (b"", b"\xff\x00\x02"),  # empty write: BAD_LENGTH with failed opcode 0
        (b"\x09", b"\xff\x09\x01"),  # unknown opcode
        (b"\x80\x01", b"\xff\x80\x01"),  # a reply opcode is not a command
        (b"\x03", b"\xff\x03\x02"),  # SET_SAMPLE_RATE without its code
        (b"\x01\x00", b"\xff\x01\x02"),  # START_STREAMING too long
        (b"\x03\x07", b"\xff\x03\x03"),  # reserved rate code
        (b"\x04\x06", b"\xff\x04\x04"),  # reserved range code
        (b"\x03\x05", b"\x80\x03"),
        (b"\x04\x02", b"\x80\x04"),
        (b"\x02", b"\x80\x02"),
        (b"\x05\x2a" + (123456789).to_bytes(8, "little"),
         b"\x85\x2a" + (123456789).to_bytes(8, "little") + (1_000_000).to_bytes(4, "little")),
    ],
)
def test_control_replies_follow_the_protocol_table(written: bytes, reply: bytes) -> None:
    async def main() -> Any:
        # A clock frozen at the fake's creation: the time-sync reply carries exactly the configured offset.
        p = FakePeripheral(SID, clock_offset_us=1_000_000, clock=lambda: 50.0)
        radio, client, _data, control = await _connected(p)
        await client.write_gatt_char(CONTROL_CHAR_UUID, written, response=True)
        await asyncio.sleep(0.01)
        await client.disconnect()
        await radio.close()
        return p, control

    p, control = run(main())
    assert p.control_writes == [written]
    assert control == [reply]


def test_info_record_and_data_layout_follow_the_mtu() -> None:
    async def main() -> Any:
        out = {}
        for mtu, source in ((23, StillSource()), (23, RotatingSource()), (47, RotatingSource()), (247, StillSource())):
            p = FakePeripheral(SID, source=source, mtu=mtu, rate_code=3, range_code=2, battery_percent=55)
            radio, client, data, _control = await _connected(p)
            info = await client.read_gatt_char(INFO_CHAR_UUID)
            await client.write_gatt_char(CONTROL_CHAR_UUID, b"\x01", response=True)
            await asyncio.sleep(0.25)
            await client.disconnect()
            await radio.close()
            out[(mtu, source.has_mag)] = (bytes(info), data, p)
        return out

    out = run(main())
    for (mtu, mag_source), (info_bytes, data, p) in out.items():
        info = decode_info(info_bytes)
        assert info_bytes == encode_info(p.info())
        assert (info.sensor_id, info.battery_percent, info.rate_code, info.range_code) == (SID, 55, 3, 2)
        packets = [decode_packet(d) for d in data]
        assert packets, f"no data at MTU {mtu}"
        assert all(len(d) <= mtu - 3 for d in data)
        # 9-axis needs MTU >= 29: at 23 the magnetometer sensor streams 6-axis and says so.
        assert info.has_mag == (mag_source and mtu >= 29)
        assert {pk.has_mag for pk in packets} == {info.has_mag}
        expected_n = {23: 1, 47: 2 if mag_source else 3, 247: 5}[mtu]  # 5 = 50 ms at 100 Hz
        assert {pk.n_samples for pk in packets} == {expected_n}
        seqs = [pk.seq for pk in packets]
        assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(seqs))
        t = [pk.t_first_us for pk in packets]
        assert all(b - a == round(expected_n * 10_000) for a, b in itertools.pairwise(t))


def test_injected_loss_duplicates_and_random_loss_are_what_ingest_counts() -> None:
    async def main() -> Any:
        p = FakePeripheral(SID, samples_per_packet=2, loss=0.1, seed=5)
        radio, client, data, _control = await _connected(p)
        await client.write_gatt_char(CONTROL_CHAR_UUID, b"\x01", response=True)
        await asyncio.sleep(0.3)
        p.lose_next(3)
        p.duplicate_next(2)
        await asyncio.sleep(0.5)
        await client.write_gatt_char(CONTROL_CHAR_UUID, b"\x02", response=True)
        await asyncio.sleep(0.05)
        await client.disconnect()
        await radio.close()
        return p, data

    p, data = run(main())
    lost = [x for x in p.packets if x.reason == "lost"]
    assert len(lost) >= 3
    assert sum(x.duplicated for x in p.packets) == 2
    assert len(data) == len(p.delivered()) + 2
    ingest = Ingest()
    assemble([Notification(SID, i * 0.01, d) for i, d in enumerate(data)], ingest)
    st = ingest.stats()[SID]
    last_delivered = max(i for i, x in enumerate(p.packets) if x.delivered)
    assert st.packets_lost == sum(1 for x in p.packets[:last_delivered] if not x.delivered)
    assert st.duplicates == 2
    assert st.packets_received == len(p.delivered())


def test_array_source_replays_values_in_order_and_loops() -> None:
    acc = np.arange(30, dtype=float).reshape(10, 3)
    gyr = -acc / 100
    src = ArraySource(acc, gyr)
    a1, g1, m1 = src.take(7, 100.0)
    a2, _g2, _ = src.take(7, 100.0)
    assert m1 is None
    np.testing.assert_array_equal(a1, acc[:7])
    np.testing.assert_array_equal(g1, gyr[:7])
    np.testing.assert_array_equal(a2, acc[[7, 8, 9, 0, 1, 2, 3]])
    with pytest.raises(ValueError, match="ArraySource"):
        ArraySource(acc, gyr[:5])


def test_rotating_source_field_turns_with_the_gyro() -> None:
    src = RotatingSource(rate_rad_s=2.0, mag_earth_uT=(0.0, 20.0, -44.0))
    _acc, gyr, mag = src.take(100, 100.0)  # one second: 2 rad
    assert mag is not None
    heading = np.unwrap(np.arctan2(mag[:, 1], mag[:, 0]))
    # The field turns by -rate·t in the sensor frame while the gyro reads +rate about z.
    np.testing.assert_allclose(np.diff(heading), -gyr[1:, 2] / 100.0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(mag, axis=1), np.hypot(20.0, 44.0))
