// The page's header (the run's figures in one line, a warning if the trace was
// cut off) and the legend, whose phase boxes switch phases on and off.
//
// `k` holds what the main script computed: the message columns, marks,
// colours, the set of contested sequence numbers and `onPhase(p, on)`.
"use strict";
window.TraceHeader = function (DATA, k) {
  const { N, TYPE, STATUS, phaseOfType, marks, contested, tStart, fmtMs } = k;
  const { PHASE_COLOURS, BATCH_COLOURS, MARK_COLOURS } = k;
  const DROPPED = 1;
  const legend = document.getElementById("legend");
  const phaseCounts = DATA.phases.map(() => 0);
  for (let i = 0; i < N; i++) phaseCounts[phaseOfType[TYPE[i]]]++;
  DATA.phases.forEach((phase, p) => {
    if (!phaseCounts[p]) return;
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox"; box.checked = true; box.dataset.phase = phase;
    box.addEventListener("change", () => k.onPhase(p, box.checked));
    const swatch = document.createElement("span");
    swatch.className = "swatch"; swatch.style.background = PHASE_COLOURS[phase];
    label.append(box, swatch, document.createTextNode(phase + " (" + phaseCounts[p] + ")"));
    legend.appendChild(label);
  });
  function legendItem(glyphText, colour, text, cls) {
    const span = document.createElement("span");
    const glyph = document.createElement("b");
    if (cls) glyph.className = cls;
    glyph.style.color = colour;
    glyph.textContent = glyphText;
    span.append(glyph, document.createTextNode(" " + text));
    legend.appendChild(span);
  }
  legendItem("\u2715", "#555", "dropped (dashed)");
  if (contested.size) {
    const span = document.createElement("span");
    span.className = "rivals";
    span.append(document.createTextNode("rival batches for one seq: "));
    BATCH_COLOURS.slice(0, 3).forEach((c, index) => {
      const sw = document.createElement("span");
      sw.className = "swatch thick"; sw.style.background = c;
      span.append(sw, document.createTextNode(" " + (index + 1) + (index < 2 ? "  " : "")));
    });
    legend.appendChild(span);
  }
  legendItem("\u25C7", MARK_COLOURS.view_change, "asks for a new view");
  legendItem("\u25C6", MARK_COLOURS.new_view, "installs a new view");
  legendItem("\u26A1", MARK_COLOURS.fault, "fault");
  legendItem("\u25CF", MARK_COLOURS.commit, "executes a batch");
  if (DATA.periods.some((p) => p[2] === "crashed")) legendItem("\u2592", "#4b5563", "crashed");
  if (DATA.periods.some((p) => p[2] === "paused")) legendItem("\u2592", "#a16207", "paused");
  if (DATA.periods.some((p) => p[2] === "partition")) legendItem("\u2702", "#2563eb", "partition: lanes tinted by side");

  // The summary line, with the figures the tests read as data-* attributes.
  const meta = DATA.meta || {};
  const count = (kind) => marks.filter((m) => m[1] === kind).length;
  const plural = (k, word) => k + " " + word + (k === 1 ? "" : "s");
  let droppedTotal = 0;
  for (let i = 0; i < N; i++) if (STATUS[i] === DROPPED) droppedTotal++;
  const vf = DATA.views;
  const bits = [];
  if (meta.n !== undefined) bits.push("n = " + meta.n + ", f = " + meta.f);
  if (meta.seed !== undefined) bits.push("seed " + meta.seed);
  bits.push(plural(N, "message") + " (" + droppedTotal + " dropped)");
  bits.push(plural(vf.installed, "view change") + " installed" +
    (vf.installedViews.length ? " (" + vf.installedViews.map((v) => "view " + v).join(", ") + ")" : ""));
  bits.push("highest view reached " + vf.highest);
  bits.push(plural(count("fault"), "fault"), plural(count("commit"), "batch execution"));
  if (contested.size) bits.push(plural(contested.size, "sequence number") + " with rival batches");
  bits.push(fmtMs(tStart) + "\u2013" + fmtMs(DATA.tEnd) + " ms virtual time");
  document.getElementById("summary").textContent = bits.join(" \u00B7 ");
  const warnings = document.getElementById("warnings");
  if (DATA.warnings.length) { warnings.hidden = false; warnings.textContent = "\u26A0 " + DATA.warnings.join("; "); }
  const ds = document.body.dataset;
  ds.viewChangesTotal = String(vf.installed);
  ds.highestView = String(vf.highest);
  ds.viewChangeAttempts = String(vf.attempts);
  ds.dropsTotal = String(droppedTotal);
  ds.contestedSeqs = String(contested.size);
  ds.warnings = String(DATA.warnings.length);

};
