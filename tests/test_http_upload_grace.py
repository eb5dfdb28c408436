"""An upload submitted late in its file's grace period still finds the file on the peers.

The peers' sweep (``sim.fabric.filegc``) counts a file's grace period from when
it was placed. Through the gateway a caller endorses an upload, places its
file, and may submit only much later, and ordering can then take a view change
or two; a live peer sweeps every second, so a file placed just under the grace
period before the submit could leave the peers before its upload commits, and
the release would name a file no device can fetch. The gateway therefore places
the file again when it accepts the submit, so the grace period starts then.
"""

from __future__ import annotations

import json
from pathlib import Path

from chaincode.patchset import manifest_to_json, sign_manifest
from msp.loader import load_signing_identity
from sim.fabric.blobs import sha256_hex
from sim.fabric.filegc import PLACED_FILE
from sim.fabric.patchclient import build_manifest
from sim.fabric.simnet import SIMNET_FILE, SimGateway, init_sim_network
from sim.http.client import member_msp_dir
from sim.http.service import NetworkService

ADMIN1 = "Admin@org1.example.com"
GRACE_MS = 5_000
DATA = b"late fix " * 40


def sign(net: Path, name: str, hex_bytes: str) -> str:
    key = load_signing_identity(member_msp_dir(net / "crypto", name))
    return str(key.sign(bytes.fromhex(hex_bytes)).hex())


def upload_args(net: Path, name: str) -> list[str]:
    manifest = build_manifest(DATA, name="late", version="1.0", file_name="late.bin")
    key = load_signing_identity(member_msp_dir(net / "crypto", name))
    return [json.dumps(manifest_to_json(manifest)), sign_manifest(key, manifest)]


def placement_times(net: Path, digest: str) -> list[int | None]:
    return [
        json.loads((peer / PLACED_FILE).read_text()).get(digest)
        for peer in sorted((net / "blobs").iterdir())
    ]


def test_submitting_an_upload_restarts_its_files_grace_period(tmp_path: Path) -> None:
    net = tmp_path / "net"
    init_sim_network(net, seed=5)
    config = json.loads((net / SIMNET_FILE).read_text())
    (net / SIMNET_FILE).write_text(json.dumps({**config, "file_grace_ms": GRACE_MS}))
    service = NetworkService(net)
    admin = service.member(ADMIN1)
    prepared = service.prepare(admin, "upload", upload_args(net, ADMIN1))
    endorsed = service.endorse(admin, prepared["tx_id"], sign(net, ADMIN1, prepared["bytes"]))
    service.publish(admin, DATA)
    digest = sha256_hex(DATA)
    placed_at = placement_times(net, digest)
    assert len(placed_at) == 4 and len(set(placed_at)) == 1 and placed_at[0] is not None
    with SimGateway.open(net) as gateway:
        gateway.advance(GRACE_MS - 500)  # the caller waits; the file is still in its grace
        waited_until = gateway.cfg.clock_ms
    assert all(t == placed_at[0] for t in placement_times(net, digest))
    done = service.submit(admin, prepared["tx_id"], sign(net, ADMIN1, endorsed["bytes"]))
    assert done["validation_code"] == "VALID"
    # Placed again when the submit was accepted: the whole grace period covers the ordering.
    assert all(t is not None and t >= waited_until for t in placement_times(net, digest))
