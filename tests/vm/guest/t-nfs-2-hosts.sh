#!/bin/sh
# Two "hosts" share one NFS volume: the hook runs (with runc) in two separate network namespaces of the guest,
# each with its own address on a veth pair to the server, and mounts the same export by name. A container on
# host A writes, a container on host B reads it and writes back; a read-only "operations" container on host B
# reads the logs host A wrote and cannot change them.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nfs-lib.sh"
E=/srv/nfs
mkdir -p "$E/shared"
check "NFS server with exports for the hook's tests" nfs_export "$E"
check "host A: network namespace hosta (10.96.0.2)" nfs_host hosta 96
check "host B: network namespace hostb (10.98.0.2)" nfs_host hostb 98
check "host A reaches nfs-server over its veth only" ovh_in_netns hosta busybox ping -q -c1 -W2 "$NFS_SERVER_IP"
check "host B reaches nfs-server over its veth only" ovh_in_netns hostb busybox ping -q -c1 -W2 "$NFS_SERVER_IP"
# the same config on both hosts, as it would be deployed
ovh_config '[volumes.shared-logs]' 'nfs = "nfs-server:/"' 'options = "vers=4.0,hard,timeo=600"' 'subdir = "shared/logs"'

stamp=$(now_ms)
OVH_RUNTIME=$(nfs_runtime hosta) ovh_run writer-a c1,c2 "shared-logs:/var/log/app:z" \
  "echo 'app started $stamp' >> /var/log/app/app.log && grep ' /var/log/app ' /proc/self/mountinfo"; rc=$?
check "host A: writer container appends to the shared log (rc=$rc)" test "$rc" = 0
check_out "host A: mounted from its own address (clientaddr=10.96.0.2)" " /var/log/app .*clientaddr=10\.96\.0\.2"

OVH_RUNTIME=$(nfs_runtime hostb) ovh_run reader-b c3,c4 "shared-logs:/var/log/app:z" \
  "grep -q 'app started $stamp' /var/log/app/app.log && echo 'seen by B $stamp' >> /var/log/app/app.log && grep ' /var/log/app ' /proc/self/mountinfo"; rc=$?
check "host B: another container (other categories, z) reads what host A wrote and appends (rc=$rc)" test "$rc" = 0
check_out "host B: mounted from its own address (clientaddr=10.98.0.2)" " /var/log/app .*clientaddr=10\.98\.0\.2"

OVH_RUNTIME=$(nfs_runtime hosta) ovh_run check-a c1,c2 "shared-logs:/var/log/app:z" "grep -q 'seen by B $stamp' /var/log/app/app.log"; rc=$?
check "host A: sees host B's line (rc=$rc)" test "$rc" = 0

OVH_RUNTIME=$(nfs_runtime hostb) ovh_run ops-b c5,c6 "shared-logs:/var/log/app:ro,z" \
  "grep 'app started $stamp' /var/log/app/app.log && grep ' /var/log/app ' /proc/self/mountinfo && if echo x >> /var/log/app/app.log; then echo OPS-WROTE; fi"; rc=$?
check "host B: read-only operations container reads host A's logs (rc=$rc)" test "$rc" = 0
check_out "host B: the operations mount is read-only" " /var/log/app ro,"
if grep -q OPS-WROTE "$OVH_OUT"; then fail "host B: the operations container could write"; else pass "host B: the operations container cannot write"; fi
check "the server holds both lines, once each" test "$(grep -c "$stamp" "$E/shared/logs/app.log")" = 2
vm_done
