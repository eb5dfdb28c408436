"""``ledgersim crypto``: Fabric-style identities on disk (generate, revoke).

Unseeded generation gives fresh keys, as a real deployment wants; ``--seed``
gives the same tree byte for byte, which is what tests and reproducible
demos want.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from msp import ALGORITHMS, ECDSA_P256, MSPError, generate_network, revoke
from sim.errors import InputError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("crypto", help="generate or revoke Fabric-style identities")
    sub = parser.add_subparsers(dest="crypto_command", required=True, metavar="ACTION")

    gen = sub.add_parser("generate", help="write a cryptogen-style tree of CAs and identities")
    gen.add_argument("--orgs", type=int, default=2, help="organisations Org1..OrgN (default 2)")
    gen.add_argument("--peers", type=int, default=2, help="peers per organisation (default 2)")
    gen.add_argument("--users", type=int, default=1, help="client users per organisation")
    gen.add_argument("--admins", type=int, default=1, help="admins per organisation (default 1)")
    gen.add_argument("--algorithm", default=ECDSA_P256, choices=ALGORITHMS)
    gen.add_argument("--intermediate", action="store_true", help="issue through an intermediate CA")
    gen.add_argument("--seed", help="derive every key from this string: reproducible output")
    gen.add_argument("--out", required=True, type=Path, help="output directory")
    gen.add_argument("--json", action="store_true", help="print the identities as JSON")
    gen.set_defaults(handler=generate_command)

    rev = sub.add_parser("revoke", help="add a certificate to its CA's revocation list")
    rev.add_argument("--ca", required=True, type=Path, help="the organisation's ca/ directory")
    rev.add_argument("--cert", required=True, type=Path, help="PEM certificate to revoke")
    rev.add_argument("--json", action="store_true", help="print the result as JSON")
    rev.set_defaults(handler=revoke_command)


def _check_counts(args: argparse.Namespace) -> None:
    for option, minimum in (("orgs", 1), ("peers", 0), ("users", 0), ("admins", 0)):
        value = getattr(args, option)
        if value < minimum:
            raise InputError(f"--{option}: expected an integer >= {minimum}, got {value}")
    if args.out.exists() and not args.out.is_dir():
        raise InputError(f"--out: {args.out} exists and is not a directory")


def generate_command(args: argparse.Namespace) -> int:
    _check_counts(args)
    seed = None if args.seed is None else args.seed.encode()
    network = generate_network(
        args.orgs,
        args.peers,
        args.users,
        args.algorithm,
        seed,
        admins=args.admins,
        intermediate=args.intermediate,
    )
    try:
        root = network.write(args.out)
    except OSError as exc:
        raise InputError(f"--out: cannot write {args.out}: {exc.strerror}") from None
    identities = network.identities()
    if args.json:
        listing = [{"name": n, "mspid": m, "role": r} for n, m, r in identities]
        summary = {"out": str(root), "algorithm": args.algorithm, "identities": listing}
        print(json.dumps(summary, indent=2))
    else:
        print(f"wrote {len(identities)} identities of {args.orgs} organisations to {root}")
        for name, mspid, role in identities:
            print(f"  {mspid:<6} {role:<8} {name}")
    return 0


def revoke_command(args: argparse.Namespace) -> int:
    try:
        crl = revoke(args.ca, args.cert, datetime.now(UTC))
    except MSPError as exc:
        raise InputError(str(exc)) from None
    serials = [f"{entry.serial_number:x}" for entry in crl]
    if args.json:
        print(json.dumps({"ca": str(args.ca), "cert": str(args.cert), "revoked": serials}))
    else:
        print(f"{args.cert}: revoked; the CRL of {args.ca} now lists {len(serials)} certificate(s)")
    return 0
