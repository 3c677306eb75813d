#!/bin/bash
# bench/relabel.sh [FILES] [BIG] - relabel speed, side by side in one run (root; SELinux may be off).
#
#   1. first relabel of a FILES-file tree (default 100000): the hook's parallel walk
#      (`oci-volume-hook relabel --always` with no marker on the root, a first relabel)
#      vs `chcon -R` with a full context, alternating,
#      ROUNDS times each (default 3), every run rewriting every label; medians, files/s, ratio.
#      Also: --threads 1, the same change with a marker on the root (a re-walk, which reads each
#      label before writing it), and a walk of an already labelled tree (relabel = "always": reads only).
#      `restorecon -R -F -T0` too when SELinux is enabled and restorecon is installed.
#   2. restart of an already labelled BIG-file volume (default 1000000): the hook's O(1) skip,
#      time inside the hook (median of 20) and the whole process vs `oci-volume-hook --version`.
#
# With SELinux off the kernel stores security.selinux on ext4 as given, so labelling throughput
# is measurable here; only an enforcing kernel proves access (tests/vm/guest/t-selinux-*.sh).
# The trees live on a journal-less ext4 loop image under /var/tmp (OVH_BENCH_DIR: use that
# directory instead), so building 1M files does not take half an hour on a busy disk.
# Env: OVH_BIN (default: target/release/oci-volume-hook, built if missing), ROUNDS.
set -euo pipefail
FILES=${1:-100000}
BIG=${2:-1000000}
ROUNDS=${ROUNDS:-3}
HERE=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
BIN=${OVH_BIN:-${CARGO_TARGET_DIR:-$HERE/target}/release/oci-volume-hook}
C0=system_u:object_r:var_lib_t:s0
C1=system_u:object_r:container_file_t:s0:c1,c2
C2=system_u:object_r:container_file_t:s0:c3,c4

[ "$(id -u)" = 0 ] || { echo "bench/relabel.sh: needs root (writes security.selinux)" >&2; exit 2; }
if [ ! -x "$BIN" ]; then (cd "$HERE" && cargo build --release --locked); fi
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
secs() { local t0; t0=$(now); "$@" >/dev/null; awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.3f\n", b-a}'; }

MNT=""
cleanup() { if [ -n "$MNT" ]; then umount "$MNT" 2>/dev/null || true; rm -rf "$MNT" "$MNT.img"; fi; }
trap cleanup EXIT
if [ -n "${OVH_BENCH_DIR:-}" ]; then
  W=$OVH_BENCH_DIR; mkdir -p "$W"
else
  MNT=$(mktemp -d /var/tmp/ovh-bench.XXXXXX)
  truncate -s $(( (FILES + BIG) * 6 / 1000 + 1024 ))M "$MNT.img"
  mkfs.ext4 -q -F -O ^has_journal -N $(( FILES + BIG + 100000 )) "$MNT.img"
  mount -o loop "$MNT.img" "$MNT"
  W=$MNT
fi
fs=$(stat -f -c %T "$W")
echo "bench: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $fs at $W, $(uname -r)"
echo "bench: hook $("$BIN" --version), $(chcon --version | head -1)"

# mktree DIR N: N files, 1000 per directory, two levels
mktree() {
  local dir=$1 n=$2 d=0 left
  left=$n
  while [ "$left" -gt 0 ]; do
    local k=$(( left < 1000 ? left : 1000 )) p="$dir/g$((d / 100))/d$d"
    mkdir -p "$p"
    (cd "$p" && seq -f 'f%g' 1 "$k" | xargs touch)
    left=$(( left - k )); d=$(( d + 1 ))
  done
}
entries() { find "$1" | wc -l; }

# ------------------------------------------------------------------ 1. first relabel ---------
T=$W/tree
t0=$(now); mktree "$T" "$FILES"; chcon -R "$C0" "$T"
E=$(entries "$T")
echo "tree: $FILES files, $E entries, built in $(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}') s"
hook=() chcon1=() hook1=() always=() rewalk=()
unmark() { setfattr -x trusted.oci-volume-hook.relabel "$T" 2>/dev/null || true; }
for _ in $(seq 1 "$ROUNDS"); do
  # every run below rewrites every label: C0 -> C1 (hook), C1 -> C0 (chcon), ...
  # hook, hook1: a first relabel (no marker: labels written without reading them);
  # rewalk: the same change with the marker of an earlier relabel (reads each label first).
  unmark; hook+=("$(secs "$BIN" --log-level warn relabel --always --context "$C1" "$T")")
  chcon1+=("$(secs chcon -R "$C0" "$T")")
  unmark; hook1+=("$(secs "$BIN" --log-level warn relabel --always --threads 1 --context "$C1" "$T")")
  chcon -R "$C0" "$T"
  rewalk+=("$(secs "$BIN" --log-level warn relabel --always --context "$C1" "$T")")
  always+=("$(secs "$BIN" --log-level warn relabel --always --context "$C1" "$T")")
  chcon -R "$C0" "$T"
done
m_hook=$(printf '%s\n' "${hook[@]}" | median); m_chcon=$(printf '%s\n' "${chcon1[@]}" | median)
m_hook1=$(printf '%s\n' "${hook1[@]}" | median); m_always=$(printf '%s\n' "${always[@]}" | median)
m_rewalk=$(printf '%s\n' "${rewalk[@]}" | median)
rate() { awk -v e="$E" -v s="$1" 'BEGIN{printf "%.0f", e/s}'; }
printf 'first relabel, %s entries, median of %s (runs: hook %s | chcon %s):\n' "$E" "$ROUNDS" "${hook[*]}" "${chcon1[*]}"
printf '  hook walk, %s threads        %7.3f s  %8s entries/s\n' "$(nproc)" "$m_hook" "$(rate "$m_hook")"
printf '  hook walk, 1 thread          %7.3f s  %8s entries/s\n' "$m_hook1" "$(rate "$m_hook1")"
printf '  re-walk (reads labels first) %7.3f s  %8s entries/s\n' "$m_rewalk" "$(rate "$m_rewalk")"
printf '  chcon -R %s  %7.3f s  %8s entries/s\n' "$C0" "$m_chcon" "$(rate "$m_chcon")"
printf '  ratio chcon/hook: %.2fx (goal >= 2.5x on 2 cores)\n' "$(awk -v a="$m_chcon" -v b="$m_hook" 'BEGIN{print a/b}')"
printf '  relabel = "always" on a labelled tree (reads only): %.3f s, %s entries/s\n' "$m_always" "$(rate "$m_always")"
if command -v restorecon >/dev/null && command -v selinuxenabled >/dev/null && selinuxenabled; then
  printf '  restorecon -R -F -T0: %s s\n' "$(secs restorecon -R -F -T0 "$T")"
else
  echo "  restorecon -T0: not measured (SELinux disabled here or restorecon not installed: it labels from the policy's file_contexts)"
fi
rm -rf "$T"

# ------------------------------------------------------------------ 2. restart -----------------
if [ "$BIG" -gt 0 ]; then
  V=$W/big
  t0=$(now); mktree "$V" "$BIG"; chcon -R "$C0" "$V"
  echo "volume: $BIG files, $(entries "$V") entries, built in $(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}') s"
  echo "  first start (walk):  $("$BIN" --log-level warn relabel --context "$C2" "$V")"
  in_hook=()
  for _ in $(seq 1 20); do
    line=$("$BIN" --log-level warn relabel --context "$C2" "$V")
    case $line in skipped*) ;; *) echo "  not skipped: $line"; exit 1;; esac
    in_hook+=("$(printf '%s\n' "$line" | sed -n 's/.*(\([0-9.]*\) ms)$/\1/p')")
  done
  printf '  restart (O(1) skip), time inside the hook, median of 20: %s ms (goal <= 2 ms)\n' \
    "$(printf '%s\n' "${in_hook[@]}" | median)"
  if command -v hyperfine >/dev/null; then
    hyperfine -N -w 5 -r 100 --export-json "$W/hf.json" \
      "$BIN --version" "$BIN --log-level warn relabel --context $C2 $V" >/dev/null
    awk -v RS='"command"' 'NR>1{match($0, /"median": *[0-9.e-]+/); m=substr($0, RSTART, RLENGTH); sub(/.*: */, "", m); c=$0; sub(/^: *"/, "", c); sub(/".*/, "", c); printf "  process median %.3f ms  %s\n", m*1000, c}' "$W/hf.json"
  fi
fi
