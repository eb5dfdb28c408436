"""The benchmark suite behind ``ledgersim bench`` (see BENCHMARKS.md).

Performance is measured here, never asserted in timed tests: figures depend
on the machine, so they are reported beside limits measured in the same run.
"""

from sim.bench.suite import SECTIONS, TARGETS, Options, run_suite

__all__ = ["SECTIONS", "TARGETS", "Options", "run_suite"]
