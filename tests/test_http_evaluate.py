"""Transactions prepared only to be evaluated: the answer, then nothing held and nothing ordered.

A live gateway answers reads that depend on who asks only from a proposal the
caller signs (``sign-to-read``), and a client checks a write with the peers
before placing its file. Neither is ever submitted, so neither may take one of
the caller's prepared-transaction slots until it expires.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from msp.loader import load_signing_identity
from sim.fabric.simnet import init_sim_network
from sim.http.client import member_msp_dir
from sim.http.errors import ApiError
from sim.http.service import NetworkService

ADMIN1 = "Admin@org1.example.com"
USER = "User1@org1.example.com"


def sign(net: Path, name: str, hex_bytes: str) -> str:
    key = load_signing_identity(member_msp_dir(net / "crypto", name))
    return str(key.sign(bytes.fromhex(hex_bytes)).hex())


def test_an_evaluated_read_or_write_answers_and_is_forgotten(tmp_path: Path) -> None:
    net = tmp_path / "net"
    init_sim_network(net, seed=7)
    service = NetworkService(net)
    admin, user = service.member(ADMIN1), service.member(USER)
    read = service.prepare(admin, "compliance", [])
    answer = service.endorse(admin, read["tx_id"], sign(net, ADMIN1, read["bytes"]))
    assert answer["response"]["rows"] == [] and "next" not in answer
    assert service.pending == {}
    with pytest.raises(ApiError) as gone:
        service.submit(admin, read["tx_id"], sign(net, ADMIN1, read["bytes"]))
    assert gone.value.status == 404
    # A write checked with the peers only: answered, never ordered, forgotten.
    device = json.dumps({"os": "linux", "groups": []})
    check = service.prepare(user, "register", [device], evaluate=True)
    answer = service.endorse(user, check["tx_id"], sign(net, USER, check["bytes"]))
    assert answer["response"]["user_id"] == "Org1/User1@org1.example.com"
    assert service.pending == {} and service.nodes()["nodes"][0]["height"] == 1
    # A read cannot be prepared for submitting either: it is evaluated whatever was asked.
    again = service.prepare(admin, "catalog", [], evaluate=False)
    service.endorse(admin, again["tx_id"], sign(net, ADMIN1, again["bytes"]))
    assert service.pending == {}
