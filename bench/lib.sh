# shellcheck shell=bash disable=SC2016
# bench/lib.sh — what the container-start benchmarks share (sourced by
# bench/start-latency.sh and bench/wrapper-latency.sh): checks, the busybox
# rootfs, bundles from `runc spec`, the static C floor hook, the interleaved
# timed loop (order rotated every iteration), the crun mount namespace, the
# load average and the report.
#
# A sourcing script sets BENCH_SELF (its own path, re-run with --loop
# inside crun's mount namespace), VARIANTS (names) and defines
# `bench_cmd VARIANT DIR RT` (fills the array CMD with what to run for a
# variant; default: RT itself) before calling bench_main.

REPO=$(cd "$(dirname "$BENCH_SELF")/.." && pwd)
RUNS=${BENCH_RUNS:-50}
WARMUP=${BENCH_WARMUP:-3}

bench_die() { echo "bench: $*" >&2; exit 1; }

# bench_require CMD... — root and the commands a benchmark needs.
bench_require() {
    local c
    [ "$(id -u)" = 0 ] || bench_die "needs root"
    for c in "$@"; do
        command -v "$c" > /dev/null || bench_die "$c missing (tests/install-deps.sh)"
    done
}

# bench_build BIN... — cargo build --release when one of them is missing.
bench_build() {
    local b
    for b in "$@"; do
        [ -x "$b" ] && continue
        (cd "$REPO" && nice -n 10 cargo build --release --locked) >&2 || bench_die "cannot build $b"
        return
    done
}

# bench_tmpfs — a tmpfs directory for records (the goal's state_dir): /run
# when it is a tmpfs, else /dev/shm, else /var/tmp (and say so).
bench_tmpfs() {
    local d
    for d in /run /dev/shm; do
        if [ "$(stat -f -c %T "$d" 2> /dev/null)" = tmpfs ]; then echo "$d"; return; fi
    done
    echo /var/tmp
}

# bench_floor_hook OUT — the static C hook that only drains stdin.
bench_floor_hook() {
    command -v cc > /dev/null || bench_die "cc missing (apt-get install build-essential)"
    cc -static -O2 -o "$1" "$REPO/bench/floor-hook.c" || bench_die "cc -static failed (libc6-dev installed?)"
}

# bench_rootfs DIR — a busybox rootfs that runs /bin/true.
bench_rootfs() {
    mkdir -p "$1/bin" "$1/proc" "$1/dev" "$1/sys"
    cp /bin/busybox "$1/bin/busybox"
    ln -sf busybox "$1/bin/true"
    ln -sf busybox "$1/bin/sh"
}

# bench_bundle DIR TEMPLATE — DIR/rootfs copied from TEMPLATE and DIR/config.json
# from `runc spec`, running /bin/true without a terminal; then
# python3 edits it with the code on stdin (`c` is the parsed config.json).
bench_bundle() {
    local dir=$1 template=$2
    mkdir -p "$dir"
    cp -a "$template" "$dir/rootfs"
    (cd "$dir" && runc spec) || bench_die "runc spec failed"
    python3 -c '
import json, os, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["root"]["readonly"] = False
e = os.environ
exec(sys.stdin.read())
json.dump(c, open(p, "w"), indent=1)
' "$dir/config.json" || bench_die "editing $dir/config.json failed"
}

bench_cmd_default() { CMD=("$(command -v "$3")"); PREP=(); }

# time_loop RUNTIME DIR OUTFILE — runs inside the right mount namespace;
# appends "iteration variant wall_us cpu_us" lines. The CPU time is the
# user + system time of the whole process tree (wait4's rusage: the
# runtime, its hooks and the container), far less sensitive to other load
# than the wall time.
time_loop() {
    local rt=$1 dir=$2 outf=$3 v
    : > "$dir/cmds.$rt"
    for v in "${VARIANTS[@]}"; do
        CMD=() PREP=()
        if declare -F bench_cmd > /dev/null; then bench_cmd "$v" "$dir" "$rt"; else bench_cmd_default "$v" "$dir" "$rt"; fi
        printf '%s\0%s\0' "$v" "${#PREP[@]}" >> "$dir/cmds.$rt"
        [ ${#PREP[@]} -gt 0 ] && printf '%s\0' "${PREP[@]}" >> "$dir/cmds.$rt"
        printf '%s\0' "${#CMD[@]}" "${CMD[@]}" >> "$dir/cmds.$rt"
    done
    python3 - "$rt" "$dir" "$outf" "$RUNS" "$WARMUP" "$$" <<'EOF'
import os, subprocess, sys, time
rt, d, outf, runs, warmup, tag = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
f = open(f"{d}/cmds.{rt}", "rb").read().split(b"\0")[:-1]
variants, pos = [], 0
while pos < len(f):
    v = f[pos].decode(); n = int(f[pos + 1]); prep = f[pos + 2:pos + 2 + n]; pos += 2 + n
    m = int(f[pos]); cmd = f[pos + 1:pos + 1 + m]; pos += 1 + m
    variants.append((v, prep, cmd))
null = os.open("/dev/null", os.O_RDWR)
out = open(outf, "a")
failures = 0
for i in range(-warmup, runs):
    for k in range(len(variants)):
        v, prep, cmd = variants[(i + warmup + k) % len(variants)]
        name = f"ovh-bench-{tag}-{v}"
        if prep:
            subprocess.run(prep, check=False)
        err = os.open(f"{d}/err.{rt}.{v}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        t0 = time.perf_counter_ns()
        pid = os.posix_spawn(cmd[0], cmd + [b"run", b"--bundle", f"{d}/{v}".encode(), name.encode()],
                             os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, null, 0),
                                                       (os.POSIX_SPAWN_DUP2, null, 1),
                                                       (os.POSIX_SPAWN_DUP2, err, 2)])
        _, status, ru = os.wait4(pid, 0)
        t1 = time.perf_counter_ns()
        os.close(err)
        if status != 0:
            failures += 1
            print(f"bench: {rt} run ({v}) failed: {open(f'{d}/err.{rt}.{v}').read()[:400]}", file=sys.stderr)
            subprocess.run([rt, "delete", "-f", name], stdout=null, stderr=null)
            if failures >= 3:
                sys.exit(1)
            continue
        if i >= 0:
            cpu = int((ru.ru_utime + ru.ru_stime) * 1e6)
            out.write(f"{i} {v} {(t1 - t0) // 1000} {cpu}\n")
            out.flush()
EOF
}

# bench_run RUNTIME DIR OUT — the timed loop for one runtime: runc as it is,
# crun in a private mount namespace without the cgroup2 "unified" mount
# (hybrid cgroups here), entered once for the whole loop. BENCH_NICE=1
# runs it at nice -15.
bench_run() {
    local rt=$1 dir=$2 out=$3 prio=()
    [ "${BENCH_NICE:-}" = 1 ] && prio=(nice -n -15)
    case $rt in
        runc) BENCH_RUNS=$RUNS BENCH_WARMUP=$WARMUP ${prio[@]+"${prio[@]}"} "$BENCH_SELF" --loop runc "$dir" "$out" ;;
        crun) BENCH_RUNS=$RUNS BENCH_WARMUP=$WARMUP ${prio[@]+"${prio[@]}"} unshare -m sh -c \
                  'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$0" --loop crun "$1" "$2"' \
                  "$BENCH_SELF" "$dir" "$out" ;;
        *) echo "bench: unknown runtime $rt" >&2; return 1 ;;
    esac
}

# bench_cleanup DIR — delete leftover containers, remove DIR.
bench_cleanup() {
    local v
    for v in "${VARIANTS[@]}"; do
        runc delete -f "ovh-bench-$$-$v" > /dev/null 2>&1
    done
    rm -rf "$1"
}

bench_load() { local l _; read -r l _ < /proc/loadavg; echo "$l"; }

# bench_host_line WHAT — the first line of a report, with a warning when busy.
bench_host_line() {
    local l
    l=$(bench_load)
    echo "host: $(nproc) CPUs, load average $l at start; ${BENCH_NICE:+nice -15; }$1"
    if awk -v l="$l" -v n="$(nproc)" 'BEGIN { exit !(l > n) }'; then
        echo "WARNING: the machine is busy (load $l > $(nproc) CPUs): figures are inflated and noisy"
    fi
}

# bench_report RUNTIME FILE PAIRS — median, p10, p90 per variant (in
# VARIANTS order), added and ratio against `none`, and the paired
# differences (median over iterations of A - B in the same iteration) for
# each A:B in PAIRS (space-separated), wall and CPU; also appended as
# "RUNTIME A B wall_ms cpu_ms wall_p25_ms" lines to FILE.paired, for scripts. CPU is
# the process tree's user + system time, CPU+ its excess over `none`.
bench_report() {
    python3 - "$1" "$2" "$RUNS" "${VARIANTS[*]}" "$3" <<'EOF'
import sys
rt, path, runs, variants, pairs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split(), sys.argv[5].split()
data, by_iter, cpus, cpu_iter = {}, {}, {}, {}
for line in open(path):
    i, v, us, cpu = line.split()
    data.setdefault(v, []).append(int(us) / 1000.0)
    cpus.setdefault(v, []).append(int(cpu) / 1000.0)
    by_iter.setdefault(int(i), {})[v] = int(us) / 1000.0
    cpu_iter.setdefault(int(i), {})[v] = int(cpu) / 1000.0
def q(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)
base = q(data.get("none", []), 0.5)
print(f"{rt}: {runs} runs per variant, interleaved; times in ms (start -> exit -> delete)")
print(f"  {'variant':<12}{'n':>5}{'median':>9}{'p10':>9}{'p90':>9}{'added':>9}{'ratio':>8}{'CPU':>9}{'CPU+':>9}")
cbase = q(cpus.get("none", []), 0.5)
for v in variants:
    xs = data.get(v, [])
    med = q(xs, 0.5)
    print(f"  {v:<12}{len(xs):>5}{med:>9.2f}{q(xs, .1):>9.2f}{q(xs, .9):>9.2f}"
          f"{med - base:>+9.2f}{med / base:>8.3f}{q(cpus.get(v, []), .5):>9.2f}{q(cpus.get(v, []), .5) - cbase:>+9.2f}")
for pair in pairs:
    a, b = pair.split(":")
    d = [x[a] - x[b] for x in by_iter.values() if a in x and b in x]
    dc = [x[a] - x[b] for x in cpu_iter.values() if a in x and b in x]
    print(f"  paired {a} - {b}: wall {q(d, 0.5):+.2f} ms (median of {len(d)}; p25 {q(d, .25):+.2f}, p75 {q(d, .75):+.2f});"
          f" CPU {q(dc, 0.5):+.2f} ms (p25 {q(dc, .25):+.2f}, p75 {q(dc, .75):+.2f})")
    with open(path + ".paired", "a") as f:
        f.write(f"{rt} {a} {b} {q(d, 0.5):.3f} {q(dc, 0.5):.3f} {q(d, .25):.3f}\n")
EOF
}

# bench_runtimes PAIRS — measure and report every runtime of BENCH_RUNTIMES
# (default: runc crun) with the bundles in $W; times go to $W/times.RUNTIME.
# Non-zero when a runtime is missing or a run failed.
bench_runtimes() {
    local rt out status=0
    for rt in ${BENCH_RUNTIMES:-runc crun}; do
        command -v "$rt" > /dev/null || { echo "bench: $rt is not installed" >&2; status=1; continue; }
        out=$W/times.$rt
        : > "$out"
        bench_run "$rt" "$W" "$out" || status=1
        [ -s "$out" ] && bench_report "$rt" "$out" "$1"
        echo
    done
    return "$status"
}
