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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chaincode.patchset import PatchManifest, manifest_from_json
from chaincode.patchset.manifest import ManifestError
from sim.errors import InputError
from sim.fabric import simnet
from sim.fabric.gateway import Gateway, Refused
from sim.fabric.patchclient import PatchClient, build_manifest
from sim.fabric.tables import catalog_table, compliance_table, history_table

__all__ = ["open_gateway", "register"]


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
    if command == "download":
        got = client.download(user, args.name, args.version)
        if args.out is not None:
            args.out.write_bytes(got.fetch.data)
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
            f"({manifest['file']['size']} B, sha256 verified, deployer signature verified)",
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


def _run(args: argparse.Namespace) -> int:
    with open_gateway(args.network, args.gateway) as gateway:
        try:
            reply, text = _perform(PatchClient(gateway), args)
        except Refused as exc:
            reason = str(exc).removeprefix(f"{args.patch_command}: ")
            raise InputError(f"patch {args.patch_command} refused: {reason}") from None
    print(json.dumps(reply, sort_keys=True, indent=2) if args.json else text)
    return 0
