"""Ingest throughput and clock-mapping accuracy on simulated sessions (not a test; run by hand).

    python benchmarks/bench_ingest.py [n_sessions]

For each simulated session (seeds 0..n-1, 3 % loss, pelvis 100 Hz / thigh 120 Hz, 9-axis, the
simulator's BLE link model: connection intervals 7.5-45 ms, retries, host delay and stalls) it runs
all notifications through :func:`sensorhub.ingest.assemble` and reports

* throughput: notifications and samples per second of wall time (one core);
* clock mapping: the error of every released sample's hub time against the simulator's true sample
  time after the first 10 s (median, 95th percentile, max), next to the *oracle*: the least delay
  any packet of that sensor saw in the whole session, a bound no receive-time estimator can beat;
* drift: estimated minus true sensor clock drift (ppm);
* loss: packets lost as counted from sequence gaps vs packets the simulator dropped.
"""

from __future__ import annotations

import logging
import sys
import time

import numpy as np

from sensorhub.ingest import Ingest, assemble
from sensorhub.protocol import decode_packet, unwrap_time_us
from sensorhub.sim import SimConfig, simulate


def oracle_min_delay_s(sensor) -> float:  # type: ignore[no-untyped-def]
    """Least (receive time - true time of the packet's last sample) over the session."""
    clock = sensor.clock
    scale = 1.0 + clock.drift_ppm * 1e-6
    ref = None
    best = np.inf
    for note in sensor.link.notifications:
        p = decode_packet(note.payload)
        t_us = unwrap_time_us(ref, p.t_first_us)
        ref = t_us
        t_last_us = t_us + (p.n_samples - 1) * p.sample_period_us
        t_true = clock.t_on_s + (t_last_us - clock.start_us) * 1e-6 / scale
        best = min(best, note.t_host_s - t_true)
    return float(best)


def main(n_sessions: int = 4) -> None:
    logging.disable(logging.WARNING)
    total_notes = total_samples = 0
    total_s = 0.0
    print(f"{'session/sensor':<22} {'CI ms':>5} {'med ms':>7} {'p95 ms':>7} {'max ms':>7} {'oracle ms':>9}"
          f" {'drift err ppm':>13} {'lost/dropped':>12}")
    for seed in range(n_sessions):
        session = simulate(SimConfig(seed=seed, loss=0.03, rates_hz=(100.0, 120.0)))
        notes = session.notifications
        ingest = Ingest()
        t0 = time.perf_counter()
        data = assemble(notes, ingest)
        total_s += time.perf_counter() - t0
        total_notes += len(notes)
        total_samples += sum(len(s) for s in data.values())
        stats = ingest.stats()
        for seg, sensor in session.sensors.items():
            out = data[sensor.sensor_id]
            _, t_true = sensor.clock.sample_times(sensor.rate_hz, session.scenario.duration_s)
            idx = np.clip(np.searchsorted(t_true, out.t_s), 1, len(t_true) - 1)
            nearest = np.where(np.abs(t_true[idx] - out.t_s) < np.abs(t_true[idx - 1] - out.t_s), idx, idx - 1)
            err_ms = np.abs(out.t_s - t_true[nearest])[out.t_s > 10.0] * 1e3
            st = stats[sensor.sensor_id]
            # The simulator's sensor clock runs at (1 + d) of true time; the map's drift is hub seconds
            # per sensor second minus one, i.e. 1 / (1 + d) - 1.
            true_drift_ppm = (1.0 / (1.0 + sensor.clock.drift_ppm * 1e-6) - 1.0) * 1e6
            print(
                f"{seed}/{seg:<20} {sensor.link_config.conn_interval_s * 1e3:5.1f} {np.median(err_ms):7.2f}"
                f" {np.percentile(err_ms, 95):7.2f} {err_ms.max():7.2f} {oracle_min_delay_s(sensor) * 1e3:9.2f}"
                f" {st.drift_ppm - true_drift_ppm:13.1f} {st.packets_lost:>5}/{sensor.link.dropped:<6}"
            )
    print(f"\nthroughput: {total_notes / total_s:,.0f} notifications/s, {total_samples / total_s:,.0f} samples/s"
          f" ({total_notes} notifications in {total_s:.2f} s)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4)
