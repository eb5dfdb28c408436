"""Bounded pipelining (``PBFTConfig.max_batches_in_flight``): bigger batches under load.

Without the option the primary cuts a batch whenever the batch timeout passes,
so with latency longer than the timeout many small batches are in flight at
once. With it, at most the bound are in flight, and the requests that arrive
meanwhile ride in the next batch, cut when one executes.
"""

from __future__ import annotations

import pytest
from pbft_harness import Cluster

from pbft.api import Output, PBFTConfig

REQUESTS = 120


def _run(bound: int | None) -> tuple[Cluster, int, list[int]]:
    """One request a millisecond over 10 ms links, 2 ms batch timeout; the peak in flight."""
    settings: dict[str, int] = {"batch_size": 50, "batch_timeout_ms": 2}
    if bound is not None:
        settings["max_batches_in_flight"] = bound
    cluster = Cluster(clients=REQUESTS, latency=(10, 10), settings=settings)
    peak = 0
    sizes: list[int] = []

    def watch(replica: int, out: Output) -> None:
        nonlocal peak
        if replica != 0:
            return
        primary = cluster.replicas[0]
        peak = max(peak, primary._seq_next - 1 - cluster.apps[0].last_executed)
        sizes.extend(len(b.requests) for b in out.executed)

    cluster.observers.append(watch)
    for k, client in enumerate(cluster.client_ids):
        cluster.run(until=lambda at=k: cluster.now >= at, max_ms=k + 1)
        cluster.now = max(cluster.now, k)
        cluster.submit(client, f"op-{k}".encode())
    cluster.run(until=cluster.all_done)
    cluster.settle()
    return cluster, peak, sizes


def test_default_keeps_cutting_on_the_timeout() -> None:
    cluster, peak, sizes = _run(None)
    cluster.assert_safe()
    assert sum(sizes) == REQUESTS
    assert peak > 2  # the behaviour the option changes


@pytest.mark.parametrize("bound", [1, 2])
def test_bound_caps_batches_in_flight_and_grows_them(bound: int) -> None:
    cluster, peak, sizes = _run(bound)
    _, _, unbounded = _run(None)
    cluster.assert_safe()
    assert all(c.busy is False for c in cluster.client_objs.values())
    assert sum(sizes) == REQUESTS  # every request executed once, none lost while held back
    assert peak <= bound
    assert len(sizes) < len(unbounded)  # fewer, larger batches


def test_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_batches_in_flight"):
        PBFTConfig(n=4, max_batches_in_flight=0)
