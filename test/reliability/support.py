"""Load, converges and node facts for the reliability tests.

They run against one fresh node (conftest.py boots it): the load goes from
this host to the node's nginx, converges run chef-client on the node, and
everything else on the node goes over SSH.
"""
import contextlib
import json
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import threading
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "bench"))
sys.path.insert(0, os.path.join(REPO, "test", "integration"))
sys.path.insert(0, os.path.join(REPO, "test", "nodes"))
# uwsgi-fleetctl's package: the manifest as the tool reads it, and its process manager's commands.
sys.path.insert(0, os.path.join(REPO, "files", "default"))

import background_load  # noqa: E402
import loadgen  # noqa: E402
import remote  # noqa: E402
import settings  # noqa: E402
from uwsgi_fleetctl import manifest as manifests  # noqa: E402
from uwsgi_fleetctl import process_manager  # noqa: E402
from uwsgi_fleetctl.process_manager import ProcessManager  # noqa: E402

MANIFEST = "/etc/uwsgi_fleet/fleet.json"
NODE_TOOLS = "/var/tmp/uwsgi_fleet-reliability"
# Small events keep the generator cheap; the sizes still vary.
RELIABILITY_BANDS = ((1.0, 2_000, 30_000),)
# The address the node sees this host's requests come from.
CLIENT_ADDRESS = settings.HOST_ADDRESS

NODE = None  # the remote.Node under test, set by conftest.py
BASE = {}    # the attributes every converge of the session starts from, per node
_BASES = {}


def use_node(node, base=None):
    """Point the helpers at a new `node` (converged with `base` attributes) and give it the node-side tools."""
    _BASES[node.address] = base or {}
    switch_to(node)
    tools = os.path.join(REPO, "build", "reliability-node-tools")
    shutil.rmtree(tools, ignore_errors=True)
    os.makedirs(tools)
    shutil.copy(os.path.join(os.path.dirname(__file__), "on_node.py"), tools)
    # uwsgi-fleetctl's package beside it (on_node.py imports its uwsgi protocol client and manifest loader).
    shutil.copytree(os.path.join(REPO, "files", "default", "uwsgi_fleetctl"), os.path.join(tools, "uwsgi_fleetctl"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    node.put_tree(tools, NODE_TOOLS)


def switch_to(node):
    global NODE, BASE
    NODE, BASE = node, _BASES[node.address]


def manifest():
    """The node's manifest, checked against the schema as uwsgi-fleetctl checks it."""
    return manifests.loads(NODE.read(MANIFEST), f"{NODE.address}:{MANIFEST}")


def store_config():
    """The node's store app config, read where its manifest says (store_app_config)."""
    return json.loads(NODE.read(manifest()["store_app_config"]))


def project():
    """(project id, public key) of the node's first project."""
    projects = store_config()["projects"]
    project_id = sorted(projects)[0]
    return project_id, projects[project_id]["public_key"]


def merged(base, override):
    out = dict(base)
    for key, value in override.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def converge(attributes=None, cookbook=REPO, run_list="recipe[uwsgi_fleet::default]", extra_cookbooks=()):
    """chef-client --local-mode on the node with the session's attributes and `attributes`
    over them; returns the CompletedProcess."""
    return NODE.converge(merged(BASE, attributes or {}), run_list=run_list, cookbook=cookbook,
                         extra_cookbooks=extra_cookbooks, check=False, timeout=600)


def converge_ok(attributes=None, cookbook=REPO, **kwargs):
    result = converge(attributes, cookbook, **kwargs)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    return result


def cookbook_copy(tmp_path):
    """A copy of the cookbook that a test may change (e.g. new app code)."""
    return pathlib.Path(remote.copy_cookbook(str(tmp_path / "uwsgi_fleet")))


LOADS = []  # every Load of the session, so their events can be removed at the end


def spooled_ids(project_id):
    """Event ids in the node's spool for `project_id` (one listing over SSH)."""
    directory = shlex.quote(os.path.join(spool_dir(), project_id))
    names = NODE.output(f"ls -1 {directory} 2>/dev/null || true").split()
    return {n[:-5] for n in names if n.endswith(".json")}


def spool_dir():
    return store_config()["spool_dir"]


def remove_spooled_events():
    """Delete the events this node's loads stored (they are test data, not to pile up)."""
    spool = spool_dir()
    for load in [load for load in LOADS if load.node is NODE]:
        ids = set(load.run.accepted_event_ids()) if load.run else set()
        if ids:
            NODE.run(f"cd {shlex.quote(os.path.join(spool, load.project_id))} && xargs rm -f",
                     input="\n".join(f"{e}.json" for e in ids))
        LOADS.remove(load)


class Load(background_load.BackgroundLoad):
    """An open-loop store load from this host to the node's nginx, for as long as the `with` block runs."""

    def __init__(self, rate=40, max_seconds=300, seed=7, bands=RELIABILITY_BANDS):
        project_id, key = project()
        self.node = NODE
        # Bodies cycle, but every request carries a new event_id (loadgen.Payload.fresh_body).
        super().__init__(NODE.address, manifest()["listen"], project_id, key,
                         loadgen.make_payloads(200, seed=seed, bands=bands), rate=rate, max_seconds=max_seconds)
        LOADS.append(self)

    def lost_events(self):
        """Event ids answered 200 but not in the node's spool."""
        return sorted(set(self.accepted_event_ids()) - spooled_ids(self.project_id))


def on_node(*args, background=False):
    """Run on_node.py on the node: its parsed JSON answer, or the Popen when in the background."""
    command = NODE.ssh(f"cd {NODE_TOOLS} && python3 on_node.py {' '.join(shlex.quote(str(a)) for a in args)}")
    if background:
        return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True, timeout=120).stdout)


def instance_health(port):
    """/_health of one instance straight from its socket (on the node), as a dict, or None."""
    return on_node("health", port)[str(port)]


def all_instances_serve(ports=None):
    ports = ports or manifest()["ports"]
    return all(on_node("health", *ports).values())


def instance_names(ports):
    pm = ProcessManager(manifest())
    return [pm.name(port) for port in ports]


def master_pid(port):
    """The instance's master pid from its process manager (the manifest's pid command), or None while it is
    not running."""
    pm = ProcessManager(manifest())
    return process_manager.master_pid(NODE.output(f"{shlex.join(pm.command('pid', port))} || true"))


def program_pids(port):
    """(master, [workers]) of the instance on port."""
    master = master_pid(port)
    workers = [int(p) for p in NODE.output(f"ps -o pid= --ppid {master} || true").split()] if master else []
    return master, workers


def perform(operation, ports):
    """The manifest's `operation` commands (process_manager_commands) for each of `ports`, in one SSH call."""
    pm = ProcessManager(manifest())
    NODE.run(" && ".join(shlex.join(argv) for port in ports for argv in pm.steps(operation, port)))


def stop_instances(ports):
    """Stop instances the way an operator does (the process manager's stop): gracefully."""
    perform("stop", ports)


def start_instances(ports):
    perform("start", ports)


def running_instances():
    """{instance name: master pid} of every running instance of the fleet."""
    return {name: master_pid(port) for port, name in zip(manifest()["ports"], instance_names(manifest()["ports"]))}


def sha_of(paths):
    """{path: sha256} of files on the node."""
    out = NODE.output("sha256sum " + " ".join(shlex.quote(p) for p in paths))
    return {line.split()[1]: line.split()[0] for line in out.splitlines()}


def wait_for(predicate, timeout, interval=0.05):
    """Poll until predicate() is true; return the seconds it took (raises after timeout)."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
    return time.monotonic() - start


@contextlib.contextmanager
def restored_defaults():
    """Whatever a test converges, the node ends on the default attributes."""
    try:
        yield
    finally:
        converge_ok()


def http_status(path, timeout=5):
    """Status of GET path through the node's nginx, 0 if it does not answer."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(NODE.url(path, port=manifest()["listen"]), timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


class GetLoad:
    """GET `path` through the node's nginx to server name `host_name`, `rate` a second,
    for as long as the `with` block runs: [(status, X-Fleet-Instance)], 0 for a
    connection error. For fleets that run another app than the store."""

    def __init__(self, host_name, rate=20, path="/_health"):
        import urllib.request
        self.request = urllib.request.Request(NODE.url(path), headers={"Host": host_name})
        self.interval = 1.0 / rate
        self.answers = []
        self.stop = threading.Event()

    def _one(self):
        import urllib.error
        import urllib.request
        try:
            with urllib.request.urlopen(self.request, timeout=30) as r:
                self.answers.append((r.status, r.headers.get("X-Fleet-Instance")))
        except urllib.error.HTTPError as e:
            self.answers.append((e.code, e.headers.get("X-Fleet-Instance")))
        except OSError:
            self.answers.append((0, None))

    def __enter__(self):
        def drive():
            due = time.monotonic()
            while not self.stop.is_set():
                threading.Thread(target=self._one, daemon=True).start()
                due += self.interval
                self.stop.wait(max(0.0, due - time.monotonic()))
        self.thread = threading.Thread(target=drive, daemon=True)
        self.thread.start()
        time.sleep(1.0)
        return self

    def __exit__(self, *exc):
        time.sleep(1.0)
        self.stop.set()
        self.thread.join(timeout=10)
        time.sleep(1.0)  # the last requests come back
        return False
