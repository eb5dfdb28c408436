"""``ledgersim patch``: the patch-management client, over any network that offers a gateway.

Three layers, so the live MQTT network can reuse the top two:

* :class:`Gateway` — the transport: submit a transaction and wait until it
  commits, evaluate a query, put a file on the peers, fetch one from them.
  ``sim.fabric.simnet.SimGateway`` implements it on a simulated network kept in a
  directory; a live implementation plugs in through :func:`open_gateway`.
* :class:`PatchClient` — the paper's operations in the order a person does
  them (sign the manifest, place the file, submit; check the release, fetch,
  verify), independent of the transport.
* the command line and the tables (also used by ``ledgersim demo``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from chaincode.patchset import PatchManifest, manifest_from_json, manifest_to_json, sign_manifest
from chaincode.patchset.manifest import ManifestError
from sim.errors import InputError
from sim.fabric.distribution import (
    DownloadFailed,
    FetchResult,
    FileRef,
    ReleaseRejected,
    check_release,
)

__all__ = [
    "Downloaded",
    "Gateway",
    "PatchClient",
    "Refused",
    "compliance_table",
    "history_table",
    "open_gateway",
    "register",
]


class Refused(Exception):
    """The network said no: a contract refusal, failed endorsement or invalid transaction."""


class Signer(Protocol):
    def sign(self, data: bytes) -> bytes: ...


class Gateway(Protocol):
    """What a patch client needs from a network, whatever carries the bytes."""

    def signer(self, name: str) -> Signer:
        """The named identity's signing key (the deployer signs manifests with it)."""
        ...

    def submit(self, user: str, function: str, args: Sequence[str]) -> bytes:
        """Endorse, order and commit; the contract's reply once the transaction is VALID."""
        ...

    def evaluate(self, user: str, function: str, args: Sequence[str]) -> bytes:
        """Run a query on the peers without ordering it."""
        ...

    def publish_file(self, data: bytes) -> list[str]:
        """Place a file on the peers; the names of those that stored it."""
        ...

    def fetch_file(self, ref: FileRef) -> FetchResult:
        """Get a file from any peer that serves it intact (``DownloadFailed`` otherwise)."""
        ...


CHAINCODE = "patchset"


@dataclass(frozen=True, slots=True)
class Downloaded:
    release: dict[str, Any]
    fetch: FetchResult


def build_manifest(
    data: bytes,
    *,
    name: str,
    version: str,
    file_name: str,
    install: str = "mandatory",
    log: str = "write",
    reboot: str = "unrebooting",
    groups: Sequence[str] = (),
    os_names: Sequence[str] = (),
    deadline_ms: int | None = None,
    description: str = "",
) -> PatchManifest:
    """A manifest for ``data``: the hash and size come from the bytes, never from the user."""
    return PatchManifest(
        name,
        version,
        file_name,
        hashlib.sha256(data).hexdigest(),
        len(data),
        install,
        log,
        reboot,
        tuple(groups),
        tuple(os_names),
        deadline_ms,
        description,
    )


class PatchClient:
    """The paper's three experiments as calls: upload/approve, download/report, audit."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def _submit(self, user: str, function: str, *args: str) -> dict[str, Any]:
        return json.loads(self.gateway.submit(user, function, args))

    def _evaluate(self, user: str, function: str, *args: str) -> dict[str, Any]:
        return json.loads(self.gateway.evaluate(user, function, args))

    def upload(self, admin: str, manifest: PatchManifest, data: bytes) -> dict[str, Any]:
        if (hashlib.sha256(data).hexdigest(), len(data)) != (manifest.sha256, manifest.size):
            raise Refused("the file does not match the manifest's sha256 and size")
        signature = sign_manifest(self.gateway.signer(admin), manifest)
        holders = self.gateway.publish_file(data)
        reply = self._submit(admin, "upload", json.dumps(manifest_to_json(manifest)), signature)
        reply["file_on"] = holders
        return reply

    def approve(self, admin: str, name: str, version: str) -> dict[str, Any]:
        return self._submit(admin, "approve", name, version)

    def withdraw(self, admin: str, name: str, version: str, reason: str) -> dict[str, Any]:
        return self._submit(admin, "withdraw", name, version, reason)

    def register(self, client: str, os_name: str, groups: Sequence[str]) -> dict[str, Any]:
        return self._submit(client, "register", json.dumps({"os": os_name, "groups": list(groups)}))

    def download(self, client: str, name: str, version: str = "") -> Downloaded:
        """Fetch and verify the file first; only then record the download with its hash."""
        release = self._evaluate(client, "metadata", name, *([version] if version else []))
        try:
            ref = check_release(release)
            fetched = self.gateway.fetch_file(ref)
        except (ReleaseRejected, DownloadFailed) as exc:
            raise Refused(str(exc)) from None
        verified = hashlib.sha256(fetched.data).hexdigest()
        released = release["manifest"]["version"]
        record = self._submit(client, "download", name, released, verified)
        return Downloaded({**release, "download": record["download"]}, fetched)

    def report(
        self,
        client: str,
        name: str,
        version: str,
        outcome: str,
        rebooted: bool,
        detail: str = "",
    ) -> dict[str, Any]:
        flag = "true" if rebooted else "false"
        return self._submit(client, "report", name, version, outcome, flag, detail)

    def history(self, admin: str, name: str, version: str = "") -> dict[str, Any]:
        return self._evaluate(admin, "history", name, *([version] if version else []))

    def compliance(self, admin: str) -> dict[str, Any]:
        return self._evaluate(admin, "compliance")

    def catalog(self, user: str) -> dict[str, Any]:
        return self._evaluate(user, "catalog")


# --------------------------------------------------------------------------- tables


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _event_detail(event: dict[str, Any]) -> str:
    record = event["record"]
    action = event["action"]
    if action == "upload":
        file = record["file"]
        return f"sha256 {file['sha256'][:12]}… {file['size']} B, {record['status']}"
    if action in ("approve", "release"):
        return f"sign-offs {record['signoffs']}/{record['approvals_required']}, {record['status']}"
    if action == "withdraw":
        return f"reason: {record['withdrawn']['reason']}"
    if action == "report":
        extra = "" if record.get("log") == "unwrite" else f", rebooted={record.get('rebooted')}"
        return f"{record['outcome']} (log {record.get('log')}{extra})"
    return str(record.get("user_id", ""))


def history_table(history: dict[str, Any]) -> str:
    rows = [
        (
            e["timestamp_ms"],
            e["version"],
            e["action"],
            (e["creator"] or {}).get("name"),
            e["tx_id"][:12],
            _event_detail(e),
        )
        for e in history["events"]
    ]
    return _table(("time_ms", "version", "action", "by", "tx", "detail"), rows)


def compliance_table(report: dict[str, Any]) -> str:
    rows = [
        (
            r["user_id"],
            f"{r['patch']} {r['version']}",
            r["status"] + (" (reboot pending)" if r["reboot_pending"] else ""),
            r["deadline_ms"],
            "yes" if r["overdue"] else "no",
        )
        for r in report["rows"]
    ]
    table = _table(("device", "patch", "status", "deadline_ms", "overdue"), rows)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(report["summary"].items()))
    return f"{table}\nas of {report['as_of_ms']} ms: {summary or 'no rows'}"


# --------------------------------------------------------------------------- gateways


@contextlib.contextmanager
def open_gateway(directory: Path) -> Iterator[Gateway]:
    """The gateway for a network directory: simulated (``net init --sim``) or live.

    A live network directory is handed to ``sim.live.gateway.open_gateway``
    (a context manager) when that module exists.
    """
    from sim.fabric import simnet

    if simnet.is_sim_network(directory):
        with simnet.SimGateway.open(directory) as gateway:
            yield gateway
        return
    try:
        live = importlib.import_module("sim.live.gateway")
    except ModuleNotFoundError as exc:
        if exc.name != "sim.live.gateway":
            raise
        live = None
    if live is None or not (directory / "network.json").is_file():
        raise InputError(
            f"{directory}: not a network directory (expected simnet.json from "
            "'ledgersim net init --sim' or network.json from 'ledgersim net up')"
        )
    with live.open_gateway(directory) as gateway:
        yield gateway


# --------------------------------------------------------------------------- CLI


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
        return reply, f"enrolled {reply['user_id']} (os {reply['os']}, groups {reply['groups']})"
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
    rows = [
        (
            r["name"],
            r["version"],
            r["status"],
            r["deployer"],
            f"{r['signoffs']}/{r['approvals_required']}",
        )
        for r in reply["patches"]
    ]
    return reply, _table(("name", "version", "status", "deployer", "sign-offs"), rows)


def _run(args: argparse.Namespace) -> int:
    with open_gateway(args.network) as gateway:
        try:
            reply, text = _perform(PatchClient(gateway), args)
        except Refused as exc:
            reason = str(exc).removeprefix(f"{args.patch_command}: ")
            raise InputError(f"patch {args.patch_command} refused: {reason}") from None
    print(json.dumps(reply, sort_keys=True, indent=2) if args.json else text)
    return 0
