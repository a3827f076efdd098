"""Fixtures for the testinfra specs that Kitchen's shell verifier runs."""
import os

import pytest

from expected import Expected


@pytest.fixture(scope="session")
def expected():
    suite = os.environ.get("KITCHEN_SUITE") or os.environ.get("UWSGI_FLEET_SUITE")
    if not suite:
        raise pytest.UsageError("KITCHEN_SUITE is not set: run these specs through `kitchen verify`")
    return Expected.for_suite(suite)
