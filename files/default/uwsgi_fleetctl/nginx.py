"""What Chef calls about nginx: nginx-test (the whole config as a converge
will leave it, tested before anything changes) and nginx-reload (test, reload,
wait for the new workers)."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

from uwsgi_fleetctl.common import children, log, wait_until

NGINX_PID = "/run/nginx.pid"
NGINX_DIR = "/etc/nginx"


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


def staged_nginx_dir(workdir, candidates, removes, conf_dir=NGINX_DIR):
    """A copy of conf_dir in workdir with `candidates` ({dest: src}) written and `removes` deleted.

    Symlinks are copied as links: Debian's sites-enabled/* point into
    /etc/nginx/sites-available by absolute path, which resolves into the copy
    once it is mounted over /etc/nginx.  Until then such a link points into
    the live config, so the copy is changed without following one: a candidate
    replaces a link with a file, a remove deletes the link itself."""
    staged = os.path.join(workdir, "nginx")
    shutil.copytree(conf_dir, staged, symlinks=True)
    for dest, src in candidates.items():
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
    candidates = {}
    for item in args.put:
        dest, sep, src = item.partition("=")
        if not sep or not dest or not src:
            raise SystemExit(f"uwsgi-fleetctl: --put takes DEST=SRC, got {item!r}")
        candidates[dest] = src
    with tempfile.TemporaryDirectory(prefix="uwsgi-fleet-nginx-") as workdir:
        staged = staged_nginx_dir(workdir, candidates, args.remove)
        result = subprocess.run(nginx_test_command(staged), capture_output=True, text=True)
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        print(f"nginx -t failed for the config as this run would leave it:\n{output}", file=sys.stderr)
        return 1
    return 0
