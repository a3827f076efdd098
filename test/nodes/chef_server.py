"""A Chef Infra Server for the nodes: chef-zero on this host's address on the
node network, knife against it, and plain chef-client runs on nodes.

Used by the server-flow test and the scale-out test, as operators use a real
server: knife uploads the cookbook, roles, environments and data bags; nodes
converge with chef-client (not local mode) and find each other by search.
"""
import contextlib
import json
import os
import socket
import subprocess
import tempfile
import time

import machine
import remote
import settings


def clean_env():
    """The environment without Bundler's variables: binstubs set what they need."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUNDLE_", "BUNDLER_", "GEM_", "RUBY"))}
    env["CHEF_LICENSE"] = "accept-no-persist"
    return env


class ChefZero:
    """chef-zero on settings.HOST_ADDRESS (the nodes reach it there), with a knife config."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.address = settings.HOST_ADDRESS
        self.process = None

    def _free_port(self):
        with socket.socket() as s:
            s.bind((settings.HOST_ADDRESS, 0))
            return s.getsockname()[1]

    def __enter__(self):
        machine.network_up()  # its address is on the nodes' bridge
        self.port = self._free_port()
        self.url = f"http://{self.address}:{self.port}"
        self.process = subprocess.Popen(["bundle", "exec", "chef-zero", "--host", self.address, "--port", str(self.port)],
                                        cwd=settings.REPO, env=clean_env(), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                socket.create_connection((self.address, self.port), timeout=1).close()
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"chef-zero did not listen on {self.address}:{self.port}")
            time.sleep(0.2)
        key = os.path.join(self.workdir, "admin.pem")
        subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
        cookbooks = os.path.join(self.workdir, "cookbooks")
        os.makedirs(cookbooks, exist_ok=True)
        if not os.path.lexists(os.path.join(cookbooks, "uwsgi_fleet")):
            remote.copy_cookbook(os.path.join(cookbooks, "uwsgi_fleet"))
        self.config = os.path.join(self.workdir, "knife.rb")
        with open(self.config, "w") as f:
            f.write(f"chef_server_url '{self.url}'\nnode_name 'admin'\nclient_key '{key}'\n"
                    f"cookbook_path ['{cookbooks}']\nfile_cache_path '{os.path.join(self.workdir, 'cache')}'\n"
                    "chef_license 'accept-no-persist'\n")
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=30)
        machine.network_down_if_unused()
        return False

    def knife(self, *args):
        """Run knife against the server; its stdout (raises with its output on failure)."""
        result = subprocess.run(["bundle", "exec", "knife", *args, "--config", self.config], cwd=settings.REPO,
                                env=clean_env(), capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise AssertionError(f"knife {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result.stdout

    def _file(self, document):
        with tempfile.NamedTemporaryFile("w", suffix=".json", dir=self.workdir, delete=False) as f:
            json.dump(document, f)
        return f.name

    def upload(self, kind, document):
        """Create a role or an environment from a dict (knife role|environment from file)."""
        self.knife(kind, "from", "file", self._file(document))

    def data_bag_item(self, bag, item):
        """Create data bag `bag` (if needed) and its item (a dict with an "id")."""
        if bag not in self.knife("data", "bag", "list").split():
            self.knife("data", "bag", "create", bag)
        self.knife("data", "bag", "from", "file", bag, self._file(item))

    def converge(self, node, name, first_boot, environment="_default", check=True):
        """A plain chef-client run on `node` against this server, as node `name`
        in `environment`, with `first_boot` (run_list and attributes) as -j."""
        node.run("mkdir -p /etc/chef && test -e /etc/chef/client.pem || openssl genrsa -out /etc/chef/client.pem 2048 2>/dev/null")
        node.run("cat > /etc/chef/client.rb", input=f"chef_server_url '{self.url}'\nnode_name '{name}'\n"
                 f"client_key '/etc/chef/client.pem'\nenvironment '{environment}'\nchef_license 'accept-no-persist'\n")
        node.run("cat > /etc/chef/first-boot.json", input=json.dumps(first_boot))
        return node.run(f"{settings.CHEF_CLIENT} --config /etc/chef/client.rb -j /etc/chef/first-boot.json --no-color",
                        check=check, timeout=900)

