#!/bin/sh
# The tier itself: SELinux is enforcing in the guest and the container policy module is loaded.
# shellcheck disable=SC2317,SC2016 # functions run through check; single quotes are meant
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
check "SELinux is enforcing" test "$(getenforce)" = Enforcing
check "policy is the reference policy (default)" grep -q '^SELINUXTYPE=default' /etc/selinux/config
# writing a context to selinuxfs validates it against the loaded policy
valid() { printf '%s' "$1" > /sys/fs/selinux/context 2>/dev/null; }
check "container_t is a valid process type (MCS c1,c2)" valid system_u:system_r:container_t:s0:c1,c2
check "container_file_t is a valid file type" valid "$(ovh_label c1,c2)"
check_not "an unknown type is rejected (the validity check can fail)" valid system_u:system_r:no_such_ovh_t:s0
check "runc is labelled container_engine_exec_t" sh -c 'ls -Z /usr/sbin/runc | grep -q container_engine_exec_t'
# a confined container really runs as container_t with its categories
ovh_run sel-proc c1,c2 "" 'cat /proc/self/attr/current; echo'
check_out "container process runs as container_t:s0:c1,c2" 'container_t:s0:c1,c2'
vm_done
