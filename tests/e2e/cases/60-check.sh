# shellcheck shell=bash
# `check --bundle DIR`: prints the plan, changes nothing, exits 0/3/2.

run_check() { # ARGS...
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C "$OVH_BIN" --config "$CFG" check "$@" \
        < /dev/null > "$T/c.out" 2> "$T/c.err"
    RC=$?
    log "check $*: rc=$RC out=$(head -c 400 "$T/c.out" | tr '\n' '|') err=$(head -c 400 "$T/c.err" | tr '\n' '|')"
}

check_setup() {
    require_root
    require_cmd runc python3
    [ -x "$OVH_BIN" ] || skip "hook binary $OVH_BIN is missing"
    make_bundle "$T/b" -a 'myapp:/myapp;logs:/var/log/app:ro' -c true
    mkdir -p "$T/adminlogs"
    write_config '[volumes.logs]' "path = \"$T/adminlogs\""
}

test_check_plan_ok() {
    check_setup
    run_check --bundle "$T/b"
    assert_eq "$RC" 0 "check of attachable volumes: exit code"
    assert_grep "$T/c.out" -- "/myapp" "plan names the first destination"
    assert_grep "$T/c.out" -- "$VOLROOT/myapp" "plan names the named volume's host path"
    assert_grep "$T/c.out" -- "/var/log/app" "plan names the second destination"
    assert_grep "$T/c.out" -- "$T/adminlogs" "plan names the admin volume's path"
    assert_absent "$VOLROOT/myapp" "check creates no volume"
    assert_no_records "check"

    run_check --bundle "$T/b" --format json
    assert_eq "$RC" 0 "check --format json: exit code"
    check "check --format json prints valid JSON" python3 -m json.tool "$T/c.out" > /dev/null
    assert_grep "$T/c.out" -- "$VOLROOT/myapp" "json plan names the host path"
}

test_check_denied() {
    check_setup
    run_check --bundle "$T/b" --annotation "$ANN_KEY=/etc:/x"
    assert_eq "$RC" 3 "check of a denied host path: exit code"
    assert_grep "$T/c.out" "$T/c.err" -- "denied by policy" "check says denied"
    assert_grep "$T/c.out" "$T/c.err" -- "/etc:/x" "check names the spec"

    write_config 'auto_create = false'
    run_check --bundle "$T/b" --annotation "$ANN_KEY=newvol:/new"
    assert_eq "$RC" 3 "check of an undefined volume without auto_create: exit code"
    assert_absent "$VOLROOT/newvol" "check creates no volume"
}

test_check_invalid() {
    check_setup
    run_check --bundle "$T/b" --annotation "$ANN_KEY=myapp:relative"
    assert_eq "$RC" 2 "check of an invalid spec: exit code"
    assert_grep "$T/c.out" "$T/c.err" -- "myapp:relative" "check names the spec"
    assert_no_grep "$T/c.out" "$T/c.err" -- "denied by policy" "invalid is not a denial"

    run_check --bundle "$T/b" --annotation "$ANN_KEY=myapp:/x:zap"
    assert_eq "$RC" 2 "check of an unknown option: exit code"
    assert_grep "$T/c.out" "$T/c.err" -- zap "check names the option"
}

test_check_no_annotation() {
    check_setup
    make_bundle "$T/n" -c true
    run_check --bundle "$T/n"
    assert_eq "$RC" 0 "check without annotation: exit code"
    run_check --bundle "$T/no-such-bundle"
    assert_eq "$RC" 1 "check of a missing bundle: exit code"
}

E2E_TESTS+=(check_plan_ok check_denied check_invalid check_no_annotation)
