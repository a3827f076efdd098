"""The test nodes themselves: a node starts pristine, and destroy leaves nothing."""
import os

import machine
import settings
from remote import Node


def test_a_fresh_node_is_pristine_boots_systemd_and_destroy_leaves_nothing():
    info = machine.create("nodes-selftest")
    try:
        node = Node(info["address"], info["name"])
        assert node.read("/proc/1/comm").strip() == "systemd"
        assert node.output("systemctl is-system-running || true").strip() in ("running", "degraded")
        # Empty apt lists and none of what the cookbook installs: a fresh machine.
        assert node.output("ls /var/lib/apt/lists | grep _Packages || true") == ""
        assert node.run("dpkg -s nginx", check=False).returncode != 0
        assert node.run("dpkg -s supervisor", check=False).returncode != 0
        # Chef from the Gemfile, and the CAs the host trusts (settings.CA_SOURCE).
        assert "Chef Infra Client" in node.output(f"{settings.CHEF_CLIENT} --version")
        bundle = node.read("/etc/ssl/certs/ca-certificates.crt")
        for path in machine.image.ca_files():
            with open(path) as f:
                assert f.read().strip().splitlines()[1] in bundle, path
    finally:
        machine.destroy("nodes-selftest")
    assert machine.leftovers(info) == []
    assert not os.path.exists(info["dir"])
