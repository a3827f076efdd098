"""Durable, atomic, duplicate-free spooling of events to disk.

Layout: ``<spool_dir>/<project_id>/<event_id>.json``, one decoded JSON event
per file; project directories are created on demand (mode 0750, files 0640).
Several uWSGI instances (processes) write into the same tree concurrently.

Write protocol, chosen so that a 200 is only ever sent for an event that
will survive a crash, and readers never see a half-written event:

1. create ``<project_dir>/.tmp-<event_id>-<random>`` (O_EXCL), write, fsync;
2. ``os.link`` it to ``<event_id>.json``: link publishes atomically and,
   unlike rename, refuses to replace an existing file, so a duplicate
   event_id keeps the first copy (FileExistsError = already stored);
3. unlink the temp name, then fsync the directory so the new name (and the
   removal) are on disk before the caller acknowledges.

The project directory's own entry in the spool root is fsynced the first
time this process uses it, whether it created the directory or found it:
only then does the process know the entry is durable.

Group commit (step 3): the threads of a process share the directory fsync,
as databases share a log flush.  A link is durable once an fsync of its
directory that *started after* the link has returned; the first thread to
find none running starts one for every thread already waiting, and threads
that arrive while it runs wait for the next one.  Each file's own fsync
(step 1) stays its own: no other call makes that file's data durable.

A crash can leave stale ``.tmp-*`` files but never a partial ``<id>.json``.
Consumers of the spool MUST ignore dot-files (``published`` does), in the
spool root too, where the quota's state file and the forwarder's lock live.
The filesystem must support hard links.  Events leave the spool through
``remove`` (the forwarder, once Redis has them).
"""

import os
import threading

_DIR_MODE = 0o750
_FILE_MODE = 0o640
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC

# Project directories known to exist; saves a mkdir per request.  Only ever
# grows, and a set add is atomic under the GIL, so no lock is needed.
_known_dirs = set()


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _GroupSync:
    """The fsync of one directory, shared by the threads that need it at once."""

    def __init__(self, path):
        self.path = path
        self._cond = threading.Condition()
        self._tickets = 0         # handed out, one per sync() call
        self._synced = 0          # tickets up to this one are durable
        self._failed = (0, None)  # (tickets up to, error) of the last failed fsync
        self._running = False
        self.fsyncs = 0           # fsyncs done (tests and measurements)

    def sync(self):
        """Return once an fsync of the directory that started after this call
        has succeeded; raise OSError if the one that covered it failed."""
        with self._cond:
            self._tickets += 1
            ticket = self._tickets
            while True:
                if self._failed[0] >= ticket:
                    raise self._failed[1]
                if self._synced >= ticket:
                    return
                if self._running:
                    self._cond.wait()
                    continue
                # Lead a round: it covers every ticket handed out so far.
                self._running, covers, error = True, self._tickets, None
                self._cond.release()
                try:
                    _fsync_dir(self.path)
                except OSError as e:
                    error = e
                finally:
                    self._cond.acquire()
                    self._running = False
                    self.fsyncs += 1
                    self._cond.notify_all()
                if error is not None:
                    self._failed = (covers, error)
                else:
                    self._synced = covers


_group_syncs = {}


def _sync_dir(path):
    """fsync ``path`` (a project directory), shared with this process's other
    threads (group commit)."""
    group = _group_syncs.get(path)
    if group is None:
        group = _group_syncs.setdefault(path, _GroupSync(path))
    group.sync()


# A child forked while another thread held a group's lock must not inherit it.
os.register_at_fork(after_in_child=_group_syncs.clear)


def _ensure_dir(spool_dir, project_id):
    path = os.path.join(spool_dir, project_id)
    if path in _known_dirs:
        return path
    try:
        os.mkdir(path, _DIR_MODE)
    except FileExistsError:
        # Another process (or an earlier life of this one) made it, and may
        # not have fsynced the spool root yet, or crashed before it did:
        # this process cannot prove the entry is durable, so sync it too.
        pass
    else:
        os.chmod(path, _DIR_MODE)  # mkdir's mode is filtered by the umask
    _fsync_dir(spool_dir)          # make the directory entry durable
    _known_dirs.add(path)
    return path


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _write_temp(directory, event_id, payload):
    """Write ``payload`` to a fresh fsynced temp file; return its path."""
    # Random suffix: other processes may spool the same event_id at once.
    name = ".tmp-%s-%s" % (event_id, os.urandom(6).hex())
    tmp = os.path.join(directory, name)
    fd = os.open(tmp, _OPEN_FLAGS, _FILE_MODE)
    try:
        os.fchmod(fd, _FILE_MODE)  # same umask caveat as for directories
        _write_all(fd, payload)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    return tmp


def spool_event(spool_dir, project_id, event_id, payload):
    """Durably store ``payload`` as ``<project_id>/<event_id>.json``.

    Returns True if stored now, False if that event_id was already stored
    (the existing file is kept).  Raises OSError if the event could not be
    made durable; then nothing was published under the final name.
    ``project_id`` and ``event_id`` must already be validated (digits, hex).
    """
    directory = _ensure_dir(spool_dir, project_id)
    final = os.path.join(directory, event_id + ".json")
    if os.path.exists(final):
        # A retried or duplicate event: the published file is already whole
        # (it was fsynced before it was linked), so skip writing it again.
        _sync_dir(directory)
        return False
    try:
        tmp = _write_temp(directory, event_id, payload)
    except FileNotFoundError:
        # The project directory was removed behind our back: recreate once.
        _known_dirs.discard(os.path.join(spool_dir, project_id))
        directory = _ensure_dir(spool_dir, project_id)
        tmp = _write_temp(directory, event_id, payload)

    try:
        os.link(tmp, final)
        stored = True
    except FileExistsError:
        stored = False
    finally:
        os.unlink(tmp)
    # Also on a duplicate: the first writer may not have synced the directory
    # yet, and we are about to acknowledge the event too.
    _sync_dir(directory)
    return stored


def published(spool_dir, unreadable=None):
    """Yield (project_id, file name, os.DirEntry) for every published event,
    in one scan of the tree; dot-files and anything but ``*.json`` files in
    project directories are skipped.

    A directory that cannot be read is skipped, and the rest still yielded:
    a spool on a mount of its own has a root-owned 0700 ``lost+found``, which
    the forwarder (the app user) cannot open, and one such directory must not
    stop forwarding.  ``unreadable(path, OSError)`` is told of each.  A
    directory removed meanwhile is skipped silently."""
    try:
        root = os.scandir(spool_dir)
    except FileNotFoundError:
        return
    except OSError as e:
        _tell(unreadable, spool_dir, e)
        return
    with root:
        projects = [e for e in root if not e.name.startswith(".")
                    and e.is_dir(follow_symlinks=False)]
    for project in projects:
        try:
            entries = os.scandir(project.path)
        except FileNotFoundError:
            continue
        except OSError as e:
            _tell(unreadable, project.path, e)
            continue
        with entries:
            for entry in entries:
                name = entry.name
                if not name.startswith(".") and name.endswith(".json"):
                    yield project.name, name, entry


def _tell(unreadable, path, error):
    if unreadable is not None:
        unreadable(path, error)


def remove(spool_dir, events):
    """Unlink the (project_id, file name) ``events``, then fsync each of
    their directories once: on return, their removal is durable.  An event
    already gone is not an error."""
    directories = set()
    for project_id, name in events:
        directory = os.path.join(spool_dir, project_id)
        try:
            os.unlink(os.path.join(directory, name))
        except FileNotFoundError:
            pass
        directories.add(directory)
    for directory in directories:
        _fsync_dir(directory)
