"""Every mutant in tests/fabric_mutants.py fails the test named to kill it.

Each mutant weakens one check of the ledger, MSP, endorser, patch-set contract
or ledger verifier; the test that kills it says so in its docstring. Here each
is patched in and its killer run: the killer must fail with an assertion (not
crash on something unrelated), and pass again once the patch is gone (the
killers are ordinary tests of the suite, run there on the real code).
"""

from __future__ import annotations

import pytest
from fabric_mutants import MUTANTS, SourceMutant, killer, run_test


def assertion_failures(error: BaseException) -> bool:
    """A failed assertion (``assert``, ``pytest.raises`` that did not raise), or a group
    holding one (Hypothesis reporting distinct failures, some of which may be crashes the
    weakened check let through)."""
    if isinstance(error, BaseExceptionGroup):
        return any(assertion_failures(e) for e in error.exceptions)
    return isinstance(error, AssertionError | pytest.fail.Exception)


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_suite_catches_mutant(mutant: SourceMutant, monkeypatch: pytest.MonkeyPatch) -> None:
    test = killer(mutant)
    mutant.apply(monkeypatch)
    try:
        run_test(test)
    except BaseException as error:
        assert assertion_failures(error), f"{mutant.name}: crashed instead: {error!r}"
    else:
        pytest.fail(f"mutant {mutant.name} survived {mutant.killed_by}")


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_killer_docstring_names_its_mutant(mutant: SourceMutant) -> None:
    assert f"``{mutant.name}``" in (killer(mutant).__doc__ or "")


def test_mutant_names_are_unique() -> None:
    names = [m.name for m in MUTANTS]
    assert len(set(names)) == len(names)
