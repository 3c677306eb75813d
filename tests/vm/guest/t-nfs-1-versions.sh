#!/bin/sh
# NFS volumes mounted by the hook (fsopen/fsconfig/fsmount, no mount.nfs): v3, v4.0, v4.1, v4.2 from the in-guest
# server, each in a confined container that reads and writes it; the options and the context show in the
# container's /proc/self/mountinfo; the sub-directory is created on first use, owned by the container's user.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nfs-lib.sh"
E=/srv/nfs
mkdir -p "$E/hook"; echo "from-the-server" > "$E/hook/seed.txt"
check "NFS server with exports for the hook's tests" nfs_export "$E"
L=$(ovh_label c1,c2)
ovh_config 'log_level = "debug"' \
  '[volumes.n3]'  'nfs = "nfs-server:/srv/nfs"' 'options = "vers=3,nolock,timeo=100"' 'subdir = "hook"' \
  '[volumes.n40]' 'nfs = "nfs-server:/"' 'options = "vers=4.0,hard,timeo=600"' 'subdir = "hook"' \
  '[volumes.n41]' 'nfs = "nfs-server:/"' 'options = "vers=4.1,hard,timeo=600,retrans=2"' 'subdir = "hook"' \
  '[volumes.n42]' 'nfs = "nfs-server:/"' 'options = "vers=4.2,soft,timeo=50,rsize=65536"' 'subdir = "hook"' \
  '[volumes.fresh]' 'nfs = "nfs-server:/"' 'options = "vers=4.2"' 'subdir = "apps/app1"'

for v in 3 40 41 42; do
  ovh_run "nfs-v$v" c1,c2 "n$v:/data:Z" "cat /data/seed.txt && echo written-by-v$v > /data/w-$v && grep ' /data ' /proc/self/mountinfo"; rc=$?
  check "v$v: container reads and writes the NFS volume (rc=$rc)" test "$rc" = 0
  check "v$v: the server has the container's file" grep -qx "written-by-v$v" "$E/hook/w-$v"
  case $v in 3) fs=nfs; vers=3;; *) fs=nfs4; vers=$(echo "$v" | sed 's/^4/4./');; esac
  check_out "v$v: mountinfo shows $fs from nfs-server with vers=$vers" " /data .* - $fs nfs-server:/.* .*vers=$vers"
  check_out "v$v: mountinfo shows the hook's addr=" " /data .*addr=10\.100\.0\.1"
  check_out "v$v: mountinfo shows context= (Z: container_file_t:s0:c1,c2)" " /data .*context=\"?system_u:object_r:container_file_t:s0:c1,c2"
  check_out "v$v: the container sees the sub-directory, not the export root (source nfs-server:.../hook)" " /data .* - $fs nfs-server:(/srv/nfs)?/hook "
  check_out "v$v: nosuid,nodev on the mount" " /data [^ ]*nosuid,nodev"
done
check_out "v4.2: admin options reach the kernel (soft, timeo=50, rsize=65536)" " /data .*rsize=65536.*soft.*timeo=50|soft.*timeo=50"
ovh_run nfs-v40-again c1,c2 "n40:/data:Z" "grep ' /data ' /proc/self/mountinfo" >/dev/null
check_out "v4.0: clientaddr= is the local address that reaches the server" " /data .*clientaddr=10\.100\.0\.1"

rm -rf "$E/apps"
OVH_UID=1000:1001 ovh_run nfs-fresh c1,c2 "fresh:/data:Z" "id && echo mine > /data/mine && ls -ln /data"; rc=$?
check "sub-directory created on first use; a non-root container user writes in it (rc=$rc)" test "$rc" = 0
check "sub-directory apps/app1 owned 1000:1001, mode 0755" test "$(stat -c '%u:%g %a' "$E/apps/app1")" = "1000:1001 755"
check "the container's file is on the server" grep -qx mine "$E/apps/app1/mine"
check_log "the hook logged the created sub-directory" "created sub-directory nfs-server:/apps/app1"
check_log "the hook logged the mount time (debug)" "mounted nfs-server:/apps/app1 .* in [0-9]+ ms"

# a symlink planted where the sub-directory should be is refused, never followed out of the export
mkdir -p "$E/apps2"; ln -sfn /etc "$E/apps2/app1"
ovh_config '[volumes.trap]' 'nfs = "nfs-server:/"' 'options = "vers=4.2"' 'subdir = "apps2/app1"'
ovh_run nfs-trap c1,c2 "trap:/data:Z" "ls /data"; rc=$?
check "a symlinked sub-directory is refused, the container does not start (rc=$rc)" test "$rc" = 125
check_out "the error says why" "symlink"
vm_done
