# shellcheck shell=sh
# tests/vm/guest/lib.sh - guest-side helpers for the VM tier (sourced by tests/vm/guest/t-*.sh; POSIX sh).
#
# Runs inside the guest as root (unconfined_t), SELinux enforcing, repository shared at /mnt/host (9p).
# Containers are runc (or crun: OVH_RUNTIME=crun) bundles with a busybox-static rootfs, confined as
# system_u:system_r:container_t:s0:LEVEL, their rootfs and mounts labelled container_file_t:s0:LEVEL, and the
# hook from the share as createRuntime + poststop hooks (exactly how podman runs hooks.d "prestart").
#
#   assertions  pass MSG | fail MSG | check MSG CMD... | check_not MSG CMD...
#               check_out MSG REGEX   (ERE in the last container's output $OVH_OUT)
#               check_log MSG REGEX   (ERE in the syslog file $OVH_SYSLOG since log_mark: the hook's log lines)
#               log_mark; log_since   syslog lines written since the mark
#               vm_done          end of a test file: "<test>: N passed, N failed", exit 1 on failures
#   containers  ovh_run NAME LEVEL ANNOTATION CMD
#                   run CMD (sh -c) in a fresh labelled container with annotation oci-volume-hook/volumes=ANNOTATION
#                   ("" = no annotation), wait for it to stop, delete it (poststop runs), print its output.
#                   Returns CMD's exit status; 125 if the runtime failed (a failing hook: message in $OVH_OUT),
#                   124 if CMD's status was not seen (it could not write its output).
#                   Sets OVH_OUT (output file: container stdout+stderr and runtime errors), OVH_BUNDLE.
#                   Knobs (env): OVH_RUNTIME=runc|crun, OVH_HOOK_STAGE=createRuntime|prestart|none,
#                   OVH_MOUNTS (extra JSON mount objects, comma-separated), OVH_ANNOTATIONS (extra JSON members),
#                   OVH_LINUX (extra JSON members of "linux", e.g. uidMappings), OVH_UID (process uid:gid).
#               ovh_podman NAME LEVEL ANNOTATION CMD
#                   the same through podman (runc) with the repository's hooks.d/*.json used verbatim: the hook
#                   is installed at /usr/bin/oci-volume-hook and $OVH_CONFIG copied to the default config path.
#                   Returns podman's status (CMD's, or 125/126/127 for podman errors); sets OVH_OUT.
#               ovh_config [TOML]  (re)write $OVH_CONFIG: volumes_root + state_dir, then TOML (e.g. [volumes.x])
#               ovh_label LEVEL    print the file context container_file_t:s0:LEVEL
#   SELinux     avc_mark; avc_since [REGEX]   denials logged since the mark (lines of dmesg)
#               check_avc MSG REGEX           PASS when such a denial was logged since avc_mark
#   NFS         ovh_nfs_server [DIR]   kernel nfsd v3/4.0/4.1/4.2, DIR (default /srv/nfs) exported with fsid=0
#                                      to 127.0.0.1 and $OVH_PEER_NET; started under initrc_t; idempotent
#               ovh_netns NAME         a second "host": network namespace NAME with a veth pair,
#                                      guest side $OVH_HOST_IP, NAME side $OVH_PEER_IP; ovh_in_netns NAME CMD...
# Level format: "c1,c2" (categories) -> s0:c1,c2.

OVH_GUEST=${OVH_GUEST:-/mnt/host/tests/vm/guest}
OVH_HOOK=${OVH_HOOK:-/mnt/host/target/release/oci-volume-hook}
OVH_CONFIG=${OVH_CONFIG:-/etc/ovh-test/config.toml}
OVH_VOLUMES=/var/lib/ovh-test/volumes           # volumes_root in $OVH_CONFIG
OVH_STATE=/run/ovh-test                          # state_dir in $OVH_CONFIG
OVH_WORK=${OVH_WORK:-/run/ovh-vm}                # bundles, results, syslog
OVH_SYSLOG=$OVH_WORK/syslog                      # busybox syslogd writes the hook's syslog lines here
OVH_RESULTS=${OVH_RESULTS:-$OVH_WORK/results}    # one PASS/FAIL line per assertion (suite.sh counts them)
OVH_RUNTIME=${OVH_RUNTIME:-runc}
OVH_HOOK_STAGE=${OVH_HOOK_STAGE:-createRuntime}
OVH_HOST_IP=10.99.0.1 OVH_PEER_IP=10.99.0.2 OVH_PEER_NET=10.99.0.0/24
OVH_TEST=${OVH_TEST:-$(basename "$0" .sh)}
_ovh_pass=0 _ovh_fail=0

# ------------------------------------------------------------------------------------------------ assertions --
pass() { _ovh_pass=$((_ovh_pass + 1)); echo "PASS: $OVH_TEST: $*"; echo "PASS $OVH_TEST: $*" >> "$OVH_RESULTS"; }
fail() { _ovh_fail=$((_ovh_fail + 1)); echo "FAIL: $OVH_TEST: $*"; echo "FAIL $OVH_TEST: $*" >> "$OVH_RESULTS"; }
# check MSG CMD... : PASS when CMD (a command or a shell function) succeeds; the time is shown when >= 1 s
check()     { _m=$1; shift; _t=$(_up); if "$@"; then pass "$_m$(_took "$_t")"; else fail "$_m$(_took "$_t")"; fi; }
check_not() { _m=$1; shift; _t=$(_up); if "$@"; then fail "$_m$(_took "$_t")"; else pass "$_m$(_took "$_t")"; fi; }
_up() { cut -d' ' -f1 /proc/uptime; }
_took() { awk -v a="$1" '{d=$1-a; if (d >= 1) printf " (%.1fs)", d}' /proc/uptime; }
check_out() { if grep -Eq "$2" "$OVH_OUT"; then pass "$1"; else fail "$1 (no /$2/ in the output)"; fi; }
check_log() { if log_since | grep -Eq "$2"; then pass "$1"; else fail "$1 (no /$2/ in $OVH_SYSLOG since log_mark)"; fi; }
log_mark()  { _ovh_log=$(wc -l < "$OVH_SYSLOG"); }
log_since() { tail -n +$((${_ovh_log:-0} + 1)) "$OVH_SYSLOG"; }     # syslog lines since log_mark
vm_done() {
  echo "$OVH_TEST: $_ovh_pass passed, $_ovh_fail failed"
  [ "$_ovh_fail" = 0 ] || { echo "--- recent AVC denials:"; dmesg | grep 'avc:  denied' | tail -5; exit 1; }
  exit 0
}

# ------------------------------------------------------------------------------------------- guest set-up -----
# Once per boot (idempotent): work dirs, syslog for the hook, unthrottled AVC logging, hook config.
ovh_setup() {
  [ -e "$OVH_WORK/.setup" ] && return 0
  mkdir -p "$OVH_WORK" "$(dirname "$OVH_CONFIG")"
  touch "$OVH_RESULTS"
  # AVCs reach dmesg through printk (no auditd): do not let the printk rate limit drop them
  echo 0 > /proc/sys/kernel/printk_ratelimit
  # the hook logs to /dev/log: keep those lines in a file
  busybox syslogd -O "$OVH_SYSLOG" 2>/dev/null || echo "ovh-vm: syslogd did not start"
  # shellcheck disable=SC2119
  ovh_config
  touch "$OVH_WORK/.setup"
}

# shellcheck disable=SC2120 # arguments are optional
ovh_config() {  # [EXTRA TOML...]
  install -d -m 0700 "$(dirname "$OVH_VOLUMES")"
  { printf 'volumes_root = "%s"\nstate_dir = "%s"\n' "$OVH_VOLUMES" "$OVH_STATE"
    [ $# -eq 0 ] || printf '%s\n' "$@"; } > "$OVH_CONFIG"
}

ovh_label() { echo "system_u:object_r:container_file_t:s0${1:+:$1}"; }

# ------------------------------------------------------------------------------------------------ SELinux -----
avc_mark()  { _ovh_avc=$(dmesg | grep -c 'avc:  denied'); }
avc_since() { dmesg | grep 'avc:  denied' | tail -n +$((${_ovh_avc:-0} + 1)) | grep -E "${1:-.}"; }
# check_avc MSG REGEX : PASS when a denial matching REGEX was logged since avc_mark
check_avc() { if avc_since "$2" >/dev/null; then pass "$1"; else fail "$1 (no AVC /$2/ since the mark)"; fi; }

# --------------------------------------------------------------------------------------------- containers -----
_json() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | awk 'NR>1{printf "\\n"} {printf "%s", $0}'; }

# ovh_rootfs DIR LEVEL - a busybox-static rootfs labelled like podman labels one (the mountLabel)
ovh_rootfs() {
  rm -rf "$1"; mkdir -p "$1/bin" "$1/etc" "$1/proc" "$1/sys" "$1/dev" "$1/tmp"
  cp /bin/busybox "$1/bin/busybox"
  for a in sh cat ls echo id touch rm mkdir stat grep sleep mount head wc; do ln -s busybox "$1/bin/$a"; done
  echo 'root:x:0:0:root:/:/bin/sh' > "$1/etc/passwd"; echo 'root:x:0:' > "$1/etc/group"
  chcon -R "$(ovh_label "$2")" "$1"
}

# ovh_bundle NAME LEVEL ANNOTATION CMD - writes $OVH_WORK/b/NAME/{config.json,rootfs}
ovh_bundle() {
  _b=$OVH_WORK/b/$1 _lvl=s0${2:+:$2}
  rm -rf "$_b"; mkdir -p "$_b"
  ovh_rootfs "$_b/rootfs" "$2"
  _ann='"oci-volume-hook/test": "vm"'
  [ -n "$3" ] && _ann="$_ann, \"oci-volume-hook/volumes\": \"$(_json "$3")\""
  [ -n "${OVH_ANNOTATIONS:-}" ] && _ann="$_ann, $OVH_ANNOTATIONS"
  _hooks=""
  if [ "$OVH_HOOK_STAGE" != none ]; then
    _h() { printf '{"path": "%s", "args": ["oci-volume-hook", "--config", "%s", "%s"], "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "timeout": 120}' "$OVH_HOOK" "$OVH_CONFIG" "$1"; }
    _hooks="\"hooks\": {\"$OVH_HOOK_STAGE\": [$(_h prestart)], \"poststop\": [$(_h poststop)]},"
  fi
  _caps='"CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FOWNER","CAP_FSETID","CAP_KILL","CAP_SETUID","CAP_SETGID","CAP_NET_BIND_SERVICE"'
  _uid=${OVH_UID:-0:0}
  cat > "$_b/config.json" <<JSON
{ "ociVersion": "1.0.2",
  "process": { "terminal": false, "user": {"uid": ${_uid%%:*}, "gid": ${_uid##*:}},
    "args": ["/bin/sh", "-c", "$(_json "$4"); echo OVH_RC=\$?"],
    "env": ["PATH=/bin"], "cwd": "/", "noNewPrivileges": true,
    "capabilities": {"bounding": [$_caps], "effective": [$_caps], "permitted": [$_caps]},
    "selinuxLabel": "system_u:system_r:container_t:$_lvl" },
  "root": {"path": "rootfs", "readonly": false},
  "hostname": "$1",
  "annotations": { $_ann },
  $_hooks
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid","strictatime","mode=755","size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid","noexec","nodev","mode=1777","size=65536k"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid","noexec","nodev","ro"]}${OVH_MOUNTS:+,
    $OVH_MOUNTS}
  ],
  "linux": { "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}],
    "mountLabel": "$(ovh_label "$2")",${OVH_LINUX:+
    $OVH_LINUX,}
    "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list"],
    "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"] }
}
JSON
  OVH_BUNDLE=$_b
}

# ovh_run NAME LEVEL ANNOTATION CMD
# Detached on purpose: a foreground non-tty `runc run` relays stdio through pipes that container_t may not write
# (output lost). Detached, the container inherits our fds: a file labelled with its own context.
ovh_run() {
  ovh_setup
  ovh_bundle "$@"
  OVH_OUT=$OVH_BUNDLE/out
  : > "$OVH_OUT"; chcon "$(ovh_label "$2")" "$OVH_OUT"
  _rt=$OVH_RUNTIME _id=$1 _rc=0 _t0=$(_up)
  timeout 120 "$_rt" run --detach --bundle "$OVH_BUNDLE" "$_id" </dev/null >>"$OVH_OUT" 2>&1 || _rc=$?
  if [ $_rc = 0 ]; then
    _i=0
    while [ $_i -lt 600 ] && ! "$_rt" state "$_id" 2>/dev/null | grep -q '"status": *"stopped"'; do sleep 0.05; _i=$((_i + 1)); done
    [ $_i -lt 600 ] || { echo "ovh_run: $_id did not stop within 30 s" >> "$OVH_OUT"; "$_rt" kill "$_id" KILL 2>/dev/null; sleep 0.5; }
  fi
  "$_rt" delete --force "$_id" > "$OVH_BUNDLE/delete.log" 2>&1    # poststop hooks run here
  sed "s/^/    $_id| /" "$OVH_OUT" "$OVH_BUNDLE/delete.log" | tr -d '\000'
  if [ $_rc != 0 ]; then echo "    [$_rt run $_id: runtime failed, rc=$_rc]"; return 125; fi   # e.g. a hook failed
  _rc=$(sed -n 's/^OVH_RC=//p' "$OVH_OUT" | tail -1)
  echo "    [$_rt run $_id: container rc=${_rc:-none}, $(awk -v a="$_t0" '{printf "%.1f", $1-a}' /proc/uptime)s]"
  return "${_rc:-124}"
}

# podman under enforcing (see docs in tests/vm/README.md): storage labelled per container.fc, an image imported
# from a busybox rootfs (no registry), podman run at MCS level s0 so that conmon's pipes are readable by the
# container's level, and the policy rule baked into the image that lets containers use those pipes.
_ovh_podman_setup() {
  [ -e "$OVH_WORK/.podman" ] && return 0
  modprobe overlay
  mkdir -p /var/lib/containers/storage && restorecon -R /var/lib/containers
  ovh_rootfs "$OVH_WORK/podman-rootfs" ""
  tar -C "$OVH_WORK/podman-rootfs" -cf "$OVH_WORK/podman-rootfs.tar" .
  # shellcheck disable=SC2086
  $OVH_PODMAN import -q "$OVH_WORK/podman-rootfs.tar" localhost/ovh-busybox:latest >/dev/null || return 1
  restorecon -R /var/lib/containers
  touch "$OVH_WORK/.podman"
}
OVH_PODMAN="runcon -l s0 podman --runtime runc --cgroup-manager cgroupfs --events-backend file"
ovh_podman() {
  ovh_setup
  _ovh_podman_setup || { echo "ovh_podman: podman set-up failed"; return 125; }
  install -D -m 0755 "$OVH_HOOK" /usr/bin/oci-volume-hook; restorecon /usr/bin/oci-volume-hook
  install -D -m 0644 "$OVH_CONFIG" /etc/oci-volume-hook/config.toml
  OVH_OUT=$OVH_WORK/podman-$1.out
  _t0=$(_up) _rc=0
  if [ -n "$3" ]; then set -- "$1" "$2" "--annotation=oci-volume-hook/volumes=$3" "$4"
  else set -- "$1" "$2" "--annotation=oci-volume-hook/test=vm" "$4"; fi
  # shellcheck disable=SC2086 # $OVH_PODMAN is a command line
  timeout 120 $OVH_PODMAN --hooks-dir /mnt/host/hooks.d run --rm --network none --name "$1" \
    --security-opt "label=level:s0${2:+:$2}" "$3" localhost/ovh-busybox:latest /bin/sh -c "$4" > "$OVH_OUT" 2>&1 || _rc=$?
  sed "s/^/    $1| /" "$OVH_OUT" | tr -d '\000'
  echo "    [podman run $1: rc=$_rc, $(awk -v a="$_t0" '{printf "%.1f", $1-a}' /proc/uptime)s]"
  return $_rc
}

# ---------------------------------------------------------------------------------------------------- NFS -----
ovh_nfs_server() {  # [EXPORT_DIR]
  ovh_setup
  _exp=${1:-/srv/nfs}; mkdir -p "$_exp"
  if [ -e /proc/fs/nfsd/threads ] && [ "$(cat /proc/fs/nfsd/threads 2>/dev/null)" != 0 ] &&
     exportfs -s 2>/dev/null | grep -q "^$_exp "; then return 0; fi
  # As an init script would: from unconfined_r the daemons cannot enter nfsd_t/rpcbind_t (bare EACCES)
  runcon system_u:system_r:initrc_t:s0 /bin/sh "$OVH_GUEST/nfs-server.sh" "$_exp" "127.0.0.1 $OVH_PEER_NET"
}

ovh_netns() {  # NAME: namespace with veth, guest side $OVH_HOST_IP/24, namespace side $OVH_PEER_IP/24
  [ -e "/run/netns/$1" ] && return 0
  ip netns add "$1"
  ip link add "ovh-$1" type veth peer name eth0 netns "$1"
  ip addr add "$OVH_HOST_IP/24" dev "ovh-$1"; ip link set "ovh-$1" up
  ip -n "$1" addr add "$OVH_PEER_IP/24" dev eth0; ip -n "$1" link set eth0 up; ip -n "$1" link set lo up
}
# run CMD in namespace NAME's network only (nsenter keeps our domain and mount namespace; `ip netns exec` would not)
ovh_in_netns() { _ns=$1; shift; nsenter --net="/run/netns/$_ns" "$@"; }
