#!/bin/bash
# bench/hook-exec.sh — one hook process on its own, without a runtime: the
# cost of start-up, argument parsing, hardening, capabilities and exit,
# which container starts (bench/start-latency.sh) cannot resolve below a
# millisecond on a busy machine.
#
#     bench/hook-exec.sh NAME=BIN [NAME=BIN ...]
#
# Runs `BIN --config CFG poststop` (state JSON on stdin, state_dir on tmpfs,
# no record: the whole poststop path) and the static C floor hook
# (bench/floor-hook.c) BENCH_RUNS times each (default 400), interleaved,
# order rotated; prints the median wall and CPU (user + system) time per
# variant and the paired differences to the floor and to the first NAME.
# Needs root (the hook drops capabilities), cc, python3.
set -u
BENCH_SELF=$(readlink -f "$0")
# shellcheck source=bench/lib.sh
. "$(dirname "$BENCH_SELF")/lib.sh"
RUNS=${BENCH_RUNS:-400}
[ $# -ge 1 ] || bench_die "usage: bench/hook-exec.sh NAME=BIN [NAME=BIN ...]"
bench_require python3
W=$(mktemp -d "$(bench_tmpfs)/ovh-exec.XXXX")
trap 'rm -rf "$W"' EXIT
bench_floor_hook "$W/floor"
printf 'volumes_root = "%s"\nstate_dir = "%s"\n' "$W/volumes" "$W/state" > "$W/config.toml"
printf '{"ociVersion":"1.0.2","id":"bench-exec","status":"stopped","bundle":"%s","annotations":{}}' "$W" > "$W/state.json"
bench_host_line "$*"
python3 - "$W" "$RUNS" "$@" <<'EOF'
import os, sys, time
w, runs, specs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
variants = [("floor", [f"{w}/floor"])]
for s in specs:
    name, binary = s.split("=", 1)
    variants.append((name, [binary, "--config", f"{w}/config.toml", "poststop"]))
null = os.open("/dev/null", os.O_RDWR)
wall, cpu = {v: [] for v, _ in variants}, {v: [] for v, _ in variants}
rows = []
for i in range(-20, runs):
    row = {}
    for k in range(len(variants)):
        v, cmd = variants[(i + k) % len(variants)]
        st = os.open(f"{w}/state.json", os.O_RDONLY)
        t0 = time.perf_counter_ns()
        pid = os.posix_spawn(cmd[0], cmd, {}, file_actions=[(os.POSIX_SPAWN_DUP2, st, 0),
                             (os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)])
        _, status, ru = os.wait4(pid, 0)
        t1 = time.perf_counter_ns()
        os.close(st)
        if status != 0:
            sys.exit(f"bench: {v} failed (status {status})")
        if i >= 0:
            row[v] = ((t1 - t0) / 1e3, (ru.ru_utime + ru.ru_stime) * 1e6)
    if i >= 0:
        rows.append(row)
def med(xs):
    xs = sorted(xs); n = len(xs)
    return (xs[n // 2] + xs[(n - 1) // 2]) / 2
print(f"{runs} runs per variant, interleaved; µs per process (spawn -> exit -> reaped)")
print(f"  {'variant':<12}{'wall':>9}{'CPU':>9}{'wall-floor':>12}{'CPU-floor':>11}")
for v, _ in variants:
    print(f"  {v:<12}{med([r[v][0] for r in rows]):>9.0f}{med([r[v][1] for r in rows]):>9.0f}"
          f"{med([r[v][0] - r['floor'][0] for r in rows]):>+12.0f}{med([r[v][1] - r['floor'][1] for r in rows]):>+11.0f}")
if len(variants) > 2:
    b = variants[1][0]
    for v, _ in variants[2:]:
        print(f"  paired {v} - {b}: wall {med([r[v][0] - r[b][0] for r in rows]):+.0f} µs,"
              f" CPU {med([r[v][1] - r[b][1] for r in rows]):+.0f} µs (median of {len(rows)})")
EOF
echo "load average at the end: $(bench_load)"
