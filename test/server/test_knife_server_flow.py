"""The flow users run: a Chef Infra Server (chef-zero on this host), `knife
cookbook upload`, then a plain chef-client (not local mode) on a fresh node
against it.
"""
import json
import os
import sys
import urllib.request

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "test", "nodes"))

from chef_server import ChefZero  # noqa: E402
from fixtures import fresh_node  # noqa: E402

NODE = "uwsgi-fleet-server-flow"
# Nothing from these may be uploaded as part of the cookbook.
NOT_COOKBOOK = ("vendor/", ".kitchen/", "bench/", "test/", "bin/", ".git/", ".bundle/",
                ".chef-local/", ".pytest_cache/")


@pytest.fixture(scope="module")
def node():
    with fresh_node("server-flow") as node:
        yield node


@pytest.fixture(scope="module")
def chef_server(node, tmp_path_factory):
    with ChefZero(str(tmp_path_factory.mktemp("server-flow"))) as server:
        yield server


def cookbook_version():
    with open(os.path.join(REPO, "metadata.rb")) as f:
        return next(line.split("'")[1] for line in f if line.startswith("version "))


@pytest.fixture(scope="module")
def uploaded(chef_server):
    """The uploaded cookbook's file paths, as the server holds them."""
    chef_server.knife("cookbook", "upload", "uwsgi_fleet")
    # The raw API answer lists every stored file (knife's own view hides unknown folders).
    manifest = json.loads(chef_server.knife("raw", f"/cookbooks/uwsgi_fleet/{cookbook_version()}"))
    return [entry["path"] for entry in manifest.get("all_files", [])]


def test_knife_uploads_only_cookbook_files(uploaded):
    assert "recipes/web.rb" in uploaded and "metadata.rb" in uploaded, uploaded
    assert "resources/fleet.rb" in uploaded and "resources/partial/_chef_property_checks_off.rb" in uploaded, uploaded
    # cors.json and shed.json too: libraries/nginx.rb reads them when Chef loads the libraries.
    assert "files/default/store_app/wsgi.py" in uploaded and {"files/default/store_app/cors.json", "files/default/store_app/shed.json"} <= set(uploaded), uploaded
    leaked = [f for f in uploaded if f.startswith(NOT_COOKBOOK) or "__pycache__" in f or f.endswith(".pyc")]
    assert leaked == []


def test_chef_client_on_a_node_against_the_server_converges_and_serves(node, chef_server, uploaded):
    out = chef_server.converge(node, NODE, {"run_list": ["recipe[uwsgi_fleet]"]}).stdout
    assert "Chef Infra Client finished" in out or "Infra Phase complete" in out
    with urllib.request.urlopen(node.url("/_health"), timeout=10) as response:
        assert response.status == 200
        assert response.headers["X-Fleet-Instance"]
    found = chef_server.knife("search", "node", "recipes:uwsgi_fleet*", "--format", "json")
    assert NODE in found
