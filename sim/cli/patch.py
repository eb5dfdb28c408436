"""``ledgersim patch``: the patch-management commands, over any network directory.

Parsing and printing only: the client is :class:`sim.fabric.patchclient.PatchClient`,
the transport a :class:`sim.fabric.gateway.Gateway`, the tables come from
:mod:`sim.fabric.tables`. What this module adds is ``--network DIR``: it
decides whether ``DIR`` is a simulated network (``net init --sim``) or a live
one (``net up``) and opens the matching gateway. That choice needs both the
Fabric layer and the live runtime, which sits above it, so it lives here.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from chaincode.patchset import PatchManifest, manifest_from_json
from chaincode.patchset.manifest import ManifestError
from msp.msp import MSPManager
from msp.policy import PolicyError
from msp.policy import parse as parse_policy
from sim.errors import InputError
from sim.fabric import simnet
from sim.fabric.gateway import Gateway, Refused
from sim.fabric.patchclient import Freshness, PatchClient, build_manifest
from sim.fabric.proof import (
    DEFAULT_POLICY,
    MIN_REPLICAS,
    ProofRejected,
    check_fresh,
    proof_text,
    verify_proof,
)
from sim.fabric.tables import catalog_table, compliance_table, history_table
from sim.fabric.verify import Trust, TrustError

__all__ = ["open_gateway", "register"]

MAX_MS = 2**53 - 1
"""Times beyond this are refused: the contract's bound (docs/patchset.md, "The rules")."""


@contextlib.contextmanager
def open_gateway(directory: Path, url: str | None = None) -> Iterator[Gateway]:
    """The gateway for a network directory: simulated (``simnet.json``) or live.

    The live runtime is imported only for a live directory: it brings asyncio
    and the MQTT client, which no other patch command needs. With ``url`` the
    network is reached through that HTTP gateway, signing here with the keys
    under ``directory/crypto``.
    """
    if url is not None:
        from sim.http.client import HttpGateway

        with HttpGateway(url, directory / "crypto") as remote:
            yield remote
        return
    if simnet.is_sim_network(directory):
        with simnet.SimGateway.open(directory) as gateway:
            yield gateway
        return
    if not (directory / "network.json").is_file():
        raise InputError(
            f"{directory}: not a network directory (expected simnet.json from "
            "'ledgersim net init --sim' or network.json from 'ledgersim net up')"
        )
    from sim.live import gateway as live_gateway

    with live_gateway.open_gateway(directory) as gateway:
        yield gateway


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "patch", help="patch management: upload, approve, download, report, audit"
    )
    sub = parser.add_subparsers(dest="patch_command", required=True, metavar="ACTION")

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
        p.add_argument("--network", type=Path, required=True, metavar="DIR")
        p.add_argument("--as", dest="user", required=True, metavar="IDENTITY")
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.add_argument(
            "--gateway", metavar="URL", help="through an HTTP gateway; sign with DIR/crypto keys"
        )
        p.add_argument(
            "--msp",
            type=Path,
            metavar="DIR",
            help="the CA certificates and CRLs to trust (a cryptogen tree; default DIR/crypto)",
        )
        p.set_defaults(handler=_run)
        return p

    up = action("upload", "register a signed patch file set (Exam 1) and place the file")
    up.add_argument("--file", type=Path, required=True, help="the patch file")
    up.add_argument("--name", help="patch name")
    up.add_argument("--version", help="version, e.g. 1.0.2")
    up.add_argument(
        "--manifest",
        type=Path,
        help="JSON patch set instead of the options below; its file hash must match",
    )
    up.add_argument("--install", choices=("mandatory", "optional"), help="default: mandatory")
    up.add_argument("--log", choices=("write", "unwrite"), help="default: write")
    up.add_argument("--reboot", choices=("rebooting", "unrebooting"), help="default: unrebooting")
    up.add_argument("--group", action="append", default=[], help="target group (repeatable)")
    up.add_argument("--os", action="append", default=[], help="target OS (repeatable)")
    up.add_argument("--deadline-ms", type=int, help="install deadline in ledger time (ms)")
    up.add_argument("--description")
    for name, text in (("approve", "sign off a pending version"),):
        p = action(name, text)
        p.add_argument("name")
        p.add_argument("version")
    wd = action("withdraw", "withdraw a bad version")
    wd.add_argument("name")
    wd.add_argument("version")
    wd.add_argument("--reason", required=True)
    rg = action("register", "enroll this client's device")
    rg.add_argument("--os", dest="device_os", required=True)
    rg.add_argument("--group", action="append", default=[])
    dl = action("download", "get a released version from any peer and log it (Exam 2)")
    dl.add_argument("name")
    dl.add_argument("version", nargs="?", default="")
    dl.add_argument("--out", type=Path, help="write the verified file here")
    dl.add_argument(
        "--installed",
        metavar="VERSION",
        help="the version this device has installed: never accept an older one",
    )
    dl.add_argument(
        "--max-age-ms",
        type=int,
        metavar="MS",
        help="take the release from a verified proof no older than MS (TUF freeze attack)",
    )
    _channel_options(dl)
    pr = action("proof", "a proof of a release that a device can check offline")
    pr.add_argument("name")
    pr.add_argument("version", nargs="?", default="")
    pr.add_argument("--out", type=Path, required=True, help="write the proof file here")
    vp = sub.add_parser("verify-proof", help="check a proof with only CA certificates and CRLs")
    vp.add_argument("file", type=Path)
    vp.add_argument("--msp", type=Path, required=True, metavar="DIR", help="CA certs and CRLs")
    vp.add_argument("--installed", metavar="VERSION", help="refuse a release older than this")
    vp.add_argument("--now-ms", type=int, metavar="MS", help="the device's clock (ledger time)")
    vp.add_argument("--max-age-ms", type=int, metavar="MS", help="refuse an answer older than MS")
    vp.add_argument("--json", action="store_true", help="machine-readable output")
    _channel_options(vp)
    vp.set_defaults(handler=_verify_proof)
    rp = action("report", "record an install outcome")
    rp.add_argument("name")
    rp.add_argument("version")
    rp.add_argument("--outcome", choices=("installed", "failed"), required=True)
    rp.add_argument("--rebooted", action="store_true")
    rp.add_argument("--detail", default="")
    hs = action("history", "every change, download and report of a patch (Exam 3)")
    hs.add_argument("name")
    hs.add_argument("version", nargs="?", default="")
    action("compliance", "who still has to install which mandatory patch")
    action("list", "every patch version and its status")


def _channel_options(parser: argparse.ArgumentParser) -> None:
    """What the device knows of the channel, to check a proof without asking the network."""
    parser.add_argument(
        "--replicas", type=int, default=4, metavar="N", help="replicas n (fixes the quorum)"
    )
    parser.add_argument(
        "--policy", default=DEFAULT_POLICY, help=f"endorsement policy (default {DEFAULT_POLICY})"
    )


MANIFEST_OPTIONS = (
    "name",
    "version",
    "install",
    "log",
    "reboot",
    "group",
    "os",
    "deadline_ms",
    "description",
)
"""Upload options that describe the patch set, which ``--manifest`` gives whole."""


def _manifest_for(args: argparse.Namespace, data: bytes) -> PatchManifest:
    try:
        if args.manifest is not None:
            given = [f"--{opt.replace('_', '-')}" for opt in MANIFEST_OPTIONS if getattr(args, opt)]
            if given:  # never let a flag look as if it changed what the manifest says
                raise InputError(
                    f"patch upload: --manifest gives the whole patch set; drop {', '.join(given)}"
                )
            manifest = manifest_from_json(args.manifest.read_text())
            if (manifest.sha256, manifest.size) != (hashlib.sha256(data).hexdigest(), len(data)):
                raise InputError(f"{args.manifest}: file.sha256/file.size do not match {args.file}")
            return manifest
        if not args.name or not args.version:
            raise InputError("patch upload: give --name and --version, or --manifest FILE")
        return build_manifest(
            data,
            name=args.name,
            version=args.version,
            file_name=args.file.name,
            install=args.install or "mandatory",
            log=args.log or "write",
            reboot=args.reboot or "unrebooting",
            groups=args.group,
            os_names=args.os,
            deadline_ms=args.deadline_ms,
            description=args.description or "",
        )
    except ManifestError as exc:
        raise InputError(f"patch upload: {exc}") from None
    except OSError as exc:
        raise InputError(f"patch upload: cannot read {exc.filename}: {exc.strerror}") from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None


def _writer(out: Path | None) -> Callable[[bytes], None] | None:
    """Where a verified download goes; checked first, so no download is logged in vain."""
    if out is None:
        return None
    if not out.parent.is_dir():
        raise InputError(f"--out {out}: no such directory {out.parent}")

    def write(data: bytes) -> None:
        try:
            out.write_bytes(data)
        except OSError as exc:
            raise InputError(f"--out {out}: cannot write: {exc.strerror}") from None

    return write


def _trust(args: argparse.Namespace) -> MSPManager:
    """The client's own trust anchors: never what the gateway says."""
    directory = args.msp if args.msp is not None else args.network / "crypto"
    try:
        return Trust.load(directory).msps
    except TrustError as exc:
        raise InputError(f"--msp: {exc}") from None


def _perform(client: PatchClient, args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    command, user = args.patch_command, args.user
    if command == "upload":
        data = _read(args.file)
        reply = client.upload(user, _manifest_for(args, data), data)
        return reply, (
            f"uploaded {reply['name']} {reply['version']}: {reply['status']} "
            f"({reply['signoffs']} of {reply['approvals_required']} sign-offs); "
            f"file on {', '.join(reply['file_on'])}"
        )
    if command == "approve":
        reply = client.approve(user, args.name, args.version)
        text = reply.get("note") or (
            f"{args.name} {args.version}: {reply['status']} "
            f"({reply['signoffs']} of {reply['approvals_required']} sign-offs)"
        )
        return reply, text
    if command == "withdraw":
        reply = client.withdraw(user, args.name, args.version, args.reason)
        return reply, f"{args.name} {args.version} withdrawn: {args.reason}"
    if command == "register":
        reply = client.register(user, args.device_os, args.group)
        groups = ", ".join(reply["groups"]) or "none"
        return reply, f"enrolled {reply['user_id']} (os {reply['os']}, groups {groups})"
    if command == "proof":
        writer = _writer(args.out)
        assert writer is not None
        proof = client.proof(user, args.name, args.version)
        writer(proof_text(proof).encode())
        manifest = proof["release"]["manifest"]
        return {"out": str(args.out), "release": proof["release"]}, (
            f"proof of {manifest['name']} {manifest['version']} written to {args.out}"
        )
    if command == "download":
        fresh = None
        if args.max_age_ms is not None:
            max_age = _ms("--max-age-ms", args.max_age_ms)
            fresh = Freshness(max_age, _replicas(args.replicas), _policy(args.policy))
        got = client.download(
            user,
            args.name,
            args.version,
            installed=args.installed,
            deliver=_writer(args.out),
            fresh=fresh,
        )
        reply = {
            **got.release,
            "served_by": got.fetch.served_by,
            "attempts": [
                {"peer": a.peer, "outcome": a.outcome, "reason": a.reason}
                for a in got.fetch.attempts
            ],
            "transfer_ms": got.fetch.elapsed_ms,
        }
        manifest = got.release["manifest"]
        lines = [
            f"downloaded {manifest['name']} {manifest['version']} "
            f"({manifest['file']['size']} B, sha256 verified, "
            "deployer signature and certificate verified)",
            f"served by {got.fetch.served_by}",
        ]
        lines += [f"  rejected {a.peer}: {a.reason}" for a in got.fetch.rejected]
        lines += [f"  skipped {a.peer}: {a.reason}" for a in got.fetch.unavailable]
        return reply, "\n".join(lines)
    if command == "report":
        reply = client.report(
            user, args.name, args.version, args.outcome, args.rebooted, args.detail
        )
        return reply, f"recorded {reply['outcome']} for {reply['user_id']} (log {reply['log']})"
    if command == "history":
        reply = client.history(user, args.name, args.version)
        return reply, history_table(reply)
    if command == "compliance":
        reply = client.compliance(user)
        return reply, compliance_table(reply)
    reply = client.catalog(user)
    return reply, catalog_table(reply)


def _replicas(value: int) -> int:
    """``--replicas``: a channel of fewer than 4 replicas would make any proof pass."""
    if value < MIN_REPLICAS:
        raise InputError(f"--replicas: expected at least {MIN_REPLICAS}, got {value}")
    return value


def _policy(text: str) -> str:
    try:
        parse_policy(text)
    except PolicyError as exc:
        raise InputError(f"--policy: {exc}") from None
    return text


def _ms(option: str, value: int) -> int:
    if not 0 <= value <= MAX_MS:
        raise InputError(f"{option}: must be between 0 and {MAX_MS} ms, got {value}")
    return value


def _verify_proof(args: argparse.Namespace) -> int:
    """``patch verify-proof``: no network, no gateway; the CA certificates and CRLs only."""
    if (args.now_ms is None) != (args.max_age_ms is None):
        raise InputError("patch verify-proof: give --now-ms and --max-age-ms together")
    try:
        proof = json.loads(args.file.read_text())
    except OSError as exc:
        raise InputError(f"{args.file}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise InputError(f"{args.file}: not JSON ({exc})") from None
    except RecursionError:
        raise InputError(f"{args.file}: not JSON (nested too deeply)") from None
    msps = _trust(args)
    try:
        proven = verify_proof(
            proof,
            msps,
            replicas=_replicas(args.replicas),
            policy=_policy(args.policy),
            installed=args.installed,
        )
        if args.max_age_ms is not None:
            check_fresh(proven, _ms("--now-ms", args.now_ms), _ms("--max-age-ms", args.max_age_ms))
    except ProofRejected as exc:
        print(f"{args.file}: proof refused: {exc}", file=sys.stderr)
        return 1
    manifest = proven.release["manifest"]
    reply = {
        "name": manifest["name"],
        "version": manifest["version"],
        "sha256": manifest["file"]["sha256"],
        "block": proven.block,
        "block_time_ms": proven.block_time_ms,
        "dated_ms": proven.dated_ms,
        "tx_id": proven.tx_id,
    }
    print(
        json.dumps(reply, sort_keys=True, indent=2)
        if args.json
        else f"proof verified: {manifest['name']} {manifest['version']} "
        f"(sha256 {manifest['file']['sha256'][:16]}…), "
        f"{'released' if proof['request']['version'] else 'released and current'} as of block "
        f"{proven.block} at {proven.dated_ms} ms"
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    with open_gateway(args.network, args.gateway) as gateway:
        try:
            reply, text = _perform(PatchClient(gateway, _trust(args)), args)
        except Refused as exc:
            reason = str(exc).removeprefix(f"{args.patch_command}: ")
            raise InputError(f"patch {args.patch_command} refused: {reason}") from None
    print(json.dumps(reply, sort_keys=True, indent=2) if args.json else text)
    return 0
