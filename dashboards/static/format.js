// Small formatting helpers and the colour palette shared by the dashboard's views.
//
// Colours are the Okabe-Ito palette (distinguishable with the common colour-vision deficiencies);
// meaning is never carried by colour alone: every coloured state also has a word or a symbol.

export const COLOURS = Object.freeze({
  internal: "#56B4E9", // sky blue: internal rotation
  external: "#E69F00", // orange: external rotation
  tilt: "#009E73", // bluish green
  obliquity: "#CC79A7", // reddish purple
  rotation: "#F0E442", // yellow
  alert: "#D55E00", // vermillion: compensation
  ok: "#009E73",
  text: "#F5F7FA",
  muted: "#9AA5B1",
  grid: "#2B3644",
  panel: "#17202B",
});

/** Escape text for insertion into HTML. */
export function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/** Degrees with `digits` decimals, or an em dash for null. */
export function deg(value, digits = 0) {
  return value == null || !Number.isFinite(value) ? "—" : `${value.toFixed(digits)}°`;
}

/** A number with `digits` decimals, or an em dash. */
export function num(value, digits = 0) {
  return value == null || !Number.isFinite(value) ? "—" : value.toFixed(digits);
}

/**
 * Hip rotation as coaches say it: magnitude plus direction.
 * Internal rotation is positive on both sides (docs/architecture.md), external negative.
 */
export function rotationParts(rotationDeg) {
  if (rotationDeg == null || !Number.isFinite(rotationDeg)) return { magnitude: "—", direction: "" };
  const rounded = Math.round(rotationDeg);
  if (rounded === 0) return { magnitude: "0", direction: "" };
  return { magnitude: String(Math.abs(rounded)), direction: rounded > 0 ? "IR" : "ER" };
}

export const PELVIS_AXES = Object.freeze({
  pelvis_tilt: "pelvis tilt",
  pelvis_obliquity: "pelvis obliquity",
  pelvis_rotation: "pelvis rotation",
});

export const SIDE_LABEL = Object.freeze({ left: "LEFT", right: "RIGHT" });

/** Unix seconds as a local date and time. */
export function dateTime(unixS) {
  if (unixS == null) return "—";
  return new Date(unixS * 1000).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

/** Percentage 0-100 from a fraction 0-1. */
export function pct(fraction, digits = 0) {
  return fraction == null || !Number.isFinite(fraction) ? "—" : `${(100 * fraction).toFixed(digits)} %`;
}
