"""Shared test setup: one CPU thread, and Hypothesis profiles (registered at import, as Hypothesis expects).

One thread, as the `nramdsl` command defaults to: the machine is many small operations, and torch's default of
a thread per core made the suite 4.2x slower on a loaded 2-core machine, with the same results. Set before
torch is imported (it reads the variable then), and inherited by the commands tests start as processes.

Hypothesis loads its built-in `ci` profile by itself when the CI environment variable is set. Locally
`HYPOTHESIS_PROFILE=thorough pytest …` runs the property tests longer.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
if "HYPOTHESIS_PROFILE" in os.environ:
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])
