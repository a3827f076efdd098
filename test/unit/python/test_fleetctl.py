"""uwsgi-fleetctl: the uwsgi protocol client, waiting, the master FIFO write
of `reload`, `outcomes` and the staged nginx test. Manifests come from
fleet_manifests.fleet_manifest (schema-valid, version 1)."""
import argparse
import json
import os
import pwd
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

from fleet_manifests import fleet_manifest
from support import FILES_DEFAULT
from uwsgi_fleetctl import cli, common, converge, nginx, protocol, reports
from uwsgi_fleetctl import manifest as manifests
from uwsgi_fleetctl.process_manager import ProcessManager

LAUNCHER = FILES_DEFAULT / "uwsgi-fleetctl"  # /usr/local/sbin/uwsgi-fleetctl on a node


def parse_packet(data):
    modifier1, size, modifier2 = struct.unpack("<BHB", data[:4])
    body, env, i = data[4:4 + size], {}, 0
    while i < len(body):
        (klen,) = struct.unpack("<H", body[i:i + 2])
        key = body[i + 2:i + 2 + klen].decode()
        i += 2 + klen
        (vlen,) = struct.unpack("<H", body[i:i + 2])
        env[key] = body[i + 2:i + 2 + vlen].decode()
        i += 2 + vlen
    return modifier1, modifier2, env


def test_uwsgi_packet_round_trips_the_environ():
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/_health", "HTTP_HOST": "x"}
    assert parse_packet(protocol.uwsgi_packet(env)) == (0, 0, env)


@pytest.fixture
def fake_uwsgi():
    """A one-shot server on loopback that answers like uWSGI and records the request."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    seen = {}

    def serve():
        conn, _ = server.accept()
        seen["env"] = parse_packet(conn.recv(65536))[2]
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Fleet-Instance: 9\r\n\r\n{\"status\": \"ok\"}")
        conn.close()
    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1], seen
    server.close()


def test_uwsgi_get_speaks_the_protocol(fake_uwsgi):
    port, seen = fake_uwsgi
    status, headers, body = protocol.uwsgi_get("127.0.0.1", port)
    assert (status, headers["X-Fleet-Instance"], body) == (200, "9", b'{"status": "ok"}')
    assert seen["env"]["PATH_INFO"] == "/_health" and seen["env"]["REQUEST_METHOD"] == "GET"


def test_nothing_listening_is_unreachable_not_an_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert protocol.uwsgi_get("127.0.0.1", port, timeout=1) is None
    assert not protocol.serves("127.0.0.1", port)


def test_wait_until_gives_up_with_what_it_waited_for():
    with pytest.raises(SystemExit, match="timed out after 0.2s waiting for the moon"):
        common.wait_until(lambda: False, 0.2, "the moon", interval=0.05)


def test_nginx_test_stages_the_config_as_the_run_leaves_it(tmp_path):
    """The copy has the new file in place and the removed site gone; the live tree is untouched,
    and Debian's absolute sites-enabled links stay links (they resolve once mounted over /etc/nginx)."""
    live = tmp_path / "nginx"
    (live / "sites-available").mkdir(parents=True)
    (live / "sites-enabled").mkdir()
    (live / "nginx.conf").write_text("old\n")
    (live / "sites-available" / "default").write_text("server { listen 80 default_server; }\n")
    (live / "sites-enabled" / "default").symlink_to("/etc/nginx/sites-available/default")
    (live / "sites-available" / "other").write_text("server { listen 8080; }\n")
    (live / "sites-enabled" / "other").symlink_to("/etc/nginx/sites-available/other")
    candidate = tmp_path / "candidate.conf"
    candidate.write_text("new\n")
    work = tmp_path / "work"
    work.mkdir()

    staged = nginx.staged_nginx_dir(str(work), {str(live / "nginx.conf"): str(candidate)},
                                  [str(live / "sites-enabled" / "default")], conf_dir=str(live))

    assert open(os.path.join(staged, "nginx.conf")).read() == "new\n"
    assert not os.path.lexists(os.path.join(staged, "sites-enabled", "default"))
    assert os.readlink(os.path.join(staged, "sites-enabled", "other")) == "/etc/nginx/sites-available/other"
    assert (live / "nginx.conf").read_text() == "old\n"
    assert (live / "sites-enabled" / "default").is_symlink()


def test_nginx_test_refuses_paths_outside_the_config_dir(tmp_path):
    (tmp_path / "nginx").mkdir()
    with pytest.raises(SystemExit, match="not under"):
        nginx.staged_nginx_dir(str(tmp_path / "work"), {"/etc/passwd": "/dev/null"}, [],
                             conf_dir=str(tmp_path / "nginx"))


def debian_nginx(tmp_path):
    """A live config laid out as Debian ships it: sites-enabled/default is an
    absolute symlink to sites-available/default (here: into this tree, which
    plays /etc/nginx, so the link points at the live file as it does before
    the copy is mounted)."""
    live = tmp_path / "nginx"
    (live / "sites-available").mkdir(parents=True)
    (live / "sites-enabled").mkdir()
    (live / "nginx.conf").write_text("include sites-enabled/*;\n")
    (live / "sites-available" / "default").write_text("server { listen 80 default_server; }\n")
    (live / "sites-enabled" / "default").symlink_to(live / "sites-available" / "default")
    work = tmp_path / "work"
    work.mkdir()
    return live, work


def live_tree(root):
    """Every path under root, with a link's target or a file's text: what must not change."""
    return {str(p.relative_to(root)): os.readlink(p) if p.is_symlink() else p.read_text() if p.is_file() else None
            for p in sorted(root.rglob("*"))}


def test_nginx_test_puts_a_site_file_that_is_a_symlink_into_the_copy_only(tmp_path):
    """A site_file that is Debian's symlink: the copy gets the candidate as a
    file of its own; the live file the link points to is not written."""
    live, work = debian_nginx(tmp_path)
    before = live_tree(live)
    candidate = tmp_path / "candidate.conf"
    candidate.write_text("server { listen 8080; }\n")
    site = str(live / "sites-enabled" / "default")

    staged = nginx.staged_nginx_dir(str(work), {site: str(candidate)}, [], conf_dir=str(live))

    assert live_tree(live) == before
    copied = os.path.join(staged, "sites-enabled", "default")
    assert not os.path.islink(copied)
    assert open(copied).read() == candidate.read_text()


def test_nginx_test_removes_a_site_that_is_a_symlink_from_the_copy_only(tmp_path):
    live, work = debian_nginx(tmp_path)
    before = live_tree(live)
    site = str(live / "sites-enabled" / "default")

    staged = nginx.staged_nginx_dir(str(work), {}, [site], conf_dir=str(live))

    assert live_tree(live) == before
    assert not os.path.lexists(os.path.join(staged, "sites-enabled", "default"))
    assert os.path.exists(os.path.join(staged, "sites-available", "default"))


@pytest.mark.parametrize("change", ["put", "remove"])
def test_nginx_test_refuses_to_change_the_copy_through_a_symlinked_directory(tmp_path, change):
    """A directory of the config that is a symlink (here conf.d, pointing into
    the live tree): writing or removing under it in the copy would change what
    it points to, so the test refuses and the live tree is untouched."""
    live, work = debian_nginx(tmp_path)
    (live / "conf.available").mkdir()
    (live / "conf.available" / "fleet.conf").write_text("# live\n")
    (live / "conf.d").symlink_to(live / "conf.available")
    before = live_tree(live)
    candidate = tmp_path / "candidate.conf"
    candidate.write_text("# candidate\n")
    dest = str(live / "conf.d" / "fleet.conf")
    candidates, removes = ({dest: str(candidate)}, []) if change == "put" else ({}, [dest])

    with pytest.raises(SystemExit, match="conf.d is not a directory"):
        nginx.staged_nginx_dir(str(work), candidates, removes, conf_dir=str(live))
    assert live_tree(live) == before


def test_nginx_test_mounts_the_copy_over_the_config_dir_privately():
    command = nginx.nginx_test_command("/tmp/staged", conf_dir="/etc/nginx")
    assert command[:4] == ["unshare", "--mount", "--propagation", "private"]
    assert command[-2:] == ["/tmp/staged", "/etc/nginx"]
    assert "nginx -t" in command[6]


# -- reload: the master FIFO (issue 10, item 9) ---------------------------------

@pytest.fixture
def fifo_node(tmp_path, monkeypatch):
    """A manifest whose instance 9000 has a master FIFO in tmp_path (where the
    manifest's `fifo` says, not in its fifo_dir), run by this test's user; the
    process manager and /proc are stubbed so cmd_reload only does its FIFO
    work, and 'a new worker serves' right after the write."""
    fifo = tmp_path / "master-9000"
    os.mkfifo(fifo)
    manifest = fleet_manifest(fifo=str(tmp_path / "master-{port}"), fifo_dir=str(tmp_path / "elsewhere"))
    workers = iter([[101], [102]])
    monkeypatch.setattr(ProcessManager, "master_pid", lambda self, port: 100)
    monkeypatch.setattr(converge, "children", lambda pid: next(workers, [102]))
    monkeypatch.setattr(converge, "serves", lambda host, port: True)
    return manifest, fifo


def reload_in_thread(manifest, timeout):
    """Run `reload 9000`; return (thread, outcome list) without waiting."""
    args = argparse.Namespace(ports=[9000], timeout=timeout)
    outcome = []

    def run():
        try:
            converge.cmd_reload(args, manifest)
            outcome.append("reloaded")
        except SystemExit as e:
            outcome.append(str(e))
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_reload_writes_w_to_the_master_fifo(fifo_node):
    manifest, fifo = fifo_node
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the "master"
    try:
        thread, outcome = reload_in_thread(manifest, timeout=5)
        thread.join(10)
        assert outcome == ["reloaded"]
        assert os.read(reader, 16) == b"w"
    finally:
        os.close(reader)


def test_reload_without_a_reader_times_out_instead_of_blocking(fifo_node):
    manifest, fifo = fifo_node
    timeout = 0.5
    started = time.monotonic()
    thread, outcome = reload_in_thread(manifest, timeout)
    thread.join(timeout + 5)
    assert not thread.is_alive(), "reload blocked on a FIFO nobody reads"
    assert len(outcome) == 1 and "after 0.5s" in outcome[0], outcome
    assert time.monotonic() - started >= timeout


def test_reload_refuses_a_symlink_planted_in_place_of_the_fifo(fifo_node,
                                                              tmp_path):
    manifest, fifo = fifo_node
    target = tmp_path / "root-owned-file"
    target.write_text("precious\n")
    fifo.unlink()
    fifo.symlink_to(target)
    thread, outcome = reload_in_thread(manifest, timeout=0.5)
    thread.join(5)
    assert len(outcome) == 1 and "symlink" in outcome[0], outcome
    assert target.read_text() == "precious\n"


def test_reload_refuses_a_regular_file_in_place_of_the_fifo(fifo_node):
    manifest, fifo = fifo_node
    fifo.unlink()
    fifo.write_text("not a fifo\n")
    thread, outcome = reload_in_thread(manifest, timeout=0.5)
    thread.join(5)
    assert len(outcome) == 1 and "not a FIFO" in outcome[0], outcome
    assert fifo.read_text() == "not a fifo\n"


def test_reload_refuses_a_fifo_not_owned_by_the_app_user(fifo_node):
    """A FIFO someone else made (here: this test's user, while the manifest
    names another app user) is not the master's."""
    manifest, fifo = fifo_node
    other = next(p for p in pwd.getpwall() if p.pw_uid != os.getuid())
    manifest = dict(manifest, user=other.pw_name)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        thread, outcome = reload_in_thread(manifest, timeout=0.5)
        thread.join(5)
        assert len(outcome) == 1 and "owned by uid" in outcome[0], outcome
        assert os.read(reader, 16) == b""  # nothing was written
    finally:
        os.close(reader)


# -- outcomes -------------------------------------------------------------------

def serve_health(bodies):
    """Fake instances answering /_health with ``bodies`` (one each)."""
    ports = []
    for body in bodies:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen()

        def serve(server=server, body=body):
            conn, _ = server.accept()
            parse_packet(conn.recv(65536))
            conn.sendall(b"HTTP/1.1 200 OK\r\n\r\n" + json.dumps(body).encode())
            conn.close()
            server.close()
        threading.Thread(target=serve, daemon=True).start()
        ports.append(server.getsockname()[1])
    return ports


def test_outcomes_sums_the_instances(capsys):
    first = {"outcomes": [
        {"outcome": "accepted", "reason": None, "category": "error", "quantity": 5},
        {"outcome": "filtered", "reason": "not_stored", "category": "session", "quantity": 2}]}
    second = {"outcomes": [
        {"outcome": "accepted", "reason": None, "category": "error", "quantity": 7},
        {"outcome": "rate_limited", "reason": "project_quota", "category": "error", "quantity": 1}]}
    ports = serve_health([first, second])
    args = argparse.Namespace(ports=ports, json=True)
    assert reports.cmd_outcomes(args, fleet_manifest(bind_address="127.0.0.1")) == 0
    rows = {(r["outcome"], r["reason"], r["category"]): r["quantity"]
            for r in json.loads(capsys.readouterr().out)}
    expected = {}
    for body in (first, second):
        for r in body["outcomes"]:
            key = (r["outcome"], r["reason"], r["category"])
            expected[key] = expected.get(key, 0) + r["quantity"]
    assert rows == expected


def test_outcomes_says_which_instances_were_not_counted(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    args = argparse.Namespace(ports=[closed], json=False)
    assert reports.cmd_outcomes(args, fleet_manifest(bind_address="127.0.0.1")) == 1
    assert str(closed) in capsys.readouterr().err


# -- nginx-reload: a wildcard listen switched to one address --------------------------

def test_a_reload_blocked_by_nginxs_own_wildcard_is_recognised(monkeypatch):
    """nginx cannot reload from `listen 80` to `listen ADDR:80` (it holds *:80): that
    case, and only that one, is finished with a restart."""
    errors = '2026/11/27 [emerg] 12#12: bind() to 10.77.0.11:80 failed (98: Address already in use)\n'
    ss = "LISTEN 0 511 0.0.0.0:80 0.0.0.0:* users:((\"nginx\",pid=42,fd=6))\n"

    class Done:
        stdout = ss
    monkeypatch.setattr(nginx.subprocess, "run", lambda *a, **k: Done())
    assert nginx.own_bind_conflicts(errors, 42) == ["10.77.0.11:80"]
    # Another process holds the port: a restart would take nginx down, so no.
    assert nginx.own_bind_conflicts(errors, 7) == []
    # Any other failure: no.
    assert nginx.own_bind_conflicts("[emerg] unknown directive \"x\"", 42) == []


# -- forwarder: the status file, in the spool (the app user's) ------------------------

APP_USER = "nobody"      # the status file's owner: the forwarder runs as the app user
APP_UID = pwd.getpwnam(APP_USER).pw_uid


STREAM = {"url": "redis://127.0.0.1:1/0", "key_prefix": "ev:", "batch": 10, "dedup_seconds": 60, "maxlen": None}


def status_node(tmp_path, status=None):
    """A fleet whose store app's forwarder status file is in tmp_path, written
    as the app user (``status``: a dict as JSON; None: not written)."""
    from support import config_dict
    path = tmp_path / ".forwarder-status.json"
    config = tmp_path / "store_app.json"
    config.write_text(json.dumps(config_dict(tmp_path / "spool", stream=dict(STREAM, status_file=str(path)))))
    if status is not None:
        path.write_text(json.dumps(status))
        os.chown(path, APP_UID, -1)
    return fleet_manifest(store_app_config=str(config), user=APP_USER), path


def forwarder_cmd(manifest, json_out=False):
    return reports.cmd_forwarder(argparse.Namespace(json=json_out), manifest)


def test_forwarder_status_is_read_from_the_stream_config(tmp_path, capsys):
    manifest, _ = status_node(tmp_path, {
        "state": "running", "backlog_events": 3, "oldest_event_age_seconds": 4.5, "forwarded_total": 10,
        "redis_ok": False, "last_error": "ConnectionError", "updated_at": time.time(), "stale_after_seconds": 30,
        "unreadable": ["/spool/lost+found: Permission denied"], "unreadable_total": 1})
    code = forwarder_cmd(manifest)
    out = capsys.readouterr().out
    assert code == 1 and "3 events behind" in out and "redis unreachable" in out and "ConnectionError" in out
    assert "cannot read: /spool/lost+found: Permission denied" in out


def forwarder_in_thread(manifest):
    """`forwarder` in a thread: (thread, outcome list) without waiting."""
    outcome = []

    def run():
        try:
            outcome.append(forwarder_cmd(manifest))
        except SystemExit as e:
            outcome.append(str(e))
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_forwarder_refuses_a_fifo_planted_as_its_status_instead_of_blocking(tmp_path):
    manifest, path = status_node(tmp_path)
    os.mkfifo(path)
    os.chown(path, APP_UID, -1)
    thread, outcome = forwarder_in_thread(manifest)
    thread.join(5)
    try:
        assert not thread.is_alive(), "forwarder blocked opening a FIFO"
        assert len(outcome) == 1 and "not a regular file" in str(outcome[0]), outcome
    finally:
        if thread.is_alive():  # release the blocked open (old code): a writer comes and goes
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            thread.join(5)


def test_forwarder_does_not_follow_a_symlink_planted_as_its_status(tmp_path, capsys):
    secret = tmp_path / "root-only"
    secret.write_text(json.dumps({"state": "root's secret", "updated_at": time.time()}))
    secret.chmod(0o600)
    manifest, path = status_node(tmp_path)
    path.symlink_to(secret)
    with pytest.raises(SystemExit, match="symlink"):
        forwarder_cmd(manifest)
    assert "secret" not in capsys.readouterr().out


def test_forwarder_reads_a_status_only_if_the_app_user_wrote_it(tmp_path, capsys):
    """A root-owned file there (a hard link to one, say) is not the forwarder's."""
    manifest, path = status_node(tmp_path, {"state": "running", "updated_at": time.time()})
    os.chown(path, 0, -1)
    with pytest.raises(SystemExit, match="owned by uid 0"):
        forwarder_cmd(manifest)
    assert "running" not in capsys.readouterr().out


def test_forwarder_reads_a_bounded_status(tmp_path, capsys):
    manifest, path = status_node(tmp_path)
    with open(path, "w") as f:
        f.write('{"state": "running", "updated_at": %f, "pad": "' % time.time())
        f.write(" " * (reports.STATUS_MAX_BYTES + 1) + '"}')
    os.chown(path, APP_UID, -1)
    with pytest.raises(SystemExit, match="larger than %d bytes" % reports.STATUS_MAX_BYTES):
        forwarder_cmd(manifest)


# -- the store app's config: read by the installed app's loader (its schema) -----------

def summary_cmd(manifest, monkeypatch):
    """`summary` with no nginx answering (its health check fails) and no addresses."""
    def no_nginx(*args, **kwargs):
        raise OSError("no nginx here")
    monkeypatch.setattr(reports.urllib.request, "urlopen", no_nginx)
    monkeypatch.setattr(reports, "node_addresses", lambda: [])
    return reports.cmd_summary(argparse.Namespace(), manifest)


def test_summary_shows_the_dsn_of_each_project_of_the_config(tmp_path, monkeypatch, capsys):
    from support import KEY, KEY2
    manifest, _ = status_node(tmp_path)
    assert summary_cmd(manifest, monkeypatch) == 1
    out = capsys.readouterr().out
    spool = tmp_path / "spool"
    assert f"Sentry DSN: http://{KEY}@127.0.0.1/1   (events land in {spool}/<project id>/)" in out
    assert f"Sentry DSN: http://{KEY2}@127.0.0.1/2   (events land in {spool}/<project id>/)" in out


@pytest.mark.parametrize("command", ["summary", "forwarder"])
def test_a_config_off_the_schema_is_refused_with_the_loaders_message(tmp_path, monkeypatch, capsys, command):
    """config.schema.json is the contract: a config without a key the app
    requires (here max_event_bytes: an earlier release's, say) is refused
    as the app refuses it, naming the file and the key, not read as if valid."""
    manifest, _ = status_node(tmp_path, {"state": "running", "updated_at": time.time(), "redis_ok": True})
    config = tmp_path / "store_app.json"
    raw = json.loads(config.read_text())
    del raw["max_event_bytes"]
    config.write_text(json.dumps(raw))
    with pytest.raises(SystemExit) as refused:
        summary_cmd(manifest, monkeypatch) if command == "summary" else forwarder_cmd(manifest)
    message = str(refused.value.code)
    assert message.startswith(f"uwsgi-fleetctl: {config}: ") and "max_event_bytes" in message, message
    assert "Sentry DSN" not in capsys.readouterr().out


def launch_from(cwd, tmp_path, config, command):
    """The installed command (the launcher), run by root from `cwd` (a
    directory the app user controls) for a fleet whose store app config is
    `config`, with no PYTHON* variables from this test's environment."""
    manifest = tmp_path / "fleet.json"
    manifest.write_text(json.dumps(fleet_manifest(store_app_config=str(config), pythonpath=[str(FILES_DEFAULT)])))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run(["/usr/bin/python3", str(LAUNCHER), "--manifest", str(manifest), command],
                          cwd=cwd, env=dict(env, PYTHONDONTWRITEBYTECODE="1"),
                          capture_output=True, text=True, timeout=60)


def test_the_config_is_read_by_the_installed_loader_not_the_working_directorys(tmp_path):
    """As `tail`: an operator cd'd into the spool runs `forwarder`; a
    store_app/config.py planted there must not run (as root). The installed
    loader refuses the config (not the schema's), and the command ends with
    its message, no traceback."""
    spool = tmp_path / "spool"
    planted = spool / "store_app"
    planted.mkdir(parents=True)
    ran = tmp_path / "planted-code-ran"
    (planted / "__init__.py").write_text(f"open({str(ran)!r}, 'w').close()\n")
    (planted / "config.py").write_text(f"open({str(ran)!r}, 'w').close()\n")
    config = tmp_path / "store_app.json"
    config.write_text(json.dumps({"projects": {}, "stream": {"status_file": str(tmp_path / "status.json")}}))
    result = launch_from(spool, tmp_path, config, "forwarder")
    assert not ran.exists(), "the working directory's store_app ran"
    assert result.returncode == 1 and "Traceback" not in result.stderr, result
    assert result.stderr.startswith(f"uwsgi-fleetctl: {config}: ") and "config_version" in result.stderr, result


# -- forwarder: a status from before a crash is not current ----------------------------

@pytest.fixture
def written_status(tmp_path):
    """A status file as the forwarder writes it (its own write_status), as the
    app user, and the forwarder that wrote it."""
    from store_app import config, forwarder
    from support import config_dict
    spool = tmp_path / "spool"
    spool.mkdir()
    raw = config_dict(spool, stream=dict(STREAM, status_file=str(tmp_path / ".forwarder-status.json")))
    fwd = forwarder.Forwarder(config.parse_config(raw))
    fwd.status["redis_ok"] = True
    fwd.write_status()
    manifest, path = status_node(tmp_path)
    os.chown(path, APP_UID, -1)
    return manifest, fwd


def test_forwarder_says_how_old_its_status_is(written_status, monkeypatch, capsys):
    manifest, fwd = written_status
    now = time.time()
    monkeypatch.setattr(reports.time, "time", lambda: now + fwd.stale_after() - 1)
    assert forwarder_cmd(manifest) == 0
    out = capsys.readouterr().out
    assert "STALE" not in out and " s old" in out
    assert forwarder_cmd(manifest, json_out=True) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["stale"] is False and fwd.stale_after() - 2 < shown["age_seconds"] < fwd.stale_after()


def test_forwarder_calls_a_status_older_than_its_writer_promises_stale(written_status, monkeypatch, capsys):
    """After a crash or a power cut, the last status stays: past the bound the
    forwarder wrote in it, it is shown as stale, and the command fails."""
    manifest, fwd = written_status
    now = time.time()
    monkeypatch.setattr(reports.time, "time", lambda: now + fwd.stale_after() + 1)
    assert forwarder_cmd(manifest) == 1
    out = capsys.readouterr().out
    assert "STALE" in out and "running" in out
    assert forwarder_cmd(manifest, json_out=True) == 1
    assert json.loads(capsys.readouterr().out)["stale"] is True


# -- tail: the installed stream reader, never the working directory's -------------------

def test_tail_passes_its_own_arguments_to_the_stream_reader(monkeypatch):
    from store_app import stream
    seen = {}
    monkeypatch.setattr(stream, "main", lambda argv: seen.update(argv=argv) or 0)
    monkeypatch.setattr(os, "execvpe", lambda *a: pytest.fail(f"tail ran a new interpreter: {a}"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(manifests, "load", lambda path: fleet_manifest(store_app_config="/etc/x/store_app.json",
                                                                       pythonpath=["/opt/x"]))
    cli.main(["--manifest", "/m.json", "tail", "--project", "1", "--from", "0", "--count", "5"])
    assert seen["argv"] == ["tail", "--config", "/etc/x/store_app.json", "--project", "1", "--from", "0",
                            "--count", "5"]
    assert sys.path[0] == "/opt/x"
    with pytest.raises(SystemExit):
        cli.main(["--manifest", "/m.json", "health", "--project", "1"])


def test_tail_in_the_app_users_directory_runs_the_installed_reader(tmp_path):
    """An operator cd'd into the spool (the app user's) runs `tail`: a
    store_app/stream.py planted there must not run (as root); the installed
    app's reader does (here it says the config has no stream)."""
    from support import config_dict
    spool = tmp_path / "spool"
    planted = spool / "store_app"
    planted.mkdir(parents=True)
    ran = tmp_path / "planted-code-ran"
    (planted / "__init__.py").write_text("")
    (planted / "stream.py").write_text(f"open({str(ran)!r}, 'w').close()\n")
    config = tmp_path / "store_app.json"
    config.write_text(json.dumps(config_dict(spool)))
    result = launch_from(spool, tmp_path, config, "tail")
    assert not ran.exists(), "the working directory's store_app/stream.py ran"
    assert result.returncode == 2 and "has no stream" in result.stderr, result


def test_a_manifest_planted_in_the_app_users_directory_is_not_a_fleet(tmp_path, capsys):
    """manifest.find reads every <dir>/fleet.json under /etc/uwsgi_fleet; a
    fleet's FIFO or log directory (the app user's) may be one of those dirs."""
    for name in ("real", "planted"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "fleet.json").write_text(json.dumps(fleet_manifest(name=name)))
    os.chown(tmp_path / "planted", APP_UID, -1)
    os.chown(tmp_path / "planted" / "fleet.json", APP_UID, -1)
    assert manifests.find(root=str(tmp_path)) == str(tmp_path / "real" / "fleet.json")
    assert "planted" in capsys.readouterr().err


def fleets_dir(tmp_path, good=("web",), old=("old",), broken_default=True):
    """/etc/uwsgi_fleet as a node with several fleets has it: ``good`` ones,
    ``old`` ones (0.1.0's manifest: no manifest_version) and, at the top, the
    default fleet's manifest cut short (not JSON)."""
    for name in good + old:
        (tmp_path / name).mkdir()
        manifest = fleet_manifest(name=name)
        if name in old:
            del manifest["manifest_version"]
        (tmp_path / name / "fleet.json").write_text(json.dumps(manifest))
    if broken_default:
        (tmp_path / "fleet.json").write_text('{"manifest_version": 1, "name": "defa')
    return str(tmp_path)


def test_a_manifest_the_tool_cannot_use_is_skipped_with_a_warning(tmp_path, capsys):
    """--fleet web works beside an earlier release's manifest and a broken one."""
    root = fleets_dir(tmp_path)
    assert manifests.find("web", root=root) == str(tmp_path / "web" / "fleet.json")
    err = capsys.readouterr().err
    assert f"{tmp_path / 'old' / 'fleet.json'} is not a version 1 manifest" in err
    assert f"{tmp_path / 'fleet.json'} is not JSON" in err
    assert err.count("(skipped)") == 2, err


@pytest.mark.parametrize("fleet, error", [("old", "old/fleet.json is not a version 1 manifest"),
                                          ("default", "/fleet.json is not JSON")])
def test_the_fleet_asked_for_fails_with_its_manifests_own_error(tmp_path, capsys, fleet, error):
    with pytest.raises(manifests.ManifestError, match="converge with this cookbook|is not JSON") as refused:
        manifests.find(fleet, root=fleets_dir(tmp_path))
    assert error in str(refused.value.code)
    assert "(skipped)" in capsys.readouterr().err  # the other unusable one


def test_a_fleet_not_on_the_node_names_the_unusable_manifests(tmp_path, capsys):
    with pytest.raises(SystemExit, match=r"no fleet 'db' on this node \(fleets: web; unusable: .*old/fleet.json"):
        manifests.find("db", root=fleets_dir(tmp_path))


def test_without_fleet_an_unusable_manifest_is_still_a_fleet_of_the_node(tmp_path, capsys):
    """Not guessed onto the one readable fleet: the node has two."""
    with pytest.raises(SystemExit, match=r"2 fleets on this node \(web, .*old/fleet.json \(unusable\)\): "
                                         "name one with --fleet"):
        manifests.find(root=fleets_dir(tmp_path, broken_default=False))


def test_without_a_usable_manifest_the_node_only_one_fails_with_its_error(tmp_path, capsys):
    with pytest.raises(manifests.ManifestError, match="old/fleet.json is not a version 1 manifest"):
        manifests.find(root=fleets_dir(tmp_path, good=(), broken_default=False))
    (tmp_path / "fleet.json").write_text("{")
    with pytest.raises(SystemExit, match="2 fleets on this node .*: none usable: converge with this cookbook"):
        manifests.find(root=str(tmp_path))


def test_nginx_reload_reads_a_bounded_part_of_the_error_log(tmp_path):
    log = tmp_path / "error.log"
    log.write_bytes(b"old\n" + b"x" * (2 * nginx.LOG_READ_MAX))
    assert len(nginx.log_since(str(log), 4)) == nginx.LOG_READ_MAX


def test_a_rolling_restart_waits_until_nginx_may_use_each_instance_again(monkeypatch):
    """nginx leaves out an instance that refused a connection for fail_timeout: the
    next one must not go down before that, or nginx finds no instance at all."""
    events = []
    manifest = fleet_manifest(upstream_fail_timeout=3.5)  # the manifest's, not a default of the tool's
    fail_timeout = manifest["upstream_fail_timeout"]
    monkeypatch.setattr(ProcessManager, "master_pid", lambda self, port: 100)
    monkeypatch.setattr(ProcessManager, "restart", lambda self, port: events.append(("restart", port)))
    monkeypatch.setattr(converge, "serves", lambda host, port: True)
    monkeypatch.setattr(converge.time, "sleep", lambda seconds: events.append(("sleep", seconds)))
    converge.cmd_restart(argparse.Namespace(ports=[9000, 9001], timeout=5), manifest)
    assert events == [("restart", 9000), ("sleep", fail_timeout), ("restart", 9001), ("sleep", fail_timeout)]
