# shellcheck shell=bash
# tests/lib/driver.sh — what every suite runner (e2e, docker, nspawn) shares:
# choosing the tests, the closing count line, and failing (or skipping) all
# of them for one reason.

# driver_init NAME TEST... — the suite's name for its closing line, and the
# tests whose names match the extended regex $FILTER (all when empty), in
# `selected`; the counters start at zero.
driver_init() {
    SUITE_NAME=$1; shift
    npass=0 nfail=0 nskip=0
    selected=()
    local t
    for t in "$@"; do
        if [ -z "${FILTER:-}" ] || [[ $t =~ $FILTER ]]; then selected+=("$t"); fi
    done
}

# summary — exactly one closing line: `NAME: N passed, N failed[, N skipped]`.
summary() {
    if [ "$nskip" -gt 0 ]; then
        echo "$SUITE_NAME: $npass passed, $nfail failed, $nskip skipped"
    else
        echo "$SUITE_NAME: $npass passed, $nfail failed"
    fi
}

# all_fail REASON [fail] — every selected test fails for one reason (with
# CI=true or `fail`), or is skipped loudly; then the closing line and exit.
all_fail() {
    local t
    for t in ${selected[@]+"${selected[@]}"}; do
        if [ "${CI:-}" = true ] || [ "${2:-}" = fail ]; then
            echo "FAIL $t: $1"; nfail=$((nfail + 1))
        else
            echo "SKIP: $t: $1"; nskip=$((nskip + 1))
        fi
    done
    summary
    [ "$nfail" = 0 ]
    exit
}

# driver_judge TEST RC DIR LOG — one test's line from its exit status and its
# directory's `.skip` / `.failures`: SKIP (77 with .skip), PASS, or FAIL with
# the reasons (its log's tail goes to stderr); counts it.
driver_judge() {
    local t=$1 rc=$2 dir=$3 log=$4 reason
    if [ "$rc" = 77 ] && [ -f "$dir/.skip" ]; then
        cat "$dir/.skip"; nskip=$((nskip + 1))
    elif [ "$rc" = 0 ] && [ ! -s "$dir/.failures" ]; then
        echo "PASS $t"; npass=$((npass + 1))
    else
        reason=$(tr '\n' ';' < "$dir/.failures" 2>/dev/null | sed 's/;$//; s/;/; /g')
        [ "$rc" = 124 ] && reason="timed out; $reason"
        [ -n "$reason" ] || reason="exit status $rc (see $log)"
        echo "FAIL $t: $reason"; nfail=$((nfail + 1))
        { echo "---- $t (log: $log)"; tail -n 40 "$log"; } >&2
    fi
}
