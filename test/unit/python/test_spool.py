"""Atomic, durable spooling: nothing half-written is visible, nothing
unwritten is acknowledged."""

import errno
import json
import os
import shutil
import threading
import uuid

import pytest

from store_app import spool as spool_mod
from support import all_files, event_bytes, make_app, spooled, store


@pytest.fixture
def fsynced(monkeypatch):
    """The paths fsynced during the test, in order."""
    synced = []
    real_fsync = os.fsync

    def spy(fd):
        synced.append(os.readlink("/proc/self/fd/%d" % fd))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return synced


def test_spool_event_stores_once(tmp_path):
    event_id = uuid.uuid4().hex
    assert spool_mod.spool_event(str(tmp_path), "5", event_id, b"{1}") is True
    assert spool_mod.spool_event(str(tmp_path), "5", event_id, b"{2}") is False
    assert os.listdir(tmp_path / "5") == [event_id + ".json"]
    assert (tmp_path / "5" / (event_id + ".json")).read_bytes() == b"{1}"


def test_project_dir_removed_at_runtime_is_recreated(tmp_path):
    spool_mod.spool_event(str(tmp_path), "6", "a" * 32, b"{}")
    shutil.rmtree(tmp_path / "6")
    assert spool_mod.spool_event(str(tmp_path), "6", "b" * 32, b"{}")
    assert os.listdir(tmp_path / "6") == ["b" * 32 + ".json"]


def test_directories_and_file_are_fsynced_before_ack(tmp_path, fsynced):
    synced = fsynced
    app = make_app(tmp_path)
    resp = store(app, event_bytes())
    assert resp.status == 200
    spool = str(tmp_path / "spool")
    project_dir = os.path.join(spool, "1")
    # new project dir entry, the temp file's data, then the published name.
    assert synced[0] == spool
    assert os.path.basename(synced[1]).startswith(".tmp-" + resp.json["id"])
    assert synced[2] == project_dir


def test_failed_publish_is_not_acknowledged(tmp_path, monkeypatch, capsys):
    def failing_link(src, dst, *a, **kw):
        raise OSError(errno.EIO, "simulated I/O error")

    monkeypatch.setattr(os, "link", failing_link)
    app = make_app(tmp_path)
    resp = store(app, event_bytes())
    assert resp.status == 500
    assert resp.json == {"error": "could not store event"}
    assert resp.headers["x-fleet-instance"] == "9000"
    assert all_files(tmp_path / "spool") == []  # temp file cleaned up too
    assert "simulated I/O error" in capsys.readouterr().err


def test_failed_fsync_is_not_acknowledged(tmp_path, monkeypatch):
    def failing_fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    app = make_app(tmp_path)
    store(app, event_bytes())  # creates the project dir before the fault
    monkeypatch.setattr(os, "fsync", failing_fsync)
    resp = store(app, event_bytes())
    assert resp.status == 500
    assert len(all_files(tmp_path / "spool")) == 1  # only the first event


def test_nothing_partial_is_visible_while_a_write_is_in_flight(
        tmp_path, monkeypatch):
    """Freeze a request between "temp file written" and "published": the
    final name must not exist yet, the temp file must already be whole and
    fsynced, and the client must not have been answered."""
    reached, release = threading.Event(), threading.Event()
    real_link = os.link

    def paused_link(src, dst, *a, **kw):
        reached.set()
        assert release.wait(10), "test never released the write"
        return real_link(src, dst, *a, **kw)

    monkeypatch.setattr(os, "link", paused_link)
    app = make_app(tmp_path)
    event_id = uuid.uuid4().hex
    data = event_bytes(event_id, padding="p" * 200_000)
    result = []
    worker = threading.Thread(target=lambda: result.append(store(app, data)))
    worker.start()
    try:
        assert reached.wait(10)
        project_dir = tmp_path / "spool" / "1"
        assert spooled(tmp_path / "spool") == []   # readers see nothing
        names = os.listdir(project_dir)
        assert len(names) == 1 and names[0].startswith(".tmp-")
        assert (project_dir / names[0]).read_bytes() == data
        assert result == []                        # not acknowledged yet
    finally:
        release.set()
        worker.join(10)
    assert result[0].status == 200 and result[0].json == {"id": event_id}
    assert os.listdir(tmp_path / "spool" / "1") == [event_id + ".json"]
    assert (tmp_path / "spool" / "1" / (event_id + ".json")).read_bytes() \
        == data


def test_missing_spool_dir_is_500_not_a_crash(tmp_path):
    app = make_app(tmp_path)
    shutil.rmtree(tmp_path / "spool")
    spool_mod._known_dirs.clear()
    resp = store(app, event_bytes())
    assert resp.status == 500
    assert resp.headers["content-type"] == "application/json"


def test_a_duplicate_is_not_written_again(tmp_path, monkeypatch):
    from store_app import spool as spool_module
    assert spool_module.spool_event(str(tmp_path), "1", "a" * 32, b'{"event_id": "aaaa"}') is True

    def no_second_write(*args):
        raise AssertionError("the duplicate was written again")
    monkeypatch.setattr(spool_module, "_write_temp", no_second_write)
    assert spool_module.spool_event(str(tmp_path), "1", "a" * 32, b'{"other": 1}') is False
    assert (tmp_path / "1" / ("a" * 32 + ".json")).read_bytes() == b'{"event_id": "aaaa"}'


# Issue 10, item 12.
def test_an_existing_project_dir_entry_is_synced_before_the_200(
        tmp_path, fsynced):
    """Another instance created spool/1 and may have crashed before fsyncing
    the spool root: this process cannot know, so it syncs the root too."""
    app = make_app(tmp_path)
    spool = tmp_path / "spool"
    (spool / "1").mkdir(mode=0o750)     # made by "another process"
    synced = fsynced
    resp = store(app, event_bytes())
    assert resp.status == 200
    assert str(spool) in synced
    # Once per process and project: the next event does not sync it again.
    synced.clear()
    assert store(app, event_bytes()).status == 200
    assert str(spool) not in synced


def test_a_duplicate_in_a_dir_made_elsewhere_also_syncs_the_root(
        tmp_path, fsynced):
    event_id = "d" * 32
    spool = tmp_path / "spool"
    (spool / "1").mkdir(parents=True)
    (spool / "1" / (event_id + ".json")).write_bytes(b"{}")
    assert spool_mod.spool_event(str(spool), "1", event_id, b"{}") is False
    assert str(spool) in fsynced and str(spool / "1") in fsynced


def as_user(user, function):
    """``function()`` run in a child process as ``user`` (a pwd entry): its
    JSON-able result, or the error it raised, as {"value"} or {"error"}."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:    # the child: never returns into pytest
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            try:
                out = {"value": function()}
            except Exception as e:
                out = {"error": "%s: %s" % (type(e).__name__, e)}
            with os.fdopen(write_end, "w") as f:
                json.dump(out, f)
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as f:
        out = f.read()
    os.waitpid(pid, 0)
    return json.loads(out)


def test_a_directory_the_app_user_cannot_read_is_skipped_and_reported(
        app_user_dir):
    """A spool on a mount of its own has a root-owned 0700 lost+found: the
    app user (the forwarder) still gets every event, and is told of it."""
    spool, user = app_user_dir
    event_id = uuid.uuid4().hex
    spool_mod.spool_event(str(spool), "1", event_id, event_bytes(event_id))
    for path in (spool / "1", spool / "1" / (event_id + ".json")):
        os.chown(path, user.pw_uid, user.pw_gid)
    lost = spool / "lost+found"
    lost.mkdir(mode=0o700)

    def events():
        return [name for _, name, _ in spool_mod.published(str(spool))]

    def unreadable():
        seen = []
        for _ in spool_mod.published(
                str(spool), lambda path, e: seen.append([path, e.errno])):
            pass
        return seen

    assert as_user(user, events) == {"value": [event_id + ".json"]}
    assert as_user(user, unreadable) == {
        "value": [[str(lost), errno.EACCES]]}
