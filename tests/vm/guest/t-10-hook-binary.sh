#!/bin/sh
# The hook built on the host (glibc 2.36) runs in the guest from the 9p share.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
check "hook binary present at $OVH_HOOK" test -x "$OVH_HOOK"
out=$("$OVH_HOOK" --version 2>&1); rc=$?
echo "    --version: rc=$rc: $out"
want=$(sed -n 's/^version *= *"\(.*\)"/\1/p' /mnt/host/Cargo.toml | head -1)
check "hook --version exits 0" test "$rc" = 0
check "hook --version prints 'oci-volume-hook $want'" sh -c "printf '%s' '$out' | grep -q '^oci-volume-hook $want'"
vm_done
