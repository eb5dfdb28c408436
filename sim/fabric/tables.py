"""The patch contract's query answers as text tables, for people (the CLI and the demo)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns under a dashed rule; ``None`` shows as ``-``."""
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _event_detail(event: dict[str, Any]) -> str:
    record = event["record"]
    action = event["action"]
    if action == "upload":
        file = record["file"]
        return f"sha256 {file['sha256'][:12]}… {file['size']} B, {record['status']}"
    if action in ("approve", "release"):
        return f"sign-offs {record['signoffs']}/{record['approvals_required']}, {record['status']}"
    if action == "withdraw":
        return f"reason: {record['withdrawn']['reason']}"
    if action == "report":
        extra = "" if record.get("log") == "unwrite" else f", rebooted={record.get('rebooted')}"
        return f"{record['outcome']} (log {record.get('log')}{extra})"
    return str(record.get("user_id", ""))


def history_table(history: dict[str, Any]) -> str:
    """The ``history`` query: one row per upload, sign-off, download and report."""
    rows = [
        (
            e["timestamp_ms"],
            e["version"],
            e["action"],
            (e["creator"] or {}).get("name"),
            e["tx_id"][:12],
            _event_detail(e),
        )
        for e in history["events"]
    ]
    return text_table(("time_ms", "version", "action", "by", "tx", "detail"), rows)


def compliance_table(report: dict[str, Any]) -> str:
    """The ``compliance`` query: who still owes which mandatory install, and a summary line."""
    rows = [
        (
            r["user_id"],
            f"{r['patch']} {r['version']}",
            r["status"] + (" (reboot pending)" if r["reboot_pending"] else ""),
            r["deadline_ms"],
            "yes" if r["overdue"] else "no",
        )
        for r in report["rows"]
    ]
    table = text_table(("device", "patch", "status", "deadline_ms", "overdue"), rows)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(report["summary"].items()))
    return f"{table}\nas of {report['as_of_ms']} ms: {summary or 'no rows'}"


def catalog_table(catalog: dict[str, Any]) -> str:
    """The ``catalog`` query: every patch version, its status and sign-offs."""
    rows = [
        (
            r["name"],
            r["version"],
            r["status"],
            r["deployer"],
            f"{r['signoffs']}/{r['approvals_required']}",
        )
        for r in catalog["patches"]
    ]
    return text_table(("name", "version", "status", "deployer", "sign-offs"), rows)
