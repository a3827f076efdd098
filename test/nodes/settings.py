"""Where test nodes live and how they reach the world: every setting once.

Each can be overridden from the environment (documented in the README's
"Test nodes" section), for hosts whose layout differs from this one.
"""
import ipaddress
import os

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

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

# Debian release and mirror of the node image (the mirror apt on this host uses).
SUITE = "bookworm"
MIRROR = os.environ.get("UWSGI_FLEET_DEBIAN_MIRROR", "http://deb.debian.org/debian")

# Port of the host's apt-cacher-ng, which the nodes use as their apt proxy.
APT_PROXY_PORT = 3142

# Chef from the project's Gemfile, installed inside the image (Chef's download site is unreachable).
CHEF_DIR = "/opt/uwsgi_fleet-chef"
CHEF_CLIENT = CHEF_DIR + "/bin/chef-client"

SSH_KEY = os.path.join(STATE_DIR, "id_ed25519")
SSH_CONFIG = os.path.join(STATE_DIR, "ssh_config")
