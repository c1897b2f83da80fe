"""Shared test setup: Hypothesis profiles (registered at import, as Hypothesis expects).

Hypothesis loads its built-in `ci` profile by itself when the CI environment variable is set. Locally
`HYPOTHESIS_PROFILE=thorough pytest …` runs the property tests longer.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
if "HYPOTHESIS_PROFILE" in os.environ:
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])
