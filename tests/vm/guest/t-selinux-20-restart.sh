#!/bin/sh
# Restarts are O(1): a Z volume with SEL_FILES files (default 100000) is walked at its first start only.
# First start vs restart of a confined runc container, timed; the hook's own timing from its syslog lines;
# the same volume relabelled by hand afterwards (chcon -R, restorecon -T0 where it applies) for scale.
. "$(dirname "$0")/lib.sh"
N=${SEL_FILES:-100000}
ovh_config 'log_level = "debug"'
V=$OVH_VOLUMES/selbig
rm -rf "$V"; mkdir -p "$V"; echo big-data > "$V/data.txt"
t0=$(_up)
python3 - "$V" "$N" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "d%d" % (i // 1000))
    if i % 1000 == 0:
        os.mkdir(d)
    os.close(os.open(os.path.join(d, "f%d" % i), os.O_CREAT | os.O_WRONLY, 0o644))
PY
restorecon -R "$V" 2>/dev/null
echo "    $N files created in $(awk -v a="$t0" '{printf "%.1f", $1-a}' /proc/uptime)s, label $(ls -Zd "$V/d0/f0" | cut -d' ' -f1)"
runs() { _t=$(_up); ovh_run "$@"; _rc=$?; took=$(awk -v a="$_t" '{printf "%.2f", $1-a}' /proc/uptime); return $_rc; }
runs sel-big1 c1,c2 "selbig:/data:Z" 'cat /data/data.txt'; rc=$?; first=$took
check "first start with Z: container reads (rc=$rc)" test "$rc" = 0
check "first start: every file labelled" sh -c "ls -Z '$V/d$(( (N - 1) / 1000 ))/f$((N - 1))' | grep -q 'container_file_t:s0:c1,c2'"
check_log "first start: the hook walked the volume" "sel-big1.*relabelled .*selbig .*entries"
runs sel-big2 c1,c2 "selbig:/data:Z" 'cat /data/data.txt'; rc=$?; second=$took
check "restart with Z: container reads (rc=$rc)" test "$rc" = 0
check_log "restart: the hook skipped the walk" "sel-big2.*skipped, the root carries the target label and the marker"
check_not "restart: the hook did not walk" grep -Eq 'sel-big2.*relabelled' "$OVH_SYSLOG"
runs sel-none c1,c2 "" 'true'; base=$took
echo "    container start->stop: first start (walk) ${first}s, restart ${second}s, no volume ${base}s"
grep -E 'sel-big[12].*(relabelled|skipped)' "$OVH_SYSLOG" | sed 's/^/    log| /'
check "restart is much faster than the first start" awk -v a="$first" -v b="$second" 'BEGIN{exit !(b * 2 < a)}'
# the skip itself, as the hook does it (median of 5)
for _ in 1 2 3 4 5; do "$OVH_HOOK" --log-level warn relabel --context "$(ovh_label c1,c2)" "$V"; done | tee "$OVH_WORK/skip.txt" | sed 's/^/    /'
check "relabel command: skipped 5 times" test "$(grep -c '^skipped' "$OVH_WORK/skip.txt")" = 5
# for scale, by hand: a full relabel of the same tree
t=$(_up); chcon -R "$(ovh_label c3,c4)" "$V"; echo "    chcon -R (full context): $(awk -v a="$t" '{printf "%.2f", $1-a}' /proc/uptime)s"
t=$(_up); "$OVH_HOOK" --log-level warn relabel --always --context "$(ovh_label c1,c2)" "$V" | sed 's/^/    hook: /'
if restorecon -h 2>&1 | grep -q -- '-T'; then
  t=$(_up); restorecon -R -F -T0 "$V"; echo "    restorecon -R -F -T0: $(awk -v a="$t" '{printf "%.2f", $1-a}' /proc/uptime)s (to $(ls -Zd "$V/d0/f0" | cut -d' ' -f1))"
fi
rm -rf "$V"
vm_done
