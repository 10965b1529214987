// Entry point of the live dashboard: connects to /ws/live, keeps the store and redraws the page
// once per animation frame however many messages arrived in between.

import { apiFetch, goToLogin, tokenRejected } from "./auth.js";
import { COLOURS, deg, esc, num } from "./format.js";
import { HistoryView } from "./history.js";
import { LiveClient } from "./live-client.js";
import { renderSensors, renderStorage } from "./sensors.js";
import { applyMessage, createStore, symmetryPairs } from "./store.js";
import { StreamPanel } from "./stream-panel.js";

const STEP_TITLES = { still1: "Stand still", swings: "Leg swings", bows: "Bows", still2: "Stand still" };

const store = createStore();
const panels = new Map(); // stream key -> StreamPanel
const stats = { renders: 0, messages: 0, renderMs: 0, chartDraws: 0, chartMs: 0, plotDraws: 0, framesPlotted: 0 };
/** Milliseconds of a frame that chart redraws may take before the rest waits for the next frame. */
const CHART_BUDGET_MS = 10;
let chartCursor = 0;
let calibrationSteps; // from GET /api/calibration/steps; StreamPanel's defaults until then
let scheduled = false;

const $ = (sel) => document.querySelector(sel);

function schedule() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(render);
}

async function startCalibration(key) {
  try {
    const response = await apiFetch("/api/calibration/start", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ key }),
    });
    if (!response.ok) throw new Error(`${response.status} ${(await response.text()).slice(0, 200)}`);
    // Show the restarted protocol at once instead of waiting for the next status message.
    const stream = store.streams.get(key);
    if (stream) {
      stream.calibration = await response.json();
      stream.calibrationLog = [];
      store.dirty.streams.add(key);
      schedule();
    }
  } catch (err) {
    showToast(`Could not restart calibration of ${key}: ${err.message}`);
  }
}

function showToast(text) {
  const toast = $("#toast");
  toast.textContent = text;
  toast.hidden = false;
  clearTimeout(showToast.timer);
  showToast.timer = setTimeout(() => (toast.hidden = true), 6000);
}

function streamOrder(a, b) {
  const sa = store.streams.get(a);
  const sb = store.streams.get(b);
  const name = (s) => s?.info?.athlete_name ?? s?.info?.athlete ?? s?.key ?? "";
  const side = (s) => (s?.info?.side ?? s?.latest?.side) === "left" ? 0 : 1;
  return name(sa).localeCompare(name(sb)) || side(sa) - side(sb);
}

function renderLayout() {
  const container = $("#streams");
  for (const [key, panel] of panels) {
    if (!store.streams.has(key)) {
      panel.destroy();
      panels.delete(key);
    }
  }
  const keys = [...store.streams.keys()].sort(streamOrder);
  for (const key of keys) {
    if (!panels.has(key)) panels.set(key, new StreamPanel(key, { startCalibration }, calibrationSteps));
    container.appendChild(panels.get(key).el); // appendChild moves: keeps the sorted order
  }
  container.dataset.count = String(keys.length);
  $("#no-streams").hidden = keys.length > 0;
  requestAnimationFrame(() => panels.forEach((p) => p.resize()));
}

function renderSymmetry() {
  const pairs = symmetryPairs(store);
  const box = $("#symmetry");
  box.hidden = pairs.length === 0;
  if (!pairs.length) return;
  const cell = (s) => {
    const cls = s.pct == null ? "" : s.pct >= 90 ? "good" : s.pct >= 80 ? "fair" : "poor";
    return `<td class="num">${deg(s.left, 1)}</td><td class="num">${deg(s.right, 1)}</td>
      <td class="num sym ${cls}">${s.pct == null ? "—" : `${num(s.pct)} %`}</td>`;
  };
  box.innerHTML = `<h2>Left / right symmetry</h2>
    <table class="data"><thead><tr><th>athlete</th><th>direction</th><th>left</th><th>right</th><th>symmetry</th></tr></thead>
    <tbody>${pairs
      .map(
        (p) => `<tr><td rowspan="2">${esc(p.name)}</td><td>internal</td>${cell(p.internal)}</tr>
                <tr><td>external</td>${cell(p.external)}</tr>`,
      )
      .join("")}</tbody></table>
    <p class="muted">Symmetry = smaller session maximum ÷ larger × 100 (90 % and above shown as good).</p>`;
}

function renderHeader() {
  const conn = $("#connection");
  conn.dataset.state = store.connection;
  conn.textContent = { open: "live", connecting: "connecting…", closed: "disconnected", unauthorized: "token rejected" }[store.connection] ?? store.connection;
  $("#mode").textContent = store.server?.mode ? `mode: ${store.server.mode}` : "";
  renderStorage($("#storage"), store.storage);
  // The hub's count can be from just before this page joined; an open page counts itself.
  const screens = store.clients == null ? null : Math.max(store.clients, store.connection === "open" ? 1 : 0);
  $("#clients").textContent = screens == null ? "" : `${screens} screen${screens === 1 ? "" : "s"}`;
}

function render() {
  scheduled = false;
  const t0 = performance.now();
  const dirty = store.dirty;
  if (dirty.layout) {
    dirty.layout = false;
    renderLayout();
    dirty.streams = new Set(store.streams.keys());
  }
  if (dirty.header) {
    dirty.header = false;
    renderHeader();
  }
  if (dirty.streams.size) {
    for (const key of dirty.streams) panels.get(key)?.render(store);
    dirty.streams.clear();
    renderSymmetry();
  }
  if (dirty.sensors) {
    dirty.sensors = false;
    const names = new Map([...store.streams.values()].filter((s) => s.info).map((s) => [s.info.athlete, s.info.athlete_name ?? s.info.athlete]));
    renderSensors($("#sensors tbody"), store.sensors, names);
  }
  if (!$("#view-live").hidden && drawCharts(t0)) schedule();
  // A gauge update held back by its 10 Hz limit must still land when no further frame arrives.
  if ([...panels.values()].some((p) => p.gaugeDeferred)) {
    clearTimeout(render.gaugeTimer);
    render.gaugeTimer = setTimeout(schedule, 110);
  }
  stats.renders += 1;
  stats.renderMs += performance.now() - t0;
}

/**
 * Plotly redraws are the expensive part of a frame (several ms each on a tablet). Draw the panels'
 * charts round-robin until the frame's budget is spent (always at least one); a panel left out
 * keeps its frames queued and draws them all in one extendTraces on a later frame, so data is
 * never dropped, only batched more coarsely on a slow device.
 */
function drawCharts(t0) {
  const list = [...panels.values()];
  if (!list.length) return false;
  let drew = 0;
  let leftover = false;
  for (let i = 0; i < list.length; i++) {
    const panel = list[(chartCursor + i) % list.length];
    if (!panel.chartsDirty()) continue;
    if (drew > 0 && performance.now() - t0 > CHART_BUDGET_MS) {
      leftover = true;
      break;
    }
    const tc = performance.now();
    const plotted = panel.drawCharts();
    stats.chartMs += performance.now() - tc;
    stats.framesPlotted += plotted;
    if (plotted) stats.plotDraws += 1;
    stats.chartDraws += 1;
    drew += 1;
  }
  chartCursor = (chartCursor + 1) % list.length;
  return leftover;
}

async function loadCalibrationSteps() {
  try {
    const response = await apiFetch("/api/calibration/steps");
    if (!response.ok) return;
    const steps = await response.json();
    calibrationSteps = steps
      .slice()
      .sort((a, b) => (a.order ?? 0) - (b.order ?? 0))
      .map((s) => ({ step: s.step, title: STEP_TITLES[s.step] ?? s.step, prompt: s.prompt ?? "" }));
    panels.forEach((p) => (p.calibrationSteps = calibrationSteps));
  } catch {
    /* the built-in step list stays */
  }
}

function setupTabs(historyView) {
  const show = (name) => {
    document.querySelectorAll("[role=tab]").forEach((tab) => tab.setAttribute("aria-selected", String(tab.dataset.view === name)));
    document.querySelectorAll(".view").forEach((view) => (view.hidden = view.id !== `view-${name}`));
    if (name === "history") historyView.open();
    else requestAnimationFrame(() => panels.forEach((p) => p.resize()));
  };
  document.querySelectorAll("[role=tab]").forEach((tab) =>
    tab.addEventListener("click", () => {
      window.history.replaceState(null, "", `#${tab.dataset.view}`);
      show(tab.dataset.view);
    }),
  );
  show(location.hash === "#history" ? "history" : "live");
}

function main() {
  if (typeof Plotly === "undefined") {
    $("#fatal").hidden = false;
    $("#fatal").textContent = "plotly.js did not load (/vendor/plotly.min.js); the live charts cannot be drawn.";
    return;
  }
  document.documentElement.style.setProperty("--alert", COLOURS.alert);
  const historyView = new HistoryView($("#view-history"));
  setupTabs(historyView);
  loadCalibrationSteps();
  const url = new URLSearchParams(location.search).get("ws") ?? LiveClient.defaultUrl();
  const client = new LiveClient(url, {
    onMessage(message) {
      stats.messages += 1;
      applyMessage(store, message);
      if (message.type === "event" && message.event === "session_stopped") historyView.sessionStopped();
      schedule();
    },
    onState(state, detail) {
      store.connection = state;
      store.dirty.header = true;
      if (state === "closed" && detail) $("#connection").title = detail;
      if (state === "unauthorized") goToLogin();
      schedule();
    },
    tokenRejected: () => tokenRejected(),
  });
  client.start();
  window.addEventListener("resize", () => panels.forEach((p) => p.resize()));
  // For the browser tests and for looking inside from the devtools console.
  window.sensorhubDashboard = { store, stats, panels, client };
}

main();
