"""Redis access shared by the quota, the forwarder and the stream reader.

The client is Debian's python3-redis, imported only when a config names a
Redis URL: a node with the local quota and no stream needs no Redis package.

A URL carries the password (``redis://:PASSWORD@HOST:PORT/DB``): it is a
secret, so whatever this package logs or writes in a status file goes
through ``redact`` (the URL) or ``scrub`` (an error message).
"""

import hashlib
from urllib.parse import urlsplit, urlunsplit


def redis_module():
    import redis  # python3-redis
    return redis


def redact(url):
    """``url`` without its password (and without a query, which may hold
    one): safe to log."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        user = parts.username or ""
        if parts.password is not None:
            user += ":***"
    except ValueError:
        return "<unparsable redis url>"
    netloc = "%s@%s" % (user, host) if user else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def scrub(message, url):
    """An error message with the URL's password, should it appear, masked."""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    text = str(message)
    return text.replace(password, "***") if password else text


def connect(url, timeout_seconds):
    """A client (a thread-safe connection pool) whose connects and replies
    each give up after ``timeout_seconds``, without retrying."""
    return redis_module().Redis.from_url(
        url, socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds)


class LuaScript:
    """A Lua script run by its SHA1 (EVALSHA), sent whole (EVAL, which also
    caches it on the server) when the server does not know it yet, as after
    a restart: one round trip either way, two on the first call only."""

    def __init__(self, source):
        self.source = source
        self.sha = hashlib.sha1(source.encode("utf-8")).hexdigest()

    def __call__(self, client, keys, args):
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except redis_module().exceptions.NoScriptError:
            return client.eval(self.source, len(keys), *keys, *args)

    def queue(self, pipeline, keys, args):
        """Add one EVALSHA to ``pipeline`` (see is_unknown_script)."""
        pipeline.evalsha(self.sha, len(keys), *keys, *args)

    def load(self, client):
        client.script_load(self.source)

    @staticmethod
    def is_unknown_script(result):
        """Whether a pipeline result is the server's NOSCRIPT error."""
        return isinstance(result, redis_module().exceptions.NoScriptError)
