"""Errors the command line turns into one clear line and an exit status."""

from __future__ import annotations


class InputError(Exception):
    """Bad input from the user (file, key, value): exit status 2, no traceback.

    The message should name the file, the key and what was expected, e.g.
    ``scenarios/x.toml: network.replicas: expected an integer >= 4, got 3``.
    """


class RunFailed(Exception):
    """A run whose expectations failed: exit status 1."""
