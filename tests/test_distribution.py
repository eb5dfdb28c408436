"""Patch files from any peer: integrity against lying peers, availability with peers down."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaincode.patchset import PatchSetContract, manifest_from_json, manifest_to_json, sign_manifest
from chaincode.shim import Creator
from chaincode.testing import ContractHarness
from msp.ca import generate_network
from sim.fabric.blobs import DirectoryBlobStore, MemoryBlobStore, sha256_hex
from sim.fabric.distribution import (
    Distribution,
    DownloadFailed,
    FileRef,
    PeerServer,
    ReleaseRejected,
    ReleaseRequest,
    ServeMode,
    TransferModel,
    check_release,
)

PAYLOAD = bytes(range(256)) * 300  # 76.8 kB, no two 32-byte windows alike
CRYPTO = generate_network(2, 1, 1, seed=b"distribution")
MSPS = CRYPTO.msps()
NAMES = [f"peer{i // 2}.org{i % 2 + 1}.example.com" for i in range(4)]


def network(n: int = 4) -> Distribution:
    names = NAMES if n == 4 else [f"peer{i}" for i in range(n)]
    return Distribution([PeerServer(name, MemoryBlobStore()) for name in names])


def published(n: int = 4) -> tuple[Distribution, FileRef]:
    dist = network(n)
    ref, holders = dist.publish(PAYLOAD)
    assert holders == [p.name for p in dist.peers]
    assert ref == FileRef(sha256_hex(PAYLOAD), len(PAYLOAD))
    return dist, ref


@pytest.mark.parametrize(
    ("mode", "reason", "bytes_read"),
    [
        (ServeMode.CORRUPT, "SHA-256 mismatch", len(PAYLOAD)),
        (ServeMode.SUBSTITUTE, "SHA-256 mismatch", len(PAYLOAD)),
        (
            ServeMode.TRUNCATE,
            f"sent {len(PAYLOAD) // 2} of {len(PAYLOAD)} bytes",
            len(PAYLOAD) // 2,
        ),
        (ServeMode.OVERSIZE, f"the ledger says {len(PAYLOAD)}", 0),
    ],
)
def test_a_lying_peer_is_rejected_and_another_serves(
    mode: ServeMode, reason: str, bytes_read: int
) -> None:
    dist, ref = published()
    dist.peers[0].mode = mode
    result = dist.fetch(ref)
    assert result.data == PAYLOAD
    assert result.served_by == NAMES[1]
    [bad] = result.rejected
    assert (bad.peer, bad.outcome) == (NAMES[0], "rejected")
    assert reason in bad.reason
    assert bad.bytes_read == bytes_read


def test_oversized_offer_is_refused_before_reading_a_byte() -> None:
    dist, ref = published()
    store = dist.peers[0].store
    assert isinstance(store, MemoryBlobStore)
    store.replace(ref.sha256, PAYLOAD + b"trailing")
    attempt = dist.fetch(ref).attempts[0]
    assert (attempt.outcome, attempt.bytes_read) == ("rejected", 0)


@pytest.mark.parametrize("down", list(itertools.combinations(range(4), 1)))
def test_with_any_f_peers_down_the_file_is_downloadable(down: tuple[int, ...]) -> None:
    dist, ref = published()
    for i in down:
        dist.peers[i].up = False
    result = dist.fetch(ref)
    assert result.data == PAYLOAD
    assert result.served_by not in {NAMES[i] for i in down}
    assert [a.peer for a in result.unavailable] == [
        NAMES[i] for i in down if i < NAMES.index(result.served_by)
    ]


@settings(max_examples=60, deadline=None)
@given(
    faults=st.lists(st.sampled_from([None, "down", *ServeMode]), min_size=7, max_size=7).filter(
        lambda fs: any(f in (None, ServeMode.HONEST) for f in fs)
    ),
    seed=st.integers(0, 2**32),
)
def test_any_mix_of_faults_with_one_honest_holder_yields_the_true_file(
    faults: list[Any], seed: int
) -> None:
    dist, ref = published(7)
    for peer, fault in zip(dist.peers, faults, strict=True):
        if fault == "down":
            peer.up = False
        elif fault is not None:
            peer.mode = fault
    result = dist.fetch(ref, rng=random.Random(seed))
    assert result.data == PAYLOAD
    assert dist.peer(result.served_by).mode is ServeMode.HONEST
    assert result.elapsed_ms == sum(a.elapsed_ms for a in result.attempts)
    # Same seed, same order of peers tried: downloads replay.
    again = dist.fetch(ref, rng=random.Random(seed))
    assert again.attempts == result.attempts


def test_all_peers_failing_names_each_reason() -> None:
    dist, ref = published()
    dist.peers[0].up = False
    dist.peers[1].mode = ServeMode.CORRUPT
    dist.peers[2].store = MemoryBlobStore()
    dist.peers[3].mode = ServeMode.TRUNCATE
    with pytest.raises(DownloadFailed) as info:
        dist.fetch(ref)
    assert [a.outcome for a in info.value.attempts] == [
        "unavailable",
        "rejected",
        "unavailable",
        "rejected",
    ]
    assert "no answer (down)" in str(info.value) and "does not hold the file" in str(info.value)


def test_transfer_time_grows_with_size_and_timeouts_cost() -> None:
    model = TransferModel(latency_ms=5, bytes_per_ms=1000, timeout_ms=300)
    assert [model.transfer_ms(n) for n in (0, 1, 1000, 1001, 10_000)] == [5, 6, 6, 7, 15]
    dist, ref = published()
    dist.model = model
    dist.peers[0].up = False
    result = dist.fetch(ref)
    assert result.elapsed_ms == 300 + model.transfer_ms(len(PAYLOAD))


def test_publish_skips_down_peers_and_repair_fills_them_in() -> None:
    dist = network()
    dist.peers[2].up = False
    ref, holders = dist.publish(PAYLOAD)
    assert NAMES[2] not in holders
    dist.peers[2].up = True
    dist.peers[0].mode = ServeMode.CORRUPT
    assert dist.repair(ref) == [NAMES[2]]
    assert dist.peers[2].store.has(ref.sha256)
    dist.peers[1].up = dist.peers[3].up = False
    assert dist.fetch(ref).served_by == NAMES[2]


def test_directory_store_round_trip(tmp_path: Path) -> None:
    store = DirectoryBlobStore(tmp_path / "blobs")
    assert store.digests() == []
    digest = store.put(PAYLOAD)
    assert store.put(PAYLOAD) == digest
    assert store.has(digest) and store.size(digest) == len(PAYLOAD)
    stream = store.open(digest)
    assert stream is not None
    with stream:
        assert stream.read() == PAYLOAD
    assert DirectoryBlobStore(tmp_path / "blobs").digests() == [digest]
    assert store.open("0" * 64) is None
    with pytest.raises(ValueError, match="64 lower-case hex"):
        store.has("../../etc/passwd")


# ----------------------------------------------------------------- release metadata


@pytest.fixture(scope="module")
def release() -> dict[str, Any]:
    crypto = CRYPTO

    def who(name: str) -> Creator:
        s = crypto.signer(name)
        return Creator(s.mspid, s.role, s.name, s.cert_pem)

    m = manifest_from_json(
        {
            "name": "tzdata",
            "version": "2024.1",
            "file": {"name": "tzdata.patch", "sha256": sha256_hex(PAYLOAD), "size": len(PAYLOAD)},
            "policy": {"install": "mandatory", "log": "write", "reboot": "unrebooting"},
        }
    )
    h = ContractHarness(PatchSetContract())
    admin = "Admin@org1.example.com"
    h.invoke(
        who(admin),
        "upload",
        json.dumps(manifest_to_json(m)),
        sign_manifest(crypto.signer(admin), m),
    )
    h.invoke(who("Admin@org2.example.com"), "approve", "tzdata", "2024.1")
    h.invoke(who("User1@org1.example.com"), "register", '{"os": "debian-12"}')
    reply = h.invoke(who("User1@org1.example.com"), "metadata", "tzdata")
    return json.loads(reply)


def test_a_genuine_release_checks_out(release: dict[str, Any]) -> None:
    assert check_release(release, ReleaseRequest("tzdata"), MSPS) == FileRef(
        sha256_hex(PAYLOAD), len(PAYLOAD)
    )


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        (("manifest", "file", "sha256"), "0" * 64, "does not match its recorded digest"),
        (("digest",), "0" * 64, "does not match its recorded digest"),
        (("signature",), "3006020101020101", "signature does not verify"),
        (("deployer", "name"), "Admin@org2.example.com", "does not name the deployer"),
        (("fetch", "size"), 1, "disagrees with the signed manifest"),
        (("deployer_cert",), "garbage", "malformed release metadata"),
    ],
)
def test_tampered_release_metadata_is_refused(
    release: dict[str, Any], path: tuple[str, ...], value: Any, reason: str
) -> None:
    tampered = json.loads(json.dumps(release))
    target = tampered
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ReleaseRejected, match=reason):
        check_release(tampered, ReleaseRequest("tzdata"), MSPS)
