// Message-sequence picture of a ledgersim run (see sim/trace/html.py for the model).
//
// Everything is drawn on one canvas, and only what falls inside the visible
// time window, so 100k messages cost a redraw, not 100k DOM nodes. Counters of
// what was drawn are published as data-* attributes on <body>, which is how
// the tests (headless Chromium) check the picture without looking at pixels.
// Fault periods, sequence-number bands and the zoomed-out density strips are
// drawn by trace-layers.js, labels placed by trace-labels.js, the per-slot
// panel is trace-slots.js and the header and legend trace-header.js.
//
// This file is longer than the project's usual ~500 lines on purpose: it is one
// closure over the typed-array model, the draw loop, stepping and the mouse,
// which all share the view state; what stands alone lives in those other files.
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
  // Rival batches for one sequence number: colours far from each other and from the phases'.
  const BATCH_COLOURS = ["#111827", "#e11d48", "#0d9488", "#ca8a04"];
  const MARK_COLOURS = { fault: "#b91c1c", view_change: "#c026d3", new_view: "#a21caf", commit: "#15803d" };
  const LABEL_W = 170, AXIS_H = 30, SLOT_H = 30, LANE_H = 48, PAD_R = 18, PAD_B = 12;
  const TOP = AXIS_H + SLOT_H;
  const DELIVERED = 0, DROPPED = 1, IN_FLIGHT = 2;
  const STATUS_NAMES = ["delivered", "dropped", "never delivered (run ended)"];

  // ---------------------------------------------------------------- model
  const msgs = DATA.msgs;
  const N = msgs.length;
  const T0 = new Float64Array(N), T1 = new Float64Array(N);
  const FROM = new Int32Array(N), TO = new Int32Array(N), TYPE = new Int32Array(N);
  const VIEW = new Int32Array(N), SEQ = new Int32Array(N), STATUS = new Int8Array(N);
  const REASON = new Int32Array(N), BYTES = new Int32Array(N), BATCH = new Int8Array(N);
  const DIGEST = new Array(N);
  let maxDur = 0;
  for (let i = 0; i < N; i++) {
    const m = msgs[i];
    T0[i] = m[0]; T1[i] = m[1]; FROM[i] = m[2]; TO[i] = m[3]; TYPE[i] = m[4];
    VIEW[i] = m[5]; SEQ[i] = m[6]; STATUS[i] = m[7]; BYTES[i] = m[8]; REASON[i] = m[9];
    DIGEST[i] = m[10] || "";
    if (m[1] - m[0] > maxDur) maxDur = m[1] - m[0];
  }
  const phaseOfType = DATA.typePhase;
  const marks = DATA.marks;
  const lanes = DATA.lanes;
  const laneOf = new Map();
  lanes.forEach((lane, index) => laneOf.set(lane.id, index));

  // Which batch of its slot each digest-carrying message names, when the slot had rivals.
  const batchOf = new Map();  // seq -> Map(digest -> index)
  const contested = new Set();
  for (const slot of DATA.slots) {
    batchOf.set(slot.seq, new Map(slot.digests.map((d, k) => [d, k])));
    if (new Set(slot.proposals.map((p) => p[2])).size > 1) contested.add(slot.seq);
  }
  for (let i = 0; i < N; i++) {
    BATCH[i] = -1;
    if (DIGEST[i] && contested.has(SEQ[i])) {
      const index = batchOf.get(SEQ[i]).get(DIGEST[i]);
      if (index !== undefined) BATCH[i] = index;
    }
  }
  const batchColour = (seq, index) => (contested.has(seq) ? BATCH_COLOURS[index % BATCH_COLOURS.length] : "#374151");

  const firstT = Math.min(N ? T0[0] : Infinity, marks.length ? marks[0][0] : Infinity);
  const tStart = isFinite(firstT) ? Math.max(0, firstT) : 0;
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
  const pad = (tEnd - tStart) * 0.01;
  const fullWindow = [0, tEnd + pad];
  const st = {
    t0: fullWindow[0],
    t1: fullWindow[1],
    view: null,
    seqLo: null,
    seqHi: null,
    keepUnnumbered: true,
    phaseOn: DATA.phases.map(() => true),
    cursor: -1,
    mode: "auto",      // "auto" | "detail" | "overview"
    batches: true,     // colour rival batches
  };

  // The window never starts before time 0 and never grows past four whole runs.
  function setWindow(t0, t1) {
    const span = Math.max(0.01, Math.min((fullWindow[1] - fullWindow[0]) * 4, t1 - t0));
    t0 = Math.max(0, t0);
    st.t0 = t0; st.t1 = t0 + span;
  }

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
  let overview = false;
  const drawnMarks = [];

  const xOf = (t) => LABEL_W + ((t - st.t0) / (st.t1 - st.t0)) * plotW;
  const tOf = (x) => st.t0 + ((x - LABEL_W) / plotW) * (st.t1 - st.t0);
  const yOfLane = (index) => TOP + index * LANE_H + LANE_H / 2;
  const yOf = (principal) => yOfLane(laneOf.has(principal) ? laneOf.get(principal) : 0);
  const BOTTOM = TOP + lanes.length * LANE_H;
  const layers = window.TraceLayers(DATA, {
    ctx, xOf, yOfLane, laneOf, LANE_H, TOP, BOTTOM, LABEL_W, SLOT_Y: AXIS_H, SLOT_H, plotW: () => plotW,
  });

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
    const H = BOTTOM + PAD_B;
    canvas.width = Math.round(W * dpr);
    canvas.height = Math.round(H * dpr);
    canvas.style.height = H + "px";
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    plotW = W - LABEL_W - PAD_R;
    const cursorT = st.cursor >= 0 ? stepTime(steps[st.cursor]) : Infinity;
    const current = st.cursor >= 0 ? steps[st.cursor] : null;
    const labels = window.TraceLabels(ctx);
    const selected = slotPanel ? slotPanel.selected() : null;

    // Lanes and their names.
    ctx.textBaseline = "middle";
    lanes.forEach((lane, index) => {
      const y = yOfLane(index);
      if (index % 2 === 0) { ctx.fillStyle = "#f9fafb"; ctx.fillRect(0, y - LANE_H / 2, W, LANE_H); }
      ctx.strokeStyle = lane.kind === "client" ? "#93c5fd" : "#9ca3af";
      ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(LABEL_W, y); ctx.lineTo(W - PAD_R, y); ctx.stroke();
      ctx.fillStyle = lane.byzantine ? "#b91c1c" : lane.kind === "client" ? "#1d4ed8" : "#111827";
      ctx.font = "bold 15px system-ui, sans-serif";
      const [name, note] = lane.label.split(" (");
      ctx.fillText(name, 8, note ? y - 8 : y);
      if (note) { ctx.font = "bold 12px system-ui, sans-serif"; ctx.fillText("(" + note, 8, y + 9); }
    });
    ctx.font = "12px system-ui, sans-serif"; ctx.fillStyle = "#6b7280"; ctx.textBaseline = "middle";
    ctx.fillText("sequence numbers", 8, AXIS_H + SLOT_H / 2);

    // Time axis (never below 0 ms).
    const step = niceStep((st.t1 - st.t0) / Math.max(1, plotW / 100));
    ctx.fillStyle = "#4b5563"; ctx.strokeStyle = "#e5e7eb"; ctx.font = "13px system-ui, sans-serif";
    ctx.textBaseline = "alphabetic"; ctx.textAlign = "center";
    const decimals = Math.max(0, -Math.floor(Math.log10(step)));
    let firstTick = null;
    for (let k = Math.ceil(Math.max(0, st.t0) / step); k * step <= st.t1; k++) {
      const t = k * step;
      const x = xOf(t);
      if (firstTick === null) firstTick = t;
      ctx.beginPath(); ctx.moveTo(x, AXIS_H - 6); ctx.lineTo(x, H - PAD_B); ctx.stroke();
      ctx.fillText(t.toFixed(decimals) + " ms", x, AXIS_H - 10);
    }
    ctx.textAlign = "left";

    ctx.save();
    ctx.beginPath(); ctx.rect(LABEL_W, 0, plotW, H); ctx.clip();

    const periodCounts = layers.drawPeriods(st.t0, st.t1, labels);
    const bands = layers.drawSlotBands(st.t0, st.t1, selected, batchColour, labels);

    // Which messages are in the window; too many to tell apart means the overview.
    drawnCount = 0;
    let drops = 0, rivals = 0;
    const first = lowerBound(st.t0 - maxDur);
    for (let i = first; i < N && T0[i] <= st.t1; i++) {
      if (T1[i] < st.t0 || !msgVisible(i)) continue;
      drawn[drawnCount++] = i;
      if (STATUS[i] === DROPPED) drops++;
    }
    overview = st.mode === "overview" || (st.mode === "auto" && drawnCount > Math.max(1500, plotW * 1.2));
    let bins = 0, digestLabels = 0;
    if (overview) {
      bins = layers.drawDensity(drawn, drawnCount, FROM, TYPE, STATUS, T0, phaseOfType, PHASE_COLOURS);
    } else {
      // Bucketed by colour and status so each bucket is one stroke.
      const buckets = new Map();
      const future = [];
      for (let k = 0; k < drawnCount; k++) {
        const i = drawn[k];
        if (T0[i] > cursorT) { future.push(i); continue; }
        const rival = st.batches && BATCH[i] >= 0;
        if (rival) rivals++;
        const colour = rival ? BATCH_COLOURS[BATCH[i] % BATCH_COLOURS.length]
          : PHASE_COLOURS[DATA.phases[phaseOfType[TYPE[i]]]] || "#94a3b8";
        const key = colour + "/" + STATUS[i] + "/" + (rival ? 1 : 0);
        if (!buckets.has(key)) buckets.set(key, []);
        buckets.get(key).push(i);
      }
      for (const [key, list] of buckets) {
        const [colour, status, rival] = key.split("/");
        strokeMessages(list, colour, Number(status), 1, rival === "1" ? 2.4 : 1.4);
      }
      if (future.length) strokeMessages(future, "#9ca3af", DELIVERED, 0.15, 1.2);
      digestLabels = drawDigestLabels(labels, cursorT);
    }
    if (current !== null && current >= 0) strokeMessages([current], "#111827", STATUS[current], 1, 3.5);

    // Marks on their lanes.
    drawnMarks.length = 0;
    const counts = { fault: 0, view_change: 0, new_view: 0, commit: 0 };
    for (let j = 0; j < marks.length; j++) {
      const m = marks[j];
      if (m[0] < st.t0 || m[0] > st.t1 || !markVisible(j)) continue;
      ctx.globalAlpha = m[0] > cursorT ? 0.25 : 1;
      drawMark(m, xOf(m[0]), j === (current !== null && current < 0 ? -current - 1 : -1), labels);
      ctx.globalAlpha = 1;
      counts[m[1]] = (counts[m[1]] || 0) + 1;
      drawnMarks.push(j);
    }
    labels.flush();
    if (st.cursor >= 0) {
      const x = xOf(cursorT);
      ctx.strokeStyle = "#111827"; ctx.setLineDash([2, 3]); ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(x, AXIS_H - 4); ctx.lineTo(x, H - PAD_B); ctx.stroke();
      ctx.setLineDash([]);
    }
    ctx.restore();

    const ds = document.body.dataset;
    ds.arrowsTotal = String(N);
    ds.arrowsDrawn = overview ? "0" : String(drawnCount);
    ds.arrowsInWindow = String(drawnCount);
    ds.dropsDrawn = overview ? "0" : String(drops);
    ds.rivalArrowsDrawn = String(rivals);
    ds.digestLabelsDrawn = String(digestLabels);
    ds.mode = overview ? "overview" : "detail";
    ds.densityBins = String(bins);
    ds.slotBandsDrawn = String(bands);
    ds.viewChangesDrawn = String(counts.new_view);
    ds.viewChangeAttemptsDrawn = String(counts.view_change);
    ds.faultsDrawn = String(counts.fault);
    ds.commitsDrawn = String(counts.commit);
    ds.crashedDrawn = String(periodCounts.crashed);
    ds.pausedDrawn = String(periodCounts.paused);
    ds.byzantineDrawn = String(periodCounts.byzantine);
    ds.partitionLanesDrawn = String(periodCounts.partition);
    ds.labelsDrawn = String(labels.drawn());
    ds.labelsHidden = String(labels.hidden());
    ds.labelOverlaps = String(labels.overlapCount());
    ds.labelTexts = JSON.stringify(labels.texts());
    ds.axisStart = String(firstTick === null ? st.t0 : firstTick);
    ds.windowStart = String(st.t0);
    ds.lanes = String(lanes.length);
    ds.draws = String(Number(ds.draws || 0) + 1);
    ds.rendered = "1";
    document.getElementById("window-label").textContent =
      fmtMs(st.t0) + " \u2013 " + fmtMs(st.t1) + " ms, " +
      (overview ? drawnCount + " messages (overview: zoom in for arrows)" : drawnCount + " arrows");
  }

  function strokeMessages(list, colour, status, alpha, width) {
    const size = 5 + (width > 2 ? 1 : 0);
    ctx.globalAlpha = alpha;
    ctx.strokeStyle = colour;
    ctx.fillStyle = colour;
    ctx.lineWidth = width;
    ctx.setLineDash(status === DROPPED ? [6, 4] : status === IN_FLIGHT ? [1, 3] : []);
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
      ctx.lineWidth = 2;
      for (const i of list) {
        const [x1, y1] = endPoint(i);
        ctx.moveTo(x1 - 5, y1 - 5); ctx.lineTo(x1 + 5, y1 + 5);
        ctx.moveTo(x1 + 5, y1 - 5); ctx.lineTo(x1 - 5, y1 + 5);
      }
      ctx.stroke();
    }
    ctx.globalAlpha = 1;
  }

  // A PRE-PREPARE's digest at its start, when few enough are in view to read them.
  function drawDigestLabels(labels, cursorT) {
    const pps = [];
    for (let k = 0; k < drawnCount; k++) {
      const i = drawn[k];
      if (DIGEST[i] && DATA.phases[phaseOfType[TYPE[i]]] === "pre-prepare" && T0[i] <= cursorT) pps.push(i);
    }
    if (!pps.length) return 0;
    const proposals = new Map();  // one label per proposal, not per recipient
    for (const i of pps) {
      const key = FROM[i] + "/" + SEQ[i] + "/" + DIGEST[i];
      if (!proposals.has(key)) proposals.set(key, i);
    }
    if (proposals.size > plotW / 90) return 0;  // more would hide the arrows; zoom in to read them
    let count = 0;
    for (const i of proposals.values()) {
      const colour = BATCH[i] >= 0 && st.batches ? BATCH_COLOURS[BATCH[i] % BATCH_COLOURS.length] : "#9a3412";
      const y = yOf(FROM[i]);
      const up = yOf(TO[i]) < y;
      const text = "#" + SEQ[i] + " " + DIGEST[i].slice(0, 6);
      if (labels.place(text, xOf(T0[i]) + 4, up ? y - 17 : y + 3, TOP, BOTTOM, { colour, font: "bold 12px ui-monospace, monospace" })) count++;
    }
    return count;
  }

  function drawMark(m, x, highlighted, labels) {
    const colour = MARK_COLOURS[m[1]] || "#374151";
    ctx.strokeStyle = colour; ctx.fillStyle = colour; ctx.lineWidth = highlighted ? 3 : 2;
    const lane = m[2] === null || m[2] === undefined ? undefined : laneOf.get(m[2]);
    const y = lane === undefined ? TOP + 8 : yOfLane(lane);
    const top = lane === undefined ? TOP : y - LANE_H / 2;
    const bottom = lane === undefined ? BOTTOM : y + LANE_H / 2;
    if (m[1] === "fault") {
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, bottom); ctx.stroke();
      if (lane === undefined && !m[3].startsWith("partition")) {  // partitions are labelled by their period
        labels.place("\u26A1 " + m[3], x + 4, top + 2, TOP, BOTTOM, { colour });
      } else if (lane !== undefined && !/^(crash|recover|byzantine|pause|resume)/.test(m[3])) {
        labels.place("\u26A1 " + m[3], x + 4, top + 2, top, bottom, { colour });
      }
    } else if (m[1] === "view_change" || m[1] === "new_view") {
      const r = highlighted ? 9 : 7;
      ctx.beginPath(); ctx.moveTo(x, y - r); ctx.lineTo(x + r, y); ctx.lineTo(x, y + r); ctx.lineTo(x - r, y);
      ctx.closePath();
      if (m[1] === "new_view") {
        ctx.fill();
        labels.block(x - r, y - r, x + r, y + r);
        labels.place("view " + m[4], x + r + 2, y - r - 8, top, bottom, { colour });
      } else {
        ctx.fillStyle = "#ffffff"; ctx.fill(); ctx.stroke();
        labels.block(x - r, y - r, x + r, y + r);
      }
    } else {
      ctx.beginPath(); ctx.arc(x, y, highlighted ? 6 : 4, 0, 2 * Math.PI); ctx.fill();
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
    if (DIGEST[i]) numbers.push("batch " + DIGEST[i].slice(0, 8) + (BATCH[i] >= 0 ? " (rival #" + (BATCH[i] + 1) + ")" : ""));
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

  // ---------------------------------------------------------------- per-slot panel
  const slotPanel = window.TraceSlots(DATA, {
    batchColour, nameOf, fmt: fmtMs,
    onSelect: () => { if (document.body.dataset.rendered === "1") draw(); },
  });

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
    if (t < st.t0 || t > st.t1) { const span = st.t1 - st.t0; setWindow(t - span / 2, t + span / 2); }
    info.textContent = "event " + (k + 1) + " of " + steps.length + ":  " +
      (s >= 0 ? describeMsg(s) : describeMark(-s - 1));
    document.body.dataset.cursor = String(k);
    const seq = s >= 0 ? SEQ[s] : marks[-s - 1][5];
    slotPanel.show(t);
    if (seq >= 0 && slotPanel.has(seq)) slotPanel.select(seq); else draw();
  }
  function cursorOff() {
    st.cursor = -1;
    delete document.body.dataset.cursor;
    info.textContent = "Showing every event. Step with \u2190 / \u2192.";
    slotPanel.show(Infinity);
    draw();
  }

  // ---------------------------------------------------------------- zoom and pan
  function zoom(factor, aroundT) {
    const t = aroundT === undefined ? (st.t0 + st.t1) / 2 : aroundT;
    const span = (st.t1 - st.t0) * factor;
    const ratio = (t - st.t0) / (st.t1 - st.t0);
    setWindow(t - ratio * span, t - ratio * span + span);
    draw();
  }
  function fit() { setWindow(fullWindow[0], fullWindow[1]); draw(); }

  let drag = null;
  canvas.addEventListener("mousedown", (e) => {
    drag = { x: e.clientX, t0: st.t0, t1: st.t1, moved: false };
    canvas.classList.add("dragging");
  });
  window.addEventListener("mouseup", (e) => {
    if (drag && !drag.moved) click(e);
    drag = null;
    canvas.classList.remove("dragging");
  });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const rect = canvas.getBoundingClientRect();
    zoom(e.deltaY > 0 ? 1.25 : 0.8, tOf(e.clientX - rect.left));
  }, { passive: false });

  // A click on a sequence-number band or a numbered arrow opens that slot in the panel.
  function click(e) {
    const rect = canvas.getBoundingClientRect();
    const px = e.clientX - rect.left, py = e.clientY - rect.top;
    if (px < 0 || py < 0 || px > rect.width || py > rect.height) return;
    const band = layers.bandAt(px, py);
    if (band !== null) { slotPanel.select(band); return; }
    const i = nearestArrow(px, py);
    if (i >= 0 && SEQ[i] >= 0) slotPanel.select(SEQ[i]);
  }

  // ---------------------------------------------------------------- hover
  const tooltip = document.getElementById("tooltip");
  let hoverPending = null;
  canvas.addEventListener("mousemove", (e) => {
    if (drag) {
      if (Math.abs(e.clientX - drag.x) > 3) drag.moved = true;
      const dt = ((e.clientX - drag.x) / plotW) * (drag.t1 - drag.t0);
      setWindow(drag.t0 - dt, drag.t1 - dt);
      draw();
      return;
    }
    const rect = canvas.getBoundingClientRect();
    hoverPending = [e.clientX - rect.left, e.clientY - rect.top];
    window.requestAnimationFrame(hover);
  });
  canvas.addEventListener("mouseleave", () => { tooltip.hidden = true; });
  function nearestArrow(px, py) {
    if (overview) return -1;
    let best = -1, bestD = 36;
    for (let k = 0; k < drawnCount; k++) {
      const i = drawn[k];
      const [x1, y1, y0] = endPoint(i);
      const d = segmentDistance2(px, py, xOf(T0[i]), y0, x1, y1);
      if (d < bestD) { bestD = d; best = i; }
    }
    return best;
  }
  function hover() {
    if (!hoverPending) return;
    const [px, py] = hoverPending;
    hoverPending = null;
    let text = "";
    const best = nearestArrow(px, py);
    if (best >= 0) text = describeMsg(best).split("  |  ").join("\n");
    else if (overview && py > TOP) text = "zoomed out: bars show messages sent per lane.\nZoom in (+ or wheel) to see arrows.";
    const band = layers.bandAt(px, py);
    if (band !== null) text = "sequence number " + band + " (click for its panel)";
    let bestD = 36;
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
    tooltip.style.left = Math.min(px + 14, stage.clientWidth - 300) + "px";
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
  const modeSelect = document.getElementById("mode");
  const batchBox = document.getElementById("batch-colours");
  const numberOrNull = (text) => (text === "" || isNaN(Number(text)) ? null : Number(text));
  function readFilters() {
    st.view = numberOrNull(viewSelect.value);
    st.seqLo = numberOrNull(seqLo.value);
    st.seqHi = numberOrNull(seqHi.value);
    st.keepUnnumbered = keep.checked;
    st.mode = modeSelect.value;
    st.batches = batchBox.checked;
    writeHash();
    draw();
  }
  for (const el of [viewSelect, seqLo, seqHi, keep, modeSelect, batchBox]) el.addEventListener("change", readFilters);
  seqLo.addEventListener("input", readFilters);
  seqHi.addEventListener("input", readFilters);

  window.TraceHeader(DATA, {
    N, TYPE, STATUS, phaseOfType, marks, contested, tStart, fmtMs,
    PHASE_COLOURS, BATCH_COLOURS, MARK_COLOURS,
    onPhase: (p, on) => { st.phaseOn[p] = on; draw(); },
  });

  const buttons = {
    "step-first": () => moveCursor("first"),
    "step-back": () => moveCursor(st.cursor < 0 ? "first" : -1),
    "step-fwd": () => moveCursor(1),
    "step-last": () => moveCursor("last"),
    "step-off": cursorOff,
    "zoom-in": () => zoom(0.5),
    "zoom-out": () => zoom(2),
    "zoom-fit": fit,
    "slot-prev": () => slotPanel.step(-1),
    "slot-next": () => slotPanel.step(1),
  };
  for (const [id, action] of Object.entries(buttons)) {
    const button = document.getElementById(id);
    if (button) button.addEventListener("click", action);
  }
  window.addEventListener("keydown", (e) => {
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
    const keys = { ArrowRight: "step-fwd", ArrowLeft: "step-back", Home: "step-first", End: "step-last",
                   Escape: "step-off", "+": "zoom-in", "=": "zoom-in", "-": "zoom-out", "0": "zoom-fit",
                   "[": "slot-prev", "]": "slot-next" };
    if (keys[e.key]) { e.preventDefault(); buttons[keys[e.key]](); }
    else if (e.key === "o") { modeSelect.value = overview ? "detail" : "overview"; readFilters(); }
    else if (e.key === "b") { batchBox.checked = !batchBox.checked; readFilters(); }
  });
  window.addEventListener("resize", draw);

  // State in the URL (#view=1&seq=3-9&t=0-500&step=12&slot=4&mode=overview), so a picture can be shared as a link.
  function writeHash() {
    const parts = [];
    if (st.view !== null) parts.push("view=" + st.view);
    if (st.seqLo !== null || st.seqHi !== null) parts.push("seq=" + (st.seqLo ?? "") + "-" + (st.seqHi ?? ""));
    if (!st.keepUnnumbered) parts.push("keep=0");
    if (st.mode !== "auto") parts.push("mode=" + st.mode);
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
    if (["auto", "detail", "overview"].includes(params.get("mode"))) { st.mode = params.get("mode"); modeSelect.value = st.mode; }
    if (params.has("t")) {
      const [a, b] = params.get("t").split("-").map(Number);
      if (isFinite(a) && isFinite(b) && b > a) setWindow(a, b);
    }
    if (params.has("slot")) slotPanel.select(Number(params.get("slot")));
    return params.has("step") ? Number(params.get("step")) : null;
  }

  // ---------------------------------------------------------------- first draw
  const startStep = readHash();
  draw();
  if (startStep !== null && startStep > 0) {
    for (let k = 0; k < startStep; k++) moveCursor(1);
  }
})();
