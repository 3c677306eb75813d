# shellcheck shell=bash
# shellcheck disable=SC2016,SC2012,SC2034,SC2317 # container code in single quotes; ls of test dirs; globals and helpers used across files
# Adversarial requests: symlinks in the image, `..`, host paths outside the
# policy, undefined volumes, malformed annotations. Every one must stop the
# container before it runs, say why (with the documented words and exit
# code), and leave the host exactly as it was.

# assert_hook_exit KIND DIR CODE — the runtime reports the hook's exit code.
assert_hook_exit() {
    case $1 in
        runc|podman-runc|kube-runc) assert_said "$2" "exit status $3," "$1: hook exit code" ;;
        crun|podman-crun|kube-crun) assert_said "$2" "exit code: $3)" "$1: hook exit code" ;;
    esac
}

# expect_refused KIND TAG ANNOTATION CODE [WORD]...
# CODE: the hook's documented exit code (1 failed, 2 invalid, 3 denied).
expect_refused() {
    local kind=$1 tag=$2 ann=$3 want=$4; shift 4
    local out=$T/$tag before=$T/.before-$tag vols_before w
    require_kind "$kind"
    snapshot_host "$before"
    vols_before=$(ls -A "$VOLROOT" 2>/dev/null | tr '\n' ' ')
    run_any "$kind" "$out" "$ann" 'echo SHOULD-NOT-RUN; touch /marker/ran-anyway'
    assert_ne "$RC" 0 "$kind: runtime exit status"
    assert_not_started "$out" "$tag" "$kind"
    assert_absent "$MARK/ran-anyway" "$kind: container did not run"
    assert_hook_exit "$kind" "$out" "$want"
    assert_said "$out" "oci-volume-hook: " "$kind: error line prefix"
    case $kind in
        runc|crun) assert_said "$out" "oci-volume-hook: ${LAST_ID:0:12}: " "$kind: error line names the container" ;;
    esac
    for w in "$@"; do assert_said "$out" "$w" "$kind: hook message"; done
    if [ "$want" = 3 ]; then
        assert_said "$out" "denied by policy" "$kind: a denial"
    else
        assert_not_said "$out" "denied by policy" "$kind: not a denial"
    fi
    assert_host_unchanged "$before" "$kind"
    assert_no_records "$kind"
    if [ "$want" != 1 ]; then
        assert_eq "$(ls -A "$VOLROOT" 2>/dev/null | tr '\n' ' ')" "$vols_before" "$kind: volumes_root entries"
    fi
}

# ------------------------------------------------------ symlinks in image ---
# Symlinks in the image are followed inside the rootfs (as runc, crun and
# `podman -v` follow them), never out of it: `/myapp -> /etc` names the
# container's own /etc, `-> ../../../../tmp/x` the rootfs's /tmp/x. The
# host's /etc and /tmp are never touched. A dangling one is refused.

prep_sym_abs() { rm -rf "$1/myapp"; ln -s /etc "$1/myapp"; }
# Enough `..` to climb from any rootfs to / on the host.
prep_sym_rel() { rm -rf "$1/myapp" "$1/tmp/ovh-escape"; ln -s ../../../../../../../../../../../../tmp/ovh-escape "$1/myapp"; }
prep_sym_rel_inside() { prep_sym_rel "$1"; mkdir -p "$1/tmp/ovh-escape"; }
prep_sym_parent() { rm -rf "$1/a"; ln -s /etc "$1/a"; }
prep_sym_dangling() { rm -rf "$1/myapp"; ln -s /nowhere "$1/myapp"; }

# rootfs_dir KIND OUTDIR — the rootfs directory run_any used.
rootfs_dir() {
    case $1 in
        podman-*) printf '%s\n' "$PODMAN_ROOTFS" ;;
        *) printf '%s\n' "$2/rootfs" ;;
    esac
}

# The volume goes over the container's own /etc; the host's /etc is unchanged.
sym_abs() {
    local kind=$1 etc_before before=$T/.host-before r
    require_kind "$kind"
    PREP_ROOTFS=prep_sym_abs
    etc_before=$(ls -A /etc | md5sum)
    snapshot_host "$before"
    run_any "$kind" "$T/symabs" myapp:/myapp '
        echo hello > /myapp/greeting && echo WROTE
        sed "s/^/IN-ETC /" /etc/greeting
        awk "\$5 == \"/etc\" {print \"MOUNT-AT\", \$5}" /proc/self/mountinfo'
    assert_eq "$RC" 0 "$kind: exit status"
    assert_started "$T/symabs" symabs "$kind"
    assert_grep "$T/symabs/out" -- WROTE "$kind: the container writes through /myapp"
    assert_grep "$T/symabs/out" -- "IN-ETC hello" "$kind: it lands in the container's own /etc"
    assert_grep "$T/symabs/out" -- "MOUNT-AT /etc" "$kind: the volume is mounted on the container's /etc"
    assert_file_content "$VOLROOT/myapp/greeting" hello "$kind: the data is in the volume"
    assert_eq "$(ls -A /etc | md5sum)" "$etc_before" "$kind: host /etc listing"
    assert_absent /etc/greeting "$kind: nothing written in host /etc"
    r=$(rootfs_dir "$kind" "$T/symabs")
    assert_eq "$(readlink "$r/myapp")" /etc "$kind: the image's symlink is left alone"
    assert_file_content "$r/etc/hostname" rootfs-etc "$kind: the image's /etc is intact under the mount"
    assert_absent "$r/etc/greeting" "$kind: nothing written in the image's /etc itself"
    assert_no_records "$kind"
    assert_host_unchanged "$before" "$kind"
}
test_sym_dest_abs_runc() { sym_abs runc; }
test_sym_dest_abs_crun() { sym_abs crun; }
test_sym_dest_abs_podman_runc() { sym_abs podman-runc; }

# `-> ../../../../tmp/ovh-escape` is the rootfs's /tmp/ovh-escape: missing
# there, a dangling symlink, refused; nothing made anywhere.
sym_rel() {
    local kind=$1
    rmdir /tmp/ovh-escape 2>/dev/null
    if [ -e /tmp/ovh-escape ]; then fail "precondition: /tmp/ovh-escape exists before the test"; return; fi
    PREP_ROOTFS=prep_sym_rel
    expect_refused "$kind" symrel myapp:/myapp 1 '"myapp:/myapp"' "/myapp is a symlink in the image to ../../" dangling
    assert_absent /tmp/ovh-escape "$kind: relative symlink did not escape to the host"
    assert_absent "$(rootfs_dir "$kind" "$T/symrel")/tmp/ovh-escape" "$kind: nothing created through the symlink inside the rootfs"
    rmdir /tmp/ovh-escape 2>/dev/null
}
test_sym_dest_rel_runc() { sym_rel runc; }
test_sym_dest_rel_crun() { sym_rel crun; }
test_sym_dest_rel_podman_crun() { sym_rel podman-crun; }

# When the rootfs has /tmp/ovh-escape, the volume goes there, in the rootfs.
test_sym_dest_rel_inside_runc() {
    require_runtime runc
    rmdir /tmp/ovh-escape 2>/dev/null
    if [ -e /tmp/ovh-escape ]; then fail "precondition: /tmp/ovh-escape exists before the test"; return; fi
    local before=$T/.host-before
    snapshot_host "$before"
    PREP_ROOTFS=prep_sym_rel_inside
    run_any runc "$T/relin" myapp:/myapp 'echo hi > /myapp/f && sed "s/^/IN-TMP /" /tmp/ovh-escape/f'
    assert_eq "$RC" 0 "exit status"
    assert_grep "$T/relin/out" -- "IN-TMP hi" "the volume is the rootfs's /tmp/ovh-escape"
    assert_file_content "$VOLROOT/myapp/f" hi "the data is in the volume"
    assert_absent /tmp/ovh-escape "the relative symlink did not reach the host's /tmp"
    assert_absent "$T/relin/rootfs/tmp/ovh-escape/f" "nothing written in the rootfs itself"
    assert_no_records "relative symlink inside"
    assert_host_unchanged "$before" "relative symlink inside"
}

test_sym_parent_runc() {
    require_runtime runc
    local before=$T/.host-before
    snapshot_host "$before"
    PREP_ROOTFS=prep_sym_parent
    run_any runc "$T/symparent" myapp:/a/b 'echo hi > /a/b/f && sed "s/^/IN-ETC /" /etc/b/f'
    assert_eq "$RC" 0 "exit status"
    assert_grep "$T/symparent/out" -- "IN-ETC hi" "/a/b is the container's /etc/b"
    assert_absent /etc/b "host /etc/b not created"
    assert_exists "$T/symparent/rootfs/etc/b" "the mount point is made in the rootfs's /etc"
    assert_absent "$T/symparent/rootfs/etc/b/f" "nothing written in the rootfs itself"
    assert_no_records "symlinked parent"
    assert_host_unchanged "$before" "symlinked parent"
}

# ------------------------------------------------------------ `..` in DEST ---

test_dotdot_dest_runc() { expect_refused runc dotdot myapp:/x/../etc 2 '"myapp:/x/../etc"' invalid; }
test_dotdot_dest_podman_runc() { expect_refused podman-runc dotdot myapp:/x/../etc 2 '"myapp:/x/../etc"' invalid; }

# ------------------------------------------------------- host path policy ---

test_denied_host_path_runc() { expect_refused runc denied /etc:/x 3 '"/etc:/x"'; }
test_denied_host_path_crun() { expect_refused crun denied /etc:/x 3 '"/etc:/x"'; }
test_denied_host_path_podman_crun() { expect_refused podman-crun denied /etc:/x 3 '"/etc:/x"'; }
test_denied_host_path_kube_runc() { expect_refused kube-runc denied /etc:/x 3 '"/etc:/x"'; }

test_denied_symlink_under_allowed_runc() {
    mkdir -p "$T/export"
    ln -s /etc "$T/export/link"
    write_config "allowed_host_paths = [\"$T/export\"]"
    expect_refused runc symhost "$T/export/link:/x" 3 "\"$T/export/link:/x\""
}

# "/…/exportx" starts with the string "/…/export" but is not under it.
test_denied_prefix_sibling_runc() {
    mkdir -p "$T/export" "$T/exportx"
    write_config "allowed_host_paths = [\"$T/export\"]"
    expect_refused runc sibling "$T/exportx:/x" 3 "\"$T/exportx:/x\""
}

test_denied_undefined_volume_runc() {
    write_config 'auto_create = false'
    expect_refused runc undefined myapp:/myapp 3 '"myapp:/myapp"'
    assert_absent "$VOLROOT/myapp" "volume not created"
}

# All or nothing: a denial in the second spec leaves no trace of the first.
test_denied_partial_runc() {
    expect_refused runc partial 'good:/good;/etc:/x' 3 '"/etc:/x"'
    assert_absent "$VOLROOT/good" "first (allowed) volume not created"
}
# A failure in the second volume (a dangling symlink): the container still
# does not start and no record is left.
test_failed_second_volume_runc() {
    PREP_ROOTFS=prep_sym_dangling
    expect_refused runc second 'good:/good;myapp:/myapp' 1 '"myapp:/myapp"' dangling
}

# ------------------------------------------------------ malformed requests ---

invalid() { # KIND ANNOTATION [WORD]...
    local kind=$1 ann=$2; shift 2
    expect_refused "$kind" inv "$ann" 2 invalid "$@"
    assert_absent "$VOLROOT/myapp" "$kind: no volume created"
}
test_invalid_no_dest() { invalid runc myapp '"myapp"'; }
test_invalid_relative_dest() { invalid runc myapp:relative '"myapp:relative"'; }
test_invalid_option() { invalid runc myapp:/x:bogus '"myapp:/x:bogus"' bogus; }
test_invalid_option_crun() { invalid crun myapp:/x:bogus '"myapp:/x:bogus"' bogus; }
test_invalid_contradiction() { invalid runc myapp:/x:ro,rw '"myapp:/x:ro,rw"'; }
test_invalid_dest_proc() { invalid runc myapp:/proc/x '"myapp:/proc/x"'; }
test_invalid_dest_root() { invalid runc myapp:/ '"myapp:/"'; }
test_invalid_same_dest() { invalid runc 'myapp:/x;other:/x' /x; assert_absent "$VOLROOT/other" "no volume created"; }
test_invalid_bad_name() { invalid runc -x:/y '"-x:/y"'; }
# Names must not walk out of volumes_root.
test_invalid_dotdot_name() {
    invalid runc ..:/x '"..:/x"'
    assert_absent "$T/x" "nothing made beside volumes_root"
}
test_invalid_slash_name() {
    invalid runc myapp/../../escape:/x '"myapp/../../escape:/x"'
    assert_absent "$T/escape" "nothing made outside volumes_root"
}
test_invalid_huge_annotation() {
    local big
    big=myapp:/$(head -c 102400 /dev/zero | tr '\0' a)
    invalid runc "$big"
}
test_invalid_control_char() { invalid runc "$(printf 'myapp:/a\001b')"; }
test_invalid_long_name() { invalid runc "$(printf 'n%.0s' $(seq 129)):/long" "$(printf 'n%.0s' $(seq 129))"; }
test_invalid_too_many() {
    local i ann=""
    for i in $(seq 65); do ann="$ann;v$i:/v$i"; done
    invalid runc "${ann#;}" 64
    assert_absent "$VOLROOT/v1" "no volume created"
}
# The limits themselves are fine: a 128-byte name and 64 volumes attach.
test_limits_accepted_runc() {
    require_runtime runc
    local i ann="" name
    name=$(printf 'n%.0s' $(seq 128))
    for i in $(seq 63); do ann="$ann;v$i:/v$i"; done
    make_bundle "$T/l" -a "$name:/long${ann}" -c 'echo ok > /long/f && echo ok > /v63/f'
    run_bundle runc "$T/l"
    assert_eq "$RC" 0 "128-byte name and 64 volumes: exit status"
    assert_file_content "$VOLROOT/$name/f" ok "128-byte name volume on the host"
    assert_file_content "$VOLROOT/v63/f" ok "64th volume on the host"
    assert_no_records "limits"
}
# An admin volume whose path is missing fails (not a denial) and creates nothing.
test_admin_volume_missing_path_runc() {
    write_config '[volumes.gone]' "path = \"$T/no-such-dir\""
    expect_refused runc gone gone:/gone 1 '"gone:/gone"' "$T/no-such-dir"
    assert_absent "$T/no-such-dir" "missing admin path not created"
    assert_absent "$VOLROOT/gone" "no volume made instead"
}
test_invalid_relative_dest_podman_runc() { invalid podman-runc myapp:relative '"myapp:relative"'; }

E2E_TESTS+=(sym_dest_abs_runc sym_dest_abs_crun sym_dest_abs_podman_runc
            sym_dest_rel_runc sym_dest_rel_crun sym_dest_rel_podman_crun sym_dest_rel_inside_runc sym_parent_runc
            dotdot_dest_runc dotdot_dest_podman_runc
            denied_host_path_runc denied_host_path_crun denied_host_path_podman_crun denied_host_path_kube_runc
            denied_symlink_under_allowed_runc denied_prefix_sibling_runc denied_undefined_volume_runc
            denied_partial_runc failed_second_volume_runc
            invalid_no_dest invalid_relative_dest invalid_option invalid_option_crun
            invalid_contradiction invalid_dest_proc invalid_dest_root invalid_same_dest
            invalid_bad_name invalid_dotdot_name invalid_slash_name invalid_huge_annotation invalid_control_char invalid_long_name
            invalid_too_many limits_accepted_runc admin_volume_missing_path_runc
            invalid_relative_dest_podman_runc)
