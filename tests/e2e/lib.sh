# shellcheck shell=bash
# shellcheck disable=SC2016 # single-quoted code runs in containers / sh -c
# tests/e2e/lib.sh — helpers for the runtime end-to-end tests of oci-volume-hook.
#
# Sourced by tests/e2e/run.sh and the test files in cases/. Every test runs in its own process with its own temporary
# directory $T under $E2E_ROOT (/var/tmp/ovh-e2e.XXXX), its own config file
# $CFG (volumes_root=$T/volumes, state_dir=$T/state) and its own host directory
# $MARK that is bind-mounted at /marker in every container it starts.
#
# Nothing here touches /var/lib/oci-volume-hook or /run/oci-volume-hook.

set -u

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$E2E_DIR/../.." && pwd)
OVH_BIN=${OVH_BIN:-$REPO/target/release/oci-volume-hook}
ANN_KEY=oci-volume-hook/volumes
# Same limits podman needs here without CAP_SYS_RESOURCE (host-lab.md).
PODMAN_ULIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
# Bound on every runtime invocation, so that a hung hook cannot hang the run.
RT_TIMEOUT=${RT_TIMEOUT:-120}
KUBE_IMAGE=${KUBE_IMAGE:-localhost/ovh-e2e-busybox:latest}
CONTAINER_MARKER=OVH-CONTAINER-STARTED

# ---------------------------------------------------------------- logging ---

log() { printf '    [%s] %s\n' "${TEST_NAME:-lib}" "$*" >&2; }

# ------------------------------------------------------------- assertions ---
# Assertions never stop the test: they record a failure reason in
# $T/.failures and go on, so one FAIL line lists every broken expectation.

ASSERT_PASS=0
ASSERT_FAIL=0

pass() {
    ASSERT_PASS=$((ASSERT_PASS + 1))
    log "ok: $*"
}

fail() {
    ASSERT_FAIL=$((ASSERT_FAIL + 1))
    log "NOT OK: $*"
    printf '%s\n' "$*" >> "$T/.failures"
}

# check DESCRIPTION COMMAND... — passes when COMMAND succeeds.
check() {
    local what=$1; shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

assert_eq() { # GOT WANT WHAT
    if [ "$1" = "$2" ]; then pass "$3 = $2"; else fail "$3: got '$1', want '$2'"; fi
}

assert_ne() { # GOT UNWANTED WHAT
    if [ "$1" != "$2" ]; then pass "$3 != $2"; else fail "$3: got '$1', which it must not be"; fi
}

# assert_grep FILE... -- PATTERN WHAT   (fixed string, case-sensitive)
assert_grep() {
    local -a files=()
    while [ "$1" != -- ]; do files+=("$1"); shift; done
    shift
    local pat=$1 what=$2
    if cat "${files[@]}" 2>/dev/null | grep -qF -- "$pat"; then
        pass "$what: output contains '$pat'"
    else
        fail "$what: output lacks '$pat' (got: $(cat "${files[@]}" 2>/dev/null | tr '\n' ' ' | cut -c1-400))"
    fi
}

assert_no_grep() {
    local -a files=()
    while [ "$1" != -- ]; do files+=("$1"); shift; done
    shift
    local pat=$1 what=$2
    if cat "${files[@]}" 2>/dev/null | grep -qF -- "$pat"; then
        fail "$what: output must not contain '$pat' (got: $(cat "${files[@]}" 2>/dev/null | tr '\n' ' ' | cut -c1-400))"
    else
        pass "$what: output has no '$pat'"
    fi
}

assert_file_content() { # FILE WANT WHAT
    local got
    if [ ! -f "$1" ]; then fail "$3: $1 does not exist"; return; fi
    got=$(cat "$1")
    assert_eq "$got" "$2" "$3"
}

assert_exists() { if [ -e "$1" ] || [ -L "$1" ]; then pass "$2: $1 exists"; else fail "$2: $1 does not exist"; fi; }
assert_absent() { if [ -e "$1" ] || [ -L "$1" ]; then fail "$2: $1 exists but must not"; else pass "$2: $1 absent"; fi; }

# All files holding something a runtime or the hook said about the run whose
# outputs are in DIR (runtime stdout/stderr, crun's hook output files, kube
# play's own output).
outs() {
    local f
    for f in out err hook.stderr hook.stdout play.out; do
        [ -f "$1/$f" ] && printf '%s\n' "$1/$f"
    done
}

# What was said, with runc's logrus escaping undone (\" -> ", \n -> newline).
said() {
    local -a f=()
    mapfile -t f < <(outs "$1")
    [ ${#f[@]} -gt 0 ] || return 0
    cat "${f[@]}" 2>/dev/null | sed 's/\\"/"/g; s/\\n/\n/g'
}

# assert_said DIR PATTERN WHAT — fixed string in what was said about DIR's run.
assert_said() {
    if said "$1" | grep -qF -- "$2"; then
        pass "$3: said '$2'"
    else
        fail "$3: no '$2' in output (got: $(said "$1" | tr '\n' ' ' | cut -c1-400))"
    fi
}

assert_not_said() {
    if said "$1" | grep -qF -- "$2"; then
        fail "$3: output must not contain '$2' (got: $(said "$1" | tr '\n' ' ' | cut -c1-400))"
    else
        pass "$3: did not say '$2'"
    fi
}

# The container command writes $MARK/<name> (host side) and prints the marker.
# assert_not_started BUNDLE_OR_OUTDIR NAME WHAT
assert_not_started() {
    local out=$1 name=$2 what=$3
    assert_absent "$MARK/$name" "$what: container did not run"
    assert_no_grep "$out/out" -- "$CONTAINER_MARKER" "$what: container printed nothing"
}

assert_started() {
    local out=$1 name=$2 what=$3
    assert_exists "$MARK/$name" "$what: container ran"
}

# Mount table of the host mount namespace, for before/after comparisons.
# Host mount points a misbehaving hook could create: anywhere outside /var,
# /run, /sys, /proc, /dev and /tmp (e.g. /etc, /myapp, /a/b), the escape
# target /tmp/ovh-escape, and anything under this run's own directory. The
# excluded trees belong to podman's storage and to other work on the machine
# (VM image builds under /tmp and /var/cache, …), whose mounts come and go.
host_mounts() {
    awk -v r="${E2E_ROOT:-/nonexistent}" \
        '$5 !~ "^/(var|run|sys|proc|dev|tmp)/" || index($5, "/tmp/ovh-escape") == 1 || index($5, r) == 1 {print $5}' \
        /proc/self/mountinfo | sort
}

# The host must be exactly as before: same mount points, same /etc listing.
snapshot_host() { # FILE
    # /etc/oci-volume-hook comes and goes with the package tests (tests/pkg).
    { host_mounts; echo ---; find /etc -mindepth 1 -maxdepth 1 ! -name 'oci-volume-hook*' | sort; } > "$1" 2>/dev/null
}

assert_host_unchanged() { # BEFORE_FILE WHAT
    local now=$T/.host-now
    snapshot_host "$now"
    if cmp -s "$1" "$now"; then
        pass "$2: host mounts and /etc unchanged"
    else
        fail "$2: host changed: $(diff "$1" "$now" | grep '^[<>]' | tr '\n' ' ' | cut -c1-300)"
    fi
}

# No per-container record (state_dir/containers/<id>.json) may be left behind.
assert_no_records() { # WHAT
    local n
    n=$(find "$STATE/containers" -name '*.json' 2>/dev/null | wc -l)
    assert_eq "$n" 0 "$1: records left in $STATE/containers"
}

# --------------------------------------------------------------- skipping ---

# skip REASON — loud; with CI=true a missing prerequisite is a failure.
skip() {
    if [ "${CI:-}" = true ]; then
        fail "prerequisite missing (CI=true, so this is a failure): $*"
        exit 1
    fi
    printf 'SKIP: %s: %s\n' "${TEST_NAME:-?}" "$*" > "$T/.skip"
    exit 77
}

require_root() { [ "$(id -u)" = 0 ] || skip "needs root"; }
require_cmd() { local c; for c in "$@"; do command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"; done; }
require_runtime() { # runc|crun|podman|kube
    require_root
    require_cmd python3 jq busybox
    case $1 in
        runc) require_cmd runc ;;
        crun) require_cmd crun unshare ;;
        podman) require_cmd podman conmon runc ;;
        podman-crun) require_cmd podman conmon crun unshare ;;
        kube) require_cmd podman conmon runc ;;
    esac
    [ -x "$OVH_BIN" ] || skip "hook binary $OVH_BIN is missing"
}

# ------------------------------------------------------------ per-test env ---

# t_begin NAME — called by run.sh in the test's own process.
t_begin() {
    TEST_NAME=$1
    T=$E2E_ROOT/$TEST_NAME
    rm -rf "$T"
    mkdir -p "$T"
    : > "$T/.failures"
    CFG=$T/config.toml
    VOLROOT=$T/volumes
    STATE=$T/state
    MARK=$T/marker
    mkdir -p "$MARK"
    ID_PREFIX=ovh-e2e-$E2E_RUNID-$TEST_NAME
    ID_N=0
    # shellcheck disable=SC2119
    write_config
}

# new_id — a fresh container/pod name for this test (lower case, unique).
new_id() {
    ID_N=$((ID_N + 1))
    local n=$ID_N
    # A background subshell gets its own suffix (its counter is a copy).
    [ "$BASHPID" = "$$" ] || n=$n-$BASHPID
    NEW_ID=$(printf '%s-%s' "$ID_PREFIX" "$n" | tr '[:upper:]_' '[:lower:]-')
}

# shellcheck disable=SC2120 # called without arguments for the defaults
# write_config [TOML LINE]... — the test's config; base keys come first, so
# pass top-level keys before any [volumes.X] table.
write_config() {
    {
        printf 'volumes_root = "%s"\n' "$VOLROOT"
        printf 'state_dir = "%s"\n' "$STATE"
        printf 'log_level = "debug"\n'
        local l
        for l in "$@"; do printf '%s\n' "$l"; done
    } > "$CFG"
}

# Cleanup of everything a test started, run from its EXIT trap.
track() { printf '%s %s\n' "$1" "$2" >> "$T/.cleanup"; } # KIND NAME

# crun 1.8 chowns the stdio it is given to the container's root when the
# container has a user namespace — including the host's /dev/null, which
# podman's conmon hands it. Undo that after every test (it breaks apt's
# sandbox, among others); it is crun's doing, not the hook's.
restore_dev_null() {
    if [ "$(stat -c %u:%g:%a /dev/null)" != 0:0:666 ]; then
        echo "note: restoring /dev/null ($(stat -c %u:%g /dev/null) after crun in a user namespace)" >&2
        chown root:root /dev/null && chmod 0666 /dev/null
    fi
}

t_cleanup() {
    local kind name
    restore_dev_null
    if [ -f "$T/.cleanup" ]; then
        while read -r kind name; do
            case $kind in
                runc) runc delete -f "$name" >/dev/null 2>&1 ;;
                crun) crun_ns delete -f "$name" >/dev/null 2>&1 ;;
                podman) podman rm -f -t 0 "$name" >/dev/null 2>&1 ;;
                pod) podman pod rm -f -t 0 "$name" >/dev/null 2>&1 ;;
                pid) kill "$name" 2>/dev/null ;;
            esac
        done < "$T/.cleanup"
    fi
    # A hook must never leave a mount on the host; if one did, undo it (the
    # test has already failed on assert_host_unchanged) so the run can go on.
    awk -v t="$T" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r \
        | while read -r m; do umount -l "$m" 2>/dev/null; done
}

# ------------------------------------------------------------------ rootfs ---

# The busybox rootfs template, made once per run.
rootfs_template() {
    local r=$E2E_ROOT/rootfs-template
    if [ ! -x "$r/bin/busybox" ]; then
        mkdir -p "$r/bin" "$r/proc" "$r/sys" "$r/dev" "$r/tmp" "$r/etc" "$r/root" "$r/marker"
        cp /bin/busybox "$r/bin/busybox"
        local a
        for a in $(/bin/busybox --list); do
            [ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"
        done
        printf 'root:x:0:0:root:/root:/bin/sh\n' > "$r/etc/passwd"
        printf 'root:x:0:\n' > "$r/etc/group"
        printf 'rootfs-etc\n' > "$r/etc/hostname"
    fi
    printf '%s\n' "$r"
}

make_rootfs() { # DIR
    mkdir -p "$(dirname "$1")"
    cp -a "$(rootfs_template)" "$1"
}

# ------------------------------------------------------------------ bundle ---

# make_bundle DIR [options] — busybox bundle for runc/crun.
#   -c CMD      container command (sh -c); it runs after "touch /marker/<tag>"
#   -t TAG      marker name written to $MARK (default: basename of DIR)
#   -a VALUE    value of the oci-volume-hook/volumes annotation
#   -A K=V      extra annotation
#   -m SRC:DST  extra rw bind mount
#   -s STAGE    stage for our hook: createRuntime (default) or prestart
#   -S ARG      argv stage word (default prestart)
#   -N          no hooks at all
#   -P          no poststop hook
# Writes DIR/config.json and DIR/rootfs; outputs go to DIR/out, DIR/err and,
# for crun, the hook's own output to DIR/hook.stdout / DIR/hook.stderr.
make_bundle() {
    local dir=$1; shift
    local cmd=true tag ann='' stage=createRuntime argstage=prestart hooks=1 poststop=1
    local -a extra_ann=() mounts=()
    tag=$(basename "$dir")
    local OPTIND=1 opt
    while getopts 'c:t:a:A:m:s:S:NP' opt; do
        case $opt in
            c) cmd=$OPTARG ;;
            t) tag=$OPTARG ;;
            a) ann=$OPTARG; [ -n "$ann" ] || ann=__EMPTY__ ;;
            A) extra_ann+=("$OPTARG") ;;
            m) mounts+=("$OPTARG") ;;
            s) stage=$OPTARG ;;
            S) argstage=$OPTARG ;;
            N) hooks=0 ;;
            P) poststop=0 ;;
            *) return 2 ;;
        esac
    done
    mkdir -p "$dir"
    [ -d "$dir/rootfs" ] || make_rootfs "$dir/rootfs"
    rm -f "$dir/config.json"
    (cd "$dir" && runc spec) || return 1
    B_CMD="touch /marker/$tag && echo $CONTAINER_MARKER && { $cmd ; }" \
    B_ANN=$ann B_EXTRA_ANN="$(printf '%s\n' ${extra_ann[@]+"${extra_ann[@]}"})" \
    B_MOUNTS="$(printf '%s\n' "$MARK:/marker" ${mounts[@]+"${mounts[@]}"})" \
    B_HOOKS=$hooks B_POSTSTOP=$poststop B_STAGE=$stage B_ARGSTAGE=$argstage \
    B_BIN=$OVH_BIN B_CFG=$CFG B_DIR=$dir B_ANN_KEY=$ANN_KEY \
    python3 - "$dir/config.json" <<'EOF'
import json, os, sys
e = os.environ
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/sh", "-c", e["B_CMD"]]
c["root"]["readonly"] = False
for m in e["B_MOUNTS"].splitlines():
    if m:
        src, dst = m.split(":", 1)
        c["mounts"].append({"destination": dst, "type": "bind", "source": src,
                            "options": ["rbind", "rw"]})
ann = {"run.oci.hooks.stdout": e["B_DIR"] + "/hook.stdout",
       "run.oci.hooks.stderr": e["B_DIR"] + "/hook.stderr"}
if e["B_ANN"]:
    ann[e["B_ANN_KEY"]] = "" if e["B_ANN"] == "__EMPTY__" else e["B_ANN"]
for kv in e["B_EXTRA_ANN"].splitlines():
    if kv:
        k, v = kv.split("=", 1)
        ann[k] = v
c["annotations"] = ann
if e["B_HOOKS"] == "1":
    env = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"]
    h = {e["B_STAGE"]: [{"path": e["B_BIN"], "env": env, "timeout": 120,
                         "args": ["oci-volume-hook", "--config", e["B_CFG"], e["B_ARGSTAGE"]]}]}
    if e["B_POSTSTOP"] == "1":
        h["poststop"] = [{"path": e["B_BIN"], "env": env, "timeout": 120,
                          "args": ["oci-volume-hook", "--config", e["B_CFG"], "poststop"]}]
    c["hooks"] = h
json.dump(c, open(p, "w"), indent=1)
EOF
}

# Set a JSON value in a bundle's config.json: bundle_set DIR PYTHON-EXPR-ON-c
bundle_edit() {
    python3 - "$1/config.json" "$2" <<'EOF'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
exec(sys.argv[2])
json.dump(c, open(p, "w"), indent=1)
EOF
}

# ---------------------------------------------------------------- runtimes ---

# crun refuses hybrid cgroups: run it in a private mount namespace without
# the cgroup2 "unified" mount (host-lab.md).
crun_ns() {
    unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec crun "$@"' crun "$@"
}

# run_bundle RT DIR [ID] — runc/crun run, foreground; stdout/stderr in
# DIR/out and DIR/err; sets RC. The container is deleted afterwards.
run_bundle() {
    local rt=$1 dir=$2 id=${3:-}
    if [ -z "$id" ]; then new_id; id=$NEW_ID; fi
    track "$rt" "$id"
    case $rt in
        runc) timeout -k 5 "$RT_TIMEOUT" runc run --bundle "$dir" "$id" < /dev/null > "$dir/out" 2> "$dir/err" ;;
        crun) timeout -k 5 "$RT_TIMEOUT" unshare -m sh -c \
                  'umount /sys/fs/cgroup/unified 2>/dev/null; exec crun run --bundle "$0" "$1"' "$dir" "$id" \
                  < /dev/null > "$dir/out" 2> "$dir/err" ;;
        *) echo "run_bundle: unknown runtime $rt" >&2; return 2 ;;
    esac
    RC=$?
    # shellcheck disable=SC2034 # read by the tests
    LAST_ID=$id
    case $rt in
        runc) runc delete -f "$id" >/dev/null 2>&1 ;;
        crun) crun_ns delete -f "$id" >/dev/null 2>&1 ;;
    esac
    log "$rt run $id: rc=$RC out=$(tr '\n' '|' < "$dir/out" | cut -c1-200) err=$(tr '\n' '|' < "$dir/err" | cut -c1-300)"
    [ -f "$dir/hook.stderr" ] && log "hook.stderr: $(tr '\n' '|' < "$dir/hook.stderr" | cut -c1-300)"
    return 0
}

# rt_ctl RT ARGS... — runc/crun create/start/delete/state (crun in its netns).
rt_ctl() {
    local rt=$1; shift
    case $rt in
        runc) timeout -k 5 "$RT_TIMEOUT" runc "$@" ;;
        crun) timeout -k 5 "$RT_TIMEOUT" unshare -m sh -c \
                  'umount /sys/fs/cgroup/unified 2>/dev/null; exec crun "$@"' crun "$@" ;;
    esac
}


# ------------------------------------------------------------------ podman ---

# make_hooksd DIR — the project's hooks.d files, pointed at $OVH_BIN and the
# test's config: args ["oci-volume-hook","--config",CFG,STAGE].
make_hooksd() {
    local d=$1 f
    mkdir -p "$d"
    for f in "$REPO"/hooks.d/*.json; do
        jq --arg bin "$OVH_BIN" --arg cfg "$CFG" \
            '.hook.path = $bin | .hook.args = ([.hook.args[0], "--config", $cfg] + .hook.args[1:])' \
            "$f" > "$d/$(basename "$f")" || return 1
    done
}

podman_setup() {
    HOOKSD=$T/hooks.d
    [ -d "$HOOKSD" ] || make_hooksd "$HOOKSD"
    PODMAN_ROOTFS=$T/podman-rootfs
    [ -d "$PODMAN_ROOTFS" ] || make_rootfs "$PODMAN_ROOTFS"
}

# run_podman RT OUTDIR ANNOTATION CMD [extra podman run args...]
# podman run --rm in the foreground; output in OUTDIR/out (stdout+stderr of
# podman), OUTDIR/err; sets RC. An empty ANNOTATION means none.
# The container touches $MARK/$(basename OUTDIR) first.
run_podman() {
    local rt=$1 out=$2 ann=$3 cmd=$4; shift 4
    podman_setup
    mkdir -p "$out"
    new_id
    local name=$NEW_ID tag
    tag=$(basename "$out")
    track podman "$name"
    local -a a=()
    [ -n "$ann" ] && a=(--annotation "$ANN_KEY=$ann")
    local -a pre=()
    if [ "$rt" = crun ]; then
        pre=(unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' sh)
        # crun shows a hook's stderr only in the file this annotation names
        # (podman does not set it): the test reads it from there.
        a+=(--annotation "run.oci.hooks.stderr=$out/hook.stderr")
    fi
    timeout -k 5 "$RT_TIMEOUT" ${pre[@]+"${pre[@]}"} \
        podman --runtime "$rt" --hooks-dir "$HOOKSD" run --rm --name "$name" --network none \
        "${PODMAN_ULIMITS[@]}" ${a[@]+"${a[@]}"} -v "$MARK:/marker" "$@" \
        --rootfs "$PODMAN_ROOTFS" /bin/sh -c "touch /marker/$tag && echo $CONTAINER_MARKER && { $cmd ; }" \
        < /dev/null > "$out/out" 2> "$out/err"
    RC=$?
    # shellcheck disable=SC2034 # read by the tests
    LAST_ID=$name
    log "podman($rt) run $name: rc=$RC out=$(tr '\n' '|' < "$out/out" | cut -c1-200) err=$(tr '\n' '|' < "$out/err" | cut -c1-300)"
    return 0
}

# ------------------------------------------------------------- kube play ---

kube_image() {
    if ! podman image exists "$KUBE_IMAGE"; then
        tar -C "$(rootfs_template)" -c . | podman import -q - "$KUBE_IMAGE" >/dev/null
    fi
}

# kube_play RT OUTDIR ANNOTATION CMD — one pod with one container "app",
# pod metadata.annotations = {oci-volume-hook/volumes: ANNOTATION}; waits for
# the app container, output (podman logs) in OUTDIR/out; sets RC (the app's
# exit code) and PLAY_RC (kube play's).
kube_play() {
    local rt=$1 out=$2 ann=$3 cmd=$4
    podman_setup
    kube_image || { fail "podman import of the busybox image failed"; return 1; }
    mkdir -p "$out"
    new_id
    local pod=$NEW_ID tag
    tag=$(basename "$out")
    track pod "$pod"
    # JSON is YAML: let python do the quoting.
    K_POD=$pod K_ANN_KEY=$ANN_KEY K_ANN=$ann K_IMAGE=$KUBE_IMAGE K_MARK=$MARK \
    K_CMD="touch /marker/$tag && echo $CONTAINER_MARKER && { $cmd ; }" \
    python3 - > "$out/pod.yaml" <<'EOF'
import json, os
e = os.environ
print(json.dumps({
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": e["K_POD"], "annotations": {e["K_ANN_KEY"]: e["K_ANN"]}},
    "spec": {"restartPolicy": "Never",
             "volumes": [{"name": "marker", "hostPath": {"path": e["K_MARK"], "type": "Directory"}}],
             "containers": [{"name": "app", "image": e["K_IMAGE"],
                             "command": ["/bin/sh", "-c", e["K_CMD"]],
                             "volumeMounts": [{"name": "marker", "mountPath": "/marker"}]}]}}, indent=1))
EOF
    printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n' > "$T/containers.conf"
    local -a pre=()
    [ "$rt" = crun ] && pre=(unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' sh)
    CONTAINERS_CONF=$T/containers.conf timeout -k 5 "$RT_TIMEOUT" ${pre[@]+"${pre[@]}"} \
        podman --runtime "$rt" --hooks-dir "$HOOKSD" kube play --network none "$out/pod.yaml" \
        < /dev/null > "$out/play.out" 2> "$out/err"
    PLAY_RC=$?
    RC=$PLAY_RC
    if [ "$PLAY_RC" = 0 ]; then
        RC=$(timeout -k 5 "$RT_TIMEOUT" podman wait "$pod-app" 2>>"$out/err")
        podman logs "$pod-app" > "$out/out" 2>&1
    else
        : > "$out/out"
    fi
    # shellcheck disable=SC2034 # read by the tests
    LAST_ID=$pod-app
    podman pod rm -f -t 0 "$pod" >/dev/null 2>&1
    log "kube play($rt) $pod: play_rc=$PLAY_RC rc=$RC out=$(tr '\n' '|' < "$out/out" | cut -c1-200) err=$(tr '\n' '|' < "$out/err" | cut -c1-300)"
    return 0
}

# ------------------------------------------------------------ any runtime ---

# run_any KIND OUTDIR ANNOTATION CMD — start one container to completion.
# KIND: runc | crun | podman-runc | podman-crun | kube-runc | kube-crun.
# Sets RC (the container's / runtime's exit status); output in OUTDIR/out,
# OUTDIR/err (and OUTDIR/hook.stderr for crun). When PREP_ROOTFS names a
# function, it is called with the rootfs directory before the run (not for
# kube play, whose image is shared).
run_any() {
    local kind=$1 out=$2 ann=$3 cmd=$4
    case $kind in
        runc|crun)
            make_bundle "$out" -a "$ann" -c "$cmd" || { fail "make_bundle $out"; return 1; }
            [ -z "${PREP_ROOTFS:-}" ] || "$PREP_ROOTFS" "$out/rootfs"
            run_bundle "$kind" "$out" ;;
        podman-runc|podman-crun)
            podman_setup
            [ -z "${PREP_ROOTFS:-}" ] || "$PREP_ROOTFS" "$PODMAN_ROOTFS"
            run_podman "${kind#podman-}" "$out" "$ann" "$cmd" ;;
        kube-runc|kube-crun) kube_play "${kind#kube-}" "$out" "$ann" "$cmd" ;;
    esac
}


require_kind() {
    case $1 in
        runc|crun) require_runtime "$1" ;;
        podman-runc|kube-runc) require_runtime podman ;;
        podman-crun|kube-crun) require_runtime podman-crun ;;
    esac
}
