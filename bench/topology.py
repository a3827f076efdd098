"""The topologies' lifecycle: started on loopback ports of their own from the
converged fleet's files (fleet.py, render.py), stopped and cleaned up after each
block. Nothing here changes the node. Each process runs in a process group of
its own, and stop() kills whole groups; groups left by a harness that was
itself SIGKILLed are killed by reap_stale() on the next run."""
import contextlib
import fcntl
import grp
import http.client
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time

import procfs
import render

BENCH_ROOT = "/var/tmp/uwsgi_fleet_bench"
STATE_FILE = os.path.join(BENCH_ROOT, "process-groups.json")
NGINX = "/usr/sbin/nginx"
LOOPBACK = render.LOOPBACK

# The topologies, one row each: this table is the only place they differ.
#   server:       what runs the app: "uwsgi" (nginx uwsgi_pass) or "gunicorn" (nginx proxy_pass)
#   per_instance: True: one server of 1 process x T threads per instance, which
#                 nginx balances; False: one server of N processes x T threads
#   balance:      keep the rendered balancing directive (False: nginx round robin)
#   args:         extra server arguments
TOPOLOGIES = {
    "fleet": dict(description="the cookbook's topology as rendered: nginx (rendered balancing method) -> "
                              "N uWSGI instances x (1 process, T threads)",
                  server="uwsgi", per_instance=True, balance=True, args=()),
    "fleet-rr": dict(description="as fleet, balancing directive removed (nginx round robin)",
                     server="uwsgi", per_instance=True, balance=False, args=()),
    "single": dict(description="nginx -> one uWSGI with --processes N --threads T (same other flags)",
                   server="uwsgi", per_instance=False, balance=True, args=()),
    "single-thunder": dict(description="as single, plus --thunder-lock",
                           server="uwsgi", per_instance=False, balance=True, args=("--thunder-lock",)),
    "gunicorn": dict(description="nginx proxy_pass -> gunicorn, N gthread workers x T threads",
                     server="gunicorn", per_instance=False, balance=True, args=()),
}
ORDER = tuple(TOPOLOGIES)


class BenchError(RuntimeError):
    pass


# -- process groups -------------------------------------------------------------

def _state(entries=None):
    """The process groups this harness started [{pgid, start}] (read, or write `entries`)."""
    if entries is not None:
        with open(STATE_FILE + ".tmp", "w") as f:
            json.dump(entries, f)
        return os.replace(STATE_FILE + ".tmp", STATE_FILE)
    with contextlib.suppress(OSError, ValueError), open(STATE_FILE) as f:
        return json.load(f)
    return []


def _record(pgid, add=True):
    st = procfs.stat(pgid) if add else None
    _state([e for e in _state() if e["pgid"] != pgid] + ([{"pgid": pgid, "start": st["start"]}] if st else []))


def kill_groups(pgids, grace=5.0):
    """SIGINT the groups at once (an immediate stop for nginx, uWSGI and
    gunicorn), SIGKILL what is left after `grace` seconds, and wait until they are gone."""
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGKILL, 5.0)):
        for pgid in pgids:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        while any(map(procfs.group_pids, pgids)) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not any(map(procfs.group_pids, pgids)):
            return


def reap_stale():
    """Kill the process groups a previous (killed) harness left behind."""
    killed = [e["pgid"] for e in _state() if (procfs.stat(e["pgid"]) or {}).get("start") == e["start"]]
    kill_groups(killed, grace=1.0)
    _state([])
    return killed


def acquire_lock():
    """One harness at a time: the work dirs and ports are fixed."""
    os.makedirs(BENCH_ROOT, exist_ok=True)
    f = open(os.path.join(BENCH_ROOT, "lock"), "w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise BenchError(f"another bench run is in progress (lock on {BENCH_ROOT}/lock)") from None
    return f


def _listening(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((LOOPBACK, port)) == 0


class Proc:
    """One server in a session (process group) of its own, at nice 0 even when
    the harness (the load generator) runs with a raised priority."""

    def __init__(self, label, argv, *, log_path, user=None, cwd=None, env=None):
        self.label, self.log_path, pw = label, log_path, user and pwd.getpwnam(user)
        kwargs = pw and dict(user=pw.pw_uid, group=pw.pw_gid,
                             extra_groups=[g.gr_gid for g in grp.getgrall() if user in g.gr_mem]) or {}
        with open(log_path, "ab") as log:
            self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          cwd=cwd, env=env, start_new_session=True,
                                          preexec_fn=lambda: os.setpriority(os.PRIO_PROCESS, 0, 0), **kwargs)
        self.pgid = self.popen.pid
        _record(self.pgid)

    def pids(self):
        return procfs.group_pids(self.pgid)

    def log_tail(self, lines=20):
        with open(self.log_path, "rb") as f:
            return b"".join(f.readlines()[-lines:]).decode("utf-8", "replace")


# -- a topology -------------------------------------------------------------------

def app_config(fleet, spool_dir, project_id, public_key, hops, hop_ms):
    """The node's app config with the bench's own project, spool and quota state
    (a node-local bucket), the simulated auth/quota hops set, and a rate limit
    that never triggers."""
    return dict(fleet.store_app, spool_dir=spool_dir, simulated_hops=hops, simulated_hop_ms=hop_ms,
                quota={"backend": "local", "state_file": os.path.join(spool_dir, ".quota")},
                stream=None, projects={project_id: {"public_key": public_key, "rate_limit": {
                    "events_per_second": 1_000_000, "burst": 10_000_000}}})


class Topology:
    """Start with start(), stop with stop() (always, in a finally)."""

    def __init__(self, name, fleet, *, processes, threads, port_base, log_dir, project_id="42", hops=3, hop_ms=2):
        self.name, self.fleet, self.processes, self.threads = name, fleet, processes, threads
        self.spec = TOPOLOGIES[name]
        self.listen_port = port_base
        self.backend_ports = [port_base + 1 + i for i in range(processes if self.spec["per_instance"] else 1)]
        if self.backend_ports[-1] > 10999:
            raise BenchError("ports past 10999: lower --processes or --port-base")
        self.workdir = os.path.join(BENCH_ROOT, name)
        self.spool_dir, self.run_dir = os.path.join(self.workdir, "spool"), os.path.join(self.workdir, "run")
        self.nginx_dir = os.path.join(self.workdir, "nginx")
        self.config_path = os.path.join(self.run_dir, "store_app.json")
        self.log_dir, self.project_id, self.hops, self.hop_ms = log_dir, project_id, hops, hop_ms
        self.public_key = secrets.token_hex(16)
        self.host, self.procs, self.commands = LOOPBACK, [], {}
        # X-Fleet-Instance values: i<k> for fleet's instances, w<k> for the workers of one server.
        self.labels = tuple(f"i{k}" if self.spec["per_instance"] else f"w{k + 1}" for k in range(processes))

    def _prepare(self):
        pw = pwd.getpwnam(self.fleet.user)
        shutil.rmtree(self.workdir, ignore_errors=True)
        os.makedirs(BENCH_ROOT, mode=0o755, exist_ok=True)
        for path, owner, mode in ((self.workdir, None, 0o755), (self.spool_dir, pw, 0o750),
                                  (self.run_dir, pw, 0o750), (self.nginx_dir, None, 0o755)):
            os.makedirs(path, mode=mode)
            os.chmod(path, mode)
            if owner:
                os.chown(path, owner.pw_uid, owner.pw_gid)
        cfg = app_config(self.fleet, self.spool_dir, self.project_id, self.public_key, self.hops, self.hop_ms)
        for path, text in ((self.config_path, json.dumps(cfg, indent=2)),
                           (os.path.join(self.run_dir, "bench_worker_tag.py"), render.WORKER_TAG_PY)):
            with open(path, "w") as f:
                f.write(text)
            os.chown(path, 0, pw.pw_gid)
            os.chmod(path, 0o640)

    def backend_commands(self):
        """[(label, argv)] of the app servers, as the topology's row says."""
        instances, spec = self.fleet.instances, self.spec
        fifo = lambda port: os.path.join(self.run_dir, f"{port}.fifo")  # noqa: E731
        if spec["per_instance"]:
            # Past the rendered count (--processes), the first instance's command.
            return [(f"i{i}", render.rewrite_uwsgi(instances[min(i, len(instances) - 1)]["argv"], port=port,
                                                   fifo=fifo(port), config=self.config_path, instance=f"i{i}",
                                                   processes=1, threads=self.threads) + list(spec["args"]))
                    for i, port in enumerate(self.backend_ports)]
        port, base = self.backend_ports[0], instances[0]["argv"]
        tag = os.path.join(self.run_dir, "bench_worker_tag.py")    # labels each worker w<k> in X-Fleet-Instance
        if spec["server"] == "gunicorn":
            argv = render.gunicorn_argv(base, port=port, processes=self.processes, threads=self.threads,
                                        config=self.config_path, conf_py=tag)
        else:
            argv = render.rewrite_uwsgi(base, port=port, fifo=fifo(port), config=self.config_path, instance="w0",
                                        processes=self.processes, threads=self.threads)
            argv += ["--pythonpath", self.run_dir, "--import", "bench_worker_tag"]
        return [("i0", argv + list(spec["args"]))]

    def start(self, timeout=20.0):
        busy = [p for p in [self.listen_port] + self.backend_ports if _listening(p)]
        if busy:
            raise BenchError(f"{self.name}: ports already in use: {busy}")
        self._prepare()
        conf = os.path.join(self.nginx_dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(render.render_nginx(self.fleet.nginx_conf, listen_port=self.listen_port,
                                        backend_ports=self.backend_ports, workdir=self.nginx_dir,
                                        balance=self.spec["balance"], proxy=self.spec["server"] == "gunicorn",
                                        conns_scale=1 if self.spec["per_instance"] else self.processes))
        nginx = [NGINX, "-c", conf, "-e", os.path.join(self.nginx_dir, "error.log"), "-g", "daemon off;"]
        check = subprocess.run(nginx[:-2] + ["-t", "-q"], capture_output=True, text=True)
        if check.returncode:
            raise BenchError(f"{self.name}: nginx -t failed: {check.stderr.strip()}")
        self.commands = {"nginx": nginx, "backends": dict(self.backend_commands())}
        user, cwd = self.fleet.user, self.fleet.instances[0]["cwd"]
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/nonexistent",
               "USER": user, "LOGNAME": user}
        for label, argv in self.commands["backends"].items():
            self.procs.append(("backend", Proc(label, argv, log_path=os.path.join(self.log_dir, f"{self.name}-{label}.log"),
                                               user=user, cwd=cwd, env=env)))
        self.procs.append(("nginx", Proc("nginx", nginx, log_path=os.path.join(self.log_dir, f"{self.name}-nginx.log"))))
        deadline = time.monotonic() + timeout
        for port in self.backend_ports + [self.listen_port]:
            while not _listening(port):
                dead = [p for _, p in self.procs if p.popen.poll() is not None]
                if dead:
                    raise BenchError(f"{self.name}: {dead[0].label} exited at start:\n{dead[0].log_tail()}")
                if time.monotonic() > deadline:
                    raise BenchError(f"{self.name}: port {port} not listening after {timeout}s")
                time.sleep(0.05)

    def check_alive(self):
        dead = [p.label for _, p in self.procs if p.popen.poll() is not None]
        if dead:
            raise BenchError(f"{self.name}: died during the run: {dead}")

    def health(self):
        """/_health through nginx: which code the app servers run ({} when it does not say)."""
        conn = http.client.HTTPConnection(self.host, self.listen_port, timeout=5)
        try:
            conn.request("GET", "/_health")
            return json.loads(conn.getresponse().read())
        except (OSError, ValueError, http.client.HTTPException):
            return {}
        finally:
            conn.close()

    def stop(self):
        """nginx first, then the app servers, all at once (a uWSGI master takes
        a second to act on SIGINT: SIGKILL after 0.2 s; their work is thrown away)."""
        for kind, grace in (("nginx", 5.0), ("backend", 0.2)):
            procs = [p for k, p in self.procs if k == kind]
            kill_groups([p.pgid for p in procs], grace)
            for p in procs:
                p.popen.wait()
                _record(p.pgid, add=False)
        self.procs = []
        shutil.rmtree(self.workdir, ignore_errors=True)

    def clean_spool(self):
        """Delete the events (~100 kB each, the spool fills quickly)."""
        project = os.path.join(self.spool_dir, self.project_id)
        for name in os.listdir(project) if os.path.isdir(project) else ():
            os.unlink(os.path.join(project, name))

    def cpu_seconds(self):
        """CPU seconds used so far by every process of the topology (nginx too)."""
        return sum(procfs.cpu_seconds(proc.pids()) for _, proc in self.procs)

    def memory(self):
        """RSS/PSS per app-server instance (master + workers) and of nginx."""
        mems = [(kind, proc.label, procfs.memory_of(proc.pids())) for kind, proc in self.procs]
        instances = [dict(label=label, **m) for kind, label, m in mems if kind == "backend"]
        total = {k: sum(i[k] for i in instances) for k in ("processes", "rss_kb", "pss_kb")}
        return {"instances": instances, "app_total": total, "nginx": next(m for k, _, m in mems if k == "nginx")}
