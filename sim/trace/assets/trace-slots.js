// The per-slot panel: for one sequence number, which batches were proposed
// and how far each replica got with each of them (sim/trace/derive.py, slots).
//
// While stepping, only what had happened by the cursor's time is shown, so a
// class can watch certificates form one message at a time.
"use strict";
window.TraceSlots = function (DATA, helpers) {
  const panel = document.getElementById("slot-panel");
  const bySeq = new Map();
  for (const slot of DATA.slots) bySeq.set(slot.seq, slot);
  const seqs = DATA.slots.map((s) => s.seq);
  const replicas = DATA.lanes.filter((l) => l.kind === "replica");
  let selected = null;
  let lastT = Infinity;

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }
  function chip(slot, index) {
    const span = el("span", slot.digests[index].slice(0, 8), "digest");
    span.style.borderColor = helpers.batchColour(slot.seq, index);
    span.style.color = helpers.batchColour(slot.seq, index);
    return span;
  }

  function show(cursorT) {
    lastT = cursorT === undefined ? Infinity : cursorT;
    panel.replaceChildren();
    const ds = document.body.dataset;
    if (selected === null || !bySeq.has(selected)) {
      panel.append(el("p", seqs.length
        ? "Click a slot band or an arrow, or press [ / ], to see one sequence number."
        : "No PRE-PREPARE, PREPARE or COMMIT in this trace carries a digest.", "hint"));
      ds.slot = ""; ds.slotCells = "0"; ds.slotProposals = "0";
      return;
    }
    const slot = bySeq.get(selected);
    const head = el("h2", "sequence number " + slot.seq);
    const nav = el("span", null, "slot-nav");
    const prev = el("button", "\u25C0 [");
    const next = el("button", "] \u25B6");
    prev.title = "previous sequence number ([)"; next.title = "next sequence number (])";
    prev.addEventListener("click", () => step(-1));
    next.addEventListener("click", () => step(1));
    nav.append(prev, next);
    head.append(nav);
    panel.append(head);

    const proposals = slot.proposals.filter((p) => p[0] <= lastT);
    const list = el("ul", null, "proposals");
    for (const [t, view, index, from, count] of proposals) {
      const item = el("li");
      item.append(el("span", helpers.fmt(t) + " ms  view " + view + ": " + helpers.nameOf(from) +
        " proposed batch "), chip(slot, index), el("span", " to " + count + " replica" + (count === 1 ? "" : "s")));
      list.append(item);
    }
    const distinct = new Set(proposals.map((p) => p[2])).size;
    if (distinct > 1) {
      list.append(el("li", distinct + " different batches proposed for this sequence number", "rival"));
    }
    if (!proposals.length) list.append(el("li", "no proposal yet"));
    panel.append(list);

    const table = el("table");
    const header = el("tr");
    header.append(el("th", "replica"));
    for (const stage of DATA.stages) header.append(el("th", stage));
    table.append(header);
    let cells = 0;
    for (const lane of replicas) {
      const row = el("tr");
      row.append(el("th", lane.label));
      for (let stage = 0; stage < DATA.stages.length; stage++) {
        const cell = el("td");
        const reached = slot.states.filter((s) => s[1] === lane.id && s[2] === stage && s[0] <= lastT);
        for (const [t, , , view, index] of reached) {
          const entry = el("span", "v" + view + " ", "state");
          entry.title = helpers.fmt(t) + " ms";
          entry.append(chip(slot, index));
          cell.append(entry);
        }
        if (reached.length) cells++; else cell.textContent = "\u2014";
        row.append(cell);
      }
      table.append(row);
    }
    panel.append(table);
    panel.append(el("p", "pre-prepared: sent the PRE-PREPARE or a PREPARE for it; prepared: sent a COMMIT; " +
      "committed: received matching COMMITs from a quorum; executed: ran the batch.", "hint"));
    ds.slot = String(slot.seq);
    ds.slotCells = String(cells);
    ds.slotProposals = String(proposals.length);
    ds.slotBatches = String(distinct);
  }

  function select(seq) {
    if (seq === null || seq === undefined || !bySeq.has(seq)) return false;
    selected = seq;
    show(lastT);
    helpers.onSelect(seq);
    return true;
  }
  function step(direction) {
    if (!seqs.length) return;
    let k = selected === null ? (direction > 0 ? -1 : seqs.length) : seqs.indexOf(selected);
    k = Math.max(0, Math.min(seqs.length - 1, k + direction));
    select(seqs[k]);
  }

  show();
  return { select, step, show, selected: () => selected, has: (seq) => bySeq.has(seq), slot: (seq) => bySeq.get(seq) };
};
