#!/usr/bin/python3
"""previous_release.py DIR: the previous release's cookbook in DIR/uwsgi_fleet.

The release is the commit named in PREVIOUS_RELEASE (tagged v0.1.0), taken
from this repository's history with `git archive`.
"""
import fcntl
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "test", "nodes"))

from settings import COOKBOOK_PARTS  # noqa: E402


def previous_release():
    with open(os.path.join(HERE, "PREVIOUS_RELEASE")) as f:
        return f.read().split()[0]


def main(out_dir):
    """Idempotent and safe to run twice at once (the upgrade suite's instances, one per
    platform, are created side by side): a lock, and a marker naming the commit extracted."""
    target = os.path.join(out_dir, "uwsgi_fleet")
    commit = previous_release()
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = os.path.join(out_dir, "extracted")
        if os.path.exists(marker) and open(marker).read() == commit and os.path.isdir(target):
            return
        shutil.rmtree(target, ignore_errors=True)
        os.makedirs(target)
        parts = subprocess.run(["git", "-C", REPO, "ls-tree", "--name-only", commit], check=True,
                               capture_output=True, text=True).stdout.split()
        archive = subprocess.Popen(["git", "-C", REPO, "archive", commit, *[p for p in COOKBOOK_PARTS if p in parts]],
                                   stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", target], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            raise SystemExit(f"git archive {commit} failed")
        with open(marker, "w") as f:
            f.write(commit)


if __name__ == "__main__":
    main(sys.argv[1])
