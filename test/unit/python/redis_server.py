"""A real redis-server (Debian's redis-server 7.0) for the tests: loopback,
a free port, its own directory, a password, and the persistence the cookbook
asks for (appendonly yes, appendfsync always)."""

import os
import signal
import socket
import subprocess
import time

import redis

PASSWORD = "pw-never-in-logs-7f3a"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, directory, appendonly=True):
        self.appendonly = appendonly
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.proc = None

    @property
    def url(self):
        return "redis://:%s@127.0.0.1:%d/0" % (PASSWORD, self.port)

    def client(self):
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", self.dir, "--save", "",
             "--appendonly", "yes" if self.appendonly else "no",
             "--appendfsync", "always", "--requirepass", PASSWORD,
             "--logfile", os.path.join(self.dir, "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        client = self.client()
        while True:
            try:
                client.ping()
                return self
            except (redis.ConnectionError, redis.BusyLoadingError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start; see %s"
                                       % os.path.join(self.dir, "redis.log"))
                time.sleep(0.01)
            finally:
                client.close()

    def kill(self, sig=signal.SIGKILL):
        """Stop it (SIGKILL: as a crash; SIGTERM: a clean shutdown)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None
