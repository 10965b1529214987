// Sensor panel (connection, battery, loss, rate; LOST in plain words) and the storage indicator.

import { esc, num, pct } from "./format.js";

/** Rows ordered by athlete, side, then pelvis before thigh. */
function sortedSensors(sensors) {
  const order = { pelvis: 0, thigh: 1 };
  return [...sensors.values()].sort(
    (a, b) =>
      String(a.athlete ?? "").localeCompare(String(b.athlete ?? "")) ||
      String(a.side ?? "").localeCompare(String(b.side ?? "")) ||
      (order[a.segment] ?? 9) - (order[b.segment] ?? 9) ||
      String(a.sensor_id).localeCompare(String(b.sensor_id)),
  );
}

function statusOf(sensor) {
  if (sensor.lost) return { cls: "lost", text: "LOST" };
  if (sensor.connected === false) return { cls: "off", text: "disconnected" };
  return { cls: "ok", text: "connected" };
}

function batteryCell(value) {
  if (value == null) return `<td class="num muted">—</td>`;
  const low = value < 20;
  return `<td class="num${low ? " low" : ""}">${low ? "▼ " : ""}${num(value)} %</td>`;
}

function rateCell(sensor) {
  const rate = sensor.rate_hz;
  const nominal = sensor.nominal_rate_hz;
  const slow = rate != null && nominal != null && rate < 0.9 * nominal;
  return `<td class="num${slow ? " warn" : ""}">${num(rate, 0)}${nominal != null ? ` <span class="muted">/ ${num(nominal, 0)}</span>` : ""} Hz</td>`;
}

/** Fill `tbody` with one row per sensor; `names` maps athlete ids to display names. */
export function renderSensors(tbody, sensors, names = new Map()) {
  if (!sensors.size) {
    tbody.innerHTML = `<tr><td colspan="7" class="muted">No sensors yet.</td></tr>`;
    return;
  }
  tbody.innerHTML = sortedSensors(sensors)
    .map((s) => {
      const st = statusOf(s);
      const loss = s.loss_fraction;
      const lossCls = loss != null && loss > 0.05 ? " warn" : "";
      return `<tr class="sensor-row ${st.cls}" data-sensor-id="${esc(s.sensor_id)}" data-status="${st.cls}">
        <td><span class="status-pill ${st.cls}">${st.text}</span></td>
        <td class="mono">${esc(s.sensor_id)}</td>
        <td>${esc(names.get(s.athlete) ?? s.athlete ?? "—")} ${esc(s.side ?? "")} ${esc(s.segment ?? "unassigned")}</td>
        ${batteryCell(s.battery_pct)}
        <td class="num${lossCls}">${pct(loss, 1)}</td>
        ${rateCell(s)}
        <td class="num">${s.last_seen_s_ago == null ? "—" : `${num(s.last_seen_s_ago, 1)} s`}</td>
      </tr>`;
    })
    .join("");
}

/** The storage chip in the header: state word, backend, spool depth. */
export function renderStorage(el, storage) {
  if (!storage) {
    el.textContent = "storage: —";
    el.dataset.state = "unknown";
    return;
  }
  const state = storage.state ?? "unknown";
  const spool = storage.spool_points ?? 0;
  el.dataset.state = state;
  el.dataset.spool = String(spool);
  el.innerHTML = `<span class="chip-label">storage</span> <strong>${esc(state)}</strong>
    <span class="muted">${esc(storage.backend ?? "")}</span>
    <span class="spool${spool > 0 ? " filling" : ""}" title="points waiting in the local spool until storage accepts them">spool ${num(spool)}</span>`;
}
