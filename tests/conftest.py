"""Shared test set-up: hypothesis profiles and the ngspice requirement.

A test that needs ngspice uses the ``ngspice`` fixture (which also gives it the ``ngspice`` marker). Where ngspice is
missing, it fails when ``CI=true`` (CI must never silently skip the SPICE
checks) and is skipped only on a developer's machine without ngspice.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# the shared test helpers (strategies, mp_reference, sweep_tasks) live here, beside this file; the test
# files are in folders that follow the packages (core, fcm, dnn, characterization, security)
sys.path.insert(0, str(Path(__file__).resolve().parent))

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev", derandomize=True, deadline=None, max_examples=25,
    suppress_health_check=[HealthCheck.too_slow],
)
# many more examples, not derandomized, for a local run of the property tests:
# ``pytest tests/fcm --hypothesis-profile=thorough`` (or HYPOTHESIS_PROFILE=thorough)
settings.register_profile(
    "thorough", derandomize=False, deadline=None, max_examples=400, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="session")
def ngspice() -> str:
    path = shutil.which(os.environ.get("XBARLAB_NGSPICE", "ngspice"))
    if path is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("ngspice is required in CI but was not found on PATH")
        pytest.skip("ngspice not installed (this would fail in CI)")
    return path



def pytest_collection_modifyitems(config, items):
    """Every test that requests the ``ngspice`` fixture carries the ``ngspice`` marker, so that ``-m ngspice``
    and ``-m "not ngspice"`` select by it (a test whose model itself sweeps ngspice, such as the 1T-1R cell
    table, requests the fixture too)."""
    for it in items:
        if "ngspice" in getattr(it, "fixturenames", ()) and it.get_closest_marker("ngspice") is None:
            it.add_marker(pytest.mark.ngspice)
