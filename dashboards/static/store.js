// The dashboard's state: what the live WebSocket (docs/live-api.md) has told us so far.
//
// Pure bookkeeping, no DOM and no Plotly: `applyMessage` folds one server message into the store
// and records which parts of the page need redrawing (`dirty`). Rendering happens elsewhere, once
// per animation frame, so a burst of 30 Hz frames from several streams costs one redraw.
//
// Angle convention (docs/architecture.md): internal rotation positive, external negative, degrees.

/** How many frames a stream keeps for the plot between two redraws (a hidden tab stops redraws). */
export const MAX_PENDING_FRAMES = 1800;

/** Drill targets used when the service does not name any (AAOS norms, docs/drills.md). */
export const DEFAULT_TARGETS = Object.freeze({ internal: 35.0, external: 45.0 });

/** A fresh, empty store. */
export function createStore() {
  return {
    connection: "connecting", // "connecting" | "open" | "closed" | "unauthorized" (token rejected)
    server: null, // hello.server
    drills: new Map(), // name -> drill object
    streams: new Map(), // key -> StreamView (see newStream)
    sensors: new Map(), // sensor_id -> sensor object
    storage: null, // status.storage
    sessions: [],
    clients: null,
    lastMessageUnix: null,
    counts: { hello: 0, frame: 0, event: 0, status: 0 },
    dirty: { streams: new Set(), layout: false, sensors: false, header: false },
  };
}

function newStream(key) {
  return {
    key,
    session: undefined, // id of the session the per-session fields below belong to
    info: null, // stream state object (hello / status / GET /api/streams)
    latest: null, // last frame object of this stream
    pending: [], // frames not yet drawn on the plot
    sessionEnded: false, // session_stopped seen for `session`
    reps: 0,
    lastRep: null, // rep object of the last rep_completed
    compensating: false, // frame.compensating (truth for the alert)
    compensation: null, // the last "compensation" event (details for the banner)
    compensationSeenUnix: null, // browser time the alert was raised (for the flash)
    lastIncomplete: null,
    calibration: null, // calibration status object
    calibrationLog: [], // calibration_step / _done / _failed events, newest last
    lostSensors: new Map(), // segment -> sensor_lost event
  };
}

function streamOf(store, key) {
  let stream = store.streams.get(key);
  if (!stream) {
    stream = newStream(key);
    store.streams.set(key, stream);
    store.dirty.layout = true;
  }
  return stream;
}

function markStream(store, key) {
  store.dirty.streams.add(key);
}

/** A new session on a stream (replay pass, stop/start): per-session numbers start from zero. */
function enterSession(stream, sessionId) {
  if (sessionId == null || sessionId === stream.session) return;
  const first = stream.session === undefined;
  stream.session = sessionId;
  stream.sessionEnded = false;
  if (first) return;
  stream.reps = 0;
  stream.lastRep = null;
  stream.lastIncomplete = null;
  stream.compensating = false;
  stream.compensation = null;
  stream.latest = null;
  stream.calibrationLog = [];
}

function applyStreamInfo(store, info) {
  const stream = streamOf(store, info.key);
  const before = stream.info;
  enterSession(stream, info.session);
  stream.info = info;
  if (info.calibration) stream.calibration = info.calibration;
  if (typeof info.reps === "number" && info.reps > stream.reps) stream.reps = info.reps;
  if (!before || before.athlete_name !== info.athlete_name || before.drill !== info.drill) {
    store.dirty.layout = true; // titles, targets and symmetry pairs depend on these
  }
  markStream(store, info.key);
}

function applySensors(store, sensors) {
  store.sensors = new Map(sensors.map((s) => [s.sensor_id, s]));
  // The status message is authoritative on lost/connected; drop stale lost markers.
  for (const stream of store.streams.values()) {
    const ids = stream.info?.sensors ?? {};
    for (const [segment, sensorId] of Object.entries(ids)) {
      const sensor = store.sensors.get(sensorId);
      if (!sensor) continue;
      const wasLost = stream.lostSensors.has(segment);
      if (sensor.lost && !wasLost) {
        stream.lostSensors.set(segment, { sensor_id: sensorId, segment, silent_s: sensor.last_seen_s_ago });
      } else if (!sensor.lost && wasLost) {
        stream.lostSensors.delete(segment);
      } else {
        continue;
      }
      markStream(store, stream.key);
    }
  }
  store.dirty.sensors = true;
}

function applyStatus(store, status) {
  if (Array.isArray(status.sensors)) applySensors(store, status.sensors);
  if (status.storage) store.storage = status.storage;
  if (Array.isArray(status.sessions)) store.sessions = status.sessions;
  if (Array.isArray(status.streams)) status.streams.forEach((info) => applyStreamInfo(store, info));
  if (typeof status.clients === "number") store.clients = status.clients;
  store.dirty.header = true;
}

function applyFrame(store, message) {
  for (const frame of message.streams ?? []) {
    const stream = streamOf(store, frame.key);
    enterSession(stream, frame.session);
    stream.latest = frame;
    stream.pending.push(frame);
    if (stream.pending.length > MAX_PENDING_FRAMES) {
      stream.pending.splice(0, stream.pending.length - MAX_PENDING_FRAMES);
    }
    if (typeof frame.reps === "number") stream.reps = frame.reps;
    // After session_stopped the alert stays off even if a last frame of that session still says so.
    const compensating = Boolean(frame.compensating) && !stream.sessionEnded;
    if (compensating && !stream.compensating) stream.compensationSeenUnix = Date.now() / 1000;
    stream.compensating = compensating;
    markStream(store, frame.key);
  }
}

/** Segment names for sensors that the stream info does not list (sensor events carry the segment). */
function streamsUsingSensor(store, sensorId, key) {
  if (key) return [streamOf(store, key)];
  return [...store.streams.values()].filter((s) => Object.values(s.info?.sensors ?? {}).includes(sensorId));
}

function applyEvent(store, event) {
  const kind = event.event;
  const stream = event.key ? streamOf(store, event.key) : null;
  switch (kind) {
    case "rep_completed":
      if (stream && event.rep) {
        stream.lastRep = event.rep;
        stream.reps = Math.max(stream.reps, event.rep.index ?? 0);
        // Same rule as the frames' `compensating`: the flag follows the last completed rep.
        const flagged = Boolean(event.rep.compensation);
        if (flagged && !stream.compensating) stream.compensationSeenUnix = Date.now() / 1000;
        stream.compensating = flagged;
        if (!flagged) stream.compensation = null;
      }
      break;
    case "rep_incomplete":
      if (stream) stream.lastIncomplete = event;
      break;
    case "compensation":
      if (stream) {
        stream.compensation = event;
        if (!stream.compensating) stream.compensationSeenUnix = Date.now() / 1000;
        stream.compensating = true;
      }
      break;
    case "sensor_lost":
      for (const s of streamsUsingSensor(store, event.sensor_id, event.key)) {
        s.lostSensors.set(event.segment ?? event.sensor_id, event);
        markStream(store, s.key);
      }
      patchSensor(store, event.sensor_id, { lost: true });
      break;
    case "sensor_back":
      for (const s of streamsUsingSensor(store, event.sensor_id, event.key)) {
        s.lostSensors.delete(event.segment ?? event.sensor_id);
        markStream(store, s.key);
      }
      patchSensor(store, event.sensor_id, { lost: false, connected: true });
      break;
    case "sensor_battery":
      patchSensor(store, event.sensor_id, { battery_pct: event.battery_pct });
      break;
    case "calibration_step":
      if (stream) {
        logCalibration(stream, event);
        // Move the wizard on at once; the next status message (about 1 s later) confirms it.
        const cal = stream.calibration ?? {};
        const verdicts = (cal.verdicts ?? []).filter((v) => v.step !== event.step);
        verdicts.push({ step: event.step, ok: event.ok, metrics: event.metrics ?? {}, advice: event.advice ?? "" });
        stream.calibration = { ...cal, step: event.next_step ?? cal.step, prompt: event.prompt ?? cal.prompt, progress: 0, verdicts };
      }
      break;
    case "calibration_done":
      if (stream) {
        logCalibration(stream, event);
        const result = { ok: event.ok, quality: event.quality, advice: event.advice ?? [] };
        stream.calibration = { ...(stream.calibration ?? {}), step: "done", progress: 1, result };
      }
      break;
    case "calibration_failed":
      if (stream) {
        logCalibration(stream, event);
        stream.calibration = { ...(stream.calibration ?? {}), step: "failed", failedAdvice: event.advice ?? [] };
      }
      break;
    case "session_started":
      if (stream && event.session?.id) enterSession(stream, event.session.id);
    // falls through
    case "session_stopped":
      if (kind === "session_stopped" && stream && event.session?.id === stream.session) {
        stream.compensating = false; // the alert belongs to a running set; the stored reps keep the flag
        stream.sessionEnded = true;
      }
      if (event.session) {
        const others = store.sessions.filter((s) => s.id !== event.session.id);
        store.sessions = kind === "session_started" ? [event.session, ...others] : others;
        store.dirty.header = true;
      }
      break;
    default:
      break; // unknown kinds are allowed by the contract; ignore them
  }
  if (stream) markStream(store, stream.key);
}

function logCalibration(stream, event) {
  stream.calibrationLog.push(event);
  if (stream.calibrationLog.length > 20) stream.calibrationLog.shift();
}

function patchSensor(store, sensorId, patch) {
  const sensor = store.sensors.get(sensorId) ?? { sensor_id: sensorId };
  store.sensors.set(sensorId, { ...sensor, ...patch });
  store.dirty.sensors = true;
}

function applyHello(store, hello) {
  store.server = hello.server ?? null;
  store.drills = new Map((hello.drills ?? []).map((d) => [d.name, d]));
  // A reconnect gets a fresh hello: streams that are gone must go from the page too.
  const keys = new Set((hello.streams ?? []).map((s) => s.key));
  for (const key of [...store.streams.keys()]) {
    if (!keys.has(key)) store.streams.delete(key);
  }
  (hello.streams ?? []).forEach((info) => applyStreamInfo(store, info));
  if (hello.status) applyStatus(store, hello.status);
  store.dirty.layout = true;
  store.dirty.header = true;
}

/** Fold one parsed server message into the store. Unknown message types are ignored. */
export function applyMessage(store, message) {
  store.lastMessageUnix = Date.now() / 1000;
  if (message.type in store.counts) store.counts[message.type] += 1;
  switch (message.type) {
    case "hello":
      applyHello(store, message);
      break;
    case "frame":
      applyFrame(store, message);
      break;
    case "event":
      applyEvent(store, message);
      break;
    case "status":
      applyStatus(store, message);
      break;
    default:
      break;
  }
}

/** Take (and clear) the frames a stream received since its last redraw. */
export function takePending(stream) {
  const frames = stream.pending;
  stream.pending = [];
  return frames;
}

/** Drill targets of a stream in positive degrees: {internal, external} (either may be null). */
export function targetsOf(store, stream) {
  const fromInfo = stream.info?.targets;
  if (fromInfo) return { internal: fromInfo.internal ?? null, external: fromInfo.external ?? null };
  const drill = store.drills.get(stream.info?.drill);
  if (drill?.targets) return { internal: drill.targets.internal ?? null, external: drill.targets.external ?? null };
  return { ...DEFAULT_TARGETS };
}

/** This session's largest internal / external rotation (positive degrees or null). */
export function sessionRange(stream) {
  const f = stream.latest;
  const info = stream.info;
  return {
    internal: f?.session_max_ir ?? info?.session_max_ir ?? null,
    external: f?.session_max_er ?? info?.session_max_er ?? null,
  };
}

/**
 * Left/right symmetry per athlete, for athletes with both sides streaming.
 * Returns [{athlete, name, left, right, internal, external}] where internal/external are
 * {left, right, pct} with pct = smaller / larger * 100 (null until both sides have a value).
 */
export function symmetryPairs(store) {
  const byAthlete = new Map();
  for (const stream of store.streams.values()) {
    const athlete = stream.info?.athlete ?? stream.latest?.athlete;
    const side = stream.info?.side ?? stream.latest?.side;
    if (!athlete || !side) continue;
    const entry = byAthlete.get(athlete) ?? { athlete, name: stream.info?.athlete_name ?? athlete };
    entry[side] = stream;
    byAthlete.set(athlete, entry);
  }
  const pairs = [];
  for (const entry of byAthlete.values()) {
    if (!entry.left || !entry.right) continue;
    const l = sessionRange(entry.left);
    const r = sessionRange(entry.right);
    pairs.push({
      athlete: entry.athlete,
      name: entry.name,
      internal: symmetryOf(l.internal, r.internal),
      external: symmetryOf(l.external, r.external),
    });
  }
  return pairs;
}

/** Limb symmetry: the smaller of two ranges as a percentage of the larger. */
export function symmetryOf(left, right) {
  if (left == null || right == null) return { left, right, pct: null };
  const hi = Math.max(left, right);
  const pct = hi > 0 ? (100 * Math.min(left, right)) / hi : null;
  return { left, right, pct };
}
