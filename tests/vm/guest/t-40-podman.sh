#!/bin/sh
# podman with the repository's hooks.d entries (verbatim), SELinux enforcing: the hook attaches a volume into a
# podman container at level s0:c1,c2; the container can read it only once the volume carries its label.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
V=$OVH_VOLUMES/pvol
rm -rf "$V"; mkdir -p "$V"; echo podman-data > "$V/d.txt"; restorecon -R "$OVH_VOLUMES"
ovh_podman pod-label c1,c2 "" 'cat /proc/self/attr/current; echo'
check_out "podman container runs as container_t:s0:c1,c2" 'container_t:s0:c1,c2'
avc_mark; log_mark
ovh_podman pod-plain c1,c2 "pvol:/data" 'grep " /data " /proc/mounts; cat /data/d.txt'; rc=$?
check_out "podman + hooks.d: the hook mounted the volume at /data" ' /data '
check "podman + hooks.d: unlabelled volume is denied (rc=$rc)" test "$rc" = 1
check_avc "podman + hooks.d: AVC container_t:s0:c1,c2 -> var_lib_t logged" 'scontext=[^ ]*container_t:s0:c1,c2 tcontext=[^ ]*:var_lib_t:'
chcon -R "$(ovh_label c1,c2)" "$V"
ovh_podman pod-c12 c1,c2 "pvol:/data" 'cat /data/d.txt && echo via-podman > /data/p.txt'; rc=$?
check "podman + hooks.d: volume labelled c1,c2 is read and written (rc=$rc)" test "$rc" = 0
check "podman + hooks.d: the write reached the host directory" grep -qx via-podman "$V/p.txt"
log_since | sed 's/^/    syslog| /'
check "podman ran prestart and poststop for both annotated containers (2 + 2 hook runs)" \
  test "$(log_since | grep -c 'oci-volume-hook.*prestart')/$(log_since | grep -c 'oci-volume-hook.*poststop')" = 2/2
vm_done
