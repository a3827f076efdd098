"""Make files/default importable and keep bytecode out of the cookbook."""

import os
import pwd
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

import support  # also puts files/default on sys.path for store_app

# Belt and braces next to PYTHONDONTWRITEBYTECODE=1: never leave __pycache__
# in files/default/store_app, which the cookbook deploys as-is.
sys.dont_write_bytecode = True


@pytest.fixture
def app(tmp_path):
    """The store app with a config and spool under tmp_path (see support.make_app)."""
    return support.make_app(tmp_path)


@pytest.fixture
def spool(tmp_path):
    return tmp_path / "spool"


@pytest.fixture
def redis_server(tmp_path):
    """A fresh redis-server on a free loopback port (see redis_server.py),
    killed after the test."""
    from redis_server import RedisServer
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.kill()


@pytest.fixture
def app_user_dir():
    """(directory, pwd entry): a fresh directory owned by an unprivileged user
    ("nobody", standing for the app user) that it can reach, for what only a
    non-root process shows (these tests run as root, which reads anything;
    pytest's tmp_path is under a 0700 directory of root's)."""
    user = pwd.getpwnam("nobody")
    top = tempfile.mkdtemp(prefix="uwsgi-fleet-test-")
    os.chmod(top, 0o755)
    path = os.path.join(top, "app")
    os.mkdir(path, 0o750)
    os.chown(path, user.pw_uid, user.pw_gid)
    yield Path(path), user
    shutil.rmtree(top)
