"""Reliability tests run against fresh nodes, each scenario under an open-loop
load from this host. The scenarios about how instances run (kill -9, rolling
deploy, resize, graceful stop) run once per process manager, each on a node of
its own; the hostile-input ones once, on the supervisor node.

Each scenario adds a row (requests sent, 2xx, other, connection errors, lost
events, recovery) to a table printed at the end and written to
build/reliability.md, which documentation/reliability.md quotes.
"""
import contextlib
import os

import pytest

import support
from fixtures import fresh_node  # test/nodes, on the path through support

ROWS = []
PROCESS_MANAGERS = ("supervisor", "systemd")


@pytest.fixture(scope="session")
def nodes():
    """node_for(process manager): a fresh node converged with the default recipe
    and that process manager, made on first use, destroyed at the end."""
    made = {}
    with contextlib.ExitStack() as stack:
        def node_for(process_manager):
            if process_manager not in made:
                node = stack.enter_context(fresh_node(f"reliability-{process_manager}"))
                support.use_node(node, {"uwsgi_fleet": {"web": {"process_manager": process_manager}}})
                support.converge_ok()
                made[process_manager] = node
            support.switch_to(made[process_manager])
            return made[process_manager]
        yield node_for
        for node in made.values():
            support.switch_to(node)
            support.remove_spooled_events()


@pytest.fixture(params=PROCESS_MANAGERS)
def process_manager(request, nodes):
    """Runs the test once per process manager, on that manager's node."""
    nodes(request.param)
    return request.param


@pytest.fixture
def supervisor_node(nodes):
    return nodes("supervisor")


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
