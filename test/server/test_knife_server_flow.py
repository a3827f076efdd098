"""The flow users run: a Chef Infra Server (chef-zero on loopback), `knife
cookbook upload`, then a plain chef-client (not local mode) against it.

Converges THIS machine with the default attributes.
"""
import json
import os
import socket
import subprocess
import time
import urllib.request

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NODE = "uwsgi-fleet-server-flow"
# Nothing from these may be uploaded as part of the cookbook.
NOT_COOKBOOK = ("vendor/", ".kitchen/", "bench/", "test/", "bin/", ".git/", ".bundle/",
                ".chef-local/", ".pytest_cache/")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
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


def wait_for_port(port, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"chef-zero did not listen on {port}")


@pytest.fixture(scope="module")
def chef_server(tmp_path_factory):
    """chef-zero on a loopback port, plus a knife/client config pointing at it."""
    work = tmp_path_factory.mktemp("server-flow")
    port = free_port()
    server = subprocess.Popen(["bundle", "exec", "chef-zero", "--host", "127.0.0.1", "--port", str(port)],
                              cwd=REPO, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port)
        key = work / "client.pem"
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
        cookbooks = work / "cookbooks"
        cookbooks.mkdir()
        (cookbooks / "uwsgi_fleet").symlink_to(REPO)
        config = work / "config.rb"
        config.write_text(
            f"chef_server_url 'http://127.0.0.1:{port}'\n"
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
    assert "files/default/store_app/wsgi.py" in uploaded, uploaded
    leaked = [f for f in uploaded if f.startswith(NOT_COOKBOOK) or "__pycache__" in f or f.endswith(".pyc")]
    assert leaked == []


def test_chef_client_against_the_server_converges_and_serves(chef_server, uploaded):
    out = run([os.path.join(REPO, "bin", "chef-client"), "--config", str(chef_server),
               "--runlist", "recipe[uwsgi_fleet]"])
    assert "Chef Infra Client finished" in out or "Infra Phase complete" in out
    with urllib.request.urlopen("http://127.0.0.1/_health", timeout=10) as response:
        assert response.status == 200
        assert response.headers["X-Fleet-Instance"]
    found = run(["bundle", "exec", "knife", "search", "node", "recipes:uwsgi_fleet*", "--config", str(chef_server),
                 "--format", "json"])
    assert NODE in found
