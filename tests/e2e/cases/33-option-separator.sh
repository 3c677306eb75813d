# shellcheck shell=bash
# shellcheck disable=SC2016,SC2012,SC2034,SC2317 # container code in single quotes; ls of test dirs; globals and helpers used across files
# podman 4.x splits --annotation at commas, so a multi-option spec uses the
# other separator, `+`: exactly as the README writes it,
#   podman run --annotation oci-volume-hook/volumes=myapp:/myapp:ro+nosuid …

podman_plus_options() {
    local rt=$1 before=$T/.host-before opts
    require_kind "podman-$rt"
    snapshot_host "$before"
    mkdir -p "$VOLROOT/myapp" && echo hello > "$VOLROOT/myapp/greeting"
    chmod 700 "$VOLROOT"
    run_podman "$rt" "$T/p" 'myapp:/myapp:ro+nosuid' '
        awk "\$5 == \"/myapp\" {print \"OPTS\", \$6}" /proc/self/mountinfo
        cat /myapp/greeting
        if echo x > /myapp/new 2>/dev/null; then echo WRITE-SUCCEEDED; else echo WRITE-REFUSED; fi'
    assert_eq "$RC" 0 "podman($rt): exit status"
    assert_started "$T/p" p "podman($rt)"
    opts=$(awk '$1 == "OPTS" {print $2}' "$T/p/out")
    case ",$opts," in *,ro,*) pass "podman($rt): mounted ro ($opts)" ;; *) fail "podman($rt): not mounted ro: '$opts'" ;; esac
    case ",$opts," in *,nosuid,*) pass "podman($rt): mounted nosuid ($opts)" ;; *) fail "podman($rt): not mounted nosuid: '$opts'" ;; esac
    assert_grep "$T/p/out" -- hello "podman($rt): reads the volume"
    assert_grep "$T/p/out" -- WRITE-REFUSED "podman($rt): cannot write"
    assert_absent "$VOLROOT/myapp/new" "podman($rt): nothing written in the volume"
    assert_no_records "podman($rt)"
    assert_host_unchanged "$before" "podman($rt)"
}
test_podman_runc_plus_options() { podman_plus_options runc; }
test_podman_crun_plus_options() { podman_plus_options crun; }

# Why: podman 4 itself refuses the comma form (podman 5 takes it).
test_podman_comma_options_podman4() {
    require_kind podman-runc
    local major
    major=$(podman version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)
    run_podman runc "$T/c" 'myapp:/myapp:ro,nosuid' 'echo RAN'
    if [ "${major:-0}" -lt 5 ]; then
        assert_ne "$RC" 0 "podman $major: the comma form fails"
        assert_said "$T/c" "annotations must be formatted KEY=VALUE" "podman $major: in podman itself"
        assert_absent "$VOLROOT/myapp" "podman $major: the hook never ran"
    else
        assert_eq "$RC" 0 "podman $major: the comma form works too"
        assert_grep "$T/c/out" -- RAN "podman $major: the container ran"
    fi
}

E2E_TESTS+=(podman_runc_plus_options podman_crun_plus_options podman_comma_options_podman4)
