"""Small helpers for the sentences the commands print, so "1 faults" is written nowhere."""

from __future__ import annotations


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """``1 fault``, ``2 faults`` (``plural_form`` for irregular nouns)."""
    return f"{count} {noun if count == 1 else plural_form or noun + 's'}"
