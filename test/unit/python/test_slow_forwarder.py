"""Slow (about 5 s): the forwarder moves spooled events into a Redis stream
per project, and the stream reader reads them back, against a real
redis-server (redis_server.py).  Every spooled event appears exactly once
with its id, whatever is killed when."""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from store_app import config, forwarder, spool, stream
from redis_server import PASSWORD, free_port
from support import (FILES_DEFAULT, config_dict, event_bytes, make_app,
                     spooled, store)

PREFIX = "ev:"

pytestmark = pytest.mark.slow


def stream_config(tmp_path, server, batch=10, dedup_seconds=3600,
                  maxlen=None):
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir(exist_ok=True)
    return config_dict(spool_dir, stream={
        "url": server.url, "key_prefix": PREFIX, "batch": batch,
        "status_file": str(tmp_path / "forwarder.json"),
        "dedup_seconds": dedup_seconds, "maxlen": maxlen})


def write_config(tmp_path, raw):
    path = tmp_path / "store_app.json"
    path.write_text(json.dumps(raw))
    return str(path)


def spool_events(spool_dir, count, project="1"):
    """``count`` events spooled as the app spools them; their ids."""
    ids = []
    for _ in range(count):
        event_id = uuid.uuid4().hex
        spool.spool_event(str(spool_dir), project, event_id,
                          event_bytes(event_id))
        ids.append(event_id)
    return ids


def stream_ids(client, project="1"):
    return [fields[b"event_id"].decode()
            for _, fields in client.xrange(PREFIX + project)]


def run_cli(tmp_path, module, *args, **kw):
    env = dict(os.environ, PYTHONPATH=str(FILES_DEFAULT),
               PYTHONDONTWRITEBYTECODE="1")
    return subprocess.Popen([sys.executable, "-m", module, *args], env=env,
                            cwd=str(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def wait_for(predicate, timeout=15.0, what="condition"):
    """Poll ``predicate`` until true (waiting, not asserting)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.002)


def status(tmp_path):
    try:
        return json.loads((tmp_path / "forwarder.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


# -- the forwarder ----------------------------------------------------------

def test_every_accepted_event_reaches_its_projects_stream_once(
        tmp_path, redis_server):
    raw = stream_config(tmp_path, redis_server, batch=10)
    app = make_app(tmp_path, **{k: v for k, v in raw.items()
                                if k != "spool_dir"})
    acked = {"1": [], "2": []}
    for i in range(25):
        project = "1" if i % 3 else "2"
        key = raw["projects"][project]["public_key"]
        data = event_bytes()
        resp = store(app, data, key=key, project=project)
        assert resp.status == 200
        acked[project].append(resp.json["id"])
        if i == 5:   # a retry: acknowledged again, spooled once
            assert store(app, data, key=key, project=project).status == 200
    spool_dir = tmp_path / "spool"
    payloads = {e[:-5]: (spool_dir / "1" / e).read_bytes()
                for e in spooled(spool_dir, "1")}

    fwd = forwarder.Forwarder(config.parse_config(raw))
    fwd.run(once=True)

    client = redis_server.client()
    for project in ("1", "2"):
        got = stream_ids(client, project)
        assert len(got) == len(set(got))
        assert sorted(got) == sorted(acked[project])
        assert spooled(spool_dir, project) == []
    for _, fields in client.xrange(PREFIX + "1"):
        assert fields[b"event"] == payloads[fields[b"event_id"].decode()]
    # The spool root's own dot-files are not events.
    assert (spool_dir / ".quota").exists()
    st = status(tmp_path)
    assert (st["forwarded_total"], st["duplicates_total"]) == (25, 0)
    assert (st["backlog_events"], st["state"], st["redis_ok"]) == \
        (0, "stopped", True)


class Crash(BaseException):
    """Stands for the process dying."""


def test_a_crash_between_the_ack_and_the_unlink_duplicates_nothing(
        tmp_path, redis_server, monkeypatch):
    raw = stream_config(tmp_path, redis_server, batch=10)
    ids = spool_events(tmp_path / "spool", 30)
    calls = []
    real_remove = spool.remove

    def remove_then_crash(spool_dir, events):
        calls.append(len(events))
        if len(calls) == 2:
            raise Crash()        # Redis has the batch; the files stay
        real_remove(spool_dir, events)

    monkeypatch.setattr(spool, "remove", remove_then_crash)
    with pytest.raises(Crash):
        forwarder.Forwarder(config.parse_config(raw)).run(once=True)
    client = redis_server.client()
    assert len(stream_ids(client)) == 20
    assert len(spooled(tmp_path / "spool")) == 20   # 10 of them sent

    monkeypatch.setattr(spool, "remove", real_remove)
    restarted = forwarder.Forwarder(config.parse_config(raw))
    restarted.run(once=True)
    assert sorted(stream_ids(client)) == sorted(ids)
    assert restarted.status["duplicates_total"] == 10
    assert restarted.status["forwarded_total"] == 10
    assert spooled(tmp_path / "spool") == []


def test_kill_9_at_random_points_loses_nothing_and_duplicates_nothing(
        tmp_path, redis_server):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    raw = stream_config(tmp_path, redis_server, batch=5)
    path = write_config(tmp_path, raw)
    ids = spool_events(tmp_path / "spool", 300)
    client = redis_server.client()
    killed_midway = 0
    for _ in range(5):
        target = min(300, client.xlen(PREFIX + "1") + rng.randint(1, 60))
        proc = run_cli(tmp_path, "store_app.forwarder", "--config", path)
        wait_for(lambda: client.xlen(PREFIX + "1") >= target
                 or proc.poll() is not None, what="progress")
        time.sleep(rng.random() * 0.005)   # land anywhere in a batch
        proc.kill()
        proc.communicate()
        killed_midway += client.xlen(PREFIX + "1") < 300
    proc = run_cli(tmp_path, "store_app.forwarder", "--config", path, "--once")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    got = stream_ids(client)
    assert len(got) == len(set(got)), "duplicates (seed %d)" % seed
    assert sorted(got) == sorted(ids), "lost events (seed %d)" % seed
    assert spooled(tmp_path / "spool") == []
    assert killed_midway >= 3, seed


def test_redis_down_the_spool_grows_and_drains_when_redis_returns(
        tmp_path, redis_server):
    raw = stream_config(tmp_path, redis_server, batch=10)
    fwd = forwarder.Forwarder(config.parse_config(raw), status_seconds=0,
                              backoff=(0.02, 0.1))
    thread = threading.Thread(target=fwd.run)
    thread.start()
    try:
        wait_for(lambda: status(tmp_path).get("state") == "running",
                 what="the first status")
        redis_server.kill()
        ids = spool_events(tmp_path / "spool", 40)
        for name in spooled(tmp_path / "spool"):
            # Spooled two minutes ago: the status says how far behind.
            old = time.time() - 120
            os.utime(tmp_path / "spool" / "1" / name, (old, old))
        # The status of a scan after every file was backdated (one during
        # the loop above, on a loaded machine, still sees a new file).
        wait_for(lambda: status(tmp_path).get("backlog_events") == 40
                 and status(tmp_path).get("redis_ok") is False
                 and status(tmp_path).get("oldest_event_age_seconds", 0) >= 120,
                 what="the backlog and its age in the status")
        st = status(tmp_path)
        assert st["oldest_event_age_seconds"] >= 120
        assert "ConnectionError" in st["last_error"]
        text = (tmp_path / "forwarder.json").read_text()
        assert PASSWORD not in text and ":***@" in st["redis"]
        assert len(spooled(tmp_path / "spool")) == 40

        redis_server.start()
        wait_for(lambda: status(tmp_path).get("forwarded_total") == 40
                 and status(tmp_path).get("backlog_events") == 0,
                 what="the backlog to drain")
        assert status(tmp_path)["redis_ok"] is True
    finally:
        fwd.stopping.set()
        thread.join(timeout=10)
    assert sorted(stream_ids(redis_server.client())) == sorted(ids)
    assert spooled(tmp_path / "spool") == []


def test_sigterm_stops_after_the_batch_in_flight(tmp_path, redis_server):
    raw = stream_config(tmp_path, redis_server, batch=20)
    path = write_config(tmp_path, raw)
    ids = spool_events(tmp_path / "spool", 600)
    client = redis_server.client()
    proc = run_cli(tmp_path, "store_app.forwarder", "--config", path)
    wait_for(lambda: client.xlen(PREFIX + "1") > 0, what="a first batch")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert status(tmp_path)["state"] == "stopped"
    # Whatever Redis has left the spool: the batch in flight was finished.
    sent = stream_ids(client)
    left = [name[:-5] for name in spooled(tmp_path / "spool")]
    assert not set(sent) & set(left)
    assert sorted(sent + left) == sorted(ids)
    assert "forwarder: stopped" in err and PASSWORD not in err


def test_an_id_is_appended_again_only_after_the_dedup_window(
        tmp_path, redis_server):
    raw = stream_config(tmp_path, redis_server, dedup_seconds=3600)
    fwd = forwarder.Forwarder(config.parse_config(raw))
    event_id = uuid.uuid4().hex

    def resend():
        spool.spool_event(str(tmp_path / "spool"), "1", event_id,
                          event_bytes(event_id))
        fwd.run_pass()

    resend()
    resend()
    client = redis_server.client()
    assert stream_ids(client) == [event_id]
    assert fwd.status["duplicates_total"] == 1
    # An hour and a bit later (the seen entry aged past the window):
    client.zadd(PREFIX + "1:seen", {event_id: 0})
    resend()
    assert stream_ids(client) == [event_id, event_id]
    assert client.pttl(PREFIX + "1:seen") > 3599000


def test_maxlen_trims_the_stream(tmp_path, redis_server):
    raw = stream_config(tmp_path, redis_server, batch=100, maxlen=10)
    spool_events(tmp_path / "spool", 300)
    forwarder.Forwarder(config.parse_config(raw)).run(once=True)
    # MAXLEN ~ trims whole nodes: about 10, never all 300.
    assert 10 <= redis_server.client().xlen(PREFIX + "1") < 300


def test_without_a_stream_the_forwarder_has_nothing_to_do(tmp_path):
    path = write_config(tmp_path, config_dict(tmp_path / "spool"))
    proc = run_cli(tmp_path, "store_app.forwarder", "--config", path)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "nothing to forward" in err


# -- what the forwarder cannot read -------------------------------------------

def forward_once_as(user, base, redis_server):
    """``store_app.forwarder --once`` as ``user`` (the app user: root reads
    anything) on the spool ``base``/spool, everything in it the user's but
    what is root's already; (exit code, stderr, status)."""
    spool_dir = base / "spool"
    raw = config_dict(spool_dir, stream={
        "url": redis_server.url, "key_prefix": PREFIX, "batch": 10,
        "status_file": str(spool_dir / ".forwarder-status.json"),
        "dedup_seconds": 3600, "maxlen": None})
    path = base / "store_app.json"
    path.write_text(json.dumps(raw))
    path.chmod(0o644)
    for directory, dirs, files in os.walk(spool_dir):
        for name in [directory] + [os.path.join(directory, n)
                                   for n in dirs + files]:
            if os.stat(name).st_mode & 0o077:   # not root's 0700 / 0600
                os.chown(name, user.pw_uid, user.pw_gid)
    env = dict(os.environ, PYTHONPATH=str(FILES_DEFAULT),
               PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "store_app.forwarder", "--config", str(path),
         "--once"], env=env, cwd=str(base), user=user.pw_uid,
        group=user.pw_gid, extra_groups=[], capture_output=True, text=True,
        timeout=60)
    status_text = (spool_dir / ".forwarder-status.json").read_text() \
        if (spool_dir / ".forwarder-status.json").exists() else "{}"
    return proc.returncode, proc.stderr, json.loads(status_text)


def test_a_directory_the_forwarder_cannot_read_does_not_stop_it(
        app_user_dir, redis_server):
    """A spool on a mount of its own: a root-owned 0700 lost+found."""
    base, user = app_user_dir
    (base / "spool").mkdir()
    ids = spool_events(base / "spool", 5)
    lost = base / "spool" / "lost+found"
    lost.mkdir(mode=0o700)

    code, err, st = forward_once_as(user, base, redis_server)

    assert code == 0, err
    assert sorted(stream_ids(redis_server.client())) == sorted(ids)
    assert st["unreadable_total"] == 1 and \
        st["unreadable"][0].startswith(str(lost) + ": ")
    assert err.count("cannot read %s" % lost) == 1, err   # once, not per pass


def test_an_event_file_the_forwarder_cannot_read_does_not_stop_it(
        app_user_dir, redis_server):
    """Say root restored an event as 0600: it stays (and says so), the rest
    goes, though it is the oldest, read first."""
    base, user = app_user_dir
    (base / "spool").mkdir()
    ids = spool_events(base / "spool", 5)
    root_only = base / "spool" / "1" / (uuid.uuid4().hex + ".json")
    root_only.write_bytes(event_bytes(root_only.name[:-5]))
    root_only.chmod(0o600)
    os.utime(root_only, (0, 0))

    code, err, st = forward_once_as(user, base, redis_server)

    assert code == 1, err               # --once: an event is left
    assert sorted(stream_ids(redis_server.client())) == sorted(ids)
    assert spooled(base / "spool") == [root_only.name]
    assert st["backlog_events"] == 1 and st["unreadable_total"] == 1
    assert "cannot read %s" % root_only in err


def test_the_status_is_rewritten_within_its_stale_bound_while_redis_is_down(
        tmp_path):
    """A backoff outlasts STATUS_SECONDS: the status is still rewritten, so
    its age stays under the stale_after_seconds it states (what
    `uwsgi-fleetctl forwarder` judges it by)."""
    class QuickTimeouts(forwarder.Forwarder):
        REDIS_TIMEOUT_SECONDS = 0.5

    raw = config_dict(tmp_path / "spool", stream={
        "url": "redis://127.0.0.1:%d/0" % free_port(), "key_prefix": PREFIX,
        "batch": 10, "status_file": str(tmp_path / "forwarder.json"),
        "dedup_seconds": 3600, "maxlen": None})
    (tmp_path / "spool").mkdir()
    spool_events(tmp_path / "spool", 1)    # something to send: Redis is tried
    bound = 2.0
    fwd = QuickTimeouts(config.parse_config(raw), status_seconds=0.2,
                        backoff=(2 * bound, 2 * bound))
    thread = threading.Thread(target=fwd.run)
    thread.start()
    try:
        wait_for(lambda: status(tmp_path).get("redis_ok") is False,
                 what="the first failure")
        bound = status(tmp_path)["stale_after_seconds"]
        assert bound == fwd.stale_after() < fwd.BACKOFF_FIRST
        ages, end = [], time.monotonic() + 1.5 * bound
        while time.monotonic() < end:       # within the first backoff
            ages.append(time.time() - status(tmp_path)["updated_at"])
            time.sleep(0.02)
        assert max(ages) < bound
    finally:
        fwd.stopping.set()
        thread.join(timeout=10)


# -- the stream reader ------------------------------------------------------

def test_tail_prints_each_event_once_with_its_id(tmp_path, redis_server):
    raw = stream_config(tmp_path, redis_server)
    ids1 = spool_events(tmp_path / "spool", 5, "1")
    ids2 = spool_events(tmp_path / "spool", 3, "2")
    forwarder.Forwarder(config.parse_config(raw)).run(once=True)
    client = redis_server.client()
    # A duplicate that got past the forwarder's window.
    client.xadd(PREFIX + "1", {"event_id": ids1[0],
                               "event": event_bytes(ids1[0])})

    class Out(list):
        write = list.append

        def flush(self):
            pass

    out = Out()
    cfg = config.parse_config(raw)
    assert stream.tail(cfg, start="0", idle_exit=True, out=out,
                       block_ms=50) == 8
    lines = [json.loads(line) for line in out]
    # In each stream's order, the duplicate dropped.
    assert [e["event_id"] for e in lines if e["project"] == "1"] == \
        stream_ids(client, "1")[:5] and sorted(stream_ids(client, "1")[:5]) \
        == sorted(ids1)
    assert sorted(e["event_id"] for e in lines
                  if e["project"] == "2") == sorted(ids2)
    assert all(e["event"]["event_id"] == e["event_id"] for e in lines)
    assert all(e["stream_id"].count("-") == 1 for e in lines)

    out = Out()
    assert stream.tail(cfg, projects=["2"], start="0", count=2, out=out) == 2
    assert [json.loads(line)["event_id"] for line in out] == \
        [e["event_id"] for e in lines if e["project"] == "2"][:2]


def test_tail_from_now_starts_after_the_last_entry(tmp_path, redis_server):
    raw = stream_config(tmp_path, redis_server)
    spool_events(tmp_path / "spool", 2)
    forwarder.Forwarder(config.parse_config(raw)).run(once=True)
    client = redis_server.client()
    starts = stream._start_ids(client, [PREFIX + "1", PREFIX + "2"], "$")
    assert starts == {PREFIX + "1": client.xrevrange(PREFIX + "1")[0][0],
                      PREFIX + "2": "0-0"}


def test_tail_cli(tmp_path, redis_server):
    raw = stream_config(tmp_path, redis_server)
    path = write_config(tmp_path, raw)
    ids = spool_events(tmp_path / "spool", 4)
    forwarder.Forwarder(config.parse_config(raw)).run(once=True)
    proc = run_cli(tmp_path, "store_app.stream", "tail", "--config", path,
                   "--from", "0", "--project", "1", "--count", "4")
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert [json.loads(line)["event_id"] for line in out.splitlines()] == \
        stream_ids(redis_server.client())
    assert sorted(stream_ids(redis_server.client())) == sorted(ids)
    redis_server.kill()
    proc = run_cli(tmp_path, "store_app.stream", "tail", "--config", path)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 1 and out == ""
    assert ":***@127.0.0.1" in err and PASSWORD not in err


def test_a_batch_holds_at_most_batch_events_and_batch_bytes(
        tmp_path, redis_server, monkeypatch):
    raw = stream_config(tmp_path, redis_server, batch=4)
    spool_events(tmp_path / "spool", 10)
    size = len(event_bytes(uuid.uuid4().hex))
    fwd = forwarder.Forwarder(config.parse_config(raw))
    sizes = []
    real_send = fwd.send
    monkeypatch.setattr(fwd, "send", lambda events: sizes.append(
        len(events)) or real_send(events))
    fwd.run_pass()
    assert sizes == [4, 4, 2]
    spool_events(tmp_path / "spool", 5)
    fwd.BATCH_BYTES = 2 * size          # the second event reaches it
    sizes.clear()
    fwd.run_pass()
    assert sizes == [2, 2, 1]
    assert len(set(stream_ids(redis_server.client()))) == 15


def test_acknowledged_events_survive_a_redis_crash(tmp_path, redis_server):
    """appendonly yes, appendfsync always: what Redis acknowledged (and the
    forwarder then deleted from the spool) is there after kill -9."""
    raw = stream_config(tmp_path, redis_server)
    ids = spool_events(tmp_path / "spool", 20)
    forwarder.Forwarder(config.parse_config(raw)).run(once=True)
    assert spooled(tmp_path / "spool") == []
    redis_server.kill()
    redis_server.start()
    assert sorted(stream_ids(redis_server.client())) == sorted(ids)
