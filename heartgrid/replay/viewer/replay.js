// HeartGrid replay model: read a .hgreplay (gzip JSON, format version 1; docs/viewer.md) and
// rebuild the full state at any step from the step records.
//
// A step record steps[t] holds the actions of step t+1 and what changed after it. The state at
// step t is the start state with records 0..t-1 applied. To make any step instant to reach, the
// model keeps a copy of the state (a keyframe) every KEYFRAME steps: reaching step t costs one
// copy plus at most KEYFRAME - 1 records, whatever the length of the episode.
"use strict";

const HG_FORMAT = "heartgrid-replay";
const HG_VERSION = 1;
const KEYFRAME = 64;
const HEART = 6; // index of "heart" in the fixed item order (heartgrid/config/items.py)
const REQUIRED_KEYS = ["meta", "game", "height", "width", "num_agents", "items", "object_types",
  "actions", "groups", "objects", "agents", "converters", "steps"];

class ReplayFormatError extends Error {}

// Bytes of a .hgreplay (a Blob, an ArrayBuffer or a Uint8Array) -> the parsed document.
async function decodeReplay(bytes, name) {
  const blob = bytes instanceof Blob ? bytes : new Blob([bytes]);
  let doc;
  try {
    const stream = blob.stream().pipeThrough(new DecompressionStream("gzip"));
    doc = await new Response(stream).json();
  } catch (e) {
    throw new ReplayFormatError(`replay ${name} is not a gzip-compressed JSON replay (corrupt or truncated): ${e.message}`);
  }
  checkDocument(doc, name);
  return doc;
}

// The checks every reader makes (heartgrid/replay/format.py does the same in Python).
function checkDocument(doc, name) {
  if (doc === null || typeof doc !== "object" || Array.isArray(doc) || doc.format !== HG_FORMAT) {
    throw new ReplayFormatError(`replay ${name} is not a HeartGrid replay (no "format": "${HG_FORMAT}")`);
  }
  if (typeof doc.version !== "number") {
    throw new ReplayFormatError(`replay ${name} has no format version`);
  }
  if (doc.version > HG_VERSION) {
    throw new ReplayFormatError(`replay ${name} is format version ${doc.version}; this viewer reads up to ${HG_VERSION}: upgrade heartgrid`);
  }
  const missing = REQUIRED_KEYS.filter((k) => !(k in doc));
  if (missing.length) {
    throw new ReplayFormatError(`replay ${name} lacks required key(s): ${missing.join(", ")}`);
  }
}

// The mutable state at one step. Objects are indexed by object id (agents first, then
// converters, blocks, walls); per-agent and per-converter arrays by agent / converter index.
class ReplayState {
  constructor(numObjects, A, C, I) {
    this.t = 0;
    this.row = new Int32Array(numObjects);
    this.col = new Int32Array(numObjects);
    this.ori = new Int8Array(A);
    this.inv = new Int32Array(A * I);
    this.frz = new Int32Array(A);
    this.color = new Int32Array(A);
    this.reward = new Float32Array(A); // reward so far, summed in float32 as the engine sums it
    this.cinv = new Int32Array(C * I);
    this.cst = new Int8Array(C);
  }

  copyFrom(other) {
    this.t = other.t;
    for (const k of ["row", "col", "ori", "inv", "frz", "color", "reward", "cinv", "cst"]) this[k].set(other[k]);
    return this;
  }
}

// Global stats of one step, computed from the state (they are not stored in the file).
class StepSeries {
  constructor() {
    this.rewardStep = [0]; // summed over agents
    this.rewardTotal = [0];
    this.hearts = [0]; // hearts held by all agents
    this.frozen = [0]; // agents frozen
    this.acted = [0]; // agents that acted (not frozen)
    this.succeeded = [0]; // of those, whose action succeeded
  }
}

class Replay {
  constructor(doc, name) {
    checkDocument(doc, name || "replay");
    this.doc = doc;
    this.name = name || "replay";
    this.meta = doc.meta || {};
    this.H = doc.height;
    this.W = doc.width;
    this.A = doc.num_agents;
    this.items = doc.items;
    this.I = doc.items.length;
    this.typeNames = doc.object_types;
    this.actions = doc.actions;
    this.groups = doc.groups || {};
    const objects = doc.objects;
    this.numObjects = objects.length;
    this.objType = new Int16Array(this.numObjects);
    this.C = doc.converters.type ? doc.converters.type.length : 0;
    this.steps = [];
    const start = new ReplayState(this.numObjects, this.A, this.C, this.I);
    objects.forEach(([type, r, c], i) => { this.objType[i] = type; start.row[i] = r; start.col[i] = c; });
    const ag = doc.agents;
    for (let a = 0; a < this.A; a++) {
      start.ori[a] = ag.orientation[a];
      start.frz[a] = ag.frozen[a];
      start.color[a] = ag.color ? ag.color[a] : 0;
      start.inv.set(ag.inventory[a], a * this.I);
    }
    const cv = doc.converters;
    for (let c = 0; c < this.C; c++) {
      start.cinv.set(cv.inventory[c], c * this.I);
      start.cst[c] = cv.state[c];
    }
    this.agentGroup = Int32Array.from(ag.group);
    this.start = start;
    this.keyframes = [new ReplayState(this.numObjects, this.A, this.C, this.I).copyFrom(start)];
    this.series = new StepSeries();
    let hearts = 0;
    let frozen = 0;
    for (let a = 0; a < this.A; a++) {
      hearts += start.inv[a * this.I + HEART];
      if (start.frz[a] > 0) frozen++;
    }
    this.series.hearts[0] = hearts;
    this.series.frozen[0] = frozen;
    this.tip = new ReplayState(this.numObjects, this.A, this.C, this.I).copyFrom(start); // after the last step
    this.cur = new ReplayState(this.numObjects, this.A, this.C, this.I).copyFrom(start); // the shown step
    this._rewardCharts = new Map();
    this.end = doc.end || "cut";
    for (const rec of doc.steps) this.append(rec);
  }

  get length() { return this.steps.length; }

  // Add one step record (the constructor, and play mode as the live game sends them).
  append(rec) {
    const tip = this.tip;
    const s = this.series;
    const I = this.I;
    let hearts = s.hearts[s.hearts.length - 1];
    let frozen = s.frozen[s.frozen.length - 1];
    let rewardStep = 0;
    if (rec.r) for (const [, r] of rec.r) rewardStep += r;
    if (rec.inv) for (const [a, item] of rec.inv) if (item === HEART) hearts -= tip.inv[a * I + HEART];
    if (rec.frz) for (const [a] of rec.frz) if (tip.frz[a] > 0) frozen--;
    applyRecord(tip, rec, I);
    if (rec.inv) for (const [a, item] of rec.inv) if (item === HEART) hearts += tip.inv[a * I + HEART];
    if (rec.frz) for (const [a] of rec.frz) if (tip.frz[a] > 0) frozen++;
    let acted = 0;
    let succeeded = 0;
    for (const ok of rec.ok) { if (ok >= 0) { acted++; if (ok === 1) succeeded++; } }
    s.rewardStep.push(rewardStep);
    s.rewardTotal.push(s.rewardTotal[s.rewardTotal.length - 1] + rewardStep);
    s.hearts.push(hearts);
    s.frozen.push(frozen);
    s.acted.push(acted);
    s.succeeded.push(succeeded);
    this.steps.push(rec);
    if (this.steps.length % KEYFRAME === 0) {
      this.keyframes.push(new ReplayState(this.numObjects, this.A, this.C, this.I).copyFrom(tip));
    }
    for (const [a, chart] of this._rewardCharts) chart.push(tip.reward[a]);
  }

  // The state after step t (0 = the start). The returned object is reused: read it, don't keep it.
  stateAt(t) {
    t = Math.max(0, Math.min(t, this.length));
    const cur = this.cur;
    if (cur.t === t) return cur;
    if (!(cur.t < t && t - cur.t < KEYFRAME)) cur.copyFrom(this.keyframes[Math.floor(t / KEYFRAME)]);
    while (cur.t < t) applyRecord(cur, this.steps[cur.t], this.I);
    return cur;
  }

  // Reward so far of agent a after each step 0..T (computed once per agent, then kept current).
  rewardChart(a) {
    if (!this._rewardCharts.has(a)) {
      const values = [0];
      let total = 0;
      for (const rec of this.steps) {
        if (rec.r) for (const [agent, r] of rec.r) if (agent === a) total = Math.fround(total + Math.fround(r));
        values.push(total);
      }
      this._rewardCharts.set(a, values);
    }
    return this._rewardCharts.get(a);
  }

  // Last action of agent a at step t (the one sent in step t), or null at the start.
  lastAction(a, t) {
    if (t < 1 || t > this.length) return null;
    const rec = this.steps[t - 1];
    const id = rec.a[a];
    return { id, name: this.actions[id] !== undefined ? this.actions[id] : `invalid (${id})`, ok: rec.ok[a] };
  }

  typeName(objectId) { return this.typeNames[this.objType[objectId]]; }

  // Object id at each cell of state `st` (-1 empty); built on demand (clicks), not per frame.
  occupancy(st) {
    const grid = new Int32Array(this.H * this.W).fill(-1);
    for (let i = this.numObjects - 1; i >= 0; i--) {
      const r = st.row[i], c = st.col[i];
      if (r >= 0 && r < this.H && c >= 0 && c < this.W) grid[r * this.W + c] = i;
    }
    return grid;
  }
}

function applyRecord(st, rec, I) {
  if (rec.r) for (const [a, r] of rec.r) st.reward[a] = Math.fround(st.reward[a] + Math.fround(r));
  if (rec.pos) for (const [o, r, c] of rec.pos) { st.row[o] = r; st.col[o] = c; }
  if (rec.ori) for (const [a, o] of rec.ori) st.ori[a] = o;
  if (rec.inv) for (const [a, item, n] of rec.inv) st.inv[a * I + item] = n;
  if (rec.frz) for (const [a, f] of rec.frz) st.frz[a] = f;
  if (rec.col) for (const [a, c] of rec.col) st.color[a] = c;
  if (rec.cinv) for (const [c, item, n] of rec.cinv) st.cinv[c * I + item] = n;
  if (rec.cst) for (const [c, s] of rec.cst) st.cst[c] = s;
  st.t += 1;
}

function deepEqual(x, y) {
  if (x === y) return true;
  if (typeof x !== "object" || typeof y !== "object" || x === null || y === null) return false;
  if (Array.isArray(x) !== Array.isArray(y)) return false;
  const kx = Object.keys(x), ky = Object.keys(y);
  if (kx.length !== ky.length) return false;
  for (const k of kx) if (!Object.prototype.hasOwnProperty.call(y, k) || !deepEqual(x[k], y[k])) return false;
  return true;
}

// The first step where two replays differ: 0 when their start states differ, k when the
// actions of step k or the state after it differ, -1 when they are the same throughout.
// Same start + same records => same states, so comparing records finds the first difference.
function firstDivergence(a, b) {
  const da = a.doc, db = b.doc;
  for (const k of ["height", "width", "num_agents", "objects", "agents", "converters"]) {
    if (!deepEqual(da[k], db[k])) return 0;
  }
  const n = Math.min(a.length, b.length);
  for (let t = 0; t < n; t++) if (!deepEqual(a.steps[t], b.steps[t])) return t + 1;
  return a.length === b.length ? -1 : n + 1;
}

// Base64 (as embedded in a self-contained HTML file) -> bytes.
function base64Bytes(text) {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
