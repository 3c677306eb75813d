//! fd-based mounting: clone the source tree detached (open_tree), set its
//! attributes atomically (mount_setattr), attach it onto an fd (move_mount).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::mount::{move_mount, open_tree, MoveMountFlags, OpenTreeFlags};

use crate::plan::MountAttrs;
use crate::sys;

/// Clone the mount tree at `source` (recursively, like `rbind`) into a
/// detached mount that only this process can see.
pub fn clone_tree(source: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    Ok(open_tree(
        source,
        "",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE
            | OpenTreeFlags::AT_EMPTY_PATH,
    )?)
}

/// Apply ro/nosuid/nodev/noexec to the whole detached tree, and make it
/// private (podman's default `rprivate`): nothing mounted later on the host
/// under the source shows up in the container, and nothing flows back.
/// Attributes are only ever added: a volume never becomes more permissive
/// than the host mount it comes from.
pub fn set_attrs(tree: BorrowedFd<'_>, attrs: &MountAttrs) -> io::Result<()> {
    let mut set = 0;
    for (on, bit) in [
        (attrs.read_only, sys::MOUNT_ATTR_RDONLY),
        (attrs.nosuid, sys::MOUNT_ATTR_NOSUID),
        (attrs.nodev, sys::MOUNT_ATTR_NODEV),
        (attrs.noexec, sys::MOUNT_ATTR_NOEXEC),
    ] {
        if on {
            set |= bit;
        }
    }
    sys::mount_setattr(
        tree,
        sys::SetAttr {
            set,
            clear: 0,
            propagation: sys::MS_PRIVATE,
            userns_fd: None,
        },
    )
}

/// Attach a detached tree onto the directory or file that `target` refers to.
pub fn attach(tree: &OwnedFd, target: BorrowedFd<'_>) -> io::Result<()> {
    move_mount(
        tree.as_fd(),
        "",
        target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )?;
    Ok(())
}

/// File systems that cannot be idmapped, by `statfs` magic. Others (FUSE
/// servers may opt in since Linux 6.12) are left to the kernel, whose
/// EINVAL is explained by the caller.
const NOT_IDMAPPABLE: &[(i64, &str)] = &[
    (0x6969, "NFS"),
    (0x794c_7630, "overlayfs"),
    (0xff53_4d42, "CIFS/SMB"),
];

/// The name of the source's file system when it is known not to support
/// idmapped mounts.
pub fn not_idmappable(source: BorrowedFd<'_>) -> io::Result<Option<&'static str>> {
    Ok(not_idmappable_fs(&rustix::fs::fstatfs(source)?))
}

/// The same, from a `statfs` result.
pub fn not_idmappable_fs(st: &rustix::fs::StatFs) -> Option<&'static str> {
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between targets
    let magic = st.f_type as i64;
    NOT_IDMAPPABLE
        .iter()
        .find(|(m, _)| *m == magic)
        .map(|(_, name)| *name)
}

/// Idmap the whole detached tree into the user namespace `userns`: on-disk
/// ids are seen (and written) through that namespace's mappings.
pub fn set_idmap(tree: BorrowedFd<'_>, userns: BorrowedFd<'_>) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    sys::mount_setattr(
        tree,
        sys::SetAttr {
            set: sys::MOUNT_ATTR_IDMAP,
            clear: 0,
            propagation: 0,
            userns_fd: Some(userns.as_raw_fd()),
        },
    )
}
