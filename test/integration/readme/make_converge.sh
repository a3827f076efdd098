#!/bin/bash
# The README's first command on a fresh node, as a new user runs it: clone the
# repository, then `make converge`. Twice: the second run must change nothing.
# Both outputs stay on the node for the readme specs.
set -euo pipefail
rm -rf /root/uwsgi_fleet /root/make-converge-*.log
git -c advice.detachedHead=false clone -q /tmp/kitchen/data/uwsgi_fleet.bundle /root/uwsgi_fleet
cd /root/uwsgi_fleet
for run in 1 2; do
  make converge < /dev/null 2>&1 | tee "/root/make-converge-$run.log"
done
