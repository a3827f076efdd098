"""Make files/default importable and keep bytecode out of the cookbook."""

import sys

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
