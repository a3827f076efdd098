#!/usr/bin/python3
"""previous_release.py DIR: the previous release's cookbook in DIR/uwsgi_fleet.

The release is the commit named in PREVIOUS_RELEASE (tagged v0.1.0), taken
from this repository's history with `git archive`.
"""
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
    target = os.path.join(out_dir, "uwsgi_fleet")
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(target)
    commit = previous_release()
    parts = subprocess.run(["git", "-C", REPO, "ls-tree", "--name-only", commit], check=True,
                           capture_output=True, text=True).stdout.split()
    archive = subprocess.Popen(["git", "-C", REPO, "archive", commit, *[p for p in COOKBOOK_PARTS if p in parts]],
                               stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", target], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise SystemExit(f"git archive {commit} failed")


if __name__ == "__main__":
    main(sys.argv[1])
