"""Trace pictures: the model pairs every message with its fate, and the page draws it.

The page is checked in a real headless Chromium (Debian's ``chromium``; CI
installs it): the script publishes what it drew as ``data-*`` attributes on
``<body>`` and records any JavaScript error there too.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from trace_browser import body_attributes, chromium

from sim.cli.main import main as cli_main
from sim.errors import InputError
from sim.trace.html import DELIVERED, DROPPED, IN_FLIGHT, build_model, parse_trace, render_html


def synthetic_trace(
    rounds: int = 3,
    n: int = 4,
    drop_every: int = 0,
    view_change_after: int | None = None,
    seed: int = 1,
    equivocate_seq: int | None = None,
) -> list[dict[str, Any]]:
    """PBFT's normal case (request, pre-prepare, prepare, commit, reply) for ``rounds`` batches.

    Optionally every ``drop_every``-th message is lost and, after round
    ``view_change_after``, the primary turns silent and everyone moves to view 1
    (the other replicas install it). At ``equivocate_seq`` the primary sends the
    last replica a rival batch, which that replica then prepares.
    """
    rng = random.Random(seed)
    client = 1000
    events: list[dict[str, Any]] = [
        {"ev": "meta", "scenario": "synthetic", "seed": seed, "n": n,
         "f": (n - 1) // 3, "clients": [client]}
    ]  # fmt: skip
    state = {"id": 0, "t": 0.0, "view": 0}

    def hop(src: int, dst: int, kind: str, seq: int | None, t0: float) -> None:
        state["id"] += 1
        msg_id = int(state["id"])
        view = None if kind == "Request" else int(state["view"])
        events.append({"ev": "send", "t": t0, "id": msg_id, "from": src, "to": dst,
                       "type": kind, "view": view, "seq": seq, "bytes": 120})  # fmt: skip
        if kind in ("PrePrepare", "Prepare", "Commit") and seq is not None:
            rival = seq == equivocate_seq and n - 1 in (src, dst) and kind != "Commit"
            events[-1]["digest"] = RIVAL if rival else batch_digest(seq)
        fate: dict[str, Any] = {"id": msg_id, "from": src, "to": dst, "type": kind}
        if drop_every and msg_id % drop_every == 0:
            events.append({"ev": "drop", "t": t0, "reason": "loss", **fate})
        else:
            events.append({"ev": "deliver", "t": t0 + rng.uniform(1, 5), **fate})

    for seq in range(1, rounds + 1):
        t = float(state["t"])
        primary = int(state["view"]) % n
        hop(client, primary, "Request", None, t)
        for phase, senders in (
            ("PrePrepare", [primary]),
            ("Prepare", [r for r in range(n) if r != primary]),
            ("Commit", list(range(n))),
        ):
            t += 6
            for r in senders:
                for q in range(n):
                    if q != r:
                        hop(r, q, phase, seq, t)
        t += 6
        for r in range(n):
            events.append({"ev": "commit", "t": t, "replica": r, "seq": seq, "view": state["view"],
                           "digest": batch_digest(seq), "txs": 1})  # fmt: skip
            hop(r, client, "Reply", seq, t)
        t += 6
        if view_change_after == seq:
            events.append({"ev": "fault", "t": t, "kind": "byzantine", "replica": primary,
                           "detail": "silent </script><b>x</b>"})  # fmt: skip
            t += 20
            state["view"] = int(state["view"]) + 1
            for r in range(n):
                events.append({"ev": "view_change", "t": t, "replica": r, "view": state["view"]})
                for q in range(n):
                    if q != r:
                        hop(r, q, "ViewChange", None, t)
            t += 6
            new_primary = int(state["view"]) % n
            for q in range(n):
                if q != new_primary:
                    hop(new_primary, q, "NewView", None, t)
            t += 6
            for r in range(n):
                if r != primary:
                    events.append({"ev": "new_view", "t": t, "replica": r, "view": state["view"]})
        state["t"] = t
    events[1:] = sorted(events[1:], key=lambda e: float(e["t"]))
    return events


RIVAL = "ff" * 8


def batch_digest(seq: int) -> str:
    return f"{seq:02x}" * 8


def write_trace(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


# ------------------------------------------------------------------ model


def test_model_pairs_every_send_with_its_fate() -> None:
    events = synthetic_trace(rounds=3, drop_every=7, view_change_after=2)
    model = build_model(events)
    fates = [e for e in events if e["ev"] in ("deliver", "drop")]
    assert model.arrows == len(fates) == sum(1 for e in events if e["ev"] == "send")
    assert model.drops == sum(1 for e in events if e["ev"] == "drop") > 0
    assert model.count_marks("view_change") == 4 and model.count_marks("fault") == 1
    assert [lane["label"] for lane in model.lanes] == [
        "client 1000",
        "replica 0 (byzantine)",
        "replica 1",
        "replica 2",
        "replica 3",
    ]
    times = [m[0] for m in model.msgs]
    assert times == sorted(times)
    assert all(m[1] >= m[0] for m in model.msgs)
    assert {model.types[m[4]] for m in model.msgs} == {
        "Request", "PrePrepare", "Prepare", "Commit", "Reply", "ViewChange", "NewView"
    }  # fmt: skip


def test_duplicates_unfinished_and_orphan_messages() -> None:
    events = [
        {"ev": "meta", "n": 4, "f": 1, "clients": []},
        {"ev": "send", "t": 1, "id": 1, "from": 0, "to": 1, "type": "Prepare", "view": 0, "seq": 1},
        {"ev": "deliver", "t": 3, "id": 1, "from": 0, "to": 1, "type": "Prepare"},
        {"ev": "deliver", "t": 9, "id": 1, "from": 0, "to": 1, "type": "Prepare"},
        {"ev": "send", "t": 4, "id": 2, "from": 2, "to": 3, "type": "Commit", "view": 0, "seq": 1},
        {"ev": "drop", "t": 5, "id": 7, "from": 3, "to": 0, "type": "Checkpoint", "reason": "link"},
        {"ev": "future_kind", "t": 6},
    ]
    model = build_model(events)
    statuses = sorted((m[2], m[3], m[7]) for m in model.msgs)
    assert statuses == [(0, 1, DELIVERED), (0, 1, DELIVERED), (2, 3, IN_FLIGHT), (3, 0, DROPPED)]
    assert model.reasons == ["link"] and model.t_end == 9


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"ev":"meta"}', "{not json"], r"t\.jsonl:2: expected a JSON object"),
        (['["send"]'], r't\.jsonl:1: expected an object with an "ev" field'),
        ([""], r"t\.jsonl: expected a trace"),
    ],
)
def test_broken_trace_lines_are_input_errors(lines: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_trace(lines, "t.jsonl")


def test_ill_typed_event_fields_are_input_errors() -> None:
    events = parse_trace(['{"ev":"send","t":"soon","id":1,"from":0,"to":1}'], "t.jsonl")
    with pytest.raises(InputError, match=r"t\.jsonl: event 1 \(send\): t: expected a number"):
        build_model(events, "t.jsonl")


def test_page_is_self_contained_and_embeds_the_model() -> None:
    model = build_model(synthetic_trace(rounds=2, view_change_after=1))
    page = render_html(model, "t <&> title")
    assert "t &lt;&amp;&gt; title" in page
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)
    assert "http://" not in page and "https://" not in page
    embedded = re.search(r'<script type="application/json" id="trace-data">(.*?)</script>', page)
    assert embedded is not None
    assert json.loads(embedded.group(1))["msgs"] == model.msgs
    assert "</script><b>" not in page  # the fault detail could not close the data block
    assert "@@" not in page


# ------------------------------------------------------------------ browser


@pytest.mark.slow
def test_page_draws_every_arrow_in_chromium(tmp_path: Path) -> None:
    events = synthetic_trace(rounds=4, drop_every=9, view_change_after=2)
    model = build_model(events)
    page = tmp_path / "trace.html"
    page.write_text(render_html(model))
    attrs = body_attributes(page, tmp_path)
    assert attrs["errors"] == "0" and attrs["rendered"] == "1"
    assert int(attrs["arrows-drawn"]) == int(attrs["arrows-total"]) == model.arrows
    assert int(attrs["drops-drawn"]) == model.drops > 0
    # Four replicas ask for view 1 (hollow marks), three correct ones install it: one view change.
    assert int(attrs["view-change-attempts-drawn"]) == 4
    assert int(attrs["view-changes-drawn"]) == 3
    assert (attrs["view-changes-total"], attrs["highest-view"]) == ("1", "1")
    assert int(attrs["faults-drawn"]) == 1 and int(attrs["lanes"]) == 5

    # Filters: view 1 keeps its own messages plus those without a view (requests).
    in_view_1 = sum(1 for m in model.msgs if m[5] in (1, -1))
    attrs = body_attributes(page, tmp_path, "#view=1")
    assert int(attrs["arrows-drawn"]) == in_view_1 < model.arrows
    only_seq_2 = sum(1 for m in model.msgs if m[6] == 2)
    attrs = body_attributes(page, tmp_path, "#seq=2-2&keep=0")
    assert int(attrs["arrows-drawn"]) == only_seq_2 > 0

    # Stepping: the cursor lands on the 5th event.
    attrs = body_attributes(page, tmp_path, "#step=5")
    assert attrs["cursor"] == "4" and attrs["errors"] == "0"


@pytest.mark.slow
def test_page_reports_script_errors_in_the_dom(tmp_path: Path) -> None:
    page = render_html(build_model(synthetic_trace(rounds=1)))
    broken = page.replace("const DATA = JSON.parse(", "noSuchFunction(); const DATA = JSON.parse(")
    assert broken != page
    path = tmp_path / "broken.html"
    path.write_text(broken)
    profile = tmp_path / "chromium-profile-broken"
    done = subprocess.run(
        [chromium(), "--headless", "--disable-gpu", "--no-sandbox", f"--user-data-dir={profile}",
         "--dump-dom", path.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    body = re.search(r"<body([^>]*)>", done.stdout)
    assert body is not None
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))
    assert attrs["errors"] == "1" and attrs["rendered"] == "0"
    assert "noSuchFunction" in done.stdout  # shown to the reader in the error box


@pytest.mark.slow
def test_large_trace_stays_usable(tmp_path: Path) -> None:
    events = synthetic_trace(rounds=400, drop_every=50)  # about 12,000 messages
    model = build_model(events)
    assert model.arrows > 10_000
    trace = write_trace(tmp_path / "big.jsonl", events)
    out = tmp_path / "big.html"
    assert cli_main(["trace", str(trace), "--html", str(out)]) == 0
    # Zoomed out, thousands of arrows would be hairlines: the overview draws density bars.
    attrs = body_attributes(out, tmp_path)
    assert attrs["errors"] == "0" and attrs["mode"] == "overview"
    assert int(attrs["arrows-in-window"]) == model.arrows and attrs["arrows-drawn"] == "0"
    assert int(attrs["density-bins"]) > 100 and int(attrs["slot-bands-drawn"]) == 400
    # Asked for, every arrow is still drawn.
    attrs = body_attributes(out, tmp_path, "#mode=detail")
    assert attrs["mode"] == "detail" and int(attrs["arrows-drawn"]) == model.arrows
    html = out.read_text()
    assert html.count("<canvas") == 1 and html.count("<svg") == 0  # no node per arrow
    # Zoomed in on a short window, arrows again, and only what is in it.
    attrs = body_attributes(out, tmp_path, "#t=0-100")
    assert attrs["mode"] == "detail" and attrs["density-bins"] == "0"
    assert 0 < int(attrs["arrows-drawn"]) < model.arrows // 20


def test_trace_command_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli_main(["trace", str(tmp_path / "nope.jsonl"), "--html", str(tmp_path / "o.html")]) == 2
    )
    assert "nope.jsonl: cannot read trace" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"ev":"meta"}\n{oops\n{"ev":"meta"}\n')
    assert cli_main(["trace", str(bad), "--html", str(tmp_path / "o.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ledgersim: error: ") and "bad.jsonl:2:" in err and "\n" not in err
    assert cli_main(["trace", str(bad)]) == 2
    assert "expected --html OUT, --json or both" in capsys.readouterr().err


@pytest.mark.slow
def test_byzantine_primary_run_shows_a_view_change(tmp_path: Path) -> None:
    """End to end: run the shipped scenario with --trace, draw it, look at it in Chromium."""
    root = Path(__file__).resolve().parent.parent
    trace = tmp_path / "run.jsonl"
    status = cli_main(
        ["run", str(root / "scenarios" / "byzantine-primary.toml"), "--trace", str(trace),
         "--quiet"]
    )  # fmt: skip
    assert status == 0
    out = tmp_path / "run.html"
    assert cli_main(["trace", str(trace), "--html", str(out)]) == 0
    model = build_model(parse_trace(trace.read_text().splitlines()))
    attrs = body_attributes(out, tmp_path)
    assert attrs["errors"] == "0"
    assert int(attrs["arrows-drawn"]) == model.arrows > 0
    assert int(attrs["view-changes-drawn"]) >= 1
    assert int(attrs["faults-drawn"]) >= 1
    # The header counts NEW-VIEWs installed by correct replicas, the same figure as --json.
    installed = {e["view"] for e in map(json.loads, trace.read_text().splitlines())
                 if e["ev"] == "new_view"}  # fmt: skip
    assert int(attrs["view-changes-total"]) == len(installed) == model.views.installed >= 1
    phases = {model.types[m[4]] for m in model.msgs}
    assert {"PrePrepare", "Prepare", "Commit", "ViewChange", "NewView"} <= phases


def test_trace_without_messages_still_renders(tmp_path: Path) -> None:
    events = [
        {"ev": "meta", "scenario": "idle", "seed": 0, "n": 4, "f": 1, "clients": []},
        {"ev": "fault", "t": 5, "kind": "partition", "detail": "[[0, 1], [2, 3]]"},
    ]
    page = tmp_path / "idle.html"
    page.write_text(render_html(build_model(events)))
    attrs = body_attributes(page, tmp_path)
    assert attrs["errors"] == "0" and attrs["rendered"] == "1"
    assert (attrs["arrows-drawn"], attrs["faults-drawn"], attrs["lanes"]) == ("0", "1", "4")
