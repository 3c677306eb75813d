#!/bin/sh
# SELinux enforcing: NFS stores no labels, so z/Z become context= on the hook's mount. A confined container
# reads and writes an NFS volume mounted with its context; without z/Z (nfs_t) it is denied, and the hook's log
# names the container_use_nfs / virt_use_nfs booleans. Two containers with different private contexts (Z) on the
# same export at the same time both work (a separate superblock, nosharecache where the kernel needs it).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nfs-lib.sh"
E=/srv/nfs
mkdir -p "$E/sel"; echo "labelled-by-mount" > "$E/sel/data.txt"
check "SELinux is enforcing" test "$(cat /sys/fs/selinux/enforce)" = 1
check "NFS server with exports for the hook's tests" nfs_export "$E"
ovh_config '[volumes.sel]' 'nfs = "nfs-server:/"' 'options = "vers=4.2"' 'subdir = "sel"'

ovh_run sel-Z c1,c2 "sel:/data:Z" "cat /data/data.txt && echo private > /data/Z.txt"; rc=$?
check "Z: confined container c1,c2 reads and writes (context=...:s0:c1,c2) (rc=$rc)" test "$rc" = 0
ovh_run sel-z c3,c4 "sel:/data:z" "cat /data/data.txt && echo shared > /data/z.txt && grep ' /data ' /proc/self/mountinfo"; rc=$?
check "z: confined container c3,c4 reads and writes (context=...:s0) (rc=$rc)" test "$rc" = 0
check_out "z: the mount's context is container_file_t:s0" ' /data .*context="?system_u:object_r:container_file_t:s0[", ]'

avc_mark
ovh_run sel-none c1,c2 "sel:/data" "cat /data/data.txt"; rc=$?
check "no z/Z: nfs_t, the confined container is denied (rc=$rc)" test "$rc" = 1
check_avc "no z/Z: the denial is an AVC on nfs_t" "container_t.*nfs_t"
check_log "no z/Z: the hook warns and names container_use_nfs / virt_use_nfs" "container_use_nfs.*virt_use_nfs"

# the same export held with another context (an administrator's mount on the host) while the hook mounts with Z
mkdir -p /mnt/other
mount -t nfs -o "vers=4.2,context=\"$(ovh_label c7,c8)\"" nfs-server:/sel /mnt/other
ovh_run sel-Z2 c1,c2 "sel:/data:Z" "cat /data/data.txt && grep ' /data ' /proc/self/mountinfo"; rc=$?
check "Z while the export is mounted with another context: works (rc=$rc)" test "$rc" = 0
check_out "... with the container's own context" ' /data .*context="?system_u:object_r:container_file_t:s0:c1,c2'
check "... and the host's mount keeps its context" grep -q 'context="*system_u:object_r:container_file_t:s0:c7,c8' /proc/self/mountinfo
grep -q 'retrying with nosharecache' "$OVH_SYSLOG" && echo "    (this kernel refused the shared superblock: the hook retried with nosharecache)"
umount /mnt/other

# check shows the context without mounting
ovh_bundle sel-check c1,c2 "sel:/data:Z" true
out=$("$OVH_HOOK" --config "$OVH_CONFIG" check --bundle "$OVH_BUNDLE" 2>&1); rc=$?
echo "$out" | sed 's/^/    check| /'
check "check exits 0 for an allowed NFS volume (rc=$rc)" test "$rc" = 0
check "check shows the resolved address" sh -c "printf '%s' \"\$1\" | grep -q 'nfs-server resolves to 10.100.0.1'" _ "$out"
check "check shows the quoted context" sh -c "printf '%s' \"\$1\" | grep -q 'context=\"system_u:object_r:container_file_t:s0:c1,c2\"'" _ "$out"
check "check mounted nothing" sh -c "! grep -q ' nfs4 nfs-server:/ ' /proc/self/mountinfo"
vm_done
