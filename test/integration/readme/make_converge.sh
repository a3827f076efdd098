#!/bin/bash
# The README's first command on a fresh node, as a new user runs it: clone the
# repository, then `make converge`. Twice: the second run must change nothing.
# Then once with a bad attribute: it must fail, naming the attribute in its last
# lines. The outputs stay on the node for the readme specs.
set -euo pipefail
rm -rf /root/uwsgi_fleet /root/make-converge-*.log
git -c advice.detachedHead=false clone -q /tmp/kitchen/data/uwsgi_fleet.bundle /root/uwsgi_fleet
cd /root/uwsgi_fleet
# Another apt holds apt's locks while the first run goes, as unattended-upgrades
# does at a fresh cloud image's first boot: make converge must wait for it, not
# fail. Twice: while the Makefile's own apt step runs (git, one of its build
# packages, is taken away so that it has one), and again once Chef starts
# (bin/chef-client is there), until Chef's `apt-get -q update` has met the
# locks and some seconds more. fcntl locks, the kind apt takes (Ruby is on the
# node for Chef); the holder writes the times it took them, saw Chef's apt
# and let go.
dpkg -r git >/dev/null
rm -f /root/apt-locks-*
ruby -rfcntl -e '
  hold, chef, paths = Integer(ARGV[0]), ARGV[1], ARGV.drop(2)
  note = ->(what) { File.write("/root/apt-locks-#{what}", "#{Time.now.to_f}\n") }
  File.write("/root/apt-locks-hold", "#{hold}\n")
  2.times do |i|
    sleep 0.2 until i.zero? || File.exist?(chef)
    held = paths.map do |path|
      f = File.open(path, File::RDWR | File::CREAT, 0o640)
      f.fcntl(Fcntl::F_SETLKW, [Fcntl::F_WRLCK, IO::SEEK_SET, 0, 0, 0].pack("s!s!x4q!q!i!x4"))
      f
    end
    note.call("taken-#{i + 1}")
    unless i.zero?
      deadline = Time.now + 300
      sleep 0.2 until system("pgrep -fx \"apt-get -q update\" >/dev/null") || Time.now > deadline
      note.call("met-by-chef")
    end
    sleep hold
    held.each(&:close)
    note.call("released-#{i + 1}")
  end
' 15 /root/uwsgi_fleet/bin/chef-client /var/lib/apt/lists/lock /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock &
timeout 30 sh -c 'until [ -e /root/apt-locks-taken-1 ]; do sleep 0.1; done'
for run in 1 2; do
  started=$SECONDS
  date +%s.%N > "/root/make-converge-$run.started"
  make converge < /dev/null 2>&1 | tee "/root/make-converge-$run.log"
  echo "make converge run $run took $((SECONDS - started)) s" | tee -a /root/make-converge-times.log
done
echo '{"uwsgi_fleet": {"web": {"threads": 0}}}' > /root/bad-attributes.json
if make converge ATTRS=/root/bad-attributes.json < /dev/null > /root/make-converge-bad.log 2>&1; then
  echo "make converge accepted a bad attribute" >&2
  exit 1
fi
tail -n 5 /root/make-converge-bad.log
