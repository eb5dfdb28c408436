"""Each invariant check fires on a history that breaks it, and only then."""

from __future__ import annotations

from hypothesis import find, given
from hypothesis import strategies as st

from sim.explore.strategies import fault_schedules
from sim.scenario.model import Fault, NetworkSpec, Scenario
from sim.world import invariants
from sim.world.faults import fault_model
from sim.world.invariants import History

A, B = b"\xaa" * 32, b"\xbb" * 32


def history(n: int = 4, byzantine: frozenset[int] = frozenset()) -> History:
    h = History(n=n, byzantine=byzantine)
    h.submitted[(1000, 1)] = (b"op", 0.0)
    for r in range(n):
        h.new_incarnation(r)
    return h


def test_agreement_catches_two_correct_replicas_disagreeing() -> None:
    h = history()
    h.record_execution(0, 1, A, None, [])
    h.record_execution(1, 1, A, None, [])
    assert invariants.agreement(h) == []
    h.record_execution(2, 1, B, None, [])
    assert len(invariants.agreement(h)) == 1 and "seq 1" in invariants.agreement(h)[0]


def test_agreement_ignores_byzantine_replicas_but_not_restarts() -> None:
    h = history(byzantine=frozenset({3}))
    h.record_execution(0, 1, A, None, [])
    h.record_execution(3, 1, B, None, [])
    assert invariants.agreement(h) == []
    h.record_execution(0, 1, B, None, [])  # same replica, same seq, other batch
    assert any("twice" in v for v in invariants.agreement(h))


def test_agreement_compares_heads_when_batches_agree() -> None:
    h = history()
    h.record_execution(0, 1, A, A, [])
    h.record_execution(1, 1, A, B, [])
    assert invariants.agreement(h) != []


def test_validity_catches_unsubmitted_altered_and_repeated_requests() -> None:
    h = history()
    h.record_execution(0, 1, A, None, [(1000, 1, b"op")])
    assert invariants.validity(h) == []
    h.record_execution(1, 1, A, None, [(1000, 2, b"op")])
    h.record_execution(2, 1, A, None, [(1000, 1, b"other")])
    h.record_execution(0, 2, B, None, [(1000, 1, b"op")])
    found = invariants.validity(h)
    assert len(found) == 3
    assert any("no client submitted" in v for v in found)
    assert any("did not submit" in v for v in found)
    assert any("twice" in v for v in found)


def _validity_request_by_request(h: History) -> list[str]:
    """``validity`` without its shared verdicts: every batch of every replica judged alone."""
    out: list[str] = []
    for replica in h.correct:
        seen: dict[tuple[int, int], int] = {}
        for seq, executed in h.requests.get(replica, []):
            invariants.judge_requests(replica, seq, executed, h.submitted, seen, out)
    return invariants._capped(out)


requests_drawn = st.lists(
    st.tuples(st.integers(1000, 1002), st.integers(1, 3), st.sampled_from([b"op", b"x"])),
    max_size=3,
)


@given(st.lists(st.tuples(st.integers(0, 3), requests_drawn), max_size=12), st.data())
def test_validity_with_shared_batches_reports_as_request_by_request(
    executions: list[tuple[int, list[tuple[int, int, bytes]]]], data: st.DataObject
) -> None:
    """Replicas share batch tuples (as the simulator records them): same verdicts, same order."""
    h = history()
    h.submitted[(1001, 2)] = (b"x", 0.0)
    batches: list[tuple[tuple[int, int, bytes], ...]] = []
    for seq, (replica, drawn) in enumerate(executions, start=1):
        if batches and data.draw(st.booleans()):
            batch = data.draw(st.sampled_from(batches))  # the very tuple another replica ran
        else:
            batch = tuple(drawn)
            batches.append(batch)
        h.record_execution(replica, seq, A, None, batch)
    assert invariants.validity(h) == _validity_request_by_request(h)


@given(st.lists(requests_drawn, max_size=5), st.lists(st.booleans(), min_size=4, max_size=4))
def test_validity_of_replicas_running_one_sequence_reports_as_request_by_request(
    sequence: list[list[tuple[int, int, bytes]]], same: list[bool]
) -> None:
    """Replicas that ran equal (seq, batch) lists, clean or not, are each judged and reported."""
    h = history()
    shared = [tuple(batch) for batch in sequence]
    for replica, runs_shared in enumerate(same):
        batches = shared if runs_shared else [tuple(b) for b in reversed(sequence)]
        for seq, batch in enumerate(batches, start=1):
            h.record_execution(replica, seq, A, None, batch)
    assert invariants.validity(h) == _validity_request_by_request(h)


def test_views_must_not_go_back_within_an_incarnation() -> None:
    h = history()
    for view in (0, 1, 2):
        h.record_view(0, view)
    h.new_incarnation(0)
    h.record_view(0, 1)  # a restart may resume lower
    assert invariants.monotonic_views(h) == []
    h.record_view(0, 0)
    assert len(invariants.monotonic_views(h)) == 1


def test_stable_checkpoints_monotone_and_consistent() -> None:
    h = history()
    h.record_execution(1, 5, A, A, [])
    h.record_stable(0, 5, A)
    assert invariants.stable_checkpoints(h) == []
    h.record_stable(0, 5, B)
    h.record_stable(0, 0, None)
    found = invariants.stable_checkpoints(h)
    assert any("went back" in v for v in found) and any("digest" in v for v in found)


def test_bounded_log() -> None:
    h = history(byzantine=frozenset({2}))
    h.record_log_size(0, 20)
    h.record_log_size(2, 999)
    assert invariants.bounded_log(h, 10) == []
    h.record_log_size(1, 21)
    assert len(invariants.bounded_log(h, 10)) == 1


def test_liveness_deadlines_count_from_gst() -> None:
    h = history()
    h.submitted[(1000, 2)] = (b"x", 100.0)
    h.completed[(1000, 1)] = 50.0
    assert len(invariants.liveness(h, gst_ms=0, bound_ms=1000, end_ms=5000)) == 1
    assert "never completed" in invariants.liveness(h, 0, 1000, 5000)[0]
    assert invariants.liveness(h, gst_ms=4500, bound_ms=1000, end_ms=5000) == []
    h.completed[(1000, 2)] = 2000.0
    assert "after its deadline" in invariants.liveness(h, 0, 1000, 5000)[0]


def test_reports_are_capped() -> None:
    h = history()
    for seq in range(1, 50):
        h.record_execution(0, seq, A, None, [])
        h.record_execution(1, seq, B, None, [])
    found = invariants.agreement(h)
    assert len(found) == invariants.MAX_REPORTED + 1 and found[-1].startswith("...")


def scenario_with(faults: tuple[Fault, ...], n: int = 7) -> Scenario:
    return Scenario(network=NetworkSpec(replicas=n), faults=faults)


@given(st.sampled_from([4, 5, 7, 10]).flatmap(lambda n: st.tuples(st.just(n), fault_schedules(n))))
def test_default_schedules_stay_inside_the_model(drawn: tuple[int, tuple[Fault, ...]]) -> None:
    n, faults = drawn
    model = fault_model(scenario_with(faults, n))
    assert model["within"] and model["gst_ms"] is not None and not model["down_at_end"]


def test_beyond_model_schedules_leave_it() -> None:
    outside = find(
        fault_schedules(4, beyond_model=True),
        lambda faults: not fault_model(scenario_with(faults, 4))["within"],
    )
    assert not fault_model(scenario_with(outside, 4))["within"]


def test_fault_model_counts_simultaneous_faults() -> None:
    crash_then_back = (
        Fault("crash", at_ms=0, replica=1),
        Fault("recover", at_ms=100, replica=1),
        Fault("crash", at_ms=200, replica=2),
        Fault("recover", at_ms=300, replica=2),
    )
    assert fault_model(scenario_with(crash_then_back, 4))["max_faulty"] == 1
    overlapping = (*crash_then_back[:1], Fault("crash", at_ms=50, replica=2))
    model = fault_model(scenario_with(overlapping, 4))
    assert model["max_faulty"] == 2 and not model["within"] and model["down_at_end"] == [1, 2]
