// Message-sequence picture of a ledgersim run (see sim/trace/html.py for the model).
//
// Everything is drawn on one canvas, and only what falls inside the visible
// time window, so 100k messages cost a redraw, not 100k DOM nodes. Counters of
// what was drawn are published as data-* attributes on <body>, which is how
// the tests (headless Chromium) check the picture without looking at pixels.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("trace-data").textContent);
  const PHASE_COLOURS = {
    "request": "#2563eb",
    "pre-prepare": "#ea580c",
    "prepare": "#16a34a",
    "commit": "#9333ea",
    "reply": "#0891b2",
    "checkpoint": "#a16207",
    "view-change": "#dc2626",
    "new-view": "#db2777",
    "state-transfer": "#4b5563",
    "other": "#94a3b8",
  };
  const MARK_COLOURS = { fault: "#b91c1c", view_change: "#c026d3", commit: "#15803d" };
  const LABEL_W = 150, AXIS_H = 30, LANE_H = 42, PAD_R = 18, PAD_B = 12;
  const DELIVERED = 0, DROPPED = 1, IN_FLIGHT = 2;
  const STATUS_NAMES = ["delivered", "dropped", "never delivered (run ended)"];

  // ---------------------------------------------------------------- model
  const msgs = DATA.msgs;
  const N = msgs.length;
  const T0 = new Float64Array(N), T1 = new Float64Array(N);
  const FROM = new Int32Array(N), TO = new Int32Array(N), TYPE = new Int32Array(N);
  const VIEW = new Int32Array(N), SEQ = new Int32Array(N), STATUS = new Int8Array(N);
  const REASON = new Int32Array(N), BYTES = new Int32Array(N);
  let maxDur = 0;
  for (let i = 0; i < N; i++) {
    const m = msgs[i];
    T0[i] = m[0]; T1[i] = m[1]; FROM[i] = m[2]; TO[i] = m[3]; TYPE[i] = m[4];
    VIEW[i] = m[5]; SEQ[i] = m[6]; STATUS[i] = m[7]; BYTES[i] = m[8]; REASON[i] = m[9];
    if (m[1] - m[0] > maxDur) maxDur = m[1] - m[0];
  }
  const phaseOfType = DATA.typePhase;
  const marks = DATA.marks;
  const lanes = DATA.lanes;
  const laneOf = new Map();
  lanes.forEach((lane, index) => laneOf.set(lane.id, index));
  const tStart = N ? Math.min(T0[0], marks.length ? marks[0][0] : Infinity) : (marks.length ? marks[0][0] : 0);
  const tEnd = Math.max(DATA.tEnd, tStart + 1);

  // Events in time order, for stepping: message i as i, mark j as -(j + 1).
  const steps = new Int32Array(N + marks.length);
  {
    let a = 0, b = 0, k = 0;
    while (a < N || b < marks.length) {
      if (b >= marks.length || (a < N && T0[a] <= marks[b][0])) steps[k++] = a++;
      else steps[k++] = -(b++ + 1);
    }
  }
  const stepTime = (s) => (s >= 0 ? T0[s] : marks[-s - 1][0]);

  // ---------------------------------------------------------------- state
  const st = {
    t0: tStart - (tEnd - tStart) * 0.01,
    t1: tEnd + (tEnd - tStart) * 0.01,
    view: null,
    seqLo: null,
    seqHi: null,
    keepUnnumbered: true,
    phaseOn: DATA.phases.map(() => true),
    cursor: -1,
  };
  const fullWindow = [st.t0, st.t1];

  function msgVisible(i) {
    if (!st.phaseOn[phaseOfType[TYPE[i]]]) return false;
    if (st.view !== null) {
      if (VIEW[i] < 0) { if (!st.keepUnnumbered) return false; }
      else if (VIEW[i] !== st.view) return false;
    }
    if (st.seqLo !== null || st.seqHi !== null) {
      if (SEQ[i] < 0) return st.keepUnnumbered;
      if (st.seqLo !== null && SEQ[i] < st.seqLo) return false;
      if (st.seqHi !== null && SEQ[i] > st.seqHi) return false;
    }
    return true;
  }
  function markVisible(j) {
    const m = marks[j];
    if (m[1] !== "commit") return true;
    if (st.view !== null && m[4] !== st.view) return false;
    if (st.seqLo !== null && m[5] < st.seqLo) return false;
    if (st.seqHi !== null && m[5] > st.seqHi) return false;
    return true;
  }
  const stepVisible = (s) => (s >= 0 ? msgVisible(s) : markVisible(-s - 1));

  // ---------------------------------------------------------------- canvas
  const canvas = document.getElementById("canvas");
  const ctx = canvas.getContext("2d");
  const stage = document.getElementById("stage");
  let plotW = 100;
  const drawn = new Int32Array(N);
  let drawnCount = 0;
  const drawnMarks = [];

  const xOf = (t) => LABEL_W + ((t - st.t0) / (st.t1 - st.t0)) * plotW;
  const tOf = (x) => st.t0 + ((x - LABEL_W) / plotW) * (st.t1 - st.t0);
  const yOfLane = (index) => AXIS_H + index * LANE_H + LANE_H / 2;
  const yOf = (principal) => yOfLane(laneOf.has(principal) ? laneOf.get(principal) : 0);

  function lowerBound(t) {
    let lo = 0, hi = N;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (T0[mid] < t) lo = mid + 1; else hi = mid; }
    return lo;
  }

  function niceStep(raw) {
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const k of [1, 2, 5, 10]) if (k * p >= raw) return k * p;
    return 10 * p;
  }
  const fmtMs = (t) => (Math.abs(t) >= 100 ? t.toFixed(0) : Math.abs(t) >= 1 ? t.toFixed(1) : t.toFixed(3));

  function endPoint(i) {
    // Where the arrow ends: the receiver's lane, or part-way for a message lost on the wire.
    const y0 = yOf(FROM[i]), y1 = yOf(TO[i]);
    const reason = REASON[i] >= 0 ? DATA.reasons[REASON[i]] : "";
    const reached = STATUS[i] === DELIVERED || reason.startsWith("rejected") || reason === "crashed";
    const yEnd = reached ? y1 : y0 + (y1 - y0) * 0.6;
    return [xOf(T1[i]), yEnd, y0];
  }

  function draw() {
    const dpr = window.devicePixelRatio || 1;
    const W = Math.max(400, stage.clientWidth);
    const H = AXIS_H + lanes.length * LANE_H + PAD_B;
    canvas.width = Math.round(W * dpr);
    canvas.height = Math.round(H * dpr);
    canvas.style.height = H + "px";
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    plotW = W - LABEL_W - PAD_R;
    const cursorT = st.cursor >= 0 ? stepTime(steps[st.cursor]) : Infinity;
    const current = st.cursor >= 0 ? steps[st.cursor] : null;

    // Lanes and labels.
    ctx.font = "13px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    lanes.forEach((lane, index) => {
      const y = yOfLane(index);
      if (index % 2 === 0) { ctx.fillStyle = "#f9fafb"; ctx.fillRect(0, y - LANE_H / 2, W, LANE_H); }
      ctx.strokeStyle = lane.kind === "client" ? "#93c5fd" : "#9ca3af";
      ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(LABEL_W, y); ctx.lineTo(W - PAD_R, y); ctx.stroke();
      ctx.fillStyle = lane.byzantine ? "#b91c1c" : lane.kind === "client" ? "#1d4ed8" : "#111827";
      ctx.fillText(lane.label, 8, y);
    });

    // Time axis.
    const step = niceStep((st.t1 - st.t0) / Math.max(1, plotW / 90));
    ctx.fillStyle = "#6b7280"; ctx.strokeStyle = "#e5e7eb"; ctx.font = "11px system-ui, sans-serif";
    ctx.textBaseline = "alphabetic"; ctx.textAlign = "center";
    const decimals = Math.max(0, -Math.floor(Math.log10(step)));
    for (let k = Math.ceil(st.t0 / step); k * step <= st.t1; k++) {
      const t = k * step;
      const x = xOf(t);
      ctx.beginPath(); ctx.moveTo(x, AXIS_H - 6); ctx.lineTo(x, H - PAD_B); ctx.stroke();
      ctx.fillText(t.toFixed(decimals) + " ms", x, AXIS_H - 10);
    }
    ctx.textAlign = "left";

    ctx.save();
    ctx.beginPath(); ctx.rect(LABEL_W, 0, plotW, H); ctx.clip();

    // Messages, bucketed by phase and status so each bucket is one stroke.
    const phases = DATA.phases.length;
    const buckets = [];
    for (let k = 0; k < phases * 3; k++) buckets.push([]);
    drawnCount = 0;
    let drops = 0;
    const first = lowerBound(st.t0 - maxDur);
    for (let i = first; i < N && T0[i] <= st.t1; i++) {
      if (T1[i] < st.t0 || !msgVisible(i)) continue;
      drawn[drawnCount++] = i;
      if (STATUS[i] === DROPPED) drops++;
      buckets[phaseOfType[TYPE[i]] * 3 + STATUS[i]].push(i);
    }
    const future = [];
    for (let k = 0; k < buckets.length; k++) {
      const list = buckets[k];
      if (!list.length) continue;
      const status = k % 3;
      const colour = PHASE_COLOURS[DATA.phases[(k - status) / 3]] || "#94a3b8";
      strokeMessages(list.filter((i) => T0[i] <= cursorT), colour, status, 1);
      for (const i of list) if (T0[i] > cursorT) future.push(i);
    }
    if (future.length) strokeMessages(future, "#9ca3af", DELIVERED, 0.15);
    if (current !== null && current >= 0) {
      ctx.save();
      ctx.lineWidth = 3;
      strokeMessages([current], "#111827", STATUS[current], 1, 3);
      ctx.restore();
    }

    // Marks on their lanes (faults across every lane when they name no replica).
    drawnMarks.length = 0;
    const counts = { fault: 0, view_change: 0, commit: 0 };
    for (let j = 0; j < marks.length; j++) {
      const m = marks[j];
      if (m[0] < st.t0 || m[0] > st.t1 || !markVisible(j)) continue;
      const x = xOf(m[0]);
      const alpha = m[0] > cursorT ? 0.25 : 1;
      ctx.globalAlpha = alpha;
      drawMark(m, x, j === (current !== null && current < 0 ? -current - 1 : -1));
      ctx.globalAlpha = 1;
      counts[m[1]] = (counts[m[1]] || 0) + 1;
      drawnMarks.push(j);
    }
    if (st.cursor >= 0) {
      const x = xOf(cursorT);
      ctx.strokeStyle = "#111827"; ctx.setLineDash([2, 3]); ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(x, AXIS_H - 4); ctx.lineTo(x, H - PAD_B); ctx.stroke();
      ctx.setLineDash([]);
    }
    ctx.restore();

    const ds = document.body.dataset;
    ds.arrowsTotal = String(N);
    ds.arrowsDrawn = String(drawnCount);
    ds.dropsDrawn = String(drops);
    ds.viewChangesDrawn = String(counts.view_change);
    ds.faultsDrawn = String(counts.fault);
    ds.commitsDrawn = String(counts.commit);
    ds.lanes = String(lanes.length);
    ds.draws = String(Number(ds.draws || 0) + 1);
    ds.rendered = "1";
    document.getElementById("window-label").textContent =
      fmtMs(st.t0) + " \u2013 " + fmtMs(st.t1) + " ms, " + drawnCount + " arrows";
  }

  function strokeMessages(list, colour, status, alpha, head) {
    const size = head || 5;
    ctx.globalAlpha = alpha;
    ctx.strokeStyle = colour;
    ctx.fillStyle = colour;
    ctx.lineWidth = ctx.lineWidth > 1 ? ctx.lineWidth : 1.2;
    ctx.setLineDash(status === DROPPED ? [5, 4] : status === IN_FLIGHT ? [1, 3] : []);
    ctx.beginPath();
    for (const i of list) {
      const [x1, y1, y0] = endPoint(i);
      ctx.moveTo(xOf(T0[i]), y0);
      ctx.lineTo(x1, y1);
    }
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.beginPath();
    if (status === DELIVERED) {
      for (const i of list) {
        const [x1, y1, y0] = endPoint(i);
        const angle = Math.atan2(y1 - y0, x1 - xOf(T0[i]));
        ctx.moveTo(x1, y1);
        ctx.lineTo(x1 - (size + 2) * Math.cos(angle - 0.4), y1 - (size + 2) * Math.sin(angle - 0.4));
        ctx.lineTo(x1 - (size + 2) * Math.cos(angle + 0.4), y1 - (size + 2) * Math.sin(angle + 0.4));
        ctx.closePath();
      }
      ctx.fill();
    } else if (status === DROPPED) {
      for (const i of list) {
        const [x1, y1] = endPoint(i);
        ctx.moveTo(x1 - 4, y1 - 4); ctx.lineTo(x1 + 4, y1 + 4);
        ctx.moveTo(x1 + 4, y1 - 4); ctx.lineTo(x1 - 4, y1 + 4);
      }
      ctx.stroke();
    }
    ctx.globalAlpha = 1;
  }

  function drawMark(m, x, highlighted) {
    const colour = MARK_COLOURS[m[1]] || "#374151";
    ctx.strokeStyle = colour; ctx.fillStyle = colour; ctx.lineWidth = highlighted ? 3 : 1.5;
    const lane = m[2] === null || m[2] === undefined ? null : laneOf.get(m[2]);
    if (m[1] === "fault") {
      const top = lane === undefined || lane === null ? AXIS_H : yOfLane(lane) - LANE_H / 2;
      const bottom = lane === undefined || lane === null ? AXIS_H + lanes.length * LANE_H : top + LANE_H;
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, bottom); ctx.stroke();
      ctx.font = "bold 11px system-ui, sans-serif"; ctx.textBaseline = "top";
      ctx.fillText("\u26A1 " + m[3].split(":")[0], x + 3, top + 2);
    } else if (m[1] === "view_change") {
      const y = lane === undefined ? AXIS_H + 8 : yOfLane(lane);
      const r = highlighted ? 8 : 6;
      ctx.beginPath(); ctx.moveTo(x, y - r); ctx.lineTo(x + r, y); ctx.lineTo(x, y + r); ctx.lineTo(x - r, y);
      ctx.closePath(); ctx.fill();
      ctx.font = "bold 11px system-ui, sans-serif"; ctx.textBaseline = "bottom";
      ctx.fillText("v" + m[4], x + r + 2, y - 2);
    } else {
      const y = lane === undefined ? AXIS_H + 8 : yOfLane(lane);
      ctx.beginPath(); ctx.arc(x, y, highlighted ? 5 : 3, 0, 2 * Math.PI); ctx.fill();
    }
  }

  // ---------------------------------------------------------------- descriptions
  const nameOf = (p) => { const k = laneOf.get(p); return k === undefined ? String(p) : lanes[k].label; };
  function describeMsg(i) {
    const type = DATA.types[TYPE[i]];
    const parts = [type + "  " + nameOf(FROM[i]) + " \u2192 " + nameOf(TO[i])];
    const numbers = [];
    if (VIEW[i] >= 0) numbers.push("view " + VIEW[i]);
    if (SEQ[i] >= 0) numbers.push("seq " + SEQ[i]);
    if (numbers.length) parts.push(numbers.join(", "));
    let fate = STATUS_NAMES[STATUS[i]];
    if (STATUS[i] === DROPPED && REASON[i] >= 0) fate += " (" + DATA.reasons[REASON[i]] + ")";
    parts.push("sent " + fmtMs(T0[i]) + " ms, " + fate + " at " + fmtMs(T1[i]) + " ms");
    if (BYTES[i]) parts.push(BYTES[i] + " bytes");
    return parts.join("  |  ");
  }
  function describeMark(j) {
    const m = marks[j];
    const where = m[2] === null || m[2] === undefined ? "network" : nameOf(m[2]);
    return fmtMs(m[0]) + " ms  " + where + ": " + m[3];
  }

  // ---------------------------------------------------------------- stepping
  const info = document.getElementById("step-info");
  function moveCursor(direction) {
    let k = st.cursor;
    if (direction === "first") { k = -1; direction = 1; }
    if (direction === "last") { k = steps.length; direction = -1; }
    for (k += direction; k >= 0 && k < steps.length; k += direction) {
      if (stepVisible(steps[k])) break;
    }
    if (k < 0 || k >= steps.length) return;
    st.cursor = k;
    const s = steps[k];
    const t = stepTime(s);
    const span = st.t1 - st.t0;
    if (t < st.t0 || t > st.t1) { st.t0 = t - span / 2; st.t1 = t + span / 2; }
    info.textContent = "event " + (k + 1) + " of " + steps.length + ":  " +
      (s >= 0 ? describeMsg(s) : describeMark(-s - 1));
    document.body.dataset.cursor = String(k);
    draw();
  }
  function cursorOff() {
    st.cursor = -1;
    delete document.body.dataset.cursor;
    info.textContent = "Showing every event. Step with \u2190 / \u2192.";
    draw();
  }

  // ---------------------------------------------------------------- zoom and pan
  function zoom(factor, aroundT) {
    const t = aroundT === undefined ? (st.t0 + st.t1) / 2 : aroundT;
    const span = Math.max(0.01, Math.min((fullWindow[1] - fullWindow[0]) * 4, (st.t1 - st.t0) * factor));
    const ratio = (t - st.t0) / (st.t1 - st.t0);
    st.t0 = t - ratio * span;
    st.t1 = st.t0 + span;
    draw();
  }
  function fit() { st.t0 = fullWindow[0]; st.t1 = fullWindow[1]; draw(); }

  let drag = null;
  canvas.addEventListener("mousedown", (e) => {
    drag = { x: e.clientX, t0: st.t0, t1: st.t1 };
    canvas.classList.add("dragging");
  });
  window.addEventListener("mouseup", () => { drag = null; canvas.classList.remove("dragging"); });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const rect = canvas.getBoundingClientRect();
    zoom(e.deltaY > 0 ? 1.25 : 0.8, tOf(e.clientX - rect.left));
  }, { passive: false });

  // ---------------------------------------------------------------- hover
  const tooltip = document.getElementById("tooltip");
  let hoverPending = null;
  canvas.addEventListener("mousemove", (e) => {
    if (drag) {
      const dt = ((e.clientX - drag.x) / plotW) * (drag.t1 - drag.t0);
      st.t0 = drag.t0 - dt; st.t1 = drag.t1 - dt;
      draw();
      return;
    }
    const rect = canvas.getBoundingClientRect();
    hoverPending = [e.clientX - rect.left, e.clientY - rect.top];
    window.requestAnimationFrame(hover);
  });
  canvas.addEventListener("mouseleave", () => { tooltip.hidden = true; });
  function hover() {
    if (!hoverPending) return;
    const [px, py] = hoverPending;
    hoverPending = null;
    let best = -1, bestD = 36, text = "";
    for (let k = 0; k < drawnCount; k++) {
      const i = drawn[k];
      const [x1, y1, y0] = endPoint(i);
      const d = segmentDistance2(px, py, xOf(T0[i]), y0, x1, y1);
      if (d < bestD) { bestD = d; best = i; }
    }
    if (best >= 0) text = describeMsg(best).split("  |  ").join("\n");
    for (const j of drawnMarks) {
      const m = marks[j];
      const lane = laneOf.get(m[2]);
      const y = lane === undefined ? py : yOfLane(lane);
      const d = (xOf(m[0]) - px) ** 2 + (y - py) ** 2;
      if (d < bestD) { bestD = d; text = describeMark(j); }
    }
    if (!text) { tooltip.hidden = true; return; }
    tooltip.textContent = text;
    tooltip.hidden = false;
    tooltip.style.left = Math.min(px + 14, stage.clientWidth - 260) + "px";
    tooltip.style.top = py + 14 + "px";
  }
  function segmentDistance2(px, py, ax, ay, bx, by) {
    const dx = bx - ax, dy = by - ay;
    const len = dx * dx + dy * dy;
    const u = len ? Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / len)) : 0;
    const cx = ax + u * dx, cy = ay + u * dy;
    return (px - cx) ** 2 + (py - cy) ** 2;
  }

  // ---------------------------------------------------------------- controls
  const viewSelect = document.getElementById("view-filter");
  const views = new Set();
  for (let i = 0; i < N; i++) if (VIEW[i] >= 0) views.add(VIEW[i]);
  for (const m of marks) if (m[4] >= 0) views.add(m[4]);
  for (const v of Array.from(views).sort((a, b) => a - b)) {
    const option = document.createElement("option");
    option.value = String(v); option.textContent = String(v);
    viewSelect.appendChild(option);
  }
  const seqLo = document.getElementById("seq-lo"), seqHi = document.getElementById("seq-hi");
  const keep = document.getElementById("keep-unnumbered");
  const numberOrNull = (text) => (text === "" || isNaN(Number(text)) ? null : Number(text));
  function readFilters() {
    st.view = numberOrNull(viewSelect.value);
    st.seqLo = numberOrNull(seqLo.value);
    st.seqHi = numberOrNull(seqHi.value);
    st.keepUnnumbered = keep.checked;
    writeHash();
    draw();
  }
  for (const el of [viewSelect, seqLo, seqHi, keep]) el.addEventListener("change", readFilters);
  seqLo.addEventListener("input", readFilters);
  seqHi.addEventListener("input", readFilters);

  const legend = document.getElementById("legend");
  const phaseCounts = DATA.phases.map(() => 0);
  for (let i = 0; i < N; i++) phaseCounts[phaseOfType[TYPE[i]]]++;
  DATA.phases.forEach((phase, p) => {
    if (!phaseCounts[p]) return;
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox"; box.checked = true; box.dataset.phase = phase;
    box.addEventListener("change", () => { st.phaseOn[p] = box.checked; draw(); });
    const swatch = document.createElement("span");
    swatch.className = "swatch"; swatch.style.background = PHASE_COLOURS[phase];
    label.append(box, swatch, document.createTextNode(phase + " (" + phaseCounts[p] + ")"));
    legend.appendChild(label);
  });
  const dropped = document.createElement("span");
  const dash = document.createElement("span");
  dash.className = "swatch dashed";
  dropped.append(dash, document.createTextNode(" dropped \u00D7"));
  legend.appendChild(dropped);
  for (const [kind, symbol, text] of [["view_change", "\u25C6", "view change"], ["fault", "\u26A1", "fault"], ["commit", "\u25CF", "commit"]]) {
    const span = document.createElement("span");
    const glyph = document.createElement("b");
    glyph.style.color = MARK_COLOURS[kind];
    glyph.textContent = symbol;
    span.append(glyph, document.createTextNode(" " + text));
    legend.appendChild(span);
  }

  const buttons = {
    "step-first": () => moveCursor("first"),
    "step-back": () => moveCursor(st.cursor < 0 ? "first" : -1),
    "step-fwd": () => moveCursor(1),
    "step-last": () => moveCursor("last"),
    "step-off": cursorOff,
    "zoom-in": () => zoom(0.5),
    "zoom-out": () => zoom(2),
    "zoom-fit": fit,
  };
  for (const [id, action] of Object.entries(buttons)) document.getElementById(id).addEventListener("click", action);
  window.addEventListener("keydown", (e) => {
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
    const keys = { ArrowRight: "step-fwd", ArrowLeft: "step-back", Home: "step-first", End: "step-last",
                   Escape: "step-off", "+": "zoom-in", "=": "zoom-in", "-": "zoom-out", "0": "zoom-fit" };
    if (keys[e.key]) { e.preventDefault(); buttons[keys[e.key]](); }
  });
  window.addEventListener("resize", draw);

  // State in the URL (#view=1&seq=3-9&t=0-500&step=12), so a picture can be shared as a link.
  function writeHash() {
    const parts = [];
    if (st.view !== null) parts.push("view=" + st.view);
    if (st.seqLo !== null || st.seqHi !== null) parts.push("seq=" + (st.seqLo ?? "") + "-" + (st.seqHi ?? ""));
    if (!st.keepUnnumbered) parts.push("keep=0");
    try { history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname); } catch (e) { /* file:// in some browsers */ }
  }
  function readHash() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    if (params.has("view")) { viewSelect.value = params.get("view"); st.view = numberOrNull(params.get("view")); }
    if (params.has("seq")) {
      const [lo, hi] = params.get("seq").split("-");
      seqLo.value = lo || ""; seqHi.value = hi || "";
      st.seqLo = numberOrNull(lo || ""); st.seqHi = numberOrNull(hi || "");
    }
    if (params.get("keep") === "0") { keep.checked = false; st.keepUnnumbered = false; }
    if (params.has("t")) {
      const [a, b] = params.get("t").split("-").map(Number);
      if (isFinite(a) && isFinite(b) && b > a) { st.t0 = a; st.t1 = b; }
    }
    return params.has("step") ? Number(params.get("step")) : null;
  }

  // ---------------------------------------------------------------- summary and first draw
  const meta = DATA.meta || {};
  const count = (kind) => marks.filter((m) => m[1] === kind).length;
  let droppedTotal = 0;
  for (let i = 0; i < N; i++) if (STATUS[i] === DROPPED) droppedTotal++;
  const bits = [];
  if (meta.n !== undefined) bits.push("n = " + meta.n + ", f = " + meta.f);
  if (meta.seed !== undefined) bits.push("seed " + meta.seed);
  bits.push(N + " messages (" + droppedTotal + " dropped)");
  bits.push(count("view_change") + " view changes", count("fault") + " faults", count("commit") + " commits");
  bits.push(fmtMs(tStart) + "\u2013" + fmtMs(DATA.tEnd) + " ms virtual time");
  document.getElementById("summary").textContent = bits.join(" \u00B7 ");
  document.body.dataset.viewChangesTotal = String(count("view_change"));
  document.body.dataset.dropsTotal = String(droppedTotal);

  const startStep = readHash();
  draw();
  if (startStep !== null && startStep > 0) {
    for (let k = 0; k < startStep; k++) moveCursor(1);
  }
})();
