# shellcheck shell=bash
# shellcheck disable=SC2016,SC2012,SC2034,SC2317 # container code in single quotes; ls of test dirs; globals and helpers used across files
# Volume lifecycle for operators (issue 17): volumes create, rm, prune,
# export and import, against real runc containers holding volumes.

ovh() { "$OVH_BIN" --config "$CFG" "$@"; }

# A runc container that stays created (its createRuntime hook ran, its
# process waits for `runc start`): a live holder. Sets HOLDER.
hold() { # DIR ANNOTATION
    make_bundle "$1" -a "$2" -c 'sleep 300' || { fail "make_bundle $1"; return 1; }
    new_id
    HOLDER=$NEW_ID
    track runc "$HOLDER"
    rt_ctl runc create --bundle "$1" "$HOLDER" < /dev/null > "$1/out" 2> "$1/err"
    assert_eq "$?" 0 "runc create $HOLDER (holds $2)"
}

# The listing that must match byte for byte after a round trip: names,
# types, owners, modes, link counts, symlink targets, content, xattrs.
tree_listing() { # DIR
    (cd "$1" && find . -printf '%p %y %U:%G %m %n %l\n' | sort \
        && find . -type f -print0 | sort -z | xargs -0 -r sha256sum \
        && getfattr -R -h -d -m - . 2>/dev/null)
}

test_lifecycle_create_then_use_runc() {
    require_runtime runc
    ovh volumes create data --owner 1000:1000 --mode 0750 > "$T/create.out" 2> "$T/create.err"
    assert_eq "$?" 0 "volumes create"
    assert_file_content "$T/create.out" data "create prints the name"
    assert_eq "$(stat -c '%u:%g %a' "$VOLROOT/data")" "1000:1000 750" "owner and mode of the new volume"
    ovh volumes create data --owner 1000:1000 > /dev/null 2>&1
    assert_eq "$?" 0 "create again with the same settings (idempotent)"
    ovh volumes create data --owner 1:1 --mode 0700 > "$T/diff.out" 2> "$T/diff.err"
    assert_eq "$?" 1 "create with other settings"
    assert_grep "$T/diff.err" -- "owner 1000:1000, not 1:1; mode 0750, not 0700" "the error names each difference"
    assert_eq "$(wc -c < "$T/diff.out")" 0 "nothing on stdout for an error"
    write_config '[volumes.adm]' "path = \"$T\""
    ovh volumes create adm > /dev/null 2> "$T/adm.err"
    assert_eq "$?" 2 "create of an admin path volume"
    assert_grep "$T/adm.err" -- "admin-defined volume [volumes.adm] path" "says it is an admin volume"
    ovh volumes create ../x > /dev/null 2> "$T/bad.err"
    assert_eq "$?" 2 "create of a name the grammar refuses"
    assert_absent "$T/x" "nothing made beside volumes_root"
    # The container's root has no CAP_DAC_OVERRIDE: a root-owned volume.
    write_config
    ovh volumes create app > /dev/null 2>&1
    assert_eq "$(stat -c '%u:%g %a' "$VOLROOT/app")" "0:0 755" "default owner and mode (as auto-create)"
    run_any runc "$T/use" app:/data 'echo used > /data/f && echo wrote'
    assert_eq "$RC" 0 "a container uses the created volume"
    assert_file_content "$VOLROOT/app/f" used "its write landed in the volume"
    ovh volumes inspect app > "$T/inspect.out" 2>&1
    assert_grep "$T/inspect.out" -- "starts:     1" "inspect counts the start"
    assert_no_grep "$T/inspect.out" -- "never recorded" "inspect shows last attach and detach"
    ovh volumes inspect app --format json > "$T/inspect.json" 2>/dev/null
    assert_eq "$(jq -r '.starts' "$T/inspect.json")" 1 "inspect json: starts"
    check "inspect json: last_detach >= last_attach" \
        jq -e '.last_detach >= .last_attach' "$T/inspect.json"
}

test_lifecycle_rm_held_runc() {
    require_runtime runc
    ovh volumes create data > /dev/null 2>&1
    echo keep > "$VOLROOT/data/f"
    hold "$T/h" data:/data
    ovh volumes rm --force data > "$T/rm1.out" 2> "$T/rm1.err"
    assert_eq "$?" 1 "rm --force while a container holds it"
    assert_grep "$T/rm1.err" -- "in use by running container ${HOLDER:0:12}" "names the holder by its 12-character id"
    assert_file_content "$VOLROOT/data/f" keep "the volume is untouched"
    # Export refuses the live writer unless --live.
    ovh volumes export data -o "$T/d.tar" > /dev/null 2> "$T/exp.err"
    assert_eq "$?" 1 "export with a live writer"
    assert_grep "$T/exp.err" -- "may write to it" "export says why"
    ovh volumes export data -o "$T/d.tar" --live > /dev/null 2>&1
    assert_eq "$?" 0 "export --live"
    rt_ctl runc delete -f "$HOLDER" > /dev/null 2>&1
    ovh volumes rm data < /dev/null > /dev/null 2> "$T/rm2.err"
    assert_eq "$?" 2 "rm of a non-empty volume without a terminal and without --force"
    assert_grep "$T/rm2.err" -- "pass --force" "says how"
    ovh volumes rm --force data > "$T/rm3.out" 2> "$T/rm3.err"
    assert_eq "$?" 0 "rm --force after the container stopped"
    assert_file_content "$T/rm3.out" data "rm prints the name"
    assert_absent "$VOLROOT/data" "volume removed"
    ovh volumes create empty > /dev/null 2>&1
    ovh volumes rm empty < /dev/null > /dev/null 2>&1
    assert_eq "$?" 0 "an empty volume needs no question"
    write_config '[volumes.adm]' "path = \"$T/h\""
    ovh volumes rm --force adm > /dev/null 2> "$T/adm.err"
    assert_eq "$?" 2 "rm of an admin path volume"
    assert_grep "$T/adm.err" -- "acts only on managed volumes" "says so"
    assert_exists "$T/h/config.json" "admin path untouched"
}

test_lifecycle_prune_runc() {
    require_runtime runc
    write_config '[volumes.adm]' 'access = "shared"'
    run_any runc "$T/u" used:/u 'echo x > /u/f'
    assert_eq "$RC" 0 "a container auto-creates and leaves 'used'"
    run_any runc "$T/a" adm:/a 'echo x > /a/f'
    assert_eq "$RC" 0 "admin-defined managed volume 'adm' used"
    ovh volumes create fresh > /dev/null 2>&1
    hold "$T/h" held:/h
    ovh volumes prune < /dev/null > "$T/p0.out" 2> "$T/p0.err"
    assert_eq "$?" 2 "prune without a terminal and without --force"
    assert_exists "$VOLROOT/used" "nothing pruned without --force"
    ovh volumes prune --force --filter until=1h > "$T/p1.out" 2>&1
    assert_eq "$?" 0 "prune --filter until=1h"
    assert_exists "$VOLROOT/used" "a volume used a moment ago is kept by until=1h"
    ovh volumes prune --force > "$T/p2.out" 2> "$T/p2.err"
    assert_eq "$?" 0 "prune --force"
    assert_absent "$VOLROOT/used" "unused auto-created volume pruned"
    assert_absent "$VOLROOT/fresh" "never-used created volume pruned"
    assert_exists "$VOLROOT/held" "volume of a live container kept"
    assert_exists "$VOLROOT/adm/f" "admin-defined volume kept"
    assert_grep "$T/p2.out" -- "Total reclaimed space:" "prune prints the space freed"
    assert_grep "$T/p2.out" -- "used" "prune prints what it removed"
    assert_no_grep "$T/p2.out" -- "held" "prune does not list the held volume"
}

test_lifecycle_export_import_roundtrip() {
    require_root
    require_cmd getfattr setfattr jq
    [ -x "$OVH_BIN" ] || skip "hook binary $OVH_BIN is missing"
    ovh volumes create src --owner 1000:1000 --mode 0750 > /dev/null 2>&1
    local v=$VOLROOT/src
    mkdir -p "$v/dir/sub"
    printf 'hello\n' > "$v/dir/file"
    head -c 100000 /dev/urandom > "$v/big"
    ln "$v/dir/file" "$v/hardlink"
    ln -s /etc "$v/to-etc"
    ln -s dir/file "$v/rel-link"
    mkfifo "$v/fifo"
    chown 1234:5678 "$v/dir/file"
    chmod 0640 "$v/dir/file"
    chown 42:43 "$v/dir/sub"
    chmod 2775 "$v/dir/sub"
    chown -h 7:8 "$v/to-etc"
    setfattr -n user.color -v blue "$v/dir/file"
    setfattr -n user.empty "$v/big"
    setfattr -n trusted.oci-volume-hook.owner -v 1000:1000 "$v"
    setfattr -n trusted.app -v 0sAAEC "$v/dir"
    tree_listing "$v" > "$T/before"
    ovh volumes export src -o "$T/src.tar" > "$T/exp.out" 2> "$T/exp.err"
    assert_eq "$?" 0 "export -o"
    assert_grep "$T/exp.out" -- "exported src to" "export report"
    ovh volumes import dst "$T/src.tar" > "$T/imp.out" 2> "$T/imp.err"
    assert_eq "$?" 0 "import FILE into a new volume"
    tree_listing "$VOLROOT/dst" > "$T/after"
    if cmp -s "$T/before" "$T/after"; then
        pass "round trip: names, owners, modes, links, content and xattrs byte for byte"
    else
        fail "round trip differs: $(diff "$T/before" "$T/after" | head -20 | tr '\n' ' ')"
    fi
    assert_eq "$(stat -c %i "$VOLROOT/dst/hardlink")" "$(stat -c %i "$VOLROOT/dst/dir/file")" "hard link kept"
    assert_eq "$(getfattr --only-values -n trusted.app "$VOLROOT/dst/dir" | od -An -tx1 | tr -d ' ')" 000102 "trusted.* value kept"
    # stdout to stdin, as podman's pipe.
    ovh volumes export src 2>/dev/null | ovh volumes import dst2 - > /dev/null 2> "$T/imp2.err"
    assert_eq "$?" 0 "export | import -"
    tree_listing "$VOLROOT/dst2" > "$T/after2"
    check "pipe round trip identical" cmp -s "$T/before" "$T/after2"
    ovh volumes import dst "$T/src.tar" > /dev/null 2> "$T/imp3.err"
    assert_eq "$?" 1 "import into a non-empty volume"
    assert_grep "$T/imp3.err" -- "is not empty; nothing imported" "says why"
}

test_lifecycle_import_hostile() {
    require_root
    require_cmd python3
    [ -x "$OVH_BIN" ] || skip "hook binary $OVH_BIN is missing"
    local before=$T/.host-before
    mkdir -p "$VOLROOT" && chmod 700 "$VOLROOT"
    T_OUT=$T python3 - <<'EOF'
import io, os, tarfile
d = os.environ["T_OUT"]
def mk(name, members):
    with tarfile.open(os.path.join(d, name + ".tar"), "w", format=tarfile.GNU_FORMAT) as t:
        for m, data in members:
            t.addfile(m, io.BytesIO(data) if data is not None else None)
def f(n, data=b"pwned\n", mode=0o644):
    i = tarfile.TarInfo(n); i.size = len(data); i.mode = mode; return (i, data)
def sym(n, target):
    i = tarfile.TarInfo(n); i.type = tarfile.SYMTYPE; i.linkname = target; return (i, None)
def dev(n):
    i = tarfile.TarInfo(n); i.type = tarfile.CHRTYPE; i.devmajor = 1; i.devminor = 3; return (i, None)
def hard(n, target):
    i = tarfile.TarInfo(n); i.type = tarfile.LNKTYPE; i.linkname = target; return (i, None)
mk("dotdot", [f("ok"), f("../x")])
mk("absolute", [f("/etc/ovh-e2e-pwned")])
mk("symlink", [sym("lnk", "/etc"), f("lnk/ovh-e2e-pwned")])
mk("device", [dev("null")])
mk("setuid", [f("suid", mode=0o4755)])
mk("hardlink", [hard("h", "../../../etc/passwd")])
mk("escape", [f("a\x1b[31mred/../../x")])
EOF
    snapshot_host "$before"
    local passwd_before
    passwd_before=$(stat -c '%i %h %Y' /etc/passwd)
    local t why
    for t in dotdot:"a \`..\` component would escape the volume" \
             absolute:"an absolute path would escape the volume" \
             symlink:"leads through a symlink in the archive" \
             device:"is a device node; refused without --preserve-special" \
             setuid:"is setuid/setgid; refused without --preserve-special" \
             hardlink:"hard link target: a \`..\` component would escape" \
             escape:'entry "a\u{1b}[31mred/../../x"'; do
        why=${t#*:}; t=${t%%:*}
        ovh volumes import "h-$t" "$T/$t.tar" > "$T/$t.out" 2> "$T/$t.err"
        assert_eq "$?" 2 "hostile tar '$t' refused"
        assert_grep "$T/$t.err" -- "$why" "$t: says why"
        assert_grep "$T/$t.err" -- "nothing imported" "$t: says nothing was imported"
        assert_absent "$VOLROOT/h-$t" "$t: the volume it created is gone again"
        assert_eq "$(wc -c < "$T/$t.out")" 0 "$t: nothing on stdout"
    done
    assert_no_grep "$T/escape.err" -- $'\x1b' "the entry name is escaped"
    assert_absent /etc/ovh-e2e-pwned "nothing written to /etc"
    assert_absent "$T/x" "nothing written beside volumes_root"
    assert_absent "$VOLROOT/x" "nothing written in volumes_root"
    assert_eq "$(stat -c '%i %h %Y' /etc/passwd)" "$passwd_before" "/etc/passwd untouched (no new link)"
    assert_host_unchanged "$before" "hostile imports"
}

test_lifecycle_rm_symlink_and_bind_mount() {
    require_root
    [ -x "$OVH_BIN" ] || skip "hook binary $OVH_BIN is missing"
    ovh volumes create v > /dev/null 2>&1
    local v=$VOLROOT/v etc_before
    mkdir -p "$v/deep/er" "$v/mnt" "$T/bindsrc"
    echo precious > "$T/bindsrc/keep"
    echo data > "$v/deep/er/f"
    ln -s /etc "$v/etc-link"
    ln -s /etc "$v/deep/er/etc-link2"
    etc_before=$(ls -A /etc | md5sum)
    mount --bind "$T/bindsrc" "$v/mnt" || { fail "bind mount"; return; }
    ovh volumes rm --force v > /dev/null 2> "$T/rm1.err"
    assert_eq "$?" 1 "rm of a volume holding a bind mount"
    assert_grep "$T/rm1.err" -- "holds the mount point $v/mnt" "names the mount point"
    assert_exists "$v/deep/er/f" "nothing removed before the refusal"
    assert_file_content "$T/bindsrc/keep" precious "bind mount target untouched"
    umount "$v/mnt"
    ovh volumes rm --force v > /dev/null 2> "$T/rm2.err"
    assert_eq "$?" 0 "rm after unmounting"
    assert_absent "$v" "volume removed"
    assert_file_content "$T/bindsrc/keep" precious "bind mount target still untouched"
    assert_eq "$(ls -A /etc | md5sum)" "$etc_before" "/etc untouched through the symlinks"
    assert_exists /etc/passwd "/etc/passwd still there"
}

E2E_TESTS+=(lifecycle_create_then_use_runc lifecycle_rm_held_runc lifecycle_prune_runc
    lifecycle_export_import_roundtrip lifecycle_import_hostile lifecycle_rm_symlink_and_bind_mount)
