// The replay viewer: one replay, or two of the same seed side by side in lockstep.
//
// Where the replays come from: a self-contained HTML file embeds them (base64 of the .hgreplay
// bytes in <script id="hg-data">); a page served by `heartgrid replay` asks the server
// (api/session, then replay/<id>); `heartgrid play` streams a live one (play.js).
// The DOM (stats, selection panel) is updated at once on every change of step or selection;
// the canvases are redrawn at most once per animation frame, and only when something changed.
"use strict";

const $ = (id) => document.getElementById(id);
const COLORS_AB = ["#4cc9f0", "#ff9f1a"];
const ORIENTATIONS = ["up", "down", "left", "right"];
const CONVERTER_STATES = ["ready", "converting", "cooling down"];
const VIEWER_KEYS = [
  ["space", "play / pause"], ["← →", "step back / forward (shift: 10 steps)"], ["Home End", "first / last step"],
  ["[ ]", "slower / faster"], ["Esc", "clear the selection"], ["?", "this help"],
];

function fmt(x, digits = 2) { return Number.isInteger(x) ? String(x) : x.toFixed(digits); }
function setText(id, text) { const el = $(id); if (el) el.textContent = text; }
// Who played an agent (docs/replays.md: meta.npc_agents / npc_policy, meta.person_agent).
// Meta comes from the file: only strings and well-formed agent numbers are shown.
function metaText(value) {
  return (typeof value === "string" && value) || Number.isFinite(value) ? String(value) : "?";
}
function npcAgents(meta) {
  const ids = Array.isArray(meta.npc_agents) ? meta.npc_agents.filter(Number.isInteger) : [];
  return [...new Set(ids)].sort((a, b) => a - b);
}
function playerOf(meta, agent) {
  if (npcAgents(meta).includes(agent)) return `NPC: ${metaText(meta.npc_policy)}`;
  if (meta.person_agent === agent) return "a person";
  return metaText(meta.policy);
}
// "agents 6–23" for a run of numbers, else "agents 1, 4, 5".
function agentList(ids) {
  const contiguous = ids.every((v, i) => i === 0 || v === ids[i - 1] + 1);
  if (ids.length === 1) return `agent ${ids[0]}`;
  return contiguous ? `agents ${ids[0]}–${ids[ids.length - 1]}` : `agents ${ids.join(", ")}`;
}
function showStatus(message, isError) {
  const el = $("status");
  el.hidden = false; el.textContent = message; el.classList.toggle("error", !!isError);
  if (isError) window.heartgrid.error = message;
}

class Viewer {
  constructor(replays, options = {}) {
    this.replays = replays; // one, or two in lockstep
    this.live = !!options.live; // play mode: the replay grows as the game steps
    this.t = 0;
    this.playing = false;
    this.selectedId = -1;
    this.dirty = true;
    this.lastFrame = null;
    this.carry = 0;
    this.view = { zoom: 1, cx: null, cy: null }; // shared: two grids zoom and pan together
    this.renderers = replays.map((r, k) => new GridRenderer($(k ? "grid-b" : "grid-a"), r, this.view));
    this.divergence = replays.length === 2 ? firstDivergence(replays[0], replays[1]) : null;
    this.layout();
    this.bind();
    this.update();
    requestAnimationFrame((ts) => this.frame(ts));
  }

  get speed() { return Number($("speed").value); }
  maxT() { return Math.max(...this.replays.map((r) => r.length)); }

  layout() {
    const two = this.replays.length === 2;
    $("main").hidden = false; $("controls").hidden = false; $("status").hidden = true;
    $("view-b").hidden = !two;
    document.body.classList.toggle("compare", two);
    for (const el of document.querySelectorAll(".col-b, .col-d")) el.hidden = !two;
    for (const el of document.querySelectorAll("th.col-a")) el.textContent = two ? "A" : "";
    this.replays.forEach((r, k) => {
      const m = r.meta;
      const title = `${two ? (k ? "B: " : "A: ") : ""}${r.name}`;
      const epoch = Number.isInteger(m.epoch) ? ` @ epoch ${m.epoch}` : "";
      setText(k ? "title-b" : "title-a", `${title} — ${metaText(m.policy)}${epoch}`);
    });
    const r = this.replays[0], m = r.meta;
    const npcs = npcAgents(m);
    setText("meta", [metaText(m.source), m.recipe && `recipe ${metaText(m.recipe)}`, `seed ${metaText(m.seed)}`,
      `episode ${metaText(m.episode)}`, m.task && `task ${metaText(m.task)}`, `${r.A} agents`,
      npcs.length && `NPCs: ${agentList(npcs)} (${metaText(m.npc_policy)})`,
      `${r.H}×${r.W}`, `end: ${r.end}`].filter(Boolean).join(" · "));
    this.buildLegend();
    this.buildHelp();
    const d = $("divergence");
    d.hidden = !two;
    if (two) {
      const k = this.divergence;
      d.dataset.step = String(k);
      d.innerHTML = "";
      const text = document.createElement("span");
      text.textContent = k < 0 ? "the two runs are identical" : k === 0 ? "the runs differ from the start" : `the runs diverge at step ${k}`;
      d.appendChild(text);
      if (k >= 0) {
        const b = document.createElement("button"); b.id = "goto-divergence"; b.textContent = "go there";
        b.onclick = () => this.setStep(k); d.appendChild(b);
      }
    }
    $("diff-strip").hidden = !two;
  }

  buildLegend() {
    const ul = $("legend");
    ul.innerHTML = "";
    const add = (kind, name, label) => {
      const li = document.createElement("li");
      const c = document.createElement("canvas"); c.width = c.height = 36;
      drawLegendIcon(c, kind, name);
      li.appendChild(c);
      const span = document.createElement("span"); span.textContent = label; li.appendChild(span);
      ul.appendChild(li);
    };
    const r = this.replays[0];
    const groups = [...new Set(r.agentGroup)];
    for (const g of groups) add("agent", String(g), groups.length > 1 ? `agent of ${r.groups[String(g)] || `group ${g}`}` : "agent (faces where it points)");
    add("frozen", String(groups[0] || 0), "frozen agent");
    const present = new Set(Array.from(r.objType));
    r.typeNames.forEach((name, type) => { if (type !== 0 && present.has(type)) add("object", name, styleOf(name).label); });
    if (r.C) {
      const name = r.typeName(r.A);
      add("converting", name, "converting");
      add("cooling", name, "cooling down");
      add("ready", name, "holds output to take");
    }
  }

  buildHelp() {
    const table = $("help-keys");
    table.innerHTML = "";
    for (const [k, what] of (this.live ? PLAY_VIEWER_KEYS : VIEWER_KEYS)) {
      const tr = table.insertRow();
      tr.insertCell().textContent = k; tr.insertCell().textContent = what;
    }
  }

  bind() {
    const sc = $("scrubber");
    sc.oninput = () => { this.playing = false; this.setStep(Number(sc.value)); };
    $("btn-play").onclick = () => this.toggle();
    $("btn-back").onclick = () => this.setStep(this.t - 1);
    $("btn-fwd").onclick = () => this.setStep(this.t + 1);
    $("btn-home").onclick = () => this.setStep(0);
    $("btn-end").onclick = () => this.setStep(this.maxT());
    this.renderers.forEach((rd) => this.bindMouse(rd));
    $("diff-strip").onclick = (e) => {
      const rect = e.target.getBoundingClientRect();
      this.setStep(Math.round(((e.clientX - rect.left) / rect.width) * this.maxT()));
    };
    window.onresize = () => { this.dirty = true; };
    document.onkeydown = (e) => this.key(e);
  }

  // Wheel: zoom about the pointer; drag: pan; a click without a drag: select; double-click: fit.
  bindMouse(rd) {
    const c = rd.canvas, v = this.view;
    let drag = null;
    c.onwheel = (e) => {
      e.preventDefault();
      const [px, py] = rd.pixel(e);
      const [fx, fy] = rd.toCell(px, py);
      v.zoom = Math.max(1, Math.min(64, v.zoom * Math.exp(-e.deltaY * 0.0015)));
      if (v.zoom === 1) { v.cx = v.cy = null; } else {
        const s = Math.max(0.25, rd.baseCell(c.width, c.height) * v.zoom);
        v.cx = (c.width / 2 - px) / s + fx; v.cy = (c.height / 2 - py) / s + fy;
        this.clampView(rd);
      }
      this.dirty = true;
    };
    c.onpointerdown = (e) => { drag = { x: e.clientX, y: e.clientY, moved: false }; c.setPointerCapture(e.pointerId); };
    c.onpointermove = (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 4) return;
      drag.moved = true; c.classList.add("panning");
      if (v.zoom > 1) {
        const scale = c.width / Math.max(1, c.getBoundingClientRect().width) / rd.cell;
        const [hx, hy] = rd.home();
        v.cx = (v.cx === null ? hx : v.cx) - dx * scale;
        v.cy = (v.cy === null ? hy : v.cy) - dy * scale;
        this.clampView(rd);
        this.dirty = true;
      }
      drag.x = e.clientX; drag.y = e.clientY;
    };
    c.onpointerup = (e) => {
      const down = drag;
      drag = null; c.classList.remove("panning");
      if (down && !down.moved) this.click(rd, e);
    };
    c.ondblclick = () => { v.zoom = 1; v.cx = v.cy = null; this.dirty = true; };
  }

  clampView(rd) {
    const v = this.view, R = rd.replay;
    if (v.cx !== null) v.cx = Math.max(0, Math.min(R.W, v.cx));
    if (v.cy !== null) v.cy = Math.max(0, Math.min(R.H, v.cy));
  }

  key(e) {
    if (e.target && (e.target.tagName === "SELECT" || e.target.tagName === "INPUT") && e.key !== " " && !e.key.startsWith("Arrow")) return;
    if (this.live && window.heartgridPlay && window.heartgridPlay.key(e)) { e.preventDefault(); return; }
    const jump = e.shiftKey ? 10 : 1;
    const speed = $("speed");
    switch (e.key) {
      case " ": if (this.live) return; this.toggle(); break;
      case "ArrowLeft": if (this.live) return; this.playing = false; this.setStep(this.t - jump); break;
      case "ArrowRight": if (this.live) return; this.playing = false; this.setStep(this.t + jump); break;
      case "Home": this.setStep(0); break;
      case "End": this.setStep(this.maxT()); break;
      case "[": speed.selectedIndex = Math.max(0, speed.selectedIndex - 1); break;
      case "]": speed.selectedIndex = Math.min(speed.options.length - 1, speed.selectedIndex + 1); break;
      case "Escape": this.select(-1); $("help").hidden = true; break;
      case "?": $("help").hidden = !$("help").hidden; break;
      default: return;
    }
    e.preventDefault();
  }

  toggle() {
    if (!this.playing && this.t >= this.maxT()) this.setStep(0);
    this.playing = !this.playing;
    this.lastFrame = null; this.carry = 0;
    this.updateButtons();
  }

  updateButtons() { $("icon-play").hidden = this.playing; $("icon-pause").hidden = !this.playing; }

  setStep(t) {
    const clamped = Math.max(0, Math.min(Math.round(Number(t) || 0), this.maxT()));
    if (clamped !== this.t) { this.t = clamped; this.update(); }
    return this.t;
  }

  click(renderer, e) {
    const cell = renderer.cellAt(e);
    if (!cell) return;
    const r = renderer.replay;
    const id = r.occupancy(r.stateAt(this.t))[cell[0] * r.W + cell[1]];
    this.select(id >= 0 && id < r.A + r.C ? id : -1); // agents and converters only
  }

  select(id) {
    const r = this.replays[0];
    this.selectedId = Number.isInteger(id) && id >= 0 && id < r.A + r.C ? id : -1;
    this.updateSelection();
    this.dirty = true;
    return this.selectedId;
  }

  // Everything shown for the current step, except the canvases (next animation frame).
  update() {
    const T = this.maxT();
    const sc = $("scrubber");
    sc.max = String(T); sc.value = String(this.t);
    setText("stat-step", String(this.t)); setText("stat-steps", String(T));
    const cols = this.replays.map((r) => this.globalStats(r, Math.min(this.t, r.length)));
    const suffix = ["", "-b"];
    for (const key of ["reward-step", "reward-total", "hearts", "frozen"]) {
      cols.forEach((c, k) => setText(`stat-${key}${suffix[k]}`, fmt(c[key])));
      if (cols.length === 2) this.diffCell(`stat-${key}-d`, cols[1][key] - cols[0][key]);
    }
    cols.forEach((c, k) => setText(`stat-success${suffix[k]}`, c.acted ? `${(100 * c.succeeded / c.acted).toFixed(0)}% (${c.succeeded}/${c.acted})` : "—"));
    if (cols.length === 2) this.diffCell("stat-success-d", cols[1].acted && cols[0].acted ? cols[1].succeeded / cols[1].acted - cols[0].succeeded / cols[0].acted : 0, true);
    this.updateSelection();
    this.updateButtons();
    this.dirty = true;
  }

  globalStats(r, t) {
    const s = r.series;
    return { "reward-step": s.rewardStep[t], "reward-total": s.rewardTotal[t], hearts: s.hearts[t],
      frozen: s.frozen[t], acted: s.acted[t], succeeded: s.succeeded[t] };
  }

  diffCell(id, d, percent) {
    const el = $(id);
    const zero = Math.abs(d) < 1e-9;
    el.textContent = zero ? "0" : (d > 0 ? "+" : "") + (percent ? `${(100 * d).toFixed(0)}%` : fmt(d));
    el.classList.toggle("diff-pos", !zero && d > 0);
    el.classList.toggle("diff-neg", !zero && d < 0);
  }

  updateSelection() {
    const id = this.selectedId;
    $("sel-body").hidden = id < 0; $("sel-hint").hidden = id >= 0;
    if (id < 0) { setText("sel-title", "Nothing selected"); return; }
    const r0 = this.replays[0];
    const isAgent = id < r0.A;
    const index = isAgent ? id : id - r0.A;
    setText("sel-title", isAgent ? `Agent ${id}` : `Converter ${index}: ${r0.typeName(id)}`);
    const rows = $("sel-rows");
    rows.innerHTML = "";
    const views = this.replays.map((r) => ({ r, t: Math.min(this.t, r.length), st: r.stateAt(Math.min(this.t, r.length)) }));
    const row = (key, label, values) => {
      const tr = rows.insertRow();
      const th = document.createElement("th"); th.textContent = label; tr.appendChild(th);
      values.forEach((v, k) => { const td = tr.insertCell(); td.id = `sel-${key}${k ? "-b" : ""}`; td.textContent = v; });
      if (values.length === 2 && values[0] !== values[1]) tr.classList.add("differs");
    };
    if (isAgent) {
      row("group", "group", views.map(({ r }) => r.groups[String(r.agentGroup[id])] || String(r.agentGroup[id])));
      row("player", "played by", views.map(({ r }) => playerOf(r.meta, id)));
      row("position", "position", views.map(({ st }) => `(${st.row[id]}, ${st.col[id]})`));
      row("orientation", "facing", views.map(({ st }) => ORIENTATIONS[st.ori[id]] || String(st.ori[id])));
      row("frozen", "frozen", views.map(({ st }) => (st.frz[id] > 0 ? `${st.frz[id]} steps` : "no")));
      row("color", "color", views.map(({ st }) => String(st.color[id])));
      const last = views.map(({ r, t }) => r.lastAction(id, t));
      row("action", "last action", last.map((a) => (a ? a.name : "—")));
      row("ok", "succeeded", last.map((a) => (!a ? "—" : a.ok === 1 ? "yes" : a.ok === 0 ? "no" : "frozen, did not act")));
      row("reward", "reward so far", views.map(({ st }) => fmt(st.reward[id], 3)));
    } else {
      const conv = r0.doc.converters;
      const recipe = (x) => Object.entries(x || {}).map(([k, n]) => `${n} ${k}`).join(" + ") || "nothing";
      row("position", "position", views.map(({ st }) => `(${st.row[id]}, ${st.col[id]})`));
      row("state", "state", views.map(({ st }) => CONVERTER_STATES[st.cst[index]] || String(st.cst[index])));
      row("recipe", "recipe", [`${recipe(conv.input[index])} → ${recipe(conv.output[index])}`]);
    }
    const inv = $("sel-inventory");
    inv.innerHTML = "";
    const cell = (text, cls, id) => {
      const el = document.createElement("span"); el.className = cls; el.textContent = text;
      if (id) el.id = id;
      inv.appendChild(el);
      return el;
    };
    r0.items.forEach((item, i) => {
      const values = views.map(({ r, st }) => (isAgent ? st.inv[id * r.I + i] : st.cinv[index * r.I + i]));
      const extra = values.every((v) => v === 0) ? " zero" : values.length === 2 && values[0] !== values[1] ? " differs" : "";
      cell(item, `k${extra}`);
      values.forEach((v, k) => cell(String(v), `v${extra}`, `sel-inv-${item}${k ? "-b" : ""}`));
    });
    const chart = $("sel-chart");
    chart.hidden = !isAgent;
    if (isAgent) drawLineChart(chart, this.replays.map((r) => r.rewardChart(id)), this.t, COLORS_AB);
  }

  // Agents whose reward so far or hearts differ between the two runs at the shown step.
  differingAgents() {
    if (this.replays.length !== 2) return null;
    const [a, b] = this.replays;
    const sa = a.stateAt(Math.min(this.t, a.length)), sb = b.stateAt(Math.min(this.t, b.length));
    const out = new Set();
    for (let i = 0; i < Math.min(a.A, b.A); i++) {
      if (Math.abs(sa.reward[i] - sb.reward[i]) > 1e-9 || sa.inv[i * a.I + HEART] !== sb.inv[i * b.I + HEART]) out.add(i);
    }
    return out;
  }

  frame(ts) {
    if (this.playing) {
      if (this.lastFrame !== null) this.carry += ((ts - this.lastFrame) / 1000) * this.speed;
      this.lastFrame = ts;
      const n = Math.floor(this.carry);
      if (n > 0) {
        this.carry -= n;
        this.setStep(this.t + n);
        if (this.t >= this.maxT()) { this.playing = false; this.updateButtons(); }
      }
    }
    if (this.dirty) {
      this.dirty = false;
      const marks = this.differingAgents();
      this.renderers.forEach((rd) => rd.render(rd.replay.stateAt(Math.min(this.t, rd.replay.length)), this.selectedId, marks));
      if (this.replays.length === 2) this.drawDiffStrip();
    }
    requestAnimationFrame((t) => this.frame(t));
  }

  // Per-step differences (B - A) of reward so far (top) and hearts held (bottom); the first
  // divergent step as a yellow line, the shown step as a white one.
  drawDiffStrip() {
    const canvas = $("diff-strip");
    const rect = canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.round(rect.width * dpr)); canvas.height = Math.max(1, Math.round(rect.height * dpr));
    const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height, T = this.maxT();
    ctx.fillStyle = "#0d0f14"; ctx.fillRect(0, 0, w, h);
    const [a, b] = this.replays;
    const rows = [["rewardTotal", 0], ["hearts", h / 2]];
    for (const [key, y] of rows) {
      const sa = a.series[key], sb = b.series[key];
      let max = 1e-9;
      const n = Math.min(sa.length, sb.length);
      for (let t = 0; t < n; t++) max = Math.max(max, Math.abs(sb[t] - sa[t]));
      for (let t = 0; t < n; t++) {
        const d = sb[t] - sa[t];
        if (Math.abs(d) < 1e-9) continue;
        const x0 = (t / Math.max(1, T)) * w, x1 = ((t + 1) / Math.max(1, T)) * w;
        const alpha = 0.35 + 0.65 * (Math.abs(d) / max);
        ctx.fillStyle = d > 0 ? `rgba(70, 200, 110, ${alpha})` : `rgba(240, 80, 80, ${alpha})`;
        ctx.fillRect(x0, y + 1, Math.max(1, x1 - x0), h / 2 - 2);
      }
    }
    const x = (t) => (t / Math.max(1, T)) * w;
    if (this.divergence >= 0) { ctx.fillStyle = "#ffd60a"; ctx.fillRect(x(this.divergence) - dpr, 0, 2 * dpr, h); }
    ctx.fillStyle = "#ffffff"; ctx.fillRect(x(this.t) - dpr / 2, 0, dpr, h);
  }

  // Page coordinates (CSS pixels) of an object's cell centre on canvas k, for clicks in tests.
  cellCenter(id, k = 0) {
    const rd = this.renderers[k];
    rd.fit();
    const st = rd.replay.stateAt(Math.min(this.t, rd.replay.length));
    const rect = rd.canvas.getBoundingClientRect();
    const scale = rect.width / rd.canvas.width;
    return { x: rect.left + (rd.ox + (st.col[id] + 0.5) * rd.cell) * scale, y: rect.top + (rd.oy + (st.row[id] + 0.5) * rd.cell) * scale };
  }
}

// A read-only hook for tests and the curious: what is shown, and a way to move around.
window.heartgrid = {
  ready: false, error: null, viewer: null,
  step: () => (window.heartgrid.viewer ? window.heartgrid.viewer.t : 0),
  numSteps: () => (window.heartgrid.viewer ? window.heartgrid.viewer.maxT() : 0),
  setStep: (t) => window.heartgrid.viewer.setStep(t),
  select: (id) => window.heartgrid.viewer.select(id),
  selected: () => (window.heartgrid.viewer ? window.heartgrid.viewer.selectedId : -1),
  divergence: () => (window.heartgrid.viewer ? window.heartgrid.viewer.divergence : null),
  playing: () => !!(window.heartgrid.viewer && window.heartgrid.viewer.playing),
  cellCenter: (id, k) => window.heartgrid.viewer.cellCenter(id, k),
};

function startViewer(replays, options) {
  const v = new Viewer(replays, options);
  window.heartgrid.viewer = v;
  window.heartgrid.ready = true;
  return v;
}

// ----------------------------------------------------------------------------------------------
// Where the replays come from.

async function loadEmbedded(data) {
  const entries = data.replays;
  const load = async (i) => new Replay(await decodeReplay(base64Bytes(entries[i].data), entries[i].name), entries[i].name);
  return { entries, load, compare: data.compare };
}

async function loadServed() {
  const response = await fetch("api/session");
  if (!response.ok) throw new Error(`the server answered ${response.status} for api/session`);
  const session = await response.json();
  const entries = session.replays;
  const load = async (i) => {
    const res = await fetch(`replay/${entries[i].id}`);
    if (!res.ok) throw new Error(`the server answered ${res.status} for replay ${entries[i].name}`);
    return new Replay(await decodeReplay(await res.blob(), entries[i].name), entries[i].name);
  };
  return { entries, load, compare: session.compare, mode: session.mode };
}

async function boot() {
  try {
    const embedded = $("hg-data");
    const source = embedded ? await loadEmbedded(JSON.parse(embedded.textContent)) : await loadServed();
    if (source.mode === "play") { $("mode-label").textContent = "play"; return startPlay(); }
    if (!source.entries.length) { showStatus("No replays to show.", true); return; }
    if (source.compare) {
      $("mode-label").textContent = "side by side";
      const replays = await Promise.all(source.compare.map((i) => source.load(i)));
      startViewer(replays);
      return;
    }
    const picker = $("picker");
    if (source.entries.length > 1) {
      picker.hidden = false;
      source.entries.forEach((e, i) => { const o = document.createElement("option"); o.value = String(i); o.textContent = e.label || e.name; picker.appendChild(o); });
      picker.onchange = async () => {
        try {
          window.heartgrid.ready = false;
          startViewerReplacing(await source.load(Number(picker.value)));
        } catch (e) { showStatus(e.message, true); }
      };
    }
    startViewer([await source.load(0)]);
  } catch (e) {
    showStatus(e.message || String(e), true);
  }
}

// The picker swaps the shown replay: a fresh viewer on the same page (the old one stops drawing).
function startViewerReplacing(replay) {
  const old = window.heartgrid.viewer;
  if (old) { old.frame = () => {}; old.playing = false; }
  startViewer([replay]);
}

window.addEventListener("DOMContentLoaded", () => {
  $("help-button").onclick = () => { $("help").hidden = !$("help").hidden; };
  // A clicked button gives the focus back, so that space and the arrows keep driving the
  // viewer (or the game) instead of pressing that button again.
  document.addEventListener("click", (e) => { const b = e.target.closest && e.target.closest("button"); if (b) b.blur(); });
  boot();
});
