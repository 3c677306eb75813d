#!/bin/bash
# tests/install-deps.sh — host packages for the runtime end-to-end tests
# (tests/e2e/run.sh) and the benchmarks (bench/start-latency.sh, bench/owner.sh;
# attr for the ownership marker xattr, GNU time for CPU figures).
# Debian 12, as root. Idempotent: when everything is there it only checks.
# The Rust build needs nothing from here.
set -u

PKGS=(runc crun podman conmon busybox-static hyperfine jq python3
      util-linux coreutils iproute2 shellcheck attr time)

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: must run as root" >&2
    exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -o DPkg::Lock::Timeout=900 || exit 1
    # With recommends, as on the lab machines (podman's netavark, uidmap, …).
    apt-get install -y -o DPkg::Lock::Timeout=900 "${missing[@]}" || exit 1
fi

# Every binary the tests call must now be there.
rc=0
for c in runc crun podman conmon busybox hyperfine jq python3 unshare nsenter timeout getfattr setfattr; do
    command -v "$c" >/dev/null 2>&1 || { echo "install-deps: $c still missing" >&2; rc=1; }
done
[ -x /bin/busybox ] || { echo "install-deps: /bin/busybox (busybox-static) missing" >&2; rc=1; }
[ "$rc" = 0 ] && echo "install-deps: ok ($(runc --version | head -1); $(crun --version | head -1); $(podman --version))" >&2
exit "$rc"
