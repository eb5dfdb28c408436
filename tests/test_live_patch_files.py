"""Patch files and release proofs on a live network (``net up``), through ``ledgersim patch``.

``proof`` / ``verify-proof`` and ``download --max-age-ms``: the release proof
is the block that committed a ``metadata`` call with its commit certificate,
read from the nodes' block stores; the device checks it with the CA
certificates and CRLs only, and dates it by the block's agreed (wall-clock)
time. And each node removes files no pending or released version refers to
once ``network.json``'s ``file_grace_ms`` has passed.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from live_helpers import watched

from sim.cli.main import main
from sim.errors import InputError
from sim.fabric.blobs import DirectoryBlobStore, sha256_hex
from sim.live import broker, cluster
from sim.live.filesweep import GRACE_KEY
from sim.live.gateway import open_gateway
from sim.live.host import BLOB_DIR
from sim.live.netconfig import node_dir

pytestmark = pytest.mark.live

ADMIN1 = "Admin@org1.example.com"
ADMIN2 = "Admin@org2.example.com"
USER = "User1@org2.example.com"
GRACE_MS = 8_000
"""Long enough for an upload to commit after its file is placed, even on a busy machine."""


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    try:
        broker.find_mosquitto()
    except InputError as exc:
        pytest.fail(f"live tests need mosquitto: {exc}")
    directory = tmp_path_factory.mktemp("liveproof") / "net"
    pbft = replace(cluster.DEFAULT_PBFT, view_change_timeout_ms=1000, client_retry_ms=500)
    with watched(directory):
        config = cluster.init(directory, cluster.UpOptions(pbft=pbft))
        replace(config, extra={**config.extra, GRACE_KEY: GRACE_MS}).save(directory)
        cluster.up(directory)
        yield directory


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def patch(net: Path, *args: str) -> dict[str, Any]:
    code, out, err = run("patch", *args, "--network", str(net), "--json")
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def test_proof_verifies_offline_and_freshness_is_judged_by_block_time(
    net: Path, tmp_path: Path
) -> None:
    data = tmp_path / "fix.bin"
    data.write_bytes(b"live proof " * 100)
    patch(net, "upload", "--as", ADMIN1, "--file", str(data), "--name", "fix", "--version", "2.0")
    patch(net, "approve", "fix", "2.0", "--as", ADMIN2)
    patch(net, "register", "--as", USER, "--os", "linux")
    proof = tmp_path / "fix.proof.json"
    written = patch(net, "proof", "fix", "--as", USER, "--out", str(proof))
    assert written["release"]["manifest"]["version"] == "2.0"
    crypto = str(net / "crypto")
    code, out, err = run("patch", "verify-proof", str(proof), "--msp", crypto, "--json")
    assert code == 0, err
    checked = json.loads(out)
    assert checked["version"] == "2.0" and checked["block"] > 0
    # Dated by the block's agreed time: fresh now, stale for a device an hour later.
    now = checked["dated_ms"] + 1_000
    assert run("patch", "verify-proof", str(proof), "--msp", crypto, "--now-ms", str(now),
               "--max-age-ms", "60000")[0] == 0  # fmt: skip
    later = str(now + 3_600_000)
    code, _out, err = run("patch", "verify-proof", str(proof), "--msp", crypto,
                          "--now-ms", later, "--max-age-ms", "60000")  # fmt: skip
    assert code == 1 and err.count("\n") == 1 and "stale or frozen" in err
    # download --max-age-ms takes the release from a fresh proof it verified itself.
    out_file = tmp_path / "got.bin"
    got = patch(net, "download", "fix", "--as", USER, "--out", str(out_file),
                "--max-age-ms", "60000")  # fmt: skip
    assert out_file.read_bytes() == data.read_bytes() and got["manifest"]["version"] == "2.0"
    # A bound no answer can meet is one line, nothing downloaded or recorded.
    code, _out, err = run("patch", "download", "fix", "--as", USER, "--out", str(tmp_path / "x"),
                          "--max-age-ms", "0", "--network", str(net))  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and not (tmp_path / "x").exists()


def stored_on(net: Path, data: bytes) -> int:
    digest = sha256_hex(data)
    return sum(DirectoryBlobStore(node_dir(net, i) / BLOB_DIR).has(digest) for i in range(4))


def test_nodes_remove_files_no_release_refers_to_after_the_grace_period(
    net: Path, tmp_path: Path
) -> None:
    kept = tmp_path / "kept.bin"
    kept.write_bytes(b"kept release " * 100)
    patch(net, "upload", "--as", ADMIN1, "--file", str(kept), "--name", "gc", "--version", "1.0")
    patch(net, "approve", "gc", "1.0", "--as", ADMIN2)
    retracted = tmp_path / "retracted.bin"
    retracted.write_bytes(b"retracted upload " * 100)
    patch(net, "upload", "--as", ADMIN1, "--file", str(retracted), "--name", "gc",
          "--version", "1.1")  # fmt: skip
    patch(net, "withdraw", "gc", "1.1", "--as", ADMIN1, "--reason", "wrong build")
    orphan = b"placed, never uploaded " * 100
    with open_gateway(net) as gateway:
        gateway.signer(ADMIN1)  # files are placed as the administrator who signs
        placed_at = time.monotonic()
        assert len(gateway.publish_file(orphan)) == 4
    assert stored_on(net, orphan) == 4  # within the grace period: kept
    deadline = placed_at + GRACE_MS / 1000 + 30
    while stored_on(net, orphan) or stored_on(net, retracted.read_bytes()):
        assert time.monotonic() < deadline, "unreferenced files still on the nodes"
        time.sleep(0.5)
    assert time.monotonic() - placed_at >= GRACE_MS / 1000 - 1  # not before the grace period
    assert stored_on(net, kept.read_bytes()) == 4
