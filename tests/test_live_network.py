"""A real 4-node network: OS processes, a private mosquitto, the patch client over MQTT.

One network serves the whole module (starting one costs a second or two; the
machine is shared). Tests that disturb it run last: the kill -9 test ends by
stopping the network and checking every node's block store from disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from live_helpers import wait_for, watched

from ledger.blockstore import BlockStore
from ledger.codec import decode, encode
from pbft.messages import Prepare, Request
from sim.cli.main import main
from sim.errors import InputError
from sim.fabric.app import LEDGER_DIR
from sim.fabric.blobs import sha256_hex
from sim.live import broker, cluster, topics
from sim.live.host import read_status
from sim.live.load import measure_capacity, run_load
from sim.live.netconfig import NetworkConfig, load_config, node_dir
from sim.live.wire import Envelope

pytestmark = pytest.mark.live

ADMIN1 = "Admin@org1.example.com"
ADMIN2 = "Admin@org2.example.com"
USER = "User1@org2.example.com"


@pytest.fixture(scope="session")
def mosquitto() -> str:
    """Live tests fail (never skip) without a broker binary; CI installs one in .ci/run."""
    try:
        return broker.find_mosquitto()
    except InputError as exc:
        pytest.fail(f"live tests need mosquitto: {exc}")


@pytest.fixture(scope="module")
def net(mosquitto: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("live") / "net"
    pbft = replace(cluster.DEFAULT_PBFT, view_change_timeout_ms=1000, client_retry_ms=500)
    with watched(directory):
        cluster.up(directory, cluster.UpOptions(chaincode="patchset", pbft=pbft))
        yield directory


def statuses(directory: Path) -> list[dict[str, Any]]:
    config = load_config(directory)
    return [read_status(node_dir(directory, i)) or {} for i in range(config.n)]


def heads_agree(directory: Path, at_least: int = 0) -> bool:
    found = statuses(directory)
    heights = {s.get("height") for s in found}
    heads = {s.get("head_hash") for s in found}
    return len(heights) == 1 and len(heads) == 1 and (heights.pop() or 0) >= at_least


def password(directory: Path, user: str) -> str:
    if user.startswith("replica-"):
        path = node_dir(directory, int(user.split("-")[1])) / cluster.PASSWORD_FILE
    else:
        path = directory / cluster.BROKER_DIR / f"{user}-password"
    return path.read_text().strip()


async def publish_as(
    directory: Path, config: NetworkConfig, user: str, items: list[tuple[str, bytes]]
) -> None:
    port = int(config.broker_url.rsplit(":", 1)[1])
    async with aiomqtt.Client(
        "127.0.0.1", port, username=user, password=password(directory, user)
    ) as client:
        for topic, payload in items:
            await client.publish(topic, payload)


def test_acl_keeps_a_node_off_another_nodes_topics(net: Path) -> None:
    config = load_config(net)
    port = int(config.broker_url.rsplit(":", 1)[1])
    own = topics.unicast(config.net, 1, True, 2)
    foreign = [topics.unicast(config.net, 0, True, 2), topics.broadcast(config.net, 3, True)]
    as_client = topics.broadcast(config.net, 1001, False)

    async def scenario() -> list[str]:
        async with aiomqtt.Client(
            "127.0.0.1", port, username="monitor", password=password(net, "monitor")
        ) as monitor:
            await monitor.subscribe(f"{topics.network_root(config.net)}/#")
            payload = encode(Envelope(1, b"probe"))
            items = [(t, payload) for t in [*foreign, as_client, own]]
            await publish_as(net, config, "replica-1", items)
            seen = await topics_carrying(monitor, payload)
        return seen

    assert asyncio.run(scenario()) == [own]


async def topics_carrying(
    monitor: aiomqtt.Client, payload: bytes, wait_s: float = 1.5
) -> list[str]:
    """The topics on which ``monitor`` sees ``payload`` within ``wait_s`` seconds (ACL probes)."""
    seen: list[str] = []

    async def collect() -> None:
        async for message in monitor.messages:
            if message.payload == payload:
                seen.append(message.topic.value)

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(collect(), wait_s)
    return seen


def test_forged_and_garbage_messages_are_dropped_and_counted(net: Path) -> None:
    config = load_config(net)
    wait_for("a quiet, agreeing network", lambda: heads_agree(net))
    before = statuses(net)
    rng = random.Random(7)
    seq = before[1]["last_executed"] + 1
    forged_prepare = Prepare(
        view=0,
        seq=seq,
        digest=rng.randbytes(32),
        timestamp_ms=1,
        replica=1,
        signature=rng.randbytes(71),
    )
    forged_request = Request(1001, 5, b"steal", rng.randbytes(70))
    broadcast1 = topics.broadcast(config.net, 1, True)
    items = [
        (broadcast1, rng.randbytes(200)),  # random bytes
        (broadcast1, encode(Envelope(1, rng.randbytes(50)))),  # an envelope of garbage
        (broadcast1, encode(Envelope(0, encode(forged_prepare)))),  # claims 0 on 1's topic
        (broadcast1, encode(Envelope(1, encode(forged_prepare)))),  # bad signature
    ]
    asyncio.run(publish_as(net, config, "replica-1", items))
    client_items = [
        (topics.broadcast(config.net, 1001, False), encode(Envelope(1001, encode(forged_request))))
    ]
    asyncio.run(publish_as(net, config, "client-0", client_items))

    def counted() -> bool:
        return all(
            sum(s.get("dropped", {}).values()) >= sum(b.get("dropped", {}).values()) + 5
            for i, (s, b) in enumerate(zip(statuses(net), before, strict=True))
            if i != 1
        )

    wait_for("every other node to count five drops", counted, 10)
    after = statuses(net)
    for i in (0, 2, 3):
        dropped = after[i]["dropped"]
        assert (
            dropped.get("drop.transport.undecodable.malformed", 0)
            + dropped.get("drop.transport.undecodable.trailing-bytes", 0)
            >= 1
        )
        assert dropped.get("drop.transport.sender-mismatch", 0) >= 1
        assert sum(v for k, v in dropped.items() if not k.startswith("drop.transport")) >= 3
    for b, a in zip(before, after, strict=True):
        assert (a["view"], a["height"], a["head_hash"]) == (b["view"], b["height"], b["head_hash"])


def patch(net: Path, *args: str) -> dict[str, Any]:
    """``ledgersim patch ... --network NET --json``, parsed."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["patch", *args, "--network", str(net), "--json"])
    assert code == 0
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


def test_paper_experiments_through_ledgersim_patch(net: Path, tmp_path: Path) -> None:
    patch_file = tmp_path / "kb-77.bin"
    patch_file.write_bytes(b"security fix\n" * 300)
    # Experiment 1: an administrator registers the patch file set; a second org signs off.
    up = patch(net, "upload", "--as", ADMIN1, "--file", str(patch_file), "--name", "kb-77",
               "--version", "1.0.0")  # fmt: skip
    assert up["status"] == "pending" and len(up["file_on"]) == 4
    approved = patch(net, "approve", "kb-77", "1.0.0", "--as", ADMIN2)
    assert approved["status"] == "released"
    # Experiment 2: a client downloads it from any peer (hash checked) and the download is logged.
    patch(net, "register", "--as", USER, "--os", "linux", "--group", "servers")
    out = tmp_path / "got.bin"
    got = patch(net, "download", "kb-77", "1.0.0", "--as", USER, "--out", str(out))
    assert out.read_bytes() == patch_file.read_bytes()
    assert got["served_by"] in {m.name for m in load_config(net).replicas}
    patch(net, "report", "kb-77", "1.0.0", "--as", USER, "--outcome", "installed")
    # Experiment 3: the administrator audits who did what.
    history = patch(net, "history", "kb-77", "--as", ADMIN1)
    actions = [event["action"] for event in history["events"]]
    assert actions[0] == "upload" and {"download", "report"} <= set(actions)
    assert len(actions) >= 4  # upload, the sign-off, download, report
    compliance = patch(net, "compliance", "--as", ADMIN1)
    rows = [r for r in compliance["rows"] if r["patch"] == "kb-77"]
    assert [r["status"] for r in rows] == ["installed"]


def test_a_refused_command_is_one_line(net: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["patch", "approve", "no-such-patch", "9.9", "--as", ADMIN2, "--network", str(net)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "refused" in err


def test_nodes_ride_out_a_broker_restart(net: Path) -> None:
    config = load_config(net)
    bpid = int((net / cluster.BROKER_DIR / cluster.PID_FILE).read_text())
    os.kill(bpid, signal.SIGKILL)
    wait_for("the broker to die", lambda: not broker.pid_alive(bpid), 5)
    cluster.start_broker(net, config)
    wait_for(
        "every node to reconnect", lambda: all(s.get("connections", 0) >= 2 for s in statuses(net))
    )
    report = asyncio.run(run_load(net, rate=10, duration_s=1, timeout_s=20))
    assert report["committed"] == report["submitted"] == 10
    assert all(broker.pid_alive(cluster.node_pid(net, i) or 0) for i in range(config.n))


def test_workload_commits_and_every_ledger_verifies(net: Path) -> None:
    report = asyncio.run(run_load(net, rate=40, duration_s=2))
    assert report["committed"] == report["submitted"] == 80
    assert report["failed"] == report["invalid"] == 0
    assert 0 < report["latency_ms"]["p50"] <= report["latency_ms"]["p99"]
    # A second load process reuses client ids: its requests must still be new to
    # PBFT's exactly-once rule (client timestamps start from the wall clock).
    same_slots = random.Random(5)
    first = asyncio.run(run_load(net, rate=40, duration_s=1, rng=same_slots))
    assert first["committed"] == 40
    again = asyncio.run(run_load(net, rate=40, duration_s=1, rng=random.Random(5)))
    assert again["committed"] == again["submitted"] == 40
    assert again["failed"] == again["invalid"] == 0
    wait_for("heads to agree", lambda: heads_agree(net, at_least=10))
    config = load_config(net)
    for i in range(config.n):
        crypto = str(net / config.crypto_dir)
        assert main(["ledger", "verify", str(node_dir(net, i)), "--msp", crypto]) == 0


def login(directory: Path, config: NetworkConfig, account: str) -> aiomqtt.Client:
    port = int(config.broker_url.rsplit(":", 1)[1])
    return aiomqtt.Client(
        "127.0.0.1", port, username=account, password=password(directory, account)
    )


async def traffic_while_loading(
    directory: Path, config: NetworkConfig, account: str
) -> list[tuple[str, bytes]]:
    """Every message ``account`` receives on ``ledgersim/<net>/#`` while a load runs."""
    got: list[tuple[str, bytes]] = []
    async with login(directory, config, account) as reader:
        await reader.subscribe(f"{topics.network_root(config.net)}/#")

        async def collect() -> None:
            async for message in reader.messages:
                assert isinstance(message.payload, bytes)
                got.append((message.topic.value, message.payload))

        task = asyncio.create_task(collect())
        await run_load(directory, rate=10, duration_s=1, user=USER, timeout_s=20)
        await asyncio.sleep(0.5)
        task.cancel()
    return got


def test_a_client_account_reads_no_replica_traffic(net: Path) -> None:
    config = load_config(net)
    seen_by_monitor = asyncio.run(traffic_while_loading(net, config, "monitor"))
    replica_votes = [t for t, _ in seen_by_monitor if "/r/" in t and "/u/" not in t]
    assert replica_votes  # the probe can see what it looks for
    user1 = f"client-{config.user_index(ADMIN1)}"
    seen_by_other_user = asyncio.run(traffic_while_loading(net, config, user1))
    assert seen_by_other_user == []  # neither votes nor the load's replies (another user's)


def genuine_prepare(seen: list[tuple[str, bytes]]) -> Envelope:
    for _topic, payload in seen:
        envelope = decode(payload, Envelope)
        if isinstance(decode(envelope.payload), Prepare):
            return envelope
    raise AssertionError("no PREPARE seen")


def test_a_client_posing_as_a_replica_is_refused_and_counted(net: Path) -> None:
    config = load_config(net)
    prepare = genuine_prepare(asyncio.run(traffic_while_loading(net, config, "monitor")))
    account = f"client-{config.user_index(USER)}"
    client = config.client_id(USER, 3)
    before = statuses(net)
    on_replica_topic = topics.broadcast(config.net, prepare.sender, True)
    posing = f"{topics.account_prefix(config.net, account)}/{prepare.sender}/all"
    replayed = topics.broadcast(config.net, client, False)

    async def scenario() -> list[str]:
        async with login(net, config, "monitor") as monitor:
            await monitor.subscribe(f"{topics.network_root(config.net)}/#")
            items = [
                (on_replica_topic, encode(prepare)),  # the broker's ACL refuses this one
                (posing, encode(prepare)),  # a replica id on a client topic
                (replayed, encode(Envelope(client, prepare.payload))),  # someone else's vote
            ]
            await publish_as(net, config, account, items)
            return await topics_carrying(monitor, encode(prepare))

    assert asyncio.run(scenario()) == [posing]

    def counted(i: int, key: str) -> int:
        return int(statuses(net)[i]["dropped"].get(key, 0) - before[i]["dropped"].get(key, 0))

    wait_for(
        "every node to count both",
        lambda: all(
            counted(i, "drop.transport.sender-mismatch") >= 1
            and counted(i, "drop.sender-mismatch") >= 1
            for i in range(config.n)
        ),
        10,
    )


def test_the_broker_refuses_an_oversized_message(net: Path) -> None:
    config = load_config(net)
    account = f"client-{config.user_index(USER)}"
    topic = topics.broadcast(config.net, config.client_id(USER, 4), False)
    huge = encode(Envelope(config.client_id(USER, 4), b"x" * (12 * 1024 * 1024)))
    small = encode(Envelope(config.client_id(USER, 4), b"after the big one"))

    async def scenario() -> list[int]:
        async with login(net, config, "monitor") as monitor:
            await monitor.subscribe(f"{topics.network_root(config.net)}/#")
            with contextlib.suppress(aiomqtt.MqttError):  # the broker may hang up on it
                await publish_as(net, config, account, [(topic, huge)])
            await publish_as(net, config, account, [(topic, small)])
            sizes: list[int] = []

            async def collect() -> None:
                async for message in monitor.messages:
                    if message.topic.value == topic:
                        assert isinstance(message.payload, bytes)
                        sizes.append(len(message.payload))
                        if message.payload == small:
                            return

            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(collect(), 10)
            return sizes

    assert asyncio.run(scenario()) == [len(small)]


def test_only_administrators_upload_files(net: Path) -> None:
    from sim.live.client import ClientPool

    data = b"not a patch, just disk space\n" * 100
    digest = sha256_hex(data)

    async def put_as(user: str) -> list[str]:
        async with ClientPool(net, user) as pool:
            answers = [await pool.file(i, "put", digest, data) for i in range(4)]
        return [a.error for a in answers]

    refused = asyncio.run(put_as(USER))
    assert all("may not upload" in error for error in refused)
    assert not any((node_dir(net, i) / "blobs" / digest[:2] / digest).exists() for i in range(4))
    assert asyncio.run(put_as(ADMIN2)) == ["", "", "", ""]


def block_hashes(directory: Path, replica: int) -> list[bytes]:
    store = BlockStore.open(node_dir(directory, replica) / LEDGER_DIR, readonly=True)
    return [store.get(k).hash for k in range(store.height)]


def kill9(directory: Path, replica: int) -> None:
    pid = cluster.node_pid(directory, replica)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(f"node {replica} to die", lambda: not broker.pid_alive(pid), 5)


def restart(directory: Path, replica: int) -> None:
    config = load_config(directory)
    cluster.start_node(directory, config, replica)
    cluster.wait_started(directory, config, [replica], 30)


def settled_view(directory: Path, ids: list[int], above: int) -> bool:
    now = [statuses(directory)[i] for i in ids]
    return all(s.get("view", 0) > above and not s.get("in_view_change") for s in now)


def test_kill9_a_backup_then_the_primary_under_load(net: Path) -> None:
    """At about 70 % of the capacity measured first: no commit lost, a view change completes,
    and the restarted old primary ends in the current view (a replica fetching state no
    longer suspects the primary alone: ``pbft.rules.ReplicaRules.group_is_ahead``)."""
    config = load_config(net)
    wait_for("agreeing heads before the faults", lambda: heads_agree(net))
    capacity = asyncio.run(measure_capacity(net, 4, concurrency=32))
    height_before = statuses(net)[1]["height"]
    view_before = max(s["view"] for s in statuses(net))
    primary = view_before % config.n
    backup = (primary + 2) % config.n
    others = [i for i in range(config.n) if i != primary]

    def grew(by: int) -> Callable[[], bool]:
        target = max(s["height"] for s in statuses(net)) + by
        return lambda: max(s["height"] for s in statuses(net)) >= target

    with ThreadPoolExecutor(1) as pool:
        load = pool.submit(
            asyncio.run, run_load(net, rate=0.7 * capacity, duration_s=14, timeout_s=40)
        )
        wait_for("commits under load", grew(2))
        kill9(net, backup)
        wait_for("commits without the backup", grew(2))
        restart(net, backup)
        reached = max(s["height"] for s in statuses(net))
        wait_for("the backup to catch up", lambda: statuses(net)[backup]["height"] >= reached, 30)
        kill9(net, primary)
        wait_for(
            "a view change without the primary", lambda: settled_view(net, others, view_before), 30
        )
        committed_without_primary = statuses(net)[others[0]]["height"]
        wait_for("commits in the new view", grew(2))
        restart(net, primary)
        report = load.result(timeout=120)
    # During the view change arrivals may be refused (busy) but none is lost or stuck.
    assert report["timed_out"] == report["error"] == report["invalid"] == 0, report
    assert report["committed"] + report["refused"] == report["submitted"]
    survivors = statuses(net)
    assert survivors[others[0]]["height"] > committed_without_primary > height_before

    def caught_up() -> bool:
        now = statuses(net)
        return all(now[i]["last_executed"] >= committed_without_primary for i in (backup, primary))

    wait_for("restarted nodes to catch up", caught_up, 30)
    wait_for(
        "the restarted old primary in the current view, not in a view change",
        lambda: settled_view(net, [primary], view_before),
        30,
    )
    cluster.down(net)
    chains = [block_hashes(net, i) for i in range(config.n)]
    longest = max(chains, key=len)
    for chain in chains:
        assert chain == longest[: len(chain)]  # no committed block lost or changed
        assert len(chain) >= committed_without_primary
    for i in range(config.n):
        crypto = str(net / config.crypto_dir)
        assert main(["ledger", "verify", str(node_dir(net, i)), "--msp", crypto]) == 0
