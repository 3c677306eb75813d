#!/bin/sh
# The hook attaches named volume myapp at /myapp (plain bind, no labelling options) into confined runc containers.
#  1. volume keeps its host label (var_lib_t): container c1,c2 is DENIED, with an AVC -> the tier sees label bugs
#  2. after chcon container_file_t:s0:c1,c2 from outside: the same container reads and writes it
#  3. a container with other categories (c3,c4) is DENIED (MCS separation)
# (also: the hook really runs at createRuntime and poststop, and the helpers work with crun)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
V=$OVH_VOLUMES/myapp
rm -rf "$V"; mkdir -p "$V"; echo ovh-secret > "$V/data.txt"; restorecon -R "$OVH_VOLUMES"
echo "    volume: $(ls -Zd "$V")"
avc_mark
ovh_run vol-plain c1,c2 "myapp:/myapp" 'grep /myapp /proc/mounts; cat /myapp/data.txt'; rc=$?
check "unlabelled volume: container cat fails (rc=$rc)" test "$rc" = 1
check_out "unlabelled volume: the hook mounted it at /myapp" ' /myapp '
check_out "unlabelled volume: read is 'Permission denied'" "/myapp/data.txt'?: Permission denied"
check_avc "unlabelled volume: AVC container_t:s0:c1,c2 -> var_lib_t logged" 'scontext=system_u:system_r:container_t:s0:c1,c2 tcontext=[^ ]*:var_lib_t:'

chcon -R "$(ovh_label c1,c2)" "$V"
log_mark
echo "    volume: $(ls -Zd "$V")"
ovh_run vol-c12 c1,c2 "myapp:/myapp" 'cat /myapp/data.txt && echo from-ctr > /myapp/new.txt'; rc=$?
check "labelled c1,c2: container c1,c2 reads and writes (rc=$rc)" test "$rc" = 0
check_out "labelled c1,c2: container read the data" '^ovh-secret$'
check "labelled c1,c2: the write reached the host directory" grep -qx from-ctr "$V/new.txt"
check_log "the hook ran at prestart (createRuntime) for vol-c12" 'oci-volume-hook.*vol-c12.*prestart'
check_log "the hook ran at poststop for vol-c12" 'oci-volume-hook.*vol-c12.*poststop'
OVH_RUNTIME=crun ovh_run vol-crun c1,c2 "myapp:/myapp" 'cat /myapp/data.txt'; rc=$?
check "labelled c1,c2: same under crun (rc=$rc)" test "$rc" = 0

ovh_run vol-c34 c3,c4 "myapp:/myapp" 'cat /myapp/data.txt'; rc=$?
check "labelled c1,c2: container c3,c4 is denied (rc=$rc)" test "$rc" = 1
check_out "labelled c1,c2: c3,c4 read is 'Permission denied'" "/myapp/data.txt'?: Permission denied"
# (no AVC check here: this policy does not audit the MCS constraint denial; the c1,c2 run above is the control)
vm_done
