# shellcheck shell=bash
# shellcheck disable=SC2016,SC2012,SC2034,SC2317 # container code in single quotes; ls of test dirs; globals and helpers used across files
# What the mount looks like from inside: options, ownership, user namespaces.

# Mount options: default rw,nosuid,nodev; noexec really stops exec; ro is ro.
test_runc_mount_options() {
    require_runtime runc
    make_bundle "$T/m" -a 'def:/def;nx:/nx:noexec;rox:/rox:ro' -c '/bin/sh /probe.sh'
    cat > "$T/m/rootfs/probe.sh" <<'EOF'
for d in /def /nx /rox; do
    awk -v d="$d" '$5 == d { print "opts", d, $6 }' /proc/self/mountinfo
done
cp /bin/busybox /nx/true && /nx/true && echo NOEXEC-IGNORED
cp /bin/busybox /def/true && /def/true && echo EXEC-OK
EOF
    run_bundle runc "$T/m"
    local def nx rox
    def=$(awk '$1 == "opts" && $2 == "/def" {print $3}' "$T/m/out")
    nx=$(awk '$1 == "opts" && $2 == "/nx" {print $3}' "$T/m/out")
    rox=$(awk '$1 == "opts" && $2 == "/rox" {print $3}' "$T/m/out")
    has_opt() { case ",$1," in *",$2,"*) return 0 ;; esac; return 1; }
    check "default options are rw ($def)" has_opt "$def" rw
    check "default options have nosuid ($def)" has_opt "$def" nosuid
    check "default options have nodev ($def)" has_opt "$def" nodev
    check ":noexec is noexec ($nx)" has_opt "$nx" noexec
    check ":ro is ro ($rox)" has_opt "$rox" ro
    assert_no_grep "$T/m/out" -- NOEXEC-IGNORED "exec from a noexec volume fails"
    assert_grep "$T/m/out" -- EXEC-OK "exec from a default volume works"
    assert_exists "$VOLROOT/nx/true" "the copy landed in the volume on the host"
}

# A non-root container user owns its new volume and can write to it.
test_runc_user_owner() {
    require_runtime runc
    chmod 1777 "$MARK"
    make_bundle "$T/u" -a myapp:/myapp -c 'id -u; echo mine > /myapp/f && echo wrote'
    bundle_edit "$T/u" 'c["process"]["user"] = {"uid": 1234, "gid": 1234}'
    run_bundle runc "$T/u"
    assert_eq "$RC" 0 "exit status"
    assert_grep "$T/u/out" -- wrote "uid 1234 writes to its new volume"
    assert_eq "$(stat -c '%a %u:%g' "$VOLROOT/myapp" 2>/dev/null)" "755 1234:1234" "new volume mode/owner"
    assert_eq "$(stat -c '%u:%g' "$VOLROOT/myapp/f" 2>/dev/null)" "1234:1234" "file owner on the host"
}

# A container in a user namespace (root -> host 200000): the new volume
# belongs to the mapped ids and container root can write to it.
userns_owner() {
    local rt=$1
    require_runtime "$rt"
    chmod 1777 "$MARK"
    make_bundle "$T/n" -a myapp:/myapp -c 'echo rooted > /myapp/f && echo wrote; ls -ln /myapp'
    bundle_edit "$T/n" '
c["linux"]["namespaces"].append({"type": "user"})
c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
c["mounts"] = [m for m in c["mounts"] if m["destination"] != "/sys/fs/cgroup"]'
    run_bundle "$rt" "$T/n"
    assert_eq "$RC" 0 "$rt userns: exit status"
    assert_grep "$T/n/out" -- wrote "$rt userns: container root writes to its new volume"
    assert_eq "$(stat -c '%a %u:%g' "$VOLROOT/myapp" 2>/dev/null)" "755 200000:200000" "$rt userns: new volume mode/owner on the host"
    assert_eq "$(stat -c '%u:%g' "$VOLROOT/myapp/f" 2>/dev/null)" "200000:200000" "$rt userns: file owner on the host"
    assert_no_records "$rt userns"
}
test_runc_userns_owner() { userns_owner runc; }
test_crun_userns_owner() { userns_owner crun; }

# A read-only rootfs (the `runc spec` default, podman --read-only): the volume
# is still attached and writable, the rootfs stays read-only.
readonly_rootfs() {
    local kind=$1
    require_kind "$kind"
    local cmd='echo rw > /myapp/f && echo wrote; if touch /rootfs-write 2>/dev/null; then echo ROOTFS-WRITABLE; else echo ROOTFS-RO; fi'
    case $kind in
        runc|crun)
            make_bundle "$T/r" -a myapp:/myapp -c "$cmd"
            bundle_edit "$T/r" 'c["root"]["readonly"] = True'
            run_bundle "$kind" "$T/r" ;;
        podman-*)
            run_podman "${kind#podman-}" "$T/r" myapp:/myapp "$cmd" --read-only ;;
    esac
    assert_eq "$RC" 0 "$kind read-only rootfs: exit status"
    assert_grep "$T/r/out" -- wrote "$kind: volume writable on a read-only rootfs"
    assert_grep "$T/r/out" -- ROOTFS-RO "$kind: rootfs still read-only"
    assert_file_content "$VOLROOT/myapp/f" rw "$kind: file on the host"
    assert_no_records "$kind read-only rootfs"
}
test_readonly_rootfs_runc() { readonly_rootfs runc; }
test_readonly_rootfs_crun() { readonly_rootfs crun; }
test_readonly_rootfs_podman_runc() { readonly_rootfs podman-runc; }

# podman with a user namespace (--uidmap): same promise as above.
test_podman_userns_owner() {
    require_kind podman-runc
    chmod 1777 "$MARK"
    podman_setup
    # --rootfs is used as is: give it to the mapped root, as an image would be.
    chown -R 300000:300000 "$PODMAN_ROOTFS"
    run_podman runc "$T/p" myapp:/myapp 'echo rooted > /myapp/f && echo wrote' \
        --uidmap 0:300000:65536 --gidmap 0:300000:65536
    assert_eq "$RC" 0 "podman userns: exit status"
    assert_grep "$T/p/out" -- wrote "podman userns: container root writes to its new volume"
    assert_eq "$(stat -c '%a %u:%g' "$VOLROOT/myapp" 2>/dev/null)" "755 300000:300000" "podman userns: new volume mode/owner on the host"
    assert_eq "$(stat -c '%u:%g' "$VOLROOT/myapp/f" 2>/dev/null)" "300000:300000" "podman userns: file owner on the host"
    assert_no_records "podman userns"
}

E2E_TESTS+=(podman_userns_owner readonly_rootfs_runc readonly_rootfs_crun readonly_rootfs_podman_runc runc_mount_options runc_user_owner runc_userns_owner crun_userns_owner)
