#!/bin/sh
# tests/vm/guest/bench-nfs.sh [N] - time the hook adds to a container start with one NFS volume, against
# mounting the same export with `mount -t nfs` by hand, in the same run (interleaved, N rounds, medians).
#   base   runc run --detach of a container without the hook
#   bind   the same container with the hook and one managed (bind) volume: the hook's cost without NFS
#   hook   the same container with the hook and one NFS volume (vers=4.2; the hook resolves, mounts, attaches)
#   hand   mount -t nfs -o <the same options> nfs-server:/bench /mnt/bench-hand (mount.nfs)
#   inner  the hook's own mount time (fsopen .. fsmount in its child), from its debug log
# Reported: hook - base (time the hook adds), minus hand (goal: <= 10 ms beyond the mount itself), minus inner;
# and hook - bind (what NFS adds to the hook) against hand and inner.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nfs-lib.sh"
N=${1:-10}
ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END{if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }
E=/srv/nfs; mkdir -p "$E/bench"
nfs_export "$E" || { echo "bench: NFS server did not start"; exit 1; }
OPTS="vers=4.2,hard,timeo=600"
ovh_setup
# the hook from the guest's own memory, as an installed one would be, not from the 9p share
cp "$OVH_HOOK" "$OVH_WORK/oci-volume-hook.bench" && OVH_HOOK=$OVH_WORK/oci-volume-hook.bench
ovh_config 'log_level = "debug"' '[volumes.bench]' 'nfs = "nfs-server:/"' "options = \"$OPTS\"" 'subdir = "bench"'
OVH_HOOK_STAGE=none ovh_bundle bench-base c1,c2 "" true; base_b=$OVH_BUNDLE
ovh_bundle bench-hook c1,c2 "bench:/data:Z" true; hook_b=$OVH_BUNDLE
ovh_bundle bench-bind c1,c2 "benchbind:/data" true; bind_b=$OVH_BUNDLE
mkdir -p /mnt/bench-hand
: > "$OVH_WORK/bench.base"; : > "$OVH_WORK/bench.bind"; : > "$OVH_WORK/bench.hook"; : > "$OVH_WORK/bench.hand"
start() {  # BUNDLE ID -> ms of runc run --detach; then wait for stop, delete
  _t0=$(ms); runc run --detach --bundle "$1" "$2" </dev/null >/dev/null 2>"$OVH_WORK/bench.err" || { cat "$OVH_WORK/bench.err"; return 1; }
  _t=$(( $(ms) - _t0 ))
  _i=0; while [ $_i -lt 200 ] && ! runc state "$2" 2>/dev/null | grep -q '"stopped"'; do sleep 0.05; _i=$((_i+1)); done
  runc delete --force "$2" >/dev/null 2>&1
  echo "$_t"
}
CTX="context=\"$(ovh_label c1,c2)\""
i=0
while [ $i -le "$N" ]; do   # round 0 warms caches and is not counted
  b=$(start "$base_b" "bb$i") || exit 1
  m=$(start "$bind_b" "bm$i") || exit 1
  h=$(start "$hook_b" "bh$i") || exit 1
  t0=$(ms); mount -t nfs -o "$OPTS,$CTX" nfs-server:/bench /mnt/bench-hand || exit 1; d=$(( $(ms) - t0 )); umount /mnt/bench-hand
  if [ $i -gt 0 ]; then echo "$b" >> "$OVH_WORK/bench.base"; echo "$m" >> "$OVH_WORK/bench.bind"; echo "$h" >> "$OVH_WORK/bench.hook"; echo "$d" >> "$OVH_WORK/bench.hand"; fi
  echo "  round $i: base ${b} ms, hook+bind ${m} ms, hook+nfs ${h} ms, mount -t nfs by hand ${d} ms"
  i=$((i+1))
done
grep -o 'mounted nfs-server:/bench .* in [0-9]* ms' "$OVH_SYSLOG" | sed 's/.* in \([0-9]*\) ms/\1/' | tail -n "$N" > "$OVH_WORK/bench.inner"
B=$(median < "$OVH_WORK/bench.base"); M=$(median < "$OVH_WORK/bench.bind"); H=$(median < "$OVH_WORK/bench.hook"); D=$(median < "$OVH_WORK/bench.hand")
I=$(median < "$OVH_WORK/bench.inner")
echo "bench-nfs: N=$N (TCG guest, 2 vCPU), medians: base ${B} ms, hook+bind ${M} ms, hook+nfs ${H} ms, by hand ${D} ms, hook's own mount ${I:-?} ms"
echo "bench-nfs: time added by the hook = $((H - B)) ms; beyond mount -t nfs by hand: $((H - B - D)) ms; beyond its own mount: $((H - B - ${I:-0})) ms (goal <= 10 ms)"
echo "bench-nfs: what NFS adds to the hook (hook+nfs - hook+bind) = $((H - M)) ms; beyond mount -t nfs by hand: $((H - M - D)) ms; beyond its own mount: $((H - M - ${I:-0})) ms"
