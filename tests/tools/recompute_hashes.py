#!/usr/bin/env python3
"""Recompute every block hash from ``ledgersim ledger dump DIR --json`` output, independently.

Written only from the "Fixed formats" section of docs/design.md, with nothing of the
project imported, so it checks the formats themselves rather than the code
that produced them:

* ``data_hash`` = SHA-256 of the concatenated canonical envelope bytes;
* header hash = SHA-256 of ``msgpack.packb([number, previous_hash, data_hash],
  use_bin_type=True)``;
* block 0's ``previous_hash`` is 32 zero bytes, and each later block's is the
  header hash of the block before.

Usage: ``recompute_hashes.py [DUMP_FILE]`` (standard input by default). Prints
``ok <blocks> <head hash>`` and exits 0, or names the first bad block and exits 1.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable

import msgpack

ZERO = bytes(32)


def check(lines: Iterable[str]) -> tuple[int, str]:
    previous = ZERO
    expected_number = 0
    for line in lines:
        if not line.strip():
            continue
        block = json.loads(line)
        number = block["number"]
        if number != expected_number:
            raise ValueError(f"block {number}: expected block {expected_number}")
        envelopes = b"".join(bytes.fromhex(tx["envelope"]) for tx in block["transactions"])
        data_hash = hashlib.sha256(envelopes).digest()
        if data_hash.hex() != block["data_hash"]:
            raise ValueError(f"block {number}: data_hash does not match its transactions")
        if bytes.fromhex(block["previous_hash"]) != previous:
            raise ValueError(f"block {number}: previous_hash does not chain")
        header = msgpack.packb([number, previous, data_hash], use_bin_type=True)
        header_hash = hashlib.sha256(header).digest()
        if header_hash.hex() != block["header_hash"]:
            raise ValueError(f"block {number}: header_hash does not match its header")
        previous = header_hash
        expected_number += 1
    return expected_number, previous.hex()


def main(argv: list[str]) -> int:
    try:
        if len(argv) > 1:
            with open(argv[1], encoding="utf-8") as stream:
                blocks, head = check(stream)
        else:
            blocks, head = check(sys.stdin)
    except (ValueError, KeyError, TypeError) as exc:
        print(f"recompute_hashes: {exc}", file=sys.stderr)
        return 1
    print(f"ok {blocks} {head}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
