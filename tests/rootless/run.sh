#!/bin/bash
# tests/rootless/run.sh [FILTER] — oci-volume-hook under rootless podman.
#
# As root, sets up a normal user with subordinate ids (/etc/subuid,
# /etc/subgid; package uidmap), /run/user/UID (no logind here), and a
# temporary directory $W (root-owned) with a copy of the hook, a hooks.d
# directory naming it (podman --hooks-dir: the system's hooks.d is not
# touched), an admin config and a busybox rootfs owned by the user. Then
# runs each case as that user through `runuser` with a login-like
# environment; podman runs inside the cgroup workaround (a mount namespace
# without the hybrid cgroup2 mount), so that its pause process, which later
# podman calls join, can run crun as well as runc (host-lab.md).
#
# Prints `PASS name` / `FAIL name: reasons` / `SKIP: name: reason`, and last
# `rootless: N passed, N failed`. Exit status 0 when nothing failed.
#
# Environment: OVH_BIN (default target/release/oci-volume-hook), RL_USER
# (default ovh-rootless), RL_KEEP=1 keeps $W, CI=true turns a missing
# prerequisite into a failure.
set -u
REPO=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
OVH_BIN=${OVH_BIN:-$REPO/target/release/oci-volume-hook}
RL_USER=${RL_USER:-ovh-rootless}
FILTER=${1:-}
KEY=oci-volume-hook/volumes
ULIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
npass=0 nfail=0

say() { printf '    [%s] %s\n' "${CASE:-setup}" "$*" >&2; }
prereq_missing() {
    if [ "${CI:-}" = true ]; then echo "FAIL setup: $*"; echo "rootless: 0 passed, 1 failed"; exit 1; fi
    echo "SKIP: rootless: $*"; echo "rootless: 0 passed, 0 failed"; exit 0
}

[ "$(id -u)" = 0 ] || prereq_missing "needs root (it creates a user)"
for c in podman runc crun runuser unshare jq busybox getfattr; do
    command -v "$c" >/dev/null 2>&1 || prereq_missing "$c is not installed"
done
if ! command -v newuidmap >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=900 uidmap >/dev/null ||
        prereq_missing "uidmap (newuidmap) is not installed"
fi
if [ ! -x "$OVH_BIN" ]; then
    (cd "$REPO" && cargo build --release --locked) || prereq_missing "cannot build $OVH_BIN"
fi

# ------------------------------------------------------------------ setup ---
id "$RL_USER" >/dev/null 2>&1 || useradd -m -s /bin/sh "$RL_USER" || prereq_missing "useradd $RL_USER"
RL_UID=$(id -u "$RL_USER")
RL_GID=$(id -g "$RL_USER")
RL_HOME=$(getent passwd "$RL_USER" | cut -d: -f6)
for f in /etc/subuid /etc/subgid; do
    touch "$f"
    if ! grep -q "^$RL_USER:" "$f"; then
        # A range above every one in use.
        last=$(awk -F: '{e=$2+$3; if (e>m) m=e} END {print m+0}' "$f")
        [ "$last" -ge 100000 ] || last=100000
        echo "$RL_USER:$last:65536" >> "$f"
    fi
done
SUB=$(awk -F: -v u="$RL_USER" '$1==u {print $2; exit}' /etc/subuid)
mkdir -p "/run/user/$RL_UID"
chown "$RL_USER:$RL_GID" "/run/user/$RL_UID"
chmod 0700 "/run/user/$RL_UID"

W=$(mktemp -d /var/tmp/ovh-rootless.XXXXXX)
chmod 0755 "$W"
cleanup() { [ "${RL_KEEP:-}" = 1 ] || rm -rf "$W"; }
trap cleanup EXIT
mkdir -p "$W/bin" "$W/hooks.d" "$W/shared/mine" "$W/shared/other"
install -m 0755 "$OVH_BIN" "$W/bin/oci-volume-hook"
chown "$RL_USER:$RL_GID" "$W/shared/mine" "$W/shared/other"
# The admin's config, root-owned: inside the user namespace its owner shows as 65534.
cat > "$W/config.toml" <<TOML
allowed_host_paths = ["$W/shared"]
log_level = "debug"
TOML
chmod 0644 "$W/config.toml"
for stage in prestart poststop; do
    cat > "$W/hooks.d/oci-volume-hook-$stage.json" <<JSON
{"version":"1.0.0","hook":{"path":"$W/bin/oci-volume-hook","args":["oci-volume-hook","--config","$W/config.toml","$stage"],"env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin","LANG=C"],"timeout":60},"when":{"annotations":{"^oci-volume-hook/volumes\$":".*"}},"stages":["$stage"]}
JSON
done
ROOTFS=$W/rootfs
mkdir -p "$ROOTFS/bin" "$ROOTFS/etc" "$ROOTFS/proc" "$ROOTFS/sys" "$ROOTFS/dev" "$ROOTFS/tmp"
cp "$(command -v busybox)" "$ROOTFS/bin/busybox"
for a in sh cat ls echo id stat touch mkdir grep; do ln -sf busybox "$ROOTFS/bin/$a"; done
echo "root:x:0:0:root:/root:/bin/sh" > "$ROOTFS/etc/passwd"
chown -R "$RL_USER:$RL_GID" "$ROOTFS"

VOLS=$RL_HOME/.local/share/oci-volume-hook/volumes
RECS=/run/user/$RL_UID/oci-volume-hook

# A login-like environment for the user (the hook itself never sees it).
as_user() {
    runuser -u "$RL_USER" -- env -i HOME="$RL_HOME" USER="$RL_USER" LOGNAME="$RL_USER" \
        XDG_RUNTIME_DIR="/run/user/$RL_UID" PATH=/usr/bin:/bin LANG=C "$@"
}
# podman as the user, inside the cgroup workaround (see the header).
upodman() {
    unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' sh \
        runuser -u "$RL_USER" -- env -i HOME="$RL_HOME" USER="$RL_USER" LOGNAME="$RL_USER" \
        XDG_RUNTIME_DIR="/run/user/$RL_UID" PATH=/usr/bin:/bin LANG=C \
        timeout 120 podman "$@"
}
# run RUNTIME SPEC [podman options...] -- COMMAND: one container; output in $OUT, status in $RC.
run() {
    local rt=$1 spec=$2; shift 2
    local opts=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
    shift
    OUT=$(upodman --runtime "$rt" --hooks-dir "$W/hooks.d" run --rm --network none "${ULIMITS[@]}" \
        --annotation "$KEY=$spec" "${opts[@]}" --rootfs "$ROOTFS" sh -c "$*" 2>&1)
    RC=$?
    say "podman --runtime $rt [$spec] ${opts[*]} -> $RC: $(printf '%s' "$OUT" | tr '\n' ' ' | cut -c1-400)"
}

# Assertions record failures and go on; a case passes with none.
FAILS=()
ok() { say "ok: $1"; }
no() { say "NOT OK: $1"; FAILS+=("$1"); }
expect() { local what=$1; shift; if "$@"; then ok "$what"; else no "$what"; fi; }
eq() { if [ "$1" = "$2" ]; then ok "$3 = $2"; else no "$3: got '$1', want '$2'"; fi; }
has() { if printf '%s' "$1" | grep -qF -- "$2"; then ok "$3"; else no "$3 (no '$2' in: $(printf '%s' "$1" | tr '\n' ' ' | cut -c1-300))"; fi; }
owner() { stat -c %u "$1" 2>/dev/null; }

# Host state the hook must never touch in rootless mode, and every file a
# process of the user (or of the user's containers) could have left
# outside the user's home, /run/user/UID and this test's directory.
host_state() {
    local d
    for d in /var/lib/oci-volume-hook /run/oci-volume-hook /etc/oci-volume-hook; do
        if [ -e "$d" ]; then find "$d" -printf '%p %U %s %T@\n' 2>/dev/null | sort; else echo "$d absent"; fi
    done
}
stray_files() {
    find / /run /tmp /var/tmp -xdev \( -path /proc -o -path /sys -o -path "$RL_HOME" -o -path "/run/user/$RL_UID" \
        -o -path "$W" -o -path '/tmp/podman-run-*' -o -path '/tmp/containers-user-*' -o -path '/tmp/storage-run-*' \) -prune \
        -o \( -uid "$RL_UID" -o \( -uid +$((SUB - 1)) -uid -$((SUB + 65536)) \) \) -print 2>/dev/null | sort -u
}

# ----------------------------------------------------------------- cases ---
seed() { # RUNTIME
    local rt=$1 name=seed-$1
    run "$rt" "$name:/data" -- 'echo hello > /data/greeting && id -u'
    eq "$RC" 0 "$rt: a writer starts and writes"
    eq "$(cat "$VOLS/$name/greeting" 2>/dev/null)" hello "$rt: the data on the host in $VOLS/$name"
    eq "$(owner "$VOLS/$name/greeting")" "$RL_UID" "$rt: the file's host owner (the user)"
    eq "$(owner "$VOLS/$name")" "$RL_UID" "$rt: the volume's host owner (the user)"
    eq "$(owner "$VOLS")" "$RL_UID" "$rt: volumes_root's owner (the user)"
    eq "$(stat -c %a "$VOLS")" 700 "$rt: volumes_root's mode"
    run "$rt" "$name:/data" -- 'cat /data/greeting'
    eq "$RC" 0 "$rt: a new container starts"
    has "$OUT" hello "$rt: a new container reads what the first wrote"
    run "$rt" "$name:/data:ro+nosuid+nodev+noexec" -- 'grep " /data " /proc/mounts; echo x > /data/other && echo WROTE'
    has "$OUT" "Read-only file system" "$rt: a ro container cannot write"
    case "$OUT" in *WROTE*) no "$rt: the ro container wrote" ;; *) ok "$rt: nothing written by the ro container" ;; esac
    has "$OUT" "ro,nosuid,nodev,noexec" "$rt: ro, nosuid, nodev, noexec on the mount"
    expect "$rt: nothing written by the ro container on the host" test ! -e "$VOLS/$name/other"
    eq "$(find "$RECS/containers" -type f ! -name '.*' 2>/dev/null | wc -l)" 0 "$rt: no record left after the containers (poststop ran)"
}
case_seed_runc() { seed runc; }
case_seed_crun() { seed crun; }

case_user_1000() {
    local name=users
    run runc "$name:/data" -- 'echo root > /data/by-root'
    eq "$RC" 0 "a root container creates the volume"
    run runc "$name:/data" --user 1000:1000 -- 'id -u; echo x > /data/by-1000 && echo WROTE; true'
    eq "$RC" 0 "--user 1000 starts without U"
    has "$OUT" "Permission denied" "--user 1000 without U cannot write the user's volume"
    expect "no file written without U" test ! -e "$VOLS/$name/by-1000"
    run runc "$name:/data:U" --user 1000:1000 -- 'echo x > /data/by-1000 && echo WROTE'
    eq "$RC" 0 "--user 1000 with U starts"
    has "$OUT" WROTE "--user 1000 with U writes"
    eq "$(owner "$VOLS/$name/by-1000")" $((SUB + 999)) "host owner of its file (subuid base + 999)"
    eq "$(owner "$VOLS/$name/by-root")" $((SUB + 999)) "U gave the existing file to the container user"
    eq "$(owner "$VOLS/$name")" $((SUB + 999)) "U gave the volume root to the container user"
    local m
    m=$(getfattr --only-values -n user.oci-volume-hook.owner "$VOLS/$name" 2>/dev/null)
    eq "$m" "1000:1000" "completion marker in user.* (ids as the user namespace sees them)"
    expect "no trusted.* marker" sh -c "! getfattr -n trusted.oci-volume-hook.owner '$VOLS/$name' >/dev/null 2>&1"
    # A restart skips the walk: a file planted with another owner stays.
    touch "$VOLS/$name/planted" && chown "$RL_UID" "$VOLS/$name/planted"
    run runc "$name:/data:U" --user 1000:1000 -- 'true'
    eq "$(owner "$VOLS/$name/planted")" "$RL_UID" "a restart with the marker in place does not walk"
}

case_keep_id() {
    local name=keepid
    run runc "$name:/data:U" --userns=keep-id -- 'id -u; echo x > /data/mine && echo WROTE'
    eq "$RC" 0 "--userns=keep-id with U starts"
    has "$OUT" "$RL_UID" "the container runs as the user's uid"
    has "$OUT" WROTE "it writes"
    eq "$(owner "$VOLS/$name/mine")" "$RL_UID" "host owner of its file: the user"
    eq "$(owner "$VOLS/$name")" "$RL_UID" "host owner of the volume: the user"
}

case_refused() {
    run runc "idm:/data:idmap" -- 'echo STARTED'
    expect "idmap: the container does not start" test "$RC" -ne 0
    has "$OUT" "idmapped mounts in an unprivileged user namespace" "idmap: the reason"
    has "$OUT" "use option U" "idmap: what to use instead"
    expect "idmap: no volume created" test ! -e "$VOLS/idm"
    mkdir -p "$RL_HOME/private" && chown "$RL_USER:$RL_GID" "$RL_HOME/private"
    run runc "$RL_HOME/private:/data" -- 'echo STARTED'
    expect "host path outside the policy: the container does not start" test "$RC" -ne 0
    has "$OUT" "allowed_host_paths" "host path outside the policy: the rule"
    case "$OUT" in *STARTED*) no "a refused container ran" ;; *) ok "no refused container ran" ;; esac
    run runc "$W/shared/other:/data" -- 'echo x > /data/f && echo WROTE'
    has "$OUT" WROTE "a host path inside the admin's allowed_host_paths works"
    eq "$(owner "$W/shared/other/f")" "$RL_UID" "its file belongs to the user"
}

case_user_config() {
    local cfg=$RL_HOME/.config/oci-volume-hook
    as_user mkdir -p "$cfg"
    printf 'allowed_host_paths = ["%s"]\nauto_create = false\n[volumes.seed-runc]\nread_only = true\n' "$W/shared/mine" |
        as_user sh -c "cat > '$cfg/config.toml'"
    run runc "$W/shared/other:/data" -- 'echo STARTED'
    expect "narrowed: a host path the user config dropped is refused" test "$RC" -ne 0
    has "$OUT" "allowed_host_paths" "narrowed: the rule"
    run runc "$W/shared/mine:/data" -- 'echo x > /data/f && echo WROTE'
    has "$OUT" WROTE "narrowed: the user's remaining host path works"
    run runc "brand-new:/data" -- 'echo STARTED'
    has "$OUT" "auto_create = false" "narrowed: auto_create off"
    expect "narrowed: no volume created" test ! -e "$VOLS/brand-new"
    run runc "seed-runc:/data" -- 'echo x > /data/x && echo WROTE'
    has "$OUT" "Read-only file system" "narrowed: a volume the user made read-only"
    printf 'volumes_root = "/tmp/elsewhere"\n' | as_user sh -c "cat > '$cfg/config.toml'"
    run runc "seed-runc:/data" -- 'echo STARTED'
    expect "widening: the container does not start" test "$RC" -ne 0
    has "$OUT" "volumes_root" "widening: the key is named"
    has "$OUT" "may only narrow" "widening: the reason"
    expect "widening: nothing at /tmp/elsewhere" test ! -e /tmp/elsewhere
    rm -rf "$cfg"
}

case_check_and_volumes() {
    mkdir -p "$W/bundle" && echo '{"root":{"path":"'"$ROOTFS"'"},"process":{"user":{"uid":0,"gid":0}}}' > "$W/bundle/config.json"
    local out
    out=$(as_user "$W/bin/oci-volume-hook" --config "$W/config.toml" check --bundle "$W/bundle" \
        --annotation "$KEY=seed-runc:/data;idm:/x:idmap" 2>&1)
    say "check: $(printf '%s' "$out" | tr '\n' ' ' | cut -c1-600)"
    has "$out" "per-user (host uid $RL_UID" "check says the mode"
    has "$out" "$VOLS/seed-runc" "check uses the per-user volumes"
    has "$out" "idmapped mounts" "check refuses idmap as prestart does"
    out=$(as_user "$W/bin/oci-volume-hook" --config "$W/config.toml" volumes 2>&1)
    say "volumes: $(printf '%s' "$out" | tr '\n' ' ' | cut -c1-400)"
    has "$out" seed-runc "volumes lists the user's volumes"
}

# --------------------------------------------------------------- driver ---
say "user $RL_USER uid $RL_UID, subuid $SUB, home $RL_HOME, work $W"
rm -rf "$RL_HOME/.local/share/oci-volume-hook" "$RL_HOME/.config/oci-volume-hook" "$RECS"
upodman system migrate >/dev/null 2>&1
BEFORE=$(host_state)
STRAY_BEFORE=$(stray_files)

CASES=(seed_runc seed_crun user_1000 keep_id refused user_config check_and_volumes)
for CASE in "${CASES[@]}" host_untouched; do
    if [ -n "$FILTER" ] && ! [[ $CASE =~ $FILTER ]] && [ "$CASE" != host_untouched ]; then continue; fi
    FAILS=()
    if [ "$CASE" = host_untouched ]; then
        eq "$(host_state)" "$BEFORE" "/var/lib, /run and /etc oci-volume-hook directories unchanged"
        new=$(comm -13 <(printf '%s\n' "$STRAY_BEFORE") <(stray_files))
        eq "$new" "" "no file of the user or its subordinate ids outside home, /run/user/$RL_UID"
    else
        "case_$CASE"
    fi
    if [ ${#FAILS[@]} -eq 0 ]; then
        echo "PASS $CASE"; npass=$((npass + 1))
    else
        (IFS=';'; echo "FAIL $CASE: ${FAILS[*]}"); nfail=$((nfail + 1))
    fi
done
upodman system migrate >/dev/null 2>&1
echo "rootless: $npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
