# shellcheck shell=bash
# shellcheck disable=SC2016,SC2012,SC2034,SC2317 # container code in single quotes; ls of test dirs; globals and helpers used across files
# The seed story: a named volume outlives its containers, is shared by the
# next one and can be attached read-only — on every runtime we support.

seed_story() {
    local kind=$1 before=$T/.host-before
    require_kind "$kind"
    snapshot_host "$before"

    # A writes the greeting and goes away.
    run_any "$kind" "$T/a" myapp:/myapp 'echo hello > /myapp/greeting && echo wrote-greeting'
    assert_eq "$RC" 0 "container A exit status"
    assert_started "$T/a" a "A"
    assert_grep "$T/a/out" -- wrote-greeting "A wrote /myapp/greeting"
    assert_file_content "$VOLROOT/myapp/greeting" hello "host file after A is gone"
    assert_no_records "after A"

    # B, a new container with the same annotation, reads it.
    run_any "$kind" "$T/b" myapp:/myapp 'cat /myapp/greeting'
    assert_eq "$RC" 0 "container B exit status"
    assert_grep "$T/b/out" -- hello "B reads the greeting A wrote"
    assert_file_content "$VOLROOT/myapp/greeting" hello "host file after A and B are gone"
    assert_no_records "after B"

    # C attaches it read-only: it reads, its write fails, the file is unchanged.
    run_any "$kind" "$T/c" myapp:/myapp:ro \
        'cat /myapp/greeting; if echo changed > /myapp/greeting; then echo WRITE-SUCCEEDED; else echo WRITE-REFUSED; fi'
    assert_eq "$RC" 0 "container C exit status"
    assert_grep "$T/c/out" -- hello "C reads the greeting"
    assert_grep "$T/c/out" -- WRITE-REFUSED "C's write is refused"
    assert_said "$T/c" "Read-only file system" "C's write error"
    assert_file_content "$VOLROOT/myapp/greeting" hello "host file after C (ro) tried to write"
    assert_no_records "after C"

    assert_host_unchanged "$before" "$kind seed story"
}

test_runc_seed() {
    seed_story runc
    # Ownership and modes the interface promises (root container).
    assert_eq "$(stat -c '%a %u:%g' "$VOLROOT")" "700 0:0" "volumes_root mode/owner"
    assert_eq "$(stat -c '%a %u:%g' "$VOLROOT/myapp")" "755 0:0" "named volume mode/owner"
}
test_crun_seed() { seed_story crun; }
test_podman_runc_seed() { seed_story podman-runc; }
test_podman_crun_seed() { seed_story podman-crun; }
test_kube_runc_seed() { seed_story kube-runc; }
test_kube_crun_seed() { seed_story kube-crun; }

# Two podman containers started together both get the same volume (and its
# first-use creation does not race): each writes its own file, then waits
# (bounded) until it sees the other's file through the volume.
concurrent_podman() {
    local rt=$1 before=$T/.host-before
    require_kind "podman-$rt"
    podman_setup
    snapshot_host "$before"
    local wait_for='i=0; while [ ! -f /myapp/$OTHER ] && [ $i -lt 300 ]; do i=$((i+1)); sleep 0.1; done; [ -f /myapp/$OTHER ] && echo saw-$OTHER'
    run_podman "$rt" "$T/p1" myapp:/myapp "echo one > /myapp/p1; OTHER=p2; $wait_for" &
    local j1=$!
    run_podman "$rt" "$T/p2" myapp:/myapp "echo two > /myapp/p2; OTHER=p1; $wait_for" &
    local j2=$!
    wait "$j1"; wait "$j2"
    assert_started "$T/p1" p1 "first container"
    assert_started "$T/p2" p2 "second container"
    assert_grep "$T/p1/out" -- saw-p2 "first container sees the second's file"
    assert_grep "$T/p2/out" -- saw-p1 "second container sees the first's file"
    assert_file_content "$VOLROOT/myapp/p1" one "host file from the first"
    assert_file_content "$VOLROOT/myapp/p2" two "host file from the second"
    assert_no_records "after both"
    assert_host_unchanged "$before" "concurrent podman($rt)"
}
test_podman_runc_concurrent() { concurrent_podman runc; }
test_podman_crun_concurrent() { concurrent_podman crun; }

E2E_TESTS+=(runc_seed crun_seed podman_runc_seed podman_crun_seed kube_runc_seed kube_crun_seed
            podman_runc_concurrent podman_crun_concurrent)
