"""testinfra specs every suite runs: the converged shape of each fleet on the node.

Each suite's test module imports these. What a fleet should be comes from its
manifest on the node (ports, threads, user, names: computed once, by Chef) and,
for the suites of the default recipe, from kitchen.yml and attributes/default.rb
(test_the_fleet_has_the_suites_shape). `host` is the node over SSH; HTTP goes
from this host to the node's address.
"""
import collections
import os
import re
import shlex
import sys
import urllib.request

# uwsgi-fleetctl's package: the manifest as the tool reads it (checked against
# its schema) and the process manager's commands it carries.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "files", "default"))
from uwsgi_fleetctl import manifest as manifests  # noqa: E402
from uwsgi_fleetctl import process_manager  # noqa: E402

MANIFESTS = "ls /etc/uwsgi_fleet/fleet.json /etc/uwsgi_fleet/*/fleet.json 2>/dev/null || true"


def node_fleets(host):
    """The manifests of every fleet on the node, each checked against the schema."""
    return [manifests.loads(host.file(path).content_string, path) for path in host.check_output(MANIFESTS).split()]


def upstream_servers(host, fleet):
    conf = host.file(fleet["site_file"]).content_string
    block = re.search(r"upstream %s \{(.*?)\}" % re.escape(fleet["upstream"]), conf, re.S).group(1)
    return re.findall(r"^\s*server (\S+)", block, re.M)


def master_pid(host, fleet, port):
    """The instance's master pid, from its process manager: the manifest's pid command (None if not running)."""
    argv = process_manager.ProcessManager(fleet).command("pid", port)
    return process_manager.master_pid(host.check_output(f"{shlex.join(argv)} || true"))


def running_instances(host, fleet):
    """Names of this fleet's instances its process manager runs."""
    pattern = re.compile("^" + re.escape(fleet["instance_name"]).replace(r"\{port\}", r"\d+") + "$")
    if fleet["process_manager"] == "systemd":
        out = host.check_output("systemctl list-units --type=service --state=running --plain --no-legend")
        names = [line.split()[0] for line in out.splitlines() if line.strip()]
    else:
        out = host.check_output("supervisorctl status || true")
        names = [line.split()[0] for line in out.splitlines() if " RUNNING " in f" {line} "]
    return sorted(n for n in names if pattern.match(n))


def proc_children(host, pid):
    return [int(p) for p in host.check_output(f"ps -o pid= --ppid {pid} || true").split()]


def proc_status(host, pid):
    """Fields of /proc/<pid>/status as a dict."""
    text = host.file(f"/proc/{pid}/status").content_string
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def serve_counts(node, fleet, requests=200):
    """{instance: answers} for `requests` GET /_health through nginx, to this fleet's server name."""
    served = collections.Counter()
    name = fleet["server_name"].split()[0]
    headers = {} if name == "_" else {"Host": name}
    for _ in range(requests):
        request = urllib.request.Request(node.url("/_health", port=fleet["listen"]), headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            served[int(response.headers["X-Fleet-Instance"])] += 1
    return served


# -- the specs ------------------------------------------------------------------

def test_the_node_runs_systemd_as_pid_1(host):
    """Kitchen nodes boot like production web nodes: systemd is init."""
    assert host.file("/proc/1/comm").content_string.strip() == "systemd"


def test_nginx_and_the_process_managers_run(host, fleets):
    assert fleets
    assert host.service("nginx").is_running
    assert host.run("nginx -t").rc == 0
    if any(f["process_manager"] == "supervisor" for f in fleets):
        assert host.service("supervisor").is_running


def test_each_upstream_lists_exactly_its_instances(host, fleets):
    for fleet in fleets:
        assert upstream_servers(host, fleet) == [f"{fleet['bind_address']}:{p}" for p in fleet["ports"]], fleet["name"]


def test_the_process_manager_runs_exactly_the_instances(host, fleets):
    for fleet in fleets:
        wanted = sorted(fleet["instance_name"].format(port=p) for p in fleet["ports"])
        assert running_instances(host, fleet) == wanted, fleet["name"]


def test_each_port_listens_on_bind_address_only(host, fleets):
    for fleet in fleets:
        for port in fleet["ports"]:
            assert host.socket(f"tcp://{fleet['bind_address']}:{port}").is_listening, port
            assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening, port


def test_the_port_past_each_fleet_does_not_listen(host, fleets):
    used = {p for f in fleets for p in f["ports"]}
    listening = host.check_output("ss -Hltn")
    for fleet in fleets:
        past = fleet["ports"][-1] + 1
        if past not in used:
            assert not re.search(rf":{past}\s", listening), f"port {past} listens"


def test_each_instance_is_one_worker_with_the_configured_threads(host, fleets):
    for fleet in fleets:
        for port in fleet["ports"]:
            workers = proc_children(host, master_pid(host, fleet, port))
            assert len(workers) == 1, (fleet["name"], port, workers)
            assert int(proc_status(host, workers[0])["Threads"]) == fleet["threads"], (fleet["name"], port)


def test_uwsgi_runs_as_each_fleets_unprivileged_user(host, fleets):
    for fleet in fleets:
        for port in fleet["ports"]:
            master = master_pid(host, fleet, port)
            for pid in [master] + proc_children(host, master):
                uids = proc_status(host, pid)["Uid"].split()  # real, effective, saved, fs
                assert uids[0] != "0" and len(set(uids)) == 1, (fleet["name"], pid, uids)
                assert host.check_output(f"ps -o user:64= -p {pid}") == fleet["user"], (fleet["name"], pid)
    # and no uWSGI on the node runs as root
    assert all(p.euid != 0 for p in host.process.filter(comm="uwsgi"))


def test_every_instance_serves_through_nginx(node, fleets):
    for fleet in fleets:
        assert set(serve_counts(node, fleet)) == set(fleet["ports"]), fleet["name"]


def check_fleet(host, node, fleet):
    """Every shape check above for one fleet, for use after a converge in other tests."""
    for check in (test_each_upstream_lists_exactly_its_instances, test_the_process_manager_runs_exactly_the_instances,
                  test_each_port_listens_on_bind_address_only, test_each_instance_is_one_worker_with_the_configured_threads,
                  test_uwsgi_runs_as_each_fleets_unprivileged_user):
        check(host, [fleet])
    test_every_instance_serves_through_nginx(node, [fleet])


# -- seeded suites ----------------------------------------------------------------
# The nspawn driver converges a seed first and writes when it finished here.
SEEDED_AT = "/var/lib/kitchen-seed/seeded_at"


def started_before_the_suites_converge(host, pid):
    """Whether process `pid` was started by the seed (before the suite's own converge)."""
    now, elapsed = host.check_output(f"date +%s; ps -o etimes= -p {pid}").split()
    return int(now) - int(elapsed) <= int(host.file(SEEDED_AT).content_string)
