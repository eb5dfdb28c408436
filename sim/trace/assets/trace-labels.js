// Text labels on the canvas that never overlap.
//
// Every label asks for a spot; the placer tries the preferred spot, then
// rows above and below it inside the allowed band, and skips the label when
// no row is free (the tooltip and the step line still tell what it was). The
// boxes of what was drawn are kept, so the page can publish how many labels
// overlap (always 0) and how many were skipped.
"use strict";
window.TraceLabels = function (ctx) {
  const boxes = [];
  let hidden = 0;
  const ROW = 15;

  function overlaps(box) {
    for (const b of boxes) {
      if (box.x0 < b.x1 && b.x0 < box.x1 && box.y0 < b.y1 && b.y0 < box.y1) return true;
    }
    return false;
  }

  // Reserve a box (a mark, a glyph) so no label is written over it.
  function block(x0, y0, x1, y1) { boxes.push({ x0, y0, x1, y1, text: null }); }

  // Find a spot for `text` with its top-left near (x, y), within [minY, maxY]; returns whether
  // it will be drawn (by flush).
  function place(text, x, y, minY, maxY, style) {
    ctx.font = style.font || "bold 13px system-ui, sans-serif";
    const w = ctx.measureText(text).width + 6;
    const h = ROW;
    for (let k = 0; k < 12; k++) {
      const dy = k === 0 ? 0 : (k % 2 ? 1 : -1) * Math.ceil(k / 2) * ROW;
      const top = y + dy;
      if (top < minY || top + h > maxY) continue;
      const box = { x0: x - 2, y0: top, x1: x - 2 + w, y1: top + h, text };
      if (overlaps(box)) continue;
      box.font = ctx.font;
      box.colour = style.colour || "#111827";
      box.x = x + 1;
      boxes.push(box);
      return true;
    }
    hidden++;
    return false;
  }

  // Labels are written last, over the arrows, on a light backing so they stay readable.
  function flush() {
    ctx.textBaseline = "top";
    for (const box of boxes) {
      if (box.text === null) continue;
      ctx.font = box.font;
      ctx.fillStyle = "rgba(255, 255, 255, 0.88)";
      ctx.fillRect(box.x0, box.y0, box.x1 - box.x0, box.y1 - box.y0);
      ctx.fillStyle = box.colour;
      ctx.fillText(box.text, box.x, box.y0 + 1);
    }
  }

  // Pairs of drawn labels whose boxes intersect (what the tests check is 0).
  function overlapCount() {
    let count = 0;
    const labels = boxes.filter((b) => b.text !== null);
    for (let i = 0; i < labels.length; i++) {
      for (let j = i + 1; j < labels.length; j++) {
        const a = labels[i], b = labels[j];
        if (a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1) count++;
      }
    }
    return count;
  }

  return {
    place,
    block,
    flush,
    overlapCount,
    drawn: () => boxes.filter((b) => b.text !== null).length,
    hidden: () => hidden,
    texts: () => boxes.filter((b) => b.text !== null).map((b) => b.text),
  };
};
