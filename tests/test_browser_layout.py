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
  queued: window.sensorhubDashboard.store.streams.get(p.dataset.key).pending.length,
  frame_messages: window.sensorhubDashboard.store.counts.frame,
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
        page.wait_for_timeout(2000)
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
        page.set_viewport_size({"width": 1440, "height": 1000})

        # The hub drops the page as a slow client (close code 1008): it must reconnect by itself.
        t_before = {p["key"]: p["t_s"] for p in page.evaluate(PANELS_JS)}
        hub.drop_clients()
        page.wait_for_function("window.sensorhubDashboard.store.counts.hello >= 2", timeout=10_000)
        page.wait_for_timeout(400)
        out["reconnect"] = {
            "connections": hub.connections,
            "connection": page.evaluate("document.querySelector('#connection').dataset.state"),
            "t_before": t_before,
            "t_after": {p["key"]: p["t_s"] for p in page.evaluate(PANELS_JS)},
        }

        # Ben's right hip: the guided calibration fails at the swings.
        hub.inject(*_failed_calibration("ben/right"))
        panel = '.stream[data-key="ben/right"]'
        page.wait_for_selector(f"{panel} .cal-verdict.failed", timeout=5000)
        screenshot(page, "browser_calibration_failed")
        out["failed"] = page.evaluate(CALIBRATION_JS, panel)
        page.click(f"{panel} button[data-action=recalibrate]")
        page.wait_for_selector(f"{panel} .cal-step.active[data-step=still1]", timeout=5000)
        out["restarted"] = page.evaluate(CALIBRATION_JS, panel)
        out["calibration_starts"] = list(hub.calibration_starts)
        out["errors"] = list(page.errors)
    return out


SWINGS_ADVICE = "only 2 swings detected: swing the leg forward and back 5 times"
STRAP_ADVICE = "check that the thigh strap is tight"

CALIBRATION_JS = """(panel) => {
  const box = document.querySelector(panel + ' .calibration');
  return {
    steps: [...box.querySelectorAll('.cal-step')].map((li) => [li.dataset.step, li.classList[1]]),
    redo: [...box.querySelectorAll('.cal-redo li')].map((li) => [li.dataset.step, li.textContent.trim()]),
    prompt: box.querySelector('.cal-now .cal-prompt')?.textContent.trim() ?? null,
    footer: box.querySelector('.cal-verdict')?.textContent.replace(/\\s+/g, ' ').trim() ?? '',
  };
}"""


def _failed_calibration(key: str) -> list[dict[str, Any]]:
    """Messages of docs/live-api.md for a protocol that fails at its second step."""
    stream = next(s for s in STREAMS if s.key == key).info()
    still1 = {"step": "still1", "ok": True, "metrics": {"duration_s": 3.1}, "advice": ""}
    calibrating = {"key": key, "state": "calibrating", "step": "swings", "progress": 0.4,
                   "prompt": "swing the measured leg forward and back 5 times", "verdicts": [still1], "result": None}
    return [
        {"type": "status", "t": 0.0, "streams": [{**stream, "state": "calibrating", "calibrated": False, "calibration": calibrating}]},
        {"type": "event", "event": "calibration_step", "t": 0.0, "key": key, "step": "swings", "ok": False,
         "metrics": {"count": 2.0}, "advice": SWINGS_ADVICE, "next_step": "failed", "prompt": "calibration failed"},
        {"type": "event", "event": "calibration_failed", "t": 0.0, "key": key, "advice": [SWINGS_ADVICE, STRAP_ADVICE]},
    ]


def test_every_panel_keeps_up(two_athletes: dict[str, Any]) -> None:
    assert two_athletes["errors"] == []
    laptop = two_athletes["laptop"]
    assert sorted(p["key"] for p in laptop) == sorted(s.key for s in STREAMS)
    first = {p["key"]: p for p in two_athletes["first"]}
    for panel in laptop:
        assert panel["t_s"] - first[panel["key"]]["t_s"] > 1.5
        # Every frame message carries all four streams; each one is on the plot or queued for the
        # next draw of that panel: nothing is dropped, however coarse the batches get.
        assert panel["points"] + panel["queued"] == panel["frame_messages"]
        assert panel["points"] - first[panel["key"]]["points"] > 20
    stats = two_athletes["stats"]
    # Unbatched rendering would redraw once per stream per message (4x the messages here); batched
    # rendering is one pass per animation frame, plus the passes that finish charts left over by the
    # frame budget or land a rate-limited gauge update, which on a fast machine can outnumber messages.
    assert stats["renders"] < 2 * stats["messages"] + 10, "redraws per stream per message: rendering is not batched"


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
    by_athlete: dict[str, dict[str, MockStream]] = {s.athlete_name: {} for s in STREAMS}
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


def test_reconnects_after_the_hub_drops_it(two_athletes: dict[str, Any]) -> None:
    r = two_athletes["reconnect"]
    assert r["connections"] == 2
    assert r["connection"] == "open"
    for key, t_s in r["t_before"].items():
        assert r["t_after"][key] > t_s, f"{key} did not move on after the reconnect"


def test_failed_calibration_says_what_to_redo_and_restarts(two_athletes: dict[str, Any]) -> None:
    failed = two_athletes["failed"]
    assert failed["steps"] == [["still1", "ok"], ["swings", "redo"], ["bows", "pending"], ["still2", "pending"]]
    assert failed["redo"] == [["swings", f"✗ Redo Leg swings: {SWINGS_ADVICE}"]]
    assert failed["prompt"] is None  # nothing to do now but restart
    assert "Calibration failed" in failed["footer"] and STRAP_ADVICE in failed["footer"]
    assert SWINGS_ADVICE not in failed["footer"]  # already listed with its step
    assert two_athletes["calibration_starts"] == [{"key": "ben/right"}]
    restarted = two_athletes["restarted"]
    assert restarted["steps"] == [["still1", "active"], ["swings", "pending"], ["bows", "pending"], ["still2", "pending"]]
    assert restarted["prompt"] == "Stand still: stand still (3 s)"
    assert restarted["redo"] == [] and restarted["footer"] == ""
