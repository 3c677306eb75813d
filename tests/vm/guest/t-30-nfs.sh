#!/bin/sh
# NFS infrastructure for the hook's NFS volumes: the in-guest server serves v3, v4.0, v4.1, v4.2 (mounted by hand
# with mount.nfs, read + write), a client in a second network namespace ("another host") mounts over a veth
# pair, and an NFS mount with context= is usable by a container with the same categories (nfs_t is not).
# shellcheck disable=SC2317,SC2016 # functions run through check; single quotes are meant
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
E=/srv/nfs; mkdir -p "$E/vol1"; echo "served-by-nfsd" > "$E/vol1/file.txt"
t0=$(cut -d' ' -f1 /proc/uptime)
check "NFS server starts" ovh_nfs_server "$E"
echo "    server start $(awk -v a="$t0" '{printf "%.1f", $1-a}' /proc/uptime)s"
check "nfsd offers 3, 4.0, 4.1, 4.2" sh -c 'v=$(cat /proc/fs/nfsd/versions); for x in +3 +4 +4.1 +4.2; do echo " $v " | grep -q " $x "; done'
mkdir -p /mnt/nfs
nfs_rw() {  # VERSION SERVER:PATH [OPTS] - mount (by $NS, if set), check the version, read, write, umount
  $NS mount -t nfs -o "vers=$1${3:-}" "$2" /mnt/nfs || return 1
  r=0
  grep -q " /mnt/nfs nfs4* .*vers=$1" /proc/mounts || { echo "    not mounted as vers=$1:"; grep /mnt/nfs /proc/mounts; r=1; }
  [ -z "${CLIENT:-}" ] || grep -q " /mnt/nfs nfs4 .*clientaddr=$CLIENT," /proc/mounts || { grep /mnt/nfs /proc/mounts; r=1; }
  [ "$(cat /mnt/nfs/vol1/file.txt)" = served-by-nfsd ] || r=1
  echo "written over v$1" > "/mnt/nfs/vol1/w-$1" || r=1
  umount /mnt/nfs || r=1
  [ "$(cat "$E/vol1/w-$1")" = "written over v$1" ] || r=1
  return "$r"
}
check "NFS v3 mount, read, write"   nfs_rw 3   "127.0.0.1:$E" ,nolock
check "NFS v4.0 mount, read, write" nfs_rw 4.0 127.0.0.1:/
check "NFS v4.1 mount, read, write" nfs_rw 4.1 127.0.0.1:/
check "NFS v4.2 mount, read, write" nfs_rw 4.2 127.0.0.1:/

ovh_netns peer
ping_host() { ovh_in_netns peer busybox ping -q -c1 -W2 "$OVH_HOST_IP" >/dev/null; }
check "second host: namespace 'peer' reaches $OVH_HOST_IP over the veth" ping_host
# the kernel NFS client uses the network namespace of the process that mounts: mount from 'peer'
NS="ovh_in_netns peer" CLIENT=$OVH_PEER_IP
check "second host: NFS v4.2 mount from 'peer' (clientaddr=$OVH_PEER_IP), read, write" nfs_rw 4.2 "$OVH_HOST_IP:/"
NS="" CLIENT=""

# labels on NFS: context= at mount time (the comma in the level needs the value double-quoted)
mkdir -p /mnt/nfs-ctx /mnt/nfs-plain "$E/vol2"; echo nfs-data > "$E/vol2/d.txt"
mount -t nfs -o "vers=4.2,context=\"$(ovh_label c1,c2)\"" 127.0.0.1:/vol2 /mnt/nfs-ctx
mount -t nfs -o vers=4.2 127.0.0.1:/vol2 /mnt/nfs-plain
OVH_MOUNTS='{"destination": "/nfs", "type": "bind", "source": "/mnt/nfs-ctx", "options": ["rbind", "rw"]}' \
  ovh_run nfs-ctx c1,c2 "" 'cat /nfs/d.txt && echo ctr > /nfs/c.txt'; rc=$?
check "NFS context=container_file_t:s0:c1,c2: container c1,c2 reads and writes (rc=$rc)" test "$rc" = 0
OVH_MOUNTS='{"destination": "/nfs", "type": "bind", "source": "/mnt/nfs-plain", "options": ["rbind", "rw"]}' \
  ovh_run nfs-plain c1,c2 "" 'cat /nfs/d.txt'; rc=$?
check "NFS default label nfs_t: container c1,c2 is denied (rc=$rc)" test "$rc" = 1
umount /mnt/nfs-ctx /mnt/nfs-plain
vm_done
