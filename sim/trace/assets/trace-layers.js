// What is drawn under and beside the arrows: fault periods on the lanes
// (crashed, paused, byzantine, cut off by a partition), the strip of
// sequence-number bands above the lanes, and the density strips that replace
// single arrows when a window holds too many to tell apart.
//
// `g` is the geometry the main script shares: ctx, xOf, yOfLane, laneOf,
// LANE_H, TOP, SLOT_Y, SLOT_H, and the label placer of the current draw.
"use strict";
window.TraceLayers = function (DATA, g) {
  const GROUP_TINTS = ["rgba(59, 130, 246, 0.16)", "rgba(245, 158, 11, 0.20)", "rgba(16, 185, 129, 0.18)",
                       "rgba(236, 72, 153, 0.16)"];
  const GROUP_EDGES = ["#2563eb", "#d97706", "#059669", "#db2777"];
  const PERIOD_STYLE = {
    crashed: { fill: "rgba(75, 85, 99, 0.30)", hatch: "rgba(55, 65, 81, 0.55)", text: "#374151" },
    paused: { fill: "rgba(202, 138, 4, 0.22)", hatch: "rgba(161, 98, 7, 0.45)", text: "#854d0e" },
    byzantine: { fill: "rgba(239, 68, 68, 0.10)", hatch: null, text: "#b91c1c" },
    link: { fill: "rgba(220, 38, 38, 0.18)", hatch: null, text: "#b91c1c" },
  };
  const { ctx } = g;

  // ------------------------------------------------------------ periods
  function drawPeriods(t0, t1, labels) {
    const counts = { crashed: 0, paused: 0, byzantine: 0, link: 0, partition: 0 };
    const labelled = new Set();
    for (const [a, b, kind, replica, label, group] of DATA.periods) {
      if (b < t0 || a > t1) continue;
      const lane = replica === null ? undefined : g.laneOf.get(replica);
      if (lane === undefined) continue;
      const x0 = Math.max(g.xOf(a), g.xOf(t0)), x1 = Math.min(g.xOf(b), g.xOf(t1));
      const top = g.yOfLane(lane) - g.LANE_H / 2, h = g.LANE_H;
      counts[kind] = (counts[kind] || 0) + 1;
      if (kind === "partition") {
        const index = group < 0 ? GROUP_TINTS.length - 1 : group % GROUP_TINTS.length;
        ctx.fillStyle = GROUP_TINTS[index];
        ctx.fillRect(x0, top, x1 - x0, h);
        ctx.fillStyle = GROUP_EDGES[index];
        ctx.fillRect(x0, top + 2, 5, h - 4);  // a bar of the side's colour where the cut begins
        if (!labelled.has(a + label)) {
          labelled.add(a + label);
          labels.place("\u2702 " + label, g.xOf(a) + 8, top + 2, g.TOP, g.BOTTOM, { colour: "#1e3a8a" });
          if (b < DATA.tEnd) labels.place("healed", g.xOf(b) + 4, top + 2, g.TOP, g.BOTTOM, { colour: "#1e3a8a" });
        }
        continue;
      }
      const style = PERIOD_STYLE[kind] || PERIOD_STYLE.link;
      ctx.fillStyle = style.fill;
      if (kind === "link") ctx.fillRect(x0, top + h - 8, x1 - x0, 6);
      else ctx.fillRect(x0, top, x1 - x0, h);
      if (style.hatch) hatch(x0, top, x1 - x0, h, style.hatch);
      labels.place(label, g.xOf(a) + 4, top + 2, top, top + h, { colour: style.text });
      if (kind === "crashed" && b < DATA.tEnd) {
        labels.place("recovered", g.xOf(b) + 4, top + 2, top, top + h, { colour: style.text });
      }
    }
    return counts;
  }

  function hatch(x, y, w, h, colour) {
    ctx.save();
    ctx.beginPath(); ctx.rect(x, y, w, h); ctx.clip();
    ctx.strokeStyle = colour; ctx.lineWidth = 1.5;
    ctx.beginPath();
    for (let k = x - h; k < x + w; k += 10) { ctx.moveTo(k, y + h); ctx.lineTo(k + h, y); }
    ctx.stroke();
    ctx.restore();
  }

  // ------------------------------------------------------------ sequence-number bands
  // A band spans a slot from its first proposal until a quorum of replicas (n - f) has
  // executed it (a replica that was down catches up later; that is not the slot's
  // story); bands alternate between two rows because consecutive slots overlap.
  const enough = Math.max(1, (DATA.meta.n || 1) - (DATA.meta.f || 0));
  const spans = DATA.slots.map((slot) => {
    let a = Infinity, b = -Infinity;
    for (const p of slot.proposals) { a = Math.min(a, p[0]); b = Math.max(b, p[0]); }
    for (const s of slot.states) a = Math.min(a, s[0]);
    const executed = slot.states.filter((s) => s[2] === 3).map((s) => s[0]).sort((x, y) => x - y);
    const last = slot.states.length ? slot.states[slot.states.length - 1][0] : a;
    b = Math.max(b, executed.length >= enough ? executed[enough - 1] : last);
    return [a, b];
  });
  const bandBoxes = [];

  function drawSlotBands(t0, t1, selected, batchColour, labels) {
    bandBoxes.length = 0;
    let drawnBands = 0;
    const rowH = (g.SLOT_H - 6) / 2;
    DATA.slots.forEach((slot, k) => {
      const [a, b] = spans[k];
      if (b < t0 || a > t1 || !isFinite(a)) return;
      const x0 = g.xOf(a), x1 = Math.max(g.xOf(b), x0 + 3);
      const y = g.SLOT_Y + 3 + (slot.seq % 2) * rowH;
      const batches = new Set(slot.proposals.map((p) => p[2]));
      if (batches.size > 1) {  // one stripe per rival batch
        const list = Array.from(batches);
        list.forEach((index, j) => {
          ctx.fillStyle = batchColour(slot.seq, index);
          ctx.fillRect(x0, y + (j * (rowH - 2)) / list.length, x1 - x0, (rowH - 2) / list.length);
        });
      } else {
        ctx.fillStyle = slot.seq % 2 ? "#9ca3af" : "#d1d5db";
        ctx.fillRect(x0, y, x1 - x0, rowH - 2);
      }
      if (slot.seq === selected) {
        ctx.strokeStyle = "#111827"; ctx.lineWidth = 2.5;
        ctx.strokeRect(x0 - 1, y - 1, x1 - x0 + 2, rowH);
      }
      bandBoxes.push([x0, y, x1, y + rowH, slot.seq]);
      drawnBands++;
      const text = "#" + slot.seq;
      ctx.font = "bold 11px system-ui, sans-serif";
      if (ctx.measureText(text).width + 8 < x1 - x0) {
        labels.block(x0, y, x1, y + rowH);
        ctx.fillStyle = batches.size > 1 ? "#ffffff" : "#111827";
        ctx.textBaseline = "top";
        ctx.fillText(text, x0 + 3, y);
      }
    });
    return drawnBands;
  }

  function bandAt(px, py) {
    for (const [x0, y0, x1, y1, seq] of bandBoxes) if (px >= x0 && px <= x1 && py >= y0 && py <= y1) return seq;
    return null;
  }

  // ------------------------------------------------------------ overview
  // Per lane, messages sent per few pixels as a bar, coloured by the phase most of them belong to.
  function drawDensity(list, count, FROM, TYPE, STATUS, T0, phaseOfType, colours) {
    const BIN = 4;
    const bins = Math.ceil(g.plotW() / BIN) + 1;
    const lanes = DATA.lanes.length, phases = DATA.phases.length;
    const per = new Int32Array(lanes * bins), phase = new Int32Array(lanes * bins * phases);
    const drops = new Int32Array(lanes * bins);
    let max = 1;
    for (let k = 0; k < count; k++) {
      const i = list[k];
      const lane = g.laneOf.get(FROM[i]);
      if (lane === undefined) continue;
      const bin = Math.floor((g.xOf(T0[i]) - g.LABEL_W) / BIN);
      if (bin < 0 || bin >= bins) continue;
      const cell = lane * bins + bin;
      per[cell]++;
      phase[cell * phases + phaseOfType[TYPE[i]]]++;
      if (STATUS[i] === 1) drops[cell]++;
      if (per[cell] > max) max = per[cell];
    }
    let drawnBins = 0;
    for (let lane = 0; lane < lanes; lane++) {
      const y = g.yOfLane(lane);
      for (let bin = 0; bin < bins; bin++) {
        const cell = lane * bins + bin;
        if (!per[cell]) continue;
        let best = 0;
        for (let p = 1; p < phases; p++) if (phase[cell * phases + p] > phase[cell * phases + best]) best = p;
        const h = Math.max(2, (g.LANE_H - 12) * Math.sqrt(per[cell] / max));
        ctx.fillStyle = colours[DATA.phases[best]] || "#94a3b8";
        ctx.fillRect(g.LABEL_W + bin * BIN, y - h / 2, BIN - 1, h);
        if (drops[cell]) { ctx.fillStyle = "#b91c1c"; ctx.fillRect(g.LABEL_W + bin * BIN, y + g.LANE_H / 2 - 5, BIN - 1, 3); }
        drawnBins++;
      }
    }
    return drawnBins;
  }

  return { drawPeriods, drawSlotBands, bandAt, drawDensity };
};
