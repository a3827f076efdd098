#!/usr/bin/python3
"""bundle_head.py DIR: put the repository's HEAD into DIR/uwsgi_fleet.bundle.

The readme suite's node clones from this bundle, as a user clones the
repository. HEAD, not the working tree: uncommitted changes are not in it.
"""
import os
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    bundle = os.path.join(out_dir, "uwsgi_fleet.bundle")
    # Written aside, then renamed: the suite's instances (one per platform) run this side by side,
    # and one may be copying the bundle to its node while the other writes it.
    partial = f"{bundle}.{os.getpid()}"
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=True).stdout
    if dirty:
        print("readme suite: uncommitted changes are NOT in the clone the node makes (it clones HEAD)",
              file=sys.stderr)
    subprocess.run(["git", "-C", REPO, "bundle", "create", "-q", os.path.abspath(partial), "HEAD"], check=True)
    os.replace(partial, bundle)


if __name__ == "__main__":
    main(sys.argv[1])
