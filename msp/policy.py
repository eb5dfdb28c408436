"""Fabric's signature-policy language: ``AND``, ``OR``, ``OutOf`` over MSP principals.

``AND('Org1.member', OutOf(2, 'Org2.admin', 'Org3.admin', 'Org4.peer'))``.
A principal ``'<MSPID>.<role>'`` is matched by an identity of that MSP with
that NodeOU role; ``member`` by any identity of the MSP. Keywords are
case-insensitive, as in Fabric.

Evaluation counts each identity at most once: one admin cannot stand for two
``'Org1.admin'`` principals, nor for both ``'Org1.admin'`` and
``'Org1.member'``. Fabric gets this with a greedy pass that can miss a valid
assignment; here it is exact. Every sub-policy is reduced to the *minimal*
sets of identities that can satisfy it (as bit masks), combining children
only over disjoint sets; a superset is never needed because using fewer
identities never hurts what is left. The tests check it against a brute-force
oracle.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from msp.names import ROLES

_Memo = dict["Principal", frozenset[int]]
PRINCIPAL_ROLES = ("member", *ROLES)
MAX_DEPTH = 32
_WORD = re.compile(r"\w*")


class PolicyError(ValueError):
    """A policy that does not parse; ``position`` is the 0-based offset of the problem."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at position {position})")
        self.position = position


class Member(Protocol):
    """What evaluation needs of an identity (``msp.Identity`` is one)."""

    @property
    def mspid(self) -> str: ...

    @property
    def role(self) -> str: ...

    def __hash__(self) -> int: ...


class Policy:
    """A parsed policy; ``Principal`` and ``Threshold`` are its two shapes."""

    __slots__ = ()

    def principals(self) -> tuple[Principal, ...]:
        raise NotImplementedError

    def _options(self, members: Sequence[Member], memo: _Memo) -> frozenset[int]:
        raise NotImplementedError

    def evaluate(self, identities: Iterable[Member]) -> bool:
        """Whether distinct ``identities`` satisfy the policy, each used at most once."""
        leaves = set(self.principals())
        members = [m for m in dict.fromkeys(identities) if any(p.matches(m) for p in leaves)]
        return bool(self._options(members, {}))


@dataclass(frozen=True, slots=True)
class Principal(Policy):
    mspid: str
    role: str

    def __post_init__(self) -> None:
        if self.role not in PRINCIPAL_ROLES:
            raise ValueError(f"unknown role {self.role!r}: expected one of {PRINCIPAL_ROLES}")
        if not self.mspid:
            raise ValueError("empty MSP id")

    def matches(self, member: Member) -> bool:
        return member.mspid == self.mspid and self.role in ("member", member.role)

    def principals(self) -> tuple[Principal, ...]:
        return (self,)

    def _options(self, members: Sequence[Member], memo: _Memo) -> frozenset[int]:
        found = memo.get(self)
        if found is None:
            found = frozenset(1 << i for i, m in enumerate(members) if self.matches(m))
            memo[self] = found
        return found

    def __str__(self) -> str:
        return f"'{self.mspid}.{self.role}'"


@dataclass(frozen=True, slots=True)
class Threshold(Policy):
    """At least ``k`` of ``rules``; ``keyword`` only remembers how it was written."""

    k: int
    rules: tuple[Policy, ...]
    keyword: str = "OutOf"

    def __post_init__(self) -> None:
        if not self.rules:
            raise ValueError(f"{self.keyword} needs at least one sub-policy")
        if not 1 <= self.k <= len(self.rules):
            raise ValueError(f"{self.keyword}: need 1 <= k <= {len(self.rules)}, got {self.k}")

    def principals(self) -> tuple[Principal, ...]:
        return tuple(p for rule in self.rules for p in rule.principals())

    def _options(self, members: Sequence[Member], memo: _Memo) -> frozenset[int]:
        # reachable[c] = minimal masks of identities that satisfy c of the rules seen so far
        reachable: list[set[int]] = [{0}] + [set() for _ in range(self.k)]
        for rule in self.rules:
            options = rule._options(members, memo)
            if not options:
                continue
            for count in range(self.k - 1, -1, -1):
                grown = {u | o for u in reachable[count] for o in options if not u & o}
                if grown:
                    reachable[count + 1] = _minimal(reachable[count + 1] | grown)
        return frozenset(reachable[self.k])

    def __str__(self) -> str:
        inner = ", ".join(str(r) for r in self.rules)
        if self.keyword == "OutOf":
            return f"OutOf({self.k}, {inner})"
        return f"{self.keyword}({inner})"


def _minimal(masks: set[int]) -> set[int]:
    """Drop every mask that contains another one."""
    kept: list[int] = []
    for mask in sorted(masks, key=int.bit_count):
        if not any(k & mask == k for k in kept):
            kept.append(mask)
    return set(kept)


def _rule(rule: Policy | str) -> Policy:
    return parse(rule) if isinstance(rule, str) else rule


def AND(*rules: Policy | str) -> Threshold:
    return Threshold(len(rules), tuple(_rule(r) for r in rules), "AND")


def OR(*rules: Policy | str) -> Threshold:
    return Threshold(1, tuple(_rule(r) for r in rules), "OR")


def OutOf(k: int, *rules: Policy | str) -> Threshold:
    return Threshold(k, tuple(_rule(r) for r in rules), "OutOf")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str, position: int | None = None) -> PolicyError:
        return PolicyError(message, self.pos if position is None else position)

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip_space()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        found = self.peek()
        if found != char:
            what = repr(found) if found else "end of policy"
            raise self.fail(f"expected {char!r}, found {what}")
        self.pos += 1

    def policy(self, depth: int) -> Policy:
        if depth > MAX_DEPTH:
            raise self.fail(f"policy nested deeper than {MAX_DEPTH}")
        char = self.peek()
        if char in ("'", '"') and char:
            return self.principal()
        if char.isalpha():
            return self.call(depth)
        what = repr(char) if char else "end of policy"
        raise self.fail(f"expected a principal such as 'Org1.member' or AND/OR/OutOf, found {what}")

    def word(self) -> str:
        match = _WORD.match(self.text, self.pos)
        assert match is not None  # \w* matches the empty string
        self.pos = match.end()
        return match.group()

    def call(self, depth: int) -> Threshold:
        start = self.pos
        name = self.word()
        keyword = {"and": "AND", "or": "OR", "outof": "OutOf"}.get(name.lower())
        if keyword is None:
            raise self.fail(f"unknown operator {name!r}: expected AND, OR or OutOf", start)
        self.expect("(")
        k = 0
        k_at = self.pos
        if keyword == "OutOf":
            self.skip_space()
            k_at = self.pos
            digits = self.word()
            if not digits.isdigit():
                raise self.fail("OutOf needs a count as its first argument", k_at)
            k = int(digits)
            self.expect(",")
        rules = [self.policy(depth + 1)]
        while self.peek() == ",":
            self.pos += 1
            rules.append(self.policy(depth + 1))
        self.expect(")")
        if keyword == "AND":
            k = len(rules)
        elif keyword == "OR":
            k = 1
        elif not 1 <= k <= len(rules):
            raise self.fail(f"OutOf count must be between 1 and {len(rules)}, got {k}", k_at)
        return Threshold(k, tuple(rules), keyword)

    def principal(self) -> Principal:
        start = self.pos
        quote = self.text[self.pos]
        end = self.text.find(quote, self.pos + 1)
        if end < 0:
            raise self.fail("unterminated principal string", start)
        body = self.text[self.pos + 1 : end]
        mspid, dot, role = body.rpartition(".")
        if not dot or not mspid or any(c.isspace() or c in "'\"" for c in mspid):
            raise self.fail(f"expected '<MSPID>.<role>', found {body!r}", start + 1)
        if role not in PRINCIPAL_ROLES:
            expected = ", ".join(PRINCIPAL_ROLES)
            role_at = start + 2 + len(mspid)
            raise self.fail(f"unknown role {role!r}: expected one of {expected}", role_at)
        self.pos = end + 1
        return Principal(mspid, role)


def parse(text: str) -> Policy:
    """Parse a policy; ``PolicyError`` (with ``.position``) on anything malformed."""
    if not isinstance(text, str):
        raise PolicyError(f"policy must be a string, got {type(text).__name__}", 0)
    parser = _Parser(text)
    result = parser.policy(0)
    if parser.peek():
        raise parser.fail(f"unexpected {parser.peek()!r} after the policy")
    return result
