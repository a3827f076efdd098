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


@pytest.fixture(scope="session")
def node_url():
    """Base URL of the node's nginx.  A stand-in for development on a converged
    host; the test infrastructure provides the real one."""
    return os.environ.get("UWSGI_FLEET_NODE_URL", "http://127.0.0.1")
