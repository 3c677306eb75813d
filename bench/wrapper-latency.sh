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
REPO=$(cd "$(dirname "$BENCH_SELF")/.." && pwd)
OVH_BIN=${OVH_BIN:-$REPO/target/release/oci-volume-hook}
OVR_BIN=$(dirname "$OVH_BIN")/oci-volume-runtime
RUNS=${BENCH_RUNS:-50}
WARMUP=${BENCH_WARMUP:-3}
VARIANTS=(none wrapper hook wrap-hook)

# ---------------------------------------------------- the timed loop ---
# time_loop RUNTIME DIR OUTFILE — runs inside the right mount namespace.
time_loop() {
    local rt=$1 dir=$2 outf=$3 i k v t0 t1 rc n=${#VARIANTS[@]} failures=0
    # runc: found by the wrapper itself (/usr/bin, /usr/sbin), as docker
    # would run it with only --config; crun: named with --runtime.
    local -a wrap=("$OVR_BIN" --config "$dir/config.toml") cmd
    [ "$rt" = runc ] || wrap+=(--runtime "$(command -v "$rt")")
    for ((i = -WARMUP; i < RUNS; i++)); do
        for ((k = 0; k < n; k++)); do
            # rotate the order: iteration i starts with variant i mod n
            v=${VARIANTS[$(((i + WARMUP + k) % n))]}
            cmd=("$rt")
            case $v in
                wrapper) cmd=("${wrap[@]}") ;;
                wrap-hook)
                    cp "$dir/wrap-hook/config.json.orig" "$dir/wrap-hook/config.json"
                    cmd=("${wrap[@]}") ;;
            esac
            t0=$EPOCHREALTIME
            "${cmd[@]}" run --bundle "$dir/$v" "ovh-wbench-$$-$v" < /dev/null > /dev/null 2> "$dir/err.$rt.$v"
            rc=$?
            t1=$EPOCHREALTIME
            if [ "$rc" != 0 ]; then
                failures=$((failures + 1))
                echo "bench: $rt run ($v) failed rc=$rc: $(head -c 400 "$dir/err.$rt.$v")" >&2
                "$rt" delete -f "ovh-wbench-$$-$v" > /dev/null 2>&1
                [ "$failures" -ge 3 ] && return 1
                continue
            fi
            [ "$i" -ge 0 ] && printf '%s %s %s\n' "$i" "$v" "$((${t1/[.,]/} - ${t0/[.,]/}))" >> "$outf"
        done
    done
}

if [ "${1:-}" = --loop ]; then   # internal: bench/wrapper-latency.sh --loop RT DIR OUT
    time_loop "$2" "$3" "$4"
    exit
fi

# ------------------------------------------------------------- setup ---
[ "$(id -u)" = 0 ] || { echo "bench: needs root" >&2; exit 1; }
for c in python3 busybox unshare; do
    command -v "$c" > /dev/null || { echo "bench: $c missing (tests/install-deps.sh)" >&2; exit 1; }
done
if [ ! -x "$OVH_BIN" ] || [ ! -x "$OVR_BIN" ]; then
    (cd "$REPO" && cargo build --release --locked) >&2 || { echo "bench: cannot build $OVH_BIN and $OVR_BIN" >&2; exit 1; }
fi

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
cleanup() {
    local v
    for v in "${VARIANTS[@]}"; do
        runc delete -f "ovh-wbench-$$-$v" > /dev/null 2>&1
    done
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat > "$W/config.toml" <<EOF
volumes_root = "$W/volumes"
state_dir = "$W/state"
EOF

mkdir -p "$W/rootfs-template/bin" "$W/rootfs-template/proc" "$W/rootfs-template/dev" "$W/rootfs-template/sys"
cp /bin/busybox "$W/rootfs-template/bin/busybox"
ln -s busybox "$W/rootfs-template/bin/true"
ln -s busybox "$W/rootfs-template/bin/sh"

for v in "${VARIANTS[@]}"; do
    mkdir -p "$W/$v"
    cp -a "$W/rootfs-template" "$W/$v/rootfs"
    (cd "$W/$v" && runc spec) || exit 1
    V=$v BIN=$OVH_BIN CFG=$W/config.toml python3 - "$W/$v/config.json" <<'EOF'
import json, os, sys
e = os.environ
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["root"]["readonly"] = False
# the same hooks the wrapper adds
env = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"]
def hook(stage, timeout):
    return {"path": e["BIN"], "args": ["oci-volume-hook", "--config", e["CFG"], stage],
            "env": env, "timeout": timeout}
if e["V"] in ("hook", "wrap-hook"):
    c["annotations"] = {"oci-volume-hook/volumes": "benchvol:/vol"}
if e["V"] == "hook":
    c["hooks"] = {"createRuntime": [hook("prestart", 120)], "poststop": [hook("poststop", 30)]}
json.dump(c, open(p, "w"), indent=1)
EOF
done
cp "$W/wrap-hook/config.json" "$W/wrap-hook/config.json.orig"

report() { # RUNTIME FILE
    python3 - "$1" "$2" "$RUNS" <<'EOF'
import sys
rt, path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
data, by_iter = {}, {}
for line in open(path):
    i, v, us = line.split()
    data.setdefault(v, []).append(int(us) / 1000.0)
    by_iter.setdefault(int(i), {})[v] = int(us) / 1000.0
def q(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)
base = q(data.get("none", []), 0.5)
pair_base = {"none": None, "wrapper": "none", "hook": "none", "wrap-hook": "hook"}
print(f"{rt}: {runs} runs per variant, interleaved; times in ms (start -> exit -> delete)")
print(f"  {'variant':<10}{'n':>5}{'median':>9}{'p10':>9}{'p90':>9}{'added':>9}{'ratio':>8}   paired")
for v in ("none", "wrapper", "hook", "wrap-hook"):
    xs = data.get(v, [])
    med = q(xs, 0.5)
    b = pair_base[v]
    if b:
        paired = [d[v] - d[b] for d in by_iter.values() if v in d and b in d]
        pm = f"{q(paired, 0.5):+.2f} vs {b}"
        if v == "wrap-hook":
            hm = q(data.get("hook", []), 0.5)
            pm += f" (ratio {med / hm:.3f})"
    else:
        pm = ""
    print(f"  {v:<10}{len(xs):>5}{med:>9.2f}{q(xs, .1):>9.2f}{q(xs, .9):>9.2f}"
          f"{med - base:>+9.2f}{med / base:>8.3f}   {pm}")
EOF
}

status=0
read -r load1 _ < /proc/loadavg
echo "host: $(nproc) CPUs, load average $load1 at start; ${BENCH_NICE:+nice -15; }$OVR_BIN"
echo "bundles in $W ($(stat -f -c %T "$W"))"
if awk -v l="$load1" -v n="$(nproc)" 'BEGIN { exit !(l > n) }'; then
    echo "WARNING: the machine is busy (load $load1 > $(nproc) CPUs): figures are inflated and noisy"
fi
echo
for rt in ${BENCH_RUNTIMES:-runc crun}; do
    command -v "$rt" > /dev/null || { echo "bench: $rt is not installed" >&2; status=1; continue; }
    out=$W/times.$rt
    : > "$out"
    prio=()
    [ "${BENCH_NICE:-}" = 1 ] && prio=(nice -n -15)
    case $rt in
        runc) ${prio[@]+"${prio[@]}"} "$BENCH_SELF" --loop runc "$W" "$out" || status=1 ;;
        crun) ${prio[@]+"${prio[@]}"} unshare -m sh -c \
                  'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$0" --loop crun "$1" "$2"' \
                  "$BENCH_SELF" "$W" "$out" || status=1 ;;
        *) echo "bench: unknown runtime $rt" >&2; status=1; continue ;;
    esac
    [ -s "$out" ] && report "$rt" "$out"
    echo
done
echo "added = median(variant) - median(none); paired = median over iterations of the difference"
echo "to the named variant in the same iteration (wrapper vs none: the wrapper alone;"
echo "wrap-hook vs hook: the wrapper including its config.json edit)."
read -r load1 _ < /proc/loadavg
echo "load average at the end: $load1."
exit "$status"
