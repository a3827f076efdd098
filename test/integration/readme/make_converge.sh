#!/bin/bash
# The README's first command on a fresh node, as a new user runs it: clone the
# repository, then `make converge`. Twice: the second run must change nothing.
# Then once with a bad attribute: it must fail, naming the attribute in its last
# lines. The outputs stay on the node for the readme specs.
set -euo pipefail
rm -rf /root/uwsgi_fleet /root/make-converge-*.log
git -c advice.detachedHead=false clone -q /tmp/kitchen/data/uwsgi_fleet.bundle /root/uwsgi_fleet
cd /root/uwsgi_fleet
for run in 1 2; do
  started=$SECONDS
  make converge < /dev/null 2>&1 | tee "/root/make-converge-$run.log"
  echo "make converge run $run took $((SECONDS - started)) s" | tee -a /root/make-converge-times.log
done
echo '{"uwsgi_fleet": {"web": {"threads": 0}}}' > /root/bad-attributes.json
if make converge ATTRS=/root/bad-attributes.json < /dev/null > /root/make-converge-bad.log 2>&1; then
  echo "make converge accepted a bad attribute" >&2
  exit 1
fi
tail -n 5 /root/make-converge-bad.log
