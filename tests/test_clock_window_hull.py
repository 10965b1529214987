"""``WindowHullClockMapper`` (incremental lower hull, used by the batch ingest) equals ``ClockMapper``.

The hull of the sliding window is kept up to date instead of rebuilt per bin; in exact arithmetic
that is the same hull. These streams make the floating-point case hard on purpose: receive times
quantised to 1 ms (many exactly collinear bin minima), delays of exactly zero, pauses longer than
the window, reboots, and windows of a few bins as well as the default 60 s.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from sensorhub.clock import ClockMapper, ClockMapperConfig, WindowHullClockMapper


@pytest.fixture(autouse=True)
def _quiet() -> None:
    logging.getLogger("sensorhub.clock").setLevel(logging.ERROR)  # clamped-drift warnings by design


@pytest.mark.parametrize("seed", range(12))
def test_incremental_hull_gives_the_same_estimates_and_times(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cfg = ClockMapperConfig(window_s=float(rng.choice([5.0, 10.0, 60.0])), bin_s=float(rng.choice([0.25, 0.5, 1.0])))
    online, kept = ClockMapper(cfg), WindowHullClockMapper(cfg)
    drift = rng.normal(0.0, 80e-6)
    quantise = seed % 2 == 0
    t_sensor, fits = 0.0, 0
    for _ in range(3000):
        t_sensor += 0.06 if rng.random() > 0.005 else float(rng.uniform(1.0, 90.0))  # now and then a pause
        delay = float(rng.exponential(0.01)) if rng.random() < 0.6 else float(rng.choice([0.0, 0.0075, 0.015]))
        t_host = 1000.0 + t_sensor * (1.0 + drift) + delay
        x = t_sensor
        if quantise:
            t_host, x = round(t_host, 3), round(t_sensor, 3)
        if rng.random() < 0.001:
            online.reanchor()
            kept.reanchor()
        online.observe(x, t_host)
        kept.observe(x, t_host)
        assert kept.estimate == online.estimate
        fits += online.estimate.n_bins > 0
        t_query = np.array([x - 0.05, x])
        assert np.array_equal(kept.to_host(t_query), online.to_host(t_query))
    assert fits > 1000  # the drift was fitted, not just the prior used
