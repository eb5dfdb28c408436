"""Hypothesis profiles, chosen with HYPOTHESIS_PROFILE (default "ci").

"ci" is reproducible and bounded: derandomized (the same examples on every
machine, so a red CI run is a red local run), no deadline (the machine is
shared and simulated runs vary in wall time), and the failing example's blob
printed so it can be replayed with ``@reproduce_failure``. "long" is for
researchers hunting rare schedules: many more examples, random seeds.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=25,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=2000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
