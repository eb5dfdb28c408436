"""The human-readable form of a suite result (``ledgersim bench`` without ``--json``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    if digits == 0 and abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.{max(digits, 1) if abs(value) < 100 else digits}f}"


def table(
    header: Sequence[str], rows: Sequence[Sequence[str]], align: str, indent: str = "  "
) -> list[str]:
    """Columns padded to width; ``align`` has one ``l`` or ``r`` per column."""
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    lines = []
    for i, row in enumerate([header, *rows]):
        cells = [
            c.ljust(w) if a == "l" else c.rjust(w)
            for c, w, a in zip(row, widths, align, strict=True)
        ]
        lines.append(indent + "  ".join(cells).rstrip())
        if i == 0:
            lines.append(indent + "  ".join("-" * w for w in widths))
    return lines


def _limits(s: dict[str, Any]) -> list[str]:
    rows = [
        [r["scheme"], r["via"], number(r["sign_per_s"]), number(r["verify_per_s"]), r["note"]]
        for r in s["signatures"]
    ]
    lines = table(["scheme", "via", "sign/s", "verify/s", "note"], rows, "llrrl")
    sha = s["sha256"]
    lines.append(
        f"  SHA-256: {number(sha['mb_per_s'])} MB/s (64 KiB blocks); "
        f"{number(sha['small_per_s'])} hashes/s of {sha['small_bytes']} B"
    )
    codec = s["codec"]
    pp, cm = codec["pre_prepare_batch"], codec["commit"]
    for label, c in ((f"PrePrepare of {pp['requests']} requests", pp), ("Commit", cm)):
        lines.append(
            f"  codec {label} ({number(c['bytes'])} B): encode {number(c['encode_per_s'])}/s, "
            f"decode {number(c['decode_per_s'])}/s first sight, "
            f"{number(c['decode_repeat_per_s'])}/s repeated"
        )
    return lines


def _sim_real(s: dict[str, Any]) -> list[str]:
    return [
        f"  n={s['n']}, batch {s['batch_size']}, {s['clients']} clients, ECDSA P-256 on every "
        f"message and transaction, workload {s['workload']!r}",
        f"  committed {s['committed']} tx in {number(s['wall_s'], 2)} s: "
        f"{number(s['tx_per_s'])} tx/s",
        f"  per committed tx: {number(s['verifies_per_tx'], 2)} verifies + "
        f"{number(s['signs_per_tx'], 2)} signs (counted at the {s['counted_at']} layer)",
        f"  crypto bound at {number(s['verify_per_s'])} verify/s, {number(s['sign_per_s'])} "
        f"sign/s ({s['rates_via']}): {number(s['bound_tx_per_s'])} tx/s; "
        f"efficiency {100 * s['efficiency']:.0f}%",
        f"  as separate machines (every check at the {s['deployment_counted_at']} layer, no shared "
        f"cache): {number(s['deployment_verifies_per_tx'], 2)} verifies + "
        f"{number(s['deployment_signs_per_tx'], 2)} signs per tx, bound "
        f"{number(s['deployment_bound_tx_per_s'])} tx/s",
    ]


def _sim_modelled(s: dict[str, Any]) -> list[str]:
    rows = []
    for r in s["sizes"]:
        paper = sum(r["paper_per_batch"].values())
        rows.append(
            [
                str(r["n"]),
                str(r["committed"]),
                number(r["wall_s"], 2),
                number(r["messages_per_s"]),
                number(r["tx_per_s"]),
                f"{number(sum(r['per_batch'].values()))} / {number(paper)}",
                number(r["maxrss_mib"]),
            ]
        )
    header = ["n", "committed", "wall s", "msgs/s", "tx/s", "msgs/batch vs paper", "peak MiB"]
    return [
        f"  modelled HMAC crypto, workload 'none', batch {s['batch_size']}, "
        f"K={s['checkpoint_interval']}, {s['clients']} clients",
        *table(header, rows, "rrrrrrr"),
    ]


def _live(s: dict[str, Any]) -> list[str]:
    rows = [
        [
            number(r["offered_per_s"]),
            str(r["committed"]),
            str(r["failed"]),
            number(r["tx_per_s"]),
            number(r["p50_ms"], 1),
            number(r["p99_ms"], 1),
            number(r["cpu_s_per_tx"] * 1000 if r["cpu_s_per_tx"] else None, 2),
        ]
        for r in s["runs"]
    ]
    header = ["offered/s", "committed", "failed", "tx/s", "p50 ms", "p99 ms", "CPU ms/tx"]
    return [
        f"  n={s['n']} nodes over mosquitto on loopback, chaincode {s['chaincode']!r}, "
        f"batch {s['batch_size']}; start-up {number(s['startup_s'], 1)} s",
        *table(header, rows, "rrrrrrr"),
        f"  best {number(s['tx_per_s'])} tx/s ({number(s['cpu_s_per_tx'] * 1000, 2)} CPU ms per "
        f"tx); at {number(s['latency_at_per_s'])}/s offered, the fastest step it kept up with: "
        f"p50 {number(s['p50_ms'], 1)} ms, p99 {number(s['p99_ms'], 1)} ms",
    ]


def _profile(s: dict[str, Any]) -> list[str]:
    rows = [
        [p["function"], str(p["ncalls"]), number(p["tottime_s"], 3), f"{100 * p['share']:.1f}%"]
        for p in s["profile"]
    ]
    return [
        "  profile (own time):",
        *table(["function", "calls", "tottime s", "share"], rows, "lrrr", "    "),
    ]


RENDERERS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "limits": _limits,
    "sim-real": _sim_real,
    "sim-modelled": _sim_modelled,
    "live": _live,
}


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"ledgersim bench{' --quick' if result['quick'] else ''}: {m['nproc']} CPUs "
        f"({m['cpu_model']}), Python {m['python']}, {m['date']}, load {m['load_average']}",
    ]
    for name, section in result["sections"].items():
        lines.append("")
        status = section["status"]
        if status != "ok":
            lines.append(f"{name}: {status} ({section['reason']})")
            continue
        lines.append(f"{name} ({number(section['seconds'], 1)} s)")
        lines.extend(RENDERERS[name](section))
        if "profile" in section:
            lines.extend(_profile(section))
        for row in section.get("sizes", []):
            if "profile" in row:
                lines.append(f"  n={row['n']}:")
                lines.extend(_profile(row))
    lines.append("")
    lines.append("targets")
    rows = []
    for t in result["targets"]:
        mark = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        rows.append(
            [t["name"], f"{t['comparison']} {number(t['threshold'])}", number(t["value"], 2), mark]
        )
    lines.extend(table(["target", "goal", "measured", "verdict"], rows, "lrrl"))
    return "\n".join(lines)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    rule = ["---:" if a == "r" else "---" for a in align]
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(rule) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def markdown(result: dict[str, Any]) -> str:
    """The headline table for BENCHMARKS.md: each figure beside its limit or target."""
    m = result["machine"]
    sections = result["sections"]
    rows: list[list[str]] = []
    limits = sections.get("limits", {})
    if limits.get("status") == "ok":
        for r in limits["signatures"]:
            rows.append(
                [
                    "limits",
                    f"{r['scheme']} via {r['via']}: sign/s, verify/s",
                    f"{number(r['sign_per_s'])} / {number(r['verify_per_s'])}",
                    "",
                ]
            )
        rows.append(["limits", "SHA-256 MB/s (64 KiB)", number(limits["sha256"]["mb_per_s"]), ""])
        for name, c in limits["codec"].items():
            rows.append(
                [
                    "limits",
                    f"codec {name} ({number(c['bytes'])} B): encode/s, decode/s",
                    f"{number(c['encode_per_s'])} / {number(c['decode_per_s'])}",
                    "",
                ]
            )
    real = sections.get("sim-real", {})
    if real.get("status") == "ok":
        rows += [
            ["sim-real", "committed tx/s", number(real["tx_per_s"]), ">= 1,000"],
            [
                "sim-real",
                f"crypto bound tx/s ({number(real['verifies_per_tx'], 2)} verifies + "
                f"{number(real['signs_per_tx'], 2)} signs per tx)",
                number(real["bound_tx_per_s"]),
                "",
            ],
            [
                "sim-real",
                "efficiency (achieved / bound)",
                f"{100 * real['efficiency']:.0f}%",
                ">= 50%",
            ],
            [
                "sim-real",
                f"bound as separate machines ({number(real['deployment_verifies_per_tx'], 2)} "
                f"verifies + {number(real['deployment_signs_per_tx'], 2)} signs per tx)",
                number(real["deployment_bound_tx_per_s"]),
                "",
            ],
        ]
    modelled = sections.get("sim-modelled", {})
    if modelled.get("status") == "ok":
        for r in modelled["sizes"]:
            n = r["n"]
            paper = sum(r["paper_per_batch"].values())
            rows += [
                [
                    f"sim-modelled n={n}",
                    "simulated messages/s",
                    number(r["messages_per_s"]),
                    ">= 300,000" if n == 16 else "",
                ],
                [
                    f"sim-modelled n={n}",
                    f"committed tx/s ({r['committed']} requests, wall s)",
                    f"{number(r['tx_per_s'])} ({number(r['wall_s'], 2)} s)",
                    "< 20 s" if n == 100 else "",
                ],
                [
                    f"sim-modelled n={n}",
                    "protocol messages per batch (paper)",
                    f"{number(sum(r['per_batch'].values()), 1)} ({number(paper, 1)})",
                    "",
                ],
                [f"sim-modelled n={n}", "peak RSS MiB", number(r["maxrss_mib"]), ""],
            ]
    live = sections.get("live", {})
    if live.get("status") == "ok":
        rows += [
            ["live n=4", "committed tx/s", number(live["tx_per_s"]), ">= 1,000"],
            [
                "live n=4",
                f"commit latency p50 / p99 ms at {number(live['latency_at_per_s'])}/s offered",
                f"{number(live['p50_ms'], 1)} / {number(live['p99_ms'], 1)}",
                "p99 < 500",
            ],
            ["live n=4", "CPU ms per tx", number(live["cpu_s_per_tx"] * 1000, 2), ""],
        ]
    head = (
        f"Measured {m['date']} on {m['nproc']} CPUs ({m['cpu_model']}), Python {m['python']}, "
        f"load average {m['load_average']}."
    )
    table_lines = _md_table(["section", "figure", "measured", "target"], rows, "llrr")
    return "\n".join([head, "", *table_lines])
