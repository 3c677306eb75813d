#!/bin/bash
# tests/e2e/run.sh [FILTER] — runtime end-to-end tests of oci-volume-hook.
#
# Runs every test in tests/e2e/cases/*.sh (FILTER: an extended regex matched
# against test names), each in its own process with its own temporary
# directory under /var/tmp/ovh-e2e.XXXX. Prints one line per test on stdout:
#   PASS name | FAIL name: reason[; reason...] | SKIP: name: reason
# and finally exactly one line:
#   e2e: N passed, N failed[, N skipped]
# Exit status: 0 when nothing failed. Diagnostics of failing tests go to
# stderr; full logs are kept in target/e2e-logs/ (E2E_KEEP=1 keeps the
# temporary directory too).
#
# Needs root and runc, crun, podman, conmon, busybox-static, jq, python3
# (tests/install-deps.sh). Without them tests are skipped loudly; with
# CI=true a missing prerequisite is a failure.
#
# Environment: OVH_BIN (default target/release/oci-volume-hook, built with
# `cargo build --release --locked` when missing), CI, E2E_KEEP,
# E2E_TEST_TIMEOUT (seconds per test, default 300), E2E_VERBOSE=1 (print
# every test's log on stderr).
set -u

E2E_SELF=$(readlink -f "$0")
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$E2E_SELF")/lib.sh"

E2E_TESTS=()
for _f in "$E2E_DIR"/cases/*.sh; do
    # shellcheck source=/dev/null
    . "$_f"
done
unset _f

# ------------------------------------------------ one test, own process ---
if [ "${1:-}" = --one ]; then
    trap t_cleanup EXIT
    trap 'exit 143' TERM INT
    t_begin "$2"
    "test_$2"
    [ $((ASSERT_PASS + ASSERT_FAIL)) -gt 0 ] || fail "the test checked nothing"
    echo "$ASSERT_PASS $ASSERT_FAIL" > "$T/.counts"
    [ -s "$T/.failures" ] && exit 1
    exit 0
fi

# --------------------------------------------------------------- driver ---
FILTER=${1:-}
LOGDIR=${E2E_LOGDIR:-$REPO/target/e2e-logs}
# shellcheck source=tests/lib/driver.sh
. "$REPO/tests/lib/driver.sh"
driver_init e2e ${E2E_TESTS[@]+"${E2E_TESTS[@]}"}
apass=0 afail=0

[ "$(id -u)" = 0 ] || all_fail "needs root"

# The hook binary: build it when missing (and OVH_BIN was not given).
if [ ! -x "$OVH_BIN" ] && [ "$OVH_BIN" = "$REPO/target/release/oci-volume-hook" ]; then
    echo "run.sh: building $OVH_BIN" >&2
    (cd "$REPO" && cargo build --release --locked) >&2 || echo "run.sh: cargo build failed" >&2
fi
export OVH_BIN

E2E_ROOT=$(mktemp -d /var/tmp/ovh-e2e.XXXX)
chmod 755 "$E2E_ROOT"   # user-namespaced containers must traverse it
E2E_RUNID=$(basename "$E2E_ROOT" | sed 's/^ovh-e2e\.//' | tr '[:upper:]' '[:lower:]')
export E2E_ROOT E2E_RUNID
mkdir -p "$LOGDIR"
rm -f "$LOGDIR"/*.log

final_cleanup() {
    # Anything a killed test left behind (names carry this run's id).
    local n
    if command -v podman >/dev/null 2>&1; then
        for n in $(podman pod ls -q --filter "name=ovh-e2e-$E2E_RUNID" 2>/dev/null); do podman pod rm -f -t 0 "$n" >/dev/null 2>&1; done
        for n in $(podman ps -aq --filter "name=ovh-e2e-$E2E_RUNID" 2>/dev/null); do podman rm -f -t 0 "$n" >/dev/null 2>&1; done
        podman image rm -f "$KUBE_IMAGE" >/dev/null 2>&1
    fi
    if command -v runc >/dev/null 2>&1; then
        for n in $(runc list -q 2>/dev/null | grep "^ovh-e2e-$E2E_RUNID"); do runc delete -f "$n" >/dev/null 2>&1; done
    fi
    if command -v crun >/dev/null 2>&1; then
        for n in $(crun list -q 2>/dev/null | grep "^ovh-e2e-$E2E_RUNID"); do crun_ns delete -f "$n" >/dev/null 2>&1; done
    fi
    awk -v t="$E2E_ROOT" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r \
        | while read -r n; do umount -l "$n" 2>/dev/null; done
    if [ "${E2E_KEEP:-}" = 1 ]; then
        echo "run.sh: kept $E2E_ROOT" >&2
    else
        rm -rf "$E2E_ROOT"
    fi
}
trap final_cleanup EXIT
trap 'exit 130' INT TERM

"$OVH_BIN" --version >&2 2>/dev/null || true
for t in ${selected[@]+"${selected[@]}"}; do
    log=$LOGDIR/$t.log
    t0=$SECONDS
    timeout -k 10 "${E2E_TEST_TIMEOUT:-300}" "$E2E_SELF" --one "$t" > "$log" 2>&1
    rc=$?
    echo "run.sh: $t took $((SECONDS - t0))s (exit $rc)" >> "$log"
    dir=$E2E_ROOT/$t
    driver_judge "$t" "$rc" "$dir" "$log"
    if [ -f "$dir/.counts" ]; then
        read -r ap af < "$dir/.counts"
        apass=$((apass + ap)); afail=$((afail + af))
    fi
    [ "${E2E_VERBOSE:-}" = 1 ] && cat "$log" >&2
done
echo "run.sh: assertions: $apass passed, $afail failed; logs in $LOGDIR" >&2
summary
[ "$nfail" = 0 ]
