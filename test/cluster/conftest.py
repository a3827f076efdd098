"""A scaled-out fleet on fresh nodes, converged through a Chef server with real
search: one Redis node, web nodes that find it, and a balancer that finds them.

chef-zero plays the Chef Infra Server; knife uploads the cookbook, an
environment, three roles and the data bag holding Redis's password; each node
runs a plain chef-client with its role, as an operator bootstraps one.
"""
import contextlib
import json
import os
import secrets
import sys
import threading

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "test", "nodes"))
sys.path.insert(0, os.path.join(REPO, "bench"))

from chef_server import ChefZero  # noqa: E402
from fixtures import fresh_node  # noqa: E402

ENVIRONMENT = "uwsgi_fleet_scale_out"
MANIFEST = "/etc/uwsgi_fleet/fleet.json"  # the default recipe's fleet (uwsgi-fleetctl's default too)
WEB, REDIS, BALANCER = "uwsgi_fleet_web", "uwsgi_fleet_redis", "uwsgi_fleet_balancer"
# Project 1 takes the ordinary load; project 2 has a small limit, to measure the fleet's quota.
QUOTA = {"events_per_second": 20, "burst": 20}


def example_role(name):
    """documentation/examples/roles/<name>.json: the role the documentation ships."""
    with open(os.path.join(REPO, "documentation", "examples", "roles", f"{name}.json")) as f:
        return json.load(f)


class Cluster:
    """The nodes, by name, and how to converge one more."""

    def __init__(self, server, stack):
        self.server, self.stack = server, stack
        self.nodes = {}
        self.projects = {"1": {"public_key": secrets.token_hex(16)},
                         "2": {"public_key": secrets.token_hex(16), "rate_limit": QUOTA}}
        self.redis_password = secrets.token_hex(24)

    def setup_server(self):
        self.server.knife("cookbook", "upload", "uwsgi_fleet")
        self.server.upload("environment", {"name": ENVIRONMENT, "json_class": "Chef::Environment",
                                           "chef_type": "environment", "description": "the scale-out test"})
        # The roles an operator copies from documentation/examples/roles, with this test's projects
        # (fresh keys) and 2 instances per web node (2 shared cores).
        for name in (REDIS, BALANCER):
            self.server.upload("role", example_role(name))
        web = example_role(WEB)
        web["default_attributes"]["uwsgi_fleet"]["web"] = {"processes": 2}
        web["default_attributes"]["uwsgi_fleet"]["app"]["projects"] = self.projects
        self.server.upload("role", web)
        self.server.data_bag_item("uwsgi_fleet", {"id": "redis", "password": self.redis_password})

    def add(self, name, role, attributes=None):
        """Boot a fresh node and converge it with `role` (and node-specific attributes)."""
        node = self.stack.enter_context(fresh_node(name))
        self.nodes[name] = node
        self.converge(name, role, attributes(node) if callable(attributes) else attributes or {})
        return node

    def converge(self, name, role, attributes=None, check=True):
        first_boot = dict(attributes or {}, run_list=[f"role[{role}]"])
        return self.server.converge(self.nodes[name], name, first_boot, ENVIRONMENT, check=check)

    def add_web_nodes(self, *names):
        """Web nodes, booted and converged side by side; each nginx serves on its own address only."""
        nodes = {}
        errors = []

        def one(name):
            try:
                nodes[name] = self.add(name, WEB, lambda node: {"uwsgi_fleet": {"web": {"nginx": {
                    "listen_address": node.address}}}})
            except Exception as e:  # reported below, after every thread ended
                errors.append(e)
        threads = [threading.Thread(target=one, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return [nodes[n] for n in names]

    def web(self):
        return {name: node for name, node in self.nodes.items() if name.startswith("web")}

    def balancer_workers(self):
        """How many nginx workers the balancer runs (each keeps its own upstream connections)."""
        return int(self.nodes["balancer"].output("pgrep -c -f '^nginx: worker process'"))

    def web_threads(self):
        """{web node: its instances x threads}, from each node's fleet manifest: what it can have in flight."""
        threads = {}
        for name, node in self.web().items():
            manifest = json.loads(node.read(MANIFEST))
            threads[name] = len(manifest["ports"]) * manifest["threads"]
        return threads


FIGURES = []  # (scenario, what was measured), printed at the end and written to build/cluster.md


@pytest.fixture
def figures():
    return lambda scenario, text: FIGURES.append((scenario, text))


def pytest_terminal_summary(terminalreporter):
    if not FIGURES:
        return
    table = "\n".join(["| Scenario | Measured |", "|---|---|"] + [f"| {s} | {t} |" for s, t in FIGURES])
    terminalreporter.write_line("\nScale-out scenarios:\n" + table)
    os.makedirs(os.path.join(REPO, "build"), exist_ok=True)
    with open(os.path.join(REPO, "build", "cluster.md"), "w") as f:
        f.write(table + "\n")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(ChefZero(str(tmp_path_factory.mktemp("scale-out"))))
        cluster = Cluster(server, stack)
        cluster.setup_server()
        cluster.add("redis", REDIS, lambda node: {"uwsgi_fleet": {"redis": {"bind_address": node.address}}})
        cluster.add_web_nodes("web1", "web2")
        cluster.add("balancer", BALANCER)
        yield cluster
