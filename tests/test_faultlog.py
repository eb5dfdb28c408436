"""``DIR/faults.jsonl``: what the nemesis and ``net node`` struck, for the network view."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from sim.live import faultlog


def test_events_are_read_back_in_their_window_and_bad_lines_are_skipped(tmp_path: Path) -> None:
    before = time.time_ns() // 1_000_000
    faultlog.record(tmp_path, "kill-primary", [0], "strike", "nemesis")
    with (tmp_path / faultlog.FAULT_LOG).open("a") as log:
        log.write("not json\n" + json.dumps({"t_ms": "soon"}) + "\n[1, 2]\n")
    faultlog.record(tmp_path, "kill-primary", [0], "heal", "nemesis")
    after = time.time_ns() // 1_000_000
    found = faultlog.read(tmp_path, before, after)
    assert [(e["kind"], e["phase"], e["replicas"]) for e in found] == [
        ("kill-primary", "strike", [0]),
        ("kill-primary", "heal", [0]),
    ]
    assert faultlog.read(tmp_path, after + 1, after + 10_000) == []
    assert faultlog.read(tmp_path / "missing", before, after) == []


def test_an_unwritable_directory_does_not_fail_the_fault(tmp_path: Path) -> None:
    faultlog.record(tmp_path / "no" / "such" / "dir", "pause", [1], "strike", "nemesis")
    assert not (tmp_path / "no").exists()


def test_a_deeply_nested_line_is_skipped_not_raised(tmp_path: Path) -> None:
    """A garbled or hostile line of nested brackets (well inside the MiB read) must not
    turn every activity request of the gateway into an internal error."""
    before = time.time_ns() // 1_000_000
    with (tmp_path / faultlog.FAULT_LOG).open("w") as log:
        log.write("[" * 200_000 + "\n")
    faultlog.record(tmp_path, "pause", [2], "strike", "net node")
    found = faultlog.read(tmp_path, before, time.time_ns() // 1_000_000)
    assert [(e["kind"], e["replicas"]) for e in found] == [("pause", [2])]


def test_a_pipe_in_place_of_the_log_reads_as_empty_instead_of_blocking(tmp_path: Path) -> None:
    """The gateway reads the log on a worker thread per request: blocking there for ever
    (a FIFO with no writer; a device such as /dev/zero never ends) would take the workers."""
    fifo = tmp_path / faultlog.FAULT_LOG
    os.mkfifo(fifo)
    found: list[list[dict[str, object]]] = []
    reader = threading.Thread(target=lambda: found.append(faultlog.read(tmp_path, 0, 10)))
    reader.daemon = True
    reader.start()
    reader.join(timeout=10)
    blocked = reader.is_alive()
    if blocked:  # unblock the reader before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert not blocked and found == [[]]
