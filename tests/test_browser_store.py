"""The dashboard's state rules (dashboards/static/store.js), run as the ES module it is, in Chromium.

store.js is pure (no DOM, no Plotly): these tests feed it message sequences of docs/live-api.md and
check what the page would show — per-session reset, the compensation flag's life, LOST markers,
the calibration wizard's step, symmetry and the cap on queued frames.
"""

from __future__ import annotations

from typing import Any

import pytest
from browser_support import MockHub, chromium_page, require_browser

SCENARIOS_JS = """async () => {
  const m = await import('/static/store.js');
  const out = {};
  const key = 'a1/right';
  const info = (extra) => ({key, athlete: 'a1', athlete_name: 'Ana', side: 'right', session: 's1', drill: 'seated_rotation',
    state: 'streaming', calibrated: true, reps: 0, sensors: {pelvis: 'p1', thigh: 't1'}, targets: {internal: 35, external: 45}, ...extra});
  const frame = (extra) => ({type: 'frame', t: 0, streams: [{key, athlete: 'a1', side: 'right', session: 's1', t_s: 1,
    hip_rotation: 10, reps: 0, compensating: false, session_max_ir: null, session_max_er: null, ...extra}]});
  const rep = (index, compensation) => ({type: 'event', event: 'rep_completed', t: 0, key,
    rep: {index, compensation, score: 80, score_components: {}}});
  const hello = {type: 'hello', version: 1, drills: [], streams: [info()], status: {sensors: [], streams: [info()]}};

  // Compensation: set by a flagged rep, kept through frames, cleared by the next clean rep.
  let s = m.createStore();
  m.applyMessage(s, hello);
  const seen = [];
  const look = () => { const st = s.streams.get(key); seen.push([st.reps, st.compensating]); };
  m.applyMessage(s, rep(1, false)); look();
  m.applyMessage(s, rep(2, true));
  m.applyMessage(s, {type: 'event', event: 'compensation', t: 0, key, rep_index: 2, exceeded: ['pelvis_rotation'],
    change_deg: {pelvis_rotation: 9}, limit_deg: {pelvis_rotation: 6}}); look();
  m.applyMessage(s, frame({reps: 2, compensating: true, t_s: 2})); look();
  m.applyMessage(s, rep(3, false)); look();
  m.applyMessage(s, rep(4, true)); look();
  m.applyMessage(s, {type: 'event', event: 'session_stopped', t: 0, key, session: {id: 's1'}}); look();
  m.applyMessage(s, frame({reps: 4, compensating: true, t_s: 3})); look();  // a last frame of the ended session
  out.compensation = seen;
  out.stoppedEnded = s.streams.get(key).sessionEnded;

  // A new session (next replay pass) starts from zero: reps, last rep, latest frame.
  m.applyMessage(s, frame({session: 's2', reps: 0, t_s: 100}));
  const st2 = s.streams.get(key);
  out.newSession = {reps: st2.reps, lastRep: st2.lastRep, compensating: st2.compensating, ended: st2.sessionEnded, latest_t: st2.latest.t_s};

  // LOST: an event without a stream key finds the stream by sensor id; a status with lost=false clears it.
  s = m.createStore();
  m.applyMessage(s, hello);
  m.applyMessage(s, {type: 'event', event: 'sensor_lost', t: 0, key: null, sensor_id: 't1', segment: 'thigh', silent_s: 1.2});
  out.lostAfterEvent = [...s.streams.get(key).lostSensors.keys()];
  out.sensorRowLost = s.sensors.get('t1').lost;
  m.applyMessage(s, {type: 'status', t: 0, sensors: [{sensor_id: 't1', segment: 'thigh', lost: false, connected: true}], streams: []});
  out.lostAfterStatus = [...s.streams.get(key).lostSensors.keys()];

  // Calibration: a step event moves the wizard on before the next status; failure sets step "failed".
  s = m.createStore();
  m.applyMessage(s, {...hello, streams: [info({state: 'calibrating', calibration: {key, state: 'calibrating', step: 'still1', progress: 0.5, verdicts: []}})]});
  m.applyMessage(s, {type: 'event', event: 'calibration_step', t: 0, key, step: 'still1', ok: true, metrics: {}, advice: '', next_step: 'swings', prompt: 'swing'});
  let cal = s.streams.get(key).calibration;
  out.afterStep = [cal.step, cal.prompt, cal.progress, cal.verdicts.map((v) => [v.step, v.ok])];
  m.applyMessage(s, {type: 'event', event: 'calibration_failed', t: 0, key, advice: ['redo the swings']});
  cal = s.streams.get(key).calibration;
  out.afterFailed = [cal.step, cal.failedAdvice];

  // Symmetry: smaller / larger per direction, null until both sides have a value.
  out.sym = [m.symmetryOf(30, 40).pct, m.symmetryOf(40, 30).pct, m.symmetryOf(null, 30).pct, m.symmetryOf(0, 0).pct];

  // A hidden tab stops redraws: queued frames are capped, keeping the newest.
  s = m.createStore();
  m.applyMessage(s, hello);
  for (let i = 0; i < m.MAX_PENDING_FRAMES + 50; i++) m.applyMessage(s, frame({t_s: i}));
  const pending = s.streams.get(key).pending;
  out.pending = [pending.length, pending[0].t_s, pending[pending.length - 1].t_s, m.MAX_PENDING_FRAMES];
  return out;
}"""


@pytest.fixture(scope="module")
def scenarios() -> dict[str, Any]:
    sync_api = require_browser()
    with MockHub([], rate_hz=1.0) as hub, chromium_page(sync_api) as page:
        page.goto(hub.url + "static/format.js")  # any document of the origin: the module is imported by URL
        result: dict[str, Any] = page.evaluate(SCENARIOS_JS)
        assert [e for e in page.errors if e.startswith("pageerror")] == []
    return result


def test_compensation_flag_follows_the_last_completed_rep(scenarios: dict[str, Any]) -> None:
    assert scenarios["compensation"] == [[1, False], [2, True], [2, True], [3, False], [4, True], [4, False], [4, False]]
    assert scenarios["stoppedEnded"] is True


def test_a_new_session_starts_from_zero(scenarios: dict[str, Any]) -> None:
    assert scenarios["newSession"] == {"reps": 0, "lastRep": None, "compensating": False, "ended": False, "latest_t": 100}


def test_lost_sensor_found_by_id_and_cleared_by_status(scenarios: dict[str, Any]) -> None:
    assert scenarios["lostAfterEvent"] == ["thigh"]
    assert scenarios["sensorRowLost"] is True
    assert scenarios["lostAfterStatus"] == []


def test_calibration_events_move_the_wizard(scenarios: dict[str, Any]) -> None:
    assert scenarios["afterStep"] == ["swings", "swing", 0, [["still1", True]]]
    assert scenarios["afterFailed"] == ["failed", ["redo the swings"]]


def test_symmetry_and_frame_cap(scenarios: dict[str, Any]) -> None:
    assert scenarios["sym"] == [75.0, 75.0, None, None]
    cap = scenarios["pending"][3]
    assert scenarios["pending"] == [cap, 50, cap + 49, cap]
