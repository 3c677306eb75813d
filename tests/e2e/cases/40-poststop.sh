# shellcheck shell=bash
# shellcheck disable=SC2016,SC2012,SC2034,SC2317 # container code in single quotes; ls of test dirs; globals and helpers used across files
# The per-container record: written by prestart, present while the container
# lives, removed by poststop; poststop is harmless alone, twice, and without pid.

record_lifecycle() {
    local rt=$1
    require_runtime "$rt"
    make_bundle "$T/b" -a myapp:/myapp -c 'echo alive > /myapp/alive'
    new_id
    local id=$NEW_ID rec
    rec=$STATE/containers/$NEW_ID.json
    track "$rt" "$id"
    rt_ctl "$rt" create --bundle "$T/b" "$id" < /dev/null > "$T/b/out" 2> "$T/b/err"
    assert_eq "$?" 0 "$rt create"
    assert_exists "$rec" "$rt: record after create (hook ran)"
    check "$rt: record is JSON" python3 -m json.tool "$rec" > /dev/null
    rt_ctl "$rt" start "$id" < /dev/null >> "$T/b/out" 2>> "$T/b/err"
    assert_eq "$?" 0 "$rt start"
    assert_exists "$rec" "$rt: record after start"
    rt_ctl "$rt" delete -f "$id" < /dev/null >> "$T/b/out" 2>> "$T/b/err"
    assert_eq "$?" 0 "$rt delete (runs poststop)"
    assert_absent "$rec" "$rt: record after delete"
    assert_no_records "$rt"
}
test_record_lifecycle_runc() { record_lifecycle runc; }
test_record_lifecycle_crun() { record_lifecycle crun; }

# podman: the container itself lists the records (state_dir is bind-mounted
# read-only into it) and its hostname is the start of its id.
record_podman() {
    local rt=$1
    require_kind "podman-$rt"
    mkdir -p "$STATE"
    run_podman "$rt" "$T/p" myapp:/myapp \
        'echo "host=$(hostname)"; ls /ovhstate/containers/ | sed "s/^/rec=/"' \
        -v "$STATE:/ovhstate:ro"
    assert_eq "$RC" 0 "podman($rt) exit status"
    local host
    host=$(sed -n 's/^host=//p' "$T/p/out")
    assert_ne "$host" "" "podman($rt): container printed its hostname"
    assert_grep "$T/p/out" -- "rec=$host" "podman($rt): record for this container exists while it runs"
    assert_grep "$T/p/out" -- ".json" "podman($rt): record file name"
    assert_no_records "podman($rt) after --rm"
}
test_record_podman_runc() { record_podman runc; }
test_record_podman_crun() { record_podman crun; }

# A bundle whose only hooks are poststop ones (twice): no prestart ever ran.
test_poststop_alone_twice_runc() {
    require_runtime runc
    make_bundle "$T/b" -a myapp:/myapp -c 'echo ran'
    bundle_edit "$T/b" 'del c["hooks"]["createRuntime"]; c["hooks"]["poststop"] = c["hooks"]["poststop"] * 2'
    run_bundle runc "$T/b"
    assert_eq "$RC" 0 "runc with poststop twice and no prestart"
    assert_grep "$T/b/out" -- ran "container ran"
    assert_not_said "$T/b" "oci-volume-hook:" "poststop said nothing"
    assert_no_records "poststop only"
}

# poststop on a container whose prestart ran: twice is still fine.
test_poststop_twice_after_prestart_runc() {
    require_runtime runc
    make_bundle "$T/b" -a myapp:/myapp -c 'echo ran'
    bundle_edit "$T/b" 'c["hooks"]["poststop"] = c["hooks"]["poststop"] * 2'
    run_bundle runc "$T/b"
    assert_eq "$RC" 0 "runc exit status"
    assert_not_said "$T/b" "oci-volume-hook:" "poststop said nothing"
    assert_no_records "after double poststop"
}

# A poststop that never ran (runc#4363) leaves a stale record; the same
# container id used again must still work and be cleaned up.
test_stale_record_id_reuse_runc() {
    require_runtime runc
    new_id
    local id=$NEW_ID
    make_bundle "$T/a" -a myapp:/myapp -c 'echo first > /myapp/f' -P
    run_bundle runc "$T/a" "$id"
    assert_eq "$RC" 0 "first run without poststop"
    assert_exists "$STATE/containers/$id.json" "stale record left by the missing poststop"
    make_bundle "$T/b" -a myapp:/myapp -c 'cat /myapp/f'
    run_bundle runc "$T/b" "$id"
    assert_eq "$RC" 0 "same id again, with a stale record"
    assert_grep "$T/b/out" -- first "second run sees the volume"
    assert_no_records "after the second run's poststop"
}

E2E_TESTS+=(stale_record_id_reuse_runc record_lifecycle_runc record_lifecycle_crun record_podman_runc record_podman_crun
            poststop_alone_twice_runc poststop_twice_after_prestart_runc)
