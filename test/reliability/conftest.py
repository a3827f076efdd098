"""Reliability tests run on the converged node, each under an open-loop load.

Each scenario adds a row (requests sent, 2xx, other, connection errors, lost
events, recovery) to a table printed at the end and written to
build/reliability.md, which the README's "Reliability" section quotes.
"""
import os

import pytest

import support

ROWS = []


@pytest.fixture(scope="session", autouse=True)
def default_node():
    """Start (and end) every session on the default attributes."""
    support.converge_ok({})
    yield
    support.remove_spooled_events()
    support.converge_ok({})


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
