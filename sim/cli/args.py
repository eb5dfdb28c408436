"""Argument types shared by sub-commands, so one option means one thing everywhere.

They raise :class:`InputError` (not argparse's own error) so a bad value gets
the project's one-line message and exit status 2 like every other bad input.
"""

from __future__ import annotations

from sim.errors import InputError
from sim.scenario.reader import MAX_SEED


def seed(text: str) -> int:
    """``--seed``: a whole number in 0..2**64-1."""
    try:
        value = int(text)
    except ValueError:
        raise InputError(f"--seed: expected an integer >= 0, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise InputError(f"--seed: expected an integer >= 0 and < 2**64, got {value}")
    return value
