#!/usr/bin/python3
"""reaper.py COMMAND...: run COMMAND as a child subreaper, like `tini -s`.

Node processes (systemd-nspawn, apt-cacher-ng) outlive the short nodectl
call that started them, so they are re-parented. On a host whose PID 1 does
not reap orphans (this one: PID 1 is a container's process API, not an init),
each would stay a zombie after it exits. Under this wrapper they are
re-parented here instead and reaped, so a test run leaves no process behind.
Exits with COMMAND's status; SIGINT and SIGTERM are passed on to it.
"""
import ctypes
import os
import signal
import subprocess
import sys

PR_SET_CHILD_SUBREAPER = 36


def main(argv):
    if not argv:
        sys.exit(__doc__)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    child = subprocess.Popen(argv)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == child.pid:
            code = os.waitstatus_to_exitcode(status)
            break
    # Orphans that already exited are reaped; any still running (a node left up
    # on purpose by `kitchen create`) goes on without us.
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
