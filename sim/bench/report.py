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
                number(r.get("cpu_us_per_message"), 2),
                number(r["tx_per_s"]),
                f"{number(sum(r['per_batch'].values()))} / {number(paper)}",
                number(r["maxrss_mib"]),
                _percent(r.get("messages_vs_mac_verify")),
            ]
        )
    header = [
        "n",
        "committed",
        "wall s",
        "msgs/s",
        "CPU us/msg",
        "tx/s",
        "msgs/batch vs paper",
        "peak MiB",
        "msgs/s / MAC verify/s",
    ]
    return [
        f"  modelled HMAC crypto, workload 'none', batch {s['batch_size']}, "
        f"K={s['checkpoint_interval']}, {s['clients']} clients",
        *table(header, rows, "rrrrrrrrr"),
        *_peer_lines(s, "  "),
        "  sweeps (ledgersim sweep on shipped scenarios):",
        *table(*_sweep_rows(s), "lrrrrr"),
    ]


def _peer_lines(s: dict[str, Any], indent: str = "") -> list[str]:
    """BFT-Simulator's runs beside our row of the same size, when --peer-bftsim asked for it."""
    lines = []
    for r in s["sizes"]:
        peer = r.get("peer")
        if peer is None:
            continue
        if peer["status"] != "ok":
            lines.append(
                f"{indent}BFT-Simulator beside n={r['n']}: {peer['status']} ({peer['reason']})"
            )
            continue
        runs = " and ".join(number(run["messages_per_s"]) for run in peer["runs"])
        lines.append(
            f"{indent}BFT-Simulator (JavaScript, PBFT n={peer['nodes']}) right before and after our"
            f" n={r['n']} run: {runs} msgs/s ({number(peer['cpu_us_per_message'], 2)} CPU us/msg);"
            f" ours {number(r['messages_per_s'])} msgs/s: {peer['ratio']:.2f}x its better run"
            f" ({peer['cpu_ratio']:.2f}x by CPU time)"
        )
    return lines


def _sweep_rows(s: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Seeds per minute per scenario and worker count, with the speed-up over one worker."""
    rows = []
    for scenario in s.get("sweeps", []):
        if not scenario["runs"]:
            reason = scenario.get("reason", scenario["status"])
            rows.append([scenario["scenario"], "-", "-", "-", reason, ""])
        for run in scenario["runs"]:
            rows.append(
                [
                    scenario["scenario"],
                    str(run["workers"]),
                    str(run["seeds"]),
                    str(run["failed"]),
                    number(run["seeds_per_min"]),
                    number(scenario["scaling"], 2) if run["workers"] > 1 else "",
                ]
            )
    return ["scenario", "workers", "seeds", "failed", "seeds/min", "scaling"], rows


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


LIVE_HEADER = [
    "offered tx/s",
    "committed tx/s",
    "refused",
    "timed out",
    "invalid",
    "p50 ms",
    "p99 ms",
    "CPU ms/tx",
    "MQTT msgs/tx",
    "signature ms/tx",
    "CPU / signatures",
    "efficiency",
]


def _live_rows(s: dict[str, Any]) -> list[list[str]]:
    """One row per load step, shared by the text and the Markdown tables."""

    def ms(value: float | None) -> str:
        return number(value * 1000 if value else None, 2)

    return [
        [
            number(r["offered_per_s"]),
            number(r["tx_per_s"]),
            str(r.get("refused", "-")),
            str(r.get("timed_out", "-")),
            str(r["invalid"]),
            number(r["p50_ms"], 1),
            number(r["p99_ms"], 1),
            ms(r["cpu_s_per_tx"]),
            number(r.get("mqtt_per_tx"), 1),
            number(r.get("signature_ms_per_tx"), 2),
            number(r.get("cpu_vs_signatures"), 1),
            _percent(r.get("efficiency")),
        ]
        for r in s["runs"]
    ]


def _live_summary(s: dict[str, Any]) -> str:
    return (
        f"Best {number(s['tx_per_s'])} tx/s = {_percent(s.get('signature_efficiency'))} of the "
        f"same run's signature bound on {s.get('cpus', '?')} CPUs "
        f"({number(s.get('signature_bound_tx_per_s'))} tx/s; ECDSA P-256 "
        f"{number(s.get('sign_per_s'))} sign/s, {number(s.get('verify_per_s'))} verify/s); "
        f"p50 {number(s['p50_ms'], 1)} ms, p99 {number(s['p99_ms'], 1)} ms at "
        f"{number(s['latency_at_per_s'])} tx/s offered."
    )


def _live(s: dict[str, Any]) -> list[str]:
    return [
        f"  n={s['n']} nodes over mosquitto on loopback, chaincode {s['chaincode']!r}, "
        f"batch {s['batch_size']}; start-up {number(s['startup_s'], 1)} s",
        *table(LIVE_HEADER, _live_rows(s), "r" * len(LIVE_HEADER)),
        "  " + _live_summary(s),
        *(
            [
                f"  {_percent(s['efficiency'])} of the sim-real crypto bound of "
                f"{s['crypto_bound_cpus']} CPUs ({number(s['crypto_bound_tx_per_s'])} tx/s)"
            ]
            if "efficiency" in s
            else []
        ),
    ]


def _profile(s: dict[str, Any]) -> list[str]:
    lines = []
    for kind, seconds, share, label in (
        ("own", "tottime_s", "share", "own time"),
        ("cumulative", "cumtime_s", "cum_share", "cumulative time, project code"),
    ):
        rows = [
            [p["function"], str(p["ncalls"]), number(p[seconds], 3), f"{100 * p[share]:.1f}%"]
            for p in s["profile"][kind]
        ]
        header = ["function", "calls", "s", "share"]
        lines += [f"  profile ({label}):", *table(header, rows, "lrrr", "    ")]
    return lines


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


def _md_limits(s: dict[str, Any]) -> list[str]:
    rows = [
        [f"{r['scheme']} via {r['via']}", number(r["sign_per_s"]), number(r["verify_per_s"])]
        for r in s["signatures"]
    ]
    lines = _md_table(
        [f"signatures ({s['payload_bytes']} B payload)", "sign/s", "verify/s"], rows, "lrr"
    )
    sha, pp, cm = s["sha256"], s["codec"]["pre_prepare_batch"], s["codec"]["commit"]
    rows = [
        [
            f"PrePrepare, {pp['requests']} requests ({number(pp['bytes'])} B)",
            number(pp["encode_per_s"]),
            number(pp["decode_per_s"]),
        ],
        [f"Commit ({cm['bytes']} B)", number(cm["encode_per_s"]), number(cm["decode_per_s"])],
    ]
    return [
        *lines,
        "",
        *_md_table(["codec", "encode/s", "decode/s (first sight)"], rows, "lrr"),
        "",
        f"SHA-256: {number(sha['mb_per_s'])} MB/s on 64 KiB blocks, "
        f"{number(sha['small_per_s'])} hashes/s of {sha['small_bytes']} B.",
    ]


def _md_sim_real(s: dict[str, Any]) -> list[str]:
    rows = [
        ["committed tx/s", number(s["tx_per_s"]), ">= 1,000"],
        [
            f"crypto bound: {number(s['verifies_per_tx'], 2)} verifies + "
            f"{number(s['signs_per_tx'], 2)} signs per tx at {number(s['verify_per_s'])} "
            f"verify/s, {number(s['sign_per_s'])} sign/s",
            f"{number(s['bound_tx_per_s'])} tx/s",
            "",
        ],
        ["efficiency (achieved / bound)", _percent(s["efficiency"]), ">= 50%"],
        [
            f"bound as separate machines: {number(s['deployment_verifies_per_tx'], 2)} "
            f"verifies + {number(s['deployment_signs_per_tx'], 2)} signs per tx",
            f"{number(s['deployment_bound_tx_per_s'])} tx/s",
            "",
        ],
    ]
    return _md_table(
        [f"sim-real (n={s['n']}, batch {s['batch_size']}, workload {s['workload']})", "", "target"],
        rows,
        "lrr",
    )


def _md_sim_modelled(s: dict[str, Any]) -> list[str]:
    rows = [
        [
            str(r["n"]),
            number(r["messages_per_s"]),
            number(r.get("cpu_us_per_message"), 2),
            _percent(r.get("messages_vs_mac_verify")),
            number(r["tx_per_s"]),
            f"{r['committed']} in {number(r['wall_s'], 2)} s",
            f"{number(sum(r['per_batch'].values()), 1)} "
            f"({number(sum(r['paper_per_batch'].values()), 1)})",
            number(r["maxrss_mib"]),
        ]
        for r in s["sizes"]
    ]
    header = [
        "n",
        "messages/s",
        "CPU µs/message",
        "of MAC verify/s",
        "tx/s",
        "requests in wall time",
        "messages/batch (paper)",
        "peak RSS MiB",
    ]
    sweep_header, sweep_rows = _sweep_rows(s)
    peer = _peer_lines(s)
    return [
        *_md_table(header, rows, "rrrrrrrr"),
        *(["", *peer] if peer else []),
        "",
        *_md_table(sweep_header, sweep_rows, "lrrrrr"),
    ]


def _md_live(s: dict[str, Any]) -> list[str]:
    lines = _md_table(LIVE_HEADER, _live_rows(s), "r" * len(LIVE_HEADER))
    return [*lines, "", _live_summary(s)]


MARKDOWN: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "limits": _md_limits,
    "sim-real": _md_sim_real,
    "sim-modelled": _md_sim_modelled,
    "live": _md_live,
}


def markdown(result: dict[str, Any]) -> str:
    """The result tables for BENCHMARKS.md, one per measured section."""
    m = result["machine"]
    lines = [
        f"Measured {m['date']} on {m['nproc']} CPUs ({m['cpu_model']}), Python {m['python']}, "
        f"load average {m['load_average']} at the end.",
    ]
    for name, section in result["sections"].items():
        if section["status"] == "ok":
            lines += ["", f"**{name}**", "", *MARKDOWN[name](section)]
    return "\n".join(lines)
