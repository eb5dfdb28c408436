"""`ledgersim bench --peer-bftsim DIR`: BFT-Simulator timed beside sim-modelled's n = 16.

The real BFT-Simulator is not part of the test suite (it is fetched by whoever
benchmarks), so these tests drive a stand-in with the same shape: a
``simulator.js`` whose class runs ``config.repeatTime`` decisions and a
protocol module that, like the real one, requires ``config.js`` on its own.
That checks what the driver relies on: its in-memory settings reach every
module of the peer, and its figures are read back exactly.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from sim.bench.peer import NODES, PeerError, check_directory, compare, run_bftsim
from sim.bench.simruns import beside_peer
from sim.bench.suite import TARGETS
from sim.cli.main import main

CONFIG = "module.exports = { nodeNum: 4, repeatTime: 1, protocol: 'other' };\n"
PROTOCOL = """const config = require('../config');
module.exports = () => config.nodeNum * (config.nodeNum - 1) + (config.protocol === 'pbft' ? 1 : 0);
"""
SIMULATOR = """const config = require('./config');
const messagesPerDecision = require('./ba-algo/pbft');
class Simulator {
  constructor(c) { this.config = c; this.simulationResults = []; }
  startSimulation() {
    for (let i = 0; i < this.config.repeatTime; i++)
      this.simulationResults.push({ totalMsgCount: messagesPerDecision() });
  }
}
module.exports = Simulator;
"""


def fake_peer(root: Path, simulator: str = SIMULATOR) -> Path:
    (root / "ba-algo").mkdir(parents=True)
    (root / "config.js").write_text(CONFIG)
    (root / "ba-algo" / "pbft.js").write_text(PROTOCOL)
    (root / "simulator.js").write_text(simulator)
    return root


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        h.update(str(path.relative_to(root)).encode())
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


def test_driver_sets_the_peer_up_in_memory_and_reads_its_figures(tmp_path: Path) -> None:
    peer = fake_peer(tmp_path / "bftsim")
    before = tree_digest(peer)
    run = run_bftsim(peer, decisions=7)
    # 16 nodes reached the protocol module through its own require('../config'),
    # and so did protocol 'pbft': 16 * 15 + 1 messages per decision.
    assert run["nodes"] == NODES == 16
    assert run["decisions"] == 7
    assert run["messages"] == 7 * (16 * 15 + 1)
    assert run["messages_per_s"] == pytest.approx(run["messages"] / run["wall_s"])
    assert run["cpu_us_per_message"] == pytest.approx(1e6 * run["cpu_s"] / run["messages"])
    assert tree_digest(peer) == before, "the peer's checkout must not be changed"


def test_a_broken_peer_is_reported_and_our_row_stands(tmp_path: Path) -> None:
    broken = "throw new Error('no simulator here');\n"
    peer = fake_peer(tmp_path / "bftsim", simulator=broken)
    with pytest.raises(PeerError, match="no simulator here"):
        run_bftsim(peer, decisions=1)
    measured: list[int] = []

    def measure() -> dict[str, Any]:
        measured.append(1)
        return {"n": 16, "messages_per_s": 100.0, "cpu_us_per_message": 10.0}

    row = beside_peer(measure, peer, quick=True)
    assert measured == [1]
    assert row["messages_per_s"] == 100.0
    assert row["peer"]["status"] == "failed"
    assert "no simulator here" in row["peer"]["reason"]
    target = next(t for t in TARGETS if "BFT-Simulator" in t.name)
    assert target.check({"status": "ok", "sizes": [row]})["met"] is None


def test_ratio_is_against_the_peers_better_run_and_judged_by_the_target(tmp_path: Path) -> None:
    peer = fake_peer(tmp_path / "bftsim")
    row = beside_peer(
        lambda: {"n": 16, "messages_per_s": 1.0, "cpu_us_per_message": 1.0}, peer, True
    )
    assert row["peer"]["status"] == "ok" and len(row["peer"]["runs"]) == 2
    slower = {"messages_per_s": 100.0, "cpu_us_per_message": 10.0}
    faster = {"messages_per_s": 200.0, "cpu_us_per_message": 5.0}
    ours = {"messages_per_s": 150.0, "cpu_us_per_message": 6.0}
    verdict = compare(ours, [slower, faster])
    assert verdict["ratio"] == pytest.approx(0.75)
    assert verdict["cpu_ratio"] == pytest.approx(5.0 / 6.0)
    target = next(t for t in TARGETS if "BFT-Simulator" in t.name)
    section = {"status": "ok", "sizes": [{"n": 16, "peer": {"status": "ok", **verdict}}]}
    assert target.check(section)["met"] is False
    verdict = compare({"messages_per_s": 250.0, "cpu_us_per_message": 4.0}, [slower, faster])
    section["sizes"][0]["peer"] = {"status": "ok", **verdict}
    assert target.check(section)["met"] is True


def test_a_directory_that_is_not_bftsim_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check_directory(fake_peer(tmp_path / "ok")) is None
    assert main(["bench", "--only", "limits", "--peer-bftsim", str(tmp_path / "missing")]) == 2
    assert "--peer-bftsim" in capsys.readouterr().err
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "simulator.js").write_text(SIMULATOR)
    assert main(["bench", "--only", "limits", "--peer-bftsim", str(tmp_path / "half")]) == 2
    assert "config.js" in capsys.readouterr().err
