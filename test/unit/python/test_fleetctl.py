"""uwsgi-fleetctl's pure parts: the uwsgi protocol client and its waiting."""
import os
import socket
import struct
import threading

import pytest

import uwsgi_fleetctl as ctl


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
    assert parse_packet(ctl.uwsgi_packet(env)) == (0, 0, env)


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
    status, headers, body = ctl.uwsgi_get("127.0.0.1", port)
    assert (status, headers["X-Fleet-Instance"], body) == (200, "9", b'{"status": "ok"}')
    assert seen["env"]["PATH_INFO"] == "/_health" and seen["env"]["REQUEST_METHOD"] == "GET"


def test_nothing_listening_is_unreachable_not_an_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert ctl.uwsgi_get("127.0.0.1", port, timeout=1) is None
    assert not ctl.serves("127.0.0.1", port)


def test_wait_until_gives_up_with_what_it_waited_for():
    with pytest.raises(SystemExit, match="timed out after 0.2s waiting for the moon"):
        ctl.wait_until(lambda: False, 0.2, "the moon", interval=0.05)


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

    staged = ctl.staged_nginx_dir(str(work), {str(live / "nginx.conf"): str(candidate)},
                                  [str(live / "sites-enabled" / "default")], conf_dir=str(live))

    assert open(os.path.join(staged, "nginx.conf")).read() == "new\n"
    assert not os.path.lexists(os.path.join(staged, "sites-enabled", "default"))
    assert os.readlink(os.path.join(staged, "sites-enabled", "other")) == "/etc/nginx/sites-available/other"
    assert (live / "nginx.conf").read_text() == "old\n"
    assert (live / "sites-enabled" / "default").is_symlink()


def test_nginx_test_refuses_paths_outside_the_config_dir(tmp_path):
    (tmp_path / "nginx").mkdir()
    with pytest.raises(SystemExit, match="not under"):
        ctl.staged_nginx_dir(str(tmp_path / "work"), {"/etc/passwd": "/dev/null"}, [],
                             conf_dir=str(tmp_path / "nginx"))


def test_nginx_test_mounts_the_copy_over_the_config_dir_privately():
    command = ctl.nginx_test_command("/tmp/staged", conf_dir="/etc/nginx")
    assert command[:4] == ["unshare", "--mount", "--propagation", "private"]
    assert command[-2:] == ["/tmp/staged", "/etc/nginx"]
    assert "nginx -t" in command[6]
