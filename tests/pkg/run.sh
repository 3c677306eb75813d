#!/bin/bash
# shellcheck disable=SC2016,SC2012,SC2317 # code for containers; ls -t; trap-only cleanup
# tests/pkg/run.sh — the packages, end to end, as a user gets them.
#
# Builds the .deb (make deb), installs it with apt-get, checks its files and
# modes, then runs the seed story through podman with NO --hooks-dir and no
# other set-up: a container writes into a named volume, a second one reads it,
# the host sees it; the same through `podman kube play`.  Then apt-get remove
# (data kept; podman still works; what an annotated container gets without
# the hook), apt-get purge (config gone, data kept), make rpm (same layout as
# the .deb, scriptlets that delete no data) and the man pages (no warnings).
#
# Output: PASS/FAIL/SKIP lines, then "pkg: N passed, N failed".  Exit status
# non-zero when anything failed.  Needs root; without it the test is skipped
# loudly, except under CI=true, where a missing prerequisite is a failure.
# Cleans up what it installed: purges the package, removes its test volumes,
# pod and image.  Details of every step: $PKG_TEST_LOG (default
# /var/tmp/ovh-pkgtest.log).
#
#   tests/pkg/run.sh                    everything
#   PKG_TEST_NO_RPM=1 tests/pkg/run.sh  skip the rpm part

set -u
export LC_ALL=C DEBIAN_FRONTEND=noninteractive

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO" || exit 1
PKG=oci-volume-hook
ANN=oci-volume-hook/volumes
VOLROOT=/var/lib/oci-volume-hook/volumes
HOOKSDIR=/usr/share/containers/oci/hooks.d
LOG=${PKG_TEST_LOG:-/var/tmp/ovh-pkgtest.log}
ULIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
TMO=${PKG_TEST_TIMEOUT:-180}   # bound on every podman call
# podman's default runtime here, crun 1.8, refuses hybrid cgroups (see
# shared/notes/host-lab.md): the story runs with runc, which is a choice of
# runtime, not hook set-up.  One more read goes through crun at the end.
RUNTIME=${PKG_TEST_RUNTIME:-runc}
PODMAN=(podman --runtime "$RUNTIME")
ID=pkgtest-$$
IMAGE=localhost/ovh-pkgtest-busybox:$ID
START=$(date +%s)

npass=0 nfail=0
: > "$LOG"
say()  { printf '%s\n' "$*"; printf '%s\n' "$*" >> "$LOG"; }
pass() { npass=$((npass + 1)); say "PASS $*"; }
fail() { nfail=$((nfail + 1)); say "FAIL $*"; }
skip() { say "SKIP $*"; }
note() { say "     $*"; }
# check DESCRIPTION COMMAND...: the command's output goes to the log.
check() {
    local what=$1; shift
    printf '+ %s\n' "$*" >> "$LOG"
    if "$@" >> "$LOG" 2>&1; then pass "$what"; else fail "$what"; fi
}
# run COMMAND...: output into $OUT and the log, status into $RC.
run() {
    printf '+ %s\n' "$*" >> "$LOG"
    OUT=$("$@" 2>&1); RC=$?
    printf '%s\n[rc=%s]\n' "$OUT" "$RC" >> "$LOG"
}
elapsed() { echo "$(( $(date +%s) - START ))s"; }
finish() {
    say "pkg: $npass passed, $nfail failed ($(elapsed); log: $LOG)"
    [ "$nfail" = 0 ]
    exit $?
}
# A missing prerequisite: loud SKIP by hand, FAIL under CI.
prereq_missing() {
    if [ "${CI:-}" = true ]; then
        fail "prerequisite: $*"
    else
        skip "prerequisite: $* — the package test did not run"
    fi
    finish
}

# ------------------------------------------------------------- prerequisites
[ "$(id -u)" = 0 ] || prereq_missing "must run as root (installs packages, runs podman as root)"
command -v apt-get >/dev/null || prereq_missing "apt-get (a Debian-like host)"

if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q 'install ok\|config-files'; then
    if [ "${PKG_TEST_REPLACE:-}" = 1 ]; then
        note "purging the $PKG package found installed (PKG_TEST_REPLACE=1)"
        apt-get purge -y "$PKG" >> "$LOG" 2>&1
    else
        fail "prerequisite: $PKG is already installed here; purge it first (or PKG_TEST_REPLACE=1)"
        finish
    fi
fi
# A copy of our hooks.d entries in /etc would override the packaged ones.
for f in /etc/containers/oci/hooks.d/$PKG-prestart.json /etc/containers/oci/hooks.d/$PKG-poststop.json; do
    [ -e "$f" ] && { fail "prerequisite: $f exists and would override the package's hooks.d entry"; finish; }
done

DEPS=(debhelper dpkg-dev fakeroot go-md2man rpm make gzip podman runc conmon
      busybox-static man-db groff-base)
missing=()
for p in "${DEPS[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    note "installing ${missing[*]}"
    if ! apt-get install -y -o DPkg::Lock::Timeout=900 "${missing[@]}" >> "$LOG" 2>&1; then
        apt-get update -o DPkg::Lock::Timeout=900 >> "$LOG" 2>&1
        apt-get install -y -o DPkg::Lock::Timeout=900 "${missing[@]}" >> "$LOG" 2>&1 ||
            prereq_missing "apt-get install ${missing[*]} failed (see $LOG)"
    fi
fi
# rustup's toolchain, not Debian's (too old for rust-version 1.85).
export PATH=${CARGO_HOME:-$HOME/.cargo}/bin:$PATH
command -v cargo >/dev/null || prereq_missing "cargo (rustup toolchain in ~/.cargo/bin)"
pass "prerequisites: root, build and runtime packages, cargo ($(cargo --version | cut -d' ' -f2)) [$(elapsed)]"

# ------------------------------------------------------------------ cleanup
INSTALLED=0
cleanup() {
    set +e
    podman pod rm -f "$ID" >/dev/null 2>&1
    podman rmi -f "$IMAGE" >/dev/null 2>&1
    if [ "$INSTALLED" = 1 ] && dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q 'install ok\|config-files'; then
        apt-get purge -y "$PKG" >> "$LOG" 2>&1
    fi
    rm -rf "${VOLROOT:?}/$ID" "${VOLROOT:?}/$ID-kube"
    # Left by the purge only because our test volumes were in it.
    if ! dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q 'install ok'; then
        rmdir "$VOLROOT" /var/lib/oci-volume-hook 2>/dev/null
    fi
    [ -n "${TMP:-}" ] && rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
TMP=$(mktemp -d /var/tmp/ovh-pkgtest.XXXXXX)

# -------------------------------------------------------------- build .deb
t0=$(date +%s)
run make deb
if [ "$RC" = 0 ]; then
    pass "make deb [$(( $(date +%s) - t0 ))s]"
else
    fail "make deb (rc=$RC): $(printf '%s' "$OUT" | tail -n 5 | tr '\n' ' ')"
    finish
fi
VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)
DEB=$(ls -t "$REPO"/build/${PKG}_"$VERSION"-*.deb | head -n1)
note "$DEB"

# ------------------------------------------------------------ install .deb
run apt-get install -y -o DPkg::Lock::Timeout=900 "$DEB"
if [ "$RC" = 0 ]; then
    INSTALLED=1; pass "apt-get install ./$(basename "$DEB")"
else
    fail "apt-get install $DEB: $(printf '%s' "$OUT" | tail -n 3 | tr '\n' ' ')"; finish
fi

files=$(dpkg -L "$PKG")
printf '%s\n' "$files" | sed 's/^/    /' >> "$LOG"
for f in /usr/bin/$PKG /usr/bin/oci-volume-runtime \
         $HOOKSDIR/$PKG-prestart.json $HOOKSDIR/$PKG-poststop.json \
         /etc/$PKG/config.toml \
         /usr/share/man/man1/$PKG.1.gz /usr/share/man/man1/oci-volume-runtime.1.gz \
         /usr/share/man/man5/$PKG.conf.5.gz \
         /usr/share/man/man5/$PKG-volumes.5.gz \
         /usr/share/bash-completion/completions/$PKG \
         /usr/share/zsh/vendor-completions/_$PKG \
         /usr/share/fish/vendor_completions.d/$PKG.fish \
         $VOLROOT; do
    if printf '%s\n' "$files" | grep -qxF "$f" && [ -e "$f" ]; then
        pass "dpkg -L lists and installed $f"
    else
        fail "dpkg -L: $f missing"
    fi
done
check "hooks.d entries are the repository's hooks.d/ files unchanged" \
    sh -c "cmp hooks.d/$PKG-prestart.json $HOOKSDIR/$PKG-prestart.json &&
           cmp hooks.d/$PKG-poststop.json $HOOKSDIR/$PKG-poststop.json"
check "/etc/$PKG/config.toml is a conffile" \
    sh -c "dpkg-query -W -f='\${Conffiles}\n' $PKG | grep -q ' /etc/$PKG/config.toml '"
check "/etc/$PKG/config.toml is the repository's etc/config.toml" cmp etc/config.toml /etc/$PKG/config.toml
mode=$(stat -c '%a %U:%G' "$VOLROOT" 2>/dev/null)
if [ "$mode" = "700 root:root" ]; then pass "$VOLROOT is 0700 root:root"; else fail "$VOLROOT is '$mode', want '700 root:root'"; fi
mode=$(stat -c '%a %U:%G' /usr/bin/$PKG /etc/$PKG/config.toml 2>/dev/null | tr '\n' ' ')
if [ "$mode" = "755 root:root 644 root:root " ]; then pass "binary 0755, config 0644, both root"; else fail "modes: $mode"; fi
run /usr/bin/$PKG --version
if [ "$RC" = 0 ] && printf '%s' "$OUT" | grep -qF "$VERSION"; then pass "$PKG --version: $OUT"; else fail "$PKG --version: $OUT"; fi
run /usr/bin/$PKG --help
if printf '%s' "$OUT" | grep -q prestart && printf '%s' "$OUT" | grep -q check && printf '%s' "$OUT" | grep -q completions; then
    pass "$PKG --help lists prestart, check, completions"
else
    fail "$PKG --help lacks prestart/check/completions"
fi
check "man finds the installed pages (man -w)" \
    sh -c "man -w $PKG && man -w 5 $PKG.conf && man -w 5 $PKG-volumes"
check "bash completion script loads" bash -c "source /usr/share/bash-completion/completions/$PKG && complete -p $PKG"

# ------------------------------------------------------------ the seed story
# A busybox rootfs (no registry here) for --rootfs, and the same as a local
# image for kube play.
ROOTFS=$TMP/rootfs
mkdir -p "$ROOTFS"/{bin,proc,sys,dev,etc,tmp}
cp /bin/busybox "$ROOTFS/bin/busybox"
for a in $(/bin/busybox --list); do [ -e "$ROOTFS/bin/$a" ] || ln -s busybox "$ROOTFS/bin/$a"; done
cp -a "$ROOTFS" "$TMP/rootfs-clean"   # stays without /myapp
cp -a "$ROOTFS" "$TMP/rootfs-myapp" && mkdir "$TMP/rootfs-myapp/myapp"

podman_run() { # podman_run ROOTFS [podman options] -- COMMAND...
    local rootfs=$1; shift
    local -a opts=()
    while [ "$1" != -- ]; do opts+=("$1"); shift; done
    shift
    run timeout "$TMO" "${PODMAN[@]}" run --rm --network none "${ULIMITS[@]}" "${opts[@]}" --rootfs "$rootfs" "$@"
}

t0=$(date +%s)
podman_run "$ROOTFS" --cidfile "$TMP/cid1" --annotation "$ANN=$ID:/myapp" -- \
    sh -c 'echo hello > /myapp/greeting'
if [ "$RC" = 0 ]; then pass "podman run --annotation $ANN=$ID:/myapp writes /myapp/greeting"
else fail "podman run writer (rc=$RC): $OUT"; fi
podman_run "$ROOTFS" --annotation "$ANN=$ID:/myapp" -- cat /myapp/greeting
if [ "$RC" = 0 ] && [ "$OUT" = hello ]; then pass "a second container reads 'hello'"
else fail "second container (rc=$RC): '$OUT', want 'hello'"; fi
got=$(cat "$VOLROOT/$ID/greeting" 2>&1)
if [ "$got" = hello ]; then pass "host: $VOLROOT/$ID/greeting = hello"; else fail "host file: '$got'"; fi
run /usr/bin/$PKG volumes
if [ "$RC" = 0 ] && printf '%s\n' "$OUT" | grep -q "^$ID .*$VOLROOT/$ID\$"; then
    pass "$PKG volumes lists $ID"
else
    fail "$PKG volumes (rc=$RC): $OUT"
fi
podman_run "$ROOTFS" --annotation "$ANN=$ID:/myapp:ro" -- sh -c 'cat /myapp/greeting; echo x > /myapp/other'
if [ "$RC" != 0 ] && printf '%s' "$OUT" | grep -q '^hello' && printf '%s' "$OUT" | grep -qi 'read-only' &&
   [ ! -e "$VOLROOT/$ID/other" ]; then
    pass "':ro' volume reads, refuses writes ($(printf '%s' "$OUT" | tail -n1))"
else
    fail "':ro' volume (rc=$RC): $OUT"
fi
cid=$(cat "$TMP/cid1" 2>/dev/null)
if [ -s "$VOLROOT/$ID/greeting" ] && [ -n "$cid" ] && [ ! -e "/run/oci-volume-hook/containers/$cid.json" ]; then
    pass "poststop removed the container's record"
else
    fail "record /run/oci-volume-hook/containers/$cid.json still there (poststop did not run?)"
fi
podman_run "$ROOTFS" --annotation "$ANN=/etc:/x" -- true
if [ "$RC" != 0 ] && printf '%s' "$OUT" | grep -q 'denied by policy'; then
    pass "a host path is denied by the default policy: $(printf '%s' "$OUT" | grep -o 'oci-volume-hook: .*denied by policy.*' | head -n1)"
else
    fail "host path /etc not denied (rc=$RC): $OUT"
fi
podman_run "$ROOTFS" -- sh -c 'echo plain'
if [ "$RC" = 0 ] && [ "$OUT" = plain ]; then pass "podman without the annotation is unaffected"; else fail "plain podman run (rc=$RC): $OUT"; fi
# The same volume through crun, with the work-around for hybrid cgroups.
if command -v crun >/dev/null && command -v unshare >/dev/null; then
    run timeout "$TMO" unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' sh \
        podman --runtime crun run --rm --network none "${ULIMITS[@]}" \
        --annotation "$ANN=$ID:/myapp" --rootfs "$ROOTFS" cat /myapp/greeting
    if [ "$RC" = 0 ] && [ "$OUT" = hello ]; then pass "podman --runtime crun reads 'hello' too"
    else fail "podman --runtime crun (rc=$RC): $OUT"; fi
fi
note "podman run part: $(( $(date +%s) - t0 ))s"

# kube play: no --ulimit there, so CONTAINERS_CONF with default_ulimits (it
# sets nothing about hooks).
t0=$(date +%s)
printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n' > "$TMP/containers.conf"
run sh -c "tar -C '$TMP/rootfs-clean' -c . | podman import - '$IMAGE'"
[ "$RC" = 0 ] || fail "podman import busybox rootfs: $OUT"
cat > "$TMP/pod.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $ID
  annotations:
    $ANN: "$ID-kube:/myapp"
spec:
  restartPolicy: Never
  containers:
  - name: writer
    image: $IMAGE
    imagePullPolicy: Never
    command: ["/bin/sh", "-c", "echo kube-hello > /myapp/greeting"]
EOF
run env CONTAINERS_CONF="$TMP/containers.conf" timeout "$TMO" "${PODMAN[@]}" kube play --network none "$TMP/pod.yaml"
if [ "$RC" = 0 ]; then
    run timeout "$TMO" podman wait "$ID-writer"
    code=$(printf '%s' "$OUT" | tail -n1)
    got=$(cat "$VOLROOT/$ID-kube/greeting" 2>&1)
    if [ "$code" = 0 ] && [ "$got" = kube-hello ]; then
        pass "podman kube play: pod annotation attaches $ID-kube, host sees 'kube-hello'"
    else
        fail "kube play: container exit '$code', host file '$got'"
        run podman logs "$ID-writer"; note "logs: $OUT"
    fi
    podman_run "$ROOTFS" --annotation "$ANN=$ID-kube:/data" -- cat /data/greeting
    if [ "$OUT" = kube-hello ]; then pass "podman run reads the volume kube play wrote"; else fail "read kube volume: $OUT"; fi
else
    fail "podman kube play (rc=$RC): $(printf '%s' "$OUT" | tail -n 3 | tr '\n' ' ')"
fi
podman pod rm -f "$ID" >> "$LOG" 2>&1
note "kube play part: $(( $(date +%s) - t0 ))s"

# ------------------------------------------------------------------ remove
run apt-get remove -y "$PKG"
if [ "$RC" = 0 ]; then pass "apt-get remove $PKG"; else fail "apt-get remove: $OUT"; fi
if [ ! -e /usr/bin/$PKG ] && [ ! -e $HOOKSDIR/$PKG-prestart.json ] && [ ! -e $HOOKSDIR/$PKG-poststop.json ]; then
    pass "remove: binary and hooks.d entries gone"
else
    fail "remove left the binary or a hooks.d entry"
fi
got=$(cat "$VOLROOT/$ID/greeting" 2>&1)
if [ "$got" = hello ]; then pass "remove keeps volume data ($VOLROOT/$ID/greeting = hello)"; else fail "after remove: '$got'"; fi
check "remove keeps /etc/$PKG/config.toml (a conffile)" test -f /etc/$PKG/config.toml
podman_run "$ROOTFS" -- sh -c 'echo plain'
if [ "$RC" = 0 ] && [ "$OUT" = plain ]; then pass "podman without the annotation works after remove"; else fail "plain podman after remove (rc=$RC): $OUT"; fi
# What a user sees when the hook is gone (documented in oci-volume-hook(1) NOTES):
podman_run "$TMP/rootfs-clean" --annotation "$ANN=$ID:/myapp" -- sh -c 'echo after-remove > /myapp/greeting'
note "hook gone, image without /myapp: rc=$RC, output: $OUT"
if [ "$RC" != 0 ] && printf '%s' "$OUT" | grep -q "can't create /myapp/greeting"; then
    pass "hook gone: annotation ignored, write to /myapp fails (rc=$RC: $OUT)"
else
    fail "hook gone, image without /myapp: rc=$RC: $OUT"
fi
podman_run "$TMP/rootfs-myapp" --annotation "$ANN=$ID:/myapp" -- sh -c 'echo after-remove > /myapp/greeting; cat /myapp/greeting'
note "hook gone, image with /myapp: rc=$RC, output: $OUT"
got=$(cat "$VOLROOT/$ID/greeting" 2>&1)
if [ "$RC" = 0 ] && [ "$OUT" = after-remove ] && [ "$got" = hello ]; then
    pass "hook gone: container starts silently, its write lands in the container, not the volume"
else
    fail "hook gone, image with /myapp: rc=$RC out='$OUT' volume='$got'"
fi

# ------------------------------------------------------------------- purge
run apt-get purge -y "$PKG"
if [ "$RC" = 0 ]; then pass "apt-get purge $PKG"; else fail "apt-get purge: $OUT"; fi
if printf '%s' "$OUT" | grep -q 'volume data kept'; then pass "purge tells where the volume data is kept"
else fail "purge did not say that volume data is kept"; fi
got=$(cat "$VOLROOT/$ID/greeting" "$VOLROOT/$ID-kube/greeting" 2>&1 | tr '\n' ' ')
if [ "$got" = "hello kube-hello " ]; then pass "purge keeps volume data"; else fail "after purge: '$got'"; fi
if [ ! -e /etc/$PKG ]; then pass "purge removes /etc/$PKG"; else fail "purge left $(ls -A /etc/$PKG)"; fi
if ! dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q 'install ok\|config-files'; then
    pass "dpkg knows nothing of $PKG any more"; else fail "dpkg still lists $PKG"; fi

# ------------------------------------------------------------ scriptlets
scripts=$(dpkg-deb --ctrl-tarfile "$DEB" | tar -xOf - --wildcards './p*' 2>/dev/null)
if printf '%s\n' "$scripts" | grep -v '^\s*#' | grep -E '\brm\b' | grep -qE 'var/lib|volumes'; then
    fail ".deb maintainer scripts delete under /var/lib: $(printf '%s\n' "$scripts" | grep -E '\brm\b')"
else
    pass ".deb maintainer scripts delete no volume data"
fi

# ------------------------------------------------------------------- rpm
if [ "${PKG_TEST_NO_RPM:-}" = 1 ]; then
    skip "rpm (PKG_TEST_NO_RPM=1)"
else
    t0=$(date +%s)
    run make rpm
    if [ "$RC" = 0 ]; then
        pass "make rpm [$(( $(date +%s) - t0 ))s]"
        RPMF=$(ls -t "$REPO"/build/$PKG-"$VERSION"-*.rpm | head -n1)
        note "$RPMF"
        rpm -qlvp "$RPMF" >> "$LOG" 2>&1
        # Same payload paths as the .deb, apart from Debian's doc and lintian
        # dirs, rpm's build-id links, man page compression and zsh's vendor
        # dir.
        norm() { sed -e 's/\.gz$//' -e 's|/zsh/vendor-completions/|/zsh/site-functions/|' |
                 grep -v -e '^/usr/share/doc/' -e '^/usr/share/lintian/' -e '^/usr/lib/\.build-id' | sort -u; }
        dpkg-deb --fsys-tarfile "$DEB" | tar -tvf - | awk '$1 !~ /^d/ {print $NF}' | sed 's|^\./|/|' | norm > "$TMP/deb.files"
        rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$RPMF" | awk '$1 !~ /^d/ {print $2}' | norm > "$TMP/rpm.files"
        if diff -u "$TMP/deb.files" "$TMP/rpm.files" >> "$LOG" 2>&1; then
            pass "rpm -qlp: same files as the .deb ($(wc -l < "$TMP/rpm.files") files)"
        else
            fail "rpm and .deb file lists differ: $(diff "$TMP/deb.files" "$TMP/rpm.files" | grep '^[<>]' | tr '\n' ' ')"
        fi
        got=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]' "$RPMF" | grep " $VOLROOT\$")
        if [ "${got%% *}" = drwx------ ] && printf '%s' "$got" | grep -q ' root:root '; then
            pass "rpm: $VOLROOT is 0700 root:root"; else fail "rpm: $VOLROOT is '$got'"; fi
        got=$(rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$RPMF" | grep " /etc/$PKG/config.toml\$")
        if [ "${got%% *}" = cn ]; then pass "rpm: config.toml is %config(noreplace)"; else fail "rpm: config flags '$got'"; fi
        scripts=$(rpm -qp --scripts "$RPMF")
        printf '%s\n' "$scripts" >> "$LOG"
        if printf '%s\n' "$scripts" | grep -v '^\s*#' | grep -E '\brm\b' | grep -qE 'var/lib|volumes'; then
            fail "rpm scriptlets delete under /var/lib: $scripts"
        else
            pass "rpm scriptlets delete no volume data"
        fi
    else
        fail "make rpm (rc=$RC): $(printf '%s' "$OUT" | tail -n 5 | tr '\n' ' ')"
    fi
fi

# -------------------------------------------------------------- man pages
run make docs
for page in build/man/$PKG.1 build/man/oci-volume-runtime.1 build/man/$PKG.conf.5 build/man/$PKG-volumes.5; do
    w1=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
    w2=$(groff -ww -z -t -man "$page" 2>&1)
    lines=$(MANWIDTH=80 man -l "$page" 2>/dev/null | wc -l)
    if [ -s "$page" ] && [ -z "$w1$w2" ] && [ "$lines" -gt 20 ]; then
        pass "man -l $page renders ($lines lines) without warnings"
    else
        fail "man -l $page: $w1 $w2"
    fi
done

finish
