"""MQTT topic layout of one live network, in one place (broker ACL, nodes, clients).

Every topic names its *sender* so the broker's ACL can pin each replica's
credentials to its own prefix::

    ledgersim/<net>/r/<i>/to/<j>   replica i -> replica or client j
    ledgersim/<net>/r/<i>/all      replica i -> every replica (the broker fans out)
    ledgersim/<net>/c/<c>/to/<j>   client c -> replica j (requests, proposals)
    ledgersim/<net>/c/<c>/all      client c -> every replica

The sender in the topic is a hint only: the envelope names the claimed sender
too, both must agree, and the replica still checks the signature.
"""

from __future__ import annotations

ROOT = "ledgersim"


def network_root(net: str) -> str:
    return f"{ROOT}/{net}"


def replica_prefix(net: str, replica: int) -> str:
    return f"{ROOT}/{net}/r/{replica}"


def client_root(net: str) -> str:
    return f"{ROOT}/{net}/c"


def sender_prefix(net: str, sender: int, is_replica: bool) -> str:
    return replica_prefix(net, sender) if is_replica else f"{client_root(net)}/{sender}"


def unicast(net: str, sender: int, is_replica: bool, to: int) -> str:
    return f"{sender_prefix(net, sender, is_replica)}/to/{to}"


def broadcast(net: str, sender: int, is_replica: bool) -> str:
    return f"{sender_prefix(net, sender, is_replica)}/all"


def replica_subscriptions(net: str, replica: int) -> list[str]:
    root = network_root(net)
    return [
        f"{root}/r/+/to/{replica}",
        f"{root}/r/+/all",
        f"{root}/c/+/to/{replica}",
        f"{root}/c/+/all",
    ]


def client_subscriptions(net: str, client: int | None = None) -> list[str]:
    """What a client reads: its own inbox, or (``None``, for the ACL) every client inbox."""
    return [f"{network_root(net)}/r/+/to/{'+' if client is None else client}"]


def sender_of(net: str, topic: str) -> int | None:
    """The sender a topic names, or ``None`` if the topic is not of this network's shape."""
    parts = topic.split("/")
    if len(parts) < 5 or parts[0] != ROOT or parts[1] != net or parts[2] not in ("r", "c"):
        return None
    try:
        return int(parts[3])
    except ValueError:
        return None


def addressee_of(topic: str) -> int | None:
    """The principal a topic addresses, ``-1`` (BROADCAST) for ``/all``, else ``None``."""
    parts = topic.split("/")
    if parts[-1] == "all" and len(parts) == 5:
        return -1
    if len(parts) == 6 and parts[4] == "to":
        try:
            return int(parts[5])
        except ValueError:
            return None
    return None
