"""The init-script path: a node without systemd, like this host (PID 1 is not an
init system, and policy-rc.d keeps package installs from starting services).
`make converge` on such a machine must keep working."""
import json
import urllib.request

import pytest

from fixtures import fresh_node


@pytest.fixture(scope="module")
def node():
    with fresh_node("no-systemd", init="none") as node:
        yield node


@pytest.fixture(scope="module")
def converged(node):
    first = node.converge({})
    second = node.converge({})
    return first, second


def test_pid_1_is_not_systemd(node):
    assert node.read("/proc/1/comm").strip() != "systemd"
    assert node.run("systemctl is-system-running", check=False).returncode != 0


def test_the_default_converges_twice_and_the_second_changes_nothing(converged):
    first, second = converged
    assert "Infra Phase complete" in first.stdout
    assert "Infra Phase complete, 0/" in second.stdout, second.stdout[-3000:]


def test_services_run_under_their_init_scripts(node, converged):
    assert node.run("/etc/init.d/nginx status", check=False).returncode == 0
    assert node.run("/etc/init.d/supervisor status", check=False).returncode == 0
    manifest = json.loads(node.read("/etc/uwsgi_fleet/fleet.json"))
    status = node.output("supervisorctl status")
    for port in manifest["ports"]:
        assert f"uwsgi_fleet_{port}" in status and "RUNNING" in status


def test_every_instance_serves_from_another_host(node, converged):
    manifest = json.loads(node.read("/etc/uwsgi_fleet/fleet.json"))
    served = set()
    for _ in range(50):
        with urllib.request.urlopen(node.url("/_health", port=manifest["listen"]), timeout=10) as response:
            assert response.status == 200
            served.add(int(response.headers["X-Fleet-Instance"]))
    assert served == set(manifest["ports"])
