#!/bin/bash
# shellcheck disable=SC2016,SC2317 # machine code in single quotes; trap handlers and test functions called by name
# tests/nspawn/run.sh [FILTER] — the systemd-nspawn launcher
# (`oci-volume-hook nspawn`, issue 16) against the real systemd-nspawn.
#
# Each test has its own directory $T under /var/tmp/ovh-nspawn.XXXX, its own
# config ($T/config.toml: volumes_root=$T/volumes, state_dir=$T/state) and
# busybox-static machine roots (with the /usr and /etc/os-release nspawn
# looks for). nspawn in this VM needs --register=no --keep-unit and
# SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 (hybrid cgroups, host-lab.md): they are
# the tests' own nspawn arguments and environment, not the launcher's.
# Nothing here touches /var/lib/oci-volume-hook or /run/oci-volume-hook.
#
# Prints one line per test on stdout:
#   PASS name | FAIL name: reason[; reason...] | SKIP: name: reason
# and finally exactly one line:
#   nspawn: N passed, N failed[, N skipped]
# Exit status: 0 when nothing failed. Logs: target/nspawn-logs/.
#
# Needs root; installs systemd-container and busybox-static when missing.
# With CI=true a test that cannot run is a failure, not a skip.
# Environment: OVH_BIN (default target/release/oci-volume-hook, rebuilt
# with cargo first), CI, NSPAWN_KEEP=1 (keep the work directory),
# RT_TIMEOUT (seconds per launch, default 120).
set -u

N_SELF=$(readlink -f "$0")
# The assertion helpers, rootfs template and skip conventions of the
# runtime e2e tests.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$N_SELF")/../e2e/lib.sh"

TESTS=(seed denied exclusive nspawn_killed sigterm launcher_killed)
# The tests' own nspawn settings (host-lab.md).
NSPAWN_OPTS=(--register=no --keep-unit -q)
export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1

# machine NAME — a machine root $T/NAME: the busybox rootfs, /usr, os-release.
machine() {
    local r=$T/$1
    [ -d "$r" ] || make_rootfs "$r"
    mkdir -p "$r/usr"
    printf 'ID=ovh-test\nNAME="oci-volume-hook test"\n' > "$r/etc/os-release"
    printf '%s\n' "$r"
}

# launch OUT VOLUME-ARGS... -- NSPAWN-ARGS... — the launcher in the
# foreground; stdout/stderr in OUT/out, OUT/err; sets RC. The marker
# directory is bound at /marker in every machine.
launch() {
    local out=$1; shift
    local -a vols=()
    while [ "$1" != -- ]; do vols+=("$1"); shift; done
    shift
    mkdir -p "$out"
    timeout -k 5 "$RT_TIMEOUT" "$OVH_BIN" --config "$CFG" nspawn "${vols[@]}" -- \
        "${NSPAWN_OPTS[@]}" --bind="$MARK:/marker" "$@" < /dev/null > "$out/out" 2> "$out/err"
    RC=$?
    log "launch ${vols[*]} -- $*: rc=$RC out=$(tr '\n' '|' < "$out/out" | cut -c1-200) err=$(tr '\n' '|' < "$out/err" | cut -c1-400)"
}

# launch_bg OUT VOLUME-ARGS... -- NSPAWN-ARGS... — the same in the
# background; LAUNCHER is its pid (the launcher itself: no wrapper).
launch_bg() {
    local out=$1; shift
    local -a vols=()
    while [ "$1" != -- ]; do vols+=("$1"); shift; done
    shift
    mkdir -p "$out"
    "$OVH_BIN" --config "$CFG" nspawn "${vols[@]}" -- \
        "${NSPAWN_OPTS[@]}" --bind="$MARK:/marker" "$@" < /dev/null > "$out/out" 2> "$out/err" &
    LAUNCHER=$!
    track pid "$LAUNCHER"
}

# wait_for FILE [SECONDS] — until FILE exists.
wait_for() {
    local i n=$((${2:-30} * 10))
    for ((i = 0; i < n; i++)); do [ -e "$1" ] && return 0; sleep 0.1; done
    return 1
}

# wait_exit PID [SECONDS] — wait for a background launcher; sets RC.
wait_exit() {
    local i n=$((${2:-30} * 10))
    for ((i = 0; i < n; i++)); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$1" 2>/dev/null; then
        fail "launcher $1 still running after ${2:-30}s"
        kill -KILL "$1" 2>/dev/null
    fi
    wait "$1"
    RC=$?
}

# Mount points at or below DIR in this (the host's) mount namespace.
mounts_below() { awk -v d="$1/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo; }

# Nothing of a finished launch may remain: no record, no per-run
# directory or mount under state_dir/nspawn.
assert_released() { # WHAT
    assert_no_records "$1"
    assert_eq "$(find "$STATE/nspawn" -mindepth 1 2>/dev/null | wc -l)" 0 "$1: entries left under $STATE/nspawn"
    assert_eq "$(mounts_below "$STATE/nspawn" | wc -l)" 0 "$1: mounts left below $STATE/nspawn"
}

# ------------------------------------------------------------------ tests ---

# The seed story with -D: A writes, B (another machine) reads, the data is
# in volumes_root on the host, C (:ro) cannot write.
test_seed() {
    local a b c
    a=$(machine app) b=$(machine other) c=$(machine ops)
    launch "$T/a" --volume myapp:/myapp -- -D "$a" \
        /bin/sh -c 'touch /marker/a && echo hello > /myapp/greeting && echo wrote-greeting'
    assert_eq "$RC" 0 "machine A exit status"
    assert_exists "$MARK/a" "A ran"
    assert_grep "$T/a/out" -- wrote-greeting "A wrote /myapp/greeting"
    assert_file_content "$VOLROOT/myapp/greeting" hello "host file after A is gone"
    assert_eq "$(stat -c '%a %u:%g' "$VOLROOT/myapp")" "755 0:0" "named volume mode/owner"
    assert_released "after A"

    launch "$T/b" --volume myapp:/myapp -- -D "$b" /bin/cat /myapp/greeting
    assert_eq "$RC" 0 "machine B exit status"
    assert_grep "$T/b/out" -- hello "B, another machine, reads what A wrote"
    assert_released "after B"

    launch "$T/c" --volume 'myapp:/myapp:ro' -- -D "$c" /bin/sh -c \
        'cat /myapp/greeting; if echo changed > /myapp/greeting; then echo WRITE-SUCCEEDED; else echo WRITE-REFUSED; fi; grep " /myapp " /proc/self/mountinfo'
    assert_eq "$RC" 0 "machine C exit status"
    assert_grep "$T/c/out" -- hello "C reads the greeting"
    assert_grep "$T/c/out" -- WRITE-REFUSED "C's write is refused"
    assert_grep "$T/c/out" "$T/c/err" -- "Read-only file system" "C's write error"
    assert_grep "$T/c/out" -- " /myapp ro,nosuid,nodev" "C's /myapp is ro,nosuid,nodev"
    assert_file_content "$VOLROOT/myapp/greeting" hello "host file after C (ro) tried to write"
    assert_released "after C"

    # Several specs joined by ';' in one --volume, and a second --volume.
    launch "$T/d" --volume 'myapp:/myapp:ro;logs:/var/log/app' --volume 'extra:/extra:noexec' -- -D "$a" \
        /bin/sh -c 'cat /myapp/greeting && echo log > /var/log/app/l && grep -E " /(extra|var/log/app) " /proc/self/mountinfo'
    assert_eq "$RC" 0 "machine D (three volumes) exit status"
    assert_file_content "$VOLROOT/logs/l" log "D wrote into its second volume"
    assert_grep "$T/d/out" -- " /extra rw,nosuid,nodev,noexec" "D's /extra is noexec"
    assert_released "after D"
}

# A request the policy denies: exit 3, the hook's line, nspawn never ran.
test_denied() {
    local r before=$T/.host-before
    r=$(machine app)
    snapshot_host "$before"
    launch "$T/x" --volume /etc:/x -- -D "$r" /bin/touch /marker/ran
    assert_eq "$RC" 3 "launcher exit status (denied by policy)"
    assert_grep "$T/x/err" -- 'volume "/etc:/x" denied by policy' "the policy's line"
    assert_absent "$MARK/ran" "nspawn never ran the machine"
    assert_no_grep "$T/x/err" -- "Spawning container" "nspawn said nothing"
    assert_released "after the denial"
    assert_host_unchanged "$before" "denied request"

    # An invalid spec (exit 2) and idmap (no user namespace before nspawn).
    launch "$T/y" --volume 'myapp' -- -D "$r" /bin/touch /marker/ran
    assert_eq "$RC" 2 "launcher exit status (invalid spec)"
    launch "$T/z" --volume 'myapp:/myapp:idmap' -- -D "$r" /bin/touch /marker/ran
    assert_eq "$RC" 2 "launcher exit status (idmap)"
    assert_grep "$T/z/err" -- "option idmap cannot be used with \`oci-volume-hook nspawn\`" "idmap's line"
    assert_absent "$MARK/ran" "nspawn never ran for an invalid request"
    assert_released "after the invalid requests"
}

# An exclusive admin volume held by a running machine refuses a second one,
# naming the holder; `volumes` lists the machine as the holder.
test_exclusive() {
    local m1 m2
    m1=$(machine web1) m2=$(machine web2)
    mkdir -p "$T/db"
    write_config "[volumes.db]" "path = \"$T/db\"" 'access = "exclusive"'
    launch_bg "$T/1" --volume db:/db -- -D "$m1" \
        /bin/sh -c 'touch /marker/web1; i=0; while [ ! -e /marker/stop ] && [ $i -lt 600 ]; do i=$((i+1)); sleep 0.1; done; echo one > /db/who'
    wait_for "$MARK/web1" || fail "machine web1 did not start: $(cat "$T/1/err")"
    assert_exists "$STATE/containers/web1.json" "web1's record"
    "$OVH_BIN" --config "$CFG" volumes > "$T/volumes.out" 2>&1
    assert_grep "$T/volumes.out" -- "web1" "volumes lists machine web1 as a holder"
    assert_eq "$(mounts_below "$STATE/nspawn" | wc -l)" 1 "one staging mount while web1 runs"

    launch "$T/2" --volume db:/db -- -D "$m2" /bin/touch /marker/web2
    assert_eq "$RC" 1 "second machine's launcher exit status"
    assert_grep "$T/2/err" -- 'volume "db:/db" failed: volume db is exclusive and container web1 holds it' "the refusal names the holder"
    assert_absent "$MARK/web2" "web2 never ran"
    assert_absent "$STATE/nspawn/web2" "no staging for web2"

    touch "$MARK/stop"
    wait_exit "$LAUNCHER"
    assert_eq "$RC" 0 "web1's launcher exit status"
    assert_file_content "$T/db/who" one "web1 wrote into the exclusive volume"
    assert_released "after web1"

    # Now free: web2 gets it.
    launch "$T/3" --volume db:/db -- -D "$m2" /bin/sh -c 'touch /marker/web2 && cat /db/who'
    assert_eq "$RC" 0 "web2 after web1 stopped"
    assert_grep "$T/3/out" -- one "web2 reads the volume"
    assert_released "after web2"
}

# The pid of the systemd-nspawn the launcher runs.
nspawn_pid() {
    local i p
    for ((i = 0; i < 100; i++)); do
        p=$(pgrep -P "$1" -x systemd-nspawn | head -1)
        [ -n "$p" ] && { printf '%s\n' "$p"; return 0; }
        sleep 0.1
    done
    return 1
}

# SIGKILL of nspawn: the launcher still releases the claim, unmounts and
# removes its per-run mounts, and exits 128+9.
test_nspawn_killed() {
    local m1 m2 np
    m1=$(machine k1) m2=$(machine k2)
    mkdir -p "$T/db"
    write_config "[volumes.db]" "path = \"$T/db\"" 'access = "exclusive"'
    launch_bg "$T/1" --volume db:/db -- -D "$m1" \
        /bin/sh -c 'touch /marker/k1; sleep 600'
    wait_for "$MARK/k1" || fail "machine k1 did not start: $(cat "$T/1/err")"
    np=$(nspawn_pid "$LAUNCHER") || fail "no systemd-nspawn under launcher $LAUNCHER"
    assert_eq "$(mounts_below "$STATE/nspawn" | wc -l)" 1 "one staging mount while k1 runs"
    kill -KILL "$np"
    wait_exit "$LAUNCHER"
    assert_eq "$RC" 137 "launcher exit status after nspawn's SIGKILL"
    assert_grep "$T/1/err" -- "released the volumes" "the launcher released the volumes"
    assert_released "after nspawn was killed"
    # The machine's payload went with nspawn.
    assert_eq "$(pgrep -f 'touch /marker/k1; sleep 600' | wc -l)" 0 "k1's processes left"
    # The exclusive volume is free again.
    launch "$T/2" --volume db:/db -- -D "$m2" /bin/touch /marker/k2
    assert_eq "$RC" 0 "k2 gets the volume k1 held"
    assert_exists "$MARK/k2" "k2 ran"
    assert_released "after k2"
}

# SIGTERM to the launcher (only) reaches nspawn; the machine's own exit
# status comes back through nspawn and the launcher.
test_sigterm() {
    local m
    m=$(machine term)
    launch_bg "$T/1" --volume myapp:/myapp -- --kill-signal=SIGTERM -D "$m" \
        /bin/sh -c 'trap "echo got-term > /myapp/term; exit 42" TERM; touch /marker/term; while :; do sleep 0.1; done'
    wait_for "$MARK/term" || fail "machine term did not start: $(cat "$T/1/err")"
    kill -TERM "$LAUNCHER"
    wait_exit "$LAUNCHER"
    assert_eq "$RC" 42 "launcher exit status = the machine's (through nspawn)"
    assert_file_content "$VOLROOT/myapp/term" got-term "the machine saw SIGTERM"
    assert_released "after SIGTERM"

    # SIGHUP is forwarded too: nspawn does not handle it and dies of it,
    # and the launcher, which does not, exits with 128+1 after cleaning up.
    launch_bg "$T/2" --volume myapp:/myapp -- -D "$m" \
        /bin/sh -c 'touch /marker/hup; sleep 600'
    wait_for "$MARK/hup" || fail "machine (hup) did not start: $(cat "$T/2/err")"
    kill -HUP "$LAUNCHER"
    wait_exit "$LAUNCHER"
    assert_eq "$RC" 129 "launcher exit status after SIGHUP (nspawn killed by it)"
    assert_grep "$T/2/err" -- "forwarding signal 1 to systemd-nspawn" "the launcher forwarded SIGHUP"
    assert_grep "$T/2/err" -- "released the volumes" "the launcher lived on to release the volumes"
    assert_released "after SIGHUP"
}

# A launcher that is killed: nspawn gets SIGTERM (parent-death signal) and
# the machine stops; the record it left is stale for `volumes` and for the
# next launch, which clears what it left under state_dir/nspawn.
test_launcher_killed() {
    local m np i
    m=$(machine lk)
    launch_bg "$T/1" --volume myapp:/myapp -- -D "$m" \
        /bin/sh -c 'touch /marker/lk; sleep 600'
    wait_for "$MARK/lk" || fail "machine lk did not start: $(cat "$T/1/err")"
    np=$(nspawn_pid "$LAUNCHER") || fail "no systemd-nspawn under launcher $LAUNCHER"
    kill -KILL "$LAUNCHER"
    wait "$LAUNCHER" 2>/dev/null
    for ((i = 0; i < 100; i++)); do kill -0 "$np" 2>/dev/null || break; sleep 0.1; done
    check "nspawn stopped with its launcher" test ! -d "/proc/$np"
    assert_exists "$STATE/containers/lk.json" "the killed launcher's record"
    "$OVH_BIN" --config "$CFG" volumes > "$T/volumes.out" 2>&1
    assert_no_grep "$T/volumes.out" -- " lk" "volumes does not list the dead machine as a holder"
    # The same machine again: the stale record and mounts are recovered.
    rm -f "$MARK/lk"
    launch "$T/2" --volume myapp:/myapp -- -D "$m" /bin/touch /marker/lk
    assert_eq "$RC" 0 "the same machine starts again"
    assert_exists "$MARK/lk" "it ran"
    assert_released "after the second run"
}

# ------------------------------------------------------- one test, own shell ---
run_one() { # NAME — in a subshell; exit 0 pass, 1 fail, 77 skip
    TEST_NAME=$1
    T=$W/t/$TEST_NAME
    mkdir -p "$T"
    : > "$T/.failures"
    MARK=$T/marker
    mkdir -p "$MARK"
    CFG=$T/config.toml
    VOLROOT=$T/volumes
    STATE=$T/state
    # shellcheck disable=SC2119
    write_config
    ASSERT_PASS=0 ASSERT_FAIL=0
    trap t_cleanup EXIT
    "test_$TEST_NAME"
    [ $((ASSERT_PASS + ASSERT_FAIL)) -gt 0 ] || fail "the test checked nothing"
    [ -s "$T/.failures" ] && exit 1
    exit 0
}

# ---------------------------------------------------------------- driver ---
FILTER=${1:-}
RT_TIMEOUT=${RT_TIMEOUT:-120}
LOGDIR=${NSPAWN_LOGDIR:-$REPO/target/nspawn-logs}
# shellcheck source=tests/lib/driver.sh
. "$REPO/tests/lib/driver.sh"
driver_init nspawn ${TESTS[@]+"${TESTS[@]}"}

[ "$(id -u)" = 0 ] || all_fail "needs root"

need=()
for p in systemd-container busybox-static; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "run.sh: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -o DPkg::Lock::Timeout=900 &&
        apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=900 "${need[@]}"; } >&2 ||
        all_fail "apt-get install ${need[*]} failed" fail
fi
for c in /usr/bin/systemd-nspawn busybox pgrep timeout; do
    command -v "$c" > /dev/null 2>&1 || all_fail "$c is missing after installing" fail
done

if [ "$OVH_BIN" = "$REPO/target/release/oci-volume-hook" ]; then
    (cd "$REPO" && cargo build --release --locked) >&2 || all_fail "cargo build failed" fail
fi
[ -x "$OVH_BIN" ] || all_fail "hook binary $OVH_BIN is missing" fail

W=$(mktemp -d /var/tmp/ovh-nspawn.XXXX)
chmod 755 "$W"
# lib.sh's rootfs template and host snapshot look under E2E_ROOT.
E2E_ROOT=$W
mkdir -p "$LOGDIR"
rm -f "$LOGDIR"/*.log

final_cleanup() {
    awk -v t="$W" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    if [ "${NSPAWN_KEEP:-}" = 1 ]; then echo "run.sh: kept $W" >&2; else rm -rf "$W"; fi
}
trap final_cleanup EXIT
trap 'exit 130' INT TERM
echo "run.sh: $(/usr/bin/systemd-nspawn --version | head -1)" >&2

for t in ${selected[@]+"${selected[@]}"}; do
    log=$LOGDIR/$t.log
    t0=$SECONDS
    (run_one "$t") > "$log" 2>&1
    rc=$?
    echo "run.sh: $t took $((SECONDS - t0))s (exit $rc)" >> "$log"
    driver_judge "$t" "$rc" "$W/t/$t" "$log"
done
summary
[ "$nfail" = 0 ]
