#!/bin/bash
# shellcheck disable=SC2016,SC2317 # code for sh -c in single quotes; trap handlers
# bench/wrapper-latency.sh — what oci-volume-runtime adds to a container's start.
#
# For runc (and crun): wall time of `run` of a busybox `/bin/true` container
# (start -> exit -> delete), over BENCH_RUNS runs (default 50) of each
# variant, the variants interleaved in the same loop (order rotated every
# iteration, so drift and noise hit them alike):
#   none       the runtime itself, no hooks, no annotation
#   wrapper    the same bundle through oci-volume-runtime (asks for nothing:
#              argument scan, config.toml read, config.json read, exec)
#   hook       the runtime itself with our createRuntime + poststop hooks
#              already in config.json and one named volume (what a
#              hand-written bundle or hooks.d gives)
#   wrap-hook  only the annotation in config.json, through the wrapper,
#              which adds the hooks (config.json is reset before every run,
#              outside the timed part, so every run pays the edit)
# Prints median, p10, p90 per variant, the added median and ratio against
# `none`, and the median of per-iteration paired differences against the
# variant's baseline: wrapper - none (the wrapper alone) and
# wrap-hook - hook (the wrapper's edit on top of the hook).
# Not run in CI.
#
# Environment: BENCH_RUNS (50), BENCH_RUNTIMES ("runc crun"), BENCH_WARMUP
# (3), BENCH_TMPDIR (a tmpfs, as docker's bundles; see below), OVH_BIN (default target/release/oci-volume-hook; the wrapper is
# oci-volume-runtime beside it), BENCH_NICE=1 (timed loops at nice -15).
# Needs root, runc, crun, busybox-static, python3 (tests/install-deps.sh).
# crun runs in a private mount namespace without the cgroup2 "unified"
# mount (hybrid cgroups here), entered once for the whole crun loop.
set -u

BENCH_SELF=$(readlink -f "$0")
# shellcheck source=bench/lib.sh
. "$(dirname "$BENCH_SELF")/lib.sh"
OVH_BIN=${OVH_BIN:-$REPO/target/release/oci-volume-hook}
OVR_BIN=$(dirname "$OVH_BIN")/oci-volume-runtime
VARIANTS=(none wrapper hook wrap-hook)

# bench_cmd VARIANT DIR RT — what the timed loop (bench/lib.sh) runs.
# runc: found by the wrapper itself (/usr/bin, /usr/sbin), as docker would
# run it with only --config; crun: named with --runtime.
bench_cmd() {
    local v=$1 dir=$2 rt=$3
    CMD=("$(command -v "$rt")") PREP=()
    case $v in
        wrapper | wrap-hook)
            CMD=("$OVR_BIN" --config "$dir/config.toml")
            [ "$rt" = runc ] || CMD+=(--runtime "$(command -v "$rt")")
            # every run pays the wrapper's edit of config.json
            [ "$v" = wrap-hook ] && PREP=(cp "$dir/wrap-hook/config.json.orig" "$dir/wrap-hook/config.json")
            ;;
    esac
}

if [ "${1:-}" = --loop ]; then   # internal: bench/wrapper-latency.sh --loop RT DIR OUT
    time_loop "$2" "$3" "$4"
    exit
fi

bench_require runc python3 busybox unshare
bench_build "$OVH_BIN" "$OVR_BIN"

# Bundles on tmpfs by default, where containerd and docker usually keep
# theirs (/run/containerd/..., exec-root under /run): the wrapper's fsync of
# config.json costs what it costs there. /run is the first choice, then
# /dev/shm (this VM's /run is on ext4), else /var/tmp; BENCH_TMPDIR=DIR
# chooses (e.g. /var/tmp to measure the fsync on a disk).
tmpbase=${BENCH_TMPDIR:-}
if [ -z "$tmpbase" ]; then
    tmpbase=/var/tmp
    for d in /run /dev/shm; do
        if [ "$(stat -f -c %T "$d" 2>/dev/null)" = tmpfs ]; then tmpbase=$d; break; fi
    done
fi
W=$(mktemp -d "$tmpbase/ovh-wbench.XXXX")
trap 'bench_cleanup "$W"' EXIT
trap 'exit 130' INT TERM

cat > "$W/config.toml" <<EOF
volumes_root = "$W/volumes"
state_dir = "$W/state"
EOF
bench_rootfs "$W/rootfs-template"
for v in "${VARIANTS[@]}"; do
    V=$v BIN=$OVH_BIN CFG=$W/config.toml bench_bundle "$W/$v" "$W/rootfs-template" <<'EOF'
# the same hooks the wrapper adds
env = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"]
def hook(stage, timeout):
    return {"path": e["BIN"], "args": ["oci-volume-hook", "--config", e["CFG"], stage],
            "env": env, "timeout": timeout}
if e["V"] in ("hook", "wrap-hook"):
    c["annotations"] = {"oci-volume-hook/volumes": "benchvol:/vol"}
if e["V"] == "hook":
    c["hooks"] = {"createRuntime": [hook("prestart", 120)], "poststop": [hook("poststop", 30)]}
EOF
done
cp "$W/wrap-hook/config.json" "$W/wrap-hook/config.json.orig"

status=0
bench_host_line "$OVR_BIN"
echo "bundles in $W ($(stat -f -c %T "$W"))"
echo
bench_runtimes "wrapper:none hook:none wrap-hook:hook" || status=1
echo "added = median(variant) - median(none); paired = median over iterations of the difference"
echo "in the same iteration (wrapper - none: the wrapper alone; wrap-hook - hook: the wrapper"
echo "including its config.json edit)."
echo "load average at the end: $(bench_load)."
exit "$status"
