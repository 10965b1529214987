"""The dashboard with both sides of two athletes streaming at 30 Hz, in headless Chromium.

One replayed recording carries one hip, so this layout (four panels, left/right symmetry) is driven
by :class:`MockHub`, a scripted stand-in that speaks the same WebSocket contract
(docs/live-api.md). The real-service tests are in test_browser_live.py.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from browser_support import (
    MockHub,
    MockStream,
    chromium_page,
    require_browser,
    screenshot,
)

STREAMS = [
    MockStream("ana", "Ana", "left", amplitude_deg=30.0, session_max_ir=30.0, session_max_er=44.0),
    MockStream("ana", "Ana", "right", amplitude_deg=40.0, session_max_ir=40.0, session_max_er=40.0),
    MockStream("ben", "Ben", "left", amplitude_deg=25.0, session_max_ir=33.5, session_max_er=41.0),
    MockStream("ben", "Ben", "right", amplitude_deg=35.0, session_max_ir=33.5, session_max_er=45.0, period_s=4.0),
]

PANELS_JS = """() => [...document.querySelectorAll('.stream')].map((p) => ({
  key: p.dataset.key,
  side: p.dataset.side,
  t_s: Number(p.dataset.tS),
  points: p.querySelector('.plot').data[0].x.length,
  width: p.getBoundingClientRect().width,
  top: Math.round(p.getBoundingClientRect().top),
}))"""

SYMMETRY_JS = """() => [...document.querySelectorAll('#symmetry tbody tr')].map((r) => [...r.cells].map((c) => c.textContent.trim()))"""


@pytest.fixture(scope="module")
def two_athletes() -> dict[str, Any]:
    sync_api = require_browser()
    out: dict[str, Any] = {}
    with MockHub(STREAMS, rate_hz=30.0) as hub, chromium_page(sync_api) as page:
        page.goto(hub.url)
        page.wait_for_function("document.querySelectorAll('.stream[data-t-s]').length === 4", timeout=10_000)
        first = page.evaluate(PANELS_JS)
        page.wait_for_timeout(3000)
        out["laptop"] = page.evaluate(PANELS_JS)
        out["first"] = first
        out["symmetry"] = page.evaluate(SYMMETRY_JS)
        out["stats"] = page.evaluate("({...window.sensorhubDashboard.stats})")
        out["frames_sent"] = hub.frames_sent
        screenshot(page, "browser_two_athletes")
        page.set_viewport_size({"width": 820, "height": 1180})
        page.wait_for_timeout(500)
        out["tablet"] = page.evaluate(PANELS_JS)
        screenshot(page, "browser_two_athletes_tablet")
        out["errors"] = list(page.errors)
    return out


def test_every_panel_keeps_up(two_athletes: dict[str, Any]) -> None:
    assert two_athletes["errors"] == []
    laptop = two_athletes["laptop"]
    assert sorted(p["key"] for p in laptop) == sorted(s.key for s in STREAMS)
    first = {p["key"]: p for p in two_athletes["first"]}
    for panel in laptop:
        # 3 s at 30 Hz: about 90 new points per plot; every frame is drawn, possibly in batches.
        assert panel["t_s"] - first[panel["key"]]["t_s"] > 2.5
        assert panel["points"] - first[panel["key"]]["points"] >= 0.8 * 30 * (panel["t_s"] - first[panel["key"]]["t_s"])
    stats = two_athletes["stats"]
    assert stats["renders"] < stats["messages"] + 10, "more redraws than messages: rendering is not batched"


def test_panels_are_ordered_and_fit_laptop_and_tablet(two_athletes: dict[str, Any]) -> None:
    laptop = two_athletes["laptop"]
    assert [p["key"] for p in laptop] == ["ana/left", "ana/right", "ben/left", "ben/right"]
    # Laptop: left and right of one athlete side by side; tablet: one panel per row, full width.
    assert laptop[0]["top"] == laptop[1]["top"] and laptop[2]["top"] == laptop[3]["top"] > laptop[0]["top"]
    tablet = two_athletes["tablet"]
    assert len({p["top"] for p in tablet}) == 4
    assert all(p["width"] <= 820 for p in tablet)


def test_symmetry_is_smaller_over_larger_per_direction(two_athletes: dict[str, Any]) -> None:
    rows = two_athletes["symmetry"]
    by_athlete = {s.athlete_name: {} for s in STREAMS}
    for s in STREAMS:
        by_athlete[s.athlete_name][s.side] = s
    expected = []
    for name, sides in by_athlete.items():
        for direction, attr in (("internal", "session_max_ir"), ("external", "session_max_er")):
            left, right = getattr(sides["left"], attr), getattr(sides["right"], attr)
            pct = 100 * min(left, right) / max(left, right)
            expected.append((name, direction, f"{left:.1f}°", f"{right:.1f}°", f"{math.floor(pct + 0.5)} %"))
    shown = []
    name = ""
    for cells in rows:  # the athlete cell spans both direction rows
        if len(cells) == 5:
            name = cells[0]
        shown.append((name, *cells[-4:]))
    assert shown == expected
