#!/bin/sh
# z / Z through podman (runc, hooks.d as shipped): podman sets process.selinuxLabel and linux.mountLabel itself
# from --security-opt label=level:...; the hook relabels from the bundle it is given.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sel-lib.sh"
ovh_config
V=$OVH_VOLUMES/selpod
rm -rf "$V"; mkdir -p "$V"; echo pod-secret > "$V/data.txt"; restorecon -R "$OVH_VOLUMES"
ovh_podman selpod-plain c1,c2 "selpod:/data" 'cat /data/data.txt'; rc=$?
check "podman, no z/Z: the container cannot read the volume (rc=$rc)" test "$rc" != 0
check_out "podman, no z/Z: Permission denied" "Permission denied"
ovh_podman selpod-z12 c1,c2 "selpod:/data:Z" 'cat /data/data.txt && echo from-pod > /data/new.txt'; rc=$?
check "podman, Z: container c1,c2 reads and writes (rc=$rc)" test "$rc" = 0
check "podman, Z: volume labelled container_file_t:s0:c1,c2" test "$(label_of "$V/data.txt")" = "$(ovh_label c1,c2)"
check "podman, Z: the write reached the host" grep -qx from-pod "$V/new.txt"
ovh_podman selpod-c34 c3,c4 "selpod:/data" 'cat /data/data.txt'; rc=$?
check "podman, Z c1,c2 volume: container c3,c4 cannot read it (rc=$rc)" test "$rc" != 0
ovh_podman selpod-s34 c3,c4 "selpod:/data:z" 'cat /data/data.txt'; rc=$?
check "podman, z: container c3,c4 reads once the volume is shared (rc=$rc)" test "$rc" = 0
check "podman, z: volume labelled container_file_t:s0" test "$(label_of "$V/data.txt")" = "$(ovh_label)"
vm_done
