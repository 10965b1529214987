// One measured hip ("<athlete>/<side>" stream) on the live page: gauge, rolling plot, reps, alerts
// and the calibration wizard.
//
// A panel never talks to the network. `render(store)` (text, banners, wizard: cheap DOM writes) runs
// at most once per animation frame; `drawCharts()` (Plotly) runs when the page's per-frame budget
// allows and puts every frame received since its last call on the plot with one extendTraces, plus
// at most one gauge restyle per 100 ms.

import { COLOURS, PELVIS_AXES, SIDE_LABEL, deg, esc, num, rotationParts } from "./format.js";
import { sessionRange, takePending, targetsOf } from "./store.js";

/** Seconds of session time the rolling plot shows. */
export const WINDOW_S = 20;
/** Points kept per trace: 20 s at 30 Hz with margin (older points are outside the window anyway). */
const MAX_POINTS = 900;
/** A hole of more than this many seconds of session time between two frames breaks the lines. */
const BREAK_AFTER_S = 2.0;
/** Below this change (degrees) the gauge is not redrawn. */
const GAUGE_STEP_DEG = 1.0;
/**
 * The gauge is redrawn at most every this many ms (10 Hz): a Plotly restyle costs about as much as
 * half a plot update, and the large numeral beside it already changes with every frame.
 */
const GAUGE_INTERVAL_MS = 100;

const CALIBRATION_STEPS = [
  { step: "still1", title: "Stand still", prompt: "stand still, feet hip-width apart" },
  { step: "swings", title: "Leg swings", prompt: "swing the measured leg forward and back" },
  { step: "bows", title: "Bows", prompt: "bow forward from the hips and come back up" },
  { step: "still2", title: "Stand still", prompt: "stand still again" },
];

// Static plots: no hover or zoom machinery to update on every redraw (nothing to hover on a live view).
const PLOT_CONFIG = { displayModeBar: false, responsive: true, staticPlot: true };

function gaugeRange(targets) {
  const ir = targets.internal ?? 35;
  const er = targets.external ?? 45;
  const span = (t) => Math.max(30, Math.ceil((t + 15) / 15) * 15);
  return [-span(er), span(ir)];
}

/** Ticks every 15° labelled with magnitudes (the axis title says which way is internal). */
function rotationTicks(targets) {
  const [lo, hi] = gaugeRange(targets);
  const tickvals = [];
  for (let v = lo; v <= hi; v += 15) tickvals.push(v);
  const ticktext = tickvals.map((v) => String(Math.abs(v)));
  return { tickvals, ticktext };
}

export class StreamPanel {
  /** @param {string} key stream key; @param {{startCalibration: (key: string) => Promise<void>}} actions */
  constructor(key, actions, calibrationSteps = CALIBRATION_STEPS) {
    this.key = key;
    this.actions = actions;
    this.calibrationSteps = calibrationSteps;
    this.el = document.createElement("section");
    this.el.className = "stream";
    this.el.dataset.key = key;
    this.el.innerHTML = `
      <header class="stream-head">
        <h2><span class="athlete"></span> <span class="side"></span></h2>
        <span class="drill"></span>
        <span class="state-badge"></span>
        <span class="sensor-badges"></span>
      </header>
      <div class="banner alert-banner" role="alert" hidden>
        <span class="banner-icon" aria-hidden="true">⚠</span>
        <span class="banner-text"><strong>PELVIS COMPENSATION</strong> <span class="alert-detail"></span></span>
      </div>
      <div class="banner lost-banner" role="alert" hidden>
        <span class="banner-icon" aria-hidden="true">✗</span>
        <span class="banner-text"><strong class="lost-title"></strong> <span class="lost-detail"></span></span>
      </div>
      <div class="calibration" hidden></div>
      <div class="stream-body">
        <div class="gauge-col">
          <div class="gauge" aria-hidden="true"></div>
          <div class="now" aria-live="off">
            <span class="now-value">—</span><span class="now-unit">°</span><span class="now-dir"></span>
          </div>
          <div class="range">
            <div class="range-item ir"><span class="label">Max IR</span><span class="value max-ir">—</span><span class="target target-ir"></span></div>
            <div class="range-item er"><span class="label">Max ER</span><span class="value max-er">—</span><span class="target target-er"></span></div>
          </div>
        </div>
        <div class="plot"></div>
      </div>
      <footer class="stream-foot">
        <div class="reps"><span class="label">Reps</span><span class="rep-count">0</span></div>
        <details class="score">
          <summary><span class="label">Last rep</span> <span class="score-value">—</span><span class="score-unit">/100</span></summary>
          <div class="score-detail"></div>
        </details>
        <div class="incomplete" hidden></div>
      </footer>`;
    this.q = (sel) => this.el.querySelector(sel);
    this.gaugeEl = this.q(".gauge");
    this.plotEl = this.q(".plot");
    this.q(".calibration").addEventListener("click", (ev) => {
      const button = ev.target.closest("button[data-action=recalibrate]");
      if (!button) return;
      // Mid-session a stray tap would stop the angles: ask first (not after a failed protocol).
      const streaming = this.stream?.info?.state === "streaming" && !this.stream?.sessionEnded;
      if (streaming && !window.confirm(`Restart the calibration of ${this.key}? Angles stop until the protocol is done.`)) return;
      button.disabled = true;
      this.actions.startCalibration(this.key).finally(() => (button.disabled = false));
    });
    this.plotsReady = false;
    this.plottedSession = undefined;
    this.lastPlottedT = null;
    this.gaugeDrawnAt = -Infinity;
    this.gaugeDeferred = false; // a gauge update waits for GAUGE_INTERVAL_MS
    this.drawn = { value: undefined, steps: "", targets: "", repIndex: null, calibration: "", sensors: "" };
  }

  /** Create the Plotly figures (needs the element in the document to size them). */
  initPlots(targets) {
    const [lo, hi] = gaugeRange(targets);
    const tickvals = [];
    for (let v = lo; v <= hi; v += 15) tickvals.push(v);
    Plotly.newPlot(
      this.gaugeEl,
      [
        {
          type: "indicator",
          mode: "gauge",
          value: 0,
          gauge: {
            shape: "angular",
            axis: {
              range: [lo, hi],
              tickvals,
              ticktext: tickvals.map((v) => String(Math.abs(v))),
              tickfont: { size: 16, color: COLOURS.text },
              tickcolor: COLOURS.muted,
            },
            bar: { color: "rgba(0,0,0,0)", thickness: 0 },
            bgcolor: "#222C38",
            borderwidth: 0,
            steps: this.gaugeSteps(targets, { internal: null, external: null }),
            threshold: { value: 0, thickness: 1, line: { color: COLOURS.text, width: 8 } },
          },
        },
      ],
      {
        margin: { t: 24, b: 14, l: 40, r: 40 },
        paper_bgcolor: "rgba(0,0,0,0)",
        font: { color: COLOURS.text, family: "inherit" },
        height: 200,
      },
      PLOT_CONFIG,
    );

    const traces = [
      { name: "hip rotation", line: { color: COLOURS.text, width: 3 }, yaxis: "y", showlegend: false },
      { name: "tilt", line: { color: COLOURS.tilt, width: 2 }, yaxis: "y2" },
      { name: "obliquity", line: { color: COLOURS.obliquity, width: 2, dash: "dot" }, yaxis: "y2" },
      { name: "rotation", line: { color: COLOURS.rotation, width: 2 }, yaxis: "y2" },
    ].map((t) => ({ ...t, type: "scatter", mode: "lines", x: [], y: [], hoverinfo: "skip", connectgaps: false }));
    const ir = targets.internal;
    const er = targets.external;
    const shapes = [];
    const annotations = [];
    if (ir != null) {
      shapes.push(this.targetLine(ir, COLOURS.internal));
      annotations.push(this.targetLabel(ir, `IR target ${ir}°`, COLOURS.internal));
    }
    if (er != null) {
      shapes.push(this.targetLine(-er, COLOURS.external));
      annotations.push(this.targetLabel(-er, `ER target ${er}°`, COLOURS.external));
    }
    shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, yref: "y", y0: 0, y1: 0, line: { color: COLOURS.muted, width: 1 } });
    Plotly.newPlot(
      this.plotEl,
      traces,
      {
        height: 330,
        margin: { t: 8, b: 36, l: 52, r: 12 },
        paper_bgcolor: "rgba(0,0,0,0)",
        plot_bgcolor: "rgba(0,0,0,0)",
        font: { color: COLOURS.text, size: 14, family: "inherit" },
        showlegend: true,
        legend: { orientation: "h", x: 1, xanchor: "right", y: 0.27, yanchor: "bottom", font: { size: 13 }, bgcolor: "rgba(0,0,0,0)" },
        xaxis: { range: [-WINDOW_S, 0], anchor: "y2", title: { text: "session time (s)", standoff: 4 }, gridcolor: COLOURS.grid, zeroline: false },
        yaxis: { domain: [0.42, 1], range: gaugeRange(targets), title: { text: "ER ↓ hip rot. (°) ↑ IR" }, gridcolor: COLOURS.grid, zeroline: false, ...rotationTicks(targets) },
        yaxis2: { domain: [0, 0.27], range: [-15, 15], title: { text: "pelvis (°)" }, gridcolor: COLOURS.grid, zeroline: true, zerolinecolor: COLOURS.muted },
        shapes,
        annotations,
      },
      PLOT_CONFIG,
    );
    this.plotsReady = true;
    this.drawn.targets = JSON.stringify(targets);
  }

  targetLine(y, colour) {
    return { type: "line", xref: "paper", x0: 0, x1: 1, yref: "y", y0: y, y1: y, line: { color: colour, width: 2, dash: "dash" } };
  }

  targetLabel(y, text, colour) {
    return { xref: "paper", x: 0.01, xanchor: "left", yref: "y", y, yanchor: y > 0 ? "bottom" : "top", text, showarrow: false, font: { color: colour, size: 13 } };
  }

  gaugeSteps(targets, range) {
    const steps = [];
    if (range.external != null) steps.push({ range: [-range.external, 0], color: "rgba(230,159,0,0.55)" });
    if (range.internal != null) steps.push({ range: [0, range.internal], color: "rgba(86,180,233,0.55)" });
    const mark = (v, colour) => ({ range: [v - 0.9, v + 0.9], color: colour });
    if (targets.internal != null) steps.push(mark(targets.internal, COLOURS.internal));
    if (targets.external != null) steps.push(mark(-targets.external, COLOURS.external));
    return steps;
  }

  /**
   * Update the panel's text from the store (cheap DOM writes). Chart work is left to `drawCharts`,
   * which the caller runs within its per-frame time budget.
   */
  render(store) {
    const stream = store.streams.get(this.key);
    if (!stream) return;
    this.stream = stream;
    this.targets = targetsOf(store, stream);
    if (this.plotsReady && JSON.stringify(this.targets) !== this.drawn.targets) {
      // Another drill with other targets: the axes, marks and target lines are built from them.
      Plotly.purge(this.plotEl);
      Plotly.purge(this.gaugeEl);
      this.plotsReady = false;
      this.plottedSession = undefined;
      this.drawn.value = undefined;
      this.drawn.steps = "";
    }
    if (!this.plotsReady) this.initPlots(this.targets);
    this.renderHead(store, stream);
    this.renderCalibration(stream);
    this.renderAlerts(stream);
    this.renderNumbers(stream, this.targets);
    this.renderReps(stream);
  }

  /** Whether the plot, or the gauge once its interval is over, has something to draw. */
  chartsDirty() {
    if (!this.stream) return false;
    if (this.stream.pending.length) return true;
    return performance.now() - this.gaugeDrawnAt >= GAUGE_INTERVAL_MS && this.gaugeUpdate(this.stream, this.targets) != null;
  }

  /**
   * Draw the Plotly charts: one gauge restyle (if the value moved) and one extendTraces.
   * Returns how many frames went onto the plot.
   */
  drawCharts() {
    if (!this.stream || !this.plotsReady) return 0;
    const update = this.gaugeUpdate(this.stream, this.targets);
    const now = performance.now();
    this.gaugeDeferred = Boolean(update) && now - this.gaugeDrawnAt < GAUGE_INTERVAL_MS;
    if (update && !this.gaugeDeferred) {
      this.gaugeDrawnAt = now;
      this.drawn.steps = update.stepsKey;
      if ("gauge.threshold.value" in update.restyle) this.drawn.value = update.value;
      Plotly.restyle(this.gaugeEl, update.restyle, [0]);
    }
    return this.renderPlot(this.stream);
  }

  renderHead(store, stream) {
    const info = stream.info ?? {};
    const side = info.side ?? stream.latest?.side ?? "";
    this.q(".athlete").textContent = info.athlete_name ?? info.athlete ?? stream.latest?.athlete ?? this.key;
    this.q(".side").textContent = `${SIDE_LABEL[side] ?? side} hip`;
    this.el.dataset.side = side;
    const drill = store.drills.get(info.drill);
    this.q(".drill").textContent = drill?.title ?? info.drill ?? "";
    const state = stream.sessionEnded ? "stopped" : info.state ?? (stream.latest ? "streaming" : "waiting");
    this.el.dataset.state = state;
    const badge = this.q(".state-badge");
    badge.textContent = state.replaceAll("_", " ");
    badge.dataset.state = state;

    const sensors = Object.entries(info.sensors ?? {});
    const sensorKey = JSON.stringify([sensors, [...stream.lostSensors.keys()]]);
    if (sensorKey !== this.drawn.sensors) {
      this.drawn.sensors = sensorKey;
      this.q(".sensor-badges").innerHTML = sensors
        .map(([segment, id]) => {
          const lost = stream.lostSensors.has(segment);
          return `<span class="sensor-badge ${lost ? "lost" : "ok"}" title="${esc(id)}">${esc(segment)} ${lost ? "LOST" : "✓"}</span>`;
        })
        .join("");
    }
  }

  renderAlerts(stream) {
    const alert = this.q(".alert-banner");
    const compensating = stream.compensating;
    this.el.classList.toggle("compensating", compensating);
    this.el.dataset.compensating = String(compensating);
    alert.hidden = !compensating;
    if (compensating) {
      const ev = stream.compensation;
      let detail = "on the last rep";
      if (ev) {
        const parts = (ev.exceeded ?? []).map((axis) => {
          const change = ev.change_deg?.[axis];
          const limit = ev.limit_deg?.[axis];
          return `${PELVIS_AXES[axis] ?? axis} ${deg(change)} (limit ${deg(limit)})`;
        });
        detail = `rep ${ev.rep_index ?? "?"}${parts.length ? ": " + parts.join(", ") : ""}`;
      }
      this.q(".alert-detail").textContent = `· ${detail}`;
    }

    const lost = [...stream.lostSensors.values()];
    const lostBanner = this.q(".lost-banner");
    lostBanner.hidden = lost.length === 0;
    this.el.classList.toggle("sensor-lost", lost.length > 0);
    this.el.dataset.lost = lost.map((e) => e.segment ?? e.sensor_id).join(",");
    if (lost.length) {
      this.q(".lost-title").textContent = `${lost.map((e) => (e.segment ?? e.sensor_id).toUpperCase()).join(" + ")} SENSOR LOST`;
      this.q(".lost-detail").textContent = `· ${lost.map((e) => e.sensor_id).join(", ")} — no data; angles paused`;
    }
  }

  renderNumbers(stream, targets) {
    const frame = stream.latest;
    const range = sessionRange(stream);
    const value = frame?.hip_rotation ?? null;
    const parts = rotationParts(value);
    const now = this.q(".now");
    this.q(".now-value").textContent = parts.magnitude;
    this.q(".now-dir").textContent = parts.direction;
    now.dataset.direction = parts.direction;
    now.classList.toggle("stale", value == null);
    now.classList.toggle("gap", Boolean(frame?.gap) && value != null); // next to lost data: less certain
    now.classList.toggle("empty", parts.direction === "" && parts.magnitude === "—");
    if (frame) {
      this.el.dataset.tS = String(frame.t_s);
      this.el.dataset.rotation = value == null ? "" : String(value);
    }
    this.q(".max-ir").textContent = deg(range.internal, 1);
    this.q(".max-er").textContent = deg(range.external, 1);
    this.q(".target-ir").textContent = targets.internal != null ? `target ${targets.internal}°` : "";
    this.q(".target-er").textContent = targets.external != null ? `target ${targets.external}°` : "";
    this.q(".range-item.ir").classList.toggle("reached", range.internal != null && targets.internal != null && range.internal >= targets.internal);
    this.q(".range-item.er").classList.toggle("reached", range.external != null && targets.external != null && range.external >= targets.external);
  }

  /** The gauge restyle needed to show the stream's current state, or null when it already does. */
  gaugeUpdate(stream, targets) {
    const range = sessionRange(stream);
    const value = stream.latest?.hip_rotation ?? null;
    const restyle = {};
    const stepsKey = JSON.stringify([range, targets]);
    if (stepsKey !== this.drawn.steps) restyle["gauge.steps"] = [this.gaugeSteps(targets, range)];
    const drawnValue = this.drawn.value;
    const moved = value == null ? drawnValue !== null : drawnValue == null || Math.abs(value - drawnValue) >= GAUGE_STEP_DEG;
    if (moved) {
      restyle["gauge.threshold.value"] = [value ?? 0];
      restyle["gauge.threshold.line.color"] = [value == null ? "rgba(0,0,0,0)" : COLOURS.text];
    }
    return Object.keys(restyle).length ? { restyle, stepsKey, value } : null;
  }

  renderPlot(stream) {
    let frames = takePending(stream);
    if (stream.session !== this.plottedSession) {
      // A new session (next replay pass, service restart): start from an empty plot.
      this.plottedSession = stream.session;
      this.lastPlottedT = null;
      Plotly.restyle(this.plotEl, { x: [[], [], [], []], y: [[], [], [], []] }, [0, 1, 2, 3]);
      frames = frames.filter((f) => f.session == null || f.session === stream.session);
    }
    if (!frames.length) return 0;
    // Where no frame came for a while (sensor lost, calibration between two sessions) the lines
    // must not bridge the hole: a point without values in between breaks them.
    const x = [];
    const rows = [];
    for (const f of frames) {
      if (this.lastPlottedT != null && f.t_s - this.lastPlottedT > BREAK_AFTER_S) {
        x.push((this.lastPlottedT + f.t_s) / 2);
        rows.push(null);
      }
      x.push(f.t_s);
      rows.push(f);
      this.lastPlottedT = f.t_s;
    }
    const field = (name) => rows.map((f) => (f ? f[name] ?? null : null));
    const tEnd = x[x.length - 1];
    // Set the window on the layout object before extending: extendTraces redraws once and picks
    // the new range up, instead of a second full redraw from a separate relayout call.
    this.plotEl.layout.xaxis.range = [tEnd - WINDOW_S, tEnd];
    this.plotEl.layout.xaxis.autorange = false;
    Plotly.extendTraces(
      this.plotEl,
      { x: [x, x, x, x], y: [field("hip_rotation"), field("pelvis_tilt"), field("pelvis_obliquity"), field("pelvis_rotation")] },
      [0, 1, 2, 3],
      MAX_POINTS,
    );
    return frames.length;
  }

  renderReps(stream) {
    this.q(".rep-count").textContent = String(stream.reps);
    this.el.dataset.reps = String(stream.reps);
    const rep = stream.lastRep;
    if (!rep && this.drawn.repIndex !== null) {
      // A new session: no rep scored yet.
      this.drawn.repIndex = null;
      const scoreEl = this.q(".score-value");
      scoreEl.textContent = "—";
      delete scoreEl.dataset.band;
      this.q(".score-detail").innerHTML = "";
      this.q(".score summary").title = "";
    }
    if (rep && rep.index !== this.drawn.repIndex) {
      this.drawn.repIndex = rep.index;
      const scoreEl = this.q(".score-value");
      scoreEl.textContent = num(rep.score);
      scoreEl.dataset.band = rep.score >= 80 ? "good" : rep.score >= 50 ? "fair" : "poor";
      const c = rep.score_components ?? {};
      const rows = [
        ["Range", c.range_points, c.range_quality],
        ["Hold", c.hold_points, c.hold_quality],
        ["Tempo", c.tempo_points, c.tempo_quality],
        ["Control", c.control_points, c.control_quality],
      ];
      const summary = this.q(".score summary");
      summary.title = rows.map(([name, pts]) => `${name} ${num(pts, 1)}`).join(" · ") + ` · compensation −${num(c.compensation_penalty, 1)}`;
      this.q(".score-detail").innerHTML = `
        <table>
          <caption>Rep ${esc(rep.index)}: IR ${deg(rep.peak_internal_rotation, 1)}, ER ${deg(rep.peak_external_rotation, 1)}, arc ${deg(rep.arc, 1)}${rep.compensation ? ", <strong>compensated</strong>" : ""}</caption>
          <thead><tr><th>component</th><th>points</th><th>quality</th></tr></thead>
          <tbody>
            ${rows.map(([name, pts, q]) => `<tr><td>${name}</td><td>${num(pts, 1)}</td><td>${q == null ? "—" : Math.round(100 * q) + " %"}</td></tr>`).join("")}
            <tr><td>Compensation penalty</td><td>−${num(c.compensation_penalty, 1)}</td><td></td></tr>
            <tr class="total"><td>Total</td><td>${num(c.total ?? rep.score, 1)}</td><td></td></tr>
          </tbody>
        </table>`;
    }
    const incomplete = this.q(".incomplete");
    const inc = stream.lastIncomplete;
    const showInc = inc && (!rep || (inc.t_end ?? 0) > (rep.t_end ?? 0));
    incomplete.hidden = !showInc;
    if (showInc) incomplete.textContent = `Last attempt not counted: ${inc.reason ?? "incomplete"}`;
  }

  renderCalibration(stream) {
    const info = stream.info ?? {};
    const cal = stream.calibration ?? info.calibration ?? null;
    const key = JSON.stringify([info.state, info.calibrated, cal, stream.calibrationLog.length]);
    if (key === this.drawn.calibration) return;
    this.drawn.calibration = key;
    const box = this.q(".calibration");
    const state = info.state;
    const result = cal?.result ?? null;
    // "failed": the protocol could not be evaluated (step "failed"); no angles until it is redone.
    const failed = cal?.step === "failed";
    // The calibration's own state counts too: a protocol restarted after the session ended runs on
    // a "stopped" stream.
    const active = !failed && (state === "calibrating" || state === "waiting_for_still" || cal?.state === "calibrating");
    this.el.classList.toggle("calibrating", active);
    box.hidden = false;

    if (!active && !failed) {
      // Angles are flowing. A result whose quality check failed is still applied by the hub;
      // say what to redo without hiding the live view.
      const lowQuality = result != null && result.ok === false;
      box.dataset.state = lowQuality ? "warning" : "done";
      const advice = lowQuality ? (result.advice ?? []).filter(Boolean) : [];
      const text = lowQuality
        ? `<span class="cal-warn">⚠ Calibration quality check failed — angles may be off.</span> <span class="cal-advice">${advice.map(esc).join(" ") || "Recalibrate."}</span>`
        : `<span class="cal-ok">${result?.ok || info.calibrated ? "✓ calibrated" : "not calibrated"}</span>`;
      box.innerHTML = `<div class="cal-compact">${text}<button type="button" data-action="recalibrate">Recalibrate</button></div>`;
      return;
    }
    box.dataset.state = failed ? "failed" : "active";
    if (state === "waiting_for_still") {
      box.innerHTML = `<div class="cal-prompt">Stored calibration applied — <strong>stand still for 1 s</strong> to set neutral.</div>`;
      return;
    }
    const verdicts = new Map((cal?.verdicts ?? []).map((v) => [v.step, v]));
    const current = cal?.step ?? null;
    const progress = Math.max(0, Math.min(1, cal?.progress ?? 0));
    // A stepper (icon and title per step) above one large area with what to do now.
    const stepper = this.calibrationSteps
      .map((s, i) => {
        const verdict = verdicts.get(s.step);
        const status = verdict ? (verdict.ok ? "ok" : "redo") : s.step === current ? "active" : "pending";
        const icon = { ok: "✓", redo: "✗", active: "▶", pending: String(i + 1) }[status];
        return `<li class="cal-step ${status}" data-step="${esc(s.step)}"><span class="cal-icon">${icon}</span><span class="cal-title">${esc(s.title)}</span></li>`;
      })
      .join("");
    const activeStep = this.calibrationSteps.find((s) => s.step === current && !verdicts.has(s.step));
    let now = "";
    if (activeStep) {
      const pctDone = Math.round(progress * 100);
      now = `<div class="cal-now"><div class="cal-prompt"><strong>${esc(activeStep.title)}:</strong> ${esc(cal?.prompt || activeStep.prompt)}</div>
        <div class="cal-progress" role="progressbar" aria-label="${esc(activeStep.title)}" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${pctDone}"><div style="width:${pctDone}%"></div></div></div>`;
    }
    const redo = this.calibrationSteps
      .filter((s) => verdicts.get(s.step)?.ok === false)
      .map((s) => `<li class="cal-advice" data-step="${esc(s.step)}">✗ Redo <strong>${esc(s.title)}</strong>: ${esc(verdicts.get(s.step).advice || "not accepted")}</li>`)
      .join("");
    let footer = "";
    if (failed) {
      // Step advice is listed above; advice the service gives without a step goes here.
      const stepAdvice = new Set([...verdicts.values()].map((v) => v.advice));
      const extra = (cal?.failedAdvice ?? []).filter((a) => a && !stepAdvice.has(a));
      footer = `<div class="cal-verdict failed"><strong>Calibration failed — no angles until it is redone.</strong>
        ${extra.map((a) => `<span>${esc(a)}</span>`).join(" ")}
        <button type="button" data-action="recalibrate">Restart calibration</button></div>`;
    }
    box.innerHTML = `<h3>Calibration</h3><ol class="cal-steps">${stepper}</ol>${now}${redo ? `<ul class="cal-redo">${redo}</ul>` : ""}${footer}`;
  }

  /** Plotly needs a resize call when the panel's width changes (layout switch, window resize). */
  resize() {
    if (!this.plotsReady) return;
    Plotly.Plots.resize(this.plotEl);
    Plotly.Plots.resize(this.gaugeEl);
  }

  destroy() {
    if (this.plotsReady) {
      Plotly.purge(this.plotEl);
      Plotly.purge(this.gaugeEl);
    }
    this.el.remove();
  }
}
