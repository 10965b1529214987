"""How well the browser dashboard keeps up with 30 Hz frames from several streams.

Drives the real dashboard in headless Chromium (Debian's /usr/bin/chromium via Playwright) against
the scripted MockHub of tests/browser_support.py, for 1, 2 and 4 streams (4 = both hips of two
athletes) at 30 frame messages per second, and reads the page's own counters
(window.sensorhubDashboard.stats): redraws per second, time spent per redraw, how often each plot
was extended and with how many frames per extendTraces (1.0 = every frame drawn on its own).

Run: python benchmarks/bench_dashboard.py [seconds per case, default 8] [viewport width, default 1440]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from browser_support import MockHub, MockStream, chromium_page, require_browser

CASES = {
    1: [MockStream("ana", "Ana", "right", 40.0, 40.0, 40.0)],
    2: [MockStream("ana", "Ana", "right", 40.0, 40.0, 40.0), MockStream("ben", "Ben", "left", 30.0, 30.0, 44.0)],
    4: [
        MockStream("ana", "Ana", "left", 30.0, 30.0, 44.0),
        MockStream("ana", "Ana", "right", 40.0, 40.0, 40.0),
        MockStream("ben", "Ben", "left", 25.0, 33.5, 41.0),
        MockStream("ben", "Ben", "right", 35.0, 33.5, 45.0),
    ],
}


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 8.0
    width = int(sys.argv[2]) if len(sys.argv) > 2 else 1440
    sync_api = require_browser()
    print(f"{seconds:.0f} s per case, 30 frame messages/s, viewport {width} px")
    print("streams | msgs/s | redraws/s | ms/redraw (mean) | plot updates/s per stream | frames per extendTraces | chart ms per draw")
    for n, streams in CASES.items():
        with MockHub(streams, rate_hz=30.0) as hub, chromium_page(sync_api, width=width) as page:
            page.goto(hub.url)
            page.wait_for_function(f"document.querySelectorAll('.stream[data-t-s]').length === {n}", timeout=15_000)
            page.wait_for_timeout(1000)
            before = page.evaluate("({...window.sensorhubDashboard.stats})")
            page.wait_for_timeout(seconds * 1000)
            after = page.evaluate("({...window.sensorhubDashboard.stats})")
            assert page.errors == [], page.errors
        d = {k: after[k] - before[k] for k in after}
        print(
            f"{n:7d} | {d['messages'] / seconds:6.1f} | {d['renders'] / seconds:9.1f} | {d['renderMs'] / max(d['renders'], 1):16.1f} | "
            f"{d['plotDraws'] / seconds / n:25.1f} | {d['framesPlotted'] / max(d['plotDraws'], 1):23.2f} | "
            f"{d['chartMs'] / max(d['chartDraws'], 1):17.1f}"
        )


if __name__ == "__main__":
    main()
