"""Hostile input to the command line: one clear line and exit 2, never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_trace_html import synthetic_trace, write_trace

from sim.cli.main import main as cli_main


def _edited_trace(tmp_path: Path, kind: str, key: str, value: Any) -> Path:
    """A valid trace with one field of the first ``kind`` event replaced."""
    events = synthetic_trace(rounds=2)
    first = next(e for e in events if e["ev"] == kind)
    first[key] = value
    return write_trace(tmp_path / "t.jsonl", events)


@pytest.mark.parametrize(
    ("kind", "key", "value", "said"),
    [
        # n drives one lane per replica id: 10**9 exhausted memory before the fix.
        ("meta", "n", 10**9, "n: expected an integer 1..10000, got 1000000000"),
        ("meta", "n", "four", "n: expected an integer 1..10000, got 'four'"),
        ("send", "bytes", "x", "bytes: expected an integer, got 'x'"),
    ],
)
def test_trace_with_a_corrupt_field_is_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    key: str,
    value: Any,
    said: str,
) -> None:
    trace = _edited_trace(tmp_path, kind, key, value)
    assert cli_main(["trace", str(trace), "--json"]) == 2
    err = capsys.readouterr().err
    assert said in err and len(err.strip().splitlines()) == 1


def test_trace_meta_clients_not_a_list_is_tolerated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``clients`` only labels lanes, so a wrong type is ignored (was a TypeError traceback)."""
    trace = _edited_trace(tmp_path, "meta", "clients", 7)
    assert cli_main(["trace", str(trace), "--json"]) == 0
    assert '"messages"' in capsys.readouterr().out
