"""Shared fixtures, among them an independent reference implementation.

``reference`` is :func:`_reference.reference_normalize`, written from the
formulas in DESIGN.md in extended precision (``np.longdouble``) with plain,
unoptimized numpy; the tests compare sknorm to it, never sknorm to itself.
"""

import os
import sys

import numpy as np
import pytest

# The test modules import the shared references and tolerance models from
# tests/_reference.py; with --import-mode=importlib this folder is not on
# sys.path by itself.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _reference import reference_normalize  # noqa: E402

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # hypothesis is in the test extra; only the property tests need it
    settings = None

if settings is not None:
    # Profiles for the property-based tests (tests/test_properties.py). "ci", the
    # default, is deterministic (same examples on every run and machine, no example
    # database); pick "dev" (random, more examples) or "thorough" with
    # SKNORM_HYPOTHESIS_PROFILE=dev, or pytest's --hypothesis-profile=dev.
    settings.register_profile(
        "ci",
        derandomize=True,
        database=None,
        max_examples=100,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.register_profile("dev", max_examples=300, deadline=None)
    # tests/run_thorough.sh runs "thorough" on every backend (long).
    settings.register_profile(
        "thorough",
        max_examples=3000,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.load_profile(os.environ.get("SKNORM_HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def reference():
    return reference_normalize


@pytest.fixture
def rng():
    return np.random.default_rng(0)
