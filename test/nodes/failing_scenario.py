"""A scenario that fails on purpose, with a node up: test_nodes.py runs it under
reaper.py and ends it in each way a run can end (its assertion fails, SIGINT,
SIGTERM, SIGKILL), then checks that nothing of its node is left. Its name keeps
pytest from collecting it by itself.

SCENARIO_NODE names the node; SCENARIO_READY is written (this pytest's PID)
once the node runs a service of its own; SCENARIO_WAIT is how long to wait for
a signal before failing.
"""
import os
import time

from fixtures import fresh_node


def test_a_scenario_that_fails_with_its_node_up():
    with fresh_node(os.environ["SCENARIO_NODE"]) as node:
        node.run("systemd-run --unit=uwf-scenario-sleeper sleep 600")
        with open(os.environ["SCENARIO_READY"], "w") as f:
            f.write(str(os.getpid()))
        time.sleep(float(os.environ["SCENARIO_WAIT"]))
        assert False, "this scenario fails on purpose"
