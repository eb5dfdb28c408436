"""The latency trace of live nodes and the per-stage report built from it."""

from __future__ import annotations

from pathlib import Path

from ledger.codec import encode
from ledger.transaction import (
    Envelope,
    ProposalResult,
    Response,
    RWSet,
    SerializedIdentity,
    TxHeader,
    TxPayload,
)
from pbft.messages import Commit, PrePrepare, Reply, Request
from sim.live.latencyreport import main, milestones, report
from sim.live.latencytrace import TRACE_FILE, LatencyTrace

CREATED_MS = 1_000
DIGEST = bytes(32)


def _request(client: int, timestamp: int) -> Request:
    header = TxHeader(
        "tx", "ch", "kv", "put", ("k", "v"), CREATED_MS, SerializedIdentity("Org1MSP", b"c"), b""
    )
    result = ProposalResult(b"h", RWSet("kv", (), (), ()), Response(200, "", b"", None))
    payload = encode(TxPayload(header, result, ()))
    return Request(client, timestamp, encode(Envelope(payload, b"s")), b"")


def _traces(directory: Path, request: Request) -> None:
    """Four nodes' traces of one request: primary 0, COMMITs and REPLYs at set times."""
    traces = []
    for i in range(4):
        (directory / f"replica-{i}").mkdir()
        traces.append(LatencyTrace(directory / f"replica-{i}"))
    primary = traces[0]
    primary.begin(1_040)
    primary.delivered(1_050, request)
    primary.carried_out([], 1_052, 1_053)
    primary.begin(1_100)
    pp = PrePrepare(0, 1, DIGEST, 1_100, (request,), 0, b"")
    primary.carried_out([pp], 1_110, 1_112)
    for i, (commit_at, durable, published) in enumerate(
        [(1_135, 1_200, 1_201), (1_130, 1_210, 1_212), (1_140, 1_220, 1_221), (1_150, 1_230, 1_240)]
    ):
        trace = traces[i]
        if i:
            trace.begin(1_115)
            trace.delivered(1_116, pp)
        trace.carried_out([Commit(0, 1, DIGEST, 1_100, i, b"")], commit_at - 1, commit_at)
        trace.begin(durable - 5)
        reply = Reply(0, request.timestamp, request.client, i, b"", b"")
        trace.carried_out([reply], durable, published)
    for trace in traces:
        trace.close()


def test_report_splits_a_request_into_its_stages(tmp_path: Path) -> None:
    _traces(tmp_path, _request(1000, 7))
    # created, at the primary, batch cut, PP out, 2nd COMMIT, 2nd REPLY durable, and out
    assert milestones(tmp_path) == [[1_000, 1_050, 1_100, 1_112, 1_135, 1_210, 1_212]]
    text = report(tmp_path)
    assert "1 requests traced" in text
    for stage, ms in [("to primary", 50), ("queued", 50), ("pre-prepare out", 12)]:
        assert f"{stage:16} {ms:8.1f}" in text
    for stage, ms in [("prepared", 23), ("executed", 75), ("reply out", 2), ("total", 212)]:
        assert f"{stage:16} {ms:8.1f}" in text


def test_a_request_missing_a_stage_is_left_out(tmp_path: Path) -> None:
    _traces(tmp_path, _request(1000, 7))
    for i in (1, 2, 3):  # only the primary's REPLY is left: no client has its answer
        path = tmp_path / f"replica-{i}" / TRACE_FILE
        lines = [line for line in path.read_text().splitlines() if '"reply"' not in line]
        path.write_text("\n".join(lines) + "\n")
    assert milestones(tmp_path) == []
    assert "no traced request" in report(tmp_path)


def test_groups_without_milestones_write_nothing(tmp_path: Path) -> None:
    trace = LatencyTrace(tmp_path)
    trace.begin(5)
    trace.carried_out([], 6, 7)
    trace.close()
    assert (tmp_path / TRACE_FILE).read_text() == ""


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    assert main([str(tmp_path / "missing")]) == 2
    assert main([]) == 2
