"""Move spooled events into one Redis stream per project, keeping their ids.

    python3 -m store_app.forwarder --config PATH/store_app.json [--once]

Runs next to the instances, as the app user, under the process manager
(supervisor program or systemd unit); SIGTERM or SIGINT stop it after the
batch in flight.  One forwarder per spool: it holds an flock on
``<spool_dir>/.forwarder.lock`` (a second one waits for it).  The config's
``stream`` (config.py) says where the events go; without one it exits 0.

Each pass scans the spool once (spool.published), oldest event first, and
sends up to ``batch`` events (and, past the first, up to BATCH_BYTES) per
round trip: a pipeline of one Lua script call per event.  The script, atomically in Redis, drops the event if its id
is in the project's ``<key_prefix><project>:seen`` sorted set, else XADDs
``event_id`` and ``event`` (the spooled JSON) to ``<key_prefix><project>``
(``MAXLEN ~ maxlen`` when set) and records the id; ids older than
``dedup_seconds`` leave the set (about 100 bytes of Redis memory per event
of that window).  Only after Redis has answered for an event is its file
unlinked, and its directory fsynced (spool.remove), before the next batch.

So a crash at any point loses nothing (the file stays until Redis has the
event), and an event sent again after a crash (between Redis's answer and
the unlink) is not appended twice if it comes back within dedup_seconds.
Past that window, or when a client retried the same event to two nodes
more than dedup_seconds apart, the stream can hold an id twice:
``store_app.stream tail`` drops such duplicates by id, as any consumer
should.

Redis down or failing: the spool grows and nothing is lost; the forwarder
retries after a backoff (BACKOFF_FIRST doubling up to BACKOFF_MOST seconds)
and drains the backlog when Redis answers again.  Every STATUS_SECONDS it
logs a status line and rewrites ``status_file`` (JSON, atomically): the
backlog (events, age of the oldest), totals, the last error, what it could
not read, when it wrote it (``updated_at``) and how long it may go before the
next write (``stale_after_seconds``: an older status is not about now).  The
Redis URL's password never appears in either.

A directory or event file in the spool that the forwarder cannot read (a
root-owned ``lost+found`` on a spool of its own mount, a file root restored
as 0600) is skipped: logged once, listed in the status, and everything else
is still forwarded.
"""

import argparse
import fcntl
import json
import os
import signal
import sys
import threading
import time

from . import config, log, redisconn, spool

# KEYS: the stream, the seen set.  ARGV: event id, event, dedup window (ms),
# maxlen ('' for none).  Returns the new entry's id, or nil for an id seen
# within the window.  TIME is allowed before writes: Redis 7 replicates
# scripts by their effects.
_XADD_ONCE = redisconn.LuaScript("""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then return false end
local id
if ARGV[4] ~= '' then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*',
                  'event_id', ARGV[1], 'event', ARGV[2])
else
  id = redis.call('XADD', KEYS[1], '*', 'event_id', ARGV[1], 'event', ARGV[2])
end
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('PEXPIRE', KEYS[2], window)
return id
""")


def stream_key(stream_config, project_id):
    return stream_config.key_prefix + project_id


def seen_key(stream_config, project_id):
    # Project ids are digits (the router takes no others), so this never
    # names another project's stream.
    return stream_config.key_prefix + project_id + ":seen"


class Forwarder:
    STATUS_SECONDS = 5.0
    IDLE_SECONDS = 0.2          # between passes over an empty spool
    BACKOFF_FIRST, BACKOFF_MOST = 0.5, 30.0
    REDIS_TIMEOUT_SECONDS = 10.0
    BATCH_BYTES = 8 * 1024 * 1024   # events can be up to max_event_bytes
    UNREADABLE_SHOWN = 10           # paths named in the status (a few KB)

    def __init__(self, cfg, status_seconds=None, backoff=None):
        self.spool_dir = cfg.spool_dir
        self.stream = cfg.stream
        if status_seconds is not None:
            self.STATUS_SECONDS = status_seconds
        if backoff is not None:
            self.BACKOFF_FIRST, self.BACKOFF_MOST = backoff
        self._client = redisconn.connect(self.stream.url,
                                         self.REDIS_TIMEOUT_SECONDS)
        self._redis_errors = redisconn.redis_module().RedisError
        self._args = (str(self.stream.dedup_seconds * 1000),
                      "" if self.stream.maxlen is None
                      else str(self.stream.maxlen))
        self.stopping = threading.Event()
        self._mtimes = {}       # (project, name) -> mtime of pending events
        self._status_due = 0.0
        self._failing = False
        self._unreadable = {}   # path -> why, seen in this pass
        self._unreadable_before = {}
        self._skipped = []      # pending events this pass could not read
        self.status = {
            "pid": os.getpid(), "started_at": time.time(), "state": "running",
            "spool_dir": self.spool_dir,
            "redis": redisconn.redact(self.stream.url), "redis_ok": None,
            "backlog_events": 0, "oldest_event_age_seconds": None,
            "forwarded_total": 0, "duplicates_total": 0,
            "last_success_at": None, "last_error": None,
            "last_error_at": None, "unreadable": [], "unreadable_total": 0,
            "stale_after_seconds": self.stale_after()}

    def stale_after(self):
        """The longest a running forwarder goes without rewriting its status.
        It writes every STATUS_SECONDS, at the first report() after that; the
        next report() comes within STATUS_SECONDS while it waits, or after one
        step, which waits on Redis for at most a connect and a reply (each
        REDIS_TIMEOUT_SECONDS).  An older status file is left from a
        forwarder that is gone (a crash, a power cut) or stuck."""
        return 2 * self.STATUS_SECONDS + 2 * self.REDIS_TIMEOUT_SECONDS

    # -- one pass ------------------------------------------------------------

    def scan(self):
        """The pending events, oldest first, from one scan of the spool.
        A file's mtime is read (one stat) the first time it is seen."""
        known, pending = self._mtimes, {}
        self._unreadable_before, self._unreadable = self._unreadable, {}
        self._skipped = []
        for project_id, name, entry in spool.published(self.spool_dir,
                                                       self._cannot_read):
            key = (project_id, name)
            mtime = known.get(key)
            if mtime is None:
                try:
                    mtime = entry.stat(follow_symlinks=False).st_mtime
                except FileNotFoundError:
                    continue
            pending[key] = mtime
        self._mtimes = pending
        return sorted(pending, key=pending.get)

    def run_pass(self):
        """Send everything pending, batch by batch, until done or asked to
        stop; returns how many events left the spool.  Raises RedisError."""
        pending = self.scan()
        self._set_backlog(pending, 0)
        if pending and self._failing:
            self._client.ping()     # before reading a batch for nothing
        done = start = 0
        while start < len(pending) and not self.stopping.is_set():
            events, start = self._read_batch(pending, start)
            done += self.send(events)
            self._set_backlog(pending, start)
            self.report()
        return done

    def _read_batch(self, pending, start):
        """The next batch of ``pending`` from ``start``, read: a list of
        (project, name, bytes), and where the batch after it starts."""
        events, size, i = [], 0, start
        # At least one event, whatever the limits: every batch progresses.
        while i < len(pending) and (not events or (
                len(events) < self.stream.batch and size < self.BATCH_BYTES)):
            project_id, name = pending[i]
            i += 1
            path = os.path.join(self.spool_dir, project_id, name)
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                continue
            except OSError as e:    # it stays in the backlog, unsent
                self._cannot_read(path, e)
                self._skipped.append((project_id, name))
                continue
            events.append((project_id, name, data))
            size += len(data)
        return events, i

    def _cannot_read(self, path, error):
        """Skip ``path``: logged when first seen, in the status while it
        lasts."""
        why = error.strerror or str(error)
        if self._unreadable_before.get(path) != why \
                and path not in self._unreadable:
            log.log("forwarder: cannot read %s (%s): skipped; forwarding "
                    "the rest" % (path, why))
        self._unreadable[path] = why

    def send(self, events):
        """XADD each (project, name, bytes) of ``events`` once, in one round
        trip; remove from the spool what Redis has answered for.  Raises the
        first error after removing what was acknowledged."""
        if not events:
            return 0
        results = self._execute(events)
        if any(map(_XADD_ONCE.is_unknown_script, results)):
            # Redis restarted and lost its script cache: load it and send the
            # batch again; what was appended already is dropped as seen.
            _XADD_ONCE.load(self._client)
            results = self._execute(events)
        acked, error = [], None
        for (project_id, name, _), result in zip(events, results):
            if isinstance(result, Exception):
                error = error or result
                continue
            acked.append((project_id, name))
            key = "forwarded_total" if result is not None \
                else "duplicates_total"
            self.status[key] += 1
        spool.remove(self.spool_dir, acked)
        for event in acked:
            self._mtimes.pop(event, None)
        if error is not None:
            raise error
        self._succeeded()
        return len(acked)

    def _execute(self, events):
        pipe = self._client.pipeline(transaction=False)
        for project_id, name, data in events:
            _XADD_ONCE.queue(pipe, [stream_key(self.stream, project_id),
                                    seen_key(self.stream, project_id)],
                             [name[:-len(".json")], data, *self._args])
        return pipe.execute(raise_on_error=False)

    # -- the loop ------------------------------------------------------------

    def run(self, once=False):
        """Forward until stopped (``once``: until one pass has found nothing
        more to send, or failed)."""
        backoff = 0.0
        while not self.stopping.is_set():
            try:
                sent = self.run_pass()
            except self._redis_errors as e:
                self._failed(e)
                self.report()
                if once:
                    break
                backoff = min(max(backoff * 2, self.BACKOFF_FIRST),
                              self.BACKOFF_MOST)
                self._wait(backoff)
                continue
            backoff = 0.0
            self.report()
            if once and not sent:
                break
            if not sent:
                self.stopping.wait(self.IDLE_SECONDS)
        self.status["state"] = "stopped"
        self.report(force=True)

    def _wait(self, seconds):
        """Wait ``seconds`` (or until stopped), rewriting the status when due
        meanwhile: a backoff can last longer than STATUS_SECONDS."""
        deadline = time.monotonic() + seconds
        while not self.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            # STATUS_SECONDS 0 (tests: a status at every report) would spin.
            self.stopping.wait(min(left, self.STATUS_SECONDS) or left)
            self.report()

    # -- status --------------------------------------------------------------

    def _set_backlog(self, pending, sent_upto):
        # What was skipped came before sent_upto: it is the oldest left.
        rest = self._skipped + pending[sent_upto:]
        self.status["backlog_events"] = len(rest)
        self.status["unreadable_total"] = len(self._unreadable)
        self.status["unreadable"] = [
            "%s: %s" % item for item in
            sorted(self._unreadable.items())[:self.UNREADABLE_SHOWN]]
        oldest = self._mtimes.get(rest[0]) if rest else None
        self.status["oldest_event_age_seconds"] = None if oldest is None \
            else round(max(0.0, time.time() - oldest), 3)

    def _succeeded(self):
        self._failing = False
        self.status.update(redis_ok=True, last_success_at=time.time())

    def _failed(self, error):
        self._failing = True
        self.status.update(
            redis_ok=False, last_error_at=time.time(),
            last_error=redisconn.scrub("%s: %s" % (type(error).__name__,
                                                   error), self.stream.url))

    def report(self, force=False):
        """Every STATUS_SECONDS (or now): a status line and the status file."""
        now = time.monotonic()
        if not force and now < self._status_due:
            return
        self._status_due = now + self.STATUS_SECONDS
        s = self.status
        age = s["oldest_event_age_seconds"]
        log.log("forwarder: %s; backlog %d event(s)%s; forwarded %d, "
                "duplicates dropped %d; redis %s %s%s%s" % (
                    s["state"], s["backlog_events"],
                    "" if age is None else ", oldest %.1f s" % age,
                    s["forwarded_total"], s["duplicates_total"], s["redis"],
                    {True: "ok", False: "failing", None: "not tried"}
                    [s["redis_ok"]],
                    "" if s["last_error"] is None
                    else "; last error: " + s["last_error"],
                    "" if not s["unreadable_total"]
                    else "; %d path(s) unreadable, skipped"
                    % s["unreadable_total"]))
        self.write_status()

    def write_status(self):
        path = self.stream.status_file
        tmp = "%s.tmp-%d" % (path, os.getpid())
        try:
            with open(tmp, "w") as f:
                json.dump(dict(self.status, updated_at=time.time()), f,
                          indent=1, sort_keys=True)
                f.write("\n")
            os.replace(tmp, path)
        except OSError as e:
            log.log("forwarder: cannot write status file %s: %s" % (path, e))


def _lock_spool(spool_dir):
    """Hold the spool's forwarder lock for the life of this process."""
    fd = os.open(os.path.join(spool_dir, ".forwarder.lock"),
                 os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log.log("forwarder: another forwarder holds %s/.forwarder.lock; "
                "waiting" % spool_dir)
        fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python3 -m store_app.forwarder",
        description="Move spooled events into a Redis stream per project.")
    parser.add_argument("--config", default=os.environ.get(
        config.ENV_VAR, config.DEFAULT_PATH), help="store_app.json")
    parser.add_argument("--once", action="store_true",
                        help="stop when a pass finds nothing left to send "
                        "(or Redis fails); exit 1 if events are left")
    args = parser.parse_args(argv)
    try:
        cfg = config.load_config(args.config)
    except config.ConfigError as e:
        log.log("forwarder: %s" % e)
        return 2
    if cfg.stream is None:
        log.log("forwarder: %s has no stream: nothing to forward"
                % args.config)
        return 0
    forwarder = Forwarder(cfg)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: forwarder.stopping.set())
    _lock_spool(cfg.spool_dir)
    forwarder.run(once=args.once)
    return 1 if args.once and forwarder.status["backlog_events"] else 0


if __name__ == "__main__":
    sys.exit(main())
