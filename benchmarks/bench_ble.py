"""Cost of the BLE edge (not a test; run by hand).

    python benchmarks/bench_ble.py [seconds]

1. The data callback alone (stamp + Notification + put_nowait), per call: what every notification
   costs on the event loop before the consumer sees it.
2. End to end through bleak with fake sensors: N sensors at 400 Hz with one sample per packet
   (400 notifications/s each, the worst case the protocol allows with a 20-byte payload) stream
   for a few seconds while a consumer runs Ingest. Prints notifications delivered and received,
   queue drops, samples released and the process CPU time per notification (fake sensors
   included, so this overstates the hub's own share).
"""

from __future__ import annotations

import asyncio
import sys
import time

from sensorhub.ble import BleManager, ManagerConfig
from sensorhub.ble.backend import FoundSensor
from sensorhub.ble.fake import FakePeripheral, FakeRadio, RotatingSource
from sensorhub.ble.manager import _Link
from sensorhub.ingest import Ingest


def bench_callback(calls: int = 200_000) -> None:
    async def main() -> None:
        radio = FakeRadio([FakePeripheral("0000000000a1")])
        manager = BleManager(radio.backend(), ManagerConfig(queue_size=calls + 1))
        found = (await radio.backend().scan(0.0))[0]
        callback = manager._data_callback(_Link(FoundSensor(found.device, found.address, found.name)), "0000000000a1")
        payload = bytearray(20)
        t0 = time.perf_counter()
        for _ in range(calls):
            callback(None, payload)
        dt = time.perf_counter() - t0
        print(f"data callback: {dt / calls * 1e6:.2f} µs per notification ({calls / dt:,.0f} /s)")

    asyncio.run(main())


def bench_end_to_end(n_sensors: int, seconds: float) -> None:
    async def main() -> None:
        peripherals = [FakePeripheral(f"00000000{i:04x}", source=RotatingSource(), rate_code=6, samples_per_packet=1,
                                      seed=i) for i in range(n_sensors)]
        radio = FakeRadio(peripherals)
        manager = BleManager(radio.backend(), ManagerConfig(scan_timeout_s=0.05, time_sync_period_s=1.0))
        ingest = Ingest()
        await manager.start()
        await manager.wait_connected(10.0)
        received = samples = 0
        cpu0 = time.process_time()
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            try:
                note = await asyncio.wait_for(manager.notifications.get(), 0.1)
            except TimeoutError:
                continue
            received += 1
            samples += sum(len(b) for _, b in ingest.push(note))
        cpu = time.process_time() - cpu0
        await manager.stop()
        await radio.close()
        delivered = sum(len(p.delivered()) for p in peripherals)
        drops = sum(s.queue_drops for s in manager.status())
        print(f"{n_sensors} sensors x 400 notifications/s for {seconds:g} s: delivered {delivered}, "
              f"received {received}, queue drops {drops}, samples {samples}, "
              f"CPU {cpu / max(received, 1) * 1e6:.0f} µs per notification (fakes included), "
              f"{cpu / seconds * 100:.0f}% of one core")

    asyncio.run(main())


if __name__ == "__main__":
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    bench_callback()
    for n in (2, 4):
        bench_end_to_end(n, seconds)
