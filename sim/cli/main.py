"""``ledgersim``: one program, one sub-command per job (docs/design.md, "The command line").

Each sub-command lives in its own ``sim.cli`` module exposing
``register(subparsers)``, which adds its parser and sets ``handler`` to a
function ``(args) -> int``. This module only dispatches and turns the two
expected failure kinds into exit statuses: :class:`InputError` -> 2,
:class:`RunFailed` -> 1. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from sim.cli import (
    bench,
    crypto,
    demo,
    gateway,
    hunt,
    ledger,
    load,
    nemesis,
    net,
    patch,
    run,
    sweep,
    trace,
)
from sim.errors import InputError, RunFailed

COMMANDS = (
    demo,
    run,
    sweep,
    hunt,
    trace,
    crypto,
    ledger,
    net,
    patch,
    gateway,
    load,
    nemesis,
    bench,
)
"""In the order ``ledgersim --help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ledgersim",
        description="A Fabric-style ledger ordered by PBFT, with a patch-management chaincode.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Like ``parse_args``, but a stray argument is reported with the usage of the
    sub-command it was given to (``ledgersim run X --bogus`` shows ``run``'s usage)."""
    words = list(sys.argv[1:] if argv is None else argv)
    args, extras = parser.parse_known_args(words)
    if extras:
        innermost(parser, words).error("unrecognized arguments: " + " ".join(extras))
    return args


def innermost(parser: argparse.ArgumentParser, words: Sequence[str]) -> argparse.ArgumentParser:
    """The deepest sub-command parser the words name (``ledger verify`` -> verify's)."""
    for word in words:
        for action in parser._actions:  # argparse offers no public way to reach sub-parsers
            if isinstance(action, argparse._SubParsersAction) and word in action.choices:
                parser = action.choices[word]
                break
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse(build_parser(), argv)
        status: int = args.handler(args)
    except InputError as exc:
        print(f"ledgersim: error: {exc}", file=sys.stderr)
        return 2
    except RunFailed as exc:
        print(f"ledgersim: {exc}", file=sys.stderr)
        return 1
    except RecursionError:
        # Only readers of user files recurse this deep (a TOML or JSON file of
        # thousands of nested brackets): bad input, said as such, not a traceback.
        print("ledgersim: error: the input is nested too deeply to read", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `ledgersim ... | head` closed the pipe: not an error of ours. Point stdout
        # at /dev/null so the interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return status


if __name__ == "__main__":
    sys.exit(main())
