"""Make files/default importable and keep bytecode out of the cookbook."""

import sys

import support  # noqa: F401  (side effect: sys.path for store_app)

# Belt and braces next to PYTHONDONTWRITEBYTECODE=1: never leave __pycache__
# in files/default/store_app, which the cookbook deploys as-is.
sys.dont_write_bytecode = True
