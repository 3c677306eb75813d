//! The `nspawn` launcher's per-run mounts: each prepared volume (a detached
//! tree with its attributes set) is attached on a directory, or an empty
//! file, at `state_dir/nspawn/<machine>/<n>` in the host mount namespace,
//! where systemd-nspawn's `--bind` picks it up.
//!
//! `state_dir/nspawn` is made a private mount of itself first. A mount
//! attached under a shared parent (`/run` and `/` are shared under systemd)
//! is copied to every peer and slave namespace of that parent and becomes
//! shared itself, whatever the detached tree's own propagation was; under a
//! private parent it goes nowhere else, and its unmount leaves nothing
//! behind in other namespaces.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{mkdir, openat, statx, AtFlags, Mode, OFlags, StatxAttributes, StatxFlags, CWD};
use rustix::io::Errno;
use rustix::mount::{move_mount, open_tree, unmount, MoveMountFlags, OpenTreeFlags, UnmountFlags};

use super::mount;
use crate::sys;

/// `state_dir/nspawn`, created (0700) and made a private mount of itself
/// when it is not one yet. Call under the claims lock (two launchers must
/// not both bind it).
pub(crate) fn base(state_dir: &Path) -> io::Result<PathBuf> {
    let dir = state_dir.join("nspawn");
    match mkdir(&dir, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    let fd = open_dir(&dir)?;
    if !is_mount_root(&fd)? {
        let tree = open_tree(
            &fd,
            "",
            OpenTreeFlags::OPEN_TREE_CLONE
                | OpenTreeFlags::OPEN_TREE_CLOEXEC
                | OpenTreeFlags::AT_EMPTY_PATH,
        )?;
        move_mount(
            &tree,
            "",
            &fd,
            "",
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
        )?;
        private(&tree)?;
    } else {
        // Already ours (an earlier run); make sure it stayed private.
        private(&open_dir(&dir)?)?;
    }
    Ok(dir)
}

fn private(fd: &OwnedFd) -> io::Result<()> {
    sys::mount_setattr(
        fd.as_fd(),
        sys::SetAttr {
            propagation: sys::MS_PRIVATE,
            ..Default::default()
        },
    )
}

fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    Ok(openat(
        CWD,
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn is_mount_root(fd: &OwnedFd) -> io::Result<bool> {
    let st = statx(fd, "", AtFlags::EMPTY_PATH, StatxFlags::BASIC_STATS)?;
    if !st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT) {
        return Err(io::Error::other(
            "statx does not report STATX_ATTR_MOUNT_ROOT (Linux 5.8 or later is needed)",
        ));
    }
    Ok(st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT))
}

/// Create the run's directory `base/<machine>` (0700). An existing one is
/// what a launcher that was killed left behind: [`clear`] it first.
pub(crate) fn run_dir(base: &Path, machine: &str) -> io::Result<PathBuf> {
    let dir = base.join(machine);
    mkdir(&dir, Mode::from_raw_mode(0o700))?;
    Ok(dir)
}

/// Attach `tree` on a new directory (or, for a file volume, a new empty
/// file) `dir/<n>`; returns its path.
pub(crate) fn attach(dir: &Path, n: usize, tree: &OwnedFd, is_dir: bool) -> io::Result<PathBuf> {
    let path = dir.join(n.to_string());
    let target = if is_dir {
        mkdir(&path, Mode::from_raw_mode(0o700))?;
        open_dir(&path)?
    } else {
        drop(openat(
            CWD,
            &path,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?);
        openat(
            CWD,
            &path,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?
    };
    mount::attach(tree, target.as_fd())?;
    Ok(path)
}

/// Unmount (lazily, `MNT_DETACH`) whatever is mounted on each entry of
/// `dir`, remove the entries and `dir` itself. Tries everything; returns
/// every error. A missing `dir` is nothing to do.
pub(crate) fn clear(dir: &Path) -> Vec<String> {
    let mut errors = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return errors,
        Err(e) => return vec![format!("read {}: {e}", dir.display())],
    };
    for entry in entries {
        let path = match entry {
            Ok(e) => e.path(),
            Err(e) => {
                errors.push(format!("read {}: {e}", dir.display()));
                continue;
            }
        };
        if let Err(e) = unmount_all(&path) {
            errors.push(format!("umount {}: {e}", path.display()));
            continue;
        }
        let removed = match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => std::fs::remove_dir(&path),
            Ok(_) => std::fs::remove_file(&path),
            Err(e) => Err(e),
        };
        if let Err(e) = removed {
            errors.push(format!("remove {}: {e}", path.display()));
        }
    }
    if let Err(e) = std::fs::remove_dir(dir) {
        errors.push(format!("remove {}: {e}", dir.display()));
    }
    errors
}

/// Unmount every mount stacked on `path` (EINVAL: nothing is mounted there).
fn unmount_all(path: &Path) -> io::Result<()> {
    for _ in 0..64 {
        match unmount(path, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW) {
            Ok(()) => {}
            Err(Errno::INVAL) | Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::other("more than 64 mounts stacked"))
}
