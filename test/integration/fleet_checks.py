"""testinfra specs every suite runs: the converged shape of the web tier.

Each suite's test_fleet.py imports these; expected values come from the
`expected` fixture (kitchen.yml + attributes/default.rb). `host` is the
suite's node over SSH; HTTP goes from this host to the node's address.
"""
import collections
import re
import urllib.request

UPSTREAM = re.compile(r"upstream uwsgi_fleet \{(.*?)\}", re.S)


def uwsgi_programs(host):
    """{program: (state, pid)} for every uwsgi_fleet_* program supervisor knows."""
    out = host.check_output("supervisorctl status || true")
    programs = {}
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0].startswith("uwsgi_fleet_"):
            pid = int(fields[3].rstrip(",")) if fields[1] == "RUNNING" else None
            programs[fields[0]] = (fields[1], pid)
    return programs


def proc_children(host, pid):
    out = host.check_output(f"ps -o pid= --ppid {pid} || true")
    return [int(p) for p in out.split()]


def proc_status(host, pid):
    """Fields of /proc/<pid>/status as a dict."""
    text = host.file(f"/proc/{pid}/status").content_string
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def test_the_node_runs_systemd_as_pid_1(host):
    """Kitchen nodes boot like production web nodes: systemd is init."""
    assert host.file("/proc/1/comm").content_string.strip() == "systemd"


def test_nginx_and_supervisor_run(host):
    assert host.service("nginx").is_running
    assert host.service("supervisor").is_running
    assert host.run("nginx -t").rc == 0


def test_upstream_lists_exactly_the_instances(host, expected):
    conf = host.file("/etc/nginx/nginx.conf").content_string
    upstreams = UPSTREAM.findall(conf)
    assert len(upstreams) == 1
    servers = re.findall(r"^\s*server (\S+)", upstreams[0], re.M)
    assert servers == [f"{expected.bind_address}:{port}" for port in expected.ports]


def test_supervisor_runs_exactly_the_instances(host, expected):
    programs = uwsgi_programs(host)
    assert set(programs) == set(expected.programs)
    assert all(state == "RUNNING" for state, _ in programs.values()), programs


def test_each_port_listens_on_bind_address_only(host, expected):
    for port in expected.ports:
        assert host.socket(f"tcp://{expected.bind_address}:{port}").is_listening, port
        assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening, port


def test_ports_beyond_the_fleet_do_not_listen(host, expected):
    listening = host.check_output("ss -Hltn")
    for port in expected.unused_ports:
        assert not re.search(rf":{port}\s", listening), f"port {port} still listens"


def test_each_instance_is_one_worker_with_the_configured_threads(host, expected):
    for name, (_, master) in uwsgi_programs(host).items():
        workers = proc_children(host, master)
        assert len(workers) == 1, f"{name}: workers {workers}"
        assert int(proc_status(host, workers[0])["Threads"]) == expected.threads, name


def test_uwsgi_runs_as_the_unprivileged_user(host, expected):
    for name, (_, master) in uwsgi_programs(host).items():
        for pid in [master] + proc_children(host, master):
            uids = proc_status(host, pid)["Uid"].split()  # real, effective, saved, fs
            assert uids[0] != "0" and len(set(uids)) == 1, (name, pid, uids)
            assert host.check_output(f"ps -o user:64= -p {pid}") == expected.user, (name, pid)
    # and no uWSGI on this host runs as root
    assert all(p.euid != 0 for p in host.process.filter(comm="uwsgi"))


def test_every_instance_serves_through_nginx(node_url, expected):
    served = collections.Counter()
    for _ in range(200):
        with urllib.request.urlopen(f"{node_url}/_health", timeout=10) as response:
            assert response.status == 200
            served[int(response.headers["X-Fleet-Instance"])] += 1
    assert set(served) == set(expected.ports), served


def check_exact_shape(host, expected, node_url):
    """Every shape check above, for use after a converge in other tests."""
    test_nginx_and_supervisor_run(host)
    test_upstream_lists_exactly_the_instances(host, expected)
    test_supervisor_runs_exactly_the_instances(host, expected)
    test_each_port_listens_on_bind_address_only(host, expected)
    test_ports_beyond_the_fleet_do_not_listen(host, expected)
    test_each_instance_is_one_worker_with_the_configured_threads(host, expected)
    test_uwsgi_runs_as_the_unprivileged_user(host, expected)
    test_every_instance_serves_through_nginx(node_url, expected)
