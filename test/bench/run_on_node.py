#!/usr/bin/python3
"""run_on_node.py [PYTEST ARGS]: the bench smoke test (test/bench) on a fresh node.

The harness runs where the fleet runs: it builds its topologies from the
converged node's manifest and files. `make test` must not converge this host,
so this boots a fresh node, converges the default recipe on it, installs the
harness's Debian packages there, copies the harness, its test and the app
code (the floors run it), runs pytest on the node, and destroys the node.
"""
import os
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "test", "nodes"))

from fixtures import fresh_node  # noqa: E402

# The Makefile's APT_BENCH (what `make bench` installs): the harness records the
# version of every topology's server, gunicorn's included, even in --smoke.
PACKAGES = os.environ.get("APT_BENCH")
PARTS = ["bench", "test/bench", "files/default", "pytest.ini"]
WORKDIR = "/root/uwsgi_fleet"


def main(pytest_args):
    if not PACKAGES:
        sys.exit("run_on_node.py: APT_BENCH is not set: run it as `make bench-smoke`, which passes the Makefile's list")
    with fresh_node("bench-smoke") as node:
        node.converge({})
        node.run(f"DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {PACKAGES} >/dev/null")
        node.put_tree(REPO, WORKDIR, PARTS, excludes=("__pycache__", "*.pyc", "bench/results"))
        command = f"cd {WORKDIR} && /usr/bin/python3 -m pytest -q {' '.join(pytest_args)} test/bench"
        return subprocess.run(node.ssh(command)).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
