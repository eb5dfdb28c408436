"""What replicas share to save work per message: idle Outputs and certificates.

An idle step may hand out the previous idle step's Output (``Replica.step``): these
tests pin what that must never change, namely that a returned Output keeps its
contents, and that one a caller wrote into is not handed out again.
"""

from __future__ import annotations

import dataclasses

from ledger.codec import decode, encode
from pbft.api import Deliver, PBFTConfig, Send, Tick
from pbft.auth import Keyring
from pbft.memapp import MemoryApplication
from pbft.messages import Prepare, PreparedProof, PrePrepare
from pbft.replica import Replica
from pbft.rules import shared_proof


def _backup() -> tuple[Replica, Keyring]:
    keyring = Keyring(7)
    config = PBFTConfig(n=4)
    return Replica(1, config, keyring.authenticator(1), MemoryApplication()), keyring


def _prepare(keyring: Keyring, sender: int, seq: int) -> bytes:
    unsigned = Prepare(0, seq, b"\x01" * 32, 0, sender, b"")
    signature = keyring.authenticator(sender).sign(encode(unsigned))
    return encode(dataclasses.replace(unsigned, signature=signature))


def _contents(out: object) -> tuple[object, ...]:
    return tuple(getattr(out, f) for f in ("persist", "compact", "send", "executed", "fresh"))


def test_idle_steps_share_an_output_that_stays_as_returned() -> None:
    replica, keyring = _backup()
    first = replica.step(Deliver(10, 2, _prepare(keyring, 2, 1)))
    second = replica.step(Deliver(11, 3, _prepare(keyring, 3, 1)))
    assert _contents(first) == _contents(second) == ([], False, [], [], [])
    assert second.wake_at_ms == first.wake_at_ms
    assert replica.stats["drop.bad-signature"] == 0  # real votes, recorded, deciding nothing
    assert second is first  # the idle step's Output is handed out again


def test_an_output_written_into_is_not_handed_out_again() -> None:
    replica, keyring = _backup()
    first = replica.step(Deliver(10, 2, _prepare(keyring, 2, 1)))
    first.send.append(Send(0, b"mine"))  # type: ignore[arg-type]
    second = replica.step(Deliver(11, 3, _prepare(keyring, 3, 1)))
    assert second is not first
    assert second.send == [] and first.send == [Send(0, b"mine")]  # type: ignore[arg-type]


def test_a_new_timer_gets_a_new_output_and_the_old_one_keeps_its_timer() -> None:
    replica, keyring = _backup()
    first = replica.step(Tick(0))
    assert first.wake_at_ms is None  # nothing pending yet
    # A vote above what we executed arms the STATUS timer: an idle step with a new timer.
    second = replica.step(Deliver(10, 2, _prepare(keyring, 2, 1)))
    assert second.wake_at_ms is not None
    assert second is not first and first.wake_at_ms is None
    assert _contents(second) == ([], False, [], [], [])


def test_replicas_picking_the_same_votes_share_one_certificate() -> None:
    """``rules.shared_proof``: one object per (pre-prepare, votes) picked, equal to a fresh one."""
    keyring = Keyring(3)
    pp = PrePrepare(0, 1, b"\x01" * 32, 0, (), 0, b"")
    votes = tuple(decode(_prepare(keyring, r, 1)) for r in (1, 2, 3))
    first = shared_proof(pp, votes)
    assert shared_proof(pp, tuple(votes)) is first
    assert first == PreparedProof(pp, votes)
    other_votes = (*votes[:2], Prepare(0, 1, b"\x01" * 32, 0, 3, b"x" * 16))
    assert shared_proof(pp, other_votes) is not first  # other votes, another certificate
