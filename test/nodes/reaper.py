#!/usr/bin/python3
"""reaper.py COMMAND...: run COMMAND as a child subreaper, like `tini -s`, and
leave no test node behind, whatever COMMAND did.

- Node processes (systemd-nspawn, apt-cacher-ng) outlive the short nodectl
  call that started them, so they are re-parented. On a host whose PID 1 does
  not reap orphans (this one: PID 1 is a container's process API, not an
  init), each would stay a zombie after it exits. Under this wrapper they are
  re-parented here instead and reaped.
- Every node COMMAND creates names this run as its owner (settings.OWNER_ENV).
  When COMMAND ends, passed, failed, interrupted or killed, the nodes it still
  owns are destroyed, and the processes it left (a chef-zero whose pytest was
  killed) are ended. At start, nodes whose owner is no longer running (a run
  that was itself killed: CI's time limit) are destroyed first.
Exits with COMMAND's status; SIGINT and SIGTERM are passed on to it.
"""
import contextlib
import os
import signal
import subprocess
import sys
import time

import ctypes

sys.dont_write_bytecode = True
import machine  # noqa: E402
import network  # noqa: E402
import settings  # noqa: E402

PR_SET_CHILD_SUBREAPER = 36


def _start_time(pid):
    """A process's start time (clock ticks since boot): with the PID, it names one process, not a reused PID."""
    fields = machine.stat(pid)
    return fields[19] if fields else None


def _owner_alive(owner):
    pid, _, started = owner.partition(":")
    return pid.isdigit() and _start_time(int(pid)) == started


def destroy_nodes(which, why):
    for node in machine.all_nodes():
        if which(node.get("owner")):
            print(f"reaper: destroying node {node['name']} ({why})", file=sys.stderr, flush=True)
            machine.destroy(node["name"])


def _reap():
    """Reap the children that have exited, without waiting for the others."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _adopted():
    """Running processes this reaper has adopted (their parent is us), but the node network's apt cache,
    which serves other runs' nodes too and is stopped with the network (network.down)."""
    me, cache = os.getpid(), network.apt_cache_pid()
    return [pid for pid in machine.pids() if machine.parent(pid) == me and pid != cache
            and machine.pid_namespace(pid) is not None]


def main(argv):
    if not argv:
        sys.exit(__doc__)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    owner = f"{os.getpid()}:{_start_time(os.getpid())}"
    destroy_nodes(lambda o: o and o != owner and not _owner_alive(o), "its run is gone")
    # SIGINT and SIGTERM are passed on to COMMAND. The handlers go in before
    # COMMAND starts: a caught signal is reset to its default in a new program,
    # an ignored one stays ignored. A run started in the background by a
    # non-interactive shell (`setsid make test &`) has SIGINT ignored; COMMAND
    # inherited that, and a SIGINT passed on did not stop it (pytest slept on).
    child, pending = None, []

    def forward(signum, _frame):
        if child is None:
            pending.append(signum)
        else:
            child.send_signal(signum)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, forward)
    # Its own process group: a Ctrl-C reaches COMMAND once, from here, not
    # twice (from the terminal and from here), which would cut its cleanup short.
    child = subprocess.Popen(argv, env=dict(os.environ, **{settings.OWNER_ENV: owner}), process_group=0)
    for signum in pending:
        child.send_signal(signum)
    while True:
        pid, status = os.wait()
        if pid == child.pid:
            code = os.waitstatus_to_exitcode(status)
            break
    # COMMAND is done: whatever it left is ours to end. Signals now would only
    # leave the cleanup half done.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    destroy_nodes(lambda o: o == owner, "left by the command")
    left = _adopted()
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _adopted() and time.monotonic() < deadline:
        _reap()
        time.sleep(0.1)
    for pid in _adopted():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    time.sleep(0.1)
    _reap()
    machine.tidy_when_idle()
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
