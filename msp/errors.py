"""The two ways the MSP answers "no": an exception for local misuse, a verdict for peers' input.

A protocol step must never be knocked over by a certificate or signature a
peer sent, so checks of *their* input return a :class:`Verdict` carrying the
reason (for counters and traces). Misuse by the local caller (a missing file,
an unknown algorithm, a key that does not match its certificate) raises
:class:`MSPError`, because continuing would only hide the bug.
"""

from __future__ import annotations

from dataclasses import dataclass


class MSPError(Exception):
    """Local misuse or unusable local material (files, keys, configuration)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Outcome of a check on untrusted input; truthy only when ``ok``."""

    ok: bool
    reason: str = "ok"

    def __bool__(self) -> bool:
        return self.ok


ACCEPTED = Verdict(True)


def rejected(reason: str) -> Verdict:
    return Verdict(False, reason)
