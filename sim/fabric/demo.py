"""``ledgersim demo``: the paper's three experiments on a faulty network, narrated.

Song, Kim & Kim ran Exam 1-3 on a single peer; the point of a blockchain
patch-management system is that it keeps working when some nodes fail or
lie. So the demo runs them on Org1 and Org2 with two peers each (n = 4, f = 1),
with replica 0 Byzantine throughout. Replica 0 is the primary of view 0 and
equivocates, so the very first transaction shows a real view change, which the
narration takes apart (who timed out, who joined, the NEW-VIEW, the null
block it left); every later command runs in the new view, because a
simulated network directory carries its replicas over from one command to the
next. Its peer also serves corrupted patch files, and a second peer's file
service crashes while the user fetches the file. Every step is a real
transaction: endorsed by both orgs' peers, ordered by the PBFT replicas,
validated and committed by every peer. The run ends with the audit and
compliance tables and an independently verified ledger (hash chain and commit
certificates, with nothing but the CA certificates).

Deterministic: the network lives in a temporary directory but nothing about
it (paths, wall time) reaches the output, so one seed prints one text.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from msp import names
from sim.fabric.app import open_ledger_dir, unwrap_request
from sim.fabric.channel import channel_config, parse_policy
from sim.fabric.distribution import ReleaseRequest, check_release
from sim.fabric.patchclient import PatchClient, build_manifest
from sim.fabric.simnet import Session, SimGateway, init_sim_network
from sim.fabric.tables import compliance_table, history_table
from sim.fabric.verify import Trust, verify_blocks
from sim.scenario.model import NetworkSpec

__all__ = ["DemoResult", "run_demo", "view_change_story"]

N, F = 4, 1
VIEW_CHANGE_TIMEOUT_MS = NetworkSpec().view_change_timeout_ms
BYZANTINE = 0
"""The primary of view 0, so the first transaction needs a view change."""
BEHAVIOUR = "equivocate"
CRASHED = 2
"""Whose file service goes down during the download (not the new primary's, to keep
the two stories apart)."""
DEADLINE_MS = 30_000
"""Install deadline, counted from the upload: after the report, before the audit."""
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


def _and(items: Sequence[object]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    words = [str(i) for i in items]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _replicas(ids: Sequence[int]) -> str:
    return ("replica " if len(ids) == 1 else "replicas ") + _and(ids)


DISCARD_REASONS = {
    "pre-prepare-not-from-primary": "PRE-PREPAREs from a replica that is not the primary",
    "duplicate": "repeated messages (resends)",
    "old-view": "messages for a view it has already left",
    "old-request": "requests it had already executed",
    "conflicting-pre-prepare": "a second, different PRE-PREPARE for a number already assigned",
    "bad-signature": "messages with a bad signature",
    "bad-digest": "PRE-PREPAREs whose digest does not match their batch",
    "own-message": "copies of its own messages",
    "net.crashed": "nothing (it was down)",
}
"""Plain words for the discard reasons a teacher meets in this demo (others print as is)."""


def view_change_story(
    trace: Sequence[dict[str, Any]], n: int, f: int, old_view: int
) -> dict[str, Any] | None:
    """What a session's trace shows of a view change, in the terms PBFT's paper uses.

    Who timed out and who joined is judged from message order: a replica that
    sent its VIEW-CHANGE before VIEW-CHANGEs from f+1 others had reached it
    acted on its own timer; otherwise it followed the f+1 rule (OSDI'99 4.5.2:
    f+1 VIEW-CHANGEs include a correct replica's, so the view change is real).
    """
    first = next((e for e in trace if e["ev"] == "send" and e["type"] == "Request"), None)
    if first is None:
        return None
    t0 = first["t"]
    old_primary = old_view % n
    versions: dict[int, list[int]] = {}  # PRE-PREPARE size -> recipients (old primary)
    seen: dict[int, set[int]] = {}  # replica -> senders of VIEW-CHANGEs delivered to it
    timed_out: list[dict[str, Any]] = []
    joined: list[dict[str, Any]] = []
    sent_vc: set[int] = set()
    new_view: dict[str, Any] | None = None
    null_seqs: set[int] = set()
    committers: dict[int, set[int]] = {}  # seq -> who sent a COMMIT in the old view
    counts = {"ViewChange": 0, "NewView": 0}
    resent: float | None = None
    seq: int | None = None
    for e in trace:
        kind = e.get("type")
        if e["ev"] == "send" and kind == "Request" and e["from"] == first["from"]:
            if resent is None and e["t"] > t0:
                resent = e["t"]
        elif e["ev"] == "deliver" and kind == "ViewChange":
            seen.setdefault(e["to"], set()).add(e["from"])
        elif e["ev"] == "send" and kind in counts:
            counts[kind] += 1
            sender = e["from"]
            if kind == "ViewChange" and sender not in sent_vc:
                sent_vc.add(sender)
                entry = {"replica": sender, "after_ms": round(e["t"] - t0)}
                own = len(seen.get(sender, set()) - {sender}) < f + 1
                (timed_out if own else joined).append(entry)
            elif kind == "NewView" and new_view is None:
                new_view = {"primary": sender, "view": e["view"], "after_ms": round(e["t"] - t0)}
        elif e["ev"] == "send" and kind == "PrePrepare":
            if e["from"] == old_primary and e["view"] == old_view and e["seq"] is not None:
                seq = e["seq"] if seq is None else min(seq, e["seq"])
                if e["seq"] == seq:
                    versions.setdefault(e["bytes"], []).append(e["to"])
        elif e["ev"] == "send" and kind == "Commit" and e["view"] == old_view:
            # a replica sends COMMIT only once the batch is prepared at it
            committers.setdefault(e["seq"], set()).add(e["from"])
        elif e["ev"] == "commit" and e["view"] > old_view and e["txs"] == 0:
            null_seqs.add(e["seq"])
    if not sent_vc:
        return None
    return {
        "old_view": old_view,
        "old_primary": old_primary,
        "client_resent_ms": None if resent is None else round(resent - t0),
        "pre_prepare_seq": seq,
        "pre_prepare_versions": [
            {"bytes": size, "to": sorted(to)} for size, to in sorted(versions.items(), reverse=True)
        ],
        "prepared_by": sorted(committers.get(seq, set())) if seq is not None else [],
        "timed_out": timed_out,
        "joined": joined,
        "new_view": new_view,
        "null_blocks": sorted(null_seqs),
        "messages": {"VIEW-CHANGE": counts["ViewChange"], "NEW-VIEW": counts["NewView"]},
    }


def _tell_view_change(out: DemoResult, story: dict[str, Any], f: int, timeout_ms: int) -> None:
    old, primary = story["old_view"], story["old_primary"]
    say = out.say
    say(f"    VIEW CHANGE: replica {primary}, the primary of view {old}, is replaced.")
    versions = story["pre_prepare_versions"]
    if len(versions) > 1:
        first, *rest = versions
        say(
            f"      It equivocated: for sequence number {story['pre_prepare_seq']} it sent "
            f"{_replicas(first['to'])} a PRE-PREPARE of {first['bytes']} bytes"
        )
        for v in rest:
            say(f"      and {_replicas(v['to'])} a different one, of {v['bytes']} bytes.")
        say("      Each backup PREPAREd what it got.")
        prepared = story["prepared_by"]
        if prepared:
            who = _replicas(prepared)
            say(
                f"      {who.capitalize()} held the same version, so each collected 2f = {2 * f}"
                " matching PREPAREs"
            )
            say(
                "      (its own and the other's): that version was prepared, and they sent COMMITs."
            )
            say(
                f"      But committing needs 2f+1 = {2 * f + 1} matching COMMITs and only"
                f" {len(prepared)} replicas had that version:"
            )
            say(f"      nothing committed in view {old}.")
        else:
            say(
                f"      No version gathered the 2f = {2 * f} matching PREPAREs it needs:"
                f" nothing committed in view {old}."
            )
    say(f"      A backup that knows of a request starts a {timeout_ms} ms timer; if the request")
    say("      is still not executed when it fires, it stops trusting the primary.")
    if story["client_resent_ms"] is not None:
        say(
            f"      The client, with no reply yet, resent its request to all replicas at "
            f"+{story['client_resent_ms']} ms,"
        )
        say("      so backups whose PRE-PREPARE lacked it learned of it then.")
    for e in story["timed_out"]:
        say(
            f"      Replica {e['replica']} timed out at +{e['after_ms']} ms and broadcast "
            f"VIEW-CHANGE for view {old + 1}."
        )
    joined = story["joined"]
    if joined:
        when = ", ".join(f"+{e['after_ms']} ms" for e in joined)
        say(
            f"      {_replicas([e['replica'] for e in joined]).capitalize()} joined ({when}) "
            f"on seeing f+1 = {f + 1} VIEW-CHANGEs"
        )
        say("      (one of them must come from a correct replica, so the change is real).")
    nv = story["new_view"]
    if nv is not None:
        view = nv["view"]
        say(
            f"      Replica {nv['primary']}, primary of view {view} ({view} mod {N}), gathered "
            f"2f+1 = {2 * f + 1} VIEW-CHANGEs"
        )
        say(
            f"      (each listing what its sender had prepared) and sent NEW-VIEW at "
            f"+{nv['after_ms']} ms."
        )
    for number in story["null_blocks"]:
        if number == story["pre_prepare_seq"] and story["prepared_by"]:
            say(
                f"      NEW-VIEW must carry forward whatever may have committed: "
                f"{_replicas(story['prepared_by'])}"
            )
            say(
                f"      reported the prepared version for sequence number {number}, an empty"
                " batch, so NEW-VIEW"
            )
            say(
                f"      re-proposed it in view {old + 1}: block {number} holds no transaction,"
                " and the request"
            )
            say("      is ordered in the next block.")
        else:
            say(f"      Nothing had prepared at sequence number {number}, so NEW-VIEW filled it")
            say("      with an empty ('null') batch: that block holds no transaction.")
    m = story["messages"]
    say(
        f"      Messages: {m['VIEW-CHANGE']} VIEW-CHANGE and {m['NEW-VIEW']} NEW-VIEW "
        "(counted per recipient, resends included)."
    )


def _narrate(out: DemoResult, title: str, session: Session, reply: dict[str, Any]) -> None:
    facts = session.facts()
    m = facts["messages"]
    old_view = facts["view"] - facts["view_changes"]
    story = None
    if facts["view_changes"]:
        story = view_change_story(session.trace, N, F, old_view)
    out.steps.append({"step": title, **facts, "view_change": story, "reply": reply})
    out.say(f"  - {title}: {session.user} -> patchset.{session.function}")
    out.say(f"    endorsed by {_and(facts['endorsers'])}")
    out.say(
        f"    transaction {session.tx_id[:12]}, proposed at ledger time {session.timestamp_ms} ms"
    )
    if story is not None:
        _tell_view_change(out, story, F, VIEW_CHANGE_TIMEOUT_MS)
    views = f"views {old_view}-{facts['view']}" if story is not None else f"view {old_view}"
    out.say(
        f"    PBFT messages in {views} (primary: replica {facts['view'] % N}): "
        f"{m.get('Request', 0)} REQUEST, {m.get('PrePrepare', 0)} PRE-PREPARE, "
        f"{m.get('Prepare', 0)} PREPARE, {m.get('Commit', 0)} COMMIT, {m.get('Reply', 0)} REPLY"
    )
    for replica, reasons in facts["dropped"].items():
        detail = "; ".join(f"{DISCARD_REASONS.get(k, k)} ({v})" for k, v in sorted(reasons.items()))
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
        report = verify_blocks(blocks, trust, gateway.cfg.replicas, unwrap_request, config=config)
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
    out.say(
        "Ledger check (hash chain, data hashes, 2f+1 commit certificates, signatures,"
        " validation codes replayed):"
    )
    for v in out.verification:
        verdict = "ok" if v["ok"] else f"FAILED: {v['problem']}"
        out.say(f"  - {v['peer']}: {v['blocks']} blocks, head {v['head_hash'][:16]}… {verdict}")
    out.say(
        "  all peers hold the same chain"
        if len(heads) == 1
        else f"  peers disagree: {len(heads)} different heads"
    )
    return out


def _introduce(out: DemoResult) -> None:
    say = out.say
    say(f"ledgersim demo (seed {out.seed}): the patch-management paper's three experiments")
    say()
    say("The network: Org1 and Org2 with two peers each. Every peer keeps a copy of the")
    say("ledger and runs one replica of the ordering service, which agrees on the order")
    say("of transactions with PBFT (Practical Byzantine Fault Tolerance). With n = 4")
    say(f"replicas, PBFT tolerates f = (n-1)/3 = {F} faulty replica: one that crashes, or")
    say("one that lies (a 'Byzantine' fault).")
    say()
    say("How PBFT orders a transaction: the replicas move through numbered views. In")
    say(f"each view one replica is the primary (the one numbered view mod {N}); the others")
    say("are backups. The primary gives the client's REQUEST a sequence number in a")
    say("PRE-PREPARE; each backup that accepts it broadcasts a PREPARE; a replica with")
    say(f"2f = {2 * F} PREPAREs matching the PRE-PREPARE broadcasts a COMMIT; with")
    say(f"2f+1 = {2 * F + 1} matching COMMITs it executes the batch, which becomes its next")
    say("block, and sends the client a REPLY. If the primary stalls or lies, the backups")
    say("replace it: they send VIEW-CHANGE messages, and the next view's primary starts")
    say("that view with NEW-VIEW.")
    say()
    say(f"Faults: replica {BYZANTINE} ({_peer(BYZANTINE)}) is Byzantine. It is the primary")
    say(f"of view 0 and {BEHAVIOUR}s: it tells different backups different things. Once")
    say("replaced, it keeps proposing rival PRE-PREPAREs, which the others discard (only")
    say("the primary may propose). Its peer also serves corrupted patch files.")
    say("Patch approvals: 2 distinct administrators; the deployer may not approve.")
    say()


def _experiments(gateway: SimGateway, out: DemoResult) -> None:
    client = PatchClient(gateway, gateway.config.msps)
    gateway.record_traces = True
    _introduce(out)

    data = b"".join(
        hashlib.sha256(f"openssl-3.0.14 patch {i}".encode()).digest() for i in range(2048)
    )
    deadline = gateway.cfg.clock_ms + DEADLINE_MS
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
    out.say(f"  {ADMIN1} signs the manifest (sha256 {manifest.sha256[:16]}…, {manifest.size} B,")
    out.say(
        f"  install deadline {deadline} ms) and places the file on {len(reply['file_on'])} peers."
    )
    _narrate(out, "upload", gateway.sessions[-1], reply)
    out.say(
        f"    status: {reply['status']} ({reply['signoffs']} of {reply['approvals_required']} "
        "sign-offs: one administrator cannot release alone)"
    )
    reply = client.approve(ADMIN2, "openssl", "3.0.14")
    _narrate(out, "approve", gateway.sessions[-1], reply)
    out.say(
        f"    status: {reply['status']} ({reply['signoffs']} of {reply['approvals_required']} "
        f"sign-offs: deployed by {ADMIN1}, approved by {', '.join(reply['approvals'])})"
    )
    out.say()

    out.say("Exam 2 - download the patch file set and record the log")
    for user, groups in ((USER1, ["finance"]), (USER3, ["finance"])):
        reply = client.register(user, "ubuntu-22.04", groups)
        _narrate(out, f"register {user}", gateway.sessions[-1], reply)
    gateway.set_down(CRASHED, True)
    out.say(f"  {_peer(CRASHED)}'s file service crashes while the user fetches the file.")
    out.say(f"  Its PBFT replica keeps running: replica {BYZANTINE} is already faulty, and a")
    out.say(f"  second faulty replica would exceed f = {F}, beyond which PBFT promises nothing.")
    others = [r for r in range(N) if r not in (BYZANTINE, CRASHED)]
    gateway.fetch_order = [_peer(r) for r in (BYZANTINE, CRASHED, *others)]
    # The honest order (docs/patchset.md): ask for the release, check it, fetch and
    # verify the file, and only then record the download with the verified SHA-256.
    release = json.loads(gateway.evaluate(USER1, "metadata", ("openssl", "3.0.14")))
    request = ReleaseRequest("openssl", "3.0.14")
    fetched = gateway.fetch_file(check_release(release, request, gateway.config.msps))
    out.say("  - metadata (a query): manifest digest, the deployer's signature and certificate")
    out.say("    (chain to Org1's CA, not revoked) verify; it is the release asked for")
    for attempt in fetched.attempts:
        out.say(
            f"    file from {attempt.peer}: {attempt.outcome} ({attempt.reason}), "
            f"{attempt.elapsed_ms} ms"
        )
    out.say(f"    served by {fetched.served_by} in {fetched.elapsed_ms} ms of virtual time")
    verified = hashlib.sha256(fetched.data).hexdigest()
    record = json.loads(gateway.submit(USER1, "download", ("openssl", "3.0.14", verified)))
    _narrate(out, "download (recorded with the verified sha256)", gateway.sessions[-1], record)
    out.download = {
        "served_by": fetched.served_by,
        "attempts": [
            {"peer": a.peer, "outcome": a.outcome, "reason": a.reason, "elapsed_ms": a.elapsed_ms}
            for a in fetched.attempts
        ],
        "sha256": hashlib.sha256(fetched.data).hexdigest(),
        "intact": fetched.data == data,
    }
    gateway.set_down(CRASHED, False)
    gateway.fetch_order = None
    out.say(f"  {_peer(CRASHED)}'s file service restarts from its disk.")
    reply = client.report(USER1, "openssl", "3.0.14", "installed", True, "dpkg: 1 package")
    _narrate(out, "report", gateway.sessions[-1], reply)
    out.say()

    out.say("Exam 3 - audit")
    gateway.advance(max(0, deadline - gateway.cfg.clock_ms + 1_000))
    out.say(
        f"  Time passes: the audit runs at ledger time {gateway.cfg.clock_ms} ms,"
        " past the deadline."
    )
    out.history = client.history(ADMIN2, "openssl")
    out.say(f"  history of openssl (asked by {ADMIN2}, answered alike by a peer of each org):")
    out.lines += ["    " + line for line in history_table(out.history).splitlines()]
    out.compliance = client.compliance(ADMIN1)
    out.say("  compliance (mandatory patches, judged in ledger time):")
    out.lines += ["    " + line for line in compliance_table(out.compliance).splitlines()]
    out.say()
