#!/bin/sh
# tests/vm/guest/suite.sh [TEST...] - runs in the guest: every tests/vm/guest/t-*.sh in order (or the ones named),
# each in its own shell with a time limit, then prints the totals as the last line: "vm: N passed, N failed".
# A test file that exits non-zero without a FAIL of its own, or makes no assertion at all, counts as one FAIL.
cd "$(dirname "$0")" || exit 2
# shellcheck source-path=SCRIPTDIR source=lib.sh
. ./lib.sh
ovh_setup
: > "$OVH_RESULTS"
[ $# -gt 0 ] || set -- t-*.sh
for t in "$@"; do
  t=${t##*/}; name=${t%.sh}
  before=$(wc -l < "$OVH_RESULTS"); t0=$(cut -d' ' -f1 /proc/uptime)
  echo "=== $name"
  OVH_TEST=$name timeout "${OVH_TEST_TIMEOUT:-300}" /bin/sh "./$t"; rc=$?
  n=$(tail -n +$((before + 1)) "$OVH_RESULTS" | wc -l)
  nf=$(tail -n +$((before + 1)) "$OVH_RESULTS" | grep -c '^FAIL')
  if [ "$rc" != 0 ] && [ "$nf" = 0 ]; then echo "FAIL $name: exited with status $rc (124: timed out)" | tee -a "$OVH_RESULTS"
  elif [ "$n" = 0 ]; then echo "FAIL $name: made no assertion" | tee -a "$OVH_RESULTS"; fi
  echo "=== $name: rc=$rc, $(awk -v a="$t0" '{printf "%.1f", $1-a}' /proc/uptime)s"
done
p=$(grep -c '^PASS' "$OVH_RESULTS"); f=$(grep -c '^FAIL' "$OVH_RESULTS")
[ "$f" = 0 ] || { echo "failed:"; grep '^FAIL' "$OVH_RESULTS" | sed 's/^/  /'; }
echo "vm: $p passed, $f failed"
[ "$f" = 0 ]
