#!/bin/sh
# z / Z under SELinux enforcing: the hook relabels volumes so that confined runc containers (container_t with MCS
# categories) can use them, and keeps MCS separation between containers.
#  1. no z/Z: the volume keeps its host label (var_lib_t): Permission denied with an AVC (the test can fail)
#  2. Z from a c1,c2 container: read and write; label container_file_t:s0:c1,c2 and the completion marker on the root
#  3. a c3,c4 container cannot read that volume (no option); Z from c3,c4 while the c1,c2 container runs is refused,
#     naming the container that holds it and suggesting z; once it stopped, Z from c3,c4 takes the volume over
#  4. z: label container_file_t:s0; containers c1,c2 and c3,c4 both read and write; a file one container creates
#     carries its categories, and the walk at the next start (z default: every start) shares it; with the admin's
#     relabel = "on-change" it stays private to its creator (the trade-off of O(1) restarts)
#  5. the read-only "operations" container (c7,c8, ro,z) reads everything the others wrote and cannot write it
#  6. a hand-written bundle without linux.mountLabel: `check` targets the policy's lxc_contexts `file` context
#  7. the hook refuses to relabel a system path (z on an allowed host path /srv): clear error, nothing relabelled
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sel-lib.sh"
ovh_config 'log_level = "debug"' 'allowed_host_paths = ["/srv"]'

# --- 1. no z/Z -------------------------------------------------------------------------------------------------
P=$OVH_VOLUMES/selplain
rm -rf "$P"; mkdir -p "$P"; echo plain-secret > "$P/data.txt"; restorecon -R "$OVH_VOLUMES"
echo "    volume: $(ls -Zd "$P")"
avc_mark
ovh_run sel-plain c1,c2 "selplain:/data" 'cat /data/data.txt'; rc=$?
check "no z/Z: the container cannot read the volume (rc=$rc)" test "$rc" = 1
check_out "no z/Z: Permission denied" "Permission denied"
check_avc "no z/Z: AVC container_t:s0:c1,c2 -> var_lib_t" 'scontext=system_u:system_r:container_t:s0:c1,c2 tcontext=[^ ]*:var_lib_t:'
check "no z/Z: the hook left the label alone" sh -c "ls -Zd '$P/data.txt' | grep -q var_lib_t"

# --- 2. Z --------------------------------------------------------------------------------------------------------
V=$OVH_VOLUMES/selpriv
rm -rf "$V"; mkdir -p "$V/sub"; echo priv-secret > "$V/data.txt"; ln -s /etc/shadow "$V/sub/link"
restorecon -R "$OVH_VOLUMES"
ovh_run sel-z12 c1,c2 "selpriv:/data:Z" 'cat /data/data.txt && echo from-c12 > /data/new.txt'; rc=$?
check "Z: container c1,c2 reads and writes its volume (rc=$rc)" test "$rc" = 0
check_out "Z: read the data" '^priv-secret$'
check "Z: the write reached the host" grep -qx from-c12 "$V/new.txt"
echo "    volume: $(ls -Zd "$V") marker=$(marker_of "$V")"
check "Z: root labelled container_file_t:s0:c1,c2" test "$(label_of "$V")" = "$(ovh_label c1,c2)"
check "Z: files labelled too" test "$(label_of "$V/data.txt")" = "$(ovh_label c1,c2)"
check "Z: the symlink itself is labelled" sh -c "ls -Zd '$V/sub/link' | grep -q 'container_file_t:s0:c1,c2'"
check_not "Z: the symlink's target (/etc/shadow) is not" sh -c "ls -Z /etc/shadow | grep -q container_file_t"
check "Z: completion marker = the label" test "$(marker_of "$V")" = "$(ovh_label c1,c2)"
check_log "Z: the hook logged the relabel" 'sel-z12.*relabelled .*selpriv to system_u:object_r:container_file_t:s0:c1,c2'
ovh_run sel-z12b c1,c2 "selpriv:/data:Z" 'cat /data/new.txt'; rc=$?
check "Z: second start of c1,c2 reads (rc=$rc)" test "$rc" = 0
check_log "Z: second start skipped the walk" 'sel-z12b.*skipped'

# --- 3. MCS separation, and Z held by a running container --------------------------------------------------------
ovh_run sel-c34 c3,c4 "selpriv:/data" 'cat /data/data.txt'; rc=$?
check "Z c1,c2 volume: container c3,c4 cannot read it (rc=$rc)" test "$rc" = 1
check_out "Z c1,c2 volume: c3,c4 gets Permission denied" "Permission denied"
sel_start sel-hold c1,c2 "selpriv:/data:Z" 'sleep 60'
check "Z: holder c1,c2 started" sh -c "$OVH_RUNTIME state sel-hold | grep -q running"
ovh_run sel-steal c3,c4 "selpriv:/data:Z" 'cat /data/data.txt'; rc=$?
check "Z held by a running c1,c2 container: Z from c3,c4 refused (rc=$rc)" test "$rc" = 125
check_out "the refusal names the holder and suggests z" 'in use by running container sel-hold .*use z'
check "the refusal left the label alone" test "$(label_of "$V")" = "$(ovh_label c1,c2)"
sel_stop sel-hold
ovh_run sel-take c3,c4 "selpriv:/data:Z" 'cat /data/data.txt'; rc=$?
check "holder stopped: Z from c3,c4 takes the volume over (rc=$rc)" test "$rc" = 0
check "volume now container_file_t:s0:c3,c4" test "$(label_of "$V/data.txt")" = "$(ovh_label c3,c4)"

# --- 4. z --------------------------------------------------------------------------------------------------------
S=$OVH_VOLUMES/selshared
rm -rf "$S"; mkdir -p "$S"; echo shared-data > "$S/data.txt"; restorecon -R "$OVH_VOLUMES"
ovh_run sel-s12 c1,c2 "selshared:/data:z" 'cat /data/data.txt && echo from-c12 > /data/c12.txt'; rc=$?
check "z: container c1,c2 reads and writes (rc=$rc)" test "$rc" = 0
check "z: label container_file_t:s0 (no categories)" test "$(label_of "$S/data.txt")" = "$(ovh_label)"
# A file a container creates carries that container's categories (kernel rule) ...
check "z: c1,c2's new file carries s0:c1,c2 (kernel rule)" test "$(label_of "$S/c12.txt")" = "$(ovh_label c1,c2)"
# ... so a z volume is walked at every start by default (relabel unset): the next container shares it.
ovh_run sel-s34 c3,c4 "selshared:/data:z" 'cat /data/data.txt /data/c12.txt && echo from-c34 > /data/c34.txt'; rc=$?
check "z: container c3,c4 reads the shared data and c1,c2's file, and writes (rc=$rc)" test "$rc" = 0
check_out "z: c3,c4 read the shared data" '^shared-data$'
check_out "z: c3,c4 read c1,c2's file" '^from-c12$'
check "z: c1,c2's file relabelled shared at c3,c4's start" test "$(label_of "$S/c12.txt")" = "$(ovh_label)"
check_log "z (relabel unset): the hook walked at start" 'sel-s34.*relabelled .*selshared'
# relabel = "on-change" is the admin's opt-in O(1) restart for z: the documented trade-off is that c3,c4's
# new file then stays private to its creator.
ovh_config 'log_level = "debug"' 'allowed_host_paths = ["/srv"]' 'relabel = "on-change"'
ovh_run sel-s12b c1,c2 "selshared:/data:z" 'cat /data/c34.txt'; rc=$?
check "z, relabel = on-change: c1,c2 cannot read c3,c4's new file (rc=$rc)" test "$rc" != 0
check "z, relabel = on-change: c3,c4's file keeps s0:c3,c4" test "$(label_of "$S/c34.txt")" = "$(ovh_label c3,c4)"
ovh_config 'log_level = "debug"' 'allowed_host_paths = ["/srv"]'

# --- 5. read-only operations container ---------------------------------------------------------------------------
ovh_run sel-ops c7,c8 "selshared:/data:ro,z" 'cat /data/data.txt /data/c12.txt /data/c34.txt; echo x > /data/ops.txt'; rc=$?
check_out "ops (ro, c7,c8): reads the shared volume" '^shared-data$'
check_out "ops (ro, c7,c8): reads what c1,c2 and c3,c4 wrote" '^from-c34$'
check_out "ops (ro, c7,c8): cannot write it" 'Read-only file system'
check_not "ops: nothing written" test -e "$S/ops.txt"

# --- 6. no mountLabel: the policy's container file context -------------------------------------------------------
ovh_bundle sel-nolabel c1,c2 "selshared:/data:z" 'true'
sed -i '/"mountLabel"/d' "$OVH_BUNDLE/config.json"
out=$("$OVH_HOOK" --config "$OVH_CONFIG" check --bundle "$OVH_BUNDLE" 2>&1); echo "$out" | sed 's/^/    check| /'
lxc=$(sed -n 's/^file *= *"\(.*\)"/\1/p' /etc/selinux/default/contexts/lxc_contexts)
check "no mountLabel: target is lxc_contexts file ($lxc)" sh -c "printf '%s' \"\$1\" | grep -q 'target $lxc,'" _ "$out"
check "check shows the walk decision for the z volume (relabel unset: every start)" sh -c "printf '%s' \"\$1\" | grep -q 'walk: would run'" _ "$out"

# --- 7. system path ----------------------------------------------------------------------------------------------
ovh_run sel-sys c1,c2 "/srv:/data:z" 'true'; rc=$?
check "z on /srv: refused (rc=$rc)" test "$rc" = 125
check_out "z on /srv: says it is a system path" 'refusing to relabel: /srv is a system path'
check_not "z on /srv: /srv not relabelled" sh -c "ls -Zd /srv | grep -q container_file_t"
vm_done
