"""The trace page shows what each fault did, checked in headless Chromium.

Each shipped fault scenario is run with ``--trace`` and drawn; the page's own
counters (``data-*`` on ``<body>``) say which marks it drew: rival batches in
their colours, partition sides, crashed periods, labels that do not overlap.
Step-through and the per-slot panel are driven by key presses.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest
from trace_browser import attributes_of, body_attributes, dump_dom, with_keys

from sim.cli.main import main as cli_main
from sim.trace.html import TraceModel, build_model, load_model, render_html

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, TraceModel]]:
    """Trace and page of each fault scenario, made once for the module."""
    folder = tmp_path_factory.mktemp("pages")
    out: dict[str, tuple[Path, TraceModel]] = {}
    for name in ("byzantine-primary", "partition-heal", "crash-recover"):
        trace = folder / f"{name}.jsonl"
        argv = ["run", str(ROOT / "scenarios" / f"{name}.toml"), "--trace", str(trace), "--quiet"]
        assert cli_main(argv) == 0
        page = folder / f"{name}.html"
        assert cli_main(["trace", str(trace), "--html", str(page)]) == 0
        out[name] = (page, load_model(trace))
    return out


def labels_of(attrs: dict[str, str]) -> list[str]:
    texts = json.loads(html.unescape(attrs["label-texts"]))
    assert isinstance(texts, list)
    return [str(t) for t in texts]


def test_equivocation_shows_rival_batches_in_colour(
    pages: dict[str, tuple[Path, TraceModel]], tmp_path: Path
) -> None:
    page, model = pages["byzantine-primary"]
    contested = [s for s in model.slots if len({p[2] for p in s["proposals"]}) > 1]
    assert contested, "the equivocating primary proposed two batches for some sequence number"
    attrs = body_attributes(page, tmp_path)
    assert attrs["errors"] == "0" and attrs["mode"] == "detail"
    assert int(attrs["contested-seqs"]) == len(contested)
    assert int(attrs["rival-arrows-drawn"]) > 0
    assert int(attrs["byzantine-drawn"]) == 1  # the byzantine replica's lane is tinted
    assert attrs["label-overlaps"] == "0" and attrs["axis-start"] == "0"
    # Zoomed in on the first slots, each proposal's digest is written by its arrow.
    attrs = body_attributes(page, tmp_path, "#t=0-300")
    first = contested[0]
    shown = {text.split()[-1] for text in labels_of(attrs) if text.startswith(f"#{first['seq']} ")}
    assert {d[:6] for d in first["digests"][:2]} <= shown
    assert int(attrs["digest-labels-drawn"]) >= 2 and attrs["label-overlaps"] == "0"
    # Without rival colouring nothing is drawn as a rival (the counter follows the drawing).
    page_without = page.with_name("no-rivals.html")
    page_without.write_text(with_keys(page.read_text(), ["b"]))
    assert attributes_of(dump_dom(page_without, tmp_path))["rival-arrows-drawn"] == "0"


def test_partition_sides_are_drawn(
    pages: dict[str, tuple[Path, TraceModel]], tmp_path: Path
) -> None:
    page, model = pages["partition-heal"]
    attrs = body_attributes(page, tmp_path)
    assert attrs["errors"] == "0"
    assert attrs["partition-lanes-drawn"] == "4"  # every replica's lane, tinted by its side
    sides = {(p[3], p[5]) for p in model.periods if p[2] == "partition"}
    assert sides == {(0, 0), (1, 0), (2, 1), (3, 1)}
    labels = labels_of(attrs)
    assert "\u2702 partition {0, 1} | {2, 3}" in labels and "healed" in labels
    assert attrs["label-overlaps"] == "0"


def test_crashed_period_is_shaded(
    pages: dict[str, tuple[Path, TraceModel]], tmp_path: Path
) -> None:
    page, model = pages["crash-recover"]
    assert [p[:4] for p in model.periods] == [[500.0, 1500.0, "crashed", 2]]
    attrs = body_attributes(page, tmp_path)
    assert attrs["errors"] == "0" and attrs["crashed-drawn"] == "1"
    assert {"crashed", "recovered"} <= set(labels_of(attrs))
    # A window that ends before the crash shows no crashed period.
    assert body_attributes(page, tmp_path, "#t=0-400")["crashed-drawn"] == "0"


def test_labels_at_one_instant_do_not_overlap(tmp_path: Path) -> None:
    """A link fault and a partition starting together used to print "link-startpartition-start"."""
    events = [
        {"ev": "meta", "scenario": "clash", "seed": 0, "n": 4, "f": 1, "clients": []},
        {"ev": "fault", "t": 50, "kind": "link-start", "replica": 1, "detail": "link 1->2 drop 1"},
        {"ev": "fault", "t": 50, "kind": "partition-start", "detail": "partition [[0, 1], [2, 3]]"},
        {"ev": "fault", "t": 50, "kind": "crash", "replica": 3, "detail": "crash"},
        {"ev": "fault", "t": 50, "kind": "pause", "replica": 0, "detail": "pause"},
        {"ev": "fault", "t": 90, "kind": "partition-end", "detail": "partition-end"},
        {"ev": "fault", "t": 95, "kind": "resume", "replica": 0, "detail": "resume"},
    ]
    page = tmp_path / "clash.html"
    page.write_text(render_html(build_model(events)))
    attrs = body_attributes(page, tmp_path)
    assert attrs["errors"] == "0" and attrs["label-overlaps"] == "0"
    labels = labels_of(attrs)
    assert "\u2702 partition {0, 1} | {2, 3}" in labels and "crashed" in labels
    assert "paused" in labels and "link 1->2 drop 1" in labels
    assert (attrs["paused-drawn"], attrs["crashed-drawn"]) == ("1", "1")


def test_time_axis_never_starts_below_zero(tmp_path: Path) -> None:
    events = [
        {"ev": "meta", "n": 4, "f": 1, "clients": []},
        {"ev": "send", "t": 0, "id": 1, "from": 0, "to": 1, "type": "Prepare", "view": 0, "seq": 1},
        {"ev": "deliver", "t": 4, "id": 1, "from": 0, "to": 1, "type": "Prepare"},
    ]
    page = tmp_path / "axis.html"
    page.write_text(with_keys(render_html(build_model(events)), ["-", "-", "-", "Home"]))
    attrs = attributes_of(dump_dom(page, tmp_path))
    assert attrs["errors"] == "0"
    assert float(attrs["window-start"]) == 0 and float(attrs["axis-start"]) == 0


def test_step_through_with_keys_follows_the_slot(tmp_path: Path) -> None:
    from test_trace_html import synthetic_trace

    events = synthetic_trace(rounds=3, equivocate_seq=2)
    model = build_model(events)
    page = tmp_path / "keys.html"
    page.write_text(with_keys(render_html(model), ["ArrowRight"] * 3, record_each=True))
    attrs = attributes_of(dump_dom(page, tmp_path))
    assert attrs["errors"] == "0"
    # Event 1 is the request (no sequence number), events 2-3 the PRE-PREPAREs of slot 1.
    assert attrs["key-log"] == "0/-/0 1/1/1 2/1/1"
    page.write_text(with_keys(render_html(model), ["End", "ArrowLeft", "Escape"], record_each=True))
    attrs = attributes_of(dump_dom(page, tmp_path))
    steps = len(model.msgs) + len(model.marks)
    log = attrs["key-log"].split()
    assert log[0].startswith(f"{steps - 1}/") and log[1].startswith(f"{steps - 2}/")
    assert log[2].startswith("-/") and "cursor" not in attrs


def test_slot_panel_shows_who_reached_what(tmp_path: Path) -> None:
    from test_trace_html import RIVAL, batch_digest, synthetic_trace

    model = build_model(synthetic_trace(rounds=3, equivocate_seq=2))
    page = tmp_path / "slots.html"
    page.write_text(with_keys(render_html(model), ["]", "]"]))
    dom = dump_dom(page, tmp_path)
    attrs = attributes_of(dom)
    assert attrs["slot"] == "2" and attrs["slot-proposals"] == "2" and attrs["slot-batches"] == "2"
    # 4 replicas x 4 stages, all reached (replica 3 pre-prepared the rival batch too).
    assert attrs["slot-cells"] == "16"
    panel = dom[dom.index('id="slot-panel"') :]
    assert "sequence number 2" in panel and "2 different batches proposed" in panel
    assert RIVAL[:8] in panel and batch_digest(2)[:8] in panel
    # Stepping shows the slot as it was at the cursor: it fills up as the events go by.
    steps = len(model.msgs) + len(model.marks)
    page.write_text(with_keys(render_html(model), ["ArrowRight"] * steps, record_each=True))
    attrs = attributes_of(dump_dom(page, tmp_path))
    cells = [int(entry.split("/")[2]) for entry in attrs["key-log"].split() if "/2/" in entry]
    assert cells == sorted(cells) and cells[0] < 4 and cells[-1] == 16


def test_cut_off_trace_is_drawn_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_trace_html import synthetic_trace, write_trace

    whole = write_trace(tmp_path / "whole.jsonl", synthetic_trace(rounds=3)).read_text()
    cut = tmp_path / "cut.jsonl"
    cut.write_text(whole[: len(whole) * 2 // 3].rsplit("\n", 1)[0] + '\n{"ev":"send","t":7')
    out = tmp_path / "cut.html"
    assert cli_main(["trace", str(cut), "--html", str(out)]) == 0
    captured = capsys.readouterr()
    warning = captured.err.strip()
    assert warning.startswith("ledgersim: warning: ") and "cut.jsonl:" in warning
    assert "last line is cut off" in warning and "\n" not in warning
    attrs = body_attributes(out, tmp_path)
    assert attrs["errors"] == "0" and attrs["warnings"] == "1"
    assert int(attrs["arrows-drawn"]) > 0
    assert cli_main(["trace", str(cut), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["cut_off"] is True and summary["messages"]["sent"] > 0


DOC_PICTURES = [
    # picture in docs/img, scenario, the fragment it was taken at, a counter it must show
    ("trace-equivocation.png", "byzantine-primary", "#t=0-650&slot=1", "rival-arrows-drawn"),
    ("trace-partition.png", "partition-heal", "#slot=7", "partition-lanes-drawn"),
    ("trace-crash.png", "crash-recover", "#t=300-1800&slot=12", "crashed-drawn"),
]


@pytest.mark.parametrize(("picture", "scenario", "fragment", "counter"), DOC_PICTURES)
def test_doc_pictures_show_the_new_marks(
    picture: str,
    scenario: str,
    fragment: str,
    counter: str,
    pages: dict[str, tuple[Path, TraceModel]],
    tmp_path: Path,
) -> None:
    """The docs' screenshots exist, are small PNGs, and their views draw what they claim."""
    path = ROOT / "docs" / "img" / picture
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < 200_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 900)
    assert f"img/{picture}" in (ROOT / "docs" / "trace.md").read_text()
    page, _ = pages[scenario]
    attrs = body_attributes(page, tmp_path, fragment)
    assert attrs["errors"] == "0" and attrs["mode"] == "detail" and attrs["label-overlaps"] == "0"
    assert int(attrs[counter]) > 0
    assert attrs["slot"] == fragment.split("slot=")[1] and int(attrs["slot-cells"]) > 0
