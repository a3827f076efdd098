"""Fleet manifests (fleet.json) for the uwsgi-fleetctl tests: one function
builds them, schema-valid version 1 (what Chef renders), so every test reads
the same contract the tool checks."""
import copy
import getpass

import support  # noqa: F401  (puts files/default on sys.path)
from uwsgi_fleetctl import manifest as manifests

# Harmless executables: a test's process manager runs them instead of a real one.
HARMLESS_COMMANDS = {
    "ready": None,
    "pid": ["/bin/echo", "0"],
    "start": [["/bin/true", "{name}"]],
    "stop": [["/bin/true", "{name}"]],
    "restart": [["/bin/true", "{name}"]],
    "apply": [["/bin/true"], ["/bin/echo", "applied", "{name}"]],
}


def fleet_manifest(**overrides):
    """A version-1 manifest of a two-instance fleet run by this test's user,
    with ``overrides`` in place of its keys; checked against the schema."""
    manifest = {
        "manifest_version": manifests.version(),
        "name": "default",
        "process_manager": "harmless",
        "process_manager_commands": copy.deepcopy(HARMLESS_COMMANDS),
        "ports": [9000, 9001],
        "instance_prefix": "fleet_",
        "instance_name": "fleet_{port}",
        "instance_file": "/nonexistent/fleet_{port}.conf",
        "fifo": "/nonexistent/fifo/{port}.fifo",
        "log": "/nonexistent/log/{port}.log",
        "bind_address": "127.0.0.1",
        "threads": 4,
        "max_conns": 32,
        "listen_backlog": 64,
        "burst_queue_ms": 500,
        "sustained_queue_ms": 100,
        "user": getpass.getuser(),
        "fifo_dir": "/nonexistent/fifo",
        "log_dir": "/nonexistent/log",
        "upstream": "fleet_default",
        "upstream_fail_timeout": 2,
        "site_file": "/etc/nginx/conf.d/fleet_default.conf",
        "listen": 80,
        "listen_address": None,
        "server_name": "_",
        "store_app_config": None,
        "pythonpath": [],
    }
    manifest.update(overrides)
    return manifests.check(manifest, "the test's manifest")
