"""``ledgersim demo``: the paper's three experiments on a faulty network, narrated.

Song, Kim & Kim ran Exam 1-3 on a single peer; the point of a blockchain
patch-management system is that it keeps working when some nodes fail or
lie. So the demo runs them on Org1 and Org2 with two peers each (n = 4, f = 1),
one replica Byzantine throughout (it equivocates, and its peer serves
corrupted patch files), and one peer crashed while the user fetches the file.
Every step is a real transaction: endorsed by both orgs' peers, ordered by the
PBFT replicas, validated and committed by every peer. A teacher sees what each
PBFT phase did, which peers endorsed, which peer served the file and which
were rejected, then the audit and compliance tables and an independently
verified ledger (hash chain and commit certificates, with nothing but the CA
certificates).

Deterministic: the network lives in a temporary directory but nothing about
it (paths, wall time) reaches the output, so one seed prints one text.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from msp import names
from sim.cli_patch import PatchClient, build_manifest, compliance_table, history_table
from sim.fabric import channel_config, open_ledger_dir, parse_policy, unwrap_request
from sim.ledger_verify import Trust, verify_blocks
from sim.simnet import Session, SimGateway, init_sim_network

__all__ = ["DemoResult", "run_demo"]

BYZANTINE = 3
BEHAVIOUR = "equivocate"
CRASHED = 1
ADMIN1, ADMIN2 = "Admin@org1.example.com", "Admin@org2.example.com"
USER1, USER3 = "User1@org1.example.com", "User1@org2.example.com"


@dataclass(slots=True)
class DemoResult:
    seed: int
    lines: list[str] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    download: dict[str, Any] = field(default_factory=dict)
    history: dict[str, Any] = field(default_factory=dict)
    compliance: dict[str, Any] = field(default_factory=dict)
    verification: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.verification) and all(v["ok"] for v in self.verification)

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "steps": self.steps,
            "download": self.download,
            "history": self.history,
            "compliance": self.compliance,
            "verification": self.verification,
            "ok": self.ok,
        }

    def say(self, text: str = "") -> None:
        self.lines.append(text)


def _peer(replica: int) -> str:
    return names.replica_peer_name(replica, 2)


def _narrate(out: DemoResult, title: str, session: Session, reply: dict[str, Any]) -> None:
    facts = session.facts()
    out.steps.append({"step": title, **facts, "reply": reply})
    m = facts["messages"]
    out.say(f"  - {title}: {session.user} -> patchset.{session.function}")
    out.say(
        f"    endorsed by {' and '.join(facts['endorsers'])}; "
        f"tx {session.tx_id[:12]} at ledger time {session.timestamp_ms} ms"
    )
    out.say(
        f"    PBFT: {m.get('Request', 0)} request, {m.get('PrePrepare', 0)} pre-prepare, "
        f"{m.get('Prepare', 0)} prepare, {m.get('Commit', 0)} commit, "
        f"{m.get('Reply', 0)} reply messages; view changes: {facts['view_changes']}"
    )
    for replica, reasons in facts["dropped"].items():
        detail = ", ".join(f"{k} x{v}" for k, v in reasons.items())
        out.say(f"    replica {replica} discarded: {detail}")
    height = max(facts["heights"]) - 1
    out.say(f"    committed in block {height} as {session.code} on every peer")


def _verify(root: Path, gateway: SimGateway, out: DemoResult) -> None:
    trust = Trust.load(root / "crypto")
    config = channel_config(gateway.crypto, parse_policy(gateway.cfg.scenario()))
    for replica in range(gateway.cfg.replicas):
        ledger = open_ledger_dir(root / f"replica-{replica}" / "ledger", config)
        try:
            blocks = [ledger.block(i) for i in range(ledger.height)]
        finally:
            ledger.close()
        report = verify_blocks(blocks, trust, gateway.cfg.replicas, unwrap_request)
        head = report.head
        out.verification.append(
            {
                "replica": replica,
                "peer": _peer(replica),
                "blocks": report.blocks,
                "head_hash": head.hash.hex() if head is not None else None,
                "ok": report.problem is None,
                "problem": None if report.problem is None else str(report.problem),
            }
        )


def run_demo(seed: int = 7) -> DemoResult:
    out = DemoResult(seed)
    with tempfile.TemporaryDirectory(prefix="ledgersim-demo-") as tmp:
        root = Path(tmp) / "net"
        init_sim_network(root, seed=seed, byzantine={BYZANTINE: BEHAVIOUR})
        with SimGateway.open(root) as gateway:
            _experiments(gateway, out)
            _verify(root, gateway, out)
    heads = {v["head_hash"] for v in out.verification}
    out.say("Ledger check (hash chain, data hashes, 2f+1 commit certificates, signatures):")
    for v in out.verification:
        verdict = "ok" if v["ok"] else f"FAILED: {v['problem']}"
        out.say(f"  - {v['peer']}: {v['blocks']} blocks, head {v['head_hash'][:16]}… {verdict}")
    out.say(
        "  all peers hold the same chain"
        if len(heads) == 1
        else f"  peers disagree: {len(heads)} different heads"
    )
    return out


def _experiments(gateway: SimGateway, out: DemoResult) -> None:
    client = PatchClient(gateway)
    out.say(
        f"Network: Org1 and Org2, two peers each; n = 4 PBFT replicas, f = 1 (seed {out.seed})."
    )
    out.say(
        f"Replica {BYZANTINE} ({_peer(BYZANTINE)}) is Byzantine: it {BEHAVIOUR}s in PBFT "
        "and serves corrupted patch files."
    )
    out.say("Patch approvals: 2 distinct administrators; the deployer may not approve.")
    out.say()

    data = b"".join(
        hashlib.sha256(f"openssl-3.0.14 patch {i}".encode()).digest() for i in range(2048)
    )
    deadline = gateway.cfg.clock_ms + 10_000
    manifest = build_manifest(
        data,
        name="openssl",
        version="3.0.14",
        file_name="openssl-3.0.14.patch",
        install="mandatory",
        log="write",
        reboot="rebooting",
        groups=["finance"],
        deadline_ms=deadline,
        description="fixes CVE-2024-5535 (SSL_select_next_proto buffer overread)",
    )

    out.say("Exam 1 - upload the patch file set")
    reply = client.upload(ADMIN1, manifest, data)
    out.say(
        f"  {ADMIN1} signs the manifest (sha256 {manifest.sha256[:16]}…, {manifest.size} B, "
        f"deadline {deadline} ms) and places the file on {len(reply['file_on'])} peers"
    )
    _narrate(out, "upload", gateway.sessions[-1], reply)
    out.say(f"    status: {reply['status']} ({reply['signoffs']} of 2 sign-offs)")
    reply = client.approve(ADMIN2, "openssl", "3.0.14")
    _narrate(out, "approve", gateway.sessions[-1], reply)
    out.say(f"    status: {reply['status']} (approved by {', '.join(reply['approvals'])})")
    out.say()

    out.say("Exam 2 - download the patch file set and record the log")
    for user, groups in ((USER1, ["finance"]), (USER3, ["finance"])):
        reply = client.register(user, "ubuntu-22.04", groups)
        _narrate(out, f"register {user}", gateway.sessions[-1], reply)
    gateway.set_down(CRASHED, True)
    out.say(f"  {_peer(CRASHED)} crashes while the user fetches the file.")
    gateway.fetch_order = [_peer(BYZANTINE), _peer(CRASHED), _peer(0), _peer(2)]
    got = client.download(USER1, "openssl", "3.0.14")
    _narrate(out, "download", gateway.sessions[-1], got.release["download"])
    out.say("    release checked: manifest digest and the deployer's signature verify")
    for attempt in got.fetch.attempts:
        out.say(
            f"    file from {attempt.peer}: {attempt.outcome} ({attempt.reason}), "
            f"{attempt.elapsed_ms} ms"
        )
    out.say(f"    served by {got.fetch.served_by} in {got.fetch.elapsed_ms} ms of virtual time")
    out.download = {
        "served_by": got.fetch.served_by,
        "attempts": [
            {"peer": a.peer, "outcome": a.outcome, "reason": a.reason, "elapsed_ms": a.elapsed_ms}
            for a in got.fetch.attempts
        ],
        "sha256": hashlib.sha256(got.fetch.data).hexdigest(),
        "intact": got.fetch.data == data,
    }
    gateway.set_down(CRASHED, False)
    gateway.fetch_order = None
    out.say(f"  {_peer(CRASHED)} restarts from its disk.")
    reply = client.report(USER1, "openssl", "3.0.14", "installed", True, "dpkg: 1 package")
    _narrate(out, "report", gateway.sessions[-1], reply)
    out.say()

    out.say("Exam 3 - audit")
    out.history = client.history(ADMIN2, "openssl")
    out.say(f"  history of openssl (asked by {ADMIN2}, answered alike by a peer of each org):")
    out.lines += ["    " + line for line in history_table(out.history).splitlines()]
    out.compliance = client.compliance(ADMIN1)
    out.say("  compliance (mandatory patches, judged in ledger time):")
    out.lines += ["    " + line for line in compliance_table(out.compliance).splitlines()]
    out.say()
