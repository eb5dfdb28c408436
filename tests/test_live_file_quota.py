"""A live node's file quota counts the bytes its store holds, not the puts it answered.

Placing a file that is already stored (an administrator retrying, or the HTTP
gateway placing an upload's file again when it is submitted, so its grace
period starts then) uses no more disk. Counting it again drifted the node's
tally up for good (the sweep subtracts a removed file once), until the quota
refused every new file while the disk held a fraction of it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from ledger.codec import encode
from sim.fabric.blobs import sha256_hex
from sim.live import cluster
from sim.live.host import FILE_QUOTA_BYTES, NodeHost
from sim.live.netconfig import load_config, node_dir
from sim.live.node import open_node
from sim.live.transport import Incoming
from sim.live.wire import FileRequest

DATA = b"a patch " * 1000


class _Sent:
    """Stands in for the node's MQTT transport: keeps what the node sends."""

    def __init__(self) -> None:
        self.stats: Counter[str] = Counter()
        self.sent: list[tuple[int, bytes]] = []

    async def send(self, to: int, data: bytes) -> None:
        self.sent.append((to, data))


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("net")
    cluster.init(directory, cluster.UpOptions(broker="mqtt://127.0.0.1:1", chaincode="none"))
    return directory


def test_placing_a_stored_file_again_does_not_count_it_again(network: Path) -> None:
    config = load_config(network)
    host = NodeHost(open_node(network, 0, node_dir(network, 0)))
    host.transport = _Sent()  # type: ignore[assignment]
    admin = config.client_id("Admin@org1.example.com", 0)
    before = host.stored_bytes

    async def put(request_id: int) -> None:
        request = FileRequest(request_id, admin, "put", "", DATA)
        await host._serve_file(Incoming(admin, encode(request), 0))

    for request_id in range(1, 4):
        asyncio.run(put(request_id))
    assert len(host.transport.sent) == 3  # type: ignore[attr-defined]
    assert host.stored_bytes == before + len(DATA)


def test_a_full_quota_is_not_passed_by_claiming_a_stored_files_digest(network: Path) -> None:
    config = load_config(network)
    host = NodeHost(open_node(network, 1, node_dir(network, 1)))
    host.transport = _Sent()  # type: ignore[assignment]
    admin = config.client_id("Admin@org1.example.com", 0)
    stored = FileRequest(1, admin, "put", "", DATA)
    asyncio.run(host._serve_file(Incoming(admin, encode(stored), 1)))
    host.stored_bytes = FILE_QUOTA_BYTES - 10  # the node's disk allowance is all but used
    new = b"something else " * 100
    lying = FileRequest(2, admin, "put", sha256_hex(DATA), new)
    asyncio.run(host._serve_file(Incoming(admin, encode(lying), 1)))
    assert not host.blobs.has(sha256_hex(new))
    assert host.stored_bytes == FILE_QUOTA_BYTES - 10
