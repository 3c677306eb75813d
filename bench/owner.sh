#!/bin/bash
# shellcheck disable=SC2016 # code for sh -c in single quotes
# bench/owner.sh — what option U and option idmap cost.
#
# 1. Recursive ownership of an OWNER_FILES-file tree (default 100000, ext4
#    under /var/tmp): `chown -R` against the hook's walk (examples/owner-walk
#    runs owner::apply, the code the hook runs), interleaved, OWNER_ROUNDS
#    rounds (default 5) each from an all-root tree, with the floor (fchownat
#    over the pre-listed tree, bench/chown-floor.c) and the walk with 1, 2
#    and 4 threads;
#    median wall and CPU time, files/s and the ratios; then the same on the
#    already-owned tree (what owner_change = always or a resumed walk
#    costs: within 10% of chown -R). Goal: the first walk >= 1.9x chown -R
#    on 2 cores. Note: with autogroup scheduling and a busy machine,
#    a process group gets a fixed CPU share, so the walk's threads cannot
#    show their parallelism; the CPU column does not depend on the load.
# 2. Restart on an OWNER_BIG_FILES-file volume (default 1000000):
#    a) the first walk of it (files/s);
#    b) the hook's own decision when the root already matches
#       (on-root-mismatch: one fstat + one fgetxattr), median of 25;
#    c) container start with crun (busybox true), OWNER_RUNS runs (default
#       20) of each variant, interleaved: no hook / hook with a plain
#       volume / hook with U (skip), and the same three with a user namespace
#       and idmap instead of U. Medians and the added time. Goal: <= 2 ms
#       added.
#
# Trees are kept in OWNER_BENCH_DIR (default /var/tmp/ovh-bench-owner) and
# reused by later runs (making 1M files takes minutes); OWNER_CLEAN=1 removes
# it at the end; `bench/owner.sh --prepare` only makes the trees. Needs root,
# crun, busybox-static, python3, getfattr.
# Builds target/release/{oci-volume-hook,examples/owner-walk} when missing.
set -u

SELF=$(readlink -f "$0")
REPO=$(cd "$(dirname "$SELF")/.." && pwd)
OVH_BIN=${OVH_BIN:-$REPO/target/release/oci-volume-hook}
WALK_BIN=${WALK_BIN:-$REPO/target/release/examples/owner-walk}
FILES=${OWNER_FILES:-100000}
BIG=${OWNER_BIG_FILES:-1000000}
ROUNDS=${OWNER_ROUNDS:-5}
RUNS=${OWNER_RUNS:-20}
DIR=${OWNER_BENCH_DIR:-/var/tmp/ovh-bench-owner}
UID_T=1000
GID_T=1000

VARIANTS=(none plain U userns userns-plain idmap)

# The timed loop runs once inside a mount namespace without cgroup2
# "unified" (crun refuses hybrid cgroups here).
loop() {
    local i k v t0 t1 n=${#VARIANTS[@]}
    for ((i = -2; i < RUNS; i++)); do
        for ((k = 0; k < n; k++)); do
            v=${VARIANTS[$(((i + 2 + k) % n))]}
            t0=${EPOCHREALTIME/[.,]/}
            crun run --bundle "$DIR/b-$v" "ovh-bench-owner-$$-$v" < /dev/null > /dev/null 2> "$DIR/err.$v" \
                || { echo "bench: crun run ($v) failed: $(head -c 400 "$DIR/err.$v")" >&2; crun delete -f "ovh-bench-owner-$$-$v" > /dev/null 2>&1; return 1; }
            t1=${EPOCHREALTIME/[.,]/}
            [ "$i" -ge 0 ] && echo "$v $((t1 - t0))" >> "$DIR/t.start"
        done
    done
}
if [ "${1:-}" = --loop ]; then
    loop
    exit
fi
die() { echo "bench/owner.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root"
for c in crun busybox python3 getfattr unshare; do
    command -v "$c" > /dev/null || die "$c is not installed"
done
if [ ! -x "$OVH_BIN" ] || [ ! -x "$WALK_BIN" ]; then
    (cd "$REPO" && cargo build --release --locked --bins --example owner-walk) >&2 || die "cargo build failed"
fi

median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# mktree DIR N — N empty files in directories of 1000 (and sub-directories of
# 100), all root-owned. Kept when it already holds N files.
mktree() {
    local d=$1 n=$2
    if [ -f "$d.done" ] && [ "$(cat "$d.done")" = "$n" ]; then return; fi
    rm -rf "$d" "$d.done"
    echo "bench: creating $n files in $d ..." >&2
    python3 - "$d" "$n" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
os.makedirs(root)
made = 0
d = 0
while made < n:
    top = os.path.join(root, "d%d" % d)
    os.mkdir(top)
    for s in range(10):
        sub = os.path.join(top, "s%d" % s)
        os.mkdir(sub)
        for f in range(100):
            if made >= n:
                break
            os.mknod(os.path.join(sub, "f%d" % f), 0o100644)
            made += 1
    d += 1
EOF
    chown -R 0:0 "$d"
    echo "$n" > "$d.done"
}

mkdir -p "$DIR/volumes"
chmod 700 "$DIR/volumes"
if [ "${1:-}" = --prepare ]; then   # only make the trees (they are kept)
    mktree "$DIR/volumes/tree" "$FILES"
    mktree "$DIR/volumes/big" "$BIG"
    exit
fi

# ------------------------------------------------ 1. walk vs chown -R ---
TREE=$DIR/volumes/tree
mktree "$TREE" "$FILES"
entries=$(find "$TREE" | wc -l)
# run_timed NAME CMD... — wall and CPU (user+sys) in microseconds, appended
# to $DIR/t.NAME as "wall cpu".
run_timed() {
    local name=$1; shift
    local t0 t1
    t0=${EPOCHREALTIME/[.,]/}
    /usr/bin/time -f '%U %S' -o "$DIR/cpu.tmp" "$@" > /dev/null || die "$* failed"
    t1=${EPOCHREALTIME/[.,]/}
    echo "$((t1 - t0)) $(awk '{printf "%d", ($1 + $2) * 1e6}' "$DIR/cpu.tmp")" >> "$DIR/t.$name"
}
# report TITLE — the chown and hook lines and their ratios.
report() {
    local wc ch wh hh
    wc=$(awk '{print $1}' "$DIR/t.chown" | median); ch=$(awk '{print $2}' "$DIR/t.chown" | median)
    wh=$(awk '{print $1}' "$DIR/t.hook" | median); hh=$(awk '{print $2}' "$DIR/t.hook" | median)
    echo "== $1"
    awk -v e="$entries" -v wc="$wc" -v ch="$ch" -v wh="$wh" -v hh="$hh" 'BEGIN {
        printf "chown -R:        %8.1f ms wall %8.0f entries/s   %7.1f ms CPU\n", wc / 1000, e / (wc / 1e6), ch / 1000
        printf "hook walk (U):   %8.1f ms wall %8.0f entries/s   %7.1f ms CPU\n", wh / 1000, e / (wh / 1e6), hh / 1000
        printf "ratio:           %.2fx faster in wall time, %.2fx less CPU; the walk used %.1f CPUs\n", wc / wh, ch / hh, hh / wh
    }'
}
[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is not installed"
# The floor: fchownat over the tree listed beforehand, 2 threads.
FLOOR_BIN=$DIR/chown-floor
cc -O2 -pthread -o "$FLOOR_BIN" "$REPO/bench/chown-floor.c" || die "cc failed (build-essential)"
find "$TREE" -mindepth 1 > "$DIR/tree.list"
# Each variant from an all-root tree, the order rotated every round:
#   chown   chown -R
#   floor   bench/chown-floor.c, 2 threads, over the pre-listed tree
#   first   the hook's walk (stat, then fchownat), default threads
#           (owner::default_threads)
#   t1 t2 t4  the same walk with 1, 2 and 4 threads
OVARIANTS=(chown floor first t1 t2 t4)
for v in "${OVARIANTS[@]}"; do : > "$DIR/t.$v"; done
for ((r = 0; r < ROUNDS; r++)); do
    for ((k = 0; k < ${#OVARIANTS[@]}; k++)); do
        v=${OVARIANTS[$(((r + k) % ${#OVARIANTS[@]}))]}
        chown -R 0:0 "$TREE"
        setfattr -x trusted.oci-volume-hook.owner "$TREE" 2> /dev/null
        sync
        case $v in
            chown) run_timed chown chown -R "$UID_T:$GID_T" "$TREE" ;;
            floor) run_timed floor "$FLOOR_BIN" "$UID_T" "$GID_T" 2 "$DIR/tree.list" ;;
            first) run_timed "$v" "$WALK_BIN" "$TREE" "$UID_T" "$GID_T" always ;;
            t[0-9]*) run_timed "$v" "$WALK_BIN" "$TREE" "$UID_T" "$GID_T" always "${v#t}" ;;
        esac
        bad=$(find "$TREE" -mindepth 1 \( ! -uid "$UID_T" -o ! -gid "$GID_T" \) | wc -l)
        [ "$bad" = 0 ] || die "$v left $bad entries with another owner"
    done
done
wc=$(awk '{print $1}' "$DIR/t.chown" | median)
echo "== recursive ownership, $entries entries ($FILES files), $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg), median of $ROUNDS, each from an all-root tree, interleaved (goal: first >= 1.9x chown -R)"
printf '  %-34s %9s %11s %9s %8s\n' variant "wall ms" "entries/s" "CPU ms" "x chown"
for v in "${OVARIANTS[@]}"; do
    w=$(awk '{print $1}' "$DIR/t.$v" | median); c=$(awk '{print $2}' "$DIR/t.$v" | median)
    case $v in
        chown) label="chown -R" ;; floor) label="floor: fchownat, pre-listed, 2 thr" ;;
        first) label="hook walk (default threads)" ;;
        *) label="hook walk, ${v#t} threads" ;;
    esac
    awk -v l="$label" -v e="$entries" -v w="$w" -v c="$c" -v b="$wc" \
        'BEGIN { printf "  %-34s %9.1f %11.0f %9.1f %8.2f\n", l, w / 1000, e / (w / 1e6), c / 1000, b / w }'
done
# The same tree, already owned: what owner_change = always and a resumed
# walk cost (chown -R rewrites every inode; the walk only stats). The
# marker of a finished walk is on the root: a re-walk keeps the stat.
setfattr -n trusted.oci-volume-hook.owner -v "$UID_T:$GID_T" "$TREE"
: > "$DIR/t.chown"
: > "$DIR/t.hook"
for ((r = 0; r < ROUNDS; r++)); do
    sync
    run_timed chown chown -R "$UID_T:$GID_T" "$TREE"
    sync
    run_timed hook "$WALK_BIN" "$TREE" "$UID_T" "$GID_T" always
done
report "the same tree already owned (owner_change = always, or a resumed walk), median of $ROUNDS"

# ------------------------------------------------ 2. restart, big volume ---
BIGV=$DIR/volumes/big
mktree "$BIGV" "$BIG"
if [ "$(getfattr --only-values -n trusted.oci-volume-hook.owner "$BIGV" 2> /dev/null)" != "$UID_T:$GID_T" ]; then
    chown -R 0:0 "$BIGV"
    echo "== first walk of the $BIG-file volume"
    t0=${EPOCHREALTIME/[.,]/}
    "$WALK_BIN" "$BIGV" "$UID_T" "$GID_T" on-root-mismatch
    t1=${EPOCHREALTIME/[.,]/}
    echo "wall: $(((t1 - t0) / 1000)) ms"
fi
: > "$DIR/t.skip"
for ((r = 0; r < 25; r++)); do
    "$WALK_BIN" "$BIGV" "$UID_T" "$GID_T" on-root-mismatch > "$DIR/skip.out"
    grep -q '^decision=skip' "$DIR/skip.out" || die "expected a skip: $(cat "$DIR/skip.out")"
    sed 's/.*seconds=\([0-9.]*\).*/\1/' "$DIR/skip.out" | awk '{printf "%d\n", $1 * 1e6}' >> "$DIR/t.skip"
done
echo "== the hook's decision on the $BIG-file volume, root already matching: median $(median < "$DIR/t.skip") us (25 runs)"

# Bundles: busybox `true`, config in $DIR.
CFG=$DIR/config.toml
printf 'volumes_root = "%s"\nstate_dir = "%s"\n' "$DIR/volumes" "$DIR/state" > "$CFG"
chmod 644 "$CFG"
ROOTFS=$DIR/rootfs
if [ ! -x "$ROOTFS/bin/busybox" ]; then
    mkdir -p "$ROOTFS/bin" "$ROOTFS/proc" "$ROOTFS/sys" "$ROOTFS/dev" "$ROOTFS/tmp" "$ROOTFS/data"
    cp /bin/busybox "$ROOTFS/bin/busybox"
    ln -sf busybox "$ROOTFS/bin/true"
fi
for v in "${VARIANTS[@]}"; do
    mkdir -p "$DIR/b-$v"
    (cd "$DIR/b-$v" && rm -f config.json && crun spec) || die "crun spec"
    B_V=$v B_ROOT=$ROOTFS B_BIN=$OVH_BIN B_CFG=$CFG python3 - "$DIR/b-$v/config.json" <<'EOF'
import json, os, sys
e = os.environ
p = sys.argv[1]
c = json.load(open(p))
v = e["B_V"]
c["root"] = {"path": e["B_ROOT"], "readonly": False}
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["process"]["user"] = {"uid": 1000, "gid": 1000}
if v.startswith("userns") or v == "idmap":
    c["process"]["user"] = {"uid": 0, "gid": 0}
    c["linux"]["namespaces"].append({"type": "user"})
    c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    c["mounts"] = [m for m in c["mounts"] if m["destination"] != "/sys/fs/cgroup"]
ann = {"plain": "big:/data", "U": "big:/data:U", "userns-plain": "big:/data",
       "idmap": "big:/data:idmap"}.get(v)
if ann:
    c["annotations"] = {"oci-volume-hook/volumes": ann}
    env = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
    c["hooks"] = {
        "createRuntime": [{"path": e["B_BIN"], "env": env,
                           "args": ["oci-volume-hook", "--config", e["B_CFG"], "prestart"]}],
        "poststop": [{"path": e["B_BIN"], "env": env,
                      "args": ["oci-volume-hook", "--config", e["B_CFG"], "poststop"]}]}
json.dump(c, open(p, "w"), indent=1)
EOF
done

: > "$DIR/t.start"
OVH_BIN=$OVH_BIN WALK_BIN=$WALK_BIN OWNER_FILES=$FILES OWNER_BIG_FILES=$BIG OWNER_RUNS=$RUNS OWNER_BENCH_DIR=$DIR \
    unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$0" --loop' "$SELF" \
    || die "the container start loop failed"
echo "== crun start of busybox true, $BIG-file volume, median of $RUNS (interleaved)"
declare -A med
for v in "${VARIANTS[@]}"; do
    med[$v]=$(awk -v v="$v" '$1 == v {print $2}' "$DIR/t.start" | median)
done
awk -v a="${med[none]}" -v p="${med[plain]}" -v b="${med[U]}" -v c="${med[userns]}" -v q="${med[userns-plain]}" -v d="${med[idmap]}" 'BEGIN {
    printf "no hook:                      %7.2f ms\n", a / 1000
    printf "hook, volume without options: %7.2f ms  (+%.2f ms over no hook)\n", p / 1000, (p - a) / 1000
    printf "hook, volume with U (skip):   %7.2f ms  (+%.2f ms over no hook, %+.2f ms over the plain volume)\n", b / 1000, (b - a) / 1000, (b - p) / 1000
    printf "userns, no hook:              %7.2f ms\n", c / 1000
    printf "userns, hook, plain volume:   %7.2f ms  (+%.2f ms over no hook)\n", q / 1000, (q - c) / 1000
    printf "userns, hook, idmap volume:   %7.2f ms  (+%.2f ms over no hook, %+.2f ms over the plain volume)\n", d / 1000, (d - c) / 1000, (d - q) / 1000
}'
ubad=$(find "$BIGV" -maxdepth 0 ! -uid "$UID_T" | wc -l)
[ "$ubad" = 0 ] || die "the big volume's root changed owner during the runs"
[ "${OWNER_CLEAN:-}" = 1 ] && rm -rf "$DIR"
exit 0
