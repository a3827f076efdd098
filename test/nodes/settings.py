"""Where test nodes live and how they reach the world: every setting once.

Each can be overridden from the environment (documented in
documentation/testing.md, "Test nodes"), for hosts whose layout differs from this one.
"""
import ipaddress
import os
import subprocess

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def makefile_list(name, **variables):
    """A list the Makefile defines, as make expands it (`make print-NAME`), with
    `variables` set (DEBIAN_VERSION of a node image): written there once, for
    make and for these tools."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    result = subprocess.run(["make", "--no-print-directory", "-s", "-C", REPO, f"print-{name}",
                             *[f"{k}={v}" for k, v in variables.items()]], capture_output=True, text=True, env=env)
    if result.returncode != 0 or not result.stdout.split():
        raise LookupError(f"the Makefile gives no {name}: {result.stderr.strip()}")
    return result.stdout.split()


# What of the repository is the cookbook (the rest is tests, bench, docs).
COOKBOOK_PARTS = makefile_list("COOKBOOK_PARTS")

# Images, node roots, the SSH key and the apt cache.
STATE_DIR = os.environ.get("UWSGI_FLEET_NODES_DIR", "/var/cache/uwsgi_fleet/nodes")

# The private network the nodes share with the host (a bridge; the host is .1).
NETWORK = ipaddress.ip_network(os.environ.get("UWSGI_FLEET_NODE_NET", "10.77.0.0/24"))
HOST_ADDRESS = str(NETWORK.network_address + 1)
BRIDGE = "uwf-br0"

# CA certificates a node must trust, as the host does: registries are reached
# through a TLS-intercepting proxy here, and operators behind a corporate proxy
# are in the same place. A directory of *.crt files or a single file.
CA_SOURCE = os.environ.get("UWSGI_FLEET_NODE_CA", "/usr/local/share/ca-certificates")

# The Debian releases a node can run (Kitchen's platform names), each with its
# own image; the tests that pick none run today's stable release.
RELEASES = {"debian-13": "trixie", "debian-12": "bookworm"}
DEFAULT_RELEASE = os.environ.get("UWSGI_FLEET_NODE_RELEASE", "debian-13")

# The Debian mirror of the node images (the mirror apt on this host uses).
MIRROR = os.environ.get("UWSGI_FLEET_DEBIAN_MIRROR", "http://deb.debian.org/debian")

# Port of the host's apt-cacher-ng, which the nodes use as their apt proxy.
APT_PROXY_PORT = 3142

# Chef from the project's Gemfile, installed inside the image (Chef's download site is unreachable).
CHEF_DIR = "/opt/uwsgi_fleet-chef"
CHEF_CLIENT = CHEF_DIR + "/bin/chef-client"

# Set by reaper.py for everything it runs: the nodes a run creates name it in
# node.json ("owner"), so the run's reaper destroys whatever its commands left
# behind, and the next run's reaper what a killed run could not.
OWNER_ENV = "UWSGI_FLEET_NODE_OWNER"

SSH_KEY = os.path.join(STATE_DIR, "id_ed25519")
SSH_CONFIG = os.path.join(STATE_DIR, "ssh_config")
