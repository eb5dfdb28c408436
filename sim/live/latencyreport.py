"""Split live requests' latency into stages, from the nodes' ``latency.trace`` files.

``python -m sim.live.latencyreport NETWORK_DIR`` reads every node's trace
(``sim.live.latencytrace``) and prints, per stage, the median and 99th
percentile over the requests that went through all of them:

* ``to primary``: proposal created on the client, until the request reached the
  primary (endorsement round trip, envelope, the client's bundling delay, broker);
* ``queued``: reached the primary, until the group of steps that put it in a
  PRE-PREPARE began (waiting for a batch to be cut: the batches in flight first);
* ``pre-prepare out``: that group, until the PRE-PREPARE was handed to the broker
  (the primary's step, fsync, publishing);
* ``prepared``: until the second replica (of four) sent its COMMIT;
* ``executed``: until the second replica's REPLY was durable (validation and
  commit of the block, fsync groups);
* ``reply out``: until that REPLY was handed to the broker: when a client holding
  f+1 = 2 matching replies has its answer, less the broker hop.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from sim.live.latencytrace import TRACE_FILE

STAGES = ("to primary", "queued", "pre-prepare out", "prepared", "executed", "reply out")


def _groups(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="ascii").splitlines() if line]


def milestones(directory: Path) -> list[list[int]]:
    """Per traced request: the times its stages ended, the creation time first."""
    created: dict[str, int] = {}
    arrived: dict[tuple[int, str], int] = {}
    cut: dict[str, tuple[int, int, int]] = {}  # key -> (primary, group begin, published)
    members: dict[int, list[str]] = {}
    commits: dict[int, list[int]] = defaultdict(list)
    replies: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for node_dir in sorted(directory.glob("replica-*")):
        node = int(node_dir.name.split("-")[1])
        for group in _groups(node_dir / TRACE_FILE):
            for at, key, made in group["arrived"]:
                arrived.setdefault((node, key), at)
                if made is not None:
                    created.setdefault(key, made)
            for event in group["events"]:
                if event[0] == "pp":
                    for key in event[2]:
                        cut.setdefault(key, (node, group["begin"], group["published"]))
                    members.setdefault(event[1], event[2])
                elif event[0] == "commit":
                    commits[event[1]].append(group["published"])
                elif event[0] == "reply":
                    replies[event[1]].append((group["durable"], group["published"]))
    seq_of = {key: seq for seq, keys in members.items() for key in keys}
    rows = []
    for key, (primary, begin, published) in cut.items():
        seq = seq_of[key]
        if key not in created or (primary, key) not in arrived:
            continue
        if len(commits[seq]) < 2 or len(replies[key]) < 2:
            continue
        second_commit = sorted(commits[seq])[1]
        second_reply = sorted(replies[key], key=lambda r: r[1])[1]
        rows.append(
            [
                created[key],
                arrived[(primary, key)],
                begin,
                published,
                second_commit,
                second_reply[0],
                second_reply[1],
            ]
        )
    return rows


def _quantile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def node_lines(directory: Path) -> list[str]:
    """Per node: how long groups of steps took, what was queued, how late endorsing began."""
    lines = ["per node: group ms, replica / client messages queued at a group's start,"]
    lines.append("  proposal created until this node began endorsing it (p50 / p99)")
    for node_dir in sorted(directory.glob("replica-*")):
        groups = _groups(node_dir / TRACE_FILE)
        if not groups:
            continue
        spans = [g["published"] - g["begin"] for g in groups]
        votes = [g["queued"][0] for g in groups]
        clients = [g["queued"][1] for g in groups]
        late = [at - made for g in groups for at, made in g["endorsed"]]
        cells = [
            f"group {_quantile(spans, 0.5):.0f}/{_quantile(spans, 0.99):.0f}",
            f"queued {_quantile(votes, 0.5):.0f}/{_quantile(votes, 0.99):.0f}",
            f"{_quantile(clients, 0.5):.0f}/{_quantile(clients, 0.99):.0f}",
        ]
        if late:
            cells.append(f"endorse {_quantile(late, 0.5):.0f}/{_quantile(late, 0.99):.0f}")
        lines.append(f"  {node_dir.name}: {len(groups)} groups; " + ", ".join(cells))
    return lines


def report(directory: Path) -> str:
    rows = milestones(directory)
    if not rows:
        return f"{directory}: no traced request went through every stage"
    lines = node_lines(directory)
    lines.append(f"{len(rows)} requests traced; ms per stage (p50 / p99):")
    for index, stage in enumerate(STAGES):
        spans = [row[index + 1] - row[index] for row in rows]
        lines.append(f"  {stage:16} {_quantile(spans, 0.5):8.1f} {_quantile(spans, 0.99):8.1f}")
    totals = [row[-1] - row[0] for row in rows]
    lines.append(f"  {'total':16} {_quantile(totals, 0.5):8.1f} {_quantile(totals, 0.99):8.1f}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python -m sim.live.latencyreport NETWORK_DIR", file=sys.stderr)
        return 2
    print(report(Path(argv[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
