"""Files no pending or released version refers to leave the peers after the grace period.

Over a simulated network (``net init --sim``), through the same patch client
the CLI uses: a released version's file stays; a file placed for an upload
that never committed, and the file of a withdrawn upload, are removed from
every peer once the grace period has passed in the network's time, and not
before. (The live twin is in tests/test_live_patch_files.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.errors import InputError
from sim.fabric.blobs import DirectoryBlobStore, sha256_hex
from sim.fabric.filegc import FileSweeper
from sim.fabric.patchclient import PatchClient, build_manifest
from sim.fabric.simnet import SIMNET_FILE, SimGateway, init_sim_network
from sim.fabric.verify import Trust

ADMIN1 = "Admin@org1.example.com"
ADMIN2 = "Admin@org2.example.com"
GRACE_MS = 600_000
KEPT, WITHDRAWN, ORPHAN = b"released fix " * 50, b"retracted fix " * 50, b"never uploaded " * 50


def holders(net: Path, data: bytes) -> int:
    """On how many peers the file is stored."""
    digest = sha256_hex(data)
    return sum(digest in DirectoryBlobStore(peer).digests() for peer in (net / "blobs").iterdir())


def test_unreferenced_files_leave_every_peer_after_the_grace_period(tmp_path: Path) -> None:
    net = tmp_path / "net"
    init_sim_network(net, seed=11)
    with SimGateway.open(net) as gateway:
        client = PatchClient(gateway, Trust.load(net / "crypto").msps)
        kept = build_manifest(KEPT, name="fix", version="1.0", file_name="f.bin")
        client.upload(ADMIN1, kept, KEPT)
        client.approve(ADMIN2, "fix", "1.0")
        retracted = build_manifest(WITHDRAWN, name="fix", version="1.1", file_name="f.bin")
        client.upload(ADMIN1, retracted, WITHDRAWN)
        assert client.withdraw(ADMIN1, "fix", "1.1", "wrong build")["status"] == "withdrawn"
        gateway.publish_file(ORPHAN)  # placed for an upload that was never submitted
    # Within the grace period nothing is removed (its upload may still be on its way).
    assert holders(net, KEPT) == holders(net, WITHDRAWN) == holders(net, ORPHAN) == 4
    with SimGateway.open(net) as gateway:
        gateway.advance(GRACE_MS)
    assert holders(net, KEPT) == 4
    assert holders(net, WITHDRAWN) == holders(net, ORPHAN) == 0
    # The released file is still served, by any peer.
    with SimGateway.open(net) as gateway:
        client = PatchClient(gateway, Trust.load(net / "crypto").msps)
        client.register("User1@org1.example.com", "linux", [])
        assert client.download("User1@org1.example.com", "fix").fetch.data == KEPT


def test_a_file_placed_again_gets_a_new_grace_period(tmp_path: Path) -> None:
    store = DirectoryBlobStore(tmp_path / "blobs")
    sweeper = FileSweeper(store, grace_ms=1_000)
    digest = store.put(ORPHAN)
    sweeper.placed(digest, 0)
    sweeper.placed(digest, 900)  # a second upload attempt with the same file
    assert sweeper.sweep(set(), 1_500) == []
    assert sweeper.sweep(set(), 1_900) == [(digest, len(ORPHAN))]
    assert not store.has(digest)


def test_a_file_with_no_placement_time_gets_the_grace_period_from_first_sight(
    tmp_path: Path,
) -> None:
    store = DirectoryBlobStore(tmp_path / "blobs")
    digest = store.put(ORPHAN)  # stored before placement times were kept
    sweeper = FileSweeper(store, grace_ms=1_000)
    assert sweeper.sweep(set(), 50_000) == [] and store.has(digest)
    assert sweeper.sweep({digest}, 60_000) == [] and store.has(digest)  # referenced: kept
    assert sweeper.sweep(set(), 51_000) == [(digest, len(ORPHAN))]


def test_a_bad_grace_period_in_simnet_json_is_one_line(tmp_path: Path) -> None:
    net = tmp_path / "net"
    init_sim_network(net, seed=11)
    config = json.loads((net / SIMNET_FILE).read_text())
    (net / SIMNET_FILE).write_text(json.dumps({**config, "file_grace_ms": -5}))
    with pytest.raises(InputError, match="file_grace_ms"), SimGateway.open(net):
        pass


def test_a_placement_time_in_the_future_counts_from_the_sweep_that_sees_it(
    tmp_path: Path,
) -> None:
    """A clock stepped back, or a tampered placed.json, must not keep a file for ever."""
    store = DirectoryBlobStore(tmp_path / "blobs")
    sweeper = FileSweeper(store, grace_ms=1_000)
    digest = store.put(ORPHAN)
    sweeper.placed(digest, 10**15)
    assert sweeper.sweep(set(), 5_000) == [] and store.has(digest)  # the full grace from now
    assert sweeper.sweep(set(), 5_999) == [] and store.has(digest)
    assert sweeper.sweep(set(), 6_000) == [(digest, len(ORPHAN))]


def test_a_garbled_or_hostile_placed_json_neither_raises_nor_reaches_outside_the_store(
    tmp_path: Path,
) -> None:
    store = DirectoryBlobStore(tmp_path / "blobs")
    sweeper = FileSweeper(store, grace_ms=1_000)
    digest = store.put(ORPHAN)
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    placed = store.root / "placed.json"
    placed.write_text("[" * 200_000)  # nested past the parser's recursion limit
    assert sweeper.sweep(set(), 0) == [] and store.has(digest)  # no time known: grace from now
    placed.write_text(json.dumps({"../../precious.txt": 0, "../precious.txt": 0, digest: 0}))
    assert sweeper.sweep(set(), 1_000) == [(digest, len(ORPHAN))]
    assert outside.read_text() == "keep me"
    assert json.loads(placed.read_text()) == {}  # names that are no stored file are forgotten


def test_a_symlinked_folder_in_the_store_never_lets_the_sweep_delete_outside_it(
    tmp_path: Path,
) -> None:
    """Someone with write access to a peer's store links a fan-out folder elsewhere:
    files named like blobs out there are not the store's, and must survive a sweep."""
    outside = tmp_path / "outside"
    outside.mkdir()
    victim_digest = sha256_hex(b"not a patch")
    victim = outside / victim_digest
    victim.write_bytes(b"precious")
    store_root = tmp_path / "store"
    store = DirectoryBlobStore(store_root)
    real = store.put(b"an orphan blob")
    (store_root / victim_digest[:2]).symlink_to(outside, target_is_directory=True)
    linked_file = sha256_hex(b"linked file")
    (store_root / real[:2] / linked_file).symlink_to(victim)
    sweeper = FileSweeper(store, grace_ms=10)
    sweeper.sweep(set(), now_ms=0)
    removed = sweeper.sweep(set(), now_ms=1_000)
    assert [digest for digest, _ in removed] == [real]
    assert victim.read_bytes() == b"precious"
    assert (store_root / real[:2] / linked_file).is_symlink()
