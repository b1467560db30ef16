"""Test-wide settings.

Hypothesis profiles: ``dev`` (the default) draws new examples on every run, to keep finding
new cases; ``ci`` (``HYPOTHESIS_PROFILE=ci``, set by ``.ci/run``) draws the same examples on
every run, so a CI result is reproducible and a rare case found locally becomes a regression
test rather than a random red run.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("dev")
settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
