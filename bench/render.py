"""A topology's nginx.conf and app-server commands, rewritten from the converged
fleet's (bench/fleet.py) with as few changes as possible: ports, paths, and what
makes the topology what it is (balancing, one uWSGI, gunicorn)."""
import re

from fleet import FleetError as RenderError

LOOPBACK = "127.0.0.1"
GUNICORN = "/usr/bin/gunicorn"
BALANCE_WORDS = ("least_conn", "random", "ip_hash", "hash", "least_time", "sticky")
_UPSTREAM_RE = re.compile(r"(^[ \t]*upstream\s+(\S+)\s*\{)(.*?)(^[ \t]*\})", re.S | re.M)


def _upstream(conf):
    matches = list(_UPSTREAM_RE.finditer(conf))
    if len(matches) != 1:
        raise RenderError(f"the fleet's nginx config: expected one upstream block, found {len(matches)}")
    return matches[0]


def balance_directive(conf):
    """The upstream's balancing line as rendered (None: round robin)."""
    for line in _upstream(conf).group(3).splitlines():
        if line.split() and line.split()[0].rstrip(";") in BALANCE_WORDS:
            return line.strip()
    return None


def _sub(pattern, repl, text, what):
    new, count = re.subn(pattern, repl, text, flags=re.M)
    if not count:
        raise RenderError(f"the fleet's nginx config has no {what} to rewrite")
    return new


def render_nginx(conf, *, listen_port, backend_ports, workdir, balance=True, proxy=False, conns_scale=1):
    """The fleet's nginx config with only: listen port (loopback), upstream server
    ports (the first rendered server line is the template), pid/log/temp paths;
    `balance=False` drops the balancing directive (round robin); `proxy=True`
    turns the uwsgi_* directives into their proxy_* twins (gunicorn); a server's
    max_conns is multiplied by `conns_scale` (one server of N processes holds N
    instances' share)."""
    conf = _sub(r"^(\s*)pid\s+[^;]+;", rf"\1pid {workdir}/nginx.pid;", conf, "pid")
    conf = _sub(r"^(\s*)access_log\s+[^;\s]+", rf"\1access_log {workdir}/access.log", conf, "access_log")
    conf = _sub(r"^(\s*)error_log\s+[^;\s]+", rf"\1error_log {workdir}/error.log", conf, "error_log")
    # Relative includes resolve against the config's directory, which is now workdir.
    conf = re.sub(r"^(\s*include\s+)(?!/)([^;]+);", r"\1/etc/nginx/\2;", conf, flags=re.M)
    conf = _sub(r"^(\s*listen\s+)\S+", rf"\g<1>{LOOPBACK}:{listen_port}", conf, "listen")
    match = _upstream(conf)
    lines, template = [], None
    for line in match.group(3).splitlines():
        words = line.split()
        if words and words[0] == "server":
            if template is None:
                template = re.sub(r"max_conns=(\d+)", lambda m: f"max_conns={int(m.group(1)) * conns_scale}", line)
                lines += [re.sub(r"(server\s+)\S+", rf"\g<1>{LOOPBACK}:{p}", template, count=1) for p in backend_ports]
        elif not (words and words[0].rstrip(";") in BALANCE_WORDS and not balance):
            lines.append(line)
    if template is None:
        raise RenderError("the fleet's upstream has no server line")
    conf = conf[:match.start(3)] + "\n".join(lines) + "\n" + conf[match.end(3):]
    if proxy:
        conf = "\n".join(line for line in map(_proxy_line, conf.splitlines()) if line is not None) + "\n"
    temp = "".join(f"    {n}_temp_path {workdir}/{n}_temp;\n" for n in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return _sub(r"^(http\s*\{[ \t]*\n)", lambda m: m.group(1) + temp, conf, "http block")


def _proxy_line(line):
    """uwsgi_pass -> proxy_pass http://, uwsgi_param HTTP_X_... -> proxy_set_header X-...,
    other uwsgi_* -> proxy_*; `include uwsgi_params` and other uwsgi_params dropped."""
    stripped, indent = line.strip(), line[:len(line) - len(line.lstrip())]
    m = re.match(r"uwsgi_param\s+(\S+)\s+(.+);$", stripped)
    if re.match(r"include\s+\S*uwsgi_params;", stripped) or (m and not m.group(1).startswith("HTTP_")):
        return None
    if m:
        name = "-".join(w if w in ("IP", "ID") else w.capitalize() for w in m.group(1)[5:].split("_"))
        return f"{indent}proxy_set_header {name} {m.group(2)};"
    m = re.match(r"uwsgi_pass\s+(\S+);$", stripped)
    if m:
        return f"{indent}proxy_pass http://{m.group(1)};"
    return line.replace("uwsgi_", "proxy_", 1) if stripped.startswith("uwsgi_") else line


def get_option(argv, name):
    for i, arg in enumerate(argv):
        if arg == f"--{name}" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None


def set_option(argv, name, value, env=None):
    """argv with `--name value` set (replacing --name value / --name=value, or
    appended); for --env, `env` names the variable whose setting is replaced."""
    out, found, i = [], False, 0
    while i < len(argv):
        arg, joined = argv[i], argv[i].startswith(f"--{name}=")
        if arg == f"--{name}" and i + 1 < len(argv) or joined:
            old = arg.split("=", 1)[1] if joined else argv[i + 1]
            mine = env is None or old.split("=", 1)[0] == env
            out += ([f"--{name}", value] if mine else ([arg] if joined else [arg, old]))
            found, i = found or mine, i + (1 if joined else 2)
        else:
            out.append(arg)
            i += 1
    return out if found else out + [f"--{name}", value]


def rewrite_uwsgi(argv, *, port, fifo, config, instance, processes=None, threads=None):
    """An instance's command with only the socket port, master-fifo path and the
    STORE_APP_CONFIG / UWSGI_FLEET_INSTANCE env rewritten (and --processes /
    --threads when given)."""
    if get_option(argv, "socket") is None:
        raise RenderError("the rendered uWSGI command has no --socket")
    argv = set_option(argv, "socket", f"{LOOPBACK}:{port}")
    if get_option(argv, "master-fifo") is not None:
        argv = set_option(argv, "master-fifo", fifo)
    argv = set_option(argv, "env", f"STORE_APP_CONFIG={config}", env="STORE_APP_CONFIG")
    argv = set_option(argv, "env", f"UWSGI_FLEET_INSTANCE={instance}", env="UWSGI_FLEET_INSTANCE")
    for name, value in (("processes", processes), ("threads", threads)):
        if value is not None:
            argv = set_option(argv, name, str(value))
    return argv


def gunicorn_argv(uwsgi_argv, *, port, processes, threads, config, conf_py):
    """gunicorn gthread with the uWSGI command's app, chdir, sys.path, backlog and timeout."""
    argv = [GUNICORN, "--bind", f"{LOOPBACK}:{port}", "--workers", str(processes), "--worker-class", "gthread",
            "--threads", str(threads), "--backlog", get_option(uwsgi_argv, "listen") or "1024",
            "--timeout", get_option(uwsgi_argv, "harakiri") or "60", "--graceful-timeout", "5",
            "--worker-tmp-dir", "/dev/shm", "--chdir", get_option(uwsgi_argv, "chdir") or "/opt/uwsgi_fleet",
            "--config", conf_py]
    for i, arg in enumerate(uwsgi_argv[:-1]):
        if arg == "--pythonpath":
            argv += ["--pythonpath", uwsgi_argv[i + 1]]
    # No UWSGI_FLEET_INSTANCE: gunicorn applies --env after post_fork, which names the worker.
    return argv + ["--env", f"STORE_APP_CONFIG={config}", get_option(uwsgi_argv, "module") or "store_app.wsgi:application"]


# Names the worker in X-Fleet-Instance (w1..wN), so the shares of one server's
# workers show: imported by each uWSGI worker of `single*` (--lazy-apps: after
# the fork), and gunicorn's --config (post_fork).
WORKER_TAG_PY = '''import os


def post_fork(server, worker):
    os.environ["UWSGI_FLEET_INSTANCE"] = "w%d" % worker.age


try:
    import uwsgi
    os.environ["UWSGI_FLEET_INSTANCE"] = "w%d" % uwsgi.worker_id()
except ImportError:
    pass
'''
