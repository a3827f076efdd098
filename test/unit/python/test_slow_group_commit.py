"""Group commit in spool.py: threads share a directory fsync, and still no
event is acknowledged before it is durable, even when the process is killed
between its write and its acknowledgement.

A kill -9 loses nothing of the page cache, so the crash test also keeps a
trace of the spool's system calls (open, fsync start and end, link, ack, in
the order they happened) and asks of every acknowledged event what a power
cut at the moment of the kill would have kept: its data fsynced before its
name was linked, and its name covered by a directory fsync that started
after the link and returned before the ack.
"""

import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from store_app import spool as spool_mod
import support

pytestmark = pytest.mark.slow

# The child: T threads spooling events as fast as they can, every relevant
# system call traced to stdout (one os.write per line: atomic on a pipe).
CHILD = r'''
import itertools, os, sys, threading
sys.path.insert(0, sys.argv[1])
from store_app import spool
spool_dir, threads, broken = sys.argv[2], int(sys.argv[3]), sys.argv[4] == "broken"
tokens, paths = itertools.count(), {}
real_open, real_fsync, real_link = os.open, os.fsync, os.link

def trace(*words):
    os.write(1, (" ".join(map(str, words)) + "\n").encode())

def traced_open(path, *args, **kwargs):
    fd = real_open(path, *args, **kwargs)
    paths[fd] = path
    return fd

def traced_fsync(fd):
    token = next(tokens)
    trace("FS", token, paths[fd])
    real_fsync(fd)
    trace("FE", token)

def traced_link(src, dst, *args, **kwargs):
    real_link(src, dst, *args, **kwargs)
    trace("L", src, dst)

os.open, os.fsync, os.link = traced_open, traced_fsync, traced_link
if broken:
    # A wrong group commit: joins a running fsync instead of waiting for the next.
    def sync(self):
        with self._cond:
            if self._running:
                return
            self._running = True
        try:
            spool._fsync_dir(self.path)
        finally:
            with self._cond:
                self._running = False
    spool._GroupSync.sync = sync

def work(t):
    for i in itertools.count():
        event_id = "%08x%024x" % (t, i)
        spool.spool_event(spool_dir, "1", event_id, b'{"event_id": "%s"}' % event_id.encode())
        trace("A", event_id)

trace("READY")
for t in range(threads):
    threading.Thread(target=work, args=(t,), daemon=True).start()
threading.Event().wait()
'''


def run_and_kill(tmp_path, after_s, threads=8, broken=False):
    """Start the child, kill -9 it after ``after_s`` seconds of spooling;
    return (its trace lines, the spool directory)."""
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir(exist_ok=True)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(support.FILES_DEFAULT), str(spool_dir), str(threads),
                              "broken" if broken else "ok"], stdout=subprocess.PIPE)
    out = []
    reader = threading.Thread(target=lambda: out.append(child.stdout.read()))
    reader.start()
    try:
        time.sleep(0.5 + after_s)  # the interpreter starts, then the threads spool
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        reader.join()
    return out[0].decode().splitlines(), spool_dir


def not_durable_at_ack(lines):
    """Acknowledged event ids that a power cut right after their ack could
    have lost: data not fsynced before the link, or no directory fsync that
    started after the link and ended before the ack."""
    started, ended, data_synced, linked, bad = {}, set(), set(), {}, []
    for n, line in enumerate(lines):
        kind, *words = line.split(" ")
        if kind == "FS":
            started[words[0]] = (n, words[1])
        elif kind == "FE":
            ended.add(words[0])
            data_synced.add(started[words[0]][1])
        elif kind == "L":
            linked[os.path.basename(words[1])[:-len(".json")]] = (n, words[0], os.path.dirname(words[1]))
        elif kind == "A":
            at, temp, directory = linked.get(words[0], (None, None, None))
            covered = at is not None and any(
                path == directory and start > at and token in ended
                for token, (start, path) in started.items())
            if at is None or temp not in data_synced or not covered:
                bad.append(words[0])
        # An FE for a directory fsync must come before the ack it covers:
        # `ended` only holds those seen so far, so later ones do not count.
    return bad


def acked(lines):
    return [line.split(" ")[1] for line in lines if line.startswith("A ")]


@pytest.mark.parametrize("after_s", [0.05, 0.2, 0.4])
def test_no_acknowledged_event_is_missing_after_a_kill(tmp_path, after_s):
    lines, spool_dir = run_and_kill(tmp_path, after_s + random.random() * 0.05)
    ids = acked(lines)
    assert len(ids) > 20, "the child acknowledged too few events to test anything"
    assert not_durable_at_ack(lines) == []
    for event_id in ids:   # and each is there, whole, under its final name
        with open(spool_dir / "1" / (event_id + ".json"), "rb") as f:
            assert f.read() == b'{"event_id": "%s"}' % event_id.encode()
    stored = {n[:-5] for n in os.listdir(spool_dir / "1") if not n.startswith(".")}
    assert stored >= set(ids)
    fsyncs = sum(1 for line in lines if line.startswith("FS ") and line.endswith("/1"))
    assert fsyncs < len(ids), "directory fsyncs were not shared"


def test_the_trace_check_finds_an_ack_before_its_fsync(tmp_path):
    """The same check on a wrong group commit (a thread joins an fsync that
    started before its link): acknowledged events that were not durable."""
    lines, _ = run_and_kill(tmp_path, 0.4, broken=True)
    assert acked(lines) and not_durable_at_ack(lines)


def test_concurrent_writers_share_directory_fsyncs(tmp_path, monkeypatch):
    """8 threads x 25 events with a slow directory fsync (5 ms): far fewer
    fsyncs than events, and every event stored."""
    calls = []
    real = spool_mod._fsync_dir

    def slow_fsync_dir(path):
        calls.append(path)
        time.sleep(0.005)
        real(path)
    monkeypatch.setattr(spool_mod, "_fsync_dir", slow_fsync_dir)
    project_dir = str(tmp_path / "1")

    def work(t):
        for i in range(25):
            assert spool_mod.spool_event(str(tmp_path), "1", "%08x%024x" % (t, i), b"{}")
    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(os.listdir(project_dir)) == 200
    assert calls.count(project_dir) <= 100, calls.count(project_dir)


def test_a_failed_directory_fsync_fails_every_writer_it_covered(tmp_path, monkeypatch):
    """No 200 for an event whose directory fsync failed, also for the threads
    that waited on another thread's fsync."""
    spool_mod.spool_event(str(tmp_path), "1", "0" * 32, b"{}")   # the project dir exists
    gate = threading.Event()

    def failing(path):
        gate.wait(1.0)
        raise OSError(5, "simulated EIO")
    monkeypatch.setattr(spool_mod, "_fsync_dir", failing)
    results = []

    def work(t):
        try:
            spool_mod.spool_event(str(tmp_path), "1", "%032x" % (t + 1), b"{}")
            results.append("ok")
        except OSError:
            results.append("error")
    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    gate.set()
    for t in threads:
        t.join()
    assert results == ["error"] * 4
