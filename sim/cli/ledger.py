"""``ledgersim ledger dump|verify``: read and check a node's block store.

``DIR`` may be a node directory as ``run --data-dir`` leaves it
(``DIR/replica-<id>/``, whose ledger is in ``ledger/``) or the block store
directory itself. Both commands open the store read-only: they never repair
a torn tail, they just stop before it.

``verify`` replays validation to check the stored validation codes, with
the channel configuration the node recorded beside its block store
(``channel.json``, see ``sim.fabric.channel``) or the policy given by ``--policy``.

``dump --json`` prints one JSON object per line and block, in the fixed format
of docs/design.md ("Fixed formats"); ``tests/tools/recompute_hashes.py`` checks it independently.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ledger.block import Block, code_name
from ledger.blockstore import DATA_FILE, BlockStore, BlockStoreCorrupt
from ledger.codec import CodecError, decode
from ledger.validator import parse
from pbft.messages import Commit
from sim.errors import InputError, RunFailed
from sim.fabric.app import LEDGER_DIR, unwrap_request
from sim.fabric.channel import load_channel
from sim.fabric.verify import Trust, TrustError, verify_blocks


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("ledger", help="read and check a block store")
    sub = parser.add_subparsers(dest="ledger_command", required=True, metavar="ACTION")

    dump = sub.add_parser("dump", help="print every block")
    dump.add_argument("dir", type=Path, help="node directory or block store directory")
    dump.add_argument("--json", action="store_true", help="one JSON object per block")
    dump.set_defaults(handler=run_dump)

    verify = sub.add_parser(
        "verify", help="check hashes, commit certificates, signatures and validation codes"
    )
    verify.add_argument("dir", type=Path, help="node directory or block store directory")
    verify.add_argument("--msp", type=Path, required=True, help="cryptogen tree (CA certificates)")
    verify.add_argument(
        "--replicas",
        type=int,
        default=None,
        help="number of replicas n (default: replica-* dirs beside DIR, else peers in --msp)",
    )
    verify.add_argument(
        "--no-certificates",
        action="store_true",
        help="skip commit certificates (runs with modelled crypto)",
    )
    verify.add_argument(
        "--policy",
        default=None,
        metavar="TEXT",
        help="endorsement policy to replay validation with (default: the one in channel.json)",
    )
    verify.add_argument("--json", action="store_true", help="machine-readable result")
    verify.set_defaults(handler=run_verify)


def store_dir(path: Path) -> Path:
    """The directory holding the block store files, given a node or store directory."""
    for candidate in (path, path / LEDGER_DIR):
        if (candidate / DATA_FILE).is_file():
            return candidate
    raise InputError(
        f"{path}: no block store (expected {DATA_FILE} in it or in {path / LEDGER_DIR})"
    )


def open_store(path: Path) -> BlockStore:
    directory = store_dir(path)
    try:
        return BlockStore.open(directory, readonly=True)
    except OSError as exc:
        raise InputError(f"{directory}: cannot read the block store: {exc}") from None


def _commit_json(raw: bytes) -> dict[str, Any]:
    try:
        commit = decode(raw, Commit)
    except CodecError as exc:
        return {"encoded": raw.hex(), "error": exc.reason}
    return {
        "replica": commit.replica,
        "view": commit.view,
        "seq": commit.seq,
        "digest": commit.digest.hex(),
        "signature": commit.signature.hex(),
        "encoded": raw.hex(),
    }


def block_json(block: Block) -> dict[str, Any]:
    meta = block.metadata
    transactions = []
    for item, code in zip(block.data, meta.validation_codes, strict=True):
        payload = parse(item, unwrap_request)[2]
        transactions.append(
            {
                "tx_id": "" if payload is None else payload.header.tx_id,
                "envelope": item.hex(),
                "validation_code": code_name(code),
            }
        )
    return {
        "number": block.number,
        "previous_hash": block.header.previous_hash.hex(),
        "data_hash": block.header.data_hash.hex(),
        "header_hash": block.hash.hex(),
        "transactions": transactions,
        "metadata": {
            "seq": meta.seq,
            "view": meta.view,
            "timestamp_ms": meta.timestamp_ms,
            "validation_codes": [code_name(c) for c in meta.validation_codes],
            "certificate": [_commit_json(raw) for raw in meta.certificate],
        },
    }


def _blocks(store: BlockStore, directory: Path) -> Iterator[Block]:
    try:
        yield from store.blocks()
    except CodecError as exc:  # the file changed under us
        raise RunFailed(f"{directory}: unreadable block: {exc}") from None


def run_dump(args: argparse.Namespace) -> int:
    try:
        store = open_store(args.dir)
    except BlockStoreCorrupt as exc:
        raise InputError(f"{args.dir}: {exc}") from None
    try:
        _print_blocks(store, args)
    except BrokenPipeError:  # `ledger dump | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        store.close()
    return 0


def _print_blocks(store: BlockStore, args: argparse.Namespace) -> None:
    for block in _blocks(store, args.dir):
        if args.json:
            print(json.dumps(block_json(block), separators=(",", ":")))
        else:
            codes = block.metadata.validation_codes
            print(
                f"block {block.number:>6}  {block.hash.hex()[:16]}  txs {len(codes):>4}"
                f"  valid {sum(1 for c in codes if c == 0):>4}"
                f"  view {block.metadata.view}  t={block.metadata.timestamp_ms}ms"
            )
    if store.recovery.dropped_bytes and not args.json:
        print(f"(ignored a torn tail of {store.recovery.dropped_bytes} bytes)")


def default_replicas(path: Path, trust: Trust) -> int:
    """``replica-*`` directories beside a node directory, else every peer in the MSP tree."""
    node = path.resolve()
    if node.name == LEDGER_DIR:
        node = node.parent
    if node.name.startswith("replica-"):
        siblings = [p for p in node.parent.glob("replica-*") if p.is_dir()]
        if siblings:
            return len(siblings)
    return len(trust.peers)


def run_verify(args: argparse.Namespace) -> int:
    try:
        trust = Trust.load(args.msp)
    except TrustError as exc:
        raise InputError(str(exc)) from None
    n = args.replicas if args.replicas is not None else default_replicas(args.dir, trust)
    if n < 1:
        raise InputError(f"--replicas: expected a number >= 1, got {n}")
    config = load_channel(store_dir(args.dir), trust.msps, args.policy)
    try:
        try:
            store = open_store(args.dir)
        except BlockStoreCorrupt as exc:
            raise RunFailed(f"{args.dir}: {exc}") from None
        try:
            report = verify_blocks(
                _blocks(store, args.dir),
                trust,
                n,
                unwrap_request,
                not args.no_certificates,
                config=config,
            )
        finally:
            store.close()
        if report.problem is not None:
            raise RunFailed(f"{args.dir}: {report.problem}")
    except RunFailed as exc:
        # --json callers get the verdict on stdout either way; the line on stderr and
        # exit status 1 stay as for the human output.
        if args.json:
            print(json.dumps({"ok": False, "problem": str(exc), "replicas": n}))
        raise
    torn = store.recovery
    torn_text = (
        f"{torn.reason}; {torn.dropped_bytes} bytes after block "
        f"{store.height - 1} not verified (a node cuts them off when it starts)"
        if torn.dropped_bytes
        else ""
    )
    head = report.head
    if args.json:
        print(
            json.dumps(
                {
                    "ok": True,
                    "problem": None,
                    "blocks": report.blocks,
                    "replicas": n,
                    "head_hash": None if head is None else head.hash.hex(),
                    "certificates_checked": not args.no_certificates,
                    "validation_replayed": report.codes_replayed,
                    "torn_tail": torn_text or None,
                }
            )
        )
    else:
        head_text = "" if head is None else f", head {head.hash.hex()}"
        print(
            f"ok: {report.blocks} blocks verified (n = {n}, validation codes replayed){head_text}"
        )
        if torn_text:
            print(torn_text)
    return 0
