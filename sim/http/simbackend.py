"""The HTTP gateway over a simulated network directory (``net init --sim``).

Each write the gateway submits is one deterministic PBFT session
(:class:`sim.fabric.simnet.SimGateway`), traced in memory for the network
view (:mod:`sim.http.activity`); reads open a reachable peer's ledger on
disk. All work on the directory is serialised by one lock, since each step
opens the network's files and advances its virtual clock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaincode.endorser import Endorser
from chaincode.shim import Creator
from chaincode.simulation import SimulationStub
from ledger.block import Block
from ledger.peer import PeerLedger
from ledger.transaction import NONCE_SIZE, SerializedIdentity, SignedProposal, TxHeader
from msp import names
from msp.msp import at_virtual_ms
from sim.errors import InputError
from sim.fabric.app import open_ledger_dir
from sim.fabric.distribution import FetchResult, FileRef
from sim.fabric.gateway import CHAINCODE, Refused
from sim.fabric.sdk import (
    DEFAULT_CHANNEL,
    EndorsementPlanner,
    collect_endorsements,
    proposal_header,
)
from sim.fabric.simnet import GAP_MS, SimGateway, is_sim_network
from sim.http.activity import SECOND_MS, ActivityLog, ledger_figures, session_figures
from sim.http.backend import Endorsed, NotOrdered, Ordered, window_blocks
from sim.http.errors import ApiError
from sim.http.identities import Member


@dataclass(slots=True)
class LedgerChain:
    """A peer's :class:`PeerLedger` seen as a :class:`sim.http.backend.Chain`."""

    peer: str
    ledger: PeerLedger

    @property
    def height(self) -> int:
        return self.ledger.height

    def block(self, number: int) -> Block:
        return self.ledger.block(number)

    def locate(self, tx_id: str) -> tuple[Block, int] | None:
        where = self.ledger.tx_location(tx_id)
        return None if where is None else (self.ledger.block(where.block), where.tx)


class SimBackend:
    kind = "simulated"
    own_identity = None

    def __init__(self, directory: Path) -> None:
        self.root = directory
        if not is_sim_network(self.root):
            raise InputError(f"{self.root}: not a simulated network (ledgersim net init --sim)")
        self.lock = threading.Lock()
        self.activity_log = ActivityLog(0)
        self.crypto_dir = self.root / "crypto"
        with self._network() as gateway:
            self.msps = gateway.config.msps
            self.replicas = gateway.cfg.replicas
        self.activity_log.replicas = self.replicas

    @contextmanager
    def _network(self) -> Iterator[SimGateway]:
        with self.lock, SimGateway.open(self.root) as gateway:
            gateway.record_traces = True  # for the network view (sim.http.activity)
            try:
                yield gateway
            finally:  # a refused session still ran: its messages and view changes count
                self.activity_log.record(gateway.sessions)

    def close(self) -> None:
        pass

    def _ledgers(self, gateway: SimGateway, stack: ExitStack) -> Iterator[tuple[str, PeerLedger]]:
        """Each reachable peer's ledger, opened for this call and closed with ``stack``."""
        for replica in range(gateway.cfg.replicas):
            if replica in gateway.down:
                continue
            ledger = open_ledger_dir(self.root / f"replica-{replica}" / "ledger", gateway.config)
            stack.callback(ledger.close)
            yield names.replica_peer_name(replica, gateway.cfg.orgs), ledger

    # ------------------------------------------------------------------ writes

    def proposal_time(self) -> int:
        with self._network() as gateway:
            now = gateway.cfg.clock_ms
            gateway.advance(GAP_MS)
        return now

    def endorse(self, signed: SignedProposal, header: TxHeader) -> Endorsed:
        with self._network() as gateway, ExitStack() as stack:
            endorsers = [
                Endorser(gateway.crypto.signer(peer), ledger, gateway.config.msps, DEFAULT_CHANNEL)
                for peer, ledger in self._ledgers(gateway, stack)
            ]
            planner = EndorsementPlanner(gateway.policy)
            result, endorsements, identities = collect_endorsements(
                signed, planner.plan(endorsers), planner, gateway.config.msps, header.timestamp_ms
            )
        return Endorsed(result, endorsements, [i.name for i in identities])

    def order(self, envelope: bytes, member: Member, header: TxHeader) -> Ordered:
        with self._network() as gateway:
            try:
                gateway.submit_envelope(envelope, member.name, header.function)
            except Refused as exc:
                code = gateway.sessions[-1].code if gateway.sessions else "NOT_SUBMITTED"
                raise NotOrdered(str(exc), code) from None
            session = gateway.sessions[-1]
        return Ordered(session.code, session.view, list(session.endorsers))

    # ------------------------------------------------------------------ reads

    def query(self, member: Member, function: str, args: Sequence[str]) -> bytes:
        with self._network() as gateway, ExitStack() as stack:
            now = gateway.cfg.clock_ms
            verdict = gateway.config.msps.validate(member.identity, at_virtual_ms(now))
            if not verdict.ok:
                raise ApiError(403, f"{member.name} is not a valid member: {verdict.reason}")
            creator = SerializedIdentity(member.mspid, member.identity.cert_pem)
            header = proposal_header(
                creator, DEFAULT_CHANNEL, CHAINCODE, function, args, now, os.urandom(NONCE_SIZE)
            )
            peer, ledger = next(self._ledgers(gateway, stack))
            endorser = Endorser(
                gateway.crypto.signer(peer), ledger, gateway.config.msps, DEFAULT_CHANNEL
            )
            contract = endorser.contract(CHAINCODE)
            assert contract is not None
            who = Creator(member.mspid, member.role, member.name, member.identity.cert_pem)
            return contract.invoke(SimulationStub(ledger, header, who))  # ContractError: service

    @contextmanager
    def chain(self) -> Iterator[LedgerChain]:
        with self._network() as gateway, ExitStack() as stack:
            peer, ledger = next(self._ledgers(gateway, stack))
            yield LedgerChain(peer, ledger)

    def proof_of(self, tx_id: str, name: str, version: str) -> dict[str, Any]:
        with self._network() as gateway:
            return gateway.proof_of(tx_id, name, version)

    # ------------------------------------------------------------------ files

    def publish(self, data: bytes) -> list[str]:
        with self._network() as gateway:
            return gateway.publish_file(data)

    def fetch(self, ref: FileRef) -> FetchResult:
        with self._network() as gateway:
            return gateway.fetch_file(ref)

    # ------------------------------------------------------------------ network

    def activity(self, seconds: int) -> dict[str, Any]:
        """Throughput, message rate, view changes and faults over the last ``seconds``.

        Each figure says where it comes from (:mod:`sim.http.activity`): the
        ledger, the sessions this gateway ran, or the network's configuration.
        """
        with self._network() as gateway, ExitStack() as stack:
            until = gateway.cfg.clock_ms
            since = max(0, until - seconds * SECOND_MS + 1)
            _peer, ledger = next(self._ledgers(gateway, stack))
            blocks = window_blocks(LedgerChain(_peer, ledger), since)
            byzantine = dict(gateway.cfg.byzantine)
        summaries = self.activity_log.snapshot()
        # Down only as observed: a replica configured ``silent`` is reported as Byzantine
        # (``byzantine``) until a session shows it sending nothing.
        down: dict[str, str] = {}
        if summaries:
            latest = summaries[-1]
            for replica in latest.silent:
                down[str(replica)] = f"sent nothing during the last session ({latest.function})"
        return {
            "clock": "the simulated network's virtual milliseconds",
            "since_ms": since,
            "until_ms": until,
            "window_s": seconds,
            "ledger": ledger_figures(blocks, since, until),
            "gateway_sessions": session_figures(summaries, since, until),
            "down": down,
            "byzantine": byzantine,
        }

    def nodes(self) -> dict[str, Any]:
        with self._network() as gateway, ExitStack() as stack:
            view = gateway.cfg.client_view
            rows = []
            opened = dict(self._ledgers(gateway, stack))
            for replica in range(gateway.cfg.replicas):
                peer = names.replica_peer_name(replica, gateway.cfg.orgs)
                ledger = opened.get(peer)
                rows.append(
                    {
                        "replica": replica,
                        "peer": peer,
                        "up": ledger is not None,
                        "role": "primary" if replica == view % gateway.cfg.replicas else "backup",
                        "byzantine": gateway.cfg.byzantine.get(str(replica)),
                        "view": view,
                        "height": ledger.height if ledger else None,
                        "head": ledger.head_hash.hex() if ledger else None,
                    }
                )
            return {
                "kind": self.kind,
                "clock_ms": gateway.cfg.clock_ms,
                "commands": gateway.cfg.commands,
                "nodes": rows,
            }
