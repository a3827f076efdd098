"""Reliability tests run against one fresh node, each under an open-loop load
from this host.

Each scenario adds a row (requests sent, 2xx, other, connection errors, lost
events, recovery) to a table printed at the end and written to
build/reliability.md, which the README's "Reliability" section quotes.
"""
import os

import pytest

import support
from fixtures import fresh_node  # test/nodes, on the path through support

ROWS = []


@pytest.fixture(scope="session", autouse=True)
def node():
    """A fresh systemd node, converged with the default attributes; destroyed at the end."""
    with fresh_node("reliability") as node:
        support.use_node(node)
        support.converge_ok({})
        yield node
        support.remove_spooled_events()


@pytest.fixture(scope="session")
def host(node):
    """testinfra's host, on the node."""
    return node.testinfra_host()


@pytest.fixture(scope="session")
def node_url(node):
    return node.url("", port=support.manifest()["listen"])


@pytest.fixture
def report():
    def add(scenario, load, recovery="-"):
        counts = load.counts()
        ROWS.append((scenario, counts["sent"], counts["ok"], counts["other"], counts["errors"],
                     len(load.lost_events()), recovery))
    return add


def pytest_terminal_summary(terminalreporter):
    if not ROWS:
        return
    lines = ["| Scenario | Sent | 2xx | Other answers | Connection errors | Lost events | Recovery |",
             "|---|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in ROWS]
    table = "\n".join(lines)
    terminalreporter.write_line("\nReliability under load:\n" + table)
    os.makedirs(os.path.join(support.REPO, "build"), exist_ok=True)
    with open(os.path.join(support.REPO, "build", "reliability.md"), "w") as f:
        f.write(table + "\n")
