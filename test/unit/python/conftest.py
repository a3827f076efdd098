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
