"""The benchmarked topologies: built from the converged node's rendered files,
started on loopback ports of their own, stopped and cleaned up.

Nothing here changes the node: its nginx.conf, supervisor program files and
store_app.json are only read. Every process a topology starts runs in a
process group of its own, and stop() kills whole groups, so a topology never
outlives the harness (a harness that was itself SIGKILLed is cleaned up by
reap_stale() on the next run).
"""
import configparser
import glob
import grp
import hashlib
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import time

NGINX_CONF = "/etc/nginx/nginx.conf"
SUPERVISOR_GLOB = "/etc/supervisor/conf.d/uwsgi_fleet_*.conf"
FLEET_JSON = "/etc/uwsgi_fleet/fleet.json"
STORE_APP_JSON = "/etc/uwsgi_fleet/store_app.json"
BENCH_ROOT = "/var/tmp/uwsgi_fleet_bench"
STATE_FILE = os.path.join(BENCH_ROOT, "process-groups.json")
NGINX = "/usr/sbin/nginx"
GUNICORN = "/usr/bin/gunicorn"
LOOPBACK = "127.0.0.1"

TOPOLOGIES = {
    "fleet": "the cookbook's topology as rendered: nginx (rendered balancing method) -> "
             "N uWSGI instances x (1 process, T threads)",
    "fleet-rr": "as fleet, balancing directive removed (nginx round robin)",
    "single": "nginx -> one uWSGI with --processes N --threads T (same other flags)",
    "single-thunder": "as single, plus --thunder-lock",
    "gunicorn": "nginx proxy_pass -> gunicorn, N gthread workers x T threads",
}
ORDER = tuple(TOPOLOGIES)


class BenchError(RuntimeError):
    pass


# -- the converged node ----------------------------------------------------------

def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _expand_supervisor(value, program, conf_path):
    """Undo supervisor's expansion: `%%` is a literal %, `%(name)s` an expansion
    (supervisor's ProcessConfig expands command with these names)."""
    names = {"program_name": program, "process_num": 0, "group_name": program, "numprocs": 1,
             "here": os.path.dirname(conf_path), "host_node_name": socket.gethostname()}
    names.update({"ENV_" + k: v for k, v in os.environ.items()})
    try:
        return value % names
    except (KeyError, ValueError, TypeError) as e:
        raise BenchError(f"{conf_path}: cannot expand command ({e})") from None


def read_supervisor_program(path):
    """(program name, argv, options) of the one [program:x] section in `path`."""
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";",), strict=False)
    parser.optionxform = str
    with open(path) as f:
        parser.read_file(f)
    sections = [s for s in parser.sections() if s.startswith("program:")]
    if len(sections) != 1:
        raise BenchError(f"{path}: expected one [program:...] section, found {sections}")
    section = parser[sections[0]]
    program = sections[0].split(":", 1)[1]
    command = _expand_supervisor(section["command"], program, path)
    options = {k: _expand_supervisor(v, program, path) for k, v in section.items() if k != "command"}
    # supervisor splits the command with shlex (after expansion)
    return program, shlex.split(command), options


class Node:
    """What the converged node renders, read once (root-readable files)."""

    def __init__(self):
        missing = [p for p in (NGINX_CONF, FLEET_JSON, STORE_APP_JSON) if not os.path.exists(p)]
        confs = sorted(glob.glob(SUPERVISOR_GLOB))
        if missing or not confs:
            raise BenchError("the converged node's files are missing (%s); run `make converge` first"
                             % ", ".join(missing + ([] if confs else [SUPERVISOR_GLOB])))
        with open(NGINX_CONF) as f:
            self.nginx_conf = f.read()
        with open(FLEET_JSON) as f:
            self.fleet = json.load(f)
        with open(STORE_APP_JSON) as f:
            self.store_app = json.load(f)
        self.programs = []
        for path in confs:
            program, argv, options = read_supervisor_program(path)
            port = int(re.search(r"(\d+)\.conf$", path).group(1))
            self.programs.append({"path": path, "program": program, "argv": argv,
                                  "options": options, "port": port})
        self.programs.sort(key=lambda p: p["port"])
        self.sources = {p: _sha256(p) for p in [NGINX_CONF, FLEET_JSON, STORE_APP_JSON] + confs}

    @property
    def processes(self):
        return len(self.fleet["ports"])

    @property
    def threads(self):
        return int(self.fleet["threads"])

    @property
    def user(self):
        return self.programs[0]["options"].get("user") or self.fleet.get("user", "uwsgi_fleet")

    def balance_directive(self):
        block = _upstream_block(self.nginx_conf)[1]
        for line in block.splitlines():
            words = line.strip().rstrip(";").split()
            if words and words[0] in BALANCE_WORDS:
                return line.strip()
        return None


# -- nginx.conf rewriting ---------------------------------------------------------

BALANCE_WORDS = ("least_conn", "random", "ip_hash", "hash", "least_time", "sticky")
_UPSTREAM_RE = re.compile(r"(^[ \t]*upstream\s+(\S+)\s*\{)(.*?)(^[ \t]*\})", re.S | re.M)


def _upstream_block(conf):
    matches = list(_UPSTREAM_RE.finditer(conf))
    if len(matches) != 1:
        raise BenchError(f"{NGINX_CONF}: expected exactly one upstream block, found {len(matches)}")
    m = matches[0]
    return m, m.group(3)


def _sub_one(pattern, repl, text, what, flags=re.M):
    new, count = re.subn(pattern, repl, text, flags=flags)
    if count == 0:
        raise BenchError(f"{NGINX_CONF}: no {what} to rewrite")
    return new


def render_nginx(conf, *, listen_port, backend_ports, workdir, balance=True, proxy=False):
    """The node's nginx.conf with only these changes: listen port (loopback),
    upstream server ports, pid/log/temp paths, no sites-enabled/conf.d includes;
    `balance=False` drops the balancing directive (round robin); `proxy=True`
    turns the uwsgi_* directives into their proxy_* equivalents (gunicorn)."""
    conf = _sub_one(r"^(\s*)pid\s+[^;]+;", rf"\1pid {workdir}/nginx.pid;", conf, "pid")
    conf = _sub_one(r"^(\s*)access_log\s+\S+", rf"\1access_log {workdir}/access.log", conf, "access_log")
    conf = _sub_one(r"^(\s*)error_log\s+[^;\s]+", rf"\1error_log {workdir}/error.log", conf, "error_log")
    conf = re.sub(r"^\s*include\s+/etc/nginx/(sites-enabled|conf\.d)/[^;]*;[ \t]*\n", "", conf, flags=re.M)
    # Relative includes resolve against the config's directory, which is now workdir.
    conf = re.sub(r"^(\s*include\s+)(?!/)([^;]+);", r"\1/etc/nginx/\2;", conf, flags=re.M)
    conf = _sub_one(r"^(\s*listen\s+)\S+", rf"\g<1>{LOOPBACK}:{listen_port}", conf, "listen", re.M)
    match, block = _upstream_block(conf)
    server_lines = [l for l in block.splitlines() if re.match(r"\s*server\s", l)]
    if not server_lines:
        raise BenchError(f"{NGINX_CONF}: upstream has no server line")
    template = server_lines[0]
    lines, inserted = [], False
    for line in block.splitlines():
        words = line.strip().rstrip(";").split()
        if words and words[0] in BALANCE_WORDS and not balance:
            continue
        if re.match(r"\s*server\s", line):
            if not inserted:
                for port in backend_ports:
                    lines.append(re.sub(r"(server\s+)\S+", rf"\g<1>{LOOPBACK}:{port}", template, count=1))
                inserted = True
            continue
        lines.append(line)
    new_block = "\n".join(lines)
    if block.endswith("\n") and not new_block.endswith("\n"):
        new_block += "\n"
    upstream_name = match.group(2)
    conf = conf[:match.start(3)] + new_block + conf[match.end(3):]
    if proxy:
        conf = _to_proxy(conf, upstream_name)
    temp = "".join(f"    {name}_temp_path {workdir}/{name}_temp;\n"
                   for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = _sub_one(r"^(http\s*\{[ \t]*\n)", lambda m: m.group(1) + temp, conf, "http block")
    return conf


def _header_name(param):
    words = param[len("HTTP_"):].split("_")
    return "-".join(w if w in ("IP", "ID") else w.capitalize() for w in words)


def _to_proxy(conf, upstream):
    out = []
    for line in conf.splitlines():
        stripped = line.strip()
        indent = line[:len(line) - len(line.lstrip())]
        if re.match(r"include\s+\S*uwsgi_params;", stripped):
            continue
        m = re.match(r"uwsgi_param\s+(\S+)\s+(.+);$", stripped)
        if m:
            if m.group(1).startswith("HTTP_"):
                out.append(f"{indent}proxy_set_header {_header_name(m.group(1))} {m.group(2)};")
            continue
        m = re.match(r"uwsgi_pass\s+(\S+);$", stripped)
        if m:
            out.append(f"{indent}proxy_pass http://{m.group(1)};")
            continue
        if stripped.startswith("uwsgi_"):
            out.append(line.replace("uwsgi_", "proxy_", 1))
            continue
        out.append(line)
    return "\n".join(out) + "\n"


# -- uWSGI command rewriting ----------------------------------------------------

def _set_option(argv, name, value, *, match=None, add=True):
    """Set `--name value` (also --name=value) in argv; `match(old)` picks one of
    several (for --env). Returns a new list."""
    out, found, i = [], False, 0
    while i < len(argv):
        arg = argv[i]
        if arg == f"--{name}" and i + 1 < len(argv):
            old = argv[i + 1]
            if match is None or match(old):
                out += [arg, value]
                found = True
            else:
                out += [arg, old]
            i += 2
            continue
        if arg.startswith(f"--{name}="):
            old = arg.split("=", 1)[1]
            if match is None or match(old):
                out.append(f"--{name}={value}")
                found = True
            else:
                out.append(arg)
            i += 1
            continue
        out.append(arg)
        i += 1
    if not found and add:
        out += [f"--{name}", value]
    return out


def _get_option(argv, name):
    for i, arg in enumerate(argv):
        if arg == f"--{name}" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None


def _env_is(var):
    return lambda value: value.split("=", 1)[0] == var


def rewrite_uwsgi(argv, *, port, fifo, config, instance, processes=None, threads=None):
    """The node's instance command with only socket port, master-fifo path and the
    STORE_APP_CONFIG / STORE_APP_INSTANCE env rewritten (plus --processes /
    --threads when given)."""
    if _get_option(argv, "socket") is None:
        raise BenchError("the rendered uWSGI command has no --socket")
    argv = _set_option(argv, "socket", f"{LOOPBACK}:{port}")
    if _get_option(argv, "master-fifo") is not None:
        argv = _set_option(argv, "master-fifo", fifo)
    argv = _set_option(argv, "env", f"STORE_APP_CONFIG={config}", match=_env_is("STORE_APP_CONFIG"))
    argv = _set_option(argv, "env", f"STORE_APP_INSTANCE={instance}", match=_env_is("STORE_APP_INSTANCE"))
    if processes is not None:
        argv = _set_option(argv, "processes", str(processes))
    if threads is not None:
        argv = _set_option(argv, "threads", str(threads))
    return argv


# A module imported by every worker (--lazy-apps: after the fork) that names the
# worker in STORE_APP_INSTANCE, read by the app on its first request, so the
# X-Fleet-Instance header tells the workers of one uWSGI apart.
WORKER_TAG_PY = '''"""bench: X-Fleet-Instance = uWSGI worker id (w1..wN)."""
import os
try:
    import uwsgi
    os.environ["STORE_APP_INSTANCE"] = "w%d" % uwsgi.worker_id()
except ImportError:
    pass
'''

# gunicorn: worker.age numbers the workers 1..N as the arbiter spawns them.
GUNICORN_CONF_PY = '''"""bench: X-Fleet-Instance = gunicorn worker number (w1..wN)."""
import os


def post_fork(server, worker):
    os.environ["STORE_APP_INSTANCE"] = "w%d" % worker.age
'''


# -- processes ---------------------------------------------------------------------

def _proc_stat(pid):
    """(pgid, starttime, state) of pid, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    return int(fields[2]), int(fields[19]), fields[0]


def group_pids(pgid):
    """Live (non-zombie) processes of a process group."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _proc_stat(int(entry))
            if st and st[0] == pgid and st[2] != "Z":
                pids.append(int(entry))
    return sorted(pids)


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    """utime + stime (seconds) of the given processes, all threads."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rindex(")") + 2:].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / CLK_TCK


def memory_of(pids):
    """Sum of VmRSS and Pss (kB) over pids (/proc/<pid>/status, smaps_rollup)."""
    rss = pss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return {"processes": len(pids), "rss_kb": rss, "pss_kb": pss}


def _load_state():
    try:
        with open(STATE_FILE) as f:
            return json.load(f)
    except (OSError, ValueError):
        return []


def _save_state(entries):
    os.makedirs(BENCH_ROOT, exist_ok=True)
    tmp = STATE_FILE + ".tmp"
    with open(tmp, "w") as f:
        json.dump(entries, f)
    os.replace(tmp, STATE_FILE)


def _record(pgid, add=True):
    entries = [e for e in _load_state() if e["pgid"] != pgid]
    if add:
        st = _proc_stat(pgid)
        if st:
            entries.append({"pgid": pgid, "start": st[1]})
    _save_state(entries)


def kill_group(pgid, grace=5.0):
    """SIGINT the process group (immediate stop for nginx, uWSGI and gunicorn),
    SIGKILL whatever is left after `grace` seconds, and wait until it is gone."""
    try:
        os.killpg(pgid, signal.SIGINT)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while group_pids(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if group_pids(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 5
        while group_pids(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)


def reap_stale():
    """Kill process groups a previous (killed) harness run left behind."""
    killed = []
    for entry in _load_state():
        st = _proc_stat(entry["pgid"])
        if st and st[0] == entry["pgid"] and st[1] == entry["start"]:
            kill_group(entry["pgid"], grace=1.0)
            killed.append(entry["pgid"])
    _save_state([])
    return killed


def acquire_lock():
    """One harness at a time: the topologies' work dirs and ports are fixed."""
    import fcntl
    os.makedirs(BENCH_ROOT, exist_ok=True)
    f = open(os.path.join(BENCH_ROOT, "lock"), "w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise BenchError("another bench run is in progress (lock on %s/lock)" % BENCH_ROOT) from None
    return f


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
            return True
        except OSError:
            return False


def _listening(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((LOOPBACK, port)) == 0


def _normal_priority():
    # Runs in the child before exec: servers run at nice 0 even when the
    # harness (the load generator) runs with a raised priority.
    os.setpriority(os.PRIO_PROCESS, 0, 0)


class Proc:
    """One process group: a server started in a session of its own."""

    def __init__(self, label, argv, *, log_path, user=None, cwd=None, env=None):
        self.label = label
        self.argv = argv
        self.log_path = log_path
        self.log = open(log_path, "ab")
        kwargs = {}
        if user:
            pw = pwd.getpwnam(user)
            kwargs.update(user=pw.pw_uid, group=pw.pw_gid,
                          extra_groups=[g.gr_gid for g in grp.getgrall() if user in g.gr_mem])
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                      stderr=subprocess.STDOUT, cwd=cwd, env=env,
                                      start_new_session=True, close_fds=True,
                                      preexec_fn=_normal_priority, **kwargs)
        self.pgid = self.popen.pid
        _record(self.pgid)

    def alive(self):
        return self.popen.poll() is None

    def pids(self):
        return group_pids(self.pgid)

    def stop(self):
        kill_group(self.pgid)
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        _record(self.pgid, add=False)
        self.log.close()

    def log_tail(self, lines=20):
        try:
            with open(self.log_path, "rb") as f:
                return b"".join(f.readlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return ""


def child_env(user):
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/nonexistent",
            "USER": user, "LOGNAME": user}


# -- a topology ---------------------------------------------------------------------

class Topology:
    """Start with start(), stop with stop() (always, in a finally)."""

    def __init__(self, name, node, *, processes, threads, port_base, log_dir,
                 project_id="42", public_key=None, hops=3, hop_ms=2):
        if name not in TOPOLOGIES:
            raise BenchError(f"unknown topology {name!r}")
        self.name = name
        self.node = node
        self.processes = processes
        self.threads = threads
        self.user = node.user
        self.listen_port = port_base
        self.backend_ports = ([port_base + 1 + i for i in range(processes)]
                              if name.startswith("fleet") else [port_base + 1])
        if self.backend_ports[-1] > 10999 and port_base <= 10999:
            raise BenchError("ports past 10999: lower --processes or --port-base")
        self.workdir = os.path.join(BENCH_ROOT, name)
        self.spool_dir = os.path.join(self.workdir, "spool")
        self.run_dir = os.path.join(self.workdir, "run")
        self.nginx_dir = os.path.join(self.workdir, "nginx")
        self.config_path = os.path.join(self.run_dir, "store_app.json")
        self.log_dir = log_dir
        self.project_id = project_id
        self.public_key = public_key or secrets.token_hex(16)
        self.hops, self.hop_ms = hops, hop_ms
        self.procs = []          # [(kind, label, Proc)]
        self.commands = {}

    # files ---------------------------------------------------------------------
    def _prepare(self):
        pw = pwd.getpwnam(self.user)
        shutil.rmtree(self.workdir, ignore_errors=True)
        os.makedirs(BENCH_ROOT, exist_ok=True)
        os.chmod(BENCH_ROOT, 0o755)
        os.makedirs(self.workdir, mode=0o755)
        os.chmod(self.workdir, 0o755)
        for path, owner, mode in ((self.spool_dir, pw, 0o750), (self.run_dir, pw, 0o750),
                                  (self.nginx_dir, None, 0o755)):
            os.makedirs(path, mode=mode)
            os.chmod(path, mode)
            if owner:
                os.chown(path, owner.pw_uid, owner.pw_gid)
        # The node's store_app.json structure, with the bench's own project and
        # spool, the simulated auth/quota hops on and a limit that never triggers.
        cfg = dict(self.node.store_app)
        cfg.update({
            "projects": {self.project_id: {"public_key": self.public_key,
                                           "rate_limit": {"events_per_second": 1_000_000,
                                                          "burst": 10_000_000}}},
            "spool_dir": self.spool_dir,
            "simulated_hops": self.hops,
            "simulated_hop_ms": self.hop_ms,
            "instances": self.processes,
        })
        with open(self.config_path, "w") as f:
            json.dump(cfg, f, indent=2)
        os.chown(self.config_path, 0, pw.pw_gid)
        os.chmod(self.config_path, 0o640)
        for name, text in (("bench_worker_tag.py", WORKER_TAG_PY), ("bench_gunicorn_conf.py", GUNICORN_CONF_PY)):
            path = os.path.join(self.run_dir, name)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o644)

    def nginx_conf(self):
        return render_nginx(self.node.nginx_conf, listen_port=self.listen_port,
                            backend_ports=self.backend_ports, workdir=self.nginx_dir,
                            balance=self.name != "fleet-rr", proxy=self.name == "gunicorn")

    def backend_commands(self):
        """[(label, argv)] of the app servers."""
        programs = self.node.programs
        fifo = lambda port: os.path.join(self.run_dir, f"{port}.fifo")
        n_t = {"threads": self.threads}
        if self.name.startswith("fleet"):
            cmds = []
            for i, port in enumerate(self.backend_ports):
                # Each instance's own rendered command; past the rendered count,
                # the first one's (they differ only in what is rewritten here).
                argv = programs[i]["argv"] if i < len(programs) else programs[0]["argv"]
                cmds.append((f"i{i}", rewrite_uwsgi(argv, port=port, fifo=fifo(port), config=self.config_path,
                                                    instance=str(port), processes=1, **n_t)))
            return cmds
        port = self.backend_ports[0]
        base = programs[0]["argv"]
        if self.name.startswith("single"):
            argv = rewrite_uwsgi(base, port=port, fifo=fifo(port), config=self.config_path,
                                 instance=str(port), processes=self.processes, **n_t)
            # Name each worker in X-Fleet-Instance (see WORKER_TAG_PY).
            argv += ["--pythonpath", self.run_dir, "--import", "bench_worker_tag"]
            if self.name == "single-thunder":
                argv.append("--thunder-lock")
            return [("i0", argv)]
        # gunicorn: the same app, chdir, sys.path, backlog and timeout as uWSGI's.
        module = _get_option(base, "module") or "store_app.wsgi:application"
        chdir = _get_option(base, "chdir") or "/opt/uwsgi_fleet"
        argv = [GUNICORN, "--bind", f"{LOOPBACK}:{port}", "--workers", str(self.processes),
                "--worker-class", "gthread", "--threads", str(self.threads),
                "--backlog", _get_option(base, "listen") or "1024",
                "--timeout", _get_option(base, "harakiri") or "60", "--graceful-timeout", "5",
                "--worker-tmp-dir", "/dev/shm", "--chdir", chdir,
                "--config", os.path.join(self.run_dir, "bench_gunicorn_conf.py")]
        for i, arg in enumerate(base):
            if arg == "--pythonpath" and i + 1 < len(base):
                argv += ["--pythonpath", base[i + 1]]
        # No STORE_APP_INSTANCE here: gunicorn sets --env in each worker after
        # post_fork, which would override the worker number.
        argv += ["--env", f"STORE_APP_CONFIG={self.config_path}", module]
        return [("i0", argv)]

    # lifecycle -------------------------------------------------------------------
    def start(self, timeout=20.0):
        busy = [p for p in [self.listen_port] + self.backend_ports if not port_free(p)]
        if busy:
            raise BenchError(f"{self.name}: ports already in use: {busy}")
        self._prepare()
        conf_path = os.path.join(self.nginx_dir, "nginx.conf")
        with open(conf_path, "w") as f:
            f.write(self.nginx_conf())
        nginx_argv = [NGINX, "-c", conf_path, "-e", os.path.join(self.nginx_dir, "error.log"),
                      "-g", "daemon off;"]
        self.commands = {"nginx": nginx_argv, "backends": {}}
        check = subprocess.run(nginx_argv[:-2] + ["-t", "-q"], capture_output=True, text=True)
        if check.returncode != 0:
            raise BenchError(f"{self.name}: nginx -t failed: {check.stderr.strip()}")
        program_opts = self.node.programs[0]["options"]
        cwd = program_opts.get("directory") or "/opt/uwsgi_fleet"
        for label, argv in self.backend_commands():
            self.commands["backends"][label] = argv
            log = os.path.join(self.log_dir, f"{self.name}-{label}.log")
            self.procs.append(("backend", label, Proc(label, argv, log_path=log, user=self.user,
                                                       cwd=cwd, env=child_env(self.user))))
        self.procs.append(("nginx", "nginx", Proc("nginx", nginx_argv,
                                                  log_path=os.path.join(self.log_dir, f"{self.name}-nginx.log"))))
        deadline = time.monotonic() + timeout
        for port in self.backend_ports + [self.listen_port]:
            while not _listening(port):
                dead = [p for _, _, p in self.procs if not p.alive()]
                if dead:
                    raise BenchError(f"{self.name}: {dead[0].label} exited at start:\n{dead[0].log_tail()}")
                if time.monotonic() > deadline:
                    raise BenchError(f"{self.name}: port {port} not listening after {timeout}s")
                time.sleep(0.05)

    def check_alive(self):
        dead = [p.label for _, _, p in self.procs if not p.alive()]
        if dead:
            raise BenchError(f"{self.name}: died during the run: {dead}")

    def stop(self):
        errors = []
        # nginx first, then the app servers.
        for kind, label, proc in sorted(self.procs, key=lambda t: t[0] != "nginx"):
            try:
                proc.stop()
            except Exception as e:  # keep stopping the others
                errors.append(f"{label}: {e}")
        self.procs = []
        self.clean_spool(remove=True)
        shutil.rmtree(self.workdir, ignore_errors=True)
        if errors:
            raise BenchError(f"{self.name}: stop: {errors}")

    def clean_spool(self, remove=False):
        """Delete the events (the spool fills quickly: ~100 kB an event)."""
        if remove:
            shutil.rmtree(self.spool_dir, ignore_errors=True)
            return
        project = os.path.join(self.spool_dir, self.project_id)
        try:
            names = os.listdir(project)
        except FileNotFoundError:
            return
        for name in names:
            try:
                os.unlink(os.path.join(project, name))
            except OSError:
                pass

    def cpu_seconds(self):
        """CPU seconds used so far by every process of the topology (nginx too)."""
        return sum(cpu_seconds(proc.pids()) for _, _, proc in self.procs)

    def memory(self):
        """RSS/PSS per app-server instance (master + workers) and of nginx."""
        instances, nginx = [], None
        for kind, label, proc in self.procs:
            mem = memory_of(proc.pids())
            if kind == "nginx":
                nginx = mem
            else:
                instances.append(dict(label=label, **mem))
        total = {k: sum(i[k] for i in instances) for k in ("processes", "rss_kb", "pss_kb")}
        return {"instances": instances, "app_total": total, "nginx": nginx}

    def url(self):
        return f"http://{LOOPBACK}:{self.listen_port}/"
