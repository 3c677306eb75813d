# shellcheck shell=bash
# shellcheck disable=SC2016,SC2034,SC2317 # container code in single quotes; globals and helpers used across files
# Ownership (option U) and idmapped volumes (option idmap) with real runtimes:
# a non-root or user-namespaced container can write its volume with them and
# cannot without them; files land on the host with the ids expected.

# A root-owned volume with a root-owned file in it, and a symlink to a
# root-owned host file outside the volume.
owner_volume() { # NAME
    local v=$VOLROOT/$1
    mkdir -p "$v/sub" "$T/host"
    chmod 700 "$VOLROOT"
    chmod 755 "$v" "$v/sub"
    echo old > "$v/sub/old"
    echo host > "$T/host/secret"
    ln -s "$T/host/secret" "$v/link-to-host"
    chown -R 0:0 "$v" "$T/host"
}

# The container writes VOLUME/new and says WROTE, or says DENIED.
WRITE_CMD='if echo new > /data/new 2>/dev/null; then echo WROTE; else echo DENIED; fi; ls -ln /data /data/sub'

owner_of() { stat -c '%u:%g' "$1" 2>/dev/null || echo missing; }
marker_of() { getfattr --only-values -n trusted.oci-volume-hook.owner "$1" 2>/dev/null || echo none; }

userns_bundle() { # DIR — container root = host 100000, 65536 ids
    bundle_edit "$1" '
c["linux"]["namespaces"].append({"type": "user"})
c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
c["mounts"] = [m for m in c["mounts"] if m["destination"] != "/sys/fs/cgroup"]'
}

# uid 1000 without a user namespace: no U, no write; with U, writes, and the
# volume (not the host file behind the symlink) belongs to 1000:1000.
owner_uid1000() {
    local rt=$1
    require_runtime "$rt"
    require_cmd getfattr
    chmod 1777 "$MARK"
    owner_volume vol
    make_bundle "$T/no" -a 'vol:/data' -c "$WRITE_CMD"
    bundle_edit "$T/no" 'c["process"]["user"] = {"uid": 1000, "gid": 1000}'
    run_bundle "$rt" "$T/no"
    assert_grep "$T/no/out" -- DENIED "$rt uid 1000 without U cannot write a root-owned volume"
    assert_eq "$(owner_of "$VOLROOT/vol")" 0:0 "$rt without U: volume owner unchanged"

    make_bundle "$T/u" -a 'vol:/data:U' -c "$WRITE_CMD"
    bundle_edit "$T/u" 'c["process"]["user"] = {"uid": 1000, "gid": 1000}'
    run_bundle "$rt" "$T/u"
    assert_eq "$RC" 0 "$rt U: exit status"
    assert_grep "$T/u/out" -- WROTE "$rt uid 1000 with U writes its volume"
    assert_eq "$(owner_of "$VOLROOT/vol")" 1000:1000 "$rt U: volume root owner"
    assert_eq "$(owner_of "$VOLROOT/vol/sub/old")" 1000:1000 "$rt U: old file owner"
    assert_eq "$(owner_of "$VOLROOT/vol/new")" 1000:1000 "$rt U: new file owner on the host"
    assert_eq "$(stat -c '%u' "$VOLROOT/vol/link-to-host")" 1000 "$rt U: the symlink itself changed owner"
    assert_eq "$(owner_of "$T/host/secret")" 0:0 "$rt U: host file behind the symlink kept its owner"
    assert_eq "$(marker_of "$VOLROOT/vol")" 1000:1000 "$rt U: completion marker"
    # Restart: the root matches and the marker is set: no walk (a new
    # root-owned file is left alone, which proves it).
    echo later > "$VOLROOT/vol/later"
    run_bundle "$rt" "$T/u"
    assert_eq "$RC" 0 "$rt U restart: exit status"
    assert_eq "$(owner_of "$VOLROOT/vol/later")" 0:0 "$rt U restart: on-root-mismatch skipped the walk"
    assert_no_records "$rt uid 1000"
}
test_runc_owner_uid1000() { owner_uid1000 runc; }
test_crun_owner_uid1000() { owner_uid1000 crun; }

# A user-namespaced bundle (0 -> 100000): no option: no write; U: the volume
# becomes 100000:100000; idmap: on-disk ids stay container ids (0 and 1000).
owner_userns() {
    local rt=$1
    require_runtime "$rt"
    require_cmd getfattr
    chmod 1777 "$MARK"
    owner_volume plain
    owner_volume chowned
    owner_volume mapped

    make_bundle "$T/no" -a 'plain:/data' -c "$WRITE_CMD"
    userns_bundle "$T/no"
    run_bundle "$rt" "$T/no"
    assert_grep "$T/no/out" -- DENIED "$rt userns without U/idmap cannot write a host-root volume"

    make_bundle "$T/u" -a 'chowned:/data:U' -c "$WRITE_CMD"
    userns_bundle "$T/u"
    run_bundle "$rt" "$T/u"
    assert_eq "$RC" 0 "$rt userns U: exit status"
    assert_grep "$T/u/out" -- WROTE "$rt userns U: container root writes"
    assert_eq "$(owner_of "$VOLROOT/chowned")" 100000:100000 "$rt userns U: volume root on the host"
    assert_eq "$(owner_of "$VOLROOT/chowned/sub/old")" 100000:100000 "$rt userns U: old file on the host"
    assert_eq "$(owner_of "$VOLROOT/chowned/new")" 100000:100000 "$rt userns U: new file on the host"
    assert_eq "$(owner_of "$T/host/secret")" 0:0 "$rt userns U: host file behind the symlink"

    make_bundle "$T/i" -a 'mapped:/data:idmap' \
        -c "$WRITE_CMD; awk '\$5 == \"/data\" {print \"OPTS\", \$6}' /proc/self/mountinfo; mkdir /data/d && echo x > /data/d/f"
    userns_bundle "$T/i"
    run_bundle "$rt" "$T/i"
    assert_eq "$RC" 0 "$rt userns idmap: exit status"
    assert_grep "$T/i/out" -- WROTE "$rt userns idmap: container root writes"
    assert_grep "$T/i/out" -- idmapped "$rt userns idmap: the mount is idmapped"
    assert_eq "$(owner_of "$VOLROOT/mapped")" 0:0 "$rt userns idmap: no chown of the root"
    assert_eq "$(owner_of "$VOLROOT/mapped/sub/old")" 0:0 "$rt userns idmap: no chown of old files"
    assert_eq "$(owner_of "$VOLROOT/mapped/new")" 0:0 "$rt userns idmap: written by container root = on-disk 0"
    assert_eq "$(owner_of "$VOLROOT/mapped/d/f")" 0:0 "$rt userns idmap: nested file on-disk 0"
    # In the container, the old root-owned file shows as root's (0 0), not nobody.
    assert_grep "$T/i/out" -- " 0        0 " "$rt userns idmap: on-disk root is container root"

    # A non-root user inside the user namespace with idmap,U: the volume is
    # given to the container's own ids on disk (1000), seen as 1000 inside.
    make_bundle "$T/i1" -a 'mapped:/data:idmap,U' -c 'mkdir -p /data/mine && echo m > /data/mine/f && echo WROTE; stat -c "IN %u:%g" /data/sub/old'
    userns_bundle "$T/i1"
    bundle_edit "$T/i1" 'c["process"]["user"] = {"uid": 1000, "gid": 1000}'
    run_bundle "$rt" "$T/i1"
    assert_grep "$T/i1/out" -- WROTE "$rt userns idmap,U uid 1000: writes"
    assert_grep "$T/i1/out" -- "IN 1000:1000" "$rt userns idmap,U uid 1000: old files are its own inside"
    assert_eq "$(owner_of "$VOLROOT/mapped/sub/old")" 1000:1000 "$rt userns idmap,U: on-disk owner = container ids"
    assert_eq "$(owner_of "$VOLROOT/mapped/mine/f")" 1000:1000 "$rt userns idmap,U: new file on-disk 1000"
    assert_eq "$(marker_of "$VOLROOT/mapped")" 1000:1000 "$rt userns idmap,U: marker"
    assert_no_records "$rt userns owner"
}
test_runc_owner_userns() { owner_userns runc; }
test_crun_owner_userns() { owner_userns crun; }

# idmap without a user namespace is refused with a hint to use U; idmap on
# overlayfs is refused naming the file system.
test_runc_owner_idmap_refusals() {
    require_runtime runc
    owner_volume vol
    make_bundle "$T/n" -a 'vol:/data:idmap' -c true
    run_bundle runc "$T/n"
    assert_ne "$RC" 0 "idmap without userns: refused"
    assert_not_started "$T/n" n "idmap without userns"
    assert_said "$T/n" "has none" "idmap without userns: says why"
    assert_said "$T/n" "option U" "idmap without userns: suggests U"

    # An overlay mount as an admin volume that allows idmap (idmap is never
    # allowed on allowed_host_paths requests).
    mkdir -p "$T/ovl/lower" "$T/ovl/upper" "$T/ovl/work" "$T/ovl/merged"
    mount -t overlay overlay -o "lowerdir=$T/ovl/lower,upperdir=$T/ovl/upper,workdir=$T/ovl/work" "$T/ovl/merged" \
        || { skip "cannot mount overlayfs here"; }
    write_config "[volumes.ovl]
path = \"$T/ovl/merged\"
allow_idmap = true"
    make_bundle "$T/o" -a "ovl:/data:idmap" -c true
    userns_bundle "$T/o"
    run_bundle runc "$T/o"
    "$OVH_BIN" --config "$CFG" check --bundle "$T/o" > "$T/o/check.out" 2>&1
    assert_eq "$?" 1 "check of idmap on overlayfs: exit status (failed)"
    assert_grep "$T/o/check.out" -- "on overlayfs, which cannot be idmapped" "check of idmap on overlayfs"
    umount "$T/ovl/merged"
    assert_ne "$RC" 0 "idmap on overlayfs: refused"
    assert_said "$T/o" "overlayfs" "idmap on overlayfs: names the file system"
    assert_said "$T/o" "option U" "idmap on overlayfs: suggests U"
}

# runc kills a hook that runs past its timeout (SIGKILL): a U walk cut off
# that way leaves no completion marker, and the next start finishes it.
test_runc_owner_walk_killed_by_timeout() {
    require_runtime runc
    require_cmd getfattr
    chmod 1777 "$MARK"
    owner_volume big
    # Large enough that no machine walks it within 1 s (a quiet 2-core one
    # walked 300k in under 1 s).
    local n=${OWNER_E2E_FILES:-1200000}
    python3 - "$VOLROOT/big/tree" "$n" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
os.makedirs(root)
for i in range(n):
    if i % 1000 == 0:
        d = os.path.join(root, "d%d" % (i // 1000))
        os.mkdir(d)
    os.mknod(os.path.join(d, "f%d" % i), 0o100644)
PY
    # A stale marker from an earlier finished walk (root since changed).
    setfattr -n trusted.oci-volume-hook.owner -v 1000:1000 "$VOLROOT/big"
    make_bundle "$T/k" -a 'big:/data:U' -c "$WRITE_CMD"
    bundle_edit "$T/k" '
c["process"]["user"] = {"uid": 1000, "gid": 1000}
c["hooks"]["createRuntime"][0]["timeout"] = 1'
    run_bundle runc "$T/k"
    assert_ne "$RC" 0 "a walk of $n files is cut off by a 1 s hook timeout"
    assert_said "$T/k" "timeout" "runc says the hook timed out"
    local owned
    owned=$(find "$VOLROOT/big" -uid 1000 | wc -l)
    log "owned after the kill: $owned of $((n + n / 1000 + 5))"
    check "the walk was cut off mid-way ($owned entries owned)" test "$owned" -gt 0 -a "$owned" -lt "$n"
    assert_eq "$(marker_of "$VOLROOT/big")" none "killed walk: no completion marker"
    assert_eq "$(owner_of "$VOLROOT/big")" 0:0 "killed walk: the root is changed last"
    bundle_edit "$T/k" 'c["hooks"]["createRuntime"][0]["timeout"] = 120'
    run_bundle runc "$T/k"
    assert_eq "$RC" 0 "restart with a longer timeout: exit status"
    assert_grep "$T/k/out" -- WROTE "restart: uid 1000 writes"
    assert_eq "$(find "$VOLROOT/big" \( ! -uid 1000 -o ! -gid 1000 \) | wc -l)" 0 "restart: every entry owned by 1000:1000"
    assert_eq "$(marker_of "$VOLROOT/big")" 1000:1000 "restart: completion marker"
    assert_no_records "runc killed walk"
}

# podman: --user 1000:1000 with and without U; --uidmap with U and idmap.
owner_podman() {
    local rt=$1
    require_kind "podman-$rt"
    require_cmd getfattr
    chmod 1777 "$MARK"
    owner_volume pvol
    run_podman "$rt" "$T/pno" 'pvol:/data' "$WRITE_CMD" --user 1000:1000
    assert_grep "$T/pno/out" -- DENIED "podman($rt) --user 1000 without U cannot write"
    run_podman "$rt" "$T/pu" 'pvol:/data:U' "$WRITE_CMD" --user 1000:1000
    assert_eq "$RC" 0 "podman($rt) --user 1000 U: exit status"
    assert_grep "$T/pu/out" -- WROTE "podman($rt) --user 1000 with U writes"
    assert_eq "$(owner_of "$VOLROOT/pvol/new")" 1000:1000 "podman($rt) U: file owner on the host"

    owner_volume pmap
    owner_volume pidm
    run_podman "$rt" "$T/pmu" 'pmap:/data:U' "$WRITE_CMD" --uidmap 0:100000:65536 --gidmap 0:100000:65536
    assert_eq "$RC" 0 "podman($rt) --uidmap U: exit status"
    assert_grep "$T/pmu/out" -- WROTE "podman($rt) --uidmap with U writes"
    assert_eq "$(owner_of "$VOLROOT/pmap/new")" 100000:100000 "podman($rt) --uidmap U: host ids"
    run_podman "$rt" "$T/pmi" 'pidm:/data:idmap' "$WRITE_CMD" --uidmap 0:100000:65536 --gidmap 0:100000:65536
    assert_eq "$RC" 0 "podman($rt) --uidmap idmap: exit status"
    assert_grep "$T/pmi/out" -- WROTE "podman($rt) --uidmap with idmap writes"
    assert_eq "$(owner_of "$VOLROOT/pidm/new")" 0:0 "podman($rt) --uidmap idmap: on-disk ids"
}
test_podman_runc_owner() { owner_podman runc; }
test_podman_crun_owner() { owner_podman crun; }

E2E_TESTS+=(runc_owner_uid1000 crun_owner_uid1000 runc_owner_userns crun_owner_userns
    runc_owner_idmap_refusals runc_owner_walk_killed_by_timeout podman_runc_owner podman_crun_owner)
