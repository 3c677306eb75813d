# shellcheck shell=bash
# shellcheck disable=SC2016,SC2012,SC2034,SC2317 # container code in single quotes; ls of test dirs; globals and helpers used across files
# Destinations through symlinks in the image, resolved inside the rootfs as
# runc (securejoin), crun (openat2 RESOLVE_IN_ROOT) and `podman -v` resolve
# them: /var/run/app with /var/run -> /run (or -> ../run) lands at
# /run/app. The data lands in the volume, the container sees it at both
# paths, the host is unchanged. A dangling symlink is refused as crun
# refuses it, and nothing is created through it.

prep_var_run_abs() { mkdir -p "$1/run" "$1/var"; rm -rf "$1/var/run"; ln -s /run "$1/var/run"; }
prep_var_run_rel() { mkdir -p "$1/run" "$1/var"; rm -rf "$1/var/run"; ln -s ../run "$1/var/run"; }
# /var/lock -> /run/lock, and the image has no /run/lock.
prep_var_lock_dangling() { mkdir -p "$1/run" "$1/var"; rm -rf "$1/var/lock" "$1/run/lock"; ln -s /run/lock "$1/var/lock"; }

# dest_symlink KIND PREP LINK-TARGET
dest_symlink() {
    local kind=$1 prep=$2 target=$3 before=$T/.host-before r host_run_app=absent
    require_kind "$kind"
    [ -e /run/app ] && host_run_app=present
    snapshot_host "$before"
    PREP_ROOTFS=$prep
    run_any "$kind" "$T/v" myapp:/var/run/app '
        echo hello > /var/run/app/greeting && echo WROTE
        sed "s/^/VIA-RUN /" /run/app/greeting
        awk "\$5 == \"/run/app\" {print \"MOUNT-AT\", \$5}" /proc/self/mountinfo
        [ -L /var/run ] && echo VAR-RUN-IS-A-SYMLINK'
    assert_eq "$RC" 0 "$kind: exit status"
    assert_started "$T/v" v "$kind"
    assert_grep "$T/v/out" -- WROTE "$kind: the container writes through /var/run/app"
    assert_grep "$T/v/out" -- "VIA-RUN hello" "$kind: the container reads it at /run/app"
    assert_grep "$T/v/out" -- "MOUNT-AT /run/app" "$kind: the volume is mounted at /run/app"
    assert_grep "$T/v/out" -- VAR-RUN-IS-A-SYMLINK "$kind: /var/run is still the image's symlink"
    assert_file_content "$VOLROOT/myapp/greeting" hello "$kind: the data is in the volume on the host"
    r=$(rootfs_dir "$kind" "$T/v")
    assert_eq "$(readlink "$r/var/run")" "$target" "$kind: the image's symlink is left alone"
    assert_exists "$r/run/app" "$kind: the mount point was made in the rootfs's /run"
    assert_absent "$r/run/app/greeting" "$kind: nothing written in the rootfs itself"
    [ "$host_run_app" = absent ] && assert_absent /run/app "$kind: nothing made at the host's /run/app"
    assert_no_records "$kind"
    assert_host_unchanged "$before" "$kind"
    # check shows where the destination resolves (runc/crun bundles).
    case $kind in
        runc|crun)
            "$OVH_BIN" --config "$CFG" check --bundle "$T/v" > "$T/check.out" 2>&1
            assert_grep "$T/check.out" -- "destination: /var/run/app → /run/app" "$kind: check shows the resolved path" ;;
    esac
}
test_dest_var_run_abs_runc() { dest_symlink runc prep_var_run_abs /run; }
test_dest_var_run_abs_crun() { dest_symlink crun prep_var_run_abs /run; }
test_dest_var_run_abs_podman_runc() { dest_symlink podman-runc prep_var_run_abs /run; }
test_dest_var_run_abs_podman_crun() { dest_symlink podman-crun prep_var_run_abs /run; }
test_dest_var_run_rel_runc() { dest_symlink runc prep_var_run_rel ../run; }
test_dest_var_run_rel_crun() { dest_symlink crun prep_var_run_rel ../run; }
test_dest_var_run_rel_podman_runc() { dest_symlink podman-runc prep_var_run_rel ../run; }
test_dest_var_run_rel_podman_crun() { dest_symlink podman-crun prep_var_run_rel ../run; }

# A dangling symlink on the way: refused (exit 1), naming the link and its
# target; nothing created through it, in the rootfs or on the host.
dest_dangling() {
    local kind=$1 r host_run_lock=absent
    [ -e /run/lock/app ] && host_run_lock=present
    PREP_ROOTFS=prep_var_lock_dangling
    expect_refused "$kind" dangling myapp:/var/lock/app 1 '"myapp:/var/lock/app"' \
        "/var/lock is a symlink in the image to /run/lock" dangling
    r=$(rootfs_dir "$kind" "$T/dangling")
    assert_absent "$r/run/lock" "$kind: nothing created through the dangling symlink"
    assert_eq "$(readlink "$r/var/lock")" /run/lock "$kind: the image's symlink is left alone"
    [ "$host_run_lock" = absent ] && assert_absent /run/lock/app "$kind: nothing at the host's /run/lock/app"
}
test_dest_dangling_runc() { dest_dangling runc; }
test_dest_dangling_crun() { dest_dangling crun; }
test_dest_dangling_podman_runc() { dest_dangling podman-runc; }

E2E_TESTS+=(dest_var_run_abs_runc dest_var_run_abs_crun dest_var_run_abs_podman_runc dest_var_run_abs_podman_crun
            dest_var_run_rel_runc dest_var_run_rel_crun dest_var_run_rel_podman_runc dest_var_run_rel_podman_crun
            dest_dangling_runc dest_dangling_crun dest_dangling_podman_runc)
