"""Fixtures for the specs Kitchen's shell verifier runs on this host against
the suite's node (KITCHEN_HOSTNAME): testinfra over SSH, HTTP to its address."""
import os
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "test", "nodes"))

from expected import Expected  # noqa: E402
from fleet_checks import node_fleets  # noqa: E402
from remote import Node  # noqa: E402


@pytest.fixture(scope="session")
def node():
    return Node.from_env()


@pytest.fixture(scope="session")
def host(node):
    """testinfra's host, on the node (overrides the plugin's local default)."""
    return node.testinfra_host()


@pytest.fixture(scope="session")
def expected(node):
    suite = os.environ.get("KITCHEN_SUITE")
    if not suite:
        raise pytest.UsageError("KITCHEN_SUITE is not set: run these specs through `kitchen verify`")
    return Expected.for_suite(suite, cpus=int(node.output("nproc")))


@pytest.fixture(scope="session")
def node_url(node, expected):
    """Base URL of the node's nginx, as other hosts reach it."""
    return node.url("", port=expected.listen)


@pytest.fixture(scope="session")
def fleets(host):
    """The manifest of every fleet on the node (what Chef says it converged)."""
    return node_fleets(host)
