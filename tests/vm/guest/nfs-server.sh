#!/bin/sh
# tests/vm/guest/nfs-server.sh EXPORT_DIR "CLIENT..." - kernel nfsd (v3, v4.0, v4.1, v4.2) in the guest.
# Run it under initrc_t (lib.sh: ovh_nfs_server does). EXPORT_DIR is exported with fsid=0: the NFSv4
# pseudo-root "/" is EXPORT_DIR; v3 mounts the real path (use nolock: no rpc.statd).
set -e
exp=$1
modprobe -a sunrpc nfsd nfs nfsv3 nfsv4
mountpoint -q /proc/fs/nfsd || mount -t nfsd nfsd /proc/fs/nfsd
mountpoint -q /var/lib/nfs/rpc_pipefs || mount -t rpc_pipefs sunrpc /var/lib/nfs/rpc_pipefs
pidof rpcbind >/dev/null || rpcbind -w
for c in $2; do exportfs -o rw,sync,no_subtree_check,no_root_squash,fsid=0 "$c:$exp"; done
pidof rpc.mountd >/dev/null || rpc.mountd
if [ "$(cat /proc/fs/nfsd/threads)" = 0 ]; then
  # shortest lease/grace the kernel accepts (set before the threads start) ...
  echo 10 > /proc/fs/nfsd/nfsv4leasetime; echo 10 > /proc/fs/nfsd/nfsv4gracetime
  rpc.nfsd 4
  # ... and end the grace period now: a fresh server has nothing to reclaim, and during grace every v4 OPEN
  # waits (90 s by default)
  echo Y > /proc/fs/nfsd/v4_end_grace || echo "nfs-server: could not end the grace period early"
fi
echo "nfs-server: $exp exported to $2; versions: $(cat /proc/fs/nfsd/versions)"
