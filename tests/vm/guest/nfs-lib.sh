# shellcheck shell=sh
# tests/vm/guest/nfs-lib.sh - helpers for the hook's NFS tests (sourced after lib.sh by t-nfs-*.sh).
#
#   nfs_export DIR          the in-guest server (ovh_nfs_server) plus exports of DIR to the "hosts" below
#   nfs_host NAME N         another "host": network namespace NAME, veth pair ovh-NAME <-> eth0,
#                           guest side 10.N.0.1/24, NAME side 10.N.0.2/24; the server is reachable from it
#                           at $NFS_SERVER_IP (an address of the guest, routed over the veth) = name "nfs-server"
#   nfs_runtime NAME        print a runtime wrapper that runs runc in NAME's network namespace: the hook it runs
#                           mounts from there, as it would on another machine (use as OVH_RUNTIME=...)
#   nfs_blackhole IP        IP sits in a namespace behind a veth that silently drops everything sent to it
#   now_ms                  milliseconds since boot
#   mountinfo_of DEST       the /data line of the last container's mountinfo ($OVH_OUT), for messages

NFS_SERVER_IP=10.100.0.1
now_ms() { awk '{printf "%d\n", $1 * 1000}' /proc/uptime; }

nfs_export() {  # DIR
  ovh_nfs_server "$1" >/dev/null || return 1
  if ! ip addr show dev lo | grep -q "$NFS_SERVER_IP/32"; then ip addr add "$NFS_SERVER_IP/32" dev lo; fi
  grep -q ' nfs-server$' /etc/hosts || echo "$NFS_SERVER_IP nfs-server" >> /etc/hosts
  for net in 10.96.0.0/24 10.98.0.0/24 "$NFS_SERVER_IP"; do
    runcon system_u:system_r:initrc_t:s0 exportfs -o rw,sync,no_subtree_check,no_root_squash,fsid=0 "$net:$1" || return 1
  done
}

nfs_host() {  # NAME N
  [ -e "/run/netns/$1" ] && return 0
  ip netns add "$1" || return 1
  ip link add "ovh-$1" type veth peer name eth0 netns "$1"
  ip addr add "10.$2.0.1/24" dev "ovh-$1"; ip link set "ovh-$1" up
  ip -n "$1" addr add "10.$2.0.2/24" dev eth0; ip -n "$1" link set eth0 up; ip -n "$1" link set lo up
  ip -n "$1" route add default via "10.$2.0.1"
}

nfs_runtime() {  # NAME
  _w=$OVH_WORK/runc-in-$1
  printf '#!/bin/sh\nexec nsenter --net=/run/netns/%s %s "$@"\n' "$1" "$(command -v runc)" > "$_w"
  chmod 755 "$_w"; echo "$_w"
}

nfs_blackhole() {  # IP (10.97.0.x)
  nfs_host blackhole 97 || return 1
  ip -n blackhole addr add "$1/24" dev eth0 2>/dev/null
  # frames to a MAC nobody has: the other end of the veth drops them (PACKET_OTHERHOST), nothing answers
  ip neigh replace "$1" lladdr 02:00:00:00:00:97 dev ovh-blackhole nud permanent
}
