#!/bin/sh
# Failures that must be clear and start nothing: an unreachable (silent) server is refused within mount_timeout
# (+-1 s) and the container does not start; a wrong export path; a server name that does not resolve; NFS options
# in an annotation; U and idmap on NFS; an nfs:// server the admin did not allow.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nfs-lib.sh"
E=/srv/nfs
check "NFS server with exports for the hook's tests" nfs_export "$E"
DEAD=10.97.0.3
check "a silent server: $DEAD in a namespace behind a veth that drops everything" nfs_blackhole "$DEAD"
ovh_config 'mount_timeout = 10' \
  '[volumes.dead]'    "nfs = \"$DEAD:/exports/logs\"" 'options = "vers=4.1,hard,timeo=600"' 'mount_timeout = 3' \
  '[volumes.dead3]'   "nfs = \"$DEAD:/exports/logs\"" 'options = "vers=3,nolock"' 'mount_timeout = 2' \
  '[volumes.wrong]'   'nfs = "nfs-server:/no/such/export"' 'options = "vers=4.2"' \
  '[volumes.noname]'  'nfs = "no-such-server.invalid:/exports"' 'options = "vers=4.2"' \
  '[volumes.good]'    'nfs = "nfs-server:/"' 'options = "vers=4.2"'

# not_started NAME: the runtime failed (125) and the container's command never ran
not_started() { [ "$1" = 125 ] && ! grep -q '^OVH_RC=' "$OVH_OUT"; }

# timed_hook NAME VOLUME: run the hook's prestart by hand for a bundle asking for VOLUME (the state names a
# process in a mount namespace of its own, as a container's is: the hook refuses its own namespace; it fails
# at the NFS mount, before it would attach anything); sets HOOK_MS (wall time of the hook process), HOOK_RC,
# HOOK_OUT
timed_hook() {
  ovh_bundle "$1" c1,c2 "$2" "echo STARTED"
  unshare -m sleep 60 & _ns_pid=$!
  sleep 0.2
  _state="{\"ociVersion\":\"1.0.2\",\"id\":\"$1\",\"status\":\"creating\",\"pid\":$_ns_pid,\"bundle\":\"$OVH_BUNDLE\"}"
  # the hook from guest memory, as an installed one (the 9p share adds a variable exec cost under TCG)
  [ -x "$OVH_WORK/oci-volume-hook.timed" ] || cp "$OVH_HOOK" "$OVH_WORK/oci-volume-hook.timed"
  _t0=$(now_ms); HOOK_OUT=$(printf '%s' "$_state" | "$OVH_WORK/oci-volume-hook.timed" --config "$OVH_CONFIG" prestart 2>&1); HOOK_RC=$?
  HOOK_MS=$(( $(now_ms) - _t0 ))
  kill "$_ns_pid" 2>/dev/null; wait "$_ns_pid" 2>/dev/null
  echo "    hook($1): rc=$HOOK_RC, ${HOOK_MS} ms: $HOOK_OUT"
}
# abandoned_in LO HI: the hook's own measure ("abandoned after X s") is within [LO, HI] seconds
abandoned_in() { printf '%s' "$HOOK_OUT" | sed -n 's/.*abandoned after \([0-9.]*\) s.*/\1/p' | awk -v lo="$1" -v hi="$2" 'NF{f=1; exit !($1 >= lo && $1 <= hi)} END{if (!f) exit 1}'; }

t0=$(now_ms)
ovh_run nfs-dead c1,c2 "dead:/data:Z" "echo STARTED"; rc=$?
t=$(( $(now_ms) - t0 ))
check "silent server: the container does not start (rc=$rc; the whole runc run took ${t} ms)" not_started "$rc"
check_out "silent server: the error names the volume, the server and the deadline" 'volume \\?"dead:/data:Z\\?" failed: NFS mount of 10\.97\.0\.3:/exports/logs from server 10\.97\.0\.3 .*within the deadline of 3 s'
sleep 1
check "silent server: no mount helper left behind" sh -c '! ps -eo comm,stat | grep -q "^oci-volume-hook"'
timed_hook nfs-dead-direct "dead:/data:Z"
check "silent server, v4.1, mount_timeout = 3: the hook fails (rc=$HOOK_RC) within 3 s +-1 s (${HOOK_MS} ms wall)" test "$HOOK_RC" = 1 -a "$HOOK_MS" -ge 2000 -a "$HOOK_MS" -le 4000
check "silent server, v4.1: the hook's own measure is 3..4 s" abandoned_in 3 4
timed_hook nfs-dead3-direct "dead3:/data:Z"
check "silent server, v3, mount_timeout = 2: the hook fails (rc=$HOOK_RC) within 2 s +-1 s (${HOOK_MS} ms wall)" test "$HOOK_RC" = 1 -a "$HOOK_MS" -ge 1000 -a "$HOOK_MS" -le 3000
check "silent server, v3: the hook's own measure is 2..3 s" abandoned_in 2 3
sleep 1
check "no mount helper left behind" sh -c '! ps -eo comm,stat | grep -q "^oci-volume-hook"'

ovh_run nfs-wrong c1,c2 "wrong:/data:Z" "echo STARTED"; rc=$?
check "wrong export path: the container does not start (rc=$rc)" not_started "$rc"
check_out "wrong export path: the error says the export does not exist on the server" "nfs-server:/no/such/export.*does not exist on the server"

ovh_run nfs-noname c1,c2 "noname:/data:Z" "echo STARTED"; rc=$?
check "unresolvable server name: the container does not start (rc=$rc)" not_started "$rc"
check_out "unresolvable server name: the error says so" 'NFS server name \\?"no-such-server\.invalid\\?" does not resolve'

ovh_run nfs-opt c1,c2 "good:/data:vers=3" "echo STARTED"; rc=$?
check "NFS option in the annotation: the container does not start (rc=$rc)" not_started "$rc"
check_out "NFS option in the annotation: refused by name, the admin's to set" 'unknown option \\?"vers=3\\?": mount options such as NFS'
ovh_run nfs-U c1,c2 "good:/data:Z,U" "echo STARTED"; rc=$?
check "U on NFS: the container does not start (rc=$rc)" not_started "$rc"
check_out "U on NFS: refused with the reason" "option U cannot be used on NFS volume"
ovh_run nfs-idmap c1,c2 "good:/data:Z,idmap" "echo STARTED"; rc=$?
check "idmap on NFS: the container does not start (rc=$rc)" not_started "$rc"
check_out "idmap on NFS: refused with the reason" "cannot idmap NFS"
ovh_run nfs-url c1,c2 "nfs://nfs-server/:/data:Z" "echo STARTED"; rc=$?
check "nfs:// to a server not in allowed_nfs_servers: the container does not start (rc=$rc)" not_started "$rc"
check_out "nfs:// denied by policy by default" "denied by policy: NFS server nfs-server is not in allowed_nfs_servers"

# ... and allowed when the admin lists the server; the URL's port is used
ovh_config 'allowed_nfs_servers = ["nfs-server"]'
ovh_run nfs-url-ok c1,c2 "nfs://nfs-server:2049/:/data:Z" "grep ' /data ' /proc/self/mountinfo"; rc=$?
check "nfs:// to an allowed server mounts (default vers=4.1) (rc=$rc)" test "$rc" = 0
check_out "nfs://: vers=4.1 in the container's mountinfo" " /data .*vers=4\.1"
check_log "nfs://: the URL's port is passed (port=2049)" "mounted NFS nfs-server:/ \(vers=4\.1,addr=10\.100\.0\.1,port=2049"

# a bad admin option never reaches a container: the config is refused with file:line context
ovh_config '[volumes.bad]' 'nfs = "nfs-server:/"' 'options = "vers=4.2,context=system_u:object_r:nfs_t:s0"'
ovh_run nfs-badcfg c1,c2 "bad:/data" "echo STARTED"; rc=$?
check "admin context= in options: refused at config load (rc=$rc)" not_started "$rc"
check_out "admin context= in options: the reason" "NFS option \\\\?\"context\\\\?\" is not allowed here"
vm_done
