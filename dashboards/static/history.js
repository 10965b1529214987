// History tab: stored sessions, their reps and weekly trends, from the service's REST history
// endpoints (docs/live-api.md). Loaded when the tab is opened; errors are shown, never thrown.

import { apiFetch } from "./auth.js";
import { COLOURS, PELVIS_AXES, dateTime, deg, esc, num } from "./format.js";

async function getJson(path) {
  const response = await apiFetch(path, { headers: { Accept: "application/json" } });
  if (!response.ok) {
    let detail = response.statusText;
    try {
      detail = (await response.json()).detail ?? detail;
    } catch {
      /* body was not JSON */
    }
    throw new Error(`${path}: ${response.status} ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
  }
  return response.json();
}

export class HistoryView {
  /** @param {HTMLElement} root the history tab's container */
  constructor(root) {
    this.root = root;
    this.athleteSelect = root.querySelector("#history-athlete");
    this.drillSelect = root.querySelector("#history-drill");
    this.message = root.querySelector("#history-message");
    this.trendEl = root.querySelector("#history-trend");
    this.sessionsBody = root.querySelector("#history-sessions tbody");
    this.repsBox = root.querySelector("#history-reps");
    this.loaded = false;
    this.athleteSelect.addEventListener("change", () => this.loadAthlete(this.athleteSelect.value));
    this.drillSelect.addEventListener("change", () => this.loadTrend(this.athleteSelect.value, this.drillSelect.value));
    root.querySelector("#history-refresh").addEventListener("click", () => this.open());
    this.sessionsBody.addEventListener("click", (ev) => {
      const row = ev.target.closest("tr[data-session]");
      if (row) this.loadReps(row.dataset.session);
    });
    this.sessionsBody.addEventListener("keydown", (ev) => {
      const row = ev.target.closest("tr[data-session]");
      if (row && (ev.key === "Enter" || ev.key === " ")) {
        ev.preventDefault();
        this.loadReps(row.dataset.session);
      }
    });
  }

  say(text, isError = false) {
    this.message.textContent = text;
    this.message.classList.toggle("error", isError);
    this.message.hidden = !text;
  }

  /**
   * A session ended while this tab is open: show it once storage has it. Storage writes are
   * asynchronous, so reload a little later rather than at once.
   */
  sessionStopped() {
    if (this.root.hidden) return;
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => this.open(), 1500);
  }

  /** Called when the tab is shown; refreshes the athlete list. */
  async open() {
    try {
      const [athletes, known] = await Promise.all([getJson("/api/history/athletes"), getJson("/api/athletes").catch(() => [])]);
      const names = new Map(known.map((a) => [a.id, a.name]));
      const previous = this.athleteSelect.value;
      this.athleteSelect.innerHTML = athletes.map((a) => `<option value="${esc(a)}">${esc(names.get(a) ?? a)}</option>`).join("");
      if (!athletes.length) {
        this.say("No stored sessions yet.");
        return;
      }
      this.say("");
      const pick = athletes.includes(previous) ? previous : athletes[0];
      this.athleteSelect.value = pick;
      await this.loadAthlete(pick);
    } catch (err) {
      this.say(`History is not available: ${err.message}`, true);
    }
  }

  async loadAthlete(athlete) {
    if (!athlete) return;
    let sessions = [];
    try {
      sessions = await getJson(`/api/history/sessions?athlete=${encodeURIComponent(athlete)}`);
    } catch (err) {
      this.say(err.message, true);
    }
    this.renderSessions(sessions);
    this.repsBox.innerHTML = sessions.length ? `<p class="muted">Choose a session to see its reps.</p>` : "";
    // Trends are per drill (GET /api/history/trend needs one); newest session's drill first.
    const drills = [...new Set(sessions.slice().sort((a, b) => (b.started ?? 0) - (a.started ?? 0)).map((s) => s.drill))];
    const previous = this.drillSelect.value;
    this.drillSelect.innerHTML = drills.map((d) => `<option value="${esc(d)}">${esc(d)}</option>`).join("");
    if (!drills.length) return;
    this.drillSelect.value = drills.includes(previous) ? previous : drills[0];
    await this.loadTrend(athlete, this.drillSelect.value);
  }

  async loadTrend(athlete, drill) {
    try {
      const q = `athlete=${encodeURIComponent(athlete)}&drill=${encodeURIComponent(drill)}&weeks=12`;
      this.renderTrend(await getJson(`/api/history/trend?${q}`));
    } catch (err) {
      this.say(err.message, true);
    }
  }

  renderTrend(weeks) {
    // week_start: an ISO date ("2026-11-16") or unix seconds.
    const x = weeks.map((w) => (typeof w.week_start === "number" ? new Date(w.week_start * 1000) : w.week_start));
    const series = (side, key) => weeks.map((w) => w[side]?.[key] ?? null);
    const line = (name, y, colour, dash) => ({ type: "scatter", mode: "lines+markers", name, x, y, line: { color: colour, width: 3, dash }, marker: { size: 11, color: colour } });
    const WEEK_MS = 7 * 24 * 3600 * 1000;
    const traces = [
      line("left IR", series("left", "max_internal_rotation"), COLOURS.internal, "solid"),
      line("right IR", series("right", "max_internal_rotation"), COLOURS.internal, "dot"),
      line("left ER", series("left", "max_external_rotation"), COLOURS.external, "solid"),
      line("right ER", series("right", "max_external_rotation"), COLOURS.external, "dot"),
      { type: "bar", name: "compensated reps", x, y: weeks.map((w) => w.compensation_count ?? 0), yaxis: "y2", width: 0.6 * WEEK_MS, marker: { color: COLOURS.alert } },
    ];
    Plotly.react(
      this.trendEl,
      traces,
      {
        height: 360,
        margin: { t: 10, b: 50, l: 70, r: 20 },
        paper_bgcolor: "rgba(0,0,0,0)",
        plot_bgcolor: "rgba(0,0,0,0)",
        font: { color: COLOURS.text, size: 14 },
        legend: { orientation: "h", y: -0.18 },
        xaxis: { anchor: "y2", gridcolor: COLOURS.grid, type: "date", dtick: WEEK_MS, tickformat: "week of %d %b", ...(x.length === 1 ? { range: [new Date(new Date(x[0]).getTime() - WEEK_MS), new Date(new Date(x[0]).getTime() + WEEK_MS)] } : {}) },
        yaxis: { domain: [0.34, 1], title: { text: "best range (°)" }, gridcolor: COLOURS.grid, rangemode: "tozero" },
        yaxis2: { domain: [0, 0.24], title: { text: "compensated" }, gridcolor: COLOURS.grid, rangemode: "tozero", tickformat: "d" },
      },
      { displayModeBar: false, responsive: true },
    );
  }

  renderSessions(sessions) {
    this.sessionsBody.innerHTML = sessions.length
      ? sessions
          .map((s) => {
            const sum = s.summary ?? {};
            return `<tr data-session="${esc(s.id)}" tabindex="0">
              <td>${dateTime(s.started)}</td><td>${esc(s.side)}</td><td>${esc(s.drill)}</td>
              <td class="num">${num(sum.reps_count ?? s.reps)}</td>
              <td class="num">${deg(sum.internal?.max_deg, 1)}</td><td class="num">${deg(sum.external?.max_deg, 1)}</td>
              <td class="num">${num(sum.compensated_count)}</td><td class="num">${num(sum.mean_score)}</td></tr>`;
          })
          .join("")
      : `<tr><td colspan="8" class="muted">No sessions stored for this athlete.</td></tr>`;
  }

  async loadReps(sessionId) {
    try {
      const reps = await getJson(`/api/sessions/${encodeURIComponent(sessionId)}/reps`);
      this.repsBox.innerHTML = `<table class="data"><caption>Reps of session ${esc(sessionId.slice(0, 8))}</caption>
        <thead><tr><th>#</th><th class="num">IR</th><th class="num">ER</th><th class="num">arc</th><th class="num">score</th><th>compensation</th></tr></thead>
        <tbody>${reps
          .map(
            (r) => `<tr class="${r.compensation ? "compensated" : ""}"><td>${esc(r.index)}</td><td class="num">${deg(r.peak_internal_rotation, 1)}</td>
              <td class="num">${deg(r.peak_external_rotation, 1)}</td><td class="num">${deg(r.arc, 1)}</td><td class="num">${num(r.score)}</td>
              <td>${r.compensation ? `⚠ ${esc((r.compensation_detail?.exceeded ?? []).map((a) => PELVIS_AXES[a] ?? a).join(", ") || "yes")}` : "—"}</td></tr>`,
          )
          .join("")}</tbody></table>
        <p><a href="/api/sessions/${encodeURIComponent(sessionId)}/export.csv?what=reps">Download reps (CSV)</a></p>`;
    } catch (err) {
      this.repsBox.innerHTML = `<p class="error">${esc(err.message)}</p>`;
    }
  }
}
