#!/bin/bash
# fuzz/smoke.sh — CI smoke run of every fuzz target (see fuzz/README.md).
#
# Builds the targets the way `cargo fuzz build -s none` does (same
# instrumentation flags, same fuzz/target directory), but with plain stable
# cargo: no cargo-fuzz install (3.5 min on the 2-core machine) and no
# nightly. Then runs each libFuzzer binary on its committed corpus
# (fuzz/corpus/<target>, only read: new inputs go to a scratch directory)
# plus FUZZ_SECONDS of new inputs, two targets at a time (2 cores), and
# prints per-target executions and a closing
# `fuzz: N passed, N failed`. Exit status non-zero on any crash, timeout, OOM
# or build failure; a crashing input is kept in fuzz/artifacts/<target>/.
#
# Environment: FUZZ_SECONDS (default 20) new-input time per target;
# FUZZ_TARGETS (default: all five); FUZZ_STRICT=1 builds with
# `--features strict` (see README.md, "Findings").
set -u
cd "$(dirname "$(readlink -f "$0")")" || exit 1
export PATH="$HOME/.cargo/bin:/root/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=never

SECONDS_PER_TARGET=${FUZZ_SECONDS:-20}
read -r -a TARGETS <<<"${FUZZ_TARGETS:-annotation config state bundle tar_import}"
FEATURES=()
[ "${FUZZ_STRICT:-0}" = 1 ] && FEATURES=(--features strict)

fail_all() { # the build failed: every target fails
    echo "fuzz: $1"
    echo "fuzz: 0 passed, ${#TARGETS[@]} failed"
    exit 1
}

command -v cargo >/dev/null || fail_all "cargo not found"
command -v c++ >/dev/null || fail_all "no C++ compiler (libfuzzer-sys builds libFuzzer): apt-get install build-essential"
HOST=$(rustc -vV | sed -n 's/^host: //p')
[ -n "$HOST" ] || fail_all "cannot tell the host triple from rustc -vV"

# The flags cargo-fuzz 0.13 passes with `-s none` (sanitizer-coverage for
# libFuzzer's feedback, `cfg(fuzzing)`, debug assertions). All are stable
# rustc flags. --target keeps them off build scripts and proc macros.
RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing \
-Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
-Cllvm-args=-sanitizer-coverage-stack-depth \
-Cdebug-assertions \
-Ccodegen-units=1"
export RUSTFLAGS

TARGET_DIR=${CARGO_TARGET_DIR:-target}
mkdir -p "$TARGET_DIR"
t0=$(date +%s)
echo "fuzz: building ${TARGETS[*]} for $HOST${FEATURES[*]:+ (${FEATURES[*]})}"
if ! cargo build --release --locked --target "$HOST" "${FEATURES[@]}" \
    $(printf -- '--bin %s ' "${TARGETS[@]}") >"$TARGET_DIR/smoke-build.log" 2>&1; then
    tail -n 40 "$TARGET_DIR/smoke-build.log"
    if grep -qE "lock file .*(needs to be updated|because --locked)" "$TARGET_DIR/smoke-build.log"; then
        echo "fuzz: fuzz/Cargo.lock is behind the main crate's dependencies:" \
            "run \`(cd fuzz && cargo update --workspace)\` and commit fuzz/Cargo.lock"
    fi
    fail_all "build failed ($TARGET_DIR/smoke-build.log)"
fi
echo "fuzz: built in $(( $(date +%s) - t0 )) s"
BIN=$TARGET_DIR/$HOST/release

work=$(mktemp -d /tmp/ovh-fuzz-smoke.XXXXXX)
trap 'rm -rf "$work"' EXIT

run_one() { # run one target; its exit status and log are left in $work
    local t=$1 dict=()
    mkdir -p "$work/$t" "artifacts/$t"
    [ -f "dict/$t.dict" ] && dict=(-dict="dict/$t.dict")
    local s0
    s0=$(date +%s)
    # New inputs go to the scratch dir (first directory); the committed
    # corpus (second) is only read.
    "$BIN/$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        "${dict[@]}" -artifact_prefix="artifacts/$t/" -print_final_stats=1 \
        "$work/$t" "corpus/$t" >"$work/$t.log" 2>&1
    echo $? >"$work/$t.rc"
    echo $(( $(date +%s) - s0 )) >"$work/$t.secs"
}

# Two at a time: the machine has 2 cores.
for ((i = 0; i < ${#TARGETS[@]}; i += 2)); do
    run_one "${TARGETS[i]}" &
    [ $((i + 1)) -lt ${#TARGETS[@]} ] && run_one "${TARGETS[i + 1]}" &
    wait
done

passed=0 failed=0
for t in "${TARGETS[@]}"; do
    log=$work/$t.log
    rc=$(cat "$work/$t.rc" 2>/dev/null || echo "?")
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    seeds=$(find "corpus/$t" -type f | wc -l)
    new=$(find "$work/$t" -type f | wc -l)
    line="$t: ${execs:-?} executions in $(cat "$work/$t.secs") s (${rate:-?} exec/s), $seeds corpus inputs, $new new"
    if [ "$rc" = 0 ]; then
        passed=$((passed + 1)); echo "PASS $line"
    else
        failed=$((failed + 1)); echo "FAIL $line, exit $rc"
        grep -m 1 -A 4 -E "panicked at|^==[0-9]+== ERROR|ERROR: libFuzzer" "$log" | cut -c 1-600
        grep -E "Test unit written to|^Base64:" "$log" | cut -c 1-600
    fi
done
echo "fuzz: total $(( $(date +%s) - t0 )) s"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ]
