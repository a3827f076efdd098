"""An upgrade from the previous release (PREVIOUS_RELEASE, converged by the
driver's seed) to this one, under an open-loop load for the whole converge
(load.py, started and stopped by kitchen.yml's hooks): no request failed, no
accepted event was lost, and the node ends as the default suite does."""
import json
import os
import sys

import pytest

from default_recipe_checks import *  # noqa: F401,F403 (the shared specs run in every suite)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, HERE)
import load as load_hooks  # noqa: E402  (load.py: where kitchen.yml's hooks put this instance's load)

LOAD = os.path.join(load_hooks.instance_dir(os.path.join(REPO, ".kitchen", "upgrade-load"),
                                            os.environ.get("KITCHEN_INSTANCE", "")), "load.json")
SEEDED_FLEETS = "/var/lib/kitchen-seed/uwsgi_fleet"


@pytest.fixture(scope="module")
def load(node):
    with open(LOAD) as f:
        result = json.load(f)
    assert result["address"] == node.address  # this node's converge, not another run's
    return result


def test_the_previous_release_was_converged_first(host):
    # 0.1.0's manifest named its programs by prefix; this release's by format.
    previous = json.loads(host.file(f"{SEEDED_FLEETS}/fleet.json").content_string)
    assert "program_prefix" in previous and "instance_name" not in previous


def test_no_request_failed_during_the_upgrade(load):
    assert load["counts"]["sent"] > 0
    assert load["failures"] == []


def test_every_accepted_event_is_in_the_spool(node, expected, load):
    assert load["accepted"]
    listed = node.output(f"ls -1 {expected.spool_dir}/{load['project']}").split()
    assert set(load["accepted"]) <= {name[:-5] for name in listed if name.endswith(".json")}


def test_nginx_conf_is_debians_again_and_the_fleet_has_its_own_file(host, fleets):
    (fleet,) = fleets
    assert "uwsgi_fleet" not in host.file("/etc/nginx/nginx.conf").content_string.split("\n", 1)[1]
    assert host.file(fleet["site_file"]).exists
