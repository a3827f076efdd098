#!/bin/bash
# test/contention.sh N [OUTDIR]: `make reliability` then `make cluster`, N times each,
# while the Kitchen lane (`make kitchen`) runs over and over beside them, as CI's two
# lanes run: the proof that the load-bearing suites pass under contention (issue 16).
# Run it in a clean clone (it runs what .ci/run would). Each run's log is in OUTDIR,
# and OUTDIR/summary has one line per run: suite, repeat, rc, seconds, pytest's count.
# Stop early: touch OUTDIR/stop (the Kitchen loop ends after its current run).
set -u
N=${1:?usage: test/contention.sh N [OUTDIR]}
OUT=$(realpath -m "${2:-build/contention}")
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
rm -f "$OUT/stop"
count() { grep -E '[0-9]+ (passed|failed)' "$1" | tail -1; }
(
  i=0
  while [ ! -e "$OUT/stop" ]; do
    i=$((i + 1)); s=$(date +%s)
    CI=true make kitchen > "$OUT/kitchen-$i.log" 2>&1 < /dev/null; rc=$?
    echo "kitchen $i rc=$rc $(( $(date +%s) - s ))s $(date +%T) $(grep -c 'Finished testing' "$OUT/kitchen-$i.log") instances" >> "$OUT/summary"
  done
) &
kitchen=$!
for i in $(seq "$N"); do
  for suite in reliability cluster; do
    s=$(date +%s)
    CI=true make "$suite" > "$OUT/$suite-$i.log" 2>&1 < /dev/null; rc=$?
    echo "$suite $i rc=$rc $(( $(date +%s) - s ))s $(date +%T) $(count "$OUT/$suite-$i.log")" >> "$OUT/summary"
  done
done
touch "$OUT/stop"
wait $kitchen
echo "done $(date +%T)" >> "$OUT/summary"
! grep -q ' rc=[1-9]' "$OUT/summary"
