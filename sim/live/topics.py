"""MQTT topic layout of one live network, in one place (broker ACL, nodes, clients).

Every topic names its *sender*, and client topics also name the broker account
of the user the client belongs to, so the broker's ACL can pin each replica's
credentials to its own prefix and each user's credentials to its own clients::

    ledgersim/<net>/r/<i>/to/<j>          replica i -> replica j
    ledgersim/<net>/r/<i>/all             replica i -> every replica (the broker fans out)
    ledgersim/<net>/r/<i>/u/<acct>/<c>    replica i -> client c of user account acct
    ledgersim/<net>/c/<acct>/<c>/to/<j>   client c -> replica j (requests, proposals, files)
    ledgersim/<net>/c/<acct>/<c>/all      client c -> every replica

Replica-to-replica traffic and replies to clients travel on different topics,
so a user account can read its own replies without seeing the replicas' votes.
The sender in the topic is checked against the envelope by the transport, and
the replica still checks the signature.
"""

from __future__ import annotations

from dataclasses import dataclass

from pbft.api import BROADCAST, CLIENT_ID_BASE
from sim.live.netconfig import CLIENT_SLOTS

ROOT = "ledgersim"


def network_root(net: str) -> str:
    return f"{ROOT}/{net}"


def replica_prefix(net: str, replica: int) -> str:
    return f"{ROOT}/{net}/r/{replica}"


def client_account(client: int) -> str:
    """The broker account of the user that owns client id ``client`` (``client-<k>``)."""
    return f"client-{(client - CLIENT_ID_BASE) // CLIENT_SLOTS}"


def account_prefix(net: str, account: str) -> str:
    """Where the clients of one user account publish."""
    return f"{ROOT}/{net}/c/{account}"


def inbox_of_account(net: str, account: str) -> str:
    """What one user account reads: every replica's replies to its clients."""
    return f"{ROOT}/{net}/r/+/u/{account}/+"


def sender_prefix(net: str, sender: int, is_replica: bool) -> str:
    if is_replica:
        return replica_prefix(net, sender)
    return f"{account_prefix(net, client_account(sender))}/{sender}"


def unicast(net: str, sender: int, is_replica: bool, to: int) -> str:
    if is_replica and to >= CLIENT_ID_BASE:
        return f"{replica_prefix(net, sender)}/u/{client_account(to)}/{to}"
    return f"{sender_prefix(net, sender, is_replica)}/to/{to}"


def broadcast(net: str, sender: int, is_replica: bool) -> str:
    return f"{sender_prefix(net, sender, is_replica)}/all"


def replica_subscriptions(net: str, replica: int) -> list[str]:
    root = network_root(net)
    return [
        f"{root}/r/+/to/{replica}",
        f"{root}/r/+/all",
        f"{root}/c/+/+/to/{replica}",
        f"{root}/c/+/+/all",
    ]


@dataclass(frozen=True, slots=True)
class Route:
    """Who a topic says sent a message, and to whom."""

    sender: int
    from_replica: bool
    to: int
    """A principal, or BROADCAST."""


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def route_of(net: str, topic: str) -> Route | None:
    """The route of a topic of this network's shape, else ``None``.

    A replica topic must name a replica id and a client topic a client id under
    the account that owns it; anything else is not a shape this network uses.
    """
    parts = topic.split("/")
    if len(parts) < 5 or parts[0] != ROOT or parts[1] != net:
        return None
    rest = parts[2:]
    if rest[0] == "r":
        sender = _int(rest[1])
        if sender is None or sender >= CLIENT_ID_BASE:
            return None
        if rest[2:] == ["all"]:
            return Route(sender, True, BROADCAST)
        if len(rest) == 4 and rest[2] == "to":
            to = _int(rest[3])
            return None if to is None or to >= CLIENT_ID_BASE else Route(sender, True, to)
        if len(rest) == 5 and rest[2] == "u":
            to = _int(rest[4])
            if to is None or to < CLIENT_ID_BASE or client_account(to) != rest[3]:
                return None
            return Route(sender, True, to)
        return None
    if rest[0] == "c" and len(rest) >= 4:
        sender = _int(rest[2])
        if sender is None or sender < CLIENT_ID_BASE or client_account(sender) != rest[1]:
            return None
        if rest[3:] == ["all"]:
            return Route(sender, False, BROADCAST)
        if len(rest) == 5 and rest[3] == "to":
            to = _int(rest[4])
            return None if to is None or to >= CLIENT_ID_BASE else Route(sender, False, to)
    return None
