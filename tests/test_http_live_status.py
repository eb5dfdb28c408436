"""The live gateway's network view reads each node's ``status.json`` whatever it holds.

A node rewrites the file twice a second; the gateway (another process) reads
it for /api/nodes and /api/activity. A file that is not a JSON object, is
nested past the parser's limit, or has counters of the wrong type made those
requests internal errors; such a node now reads as one with no status.
"""

from __future__ import annotations

import json
from pathlib import Path

from sim.http.livebackend import messages_sent, node_statuses
from sim.live import cluster
from sim.live.host import STATUS_FILE
from sim.live.netconfig import node_dir


def test_odd_status_files_read_as_no_status(tmp_path: Path) -> None:
    cluster.init(tmp_path, cluster.UpOptions(broker="mqtt://127.0.0.1:1", chaincode="none"))
    contents = (
        json.dumps({"view": 2, "stats": {"sent": 40}}),
        "[1, 2]",
        "[" * 200_000,
        json.dumps({"view": 2, "stats": ["sent", 7]}),
    )
    for replica, text in enumerate(contents):
        directory = node_dir(tmp_path, replica)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / STATUS_FILE).write_text(text)
    statuses = node_statuses(tmp_path, 4)
    assert statuses[:3] == [{"view": 2, "stats": {"sent": 40}}, {}, {}]
    assert messages_sent(statuses) == 40
    assert messages_sent([{"stats": {"sent": "many"}}, {"stats": {"sent": True}}]) == 0
