#!/bin/bash
# shellcheck disable=SC2016,SC2317 # code for sh -c in single quotes; trap handlers
# bench/start-latency.sh — what oci-volume-hook adds to a container's start.
#
# For runc and for crun: wall time of `RUNTIME run` of a busybox `/bin/true`
# container (start -> exit -> delete), over BENCH_RUNS runs (default 50) of
# each variant, the variants interleaved in the same loop (order rotated every
# iteration, so drift and noise hit them alike):
#   none      no hooks, no annotation
#   noop      /bin/true as createRuntime and poststop hook (what any hook costs)
#   prestart  our createRuntime hook attaching one named bind volume
#   deployed  prestart + our poststop hook (what hooks.d installs)
# Prints median, p10, p90 per variant, the added median (ms) and the ratio
# against `none`, and the median of the per-iteration paired differences.
# Target: <= 2 ms added at the median with crun.
#
# Environment: BENCH_RUNS (50), BENCH_RUNTIMES ("runc crun"), BENCH_WARMUP (3),
# OVH_BIN (default target/release/oci-volume-hook), BENCH_NICE=1 (run the
# timed loops at nice -15, to shield them somewhat from other load). Needs root, runc, crun,
# busybox-static, python3 (tests/install-deps.sh). crun runs in a private
# mount namespace without the cgroup2 "unified" mount (hybrid cgroups here);
# that namespace is entered once for the whole crun loop, not per run.
set -u

BENCH_SELF=$(readlink -f "$0")
REPO=$(cd "$(dirname "$BENCH_SELF")/.." && pwd)
OVH_BIN=${OVH_BIN:-$REPO/target/release/oci-volume-hook}
RUNS=${BENCH_RUNS:-50}
WARMUP=${BENCH_WARMUP:-3}
VARIANTS=(none noop prestart deployed)

# ---------------------------------------------------- the timed loop ---
# time_loop RUNTIME DIR OUTFILE — runs inside the right mount namespace.
time_loop() {
    local rt=$1 dir=$2 outf=$3 i k v t0 t1 rc n=${#VARIANTS[@]} failures=0
    for ((i = -WARMUP; i < RUNS; i++)); do
        for ((k = 0; k < n; k++)); do
            # rotate the order: iteration i starts with variant i mod n
            v=${VARIANTS[$(((i + WARMUP + k) % n))]}
            t0=$EPOCHREALTIME
            "$rt" run --bundle "$dir/$v" "ovh-bench-$$-$v" < /dev/null > /dev/null 2> "$dir/err.$rt.$v"
            rc=$?
            t1=$EPOCHREALTIME
            if [ "$rc" != 0 ]; then
                failures=$((failures + 1))
                echo "bench: $rt run ($v) failed rc=$rc: $(head -c 400 "$dir/err.$rt.$v")" >&2
                "$rt" delete -f "ovh-bench-$$-$v" > /dev/null 2>&1
                [ "$failures" -ge 3 ] && return 1
                continue
            fi
            [ "$i" -ge 0 ] && printf '%s %s %s\n' "$i" "$v" "$((${t1/[.,]/} - ${t0/[.,]/}))" >> "$outf"
        done
    done
}

if [ "${1:-}" = --loop ]; then   # internal: bench/start-latency.sh --loop RT DIR OUT
    time_loop "$2" "$3" "$4"
    exit
fi

# ------------------------------------------------------------- setup ---
[ "$(id -u)" = 0 ] || { echo "bench: needs root" >&2; exit 1; }
for c in python3 busybox unshare; do
    command -v "$c" > /dev/null || { echo "bench: $c missing (tests/install-deps.sh)" >&2; exit 1; }
done
if [ ! -x "$OVH_BIN" ]; then
    (cd "$REPO" && cargo build --release --locked) >&2 || { echo "bench: cannot build $OVH_BIN" >&2; exit 1; }
fi

W=$(mktemp -d /var/tmp/ovh-bench.XXXX)
cleanup() {
    local v
    for v in "${VARIANTS[@]}"; do
        runc delete -f "ovh-bench-$$-$v" > /dev/null 2>&1
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
env = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"]
def hook(stage):
    return {"path": e["BIN"], "env": env, "timeout": 120,
            "args": ["oci-volume-hook", "--config", e["CFG"], stage]}
if e["V"] == "noop":
    c["hooks"] = {s: [{"path": "/bin/true", "args": ["true"]}] for s in ("createRuntime", "poststop")}
elif e["V"] != "none":
    c["annotations"] = {"oci-volume-hook/volumes": "benchvol:/vol"}
    c["hooks"] = {"createRuntime": [hook("prestart")]}
    if e["V"] == "deployed":
        c["hooks"]["poststop"] = [hook("poststop")]
json.dump(c, open(p, "w"), indent=1)
EOF
done

report() { # RUNTIME FILE
    python3 - "$1" "$2" "$RUNS" <<'EOF'
import sys, statistics
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
print(f"{rt}: {runs} runs per variant, interleaved; times in ms (start -> exit -> delete)")
print(f"  {'variant':<10}{'n':>5}{'median':>9}{'p10':>9}{'p90':>9}{'added':>9}{'ratio':>8}{'paired':>9}")
for v in ("none", "noop", "prestart", "deployed"):
    xs = data.get(v, [])
    med = q(xs, 0.5)
    paired = [d[v] - d["none"] for d in by_iter.values() if v in d and "none" in d]
    pm = q(paired, 0.5) if v != "none" else 0.0
    print(f"  {v:<10}{len(xs):>5}{med:>9.2f}{q(xs, .1):>9.2f}{q(xs, .9):>9.2f}"
          f"{med - base:>+9.2f}{med / base:>8.3f}{pm:>+9.2f}")
EOF
}

status=0
read -r load1 _ < /proc/loadavg
echo "host: $(nproc) CPUs, load average $load1 at start; ${BENCH_NICE:+nice -15; }$OVH_BIN"
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
echo "added = median(variant) - median(none); paired = median over iterations of (variant - none) in the same iteration."
read -r load1 _ < /proc/loadavg
echo "load average at the end: $load1. Target: <= 2 ms added at the median with crun."
exit "$status"
