#!/usr/bin/python3
"""uwsgi-fleetctl: operator tool for a uwsgi_fleet node (installed by Chef).

  apply PORT        make supervisor match the instance's program file: start,
                    restart or retire it, then wait until it serves (or is gone)
  restart PORT...   rolling restart of the running ones, each serving again
                    before the next (after a systemd template unit changed)
  reload PORT...    rolling reload: one instance at a time, the worker finishes
                    its requests and a new one loads the app; the master keeps
                    the socket, so nothing queued is dropped
  nginx-reload      test the whole nginx config, reload, wait for new workers
  nginx-test [--put DEST=SRC]... [--remove DEST]...
                    test nginx's whole config as it will be once DEST files are
                    replaced by SRC and removed: a copy of /etc/nginx with those
                    changes is mounted over /etc/nginx in a private mount
                    namespace, so every include resolves into the copy
  wait PORT...      wait until each instance serves
  health [PORT...]  ask instances directly (uwsgi protocol) for /_health
  outcomes [PORT...] what the instances did with the data they received
                    (accepted, filtered, rate_limited, invalid), summed
  summary           where the node serves, a health check through nginx, the DSN
  forwarder         how far behind the store app's forwarder is (its status file),
                    and how old that status is (stale: the forwarder is gone)
  tail [ARGS...]    read the store app's Redis streams: one JSON line per event
                    (store_app.stream's tail, from the installed app; e.g.
                    --project 1 --from 0)

Reads the fleet's manifest, written by Chef: --manifest PATH, or --fleet NAME,
or the node's only fleet (/etc/uwsgi_fleet/fleet.json for the default recipe's,
/etc/uwsgi_fleet/<name>/fleet.json for others). nginx-test and nginx-reload
need none.
"""
import argparse
import errno
import glob
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter

# The default recipe's fleet ('default') keeps 0.1.0's manifest path; others
# have /etc/uwsgi_fleet/<name>/fleet.json.
MANIFEST = "/etc/uwsgi_fleet/fleet.json"
MANIFEST_DIR = "/etc/uwsgi_fleet"
NGINX_PID = "/run/nginx.pid"
NGINX_DIR = "/etc/nginx"


def load_manifest(path=MANIFEST):
    with open(path) as f:
        manifest = json.load(f)
    if "process_manager" not in manifest:
        # 0.1.0's manifest (a node not yet upgraded): supervisor programs <program_prefix><port>.
        prefix = manifest.get("program_prefix", "uwsgi_fleet_")
        manifest.update(name=manifest.get("name", "default"), process_manager="supervisor",
                        instance_name=prefix + "{port}",
                        instance_file=f"/etc/supervisor/conf.d/{prefix}{{port}}.conf")
    return manifest


def find_manifest(fleet=None, root=MANIFEST_DIR):
    """The manifest of fleet `fleet`, or of the node's only fleet.

    Only in root's directories: the glob reaches every directory under root,
    a fleet's FIFO or log directory (the app user's) may be one of them, and a
    fleet.json planted there would choose what root runs (`tail`)."""
    found = {}
    for path in [os.path.join(root, "fleet.json")] + sorted(glob.glob(os.path.join(root, "*", "fleet.json"))):
        if not os.path.exists(path):
            continue
        st = os.lstat(os.path.dirname(path))
        if st.st_uid != 0 or st.st_mode & 0o022 or not stat.S_ISDIR(st.st_mode):
            print(f"uwsgi-fleetctl: {path} is not in a directory of root's only: not a fleet of this node",
                  file=sys.stderr)
            continue
        found[load_manifest(path)["name"]] = path
    if fleet is not None:
        if fleet not in found:
            raise SystemExit(f"uwsgi-fleetctl: no fleet {fleet!r} on this node (fleets: {', '.join(sorted(found)) or 'none'})")
        return found[fleet]
    if len(found) != 1:
        raise SystemExit(f"uwsgi-fleetctl: {len(found)} fleets on this node ({', '.join(sorted(found))}): "
                         "name one with --fleet")
    return next(iter(found.values()))


def log(message):
    print(f"uwsgi-fleetctl: {message}", flush=True)


def wait_until(predicate, timeout, what, interval=0.1):
    """Poll predicate until true; raise with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"uwsgi-fleetctl: timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# -- uwsgi protocol ---------------------------------------------------------

def uwsgi_packet(env):
    """Encode a WSGI environ as a uwsgi protocol request (modifier 0)."""
    body = b""
    for key, value in env.items():
        k, v = key.encode(), value.encode()
        body += struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
    return struct.pack("<BHB", 0, len(body), 0) + body


def uwsgi_exchange(host, port, method="GET", path="/_health", headers=None, body=b"", timeout=5.0):
    """One request straight to a uWSGI socket: (status, headers, body).

    Raises OSError when it cannot connect or the socket closes without an answer."""
    env = {"REQUEST_METHOD": method, "PATH_INFO": path, "REQUEST_URI": path,
           "QUERY_STRING": "", "SERVER_NAME": "localhost", "SERVER_PORT": "80",
           "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "localhost",
           "CONTENT_LENGTH": str(len(body))}
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        env[key if key == "CONTENT_TYPE" else "HTTP_" + key] = value
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(uwsgi_packet(env) + body)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    head, _, response_body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        raise ConnectionResetError("closed without an answer") from None
    response_headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return status, response_headers, response_body


def uwsgi_get(host, port, path="/_health", timeout=5.0):
    """GET path from a uWSGI socket; (status, headers, body), or None if unreachable."""
    try:
        return uwsgi_exchange(host, port, "GET", path, timeout=timeout)
    except OSError:
        return None


def port_open(host, port):
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def serves(host, port):
    """An instance serves once its app answers over the uwsgi protocol."""
    response = uwsgi_get(host, port)
    return response is not None and response[0] < 500


# -- process managers ---------------------------------------------------------
# How an instance runs, at run time (the Ruby side, libraries/process_manager.rb,
# writes the files). The manifest names each instance: instance_name is a
# format string with {port}, computed by Chef once.

def run(*command, check=True):
    result = subprocess.run(command, capture_output=True, text=True)
    output = (result.stdout + result.stderr).strip()
    if check and result.returncode != 0:
        raise SystemExit(f"uwsgi-fleetctl: {' '.join(command)} failed: {output}")
    return output


class Supervisor:
    """One supervisor program per instance (instance_file says where)."""

    def __init__(self, manifest):
        self.manifest = manifest

    def name(self, port):
        return self.manifest["instance_name"].format(port=port)

    def ready(self):
        return subprocess.run(["supervisorctl", "pid"], capture_output=True).returncode == 0

    def master_pid(self, port):
        out = run("supervisorctl", "pid", self.name(port), check=False)
        return int(out) if out.isdigit() and out != "0" else None

    def apply(self, port):
        """Make supervisor match the program file: add, restart or remove it. True if wanted."""
        wait_until(self.ready, 30, "supervisord to answer")
        run("supervisorctl", "reread")
        wanted = os.path.exists(self.manifest["instance_file"].format(port=port))
        log(f"{'starting' if wanted else 'retiring'} {self.name(port)}: {run('supervisorctl', 'update', self.name(port))}")
        return wanted

    def restart(self, port):
        run("supervisorctl", "restart", self.name(port))


class Systemd:
    """One systemd template unit, one enabled instance per port."""

    def __init__(self, manifest):
        self.manifest = manifest

    def name(self, port):
        return self.manifest["instance_name"].format(port=port)

    def master_pid(self, port):
        out = run("systemctl", "show", "--property=MainPID", "--value", self.name(port), check=False)
        return int(out) if out.isdigit() and out != "0" else None

    def apply(self, port):
        raise SystemExit("uwsgi-fleetctl: apply is for supervisor programs; systemd instances are "
                         "started and stopped by Chef's service resource")

    def restart(self, port):
        run("systemctl", "restart", self.name(port))


def process_manager(manifest):
    return {"supervisor": Supervisor, "systemd": Systemd}[manifest["process_manager"]](manifest)


def children(pid):
    """PIDs whose parent is pid (read from /proc)."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


# -- commands ---------------------------------------------------------------

def back_in_rotation(manifest):
    """After an instance nginx already listed serves again: wait until nginx may
    send to it again (it left it out for fail_timeout when it refused a
    connection), so that the next instance of a rolling change does not go
    down while this one is still left out. 0.1.0's nginx.conf used 2 s too."""
    time.sleep(manifest.get("upstream_fail_timeout", 2))


def cmd_apply(args, manifest):
    """Apply the program file of one instance: add/restart it, or retire it."""
    port, host = args.port, manifest["bind_address"]
    pm = process_manager(manifest)
    was_running = pm.master_pid(port) is not None
    if pm.apply(port):
        wait_until(lambda: serves(host, port), args.timeout, f"{pm.name(port)} to serve on {host}:{port}")
        if was_running:
            back_in_rotation(manifest)
        log(f"{pm.name(port)} serves on {host}:{port}")
    else:
        wait_until(lambda: not port_open(host, port), args.timeout, f"{host}:{port} to close")
        log(f"{pm.name(port)} is gone")


def cmd_restart(args, manifest):
    """Rolling restart: each running instance in turn, waiting until it serves again."""
    host = manifest["bind_address"]
    pm = process_manager(manifest)
    for port in args.ports:
        if pm.master_pid(port) is None:
            continue  # not started yet: it starts with the new settings
        pm.restart(port)
        wait_until(lambda: serves(host, port), args.timeout, f"{pm.name(port)} to serve again")
        back_in_rotation(manifest)
        log(f"{pm.name(port)} restarted")


def cmd_wait(args, manifest):
    """Wait until every given instance answers (e.g. after supervisord started)."""
    host = manifest["bind_address"]
    for port in args.ports:
        wait_until(lambda: serves(host, port), args.timeout, f"{host}:{port} to serve")
    log(f"instances {' '.join(map(str, args.ports))} serve")


# -- files in directories another user controls ----------------------------------
# Root opens a few files in directories the app user owns (the master FIFOs, the
# forwarder's status file), who can put anything there in their place.  The rule,
# in one place: refuse a symlink (lstat, then O_NOFOLLOW: ELOOP instead of
# following it to a root-only file), check the type before opening (opening a
# device can act) and again on what was opened (the path can be swapped between
# the two), never block in open() (O_NONBLOCK: a planted FIFO returns at once),
# and the owner must be the one expected.  Reads are capped.

FIFO = (stat.S_ISFIFO, "a FIFO")
REGULAR_FILE = (stat.S_ISREG, "a regular file")


def open_untrusted(path, flags, kind, owners):
    """An fd of ``path`` opened with ``flags`` under the rule above: it must be
    ``kind`` (FIFO or REGULAR_FILE) and owned by a uid in ``owners``.  A refusal
    is a SystemExit; other errors (ENOENT, ENXIO for a FIFO nobody reads) are
    the caller's, as OSError."""
    is_kind, kind_name = kind

    def refuse(why):
        raise SystemExit(f"uwsgi-fleetctl: {path} {why}; refusing")
    mode = os.lstat(path).st_mode
    if stat.S_ISLNK(mode):
        refuse("is a symlink, not followed")
    if not is_kind(mode):
        refuse(f"is not {kind_name}")
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:
            refuse("is a symlink, not followed")
        raise
    try:
        st = os.fstat(fd)
        if not is_kind(st.st_mode):
            refuse(f"is not {kind_name}")
        if st.st_uid not in owners:
            refuse(f"is owned by uid {st.st_uid}, not by uid {' or '.join(map(str, sorted(owners)))}")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_untrusted(path, owners, limit):
    """The bytes of the regular file ``path`` (see open_untrusted); one of more
    than ``limit`` bytes is refused, so what root reads stays bounded."""
    with os.fdopen(open_untrusted(path, os.O_RDONLY, REGULAR_FILE, owners), "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise SystemExit(f"uwsgi-fleetctl: {path} is larger than {limit} bytes; refusing")
    return data


def write_master_fifo(path, command, owner_uid, timeout):
    """Write ``command`` (bytes) to a uWSGI master FIFO (in the app user's
    directory), as root, under the rule above.  No reader yet (ENXIO) or no
    FIFO yet (ENOENT) is retried until ``timeout``: the master may be starting.
    Nothing is truncated: there is no O_TRUNC.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = open_untrusted(path, os.O_WRONLY, FIFO, {owner_uid})
        except OSError as e:
            if e.errno in (errno.ENXIO, errno.ENOENT) and time.monotonic() < deadline:
                time.sleep(0.1)
                continue
            raise SystemExit(f"uwsgi-fleetctl: cannot open {path} for writing after {timeout}s: "
                             f"{e.strerror}") from None
        try:
            while True:
                try:
                    os.write(fd, command)  # a few bytes: atomic on a pipe
                    return
                except BlockingIOError:  # the pipe is full: the master is not reading
                    if time.monotonic() >= deadline:
                        raise SystemExit(f"uwsgi-fleetctl: timed out after {timeout}s writing to {path}") from None
                    time.sleep(0.1)
        finally:
            os.close(fd)


def cmd_reload(args, manifest):
    """Rolling reload: one instance's worker at a time, via its master FIFO."""
    host = manifest["bind_address"]
    owner = pwd.getpwnam(manifest["user"]).pw_uid
    pm = process_manager(manifest)
    for port in args.ports:
        name = pm.name(port)
        master = pm.master_pid(port)
        if master is None:
            log(f"{name} is not running, nothing to reload")
            continue
        old_workers = set(children(master))
        fifo = os.path.join(manifest["fifo_dir"], f"{port}.fifo")
        # 'w': graceful reload of the workers only; the master keeps the listen
        # socket, so requests queue instead of being refused.
        write_master_fifo(fifo, b"w", owner, args.timeout)
        wait_until(lambda: (set(children(master)) - old_workers) and serves(host, port),
                   args.timeout, f"a new worker of {name}")
        log(f"{name} reloaded")


def nginx_master():
    with open(NGINX_PID) as f:
        return int(f.read().strip())


NGINX_ERROR_LOG = "/var/log/nginx/error.log"
# How long a reload may take to show new workers before its log is read.
RELOAD_GRACE = 15.0
# What is read of that log after a reload: nginx's own lines about it are a few
# hundred bytes; the cap keeps a flooded log from costing root its memory.
LOG_READ_MAX = 1024 * 1024


def log_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def log_since(path, offset):
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(LOG_READ_MAX).decode("utf-8", "replace")
    except OSError:
        return ""


def own_bind_conflicts(errors, master):
    """The addresses a reload could not bind because this nginx holds a wildcard
    on the same port (switching `listen 80` to `listen ADDR:80` needs a restart:
    a reload cannot give up the wildcard first). Empty when anything else failed."""
    failed = re.findall(r"bind\(\) to (\S+):(\d+) failed \(98", errors)
    if not failed:
        return []
    held = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout
    mine = {line.split()[3].rsplit(":", 1)[1] for line in held.splitlines() if f"pid={master}," in line}
    return [f"{a}:{p}" for a, p in failed] if all(p in mine for _, p in failed) else []


def cmd_nginx_reload(args, manifest):
    """Test the whole live config, HUP the master, wait for the new generation.

    A reload that cannot bind what the new config listens on because nginx
    itself holds the port on every address (a fleet now serving on one address
    only) is finished with a restart. Any other failed reload leaves the old
    configuration running and fails, with nginx's own words."""
    test = subprocess.run(["nginx", "-t", "-q"], capture_output=True, text=True)
    if test.returncode != 0:
        raise SystemExit(f"uwsgi-fleetctl: nginx -t failed, not reloading:\n{test.stderr}")
    master = nginx_master()
    old_workers = set(children(master))
    offset = log_size(NGINX_ERROR_LOG)
    os.kill(master, signal.SIGHUP)
    # Until new workers run, old ones may still pick instances about to be retired.
    try:
        wait_until(lambda: set(children(master)) - old_workers, min(RELOAD_GRACE, args.timeout), "new nginx workers")
    except SystemExit:
        errors = log_since(NGINX_ERROR_LOG, offset)
        conflicts = own_bind_conflicts(errors, master)
        if not conflicts:
            raise SystemExit("uwsgi-fleetctl: nginx did not take the new configuration; it still runs the old one:\n"
                             + errors[-2000:]) from None
        log(f"nginx holds the port on every address and now listens on {', '.join(conflicts)}: restarting it")
        subprocess.run(["service", "nginx", "restart"], check=True, capture_output=True)
        wait_until(lambda: os.path.exists(NGINX_PID) and nginx_master() != master, args.timeout, "nginx to restart")
    log("nginx reloaded")


def staged_nginx_dir(workdir, puts, removes, conf_dir=NGINX_DIR):
    """A copy of conf_dir in workdir with `puts` ({dest: src}) written and `removes` deleted.

    Symlinks are copied as links: Debian's sites-enabled/* point into
    /etc/nginx/sites-available by absolute path, which resolves into the copy
    once it is mounted over /etc/nginx.  Until then such a link points into
    the live config, so the copy is changed without following one: a put
    replaces a link with a file, a remove deletes the link itself."""
    staged = os.path.join(workdir, "nginx")
    shutil.copytree(conf_dir, staged, symlinks=True)
    for dest, src in puts.items():
        parent, name = staged_entry(staged, dest, conf_dir)
        try:
            unlink_entry(parent, name)  # a link (or file) in the copy goes; its target stays
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            with open(src, "rb") as source:  # Chef's candidate file
                with os.fdopen(os.open(name, flags, 0o644, dir_fd=parent), "wb") as out:
                    shutil.copyfileobj(source, out)
        finally:
            os.close(parent)
    for dest in removes:
        parent, name = staged_entry(staged, dest, conf_dir)
        try:
            unlink_entry(parent, name)
        finally:
            os.close(parent)
    return staged


def staged_entry(staged, dest, conf_dir):
    """(fd of its directory, name) of `dest` in the copy, reached from the copy's
    top without following a symlink; directories missing on the way are made.
    A directory on the way that is a symlink in the copy is refused: writing
    under it would write wherever it points, the live config included."""
    rel = os.path.relpath(os.path.abspath(dest), conf_dir)
    if rel == "." or rel.startswith(".."):
        raise SystemExit(f"uwsgi-fleetctl: {dest} is not under {conf_dir}")
    *dirs, name = rel.split(os.sep)
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(staged, flags)
    try:
        for part in dirs:
            try:
                os.mkdir(part, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            try:
                sub = os.open(part, flags, dir_fd=fd)
            except OSError as e:  # ELOOP: a symlink; ENOTDIR: a file
                raise SystemExit(f"uwsgi-fleetctl: {dest}: {part} is not a directory in {conf_dir} "
                                 f"({e.strerror}); nginx-test writes through no symlink") from None
            os.close(fd)
            fd = sub
    except BaseException:
        os.close(fd)
        raise
    return fd, name


def unlink_entry(parent, name):
    try:
        os.unlink(name, dir_fd=parent)
    except FileNotFoundError:
        pass


def nginx_test_command(staged, conf_dir=NGINX_DIR):
    """nginx -t with the staged copy bind-mounted over conf_dir, visible to this process only."""
    script = 'mount --bind "$1" "$2" && exec nginx -t -q'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "nginx-test", staged, conf_dir]


def cmd_nginx_test(args, _manifest):
    """Test the config this run will leave behind, not the one it starts from: a
    conflicting site that the run removes must not fail the test, and a file it
    is about to write must be tested together with every other site."""
    puts = {}
    for item in args.put:
        dest, sep, src = item.partition("=")
        if not sep or not dest or not src:
            raise SystemExit(f"uwsgi-fleetctl: --put takes DEST=SRC, got {item!r}")
        puts[dest] = src
    with tempfile.TemporaryDirectory(prefix="uwsgi-fleet-nginx-") as workdir:
        staged = staged_nginx_dir(workdir, puts, args.remove)
        result = subprocess.run(nginx_test_command(staged), capture_output=True, text=True)
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        print(f"nginx -t failed for the config as this run would leave it:\n{output}", file=sys.stderr)
        return 1
    return 0


def cmd_health(args, manifest):
    host = manifest["bind_address"]
    failed = 0
    for port in args.ports or manifest["ports"]:
        response = uwsgi_get(host, port)
        status = response[0] if response else "unreachable"
        failed += status != 200
        print(f"{host}:{port} {status}")
    return 1 if failed else 0


def cmd_outcomes(args, manifest):
    """Sum the outcome counters of the instances (each counts since it started)."""
    host = manifest["bind_address"]
    totals = Counter()
    unreachable = []
    for port in args.ports or manifest["ports"]:
        response = uwsgi_get(host, port)
        if response is None or response[0] != 200:
            unreachable.append(port)
            continue
        for row in json.loads(response[2]).get("outcomes", []):
            totals[(row["outcome"], row["reason"] or "-", row["category"])] += row["quantity"]
    if args.json:
        print(json.dumps([{"outcome": o, "reason": None if r == "-" else r, "category": c,
                           "quantity": q} for (o, r, c), q in sorted(totals.items())]))
    else:
        print(f"{'outcome':<14} {'reason':<20} {'category':<16} {'quantity':>10}")
        for (outcome, reason, category), quantity in sorted(totals.items()):
            print(f"{outcome:<14} {reason:<20} {category:<16} {quantity:>10}")
    if unreachable:
        print(f"not counted (unreachable): {' '.join(map(str, unreachable))}", file=sys.stderr)
    return 1 if unreachable else 0


def store_app(manifest):
    """The config of the store app the fleet runs (None for another app)."""
    if not manifest.get("store_app_config"):
        return None
    with open(manifest["store_app_config"]) as f:
        return json.load(f)


def dsn(config, host):
    return [f"http://{p['public_key']}@{host}/{pid}" for pid, p in sorted(config["projects"].items())]


def node_addresses():
    """This node's IPv4 addresses other than loopback, for other hosts' DSNs."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True).stdout
    return [line.split()[3].split("/")[0] for line in out.splitlines()]


def cmd_summary(args, manifest):
    listen = manifest["listen"]
    host = "127.0.0.1" if listen == 80 else f"127.0.0.1:{listen}"
    url = f"http://{host}/"
    try:
        with urllib.request.urlopen(url + "_health", timeout=5) as r:
            health = f"{r.status} from instance {r.headers.get('X-Fleet-Instance')}"
    except Exception as e:  # any failure is the answer here
        health = f"FAILED ({e})"
    print(f"uwsgi_fleet {manifest['name']} serves {url} (nginx :{listen} -> {len(manifest['ports'])} uWSGI instances "
          f"on {manifest['bind_address']}:{manifest['ports'][0]}-{manifest['ports'][-1]}, "
          f"{manifest['threads']} threads each)")
    print(f"health check {url}_health: {health}")
    config = store_app(manifest)
    for line in dsn(config, host) if config else []:
        print(f"Sentry DSN: {line}   (events land in {config['spool_dir']}/<project id>/)")
    port = "" if listen == 80 else f":{listen}"
    for address in node_addresses():
        print(f"from other hosts: http://{address}{port}/ (use this host in the DSN)")
    return 0 if health.startswith("200") else 1


# The forwarder's status file is a few KB of JSON (forwarder.py bounds its
# lists): anything much larger is not one, and root does not read it whole.
STATUS_MAX_BYTES = 256 * 1024


def cmd_forwarder(args, manifest):
    """The forwarder's status: backlog, age of the oldest event, Redis reachable,
    last error, what it could not read, and how old the status is: a forwarder
    gone since (a crash, a power cut) leaves its last status behind."""
    config = store_app(manifest)
    if not config or not config.get("stream"):
        raise SystemExit("uwsgi-fleetctl: this fleet's app forwards no events (no stream in its config)")
    path = config["stream"]["status_file"]
    try:
        # In the spool, the app user's directory; the forwarder runs as that user.
        data = read_untrusted(path, {pwd.getpwnam(manifest["user"]).pw_uid}, STATUS_MAX_BYTES)
    except OSError as e:
        raise SystemExit(f"uwsgi-fleetctl: no forwarder status yet ({e.strerror}): is the forwarder running?") from None
    try:
        status = json.loads(data)
        age = time.time() - float(status["updated_at"])
    except (ValueError, TypeError, KeyError):
        raise SystemExit(f"uwsgi-fleetctl: {path} is not a forwarder status") from None
    # The forwarder writes how long it may go between two writes (forwarder.py,
    # STATUS_SECONDS); one written before that field existed is not judged.
    bound = status.get("stale_after_seconds")
    stale = isinstance(bound, (int, float)) and abs(age) > bound
    if args.json:
        print(json.dumps(dict(status, age_seconds=round(age, 3), stale=stale)))
    else:
        if stale:
            print(f"STALE: the forwarder has not rewritten its status for {age:.0f} s (a running one does "
                  f"within {bound:g} s): it is not running, or is stuck. Its last status:")
        print(f"forwarder {status.get('state')}: {status.get('backlog_events')} events behind "
              f"(oldest {status.get('oldest_event_age_seconds')} s), {status.get('forwarded_total')} forwarded, "
              f"redis {'ok' if status.get('redis_ok') else 'unreachable'}"
              + (f", last error: {status['last_error']}" if status.get("last_error") else "")
              + (f", cannot read: {'; '.join(map(str, status['unreadable']))}" if status.get("unreadable") else "")
              + f"; status {age:.1f} s old")
    return 1 if stale or not status.get("redis_ok") else 0


def cmd_tail(args, manifest):
    """The store app's own stream reader, with the fleet's app config and code.

    Imported here from where Chef installed it (the manifest's pythonpath,
    root's directories), never run as ``python3 -m``: that puts the working
    directory first on sys.path, and an operator in the spool or log directory
    (the app user's) would run the app user's ``store_app/stream.py`` as root."""
    if not manifest.get("store_app_config"):
        raise SystemExit("uwsgi-fleetctl: this fleet runs no store app")
    sys.path[:0] = manifest.get("pythonpath") or []
    from store_app import stream
    return stream.main(["tail", "--config", manifest["store_app_config"], *args.tail_args])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="uwsgi-fleetctl", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", help="the fleet's fleet.json (default: --fleet's, or the node's only fleet)")
    parser.add_argument("--fleet", help="the fleet's name, when the node has several")
    parser.add_argument("--timeout", type=float, default=90.0)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("apply").add_argument("port", type=int)
    sub.add_parser("reload").add_argument("ports", type=int, nargs="+")
    sub.add_parser("restart").add_argument("ports", type=int, nargs="+")
    sub.add_parser("wait").add_argument("ports", type=int, nargs="+")
    sub.add_parser("nginx-reload")
    nginx_test = sub.add_parser("nginx-test")
    nginx_test.add_argument("--put", action="append", default=[], metavar="DEST=SRC")
    nginx_test.add_argument("--remove", action="append", default=[], metavar="DEST")
    sub.add_parser("health").add_argument("ports", type=int, nargs="*")
    outcomes = sub.add_parser("outcomes")
    outcomes.add_argument("ports", type=int, nargs="*")
    outcomes.add_argument("--json", action="store_true", help="one JSON list instead of a table")
    sub.add_parser("summary")
    sub.add_parser("forwarder").add_argument("--json", action="store_true")
    sub.add_parser("tail", add_help=False)
    # tail's own arguments (--project, --from, ...) belong to store_app.stream: pass them on.
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "tail":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.tail_args = extra
    handler = {"apply": cmd_apply, "wait": cmd_wait, "reload": cmd_reload, "restart": cmd_restart,
               "nginx-reload": cmd_nginx_reload,
               "nginx-test": cmd_nginx_test, "health": cmd_health, "outcomes": cmd_outcomes,
               "summary": cmd_summary, "forwarder": cmd_forwarder, "tail": cmd_tail}[args.command]
    # nginx-test runs before the first manifest is written (a pristine node).
    if args.command in ("nginx-test", "nginx-reload"):
        manifest = None
    else:
        manifest = load_manifest(args.manifest or find_manifest(args.fleet))
    return handler(args, manifest) or 0


if __name__ == "__main__":
    sys.exit(main())
