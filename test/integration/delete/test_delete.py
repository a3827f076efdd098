"""The api fleet of test::two_fleets deleted (test::delete): nothing of it
remains on the node, and the store fleet keeps serving. What "it" is comes
from its manifest as the seed left it (the driver keeps a copy)."""
import json
import os

import pytest

from fleet_checks import *  # noqa: F401,F403 (the shared specs run in every suite)

SEEDED_FLEETS = "/var/lib/kitchen-seed/uwsgi_fleet"
DELETED = "api"  # what test::delete deletes


@pytest.fixture(scope="module")
def deleted(host):
    return json.loads(host.file(f"{SEEDED_FLEETS}/{DELETED}/fleet.json").content_string)


def test_only_the_other_fleet_is_left(fleets, deleted):
    assert [f["name"] for f in fleets] == ["store"]
    assert deleted["name"] == DELETED


def test_none_of_its_files_remain(host, deleted):
    for path in (deleted["site_file"], deleted["fifo_dir"], deleted["log_dir"], f"/etc/uwsgi_fleet/{DELETED}"):
        assert not host.file(path).exists, path
    for port in deleted["ports"]:
        assert not host.file(deleted["instance_file"].format(port=port)).exists, port


def test_none_of_its_programs_ports_upstream_or_processes_remain(host, deleted):
    status = host.check_output("supervisorctl status || true")
    listening = [line.split()[3] for line in host.check_output("ss -Hltn").splitlines()]
    for port in deleted["ports"]:
        assert deleted["instance_name"].format(port=port) not in status
        assert not any(address.endswith(f":{port}") for address in listening), port
    assert f"upstream {deleted['upstream']} " not in host.check_output("nginx -T 2>/dev/null")
    assert host.run(f"pgrep -u {deleted['user']} uwsgi").rc != 0
    assert os.path.basename(deleted["site_file"]) not in host.check_output("ls /etc/nginx/conf.d")
