# shellcheck shell=bash
# tests/vm/image.sh - the VM image build recipe (sourced by vm.sh; not run directly).
#
# Produces, in the directory $1 given to build_all:  vmlinuz, initrd.img, rootfs.img (ext4, SELinux-labelled).
# The sha256 of THIS FILE is the cache key: editing anything here rebuilds the image, nothing else does.
# Only Debian packages from the host's apt sources are used (apt-get download, mmdebstrap without a mirror).
#
# Guest: Debian bookworm, Debian's 6.1 kernel, SELinux reference policy (selinux-policy-default) plus the
# container module built from refpolicy source (bookworm ships container.te but does not build it), runc,
# crun, podman, kernel nfsd. Boot with "security=selinux enforcing=1" (see vm.sh).

SUITE=bookworm
PKGS=runc,crun,podman,nfs-kernel-server,nfs-common,rpcbind,selinux-basics,selinux-policy-default,selinux-utils
PKGS+=,policycoreutils,busybox-static,kmod,iproute2,procps,e2fsprogs,util-linux,selinux-policy-dev
PKGS+=,selinux-policy-src,checkpolicy,semodule-utils,make,m4,zstd,attr,python3
# no fsync per file in dpkg (the tarball is written once at the end anyway)
MMDEBSTRAP_OPTS="--variant=minbase --dpkgopt=force-unsafe-io"
# modules the initramfs loads to mount the ext4 root on virtio-blk and the 9p shares (deps are resolved)
INITRD_MODS="virtio_pci virtio_blk ext4 crc32c_generic 9p 9pnet_virtio"

# ---------------------------------------------------------------------------------------------------------------
# Kernel: the 6.1 ABI that bookworm's linux-image-amd64 points at, unpacked (vmlinuz + modules)
build_kernel() {  # $1 = work dir
  local W=$1 kv
  kv=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: linux-image-\(6\.1\.[0-9a-z.-]*-amd64\)$/\1/p' | head -1)
  if [ -z "$kv" ]; then apt-get update -qq; kv=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: linux-image-\(6\.1\.[0-9a-z.-]*-amd64\)$/\1/p' | head -1); fi
  [ -n "$kv" ] || die "cannot determine the bookworm kernel version (apt-cache depends linux-image-amd64)"
  log "kernel: linux-image-$kv"
  mkdir -p "$W/kdeb" "$W/kernel"
  (cd "$W/kdeb" && apt-get download -q "linux-image-$kv" >/dev/null 2>&1) || die "apt-get download linux-image-$kv failed"
  dpkg-deb -x "$W"/kdeb/linux-image-*.deb "$W/kernel"
  cp "$W/kernel/boot/vmlinuz-$kv" "$W/vmlinuz"
  echo "$kv" > "$W/kernel.ver"
}

# ---------------------------------------------------------------------------------------------------------------
# Root filesystem tarball (the slow step, ~85 s). Cached separately, keyed on suite + package list only, so that
# editing the guest init below does not re-run mmdebstrap.
rootfs_tar() {  # $1 = cache dir; prints the tarball path
  local key tar
  key=$(printf '%s %s %s\n' "$SUITE" "$PKGS" "$MMDEBSTRAP_OPTS" | sha256sum | cut -c1-16)
  tar="$1/rootfs-$key.tar"
  if [ ! -s "$tar" ]; then
    log "rootfs: mmdebstrap $SUITE minbase + $PKGS"
    local t0; t0=$(now)
    rm -rf "$1"/rootfs-*.tar   # older package lists
    # shellcheck disable=SC2086
    mmdebstrap --quiet $MMDEBSTRAP_OPTS --include="$PKGS" --aptopt='Acquire::Check-Valid-Until "false"' \
      "$SUITE" "$tar.part.tar" >&2 || { rm -f "$tar.part.tar"; die "mmdebstrap failed"; }   # *.tar: mmdebstrap makes a tarball
    mv "$tar.part.tar" "$tar"
    log "rootfs: mmdebstrap took $(elapsed "$t0")s"
  fi
  echo "$tar"
}

# ---------------------------------------------------------------------------------------------------------------
# Guest PID 1 (a shell script, labelled init_exec_t by setfiles).
# Stage 1 runs as kernel_t: load the policy, re-exec so that PID 1 becomes init_t.
# Stage 2: relabel /dev, reopen the console (inherited fds are kernel_t and make mount(8) fail under enforcing),
# mount API filesystems and the 9p shares, run /mnt/ovhctl/cmd.sh, write its status to /mnt/ovhctl/rc, power off.
write_guest_init() {
cat > "$1" <<'INIT'
#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb LANG=C.UTF-8
if [ -z "$OVH_STAGE2" ]; then
  # busybox mount: util-linux mount would leave an unlabeled /run/mount/utab before the policy is loaded
  busybox mount -t proc -o nosuid,nodev,noexec proc /proc
  busybox mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
  if grep -qw 'security=selinux' /proc/cmdline; then
    load_policy -i || echo "ovh-vm: load_policy -i FAILED"
  fi
  echo "ovh-vm: policy loaded at $(cut -d' ' -f1 /proc/uptime)s"
  export OVH_STAGE2=1
  exec /sbin/init
fi
[ -e /sys/fs/selinux/enforce ] && restorecon -R /dev >/dev/null 2>&1
exec </dev/console >/dev/console 2>&1
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mkdir -p /dev/pts /dev/shm /dev/mqueue /run/lock
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
mount -t mqueue mqueue /dev/mqueue 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
[ -e /sys/fs/selinux/enforce ] && restorecon -R /run /tmp /dev /sys/fs/cgroup >/dev/null 2>&1
hostname ovh-vm
ip link set lo up
# 9p has no labelling rule in this policy: give it a fixed label. busybox mount stays in PID 1's domain
# (mount(8) would transition to mount_t, which may not relabel 9p).
ctx=""; [ -e /sys/fs/selinux/enforce ] && ctx=",context=system_u:object_r:bin_t:s0"
mkdir -p /mnt/ovhctl /mnt/host
for tag in ovhctl host; do
  grep -qx "$tag" /sys/bus/virtio/drivers/9pnet_virtio/virtio*/mount_tag 2>/dev/null || continue
  busybox mount -t 9p -o "trans=virtio,version=9p2000.L,msize=512000,cache=none$ctx" "$tag" "/mnt/$tag" ||
    echo "ovh-vm: cannot mount 9p share $tag"
done
echo "ovh-vm: guest ready at ${OVH_UP:-$(cut -d' ' -f1 /proc/uptime)}s; selinux=$(cat /sys/fs/selinux/enforce 2>/dev/null || echo off)"
ctxarg=""
[ -e /sys/fs/selinux/enforce ] && ctxarg="runcon unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023"
rc=254
if grep -qw ovh.shell /proc/cmdline; then
  echo "ovh-vm: interactive shell; 'exit' powers off"
  (cd /mnt/host 2>/dev/null || cd /root; setsid -c $ctxarg /bin/sh -l </dev/ttyS0 >/dev/ttyS0 2>&1); rc=$?
elif [ -f /mnt/ovhctl/cmd.sh ]; then
  (cd /mnt/host 2>/dev/null || cd /root; exec $ctxarg /bin/sh /mnt/ovhctl/cmd.sh </dev/null); rc=$?
else
  echo "ovh-vm: no command (/mnt/ovhctl/cmd.sh missing)"
fi
echo "$rc" > /mnt/ovhctl/rc 2>/dev/null || echo "ovh-vm: cannot write the exit status file"
sync
echo "OVH_VM_EXIT_STATUS=$rc"
busybox poweroff -f
INIT
}

# initramfs /init: insmod the modules listed in /modules.list (dependency order), mount /dev/vda, switch_root
write_initramfs_init() {
cat > "$1" <<'INIT'
#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /newroot
/bin/busybox mount -t proc proc /proc
echo "ovh-vm: initramfs at $(/bin/busybox cut -d' ' -f1 /proc/uptime)s"
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
for m in $(/bin/busybox cat /modules.list); do /bin/busybox insmod "/mods/$m" 2>/dev/null; done
i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do /bin/busybox sleep 0.1; i=$((i+1)); done
/bin/busybox mount -t ext4 -o rw /dev/vda /newroot || { echo "ovh-vm initramfs: cannot mount /dev/vda"; exec /bin/busybox sh; }
/bin/busybox mount --move /dev /newroot/dev
/bin/busybox umount /proc /sys
exec /bin/busybox switch_root /newroot /sbin/init
INIT
}

# ---------------------------------------------------------------------------------------------------------------
build_image() {  # $1 = work dir (holds kernel/, kernel.ver), $2 = rootfs tarball
  local W=$1 R=$1/rootfs kv t0
  kv=$(cat "$W/kernel.ver")
  mkdir -p "$R"
  tar -C "$R" -xpf "$2" --numeric-owner
  # kernel modules (merged /usr), pruned of hardware qemu never shows this guest
  mkdir -p "$R/usr/lib/modules"
  cp -a "$W/kernel/lib/modules/$kv" "$R/usr/lib/modules/"
  local M="$R/usr/lib/modules/$kv/kernel"
  rm -rf "$M/sound" "$M"/drivers/{gpu,media,net/wireless,net/ethernet,infiniband,staging,isdn,hid,usb,bluetooth,iio,input,mfd,platform,scsi,ata,mmc,nfc,misc,mtd,video,leds,power,hwmon,thermal,edac} "$M"/net/{bluetooth,wireless,mac80211}
  chroot "$R" depmod "$kv"
  write_guest_init "$R/usr/sbin/init"; chmod 755 "$R/usr/sbin/init"
  sed -i 's/^SELINUX=.*/SELINUX=enforcing/' "$R/etc/selinux/config"
  echo ovh-vm > "$R/etc/hostname"
  printf '127.0.0.1 localhost ovh-vm\n::1 localhost ip6-localhost\n' > "$R/etc/hosts"
  mkdir -p "$R/srv/nfs" "$R/var/lib/nfs/rpc_pipefs" "$R/var/lib/nfs/v4recovery"
  : > "$R/etc/exports"
  rm -f "$R/etc/resolv.conf"
  # SELinux container module from the refpolicy source (container_t, container_file_t, spc_t ...), with Debian's
  # runc/crun paths added as container_engine_exec_t (upstream container.fc only names /usr/bin/runc).
  # Plus one local rule for podman: conmon hands containers pipes created by the (unconfined) caller.
  # Installing modules at build time: inside the guest it takes over a minute under TCG.
  log "image: building the SELinux container module"
  t0=$(now)
  # shellcheck disable=SC2016 # expanded by the chroot's shell
  chroot "$R" sh -ec '
    mkdir -p /root/pol && cd /root/pol
    s=selinux-policy-src/policy/modules/services
    tar -xf /usr/src/selinux-policy-src.tar.zst --use-compress-program=zstd $s/container.te $s/container.fc
    cp $s/container.te $s/container.fc .
    printf "/usr/sbin/runc\t--\tgen_context(system_u:object_r:container_engine_exec_t,s0)\n/usr/sbin/crun\t--\tgen_context(system_u:object_r:container_engine_exec_t,s0)\n" >> container.fc
    make -s -f /usr/share/selinux/devel/Makefile container.pp >/dev/null
    printf "(allow container_domain unconfined_t (fifo_file (read write getattr append ioctl lock)))\n" > ovh_vm_local.cil
    semodule -n -i container.pp ovh_vm_local.cil 2>&1 | grep -v "not in password file" || true
    semodule -n -l | grep -qx container
    cd / && rm -rf /root/pol /usr/src/selinux-policy-src.tar.zst'
  # nothing in the guest reads these: a smaller image is a faster mkfs
  rm -rf "$R"/usr/share/doc/* "$R"/usr/share/man/* "$R"/usr/share/info/* "$R"/usr/share/locale/* \
    "$R"/var/cache/apt/* "$R"/var/lib/apt/lists/*
  log "image: policy module took $(elapsed "$t0")s"
  # Label everything now (libselinux relabels through /proc/self/fd: /proc must be mounted in the chroot)
  t0=$(now)
  mount -t proc proc "$R/proc"
  chroot "$R" setfiles -F -e /proc -e /sys -e /dev /etc/selinux/default/contexts/files/file_contexts / || { umount "$R/proc"; die "setfiles failed"; }
  umount "$R/proc"
  setfattr -h -n security.selinux -v system_u:object_r:proc_t:s0 "$R/proc"
  setfattr -h -n security.selinux -v system_u:object_r:sysfs_t:s0 "$R/sys"
  setfattr -h -n security.selinux -v system_u:object_r:device_t:s0 "$R/dev"
  log "image: setfiles took $(elapsed "$t0")s"
  # mkfs -d copies xattrs (labels). Sparse 3G file; runs use snapshot=on, so the image never changes.
  mkfs.ext4 -q -F -L ovhroot -E lazy_itable_init=0,lazy_journal_init=0 -d "$R" "$W/rootfs.img" 3G >/dev/null
  # initramfs: static busybox + the modules for virtio-blk, ext4, 9p in modprobe's dependency order
  local I="$W/initramfs"; mkdir -p "$I/bin" "$I/mods"
  cp "$R/usr/bin/busybox" "$I/bin/"
  write_initramfs_init "$I/init"; chmod 755 "$I/init"
  : > "$I/modules.list"
  for m in $INITRD_MODS; do chroot "$R" modprobe -S "$kv" --show-depends "$m"; done | awk '$1=="insmod"{print $2}' | awk '!s[$0]++' |
    while read -r p; do cp "$R/usr$p" "$I/mods/"; basename "$p" >> "$I/modules.list"; done
  (cd "$I" && find . | cpio -o -H newc --quiet | gzip -1) > "$W/initrd.img"
  # provenance, for the report and for debugging
  # shellcheck disable=SC2016
  chroot "$R" dpkg-query -W -f='${Package} ${Version}\n' runc crun podman nfs-kernel-server selinux-policy-default busybox-static > "$W/versions.txt"
  echo "kernel $kv" >> "$W/versions.txt"
  rm -rf "$R" "$I" "$W/kernel" "$W/kdeb"
}

build_all() {  # $1 = final directory to create, $2 = cache dir (for the rootfs tarball)
  local W="$1.tmp" tar
  rm -rf "$W"; mkdir -p "$W"
  build_kernel "$W"
  tar=$(rootfs_tar "$2")
  build_image "$W" "$tar"
  rm -rf "$1"; mv "$W" "$1"
}
