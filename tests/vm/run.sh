#!/bin/bash
# tests/vm/run.sh [TEST...] - the VM test tier (what the project's test command runs).
#
#   1. vm.sh deps    host packages (idempotent)
#   2. vm.sh build   guest image, cached in $OVH_VM_CACHE (default /var/cache/oci-volume-hook-vm) until image.sh changes
#   3. the hook      cargo build --release --locked, only if target/release/oci-volume-hook is missing
#   4. ONE guest boot, SELinux enforcing, runs tests/vm/guest/suite.sh: every tests/vm/guest/t-*.sh in order
#      (or the TEST files named, e.g. t-30-nfs.sh)
# The last line is "vm: N passed, N failed". Exit status 0 only if nothing failed and the guest finished
# (a timeout, a panic or a missing result counts as a failure). OVH_VM_TIMEOUT: guest time limit (default 900 s).
set -uo pipefail
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
out=$(mktemp /tmp/ovh-vm-run.XXXXXX); trap 'rm -f "$out"' EXIT
result() { echo "vm-timing: deps ${t_deps:--}s, build ${t_build:--}s, hook ${t_hook:--}s, boot+suite ${t_suite:--}s"; echo "$1"; }

t0=$(now); "$HERE/vm.sh" deps || { result "vm: 0 passed, 1 failed (vm.sh deps failed)"; exit 1; }; t_deps=$(since "$t0")
t0=$(now); "$HERE/vm.sh" build || { result "vm: 0 passed, 1 failed (vm.sh build failed)"; exit 1; }; t_build=$(since "$t0")
t0=$(now)
if [ ! -x "$REPO/target/release/oci-volume-hook" ]; then
  (cd "$REPO" && cargo build --release --locked) || { result "vm: 0 passed, 1 failed (cargo build failed)"; exit 1; }
fi
t_hook=$(since "$t0")

t0=$(now)
"$HERE/vm.sh" run --share "$REPO" --timeout "${OVH_VM_TIMEOUT:-900}" -- sh tests/vm/guest/suite.sh "$@" | tee "$out"
rc=${PIPESTATUS[0]}
t_suite=$(since "$t0")
line=$(tr -d '\r' < "$out" | grep -E '^vm: [0-9]+ passed, [0-9]+ failed$' | tail -1)
if [ -z "$line" ]; then
  result "vm: 0 passed, 1 failed (the guest did not finish: status $rc)"; exit 1
fi
result "$line"
[ "$rc" = 0 ] && case $line in *" 0 failed") exit 0;; esac
exit 1
