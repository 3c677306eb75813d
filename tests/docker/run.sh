#!/bin/bash
# shellcheck disable=SC2016,SC2317 # container code in single quotes; trap handlers and test functions called by name
# tests/docker/run.sh [FILTER] — docker and containerd through the runtime
# wrapper oci-volume-runtime (issue 14).
#
# Starts a PRIVATE containerd and dockerd (own root, state, sockets,
# data-root, exec-root, pidfile; vfs, no iptables, no bridge) whose
# daemon.json registers target/release/oci-volume-runtime as the runtime
# "oci-volume" (runtimeArgs --config CFG) and, for the crun case, a second
# pair inside a mount namespace without the cgroup2 "unified" mount (crun
# refuses hybrid cgroups, host-lab.md). A busybox-static rootfs is imported
# as the image. Every daemon is stopped again by the EXIT trap. Nothing
# here touches /var/lib/oci-volume-hook, /etc/oci-volume-hook or the
# system's docker/containerd.
#
# Prints one line per test on stdout:
#   PASS name | FAIL name: reason[; reason...] | SKIP: name: reason
# and finally exactly one line:
#   docker: N passed, N failed[, N skipped]
# Exit status: 0 when nothing failed. Logs: target/docker-logs/.
#
# Needs root. Installs docker.io containerd tini runc crun busybox-static
# jq python3 when they are missing (apt, --no-install-recommends). With
# CI=true a test that cannot run is a failure, not a skip.
#
# Environment: OVH_BIN (the hook; the wrapper must sit beside it, default
# target/release/), CI, DOCKER_KEEP=1 (keep the work directory),
# RT_TIMEOUT (seconds per docker/ctr command, default 120).
set -u

D_SELF=$(readlink -f "$0")
# The assertion helpers, rootfs template and skip conventions of the
# runtime e2e tests.
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$D_SELF")/../e2e/lib.sh"

OVR_BIN=$(dirname "$OVH_BIN")/oci-volume-runtime
DOCKER=/usr/bin/docker   # not the unrelated static client in /usr/local/bin
IMAGE=ovh-docker-busybox:latest
TESTS=(seed env_hidden denied untouched crun_seed ctr_annotation)

# ------------------------------------------------------------- daemons ---

# daemon_start TAG NS — a containerd + dockerd pair under $W/TAG. NS=1
# starts both in a private mount namespace without /sys/fs/cgroup/unified.
# Sets DSOCK (docker), CSOCK (containerd), DSTATE (containerd state dir);
# on failure says why on stdout and returns 1. Not in $(...): the daemons
# would hold the substitution's pipe open.
daemon_start() {
    local tag=$1 ns=$2 i d
    d=$W/$tag
    mkdir -p "$d/containerd/root" "$d/containerd/state" "$d/opt" "$d/data" "$d/exec"
    cat > "$d/containerd.toml" <<EOF
version = 2
root = "$d/containerd/root"
state = "$d/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"
EOF
    OVR=$OVR_BIN CFG=$CFG python3 - "$d/daemon.json" <<'EOF'
import json, os, sys
e = os.environ
json.dump({
    "storage-driver": "vfs", "iptables": False, "ip-forward": False,
    "ip-masq": False, "bridge": "none", "log-level": "warn",
    "runtimes": {
        "oci-volume": {"path": e["OVR"], "runtimeArgs": ["--config", e["CFG"]]},
        "oci-volume-crun": {"path": e["OVR"],
                            "runtimeArgs": ["--config", e["CFG"], "--runtime", "/usr/bin/crun"]},
        "oci-volume-missing": {"path": e["OVR"],
                               "runtimeArgs": ["--config", e["CFG"], "--runtime", "/nonexistent/runc"]},
        "crun": {"path": "/usr/bin/crun"},
    },
}, open(sys.argv[1], "w"), indent=1)
EOF
    local -a pre=()
    if [ "$ns" = 1 ]; then
        unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' sh \
            containerd --config "$d/containerd.toml" > "$d/containerd.log" 2>&1 &
    else
        containerd --config "$d/containerd.toml" > "$d/containerd.log" 2>&1 &
    fi
    local cpid=$!
    echo "$cpid" >> "$W/pids"
    for ((i = 0; i < 300; i++)); do [ -S "$d/containerd.sock" ] && break; sleep 0.1; done
    [ -S "$d/containerd.sock" ] || { echo "containerd ($tag) did not start: $(tail -5 "$d/containerd.log")"; return 1; }
    [ "$ns" = 1 ] && pre=(nsenter "--mount=/proc/$cpid/ns/mnt" --)
    ${pre[@]+"${pre[@]}"} dockerd --config-file "$d/daemon.json" --containerd "$d/containerd.sock" \
        --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/dockerd.pid" \
        -H "unix://$d/docker.sock" > "$d/dockerd.log" 2>&1 &
    echo "$!" >> "$W/pids"
    for ((i = 0; i < 600; i++)); do
        "$DOCKER" -H "unix://$d/docker.sock" version > /dev/null 2>&1 && break
        sleep 0.1
    done
    "$DOCKER" -H "unix://$d/docker.sock" version > /dev/null 2>&1 ||
        { echo "dockerd ($tag) did not start: $(tail -5 "$d/dockerd.log")"; return 1; }
    tar -C "$(rootfs_template)" -c . | "$DOCKER" -H "unix://$d/docker.sock" import - "$IMAGE" > /dev/null ||
        { echo "docker import into $tag failed"; return 1; }
    DSOCK=$d/docker.sock CSOCK=$d/containerd.sock DSTATE=$d/containerd/state
}

# Stop every daemon this run started (dockerd first), by pid, then any
# shim still serving one of them, then the mounts under $W.
daemons_stop() {
    local pid i
    [ -f "$W/pids" ] || return 0
    for pid in $(tac "$W/pids"); do
        kill "$pid" 2>/dev/null || continue
        for ((i = 0; i < 200; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    done
    # Shims outlive containerd; ours carry this run's directory in argv.
    grep -l -F -- "$W" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3 | while read -r pid; do
        [ "$pid" != $$ ] && kill -KILL "$pid" 2>/dev/null
    done
    rm -f "$W/pids"
    awk -v t="$W" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
}

dk() { timeout -k 5 "$RT_TIMEOUT" "$DOCKER" -H "unix://$DSOCK" "$@"; }

# drun OUTDIR RUNTIME [docker run args...] — docker run --rm in the
# foreground; stdout in OUTDIR/out, stderr in OUTDIR/err; sets RC.
drun() {
    local out=$1 rt=$2; shift 2
    mkdir -p "$out"
    dk run --rm --network none --runtime "$rt" "$@" < /dev/null > "$out/out" 2> "$out/err"
    RC=$?
    log "docker run --runtime $rt $*: rc=$RC out=$(tr '\n' '|' < "$out/out" | cut -c1-200) err=$(tr '\n' '|' < "$out/err" | cut -c1-300)"
}

# The bundle config.json of a running docker container (full id).
bundle_config() { printf '%s/io.containerd.runtime.v2.task/moby/%s/config.json\n' "$DSTATE" "$1"; }

# ---------------------------------------------------------------- tests ---

# seed_story RUNTIME VOLUME — the founding story through docker.
seed_story() {
    local rt=$1 vol=$2 before=$T/.host-before
    snapshot_host "$before"
    drun "$T/a" "$rt" -e "OCI_VOLUME_HOOK_VOLUMES=$vol:/myapp" "$IMAGE" \
        sh -c 'echo hello > /myapp/greeting && echo wrote-greeting'
    assert_eq "$RC" 0 "container A exit status"
    assert_grep "$T/a/out" -- wrote-greeting "A wrote /myapp/greeting"
    assert_file_content "$VOLROOT/$vol/greeting" hello "host file after A (--rm) is gone"
    assert_no_records "after A (poststop ran at docker's delete)"

    drun "$T/b" "$rt" -e "OCI_VOLUME_HOOK_VOLUMES=$vol:/myapp" "$IMAGE" cat /myapp/greeting
    assert_eq "$RC" 0 "container B exit status"
    assert_grep "$T/b/out" -- hello "B, a new container, reads what A wrote"
    assert_no_records "after B"

    drun "$T/c" "$rt" -e "OCI_VOLUME_HOOK_VOLUMES=$vol:/myapp:ro" "$IMAGE" \
        sh -c 'cat /myapp/greeting; if echo changed > /myapp/greeting; then echo WRITE-SUCCEEDED; else echo WRITE-REFUSED; fi'
    assert_eq "$RC" 0 "operations container C exit status"
    assert_grep "$T/c/out" -- hello "C reads the greeting"
    assert_grep "$T/c/out" -- WRITE-REFUSED "C's write is refused"
    assert_grep "$T/c/err" -- "Read-only file system" "C's write error"
    assert_file_content "$VOLROOT/$vol/greeting" hello "host file after C (ro) tried to write"
    assert_no_records "after C"
    assert_eq "$(dk ps -aq --filter ancestor="$IMAGE" | wc -l)" 0 "containers left"
    assert_host_unchanged "$before" "docker($rt) seed story"
}

test_seed() {
    seed_story oci-volume seed
    assert_eq "$(stat -c '%a %u:%g' "$VOLROOT/seed")" "755 0:0" "named volume mode/owner"
}

# The variable is moved into the annotation: the container's process never
# sees it, the volume is mounted, and the bundle carries our hooks once.
test_env_hidden() {
    drun "$T/run" oci-volume -e OCI_VOLUME_HOOK_VOLUMES=envh:/data -e KEEP=me "$IMAGE" \
        sh -c 'env; echo ---; tr "\0" "\n" < /proc/1/environ; echo ---; grep " /data " /proc/self/mountinfo > /dev/null && echo DATA-MOUNTED; echo KEEP=$KEEP'
    assert_eq "$RC" 0 "exit status"
    assert_no_grep "$T/run/out" -- OCI_VOLUME_HOOK_VOLUMES "the container's environment"
    assert_grep "$T/run/out" -- DATA-MOUNTED "/data is a mount in the container"
    assert_grep "$T/run/out" -- KEEP=me "other variables stay"
    assert_exists "$VOLROOT/envh" "the volume was created"

    # A running container: its config.json as the runtime got it.
    local id cfg
    id=$(dk run -d --network none --runtime oci-volume -e OCI_VOLUME_HOOK_VOLUMES=envh:/data -e KEEP=me \
        "$IMAGE" sleep 60 2> "$T/err.d")
    if [ -z "$id" ]; then fail "docker run -d: $(cat "$T/err.d")"; return; fi
    cfg=$(bundle_config "$id")
    cp "$cfg" "$T/config.json" 2>/dev/null || fail "no bundle config at $cfg"
    dk rm -f "$id" > /dev/null 2>&1
    assert_eq "$(jq -r '.annotations["oci-volume-hook/volumes"]' "$T/config.json")" envh:/data "annotation in config.json"
    assert_eq "$(jq '[.process.env[] | select(startswith("OCI_VOLUME_HOOK_VOLUMES"))] | length' "$T/config.json")" 0 "variable in process.env"
    assert_eq "$(jq '[.process.env[] | select(. == "KEEP=me")] | length' "$T/config.json")" 1 "KEEP in process.env"
    assert_eq "$(jq --arg h "$OVH_BIN" '[.hooks.createRuntime[] | select(.path == $h)] | length' "$T/config.json")" 1 "our createRuntime hooks"
    assert_eq "$(jq --arg h "$OVH_BIN" '[.hooks.poststop[] | select(.path == $h)] | length' "$T/config.json")" 1 "our poststop hooks"
    assert_eq "$(jq -c --arg h "$OVH_BIN" '.hooks.createRuntime[] | select(.path == $h) | .args' "$T/config.json")" \
        "[\"oci-volume-hook\",\"--config\",\"$CFG\",\"prestart\"]" "createRuntime args"
    assert_eq "$(jq -c '.hooks.createRuntime[0].env' "$T/config.json")" '["PATH=/usr/sbin:/usr/bin:/sbin:/bin","LANG=C"]' "hook env"
    # docker itself still knows the variable (its own metadata, not the container's)
    assert_no_records "after docker rm -f"
}

# /etc is not under allowed_host_paths: docker fails with 125 and the
# hook's denial, and the container's process never runs.
test_denied() {
    local before=$T/.host-before
    snapshot_host "$before"
    drun "$T/run" oci-volume -e OCI_VOLUME_HOOK_VOLUMES=/etc:/x -v "$MARK:/marker" "$IMAGE" \
        sh -c "touch /marker/denied; echo $CONTAINER_MARKER"
    assert_eq "$RC" 125 "docker run exit status"
    assert_grep "$T/run/err" -- 'volume "/etc:/x" denied by policy' "docker's error shows the hook's denial"
    assert_grep "$T/run/err" -- allowed_host_paths "the denial names the rule"
    assert_absent "$MARK/denied" "the container's process did not run"
    assert_no_grep "$T/run/out" -- "$CONTAINER_MARKER" "the container printed nothing"
    assert_absent "$VOLROOT/x" "no volume named after the destination"
    assert_no_records "after the denial"
    assert_eq "$(dk ps -aq --filter ancestor="$IMAGE" | wc -l)" 0 "containers left"
    assert_host_unchanged "$before" "denied /etc:/x"

    # The wrapper's own failure (its runtime is not there) reaches docker's
    # user too: the wrapper writes its line into the shim's JSON log.
    drun "$T/bad" oci-volume-missing -e OCI_VOLUME_HOOK_VOLUMES=seed:/myapp -v "$MARK:/marker" "$IMAGE" \
        sh -c "touch /marker/bad; echo $CONTAINER_MARKER"
    assert_eq "$RC" 125 "docker run exit status with a missing runtime"
    assert_grep "$T/bad/err" -- "oci-volume-runtime: runtime /nonexistent/runc failed: " "docker shows the wrapper's error"
    assert_absent "$MARK/bad" "the container's process did not run"
}

# A container that asks for nothing runs as with plain runc; its bundle's
# config.json gets no hooks and keeps its environment, and the wrapper does
# not even rewrite the file.
test_untouched() {
    drun "$T/run" oci-volume -e FOO=bar -v "$MARK:/marker" "$IMAGE" \
        sh -c "touch /marker/plain; echo $CONTAINER_MARKER FOO=\$FOO"
    assert_eq "$RC" 0 "exit status"
    assert_grep "$T/run/out" -- "$CONTAINER_MARKER FOO=bar" "the container ran with its environment"
    assert_exists "$MARK/plain" "docker's own -v works through the wrapper"

    local id cfg
    id=$(dk run -d --network none --runtime oci-volume -e FOO=bar "$IMAGE" sleep 60 2> "$T/err.d")
    if [ -z "$id" ]; then fail "docker run -d: $(cat "$T/err.d")"; return; fi
    cfg=$(bundle_config "$id")
    cp "$cfg" "$T/config.json" 2>/dev/null || fail "no bundle config at $cfg"
    dk rm -f "$id" > /dev/null 2>&1
    assert_eq "$(jq '.hooks // {} | [.[][] | select(.path | test("oci-volume"))] | length' "$T/config.json")" 0 "our hooks in config.json"
    assert_eq "$(jq '.annotations // {} | has("oci-volume-hook/volumes")' "$T/config.json")" false "our annotation in config.json"
    assert_eq "$(jq '[.process.env[] | select(. == "FOO=bar")] | length' "$T/config.json")" 1 "FOO in process.env"

    # Byte for byte: the same bundle run through the wrapper directly keeps
    # its file (same inode, same bytes, same mtime) and runs like plain runc.
    make_bundle "$T/b" -N -c 'echo plain-run' || { fail "make_bundle"; return; }
    local sum0 stat0 id2
    sum0=$(sha256sum < "$T/b/config.json")
    stat0=$(stat -c '%i %Y %a' "$T/b/config.json")
    new_id; id2=$NEW_ID
    (cd "$T/b" && timeout -k 5 "$RT_TIMEOUT" "$OVR_BIN" --config "$CFG" run "$id2" < /dev/null > "$T/b/out" 2> "$T/b/err")
    RC=$?
    runc delete -f "$id2" > /dev/null 2>&1
    assert_eq "$RC" 0 "wrapper run (default bundle = cwd) exit status"
    assert_grep "$T/b/out" -- plain-run "the runtime's output passes through"
    assert_eq "$(sha256sum < "$T/b/config.json")" "$sum0" "config.json bytes"
    assert_eq "$(stat -c '%i %Y %a' "$T/b/config.json")" "$stat0" "config.json inode, mtime, mode"
    assert_exists "$MARK/b" "the container ran"
    # and the exit code passes through untouched
    make_bundle "$T/e" -N -c 'exit 7' || { fail "make_bundle"; return; }
    new_id; id2=$NEW_ID
    timeout -k 5 "$RT_TIMEOUT" "$OVR_BIN" --config "$CFG" run -b "$T/e" "$id2" < /dev/null > "$T/e/out" 2> "$T/e/err"
    RC=$?
    runc delete -f "$id2" > /dev/null 2>&1
    assert_eq "$RC" 7 "the container's exit code through the wrapper"
    # a malformed config.json: one line from the wrapper, runc not run
    make_bundle "$T/m" -N || { fail "make_bundle"; return; }
    printf '{"broken": ' > "$T/m/config.json"
    new_id; id2=$NEW_ID
    timeout -k 5 "$RT_TIMEOUT" "$OVR_BIN" --config "$CFG" run -b "$T/m" "$id2" < /dev/null > "$T/m/out" 2> "$T/m/err"
    RC=$?
    assert_eq "$RC" 1 "malformed config.json exit status"
    assert_eq "$(wc -l < "$T/m/err")" 1 "lines on stderr"
    assert_grep "$T/m/err" -- "oci-volume-runtime: bundle config $T/m/config.json failed: not valid JSON" "the wrapper's error line"
    assert_eq "$(wc -c < "$T/m/out")" 0 "bytes on stdout"
    assert_eq "$(runc list -q | grep -c -x -- "$id2")" 0 "runc created nothing"
}

# The same seed story with crun as the wrapper's --runtime. crun refuses
# hybrid cgroups, so this pair of daemons runs in a mount namespace without
# /sys/fs/cgroup/unified (host-lab.md).
test_crun_seed() {
    require_cmd crun unshare nsenter
    daemon_start crun 1 > "$T/daemon.err" || { fail "second daemon pair: $(cat "$T/daemon.err")"; return; }
    # Can this dockerd run crun at all (no wrapper)?
    drun "$T/plain" crun "$IMAGE" echo crun-works
    if [ "$RC" != 0 ] || ! grep -q crun-works "$T/plain/out"; then
        skip "dockerd cannot run plain crun here (rc=$RC): $(tr '\n' ' ' < "$T/plain/err" | cut -c1-300)"
    fi
    seed_story oci-volume-crun crunseed
    # It was crun: crun keeps a "status" file in its state directory (runc
    # a state.json), under the --root docker gives this runtime.
    local id
    id=$(dk run -d --network none --runtime oci-volume-crun -e OCI_VOLUME_HOOK_VOLUMES=crunseed:/myapp \
        "$IMAGE" sleep 60 2> "$T/err.d")
    if [ -z "$id" ]; then fail "docker run -d: $(cat "$T/err.d")"; return; fi
    assert_eq "$(find "$W/crun/exec" -path "*/$id/status" | wc -l)" 1 "crun's state file for the container"
    assert_eq "$(find "$W/crun/exec" -path "*/$id/state.json" | wc -l)" 0 "runc's state file for the container"
    dk rm -f "$id" > /dev/null 2>&1
    assert_no_records "after docker rm -f (crun)"
}

# containerd's own client: `ctr run --runc-binary WRAPPER --annotation`,
# the knob a Kubernetes RuntimeClass turns. The binary ctr is given is a
# two-line script adding --config (containerd passes no arguments of ours).
test_ctr_annotation() {
    require_cmd ctr
    local w=$T/ovr-with-config ctr_ns=ovh-docker rootfs id
    printf '#!/bin/sh\nexec %s --config %s "$@"\n' "$OVR_BIN" "$CFG" > "$w"
    chmod 755 "$w"
    rootfs=$T/rootfs
    make_rootfs "$rootfs"
    new_id; id=$NEW_ID
    timeout -k 5 "$RT_TIMEOUT" ctr --address "$CSOCK" -n "$ctr_ns" run --rm --runc-binary "$w" \
        --annotation oci-volume-hook/volumes=ctrvol:/data --env PATH=/bin --rootfs "$rootfs" "$id" \
        sh -c 'echo from-ctr > /data/f && cat /data/f' < /dev/null > "$T/out" 2> "$T/err"
    RC=$?
    log "ctr run: rc=$RC out=$(tr '\n' '|' < "$T/out") err=$(tr '\n' '|' < "$T/err" | cut -c1-300)"
    assert_eq "$RC" 0 "ctr run exit status"
    assert_grep "$T/out" -- from-ctr "the container wrote and read the volume"
    assert_file_content "$VOLROOT/ctrvol/f" from-ctr "host file"
    assert_no_records "after ctr run --rm"

    new_id; id=$NEW_ID
    timeout -k 5 "$RT_TIMEOUT" ctr --address "$CSOCK" -n "$ctr_ns" run --rm --runc-binary "$w" \
        --annotation oci-volume-hook/volumes=/etc:/x --env PATH=/bin --rootfs "$rootfs" "$id" \
        sh -c "echo $CONTAINER_MARKER" < /dev/null > "$T/out2" 2> "$T/err2"
    RC=$?
    log "ctr run (denied): rc=$RC err=$(tr '\n' '|' < "$T/err2" | cut -c1-400)"
    assert_ne "$RC" 0 "ctr run exit status for /etc:/x"
    assert_grep "$T/err2" -- 'denied by policy' "ctr shows the denial"
    assert_no_grep "$T/out2" -- "$CONTAINER_MARKER" "the container printed nothing"
    ctr --address "$CSOCK" -n "$ctr_ns" containers rm "$id" > /dev/null 2>&1
    assert_eq "$(ctr --address "$CSOCK" -n "$ctr_ns" tasks ls -q | wc -l)" 0 "tasks left"
    assert_no_records "after the denied ctr run"
}

# ------------------------------------------------------- one test, own shell ---
run_one() { # NAME — in a subshell; exit 0 pass, 1 fail, 77 skip
    TEST_NAME=$1
    T=$W/t/$TEST_NAME
    mkdir -p "$T"
    : > "$T/.failures"
    MARK=$T/marker
    mkdir -p "$MARK"
    ID_PREFIX=ovh-docker-$RUNID-$TEST_NAME
    ID_N=0
    ASSERT_PASS=0 ASSERT_FAIL=0
    "test_$TEST_NAME"
    [ $((ASSERT_PASS + ASSERT_FAIL)) -gt 0 ] || fail "the test checked nothing"
    [ -s "$T/.failures" ] && exit 1
    exit 0
}

# ---------------------------------------------------------------- driver ---
FILTER=${1:-}
RT_TIMEOUT=${RT_TIMEOUT:-120}
LOGDIR=${DOCKER_LOGDIR:-$REPO/target/docker-logs}
# shellcheck source=tests/lib/driver.sh
. "$REPO/tests/lib/driver.sh"
driver_init docker ${TESTS[@]+"${TESTS[@]}"}

[ "$(id -u)" = 0 ] || all_fail "needs root"

need=()
for p in docker.io containerd tini runc crun busybox-static jq python3; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "run.sh: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -o DPkg::Lock::Timeout=900 &&
        apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=900 "${need[@]}"; } >&2 ||
        all_fail "apt-get install ${need[*]} failed" fail
fi
for c in "$DOCKER" dockerd containerd ctr runc busybox jq python3 unshare nsenter; do
    command -v "$c" > /dev/null 2>&1 || all_fail "$c is missing after installing" fail
done

if [ "$OVH_BIN" = "$REPO/target/release/oci-volume-hook" ] &&
    { [ ! -x "$OVH_BIN" ] || [ ! -x "$OVR_BIN" ]; }; then
    echo "run.sh: building target/release/" >&2
    (cd "$REPO" && cargo build --release --locked) >&2 || all_fail "cargo build failed" fail
fi
[ -x "$OVH_BIN" ] || all_fail "hook binary $OVH_BIN is missing" fail
[ -x "$OVR_BIN" ] || all_fail "wrapper $OVR_BIN is missing (it must sit beside the hook)" fail

W=$(mktemp -d /var/tmp/ovh-docker.XXXX)
chmod 755 "$W"
RUNID=$(basename "$W" | sed 's/^ovh-docker\.//' | tr '[:upper:]' '[:lower:]')
# lib.sh's rootfs template and host snapshot look under E2E_ROOT.
E2E_ROOT=$W
VOLROOT=$W/volumes
STATE=$W/state
CFG=$W/config.toml
printf 'volumes_root = "%s"\nstate_dir = "%s"\nlog_level = "debug"\n' "$VOLROOT" "$STATE" > "$CFG"
mkdir -p "$LOGDIR"
rm -f "$LOGDIR"/*.log

final_cleanup() {
    daemons_stop
    restore_dev_null
    if [ "${DOCKER_KEEP:-}" = 1 ]; then echo "run.sh: kept $W" >&2; else rm -rf "$W"; fi
}
trap final_cleanup EXIT
trap 'exit 130' INT TERM

if ! daemon_start main 0 > "$W/daemon.err"; then
    cat "$W/daemon.err" >&2
    all_fail "private dockerd: $(cat "$W/daemon.err")" fail
fi
echo "run.sh: dockerd $("$DOCKER" -H "unix://$DSOCK" version -f '{{.Server.Version}}'), $(containerd --version | cut -d' ' -f3), $(runc --version | head -1)" >&2

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
