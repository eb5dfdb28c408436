"""The channel a ledger validates against: its MSPs and each chaincode's endorsement policy.

Validation must be replayable long after a run (``ledger verify``), so a
ledger directory keeps the channel configuration it was validated with
(:data:`CHANNEL_FILE`) beside its block store. Only names and policy texts
are kept: certificates stay in the MSP tree, which a verifier brings itself.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from chaincode.endorser import BUILTIN_CONTRACTS
from ledger.validator import ChannelConfig, EndorsementPolicy
from msp.ca import NetworkCrypto
from msp.msp import MSPManager
from msp.policy import PolicyError, parse
from sim.errors import InputError
from sim.fabric.sdk import DEFAULT_CHANNEL
from sim.scenario.model import Scenario

CHANNEL_FILE = "channel.json"
"""The channel configuration validation ran with, kept beside the block store."""
CHAINCODES = tuple(BUILTIN_CONTRACTS)
"""The contracts every channel deploys, each under the network's endorsement policy."""


def parse_policy(scenario: Scenario) -> EndorsementPolicy:
    where = f"{scenario.source}: network.endorsement_policy"
    return _parse_policy_text(scenario.network.endorsement_policy, where)


def channel_config(crypto: NetworkCrypto, policy: EndorsementPolicy) -> ChannelConfig:
    return ChannelConfig(DEFAULT_CHANNEL, crypto.msps(), {name: policy for name in CHAINCODES})


def channel_record(config: ChannelConfig) -> dict[str, Any]:
    """The durable part of a channel configuration: names and policy texts (MSPs by id only).

    Certificates stay in the MSP tree, which a verifier brings itself; a
    policy is kept as the text it parses back from.
    """
    default = config.default_policy
    return {
        "channel": config.channel,
        "msp_ids": list(config.msps.mspids),
        "policies": {name: str(policy) for name, policy in sorted(config.policies.items())},
        "default_policy": None if default is None else str(default),
    }


def save_channel(directory: Path, config: ChannelConfig, *, sync: bool = True) -> None:
    """Write :data:`CHANNEL_FILE` atomically (a crash leaves the old file or the new one)."""
    text = json.dumps(channel_record(config), indent=2, sort_keys=True) + "\n"
    scratch = directory / (CHANNEL_FILE + ".tmp")
    with open(scratch, "w", encoding="utf-8") as handle:
        handle.write(text)
        if sync:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(scratch, directory / CHANNEL_FILE)


def load_channel(
    directory: Path, msps: MSPManager, policy_text: str | None = None
) -> ChannelConfig:
    """The channel configuration recorded in ``directory``, with ``msps`` as its MSPs.

    ``policy_text`` replaces every recorded policy (and, without a record, the
    channel is the default one with the shipped chaincodes). Raises
    :class:`InputError` naming the file and what is wrong.
    """
    path = directory / CHANNEL_FILE
    override = None if policy_text is None else _parse_policy_text(policy_text, "--policy")
    if not path.exists():
        if override is None:
            raise InputError(
                f"{path}: no channel configuration (ledgers made before it was recorded:"
                " pass --policy TEXT)"
            )
        return ChannelConfig(DEFAULT_CHANNEL, msps, {name: override for name in CHAINCODES})
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: unreadable channel configuration: {exc}") from None
    channel = record.get("channel") if isinstance(record, dict) else None
    policies = record.get("policies") if isinstance(record, dict) else None
    if not isinstance(channel, str) or not isinstance(policies, dict):
        raise InputError(f"{path}: expected an object with 'channel' (text) and 'policies'")
    missing = sorted(set(record.get("msp_ids") or ()) - set(msps.mspids))
    if missing:
        raise InputError(
            f"{path}: msp_ids: the channel has {', '.join(missing)}, which the MSP tree lacks"
        )
    default_text = record.get("default_policy")

    def policy(text: Any, key: str) -> EndorsementPolicy:
        return override if override is not None else _parse_policy_text(text, f"{path}: {key}")

    return ChannelConfig(
        channel,
        msps,
        {str(name): policy(text, f"policies.{name}") for name, text in policies.items()},
        None if default_text is None else policy(default_text, "default_policy"),
    )


def _parse_policy_text(text: Any, where: str) -> EndorsementPolicy:
    if not isinstance(text, str):
        raise InputError(f"{where}: expected a policy text, got {type(text).__name__}")
    try:
        return parse(text)
    except PolicyError as exc:
        raise InputError(
            f"{where}: expected a policy such as AND('Org1.member','Org2.member'): {exc}"
        ) from None
