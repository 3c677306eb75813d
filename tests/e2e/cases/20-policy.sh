# shellcheck shell=bash
# shellcheck disable=SC2016,SC2012,SC2034,SC2317 # container code in single quotes; ls of test dirs; globals and helpers used across files
# Volumes the admin defines, and host paths the admin allows.

admin_volume() {
    local kind=$1 before=$T/.host-before
    require_kind "$kind"
    mkdir -p "$T/adminlogs" "$T/adminro"
    echo seeded-by-admin > "$T/adminro/motd"
    write_config \
        '[volumes.logs]' "path = \"$T/adminlogs\"" \
        '[volumes.roadmin]' "path = \"$T/adminro\"" 'read_only = true'
    snapshot_host "$before"

    run_any "$kind" "$T/w" logs:/logs 'echo line1 > /logs/app.log && echo wrote-log'
    assert_eq "$RC" 0 "$kind: container exit status"
    assert_grep "$T/w/out" -- wrote-log "$kind: container wrote /logs/app.log"
    assert_file_content "$T/adminlogs/app.log" line1 "$kind: file in the admin's path on the host"
    assert_absent "$VOLROOT/logs" "$kind: admin volume is not made under volumes_root"

    # read_only = true wins over an explicit :rw in the annotation.
    run_any "$kind" "$T/r" roadmin:/ro:rw \
        'cat /ro/motd; if echo changed > /ro/motd; then echo WRITE-SUCCEEDED; else echo WRITE-REFUSED; fi'
    assert_eq "$RC" 0 "$kind: ro container exit status"
    assert_grep "$T/r/out" -- seeded-by-admin "$kind: reads the admin's file"
    assert_grep "$T/r/out" -- WRITE-REFUSED "$kind: read_only = true forces ro"
    assert_file_content "$T/adminro/motd" seeded-by-admin "$kind: admin file unchanged"
    assert_no_records "$kind"
    assert_host_unchanged "$before" "$kind"
}
test_admin_volume_runc() { admin_volume runc; }
test_admin_volume_podman_crun() { admin_volume podman-crun; }

allowed_host_path() {
    local kind=$1 before=$T/.host-before
    require_kind "$kind"
    mkdir -p "$T/export/app"
    echo from-host > "$T/export/app/in"
    write_config "allowed_host_paths = [\"$T/export\"]"
    snapshot_host "$before"
    run_any "$kind" "$T/h" "$T/export/app:/data" 'cat /data/in && echo from-container > /data/out'
    assert_eq "$RC" 0 "$kind: container exit status"
    assert_grep "$T/h/out" -- from-host "$kind: container reads the host file"
    assert_file_content "$T/export/app/out" from-container "$kind: container's file on the host"
    assert_eq "$(ls -A "$VOLROOT" 2>/dev/null | wc -l)" 0 "$kind: nothing made under volumes_root"
    assert_no_records "$kind"
    assert_host_unchanged "$before" "$kind"
}
test_allowed_host_path_runc() { allowed_host_path runc; }
test_allowed_host_path_crun() { allowed_host_path crun; }
test_allowed_host_path_podman_runc() { allowed_host_path podman-runc; }

# Several volumes in one annotation (with spaces and an empty entry), and the
# stage aliases: `create-runtime` on argv, `prestart` as the config.json stage.
test_runc_multi_and_aliases() {
    require_runtime runc
    make_bundle "$T/m" -a ' one:/one ; two:/srv/two:ro ;; ' -S create-runtime \
        -c 'echo 1 > /one/f && cat /srv/two/f && if echo x > /srv/two/f; then echo WRITE-SUCCEEDED; else echo WRITE-REFUSED; fi'
    mkdir -p "$VOLROOT/two" && chmod 700 "$VOLROOT" && echo two-seed > "$VOLROOT/two/f"
    run_bundle runc "$T/m"
    assert_eq "$RC" 0 "two volumes, create-runtime alias: exit status"
    assert_file_content "$VOLROOT/one/f" 1 "first volume written"
    assert_grep "$T/m/out" -- two-seed "second volume read"
    assert_grep "$T/m/out" -- WRITE-REFUSED "second volume is ro"
    assert_file_content "$VOLROOT/two/f" two-seed "ro volume unchanged"

    make_bundle "$T/p" -a legacy:/legacy -s prestart -c 'echo old > /legacy/f'
    run_bundle runc "$T/p"
    assert_eq "$RC" 0 "config.json prestart stage: exit status"
    assert_file_content "$VOLROOT/legacy/f" old "prestart stage attaches the volume"
    assert_no_records "aliases"
}

# No annotation at all: the hook does nothing and the container runs.
test_runc_no_annotation() {
    require_runtime runc
    make_bundle "$T/n" -c 'echo plain'
    run_bundle runc "$T/n"
    assert_eq "$RC" 0 "no annotation: exit status"
    assert_grep "$T/n/out" -- plain "container ran"
    assert_absent "$VOLROOT" "volumes_root untouched"
    assert_no_records "no annotation"
}

# Nested destinations, given child first: the parent is mounted first, so the
# child is visible and its files land in the child's volume.
test_runc_nested_volumes() {
    require_runtime runc
    make_bundle "$T/n" -a 'inner:/data/sub;outer:/data' -c 'echo in > /data/sub/f && echo out > /data/g'
    run_bundle runc "$T/n"
    assert_eq "$RC" 0 "nested volumes: exit status"
    assert_file_content "$VOLROOT/inner/f" in "child volume got the child's file"
    assert_file_content "$VOLROOT/outer/g" out "parent volume got the parent's file"
    assert_absent "$VOLROOT/outer/sub/f" "child's file is not hidden in the parent"
}

E2E_TESTS+=(runc_nested_volumes admin_volume_runc admin_volume_podman_crun
            allowed_host_path_runc allowed_host_path_crun allowed_host_path_podman_runc
            runc_multi_and_aliases runc_no_annotation)
