"""BleManager against fake peripherals plugged in under bleak (BleakScanner/BleakClient run for real).

Each test streams for one to three seconds of real time; the fake's packets are recorded, so counts,
values and bytes are compared with what the fake actually sent, and the data goes through the same
Ingest a live session uses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from bleak.exc import BleakDBusError

from sensorhub.ble import (
    BackoffPolicy,
    BleakBleBackend,
    BleError,
    BleManager,
    CommandRefusedError,
    ManagerConfig,
    SensorEvent,
)
from sensorhub.ble.fake import (
    BLUEZ_IN_PROGRESS,
    FakeBleakScannerBackend,
    FakePeripheral,
    FakeRadio,
    RotatingSource,
    StillSource,
)
from sensorhub.ingest import Ingest, assemble
from sensorhub.notification import Notification
from sensorhub.protocol import (
    RANGE_CODES,
    SAMPLE_RATES_HZ,
    SetSampleRate,
    StopStreaming,
    decode_packet,
)

ID_A = "a1b2c3d4e5f6"
ID_B = "0102030405aa"

FAST = ManagerConfig(scan_timeout_s=0.05, time_sync_period_s=None, info_period_s=None,
                     backoff=BackoffPolicy(initial_s=0.1, max_s=0.4, jitter_s=0.05))
"""Short scan and backoff; no periodic exchanges, so the control writes are exactly the connect sequence."""


def run(coro_fn: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    return asyncio.run(coro_fn())


def drain(manager: BleManager) -> list[Notification]:
    out = []
    while not manager.notifications.empty():
        out.append(manager.notifications.get_nowait())
    return out


def session_clock() -> Callable[[], float]:
    t0 = time.monotonic()
    return lambda: time.monotonic() - t0


def test_fake_rejects_overlapping_connects_like_bluez() -> None:
    """The guard the serialisation test relies on: two concurrent connects -> org.bluez.Error.InProgress."""

    async def main() -> Any:
        radio = FakeRadio([FakePeripheral(ID_A), FakePeripheral(ID_B)])
        backend = radio.backend()
        found = await backend.scan(0.01)
        clients = [backend.client_for(f.device, lambda _c: None) for f in found]
        results = await asyncio.gather(*(c.connect() for c in clients), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert len(errors) == 1 and isinstance(errors[0], BleakDBusError)
        assert errors[0].dbus_error == BLUEZ_IN_PROGRESS
        for c in clients:
            await c.disconnect()

    run(main)


def test_two_sensors_connect_one_at_a_time_then_stream_in_parallel() -> None:
    async def main() -> Any:
        radio = FakeRadio([
            FakePeripheral(ID_A, source=RotatingSource(rate_rad_s=1.5), connect_delay_s=0.1, seed=1),
            FakePeripheral(ID_B, source=StillSource(acc_m_s2=(0.3, -0.2, 9.7), gyr_rad_s=(0.01, -0.02, 0.005)),
                           connect_delay_s=0.1, seed=2),
        ])
        events: list[SensorEvent] = []
        manager = BleManager(radio.backend(), FAST, clock=session_clock(), on_event=events.append)
        found = await manager.start()
        assert sorted(f.address for f in found) == sorted(radio.peripherals)  # the Polar H10 is filtered out
        assert sorted(await manager.wait_connected(5.0)) == sorted([ID_A, ID_B])
        await asyncio.sleep(1.0)
        await manager.stop()
        await radio.close()
        return radio, manager, events

    radio, manager, events = run(main)
    assert radio.scans == 1
    assert radio.max_concurrent_connects == 1
    spans = sorted((start, end) for _, start, end, ok in radio.connect_log if ok)
    assert len(spans) == 2 and spans[0][1] <= spans[1][0]
    assert [e.kind for e in events].count("connected") == 2

    notes = drain(manager)
    ingest = Ingest()
    samples = assemble(notes, ingest)
    stats = ingest.stats()
    t_by_sensor = {sid: [n.t_host_s for n in notes if n.sensor_id == sid] for sid in (ID_A, ID_B)}
    # In parallel: each sensor's notifications span (nearly) the same interval.
    assert abs(t_by_sensor[ID_A][0] - t_by_sensor[ID_B][0]) < 0.3
    assert abs(t_by_sensor[ID_A][-1] - t_by_sensor[ID_B][-1]) < 0.3

    for sid, fresh_source in ((ID_A, RotatingSource(rate_rad_s=1.5)),
                              (ID_B, StillSource(acc_m_s2=(0.3, -0.2, 9.7), gyr_rad_s=(0.01, -0.02, 0.005)))):
        peripheral = next(p for p in radio.peripherals.values() if p.sensor_id == sid)
        delivered = peripheral.delivered()
        n_sent = sum(decode_packet(p.payload).n_samples for p in delivered)
        assert 80 < n_sent < 130  # ~1 s at 100 Hz
        assert stats[sid].packets_received == len(delivered)
        assert stats[sid].packets_lost == 0 and stats[sid].duplicates == 0
        assert stats[sid].samples == n_sent == len(samples[sid])
        # Values: what the source produced, within the quantisation of the sensor's range.
        acc, gyr, mag = fresh_source.take(n_sent, 100.0)
        rng = RANGE_CODES[peripheral.range_code]
        np.testing.assert_allclose(samples[sid].acc_m_s2, acc, atol=0.51 * rng.acc_m_s2_per_lsb, rtol=0)
        np.testing.assert_allclose(samples[sid].gyr_rad_s, gyr, atol=0.51 * rng.gyr_rad_s_per_lsb, rtol=0)
        got_mag = samples[sid].mag_uT
        assert (got_mag is None) == (mag is None)
        if mag is not None and got_mag is not None:
            np.testing.assert_allclose(got_mag, mag, atol=0.076, rtol=0)  # half of 0.15 µT/count
        # Sample times on the hub clock: 10 ms apart, no gap.
        assert np.allclose(np.diff(samples[sid].t_s), 0.01, atol=1e-3)
        gap_before = samples[sid].gap_before
        assert gap_before is not None and not gap_before.any()


def test_disconnect_mid_set_reconnects_with_new_client_and_marks_exact_gap() -> None:
    async def main() -> Any:
        a = FakePeripheral(ID_A, seed=3)
        b = FakePeripheral(ID_B, seed=4)
        radio = FakeRadio([a, b])
        events: list[SensorEvent] = []
        manager = BleManager(radio.backend(), replace(FAST, rate_code=3, range_code=2),
                             clock=session_clock(), on_event=events.append)
        await manager.start()
        await manager.wait_connected(5.0)
        await asyncio.sleep(0.8)
        a.drop_connection(unavailable_for_s=0.3)  # out of range: the first reconnect attempt fails
        await asyncio.sleep(1.5)
        status = {s.sensor_id: s for s in manager.status()}
        await manager.stop()
        await radio.close()
        return a, b, manager, events, status

    a, _b, manager, events, status = run(main)
    kinds_a = [e.kind for e in events if e.sensor_id == ID_A and e.kind in ("connected", "lost", "back")]
    assert kinds_a == ["connected", "lost", "back"]
    assert not any(e.kind == "lost" for e in events if e.sensor_id == ID_B)
    assert status[ID_A].reconnects == 1 and status[ID_A].state == "connected"
    assert status[ID_B].reconnects == 0
    assert len(a.clients) == 2 and a.clients[0] is not a.clients[1]

    # The config is sent again on the reconnect: rate, range, start after each time-sync burst.
    writes = [w for w in a.control_writes if w[0] != 0x05]
    assert writes == [b"\x03\x03", b"\x04\x02", b"\x01"] * 2 + [b"\x02"]

    notes = drain(manager)
    ingest = Ingest()
    samples = assemble(notes, ingest)
    st = ingest.stats()

    delivered_idx = [i for i, p in enumerate(a.packets) if p.delivered]
    inside = a.packets[delivered_idx[0]:delivered_idx[-1] + 1]
    dropped = [p for p in inside if not p.delivered]
    assert dropped and all(p.reason in ("not connected", "not subscribed", "disconnected in flight") for p in dropped)
    # One contiguous outage, and the ingest counts exactly its packets as lost.
    first, last = inside.index(dropped[0]), inside.index(dropped[-1])
    assert last - first + 1 == len(dropped)
    assert st[ID_A].packets_lost == len(dropped)
    assert st[ID_A].gaps == 1 and st[ID_A].resets == 0
    assert st[ID_B].packets_lost == 0 and st[ID_B].gaps == 0
    # The gap in hub time is the outage: the dropped samples plus one period.
    s = samples[ID_A]
    assert s.gap_before is not None
    i_gap = int(np.flatnonzero(s.gap_before)[0])
    n_dropped_samples = sum(decode_packet(p.payload).n_samples for p in dropped)
    assert s.t_s[i_gap] - s.t_s[i_gap - 1] == pytest.approx((n_dropped_samples + 1) * 0.01, abs=0.003)
    assert 0.3 <= n_dropped_samples * 0.01 < 1.2  # at least the time out of range


def test_time_sync_measures_the_sensors_offset() -> None:
    offset_us = 1_234_567_890

    async def main() -> Any:
        clock = session_clock()
        p = FakePeripheral(ID_A, clock_offset_us=offset_us, link_latency_s=0.003, clock=clock)
        radio = FakeRadio([p])
        manager = BleManager(radio.backend(), FAST, clock=clock)
        await manager.start()
        await manager.wait_connected(5.0)
        on_connect = manager.status()[0].time_sync
        again = await manager.time_sync(ID_A, rounds=4)
        await manager.stop()
        await radio.close()
        expected = p.sensor_clock_us(1.0) - 1.0e6  # sensor µs minus host µs, constant without drift
        return on_connect, again, expected

    on_connect, again, expected = run(main)
    for result in (on_connect, again):
        assert result is not None
        assert 6000 <= result.round_trip_us < 100_000  # two 3 ms hops plus scheduling
        # The NTP bound: the midpoint estimate is off by at most half the round trip (plus µs rounding);
        # on an idle machine the round trip is ~6.3 ms and the error ~0.1 ms.
        assert abs(result.offset_us - expected) <= result.round_trip_us / 2 + 2
        assert abs(result.offset_us - expected) < 5000
    assert on_connect.rounds == 8 and again.rounds == 4


def test_control_commands_are_byte_exact_and_refusals_raise() -> None:
    async def main() -> Any:
        p = FakePeripheral(ID_A, rate_code=3, supported_rate_codes=(0, 1, 2, 3, 4, 5))
        radio = FakeRadio([p])
        manager = BleManager(radio.backend(), replace(FAST, rate_code=5, range_code=4), clock=session_clock())
        await manager.start()
        await manager.wait_connected(5.0)
        await asyncio.sleep(0.3)
        ack = await manager.send_command(ID_A, SetSampleRate(1))
        with pytest.raises(CommandRefusedError, match="UNKNOWN_RATE_CODE"):
            await manager.send_command(ID_A, SetSampleRate(6))  # 400 Hz: not supported by this sensor
        await asyncio.sleep(0.3)
        await manager.stop()
        await radio.close()
        return p, ack, drain(manager)

    p, ack, notes = run(main)
    assert ack.opcode == 0x03
    sync = p.control_writes[:8]
    assert [w[:2] for w in sync] == [bytes([0x05, token]) for token in range(1, 9)]
    assert all(len(w) == 10 for w in sync)
    host_us = [int.from_bytes(w[2:], "little") for w in sync]
    assert host_us == sorted(host_us) and host_us[0] > 0
    assert p.control_writes[8:] == [b"\x03\x05", b"\x04\x04", b"\x01", b"\x03\x01", b"\x03\x06", b"\x02"]
    assert p.control_replies[-3:] == [b"\x80\x03", b"\xff\x03\x03", b"\x80\x02"]  # ack, refusal, ack
    # The sensor obeyed: 200 Hz with range 4 first, then 50 Hz.
    codes = [(decode_packet(n.payload).rate_code, decode_packet(n.payload).range_code) for n in notes]
    assert codes[0] == (5, 4) and codes[-1] == (1, 4)
    assert set(codes) == {(5, 4), (1, 4)}


def test_info_and_battery_are_read_and_decoded() -> None:
    async def main() -> Any:
        with_mag = FakePeripheral(ID_A, source=RotatingSource(), firmware_version=(2, 3, 4), battery_percent=42,
                                  rate_code=5, range_code=3)
        small_mtu = FakePeripheral(ID_B, source=RotatingSource(), battery_percent=None, mtu=23)
        radio = FakeRadio([with_mag, small_mtu])
        manager = BleManager(radio.backend(), FAST, clock=session_clock())
        await manager.start()
        await manager.wait_connected(5.0)
        await asyncio.sleep(0.2)
        status = {s.sensor_id: s for s in manager.status()}
        infos = manager.sensor_info()
        await manager.stop()
        await radio.close()
        return status, infos, drain(manager)

    status, infos, notes = run(main)
    a, b = status[ID_A], status[ID_B]
    assert (a.firmware, a.battery_percent, a.has_mag, a.rate_hz, a.range_code, a.mtu) == ("2.3.4", 42, True, 200.0, 3, 247)
    # MTU 23 leaves 20 bytes: a 9-axis sample does not fit, so the sensor streams 6-axis (PROTOCOL.md 3.7).
    assert (b.battery_percent, b.has_mag, b.mtu, b.rate_hz) == (None, False, 23, SAMPLE_RATES_HZ[3])
    assert infos[ID_A].firmware_version == (2, 3, 4)
    sizes_b = {len(n.payload) for n in notes if n.sensor_id == ID_B}
    assert sizes_b == {20}
    assert {decode_packet(n.payload).n_samples for n in notes if n.sensor_id == ID_A} == {10}  # 50 ms at 200 Hz


def test_full_queue_drops_and_counts_instead_of_blocking() -> None:
    async def main() -> Any:
        p = FakePeripheral(ID_A, samples_per_packet=1)  # 100 notifications/s
        radio = FakeRadio([p])
        manager = BleManager(radio.backend(), replace(FAST, queue_size=10), clock=session_clock())
        await manager.start()
        await manager.wait_connected(5.0)
        await asyncio.sleep(0.5)  # nobody consumes
        await manager.stop()
        await radio.close()
        return p, manager

    p, manager = run(main)
    status = manager.status()[0]
    delivered = len(p.delivered())
    assert delivered > 30
    assert manager.notifications.qsize() == 10
    assert status.notifications == delivered
    assert status.queue_drops == manager.queue_drops == delivered - 10
    kept = drain(manager)
    assert [decode_packet(n.payload).seq for n in kept] == [x.seq for x in p.delivered()[:10]]


def test_wanted_ids_keep_only_those_sensors() -> None:
    async def main() -> Any:
        a, b = FakePeripheral(ID_A), FakePeripheral(ID_B)
        radio = FakeRadio([a, b])
        manager = BleManager(radio.backend(), FAST, clock=session_clock())
        await manager.start(wanted_ids={ID_B})
        connected = await manager.wait_connected(5.0)
        await asyncio.sleep(0.2)
        states = {s.sensor_id: s.state for s in manager.status()}
        a_connected = a.is_connected
        await manager.stop()
        await radio.close()
        return connected, states, a_connected, {n.sensor_id for n in drain(manager)}

    connected, states, a_connected, ids = run(main)
    assert connected == [ID_B]
    assert states == {ID_A: "ignored", ID_B: "connected"}
    assert not a_connected
    assert ids == {ID_B}


def test_sensor_reboot_is_a_reconnect_and_a_new_clock_epoch() -> None:
    async def main() -> Any:
        p = FakePeripheral(ID_A, seed=9)
        radio = FakeRadio([p])
        manager = BleManager(radio.backend(), FAST, clock=session_clock())
        await manager.start()
        await manager.wait_connected(5.0)
        await asyncio.sleep(0.4)
        p.reboot()
        await asyncio.sleep(0.9)
        await manager.stop()
        await radio.close()
        return p, manager

    p, manager = run(main)
    assert manager.status()[0].reconnects == 1
    assert {x.boot for x in p.delivered()} == {0, 1}
    ingest = Ingest()
    assemble(drain(manager), ingest)
    st = ingest.stats()[ID_A]
    assert st.resets == 1
    assert st.packets_received == len(p.delivered())


def test_refused_configuration_gives_up_instead_of_retrying_forever() -> None:
    async def main() -> Any:
        p = FakePeripheral(ID_A, supported_rate_codes=(0, 1, 2, 3))
        radio = FakeRadio([p])
        events: list[SensorEvent] = []
        manager = BleManager(radio.backend(), replace(FAST, rate_code=5), clock=session_clock(),
                             on_event=events.append)
        await manager.start()
        connected = await manager.wait_connected(5.0)
        await asyncio.sleep(0.3)  # a retry would have happened by now (backoff 0.1-0.15 s)
        status = manager.status()[0]
        await manager.stop()
        await radio.close()
        return connected, status, events, radio

    connected, status, events, radio = run(main)
    assert connected == []
    assert status.state == "failed" and "UNKNOWN_RATE_CODE" in (status.last_error or "")
    assert [e.kind for e in events if e.kind in ("connected", "failed")] == ["failed"]
    assert len(radio.connect_log) == 1


def test_stopped_sensor_stays_stopped_across_a_reconnect() -> None:
    async def main() -> Any:
        p = FakePeripheral(ID_A)
        radio = FakeRadio([p])
        manager = BleManager(radio.backend(), replace(FAST, silence_timeout_s=0.3), clock=session_clock())
        await manager.start()
        await manager.wait_connected(5.0)
        await asyncio.sleep(0.2)
        await manager.send_command(ID_A, StopStreaming())
        await manager.send_command(ID_A, SetSampleRate(1))
        await asyncio.sleep(0.6)  # silent, but stopped on purpose: the watchdog must not reconnect
        reconnects_while_stopped = manager.status()[0].reconnects
        p.drop_connection()
        await asyncio.sleep(0.5)
        status = manager.status()[0]
        n_streaming = p.streaming
        await manager.stop()
        await radio.close()
        return reconnects_while_stopped, status, n_streaming, p

    reconnects_while_stopped, status, streaming, p = run(main)
    assert reconnects_while_stopped == 0
    assert status.reconnects == 1 and status.state == "connected" and status.rate_hz == 50.0
    assert not streaming
    # start; stop and 50 Hz by hand; after the reconnect only the rate again (no start); stop at the end.
    assert [w for w in p.control_writes if w[0] != 0x05] == [b"\x01", b"\x02", b"\x03\x01", b"\x03\x01", b"\x02"]


def test_periodic_info_read_reports_battery_changes_and_time_sync_keeps_running() -> None:
    async def main() -> Any:
        p = FakePeripheral(ID_A, battery_percent=80)
        radio = FakeRadio([p])
        events: list[SensorEvent] = []
        manager = BleManager(radio.backend(), replace(FAST, info_period_s=0.2, time_sync_period_s=0.2),
                             clock=session_clock(), on_event=events.append)
        await manager.start()
        await manager.wait_connected(5.0)
        p.battery_percent = 79
        await asyncio.sleep(0.9)
        status = manager.status()[0]
        await manager.stop()
        await radio.close()
        return events, status

    events, status = run(main)
    battery = [e for e in events if e.kind == "battery"]
    assert [e.data["battery_percent"] for e in battery] == [79]
    assert status.battery_percent == 79
    assert sum(e.kind == "time_sync" for e in events) >= 3  # the burst on connect plus periodic round trips


def test_a_missing_bluetooth_stack_is_one_clear_error() -> None:
    class NoDbusScanner(FakeBleakScannerBackend):
        async def start(self) -> None:
            raise FileNotFoundError(2, "No such file or directory")  # what dbus-fast raises without a bus

    async def main() -> None:
        radio = FakeRadio([FakePeripheral(ID_A)])
        NoDbusScanner.radio = radio
        manager = BleManager(BleakBleBackend(scanner_backend=NoDbusScanner), FAST)
        with pytest.raises(BleError, match="BLE scan failed.*bluetoothd"):
            await manager.start()
        await manager.stop()

    run(main)
