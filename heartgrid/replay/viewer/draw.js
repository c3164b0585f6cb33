// Drawing the grid on a canvas: a distinct shape and colour per object type, agents as arrows
// in their group's colour pointing where they face, frozen agents in an ice outline.
//
// Walls never move, so they are drawn once into an offscreen layer (per size); every frame then
// copies that layer and draws the other objects batched by style (one path and one fill per
// style), which keeps a frame cheap at 1,000 agents.
"use strict";

// type name -> {fill, stroke, shape, label}. Mines, generators: the colour of what they make.
const OBJECT_STYLES = {
  wall: { fill: "#3a3f4b", shape: "square", label: "wall" },
  block: { fill: "#a67c52", stroke: "#6b4a2b", shape: "block", label: "block (swappable)" },
  mine_red: { fill: "#e5484d", stroke: "#7a1d20", shape: "triangle", label: "mine (red)" },
  mine_blue: { fill: "#3e8ef7", stroke: "#173f7a", shape: "triangle", label: "mine (blue)" },
  mine_green: { fill: "#46a758", stroke: "#1d4d26", shape: "triangle", label: "mine (green)" },
  generator_red: { fill: "#e5484d", stroke: "#7a1d20", shape: "bolt", label: "generator (red)" },
  generator_blue: { fill: "#3e8ef7", stroke: "#173f7a", shape: "bolt", label: "generator (blue)" },
  generator_green: { fill: "#46a758", stroke: "#1d4d26", shape: "bolt", label: "generator (green)" },
  altar: { fill: "#f76b9a", stroke: "#7d1e42", shape: "heart", label: "altar (hearts)" },
  armory: { fill: "#8b95a7", stroke: "#363c47", shape: "shield", label: "armory (armor)" },
  lasery: { fill: "#ff9f1a", stroke: "#7a4600", shape: "star", label: "lasery (lasers)" },
  lab: { fill: "#2ec4b6", stroke: "#11574f", shape: "hexagon", label: "lab (blueprints)" },
  factory: { fill: "#9d7bd8", stroke: "#42296f", shape: "gear", label: "factory" },
  temple: { fill: "#f5c542", stroke: "#7a5a00", shape: "temple", label: "temple" },
};
const UNKNOWN_STYLE = { fill: "#ff00ff", stroke: "#000", shape: "square", label: "unknown" };
// Group colours: distinct from every object colour above.
const GROUP_COLORS = ["#ffd60a", "#c77dff", "#ff7b00", "#00f5d4", "#f15bb5", "#9ef01a", "#ffffff", "#4cc9f0"];
const ICE = "#bdf3ff";
const BACKGROUND = "#15181f";
const GRID_LINE = "#1d2129";
const SELECTED = "#ffffff";

function groupColor(group) { return GROUP_COLORS[((group % GROUP_COLORS.length) + GROUP_COLORS.length) % GROUP_COLORS.length]; }
function styleOf(name) { return OBJECT_STYLES[name] || UNKNOWN_STYLE; }

// Add the outline of one shape in the cell at (x, y), size s, to the current path.
function shapePath(ctx, shape, x, y, s) {
  const m = s * 0.14; // margin, so neighbours stay apart
  const x0 = x + m, y0 = y + m, w = s - 2 * m, cx = x + s / 2, cy = y + s / 2, r = w / 2;
  switch (shape) {
    case "square": ctx.rect(x, y, s, s); break;
    case "block": ctx.rect(x + s * 0.08, y + s * 0.08, s * 0.84, s * 0.84); break;
    case "triangle":
      ctx.moveTo(cx, y0); ctx.lineTo(x0 + w, y0 + w); ctx.lineTo(x0, y0 + w); ctx.closePath(); break;
    case "bolt": // a circle: generators hum
      ctx.moveTo(cx + r, cy); ctx.arc(cx, cy, r, 0, Math.PI * 2); ctx.closePath(); break;
    case "heart": {
      const t = y0 + w * 0.3;
      ctx.moveTo(cx, y0 + w);
      ctx.bezierCurveTo(x0 - w * 0.1, y0 + w * 0.55, x0, y0 - w * 0.05, cx, t);
      ctx.bezierCurveTo(x0 + w, y0 - w * 0.05, x0 + w * 1.1, y0 + w * 0.55, cx, y0 + w);
      ctx.closePath(); break;
    }
    case "shield":
      ctx.moveTo(x0, y0); ctx.lineTo(x0 + w, y0); ctx.lineTo(x0 + w, y0 + w * 0.5);
      ctx.quadraticCurveTo(x0 + w, y0 + w * 0.85, cx, y0 + w);
      ctx.quadraticCurveTo(x0, y0 + w * 0.85, x0, y0 + w * 0.5); ctx.closePath(); break;
    case "star":
      for (let i = 0; i < 10; i++) {
        const a = -Math.PI / 2 + (i * Math.PI) / 5, rr = i % 2 ? r * 0.45 : r * 1.05;
        const px = cx + rr * Math.cos(a), py = cy + rr * Math.sin(a);
        if (i === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
      }
      ctx.closePath(); break;
    case "hexagon":
      for (let i = 0; i < 6; i++) {
        const a = (i * Math.PI) / 3, px = cx + r * Math.cos(a), py = cy + r * Math.sin(a);
        if (i === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
      }
      ctx.closePath(); break;
    case "gear": // a square with notches
      for (let i = 0; i < 16; i++) {
        const a = (i * Math.PI) / 8, rr = i % 2 ? r * 0.78 : r;
        const px = cx + rr * Math.cos(a), py = cy + rr * Math.sin(a);
        if (i === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
      }
      ctx.closePath(); break;
    case "temple":
      ctx.moveTo(cx, y0); ctx.lineTo(x0 + w, y0 + w * 0.4); ctx.lineTo(x0 + w * 0.85, y0 + w * 0.4);
      ctx.lineTo(x0 + w * 0.85, y0 + w); ctx.lineTo(x0 + w * 0.15, y0 + w); ctx.lineTo(x0 + w * 0.15, y0 + w * 0.4);
      ctx.lineTo(x0, y0 + w * 0.4); ctx.closePath(); break;
    default: ctx.rect(x0, y0, w, w);
  }
}

// An arrow-head pointing in orientation o (0 up, 1 down, 2 left, 3 right).
function agentPath(ctx, o, x, y, s) {
  const m = s * 0.02, cx = x + s / 2, cy = y + s / 2, h = s / 2 - m;
  const pts = [[0, -h], [h * 0.9, h * 0.85], [0, h * 0.45], [-h * 0.9, h * 0.85]]; // facing up
  for (let i = 0; i < pts.length; i++) {
    let [dx, dy] = pts[i];
    if (o === 1) { dx = -dx; dy = -dy; } else if (o === 2) { [dx, dy] = [dy, -dx]; } else if (o === 3) { [dx, dy] = [-dy, dx]; }
    if (i === 0) ctx.moveTo(cx + dx, cy + dy); else ctx.lineTo(cx + dx, cy + dy);
  }
  ctx.closePath();
}

// A small picture of one legend entry, drawn with the same code as the grid.
function drawLegendIcon(canvas, kind, name) {
  const ctx = canvas.getContext("2d");
  const s = canvas.width;
  ctx.fillStyle = BACKGROUND; ctx.fillRect(0, 0, s, s);
  ctx.lineWidth = Math.max(1, s * 0.06);
  if (kind === "agent" || kind === "frozen") {
    ctx.beginPath(); agentPath(ctx, 3, 0, 0, s);
    ctx.fillStyle = groupColor(Number(name) || 0); ctx.fill();
    if (kind === "frozen") { ctx.strokeStyle = ICE; ctx.lineWidth = s * 0.16; ctx.stroke(); }
    return;
  }
  const st = styleOf(name);
  ctx.beginPath(); shapePath(ctx, st.shape, 0, 0, s);
  ctx.fillStyle = st.fill; ctx.globalAlpha = kind === "cooling" ? 0.35 : 1; ctx.fill(); ctx.globalAlpha = 1;
  if (st.stroke) { ctx.strokeStyle = st.stroke; ctx.stroke(); }
  if (kind === "converting") drawBusyRing(ctx, 0, 0, s);
  if (kind === "ready") drawReadyDot(ctx, 0, 0, s);
}

function drawBusyRing(ctx, x, y, s) {
  ctx.save(); ctx.strokeStyle = "#fff59d"; ctx.lineWidth = Math.max(1, s * 0.1);
  ctx.setLineDash([s * 0.18, s * 0.12]); ctx.beginPath(); ctx.arc(x + s / 2, y + s / 2, s * 0.47, 0, Math.PI * 2); ctx.stroke();
  ctx.restore();
}

function drawReadyDot(ctx, x, y, s) {
  ctx.beginPath(); ctx.arc(x + s * 0.84, y + s * 0.16, Math.max(1.2, Math.min(s * 0.12, 4)), 0, Math.PI * 2);
  ctx.fillStyle = "#ffffff"; ctx.fill();
}

class GridRenderer {
  // `view` ({zoom, cx, cy}: zoom 1 fits the map; cx, cy the cell coordinates at the canvas's
  // centre, null for the map's centre) may be shared, so that two grids zoom and pan together.
  constructor(canvas, replay, view) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.replay = replay;
    this.view = view || { zoom: 1, cx: null, cy: null };
    this.wallLayer = document.createElement("canvas");
    this.cell = 1;
    this.ox = 0;
    this.oy = 0;
    this.sizeKey = "";
    // Converters' output items (to mark converters that hold something to take).
    const conv = replay.doc.converters;
    this.outputItems = (conv.output || []).map((out) => Object.keys(out || {}).map((k) => replay.items.indexOf(k)).filter((i) => i >= 0));
    // Objects by type, walls apart (they go into the static layer).
    const byType = new Map();
    const wallType = replay.typeNames.indexOf("wall");
    this.walls = [];
    for (let i = replay.A; i < replay.numObjects; i++) {
      const t = replay.objType[i];
      if (t === wallType) { this.walls.push(i); continue; }
      if (!byType.has(t)) byType.set(t, []);
      byType.get(t).push(i);
    }
    this.byType = byType;
    // What "fit" shows: the cells inside the map's solid wall border plus its innermost row or
    // column on each side, not the rest of the border, which holds nothing and would only make
    // the cells smaller. The border is found from the walls (whole rows and columns of them
    // from each edge inward), not from where objects stand, so every side shows its wall.
    const st = replay.start, H = replay.H, W = replay.W;
    const wallAt = new Set(this.walls.map((i) => st.row[i] * W + st.col[i]));
    const wallRow = (r) => { for (let c = 0; c < W; c++) if (!wallAt.has(r * W + c)) return false; return true; };
    const wallCol = (c) => { for (let r = 0; r < H; r++) if (!wallAt.has(r * W + c)) return false; return true; };
    let r0 = 0, r1 = H, c0 = 0, c1 = W;
    while (r0 < H && wallRow(r0)) r0++;
    while (r1 > r0 && wallRow(r1 - 1)) r1--;
    while (c0 < W && wallCol(c0)) c0++;
    while (c1 > c0 && wallCol(c1 - 1)) c1--;
    if (r0 >= r1 || c0 >= c1) { r0 = 0; c0 = 0; r1 = H; c1 = W; } // all walls: show everything
    this.bounds = { r0: Math.max(0, r0 - 1), c0: Math.max(0, c0 - 1),
                    r1: Math.min(H, r1 + 1), c1: Math.min(W, c1 + 1) };
    // Walls whose upper neighbour is not a wall get a lighter top edge (depth, not stripes).
    this.wallTops = this.walls.filter((i) => st.row[i] === 0 || !wallAt.has((st.row[i] - 1) * replay.W + st.col[i]));
  }

  // The fitted cell size at zoom 1, and the default centre (cell coordinates).
  baseCell(w, h) { const b = this.bounds; return Math.min(w / (b.c1 - b.c0), h / (b.r1 - b.r0)); }
  home() { const b = this.bounds; return [(b.c0 + b.c1) / 2, (b.r0 + b.r1) / 2]; }

  // Size the canvas to its box (CSS size x device pixel ratio) and place the grid in it by the
  // view; the wall layer is redrawn only when any of that changed.
  fit() {
    const rect = this.canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(rect.width * dpr)), h = Math.max(1, Math.round(rect.height * dpr));
    const R = this.replay, v = this.view;
    const key = `${w}x${h}:${v.zoom}:${v.cx}:${v.cy}`;
    if (key === this.sizeKey) return false;
    this.sizeKey = key;
    if (this.canvas.width !== w || this.canvas.height !== h) { this.canvas.width = w; this.canvas.height = h; }
    let s = Math.max(0.25, this.baseCell(w, h) * v.zoom);
    if (s >= 3) s = Math.floor(s); // whole pixels keep shapes crisp when there is room
    this.cell = s;
    const [hx, hy] = this.home();
    const cx = v.cx === null ? hx : v.cx, cy = v.cy === null ? hy : v.cy;
    this.ox = Math.round(w / 2 - cx * s);
    this.oy = Math.round(h / 2 - cy * s);
    this.drawWalls();
    return true;
  }

  drawWalls() {
    const R = this.replay, s = this.cell, L = this.wallLayer;
    L.width = this.canvas.width; L.height = this.canvas.height;
    const ctx = L.getContext("2d");
    ctx.fillStyle = "#0d0f14"; ctx.fillRect(0, 0, L.width, L.height);
    ctx.fillStyle = BACKGROUND; ctx.fillRect(this.ox, this.oy, s * R.W, s * R.H);
    // Only the cells in sight (zoomed in, most are not).
    const r0 = Math.max(0, Math.floor(-this.oy / s)), r1 = Math.min(R.H, Math.ceil((L.height - this.oy) / s));
    const c0 = Math.max(0, Math.floor(-this.ox / s)), c1 = Math.min(R.W, Math.ceil((L.width - this.ox) / s));
    if (s >= 8) { // faint grid lines help count cells when zoomed in enough to see them
      ctx.strokeStyle = GRID_LINE; ctx.lineWidth = 1; ctx.beginPath();
      for (let r = r0; r <= r1; r++) { ctx.moveTo(this.ox + c0 * s, this.oy + r * s + 0.5); ctx.lineTo(this.ox + c1 * s, this.oy + r * s + 0.5); }
      for (let c = c0; c <= c1; c++) { ctx.moveTo(this.ox + c * s + 0.5, this.oy + r0 * s); ctx.lineTo(this.ox + c * s + 0.5, this.oy + r1 * s); }
      ctx.stroke();
    }
    const st = R.start;
    const visible = this.walls.filter((i) => st.row[i] >= r0 && st.row[i] < r1 && st.col[i] >= c0 && st.col[i] < c1);
    ctx.fillStyle = OBJECT_STYLES.wall.fill; ctx.beginPath();
    for (const i of visible) ctx.rect(this.ox + st.col[i] * s, this.oy + st.row[i] * s, s, s);
    ctx.fill();
    if (s >= 6) { // a lighter top edge gives walls some depth
      ctx.fillStyle = "#4b5262"; ctx.beginPath();
      for (const i of this.wallTops) ctx.rect(this.ox + st.col[i] * s, this.oy + st.row[i] * s, s, Math.max(1, s * 0.18));
      ctx.fill();
    }
  }

  // Canvas pixel -> (fractional) cell coordinates, and back.
  toCell(px, py) { return [(px - this.ox) / this.cell, (py - this.oy) / this.cell]; }

  // Canvas pixel coordinates of a mouse event.
  pixel(event) {
    const rect = this.canvas.getBoundingClientRect();
    const dpr = this.canvas.width / Math.max(1, rect.width);
    return [(event.clientX - rect.left) * dpr, (event.clientY - rect.top) * dpr];
  }

  // The cell under a mouse event, or null outside the grid.
  cellAt(event) {
    const [x, y] = this.toCell(...this.pixel(event));
    const c = Math.floor(x), r = Math.floor(y);
    if (r < 0 || c < 0 || r >= this.replay.H || c >= this.replay.W) return null;
    return [r, c];
  }

  // Draw state `st`; `selected` is an object id or -1; `marks` a Set of agents to ring (diffs).
  render(st, selected, marks) {
    this.fit();
    const R = this.replay, ctx = this.ctx, s = this.cell, ox = this.ox, oy = this.oy;
    ctx.drawImage(this.wallLayer, 0, 0);
    ctx.lineWidth = Math.max(1, s * 0.07);
    ctx.lineJoin = "round";
    for (const [type, ids] of this.byType) {
      const style = styleOf(R.typeNames[type]);
      const ready = [], cooling = [], busy = [], dots = [];
      for (const i of ids) {
        const c = i - R.A;
        if (c >= 0 && c < R.C) {
          const state = st.cst[c];
          if (state === 2) cooling.push(i); else { ready.push(i); if (state === 1) busy.push(i); }
          const outs = this.outputItems[c];
          if (outs && outs.some((item) => st.cinv[c * R.I + item] > 0)) dots.push(i);
        } else ready.push(i);
      }
      for (const [list, alpha] of [[ready, 1], [cooling, 0.35]]) {
        if (!list.length) continue;
        ctx.beginPath();
        for (const i of list) shapePath(ctx, style.shape, ox + st.col[i] * s, oy + st.row[i] * s, s);
        ctx.globalAlpha = alpha; ctx.fillStyle = style.fill; ctx.fill();
        if (style.stroke && s >= 4) { ctx.strokeStyle = style.stroke; ctx.stroke(); }
        ctx.globalAlpha = 1;
      }
      if (s >= 4) {
        for (const i of busy) drawBusyRing(ctx, ox + st.col[i] * s, oy + st.row[i] * s, s);
        for (const i of dots) drawReadyDot(ctx, ox + st.col[i] * s, oy + st.row[i] * s, s);
      }
    }
    // Agents: one path per group colour, then the ice outlines of the frozen ones.
    const byGroup = new Map();
    const frozen = [];
    for (let a = 0; a < R.A; a++) {
      const g = R.agentGroup[a];
      if (!byGroup.has(g)) byGroup.set(g, []);
      byGroup.get(g).push(a);
      if (st.frz[a] > 0) frozen.push(a);
    }
    for (const [g, agents] of byGroup) {
      ctx.beginPath();
      for (const a of agents) agentPath(ctx, st.ori[a], ox + st.col[a] * s, oy + st.row[a] * s, s);
      ctx.fillStyle = groupColor(g); ctx.fill();
      if (s >= 6) { ctx.strokeStyle = "#000000"; ctx.lineWidth = Math.max(1, s * 0.06); ctx.stroke(); }
    }
    if (frozen.length) {
      ctx.beginPath();
      for (const a of frozen) ctx.rect(ox + st.col[a] * s + 0.5, oy + st.row[a] * s + 0.5, s - 1, s - 1);
      ctx.strokeStyle = ICE; ctx.lineWidth = Math.max(1.5, s * 0.16); ctx.stroke();
      ctx.fillStyle = "rgba(189, 243, 255, 0.35)"; ctx.fill();
    }
    if (marks && marks.size) {
      ctx.beginPath();
      for (const a of marks) { const x = ox + (st.col[a] + 0.5) * s, y = oy + (st.row[a] + 0.5) * s; ctx.moveTo(x + s * 0.75, y); ctx.arc(x, y, s * 0.75, 0, Math.PI * 2); }
      ctx.strokeStyle = "#ff3b3b"; ctx.lineWidth = Math.max(1.5, s * 0.12); ctx.stroke();
    }
    if (selected >= 0 && selected < R.numObjects) {
      const x = ox + st.col[selected] * s, y = oy + st.row[selected] * s, pad = Math.max(2, s * 0.2);
      ctx.strokeStyle = SELECTED; ctx.lineWidth = Math.max(2, s * 0.12);
      ctx.strokeRect(x - pad, y - pad, s + 2 * pad, s + 2 * pad);
    }
  }
}

// A small line chart of one or two series (reward so far), with the current step marked.
function drawLineChart(canvas, series, t, colors) {
  const rect = canvas.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.max(1, Math.round(rect.width * dpr)); canvas.height = Math.max(1, Math.round(rect.height * dpr));
  const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height, pad = 4 * dpr;
  ctx.fillStyle = "#0d0f14"; ctx.fillRect(0, 0, w, h);
  let lo = 0, hi = 0, n = 1;
  for (const v of series) { for (const x of v) { if (x < lo) lo = x; if (x > hi) hi = x; } n = Math.max(n, v.length - 1); }
  if (hi === lo) hi = lo + 1;
  const X = (i) => pad + ((w - 2 * pad) * i) / n, Y = (v) => h - pad - ((h - 2 * pad) * (v - lo)) / (hi - lo);
  ctx.strokeStyle = "#2c313c"; ctx.lineWidth = dpr; ctx.beginPath(); ctx.moveTo(pad, Y(0)); ctx.lineTo(w - pad, Y(0)); ctx.stroke();
  series.forEach((v, k) => {
    ctx.strokeStyle = colors[k]; ctx.lineWidth = 1.5 * dpr; ctx.beginPath();
    const stride = Math.max(1, Math.floor(v.length / (w / dpr))); // at most ~one point per pixel
    for (let i = 0; i < v.length; i += stride) { if (i === 0) ctx.moveTo(X(i), Y(v[i])); else ctx.lineTo(X(i), Y(v[i])); }
    ctx.lineTo(X(v.length - 1), Y(v[v.length - 1]));
    ctx.stroke();
  });
  ctx.strokeStyle = "#ffffff"; ctx.lineWidth = dpr; ctx.beginPath(); ctx.moveTo(X(t), pad); ctx.lineTo(X(t), h - pad); ctx.stroke();
  ctx.fillStyle = "#8b93a3"; ctx.font = `${10 * dpr}px sans-serif`;
  ctx.fillText(hi.toFixed(2), pad + 2, pad + 10 * dpr); ctx.fillText(lo.toFixed(2), pad + 2, h - pad - 2);
}
