"""The ledger-backed application of a live node, and its endorser.

The node's ledger lives in ``<data dir>/ledger/`` exactly as a simulated
node's does with ``--data-dir`` (``sim.fabric.app``), with fsync on (``sync=True``):
a block is durable before the replies and checkpoints that depend on it leave
the node, because ``execute`` runs inside the replica's step and the host
publishes only after the step.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from chaincode.endorser import Endorser
from ledger.codec import decode, encode
from ledger.transaction import SignedProposal
from ledger.validator import ChannelConfig
from msp.identity import SigningIdentity
from msp.policy import PolicyError, parse
from sim.errors import InputError
from sim.fabric.app import LEDGER_DIR, LedgerApplication, open_ledger_dir
from sim.fabric.channel import CHAINCODES
from sim.fabric.sdk import DEFAULT_CHANNEL
from sim.live.identity import Directory
from sim.live.netconfig import NetworkConfig


def channel(config: NetworkConfig, directory: Directory) -> ChannelConfig:
    try:
        policy = parse(config.endorsement_policy)
    except PolicyError as exc:
        raise InputError(f"network.json: endorsement_policy: {exc}") from None
    return ChannelConfig(DEFAULT_CHANNEL, directory.msps, {name: policy for name in CHAINCODES})


def open_ledger_application(
    config: NetworkConfig, signer: SigningIdentity, directory: Directory, data_dir: Path
) -> tuple[LedgerApplication, Callable[[bytes, int], bytes]]:
    """The node's ledger application and a bytes-in, bytes-out endorser over it."""
    channel_config = channel(config, directory)
    ledger_dir = data_dir / LEDGER_DIR
    ledger_dir.mkdir(parents=True, exist_ok=True)
    app = LedgerApplication(open_ledger_dir(ledger_dir, channel_config, sync=True))
    endorser = Endorser(signer, app.ledger, channel_config.msps, DEFAULT_CHANNEL)

    def endorse(proposal: bytes, now_ms: int) -> bytes:
        return encode(endorser.process(decode(proposal, SignedProposal), now_ms))

    return app, endorse
