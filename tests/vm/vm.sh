#!/bin/bash
# tests/vm/vm.sh - VM test tier: a Debian bookworm guest under qemu (TCG), SELinux enforcing, kernel nfsd inside.
#
#   vm.sh deps                         install host packages (idempotent)
#   vm.sh build                        kernel + initramfs + rootfs image, cached (rebuilt only when image.sh changes)
#   vm.sh run [opts] -- CMD...         boot, run CMD as root (unconfined_t) with /bin/sh in /mnt/host, print its
#                                      output, power off; exit with CMD's status, 125 on timeout/panic/no status
#       --share DIR      host directory shared read-write at /mnt/host over 9p (default: the repository root)
#       --no-selinux     boot without SELinux (default: security=selinux enforcing=1)
#       --timeout S      kill the guest after S seconds (default 900)
#       --boot-timeout S, --boot-retries N   a guest silent for S s (default 180) before "guest ready" is
#                        killed and booted again, N times (default 1)
#       --verbose        show the whole serial console (kernel and init messages too)
#   vm.sh shell [--share DIR] [--no-selinux]   interactive root shell on the serial console (Ctrl-a x quits)
#   vm.sh clean                        remove the cache
#
# Env: OVH_VM_CACHE (default /var/cache/oci-volume-hook-vm), OVH_VM_MEM (MB, default 2048), OVH_VM_SMP (default 2).
# The guest has no network (-nic none) and boots the image with snapshot=on: runs never change the cached image.
# KVM does not work on our CI machines (nested virtualisation): always TCG. See tests/vm/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${OVH_VM_CACHE:-/var/cache/oci-volume-hook-vm}
MEM=${OVH_VM_MEM:-2048}
SMP=${OVH_VM_SMP:-2}

log() { echo "vm.sh: $*" >&2; }
die() { log "error: $*"; exit 2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

# shellcheck source=image.sh
. "$HERE/image.sh"
KEY=$(sha256sum "$HERE/image.sh" | cut -c1-16)
IMG="$CACHE/image-$KEY"          # vmlinuz, initrd.img, rootfs.img, versions.txt

apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=900 --no-install-recommends "$@" >/dev/null; }

cmd_deps() {
  local need=()
  command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
  command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
  command -v cpio >/dev/null || need+=(cpio)
  command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
  command -v setfattr >/dev/null || need+=(attr)
  command -v flock >/dev/null || need+=(util-linux)
  [ ${#need[@]} -eq 0 ] && return 0
  log "deps: installing ${need[*]}"
  # Our machine image ships qemu-utils 10.0 from bookworm-backports, which breaks bookworm's qemu-system-x86 7.2:
  # then take qemu-system-x86 from bookworm-backports (same archive as the host's bookworm source).
  local tflag=()
  if dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null | grep -q bpo12; then
    if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
      local uri
      uri=$(awk '/^URIs:/{u=$2} /^Suites:/ && / bookworm( |$)/{print u; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
      [ -n "$uri" ] || uri=$(awk '$1=="deb" && $3=="bookworm"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
      [ -n "$uri" ] || die "deps: no bookworm apt source found to derive a bookworm-backports source from"
      printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$uri" > /etc/apt/sources.list.d/oci-volume-hook-vm-backports.sources
    fi
    tflag=(-t bookworm-backports)
  fi
  apt-get update -qq -o DPkg::Lock::Timeout=900
  apt_install "${tflag[@]}" "${need[@]}"
}

cmd_build() {
  if [ -s "$IMG/rootfs.img" ]; then log "build: cached image $IMG"; return 0; fi
  cmd_deps
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"; flock 9          # one build at a time
  if [ -s "$IMG/rootfs.img" ]; then log "build: cached image $IMG"; return 0; fi
  # apt (inside mmdebstrap) verifies signatures as its sandbox user _apt, which needs a world-writable /dev/null;
  # a host whose /dev/null lost mode 0666 (seen once after a userns e2e run) fails with a misleading
  # "gpgv ... required for verification, but neither seems installed"
  [ "$(stat -c '%F %a' /dev/null)" = "character special file 666" ] ||
    die "host /dev/null is '$(stat -c '%F %a %U:%G' /dev/null)', apt cannot verify signatures (fix: chown root:root /dev/null; chmod 666 /dev/null)"
  local t0; t0=$(now)
  log "build: image $KEY (image.sh changed or no cache) in $CACHE"
  build_all "$IMG" "$CACHE"
  find "$CACHE" -maxdepth 1 -name 'image-*' ! -name "image-$KEY" -exec rm -rf {} +   # older recipes
  log "build: done in $(elapsed "$t0")s: $(tr '\n' ';' < "$IMG/versions.txt")"
}

cmd_run() {
  local share=$REPO selinux=1 timeout=900 verbose=0 shell=0 boot_timeout=180 boot_retries=1
  while [ $# -gt 0 ]; do
    case "$1" in
      --share) share=$(cd "$2" && pwd); shift 2;;
      --no-selinux) selinux=0; shift;;
      --timeout) timeout=$2; shift 2;;
      --boot-timeout) boot_timeout=$2; shift 2;;
      --boot-retries) boot_retries=$2; shift 2;;
      --verbose) verbose=1; shift;;
      --shell) shell=1; shift;;
      --) shift; break;;
      -*) die "run: unknown option $1";;
      *) break;;
    esac
  done
  [ -s "$IMG/rootfs.img" ] || die "no image for this recipe; run '$0 build' first"
  [ $shell = 1 ] || [ $# -gt 0 ] || die "usage: $0 run [--share DIR] [--no-selinux] [--timeout S] -- CMD..."
  ctl=$(mktemp -d /tmp/ovh-vm-ctl.XXXXXX); chmod 755 "$ctl"
  trap 'rm -rf "${ctl:-/nonexistent}"' EXIT
  [ $shell = 1 ] || printf '%s\n' "$*" > "$ctl/cmd.sh"
  local append="console=ttyS0 panic=-1 quiet loglevel=4"
  [ $selinux = 1 ] && append+=" security=selinux enforcing=1"
  [ $shell = 1 ] && append+=" ovh.shell"
  # shellcheck disable=SC2054 # commas belong to qemu option values
  local qemu=(qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp "$SMP" -m "$MEM"
    -nographic -no-reboot -nic none -bios /usr/share/qemu/qboot.rom
    -kernel "$IMG/vmlinuz" -initrd "$IMG/initrd.img" -append "$append"
    -drive "file=$IMG/rootfs.img,format=raw,if=virtio,snapshot=on"
    -virtfs "local,path=$ctl,mount_tag=ovhctl,security_model=none"
    -virtfs "local,path=$share,mount_tag=host,security_model=none")
  if [ $shell = 1 ]; then "${qemu[@]}" || true; exit "$(cat "$ctl/rc" 2>/dev/null || echo 125)"; fi
  local t0 qrc rc wd attempt=1; t0=$(now)
  while :; do
    rm -f "$ctl/rc" "$ctl/boothang" "$ctl/qemu.pid"; : > "$ctl/console.log"
    # Boot watchdog: a guest that has not said "guest ready" after --boot-timeout seconds is stuck (seen once
    # under heavy host load: a TCG guest silent from the start). Kill that qemu (its pid file) and boot again.
    ( for _ in $(seq "$boot_timeout"); do sleep 1; grep -q '^ovh-vm: guest ready' "$ctl/console.log" && exit 0; done
      touch "$ctl/boothang"; [ -s "$ctl/qemu.pid" ] && kill "$(cat "$ctl/qemu.pid")" ) &
    wd=$!
    # stream the console; unless --verbose, only what CMD prints (after the "guest ready" line, before our marker)
    set +e
    timeout "$timeout" "${qemu[@]}" -pidfile "$ctl/qemu.pid" </dev/null 2>&1 | tee -a "$ctl/console.log" | tr -d '\r' |
      if [ $verbose = 1 ]; then cat; else
        awk '/^ovh-vm: guest ready/{on=1; next} /^OVH_VM_EXIT_STATUS=/{on=0} on && !/^\[ *[0-9.]+\] (reboot: Power down|ACPI)/{print; fflush()}'
      fi
    qrc=${PIPESTATUS[0]}
    set -e
    kill "$wd" 2>/dev/null || true; wait "$wd" 2>/dev/null || true
    [ -e "$ctl/boothang" ] || break
    log "guest did not boot within ${boot_timeout}s (attempt $attempt); console:"; tr -d '\r' < "$ctl/console.log" | tail -5 >&2
    [ "$attempt" -le "$boot_retries" ] || break
    attempt=$((attempt + 1))
  done
  if [ -s "$ctl/rc" ]; then rc=$(cat "$ctl/rc")
  else
    if [ -e "$ctl/boothang" ]; then log "guest never booted"
    elif [ "$qrc" = 124 ]; then log "guest timed out after ${timeout}s"
    else log "guest reported no exit status (qemu rc=$qrc)"; fi
    cp "$ctl/console.log" "/tmp/ovh-vm-console.$$.log"
    log "console tail (whole console: /tmp/ovh-vm-console.$$.log):"; tr -d '\r' < "$ctl/console.log" | tail -30 >&2
    rc=125
  fi
  log "guest exit status $rc; boot+run+poweroff $(elapsed "$t0")s"
  exit "$rc"
}

case "${1:-}" in
  deps) cmd_deps;;
  build) cmd_build;;
  run) shift; cmd_run "$@";;
  shell) shift; cmd_run --shell "$@";;
  clean) rm -rf "$CACHE";;
  *) sed -n '2,20p' "$0"; exit 2;;
esac
