# shellcheck shell=bash
# The shipped hooks.d files: what docs/interface.md promises, and that podman
# runs the hook only for the exact annotation key.

test_hooksd_files() {
    require_cmd jq
    local f stage want
    for stage in prestart poststop; do
        f=$REPO/hooks.d/oci-volume-hook-$stage.json
        assert_exists "$f" "hooks.d $stage file"
        [ -f "$f" ] || continue
        assert_eq "$(jq -r .version "$f")" 1.0.0 "$stage: schema version"
        assert_eq "$(jq -r .hook.path "$f")" /usr/bin/oci-volume-hook "$stage: hook.path"
        assert_eq "$(jq -c .hook.args "$f")" "[\"oci-volume-hook\",\"$stage\"]" "$stage: hook.args"
        assert_eq "$(jq -r '.hook.env | length > 0' "$f")" true "$stage: env set explicitly"
        # prestart may walk a large volume (relabel, U) or wait for NFS
        # (mount_timeout); poststop only removes a record.
        if [ "$stage" = prestart ]; then want=120; else want=30; fi
        assert_eq "$(jq -r .hook.timeout "$f")" "$want" "$stage: timeout"
        assert_eq "$(jq -c '.when.annotations | keys' "$f")" '["^oci-volume-hook/volumes$"]' "$stage: anchored annotation key"
        assert_eq "$(jq -c .stages "$f")" "[\"$stage\"]" "$stage: stages"
    done
}

# podman + hooks.d: a key that only contains ours, or no annotation, does
# not run the hook; the container runs and no volume appears.
test_podman_hooksd_gating() {
    require_kind podman-runc
    run_podman runc "$T/x" "" 'echo plain' --annotation "x$ANN_KEY=myapp:/myapp" --annotation "${ANN_KEY}x=myapp:/myapp"
    assert_eq "$RC" 0 "look-alike keys: exit status"
    assert_grep "$T/x/out" -- plain "look-alike keys: container ran"
    assert_absent "$VOLROOT" "look-alike keys: hook did not run"
    run_podman runc "$T/n" "" 'echo plain'
    assert_eq "$RC" 0 "no annotation: exit status"
    assert_absent "$VOLROOT" "no annotation: hook did not run"
    run_podman runc "$T/y" myapp:/myapp 'echo yes > /myapp/f'
    assert_file_content "$VOLROOT/myapp/f" yes "exact key: hook ran"
}

E2E_TESTS+=(hooksd_files podman_hooksd_gating)
