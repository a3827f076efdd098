"""The flow users run: a Chef Infra Server (chef-zero on this host), `knife
cookbook upload`, then a plain chef-client (not local mode) on a fresh node
against it.
"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "test", "nodes"))

import settings  # noqa: E402
from fixtures import fresh_node  # noqa: E402

NODE = "uwsgi-fleet-server-flow"
# Nothing from these may be uploaded as part of the cookbook.
NOT_COOKBOOK = ("vendor/", ".kitchen/", "bench/", "test/", "bin/", ".git/", ".bundle/",
                ".chef-local/", ".pytest_cache/")


def free_port(address):
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def clean_env():
    """The environment without Bundler's variables: binstubs set what they need."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BUNDLE_", "BUNDLER_", "GEM_", "RUBY"))}
    env["CHEF_LICENSE"] = "accept-no-persist"
    return env


def run(args, **kwargs):
    result = subprocess.run(args, cwd=REPO, env=clean_env(), capture_output=True, text=True,
                            timeout=600, **kwargs)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout


def wait_for_port(address, port, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((address, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"chef-zero did not listen on {port}")


@pytest.fixture(scope="module")
def node():
    with fresh_node("server-flow") as node:
        yield node


@pytest.fixture(scope="module")
def chef_server(node, tmp_path_factory):
    """chef-zero on the host's address on the node network, plus a knife/client config pointing at it."""
    work = tmp_path_factory.mktemp("server-flow")
    address = settings.HOST_ADDRESS
    port = free_port(address)
    server = subprocess.Popen(["bundle", "exec", "chef-zero", "--host", address, "--port", str(port)],
                              cwd=REPO, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_for_port(address, port)
        key = work / "client.pem"
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
        cookbooks = work / "cookbooks"
        cookbooks.mkdir()
        (cookbooks / "uwsgi_fleet").symlink_to(REPO)
        config = work / "config.rb"
        config.write_text(
            f"chef_server_url 'http://{address}:{port}'\n"
            f"node_name '{NODE}'\n"
            f"client_key '{key}'\n"
            f"cookbook_path ['{cookbooks}']\n"
            f"file_cache_path '{work / 'cache'}'\n"
            "chef_license 'accept-no-persist'\n")
        yield config
    finally:
        server.terminate()
        server.wait(timeout=30)


def cookbook_version():
    with open(os.path.join(REPO, "metadata.rb")) as f:
        return next(line.split("'")[1] for line in f if line.startswith("version "))


@pytest.fixture(scope="module")
def uploaded(chef_server):
    """The uploaded cookbook's file paths, as the server holds them."""
    run(["bundle", "exec", "knife", "cookbook", "upload", "uwsgi_fleet", "--config", str(chef_server)])
    # The raw API answer lists every stored file (knife's own view hides unknown folders).
    shown = run(["bundle", "exec", "knife", "raw", f"/cookbooks/uwsgi_fleet/{cookbook_version()}",
                 "--config", str(chef_server)])
    manifest = json.loads(shown)
    return [entry["path"] for entry in manifest.get("all_files", [])]


def test_knife_uploads_only_cookbook_files(uploaded):
    assert "recipes/web.rb" in uploaded and "metadata.rb" in uploaded, uploaded
    assert "resources/fleet.rb" in uploaded and "resources/partial/_validated.rb" in uploaded, uploaded
    assert "files/default/store_app/wsgi.py" in uploaded, uploaded
    leaked = [f for f in uploaded if f.startswith(NOT_COOKBOOK) or "__pycache__" in f or f.endswith(".pyc")]
    assert leaked == []


def test_chef_client_on_a_node_against_the_server_converges_and_serves(node, chef_server, uploaded):
    # The node's own client config: same server, the node's name, a key of its own.
    server_url = next(line for line in chef_server.read_text().splitlines() if line.startswith("chef_server_url"))
    node.run("mkdir -p /etc/chef && openssl genrsa -out /etc/chef/client.pem 2048 2>/dev/null")
    node.run("cat > /etc/chef/client.rb", input=f"{server_url}\nnode_name '{NODE}'\n"
             "client_key '/etc/chef/client.pem'\nchef_license 'accept-no-persist'\n")
    out = node.output(f"{settings.CHEF_CLIENT} --config /etc/chef/client.rb --runlist 'recipe[uwsgi_fleet]' --no-color")
    assert "Chef Infra Client finished" in out or "Infra Phase complete" in out
    with urllib.request.urlopen(node.url("/_health"), timeout=10) as response:
        assert response.status == 200
        assert response.headers["X-Fleet-Instance"]
    found = run(["bundle", "exec", "knife", "search", "node", "recipes:uwsgi_fleet*", "--config", str(chef_server),
                 "--format", "json"])
    assert NODE in found
