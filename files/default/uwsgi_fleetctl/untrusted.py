"""Files in directories another user controls, opened as root.

Root opens a few files in directories the app user owns (the master FIFOs, the
forwarder's status file), who can put anything there in their place.  The rule,
in one place: refuse a symlink (lstat, then O_NOFOLLOW: ELOOP instead of
following it to a root-only file), check the type before opening (opening a
device can act) and again on what was opened (the path can be swapped between
the two), never block in open() (O_NONBLOCK: a planted FIFO returns at once),
and the owner must be the one expected.  Reads are capped."""
import errno
import os
import stat
import time

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
    directory), as root, under the rule above (open_untrusted).  No reader yet (ENXIO) or no
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
