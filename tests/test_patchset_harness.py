"""The contract harness keeps Fabric's semantics; manifests round-trip and order versions."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaincode.patchset import ManifestError, PatchManifest, manifest_from_json, manifest_to_json
from chaincode.patchset.manifest import compare_versions, manifest_digest, parse_version
from chaincode.shim import Contract, ContractError, Creator, Stub, transaction
from chaincode.testing import ContractHarness
from ledger.codec import decode, encode

ALICE = Creator("Org1", "client", "alice@org1.example.com", b"")


class Ledger(Contract):
    """A toy contract: enough surface to probe the harness."""

    name = "toy"

    @transaction
    def put(self, stub: Stub, key: str, value: str) -> bytes:
        stub.put_state(key, value.encode())
        return stub.get_state(key) or b"<none>"  # must not see its own write

    @transaction
    def put_then_fail(self, stub: Stub, key: str) -> bytes:
        stub.put_state(key, b"x")
        raise ContractError("no")

    @transaction
    def drop(self, stub: Stub, key: str) -> bytes:
        stub.del_state(key)
        return b""

    @transaction
    def tag(self, stub: Stub, kind: str, *attrs: str) -> bytes:
        key = stub.create_composite_key(kind, attrs)
        assert stub.split_composite_key(key) == (kind, list(attrs))
        stub.put_state(key, stub.get_creator().name.encode())
        stub.set_event("tagged", key.encode())
        return b""

    @transaction
    def scan(self, stub: Stub, kind: str, *attrs: str) -> bytes:
        found = [
            stub.split_composite_key(k)[1]
            for k, _ in stub.get_state_by_partial_composite_key(kind, attrs)
        ]
        return json.dumps(found).encode()

    @transaction
    def span(self, stub: Stub, start: str, end: str) -> bytes:
        return json.dumps([k for k, _ in stub.get_state_by_range(start, end)]).encode()

    @transaction
    def history(self, stub: Stub, key: str) -> bytes:
        mods = [
            [m.tx_id, m.timestamp_ms, m.value.decode(), m.is_delete]
            for m in stub.get_history_for_key(key)
        ]
        return json.dumps(mods).encode()


def test_reads_see_committed_state_not_own_writes() -> None:
    h = ContractHarness(Ledger())
    assert h.invoke(ALICE, "put", "k", "1") == b"<none>"
    assert h.invoke(ALICE, "put", "k", "2") == b"1"
    assert h.world.values == {"k": b"2"}


def test_failed_transaction_writes_nothing() -> None:
    h = ContractHarness(Ledger())
    with pytest.raises(ContractError, match="no"):
        h.invoke(ALICE, "put_then_fail", "k")
    assert h.world.values == {} and h.world.history == {}


def test_evaluate_discards_writes() -> None:
    h = ContractHarness(Ledger())
    h.evaluate(ALICE, "put", "k", "1")
    assert h.world.values == {}


def test_history_records_each_write_and_delete_in_order() -> None:
    h = ContractHarness(Ledger(), start_ms=100, step_ms=10)
    h.invoke(ALICE, "put", "k", "a")
    h.invoke(ALICE, "drop", "k", timestamp_ms=500)
    h.invoke(ALICE, "put", "k", "b")
    mods = json.loads(h.invoke(ALICE, "history", "k"))
    assert [(m[1], m[2], m[3]) for m in mods] == [
        (100, "a", False),
        (500, "", True),
        (510, "b", False),
    ]
    assert len({m[0] for m in mods}) == 3


def test_composite_keys_and_partial_queries() -> None:
    h = ContractHarness(Ledger())
    for attrs in (("a", "1"), ("a", "2"), ("ab", "1"), ("b", "1")):
        h.invoke(ALICE, "tag", "t", *attrs)
    h.invoke(ALICE, "put", "plain", "v")
    assert json.loads(h.invoke(ALICE, "scan", "t", "a")) == [["a", "1"], ["a", "2"]]
    assert len(json.loads(h.invoke(ALICE, "scan", "t"))) == 4
    # An unbounded simple-key range skips composite keys, as Fabric does.
    assert json.loads(h.invoke(ALICE, "span", "", "")) == ["plain"]
    assert h.events[0].name == "tagged" and h.events[0].payload.startswith(b"\x00t\x00a\x001\x00")


def test_composite_key_parts_may_not_contain_the_separator() -> None:
    h = ContractHarness(Ledger())
    with pytest.raises(ContractError, match="reserved character"):
        h.invoke(ALICE, "tag", "t", "a\x00b")


# ----------------------------------------------------------------- manifests

names = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,10}", fullmatch=True)
versions = st.lists(st.integers(0, 10**6), min_size=1, max_size=4).map(
    lambda parts: ".".join(map(str, parts))
)
manifests = st.builds(
    PatchManifest,
    name=names,
    version=versions,
    file_name=names,
    sha256=st.binary(min_size=32, max_size=32).map(bytes.hex),
    size=st.integers(0, 2**40),
    install=st.sampled_from(["mandatory", "optional"]),
    log=st.sampled_from(["write", "unwrite"]),
    reboot=st.sampled_from(["rebooting", "unrebooting"]),
    target_groups=st.lists(names, unique=True, max_size=3).map(tuple),
    target_os=st.lists(names, unique=True, max_size=3).map(tuple),
    deadline_ms=st.none() | st.integers(0, 2**53 - 1),
    description=st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
    expires_ms=st.none() | st.integers(0, 2**53 - 1),
)


@given(manifests)
def test_manifest_round_trips_through_json_and_codec(m: PatchManifest) -> None:
    assert manifest_from_json(json.dumps(manifest_to_json(m))) == m
    assert decode(encode(m), PatchManifest) == m


@given(manifests, manifests)
def test_digest_identifies_the_manifest(a: PatchManifest, b: PatchManifest) -> None:
    assert (manifest_digest(a) == manifest_digest(b)) == (a == b)


@given(versions, versions)
def test_version_order_is_numeric_per_part(a: str, b: str) -> None:
    pa = [int(x) for x in a.split(".")] + [0] * (4 - len(a.split(".")))
    pb = [int(x) for x in b.split(".")] + [0] * (4 - len(b.split(".")))
    assert compare_versions(a, b) == (pa > pb) - (pa < pb)
    assert compare_versions(a, b) == -compare_versions(b, a)


@pytest.mark.parametrize("bad", ["", "1.", ".1", "01", "1.02", "1.2.3.4.5", "v1", "1..2", "1e3"])
def test_malformed_versions_are_refused(bad: str) -> None:
    with pytest.raises(ManifestError):
        parse_version(bad)


def test_simple_key_ranges_refuse_composite_bounds() -> None:
    h = ContractHarness(Ledger())
    with pytest.raises(ContractError, match="partial_composite_key"):
        h.invoke(ALICE, "span", "\x00t", "")
