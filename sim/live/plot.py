"""A nemesis run as a picture: commits per second, with each fault's window shaded.

Plain SVG, written by hand (no plotting library), so the file opens in any
browser and can sit beside the JSON report.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

WIDTH, HEIGHT, MARGIN = 900, 300, 40
STACK = (("committed", "#3a3"), ("refused", "#aaa"), ("timed_out", "#e90"), ("error", "#a33"))
"""How each second's requests ended, bottom to top, and their colours."""


def timeline_svg(report: dict[str, Any]) -> str:
    rows = report["timeline"]
    seconds = max(1, len(rows), int(max((f["healed_s"] for f in report["faults"]), default=0)) + 1)
    peak = max([1, *(sum(r[key] for key, _ in STACK) for r in rows)])
    plot_w, plot_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN

    def x(t: float) -> float:
        return MARGIN + plot_w * t / seconds

    def y(v: float) -> float:
        return MARGIN + plot_h * (1 - v / peak)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{MARGIN}" y="16">nemesis on {escape(report["network"])}: seed '
        f"{report['seed']}, {report['rate']:g} tx/s offered; green committed, grey refused, "
        "orange timed out per second; red: faults</text>",
    ]
    for number, fault in enumerate(report["faults"]):
        x0, x1 = x(fault["struck_s"]), x(fault["healed_s"])
        label_y = MARGIN + 12 + 14 * (number % 2)  # alternate rows: neighbours do not overlap
        label = f"{fault['kind']} {fault['targets'] or ''}"
        parts += [
            f'<rect x="{x0:.1f}" y="{MARGIN}" width="{max(1.0, x1 - x0):.1f}" '
            f'height="{plot_h}" fill="#f4b6b6" opacity="0.6"/>',
            f'<text x="{x0 + 2:.1f}" y="{label_y}" fill="#900">{escape(label)}</text>',
        ]
    bar = plot_w / seconds * 0.8
    for row in rows:
        base = 0
        for key, colour in STACK:
            value = row[key]
            if value:
                parts.append(
                    f'<rect x="{x(row["t"]):.1f}" y="{y(base + value):.1f}" width="{bar:.1f}" '
                    f'height="{y(base) - y(base + value):.1f}" fill="{colour}"/>'
                )
            base += value
    parts += [
        f'<line x1="{MARGIN}" y1="{y(0)}" x2="{WIDTH - MARGIN}" y2="{y(0)}" stroke="#000"/>',
        f'<text x="{MARGIN}" y="{HEIGHT - 12}">0 s</text>',
        f'<text x="{WIDTH - MARGIN - 30}" y="{HEIGHT - 12}">{seconds} s</text>',
        f'<text x="4" y="{MARGIN + 4}">{peak}</text>',
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def write_svg(report: dict[str, Any], path: Path) -> None:
    path.write_text(timeline_svg(report))
