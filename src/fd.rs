//! fd helpers every layer needs: one wrapper per lookup, so that each
//! race-free idiom is spelled once.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};

/// `/proc/self/fd/N`: path calls on it act on the object the fd holds, even
/// an O_PATH fd, and never on a path someone could swap.
pub fn proc_fd(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The path the kernel holds for an open fd (its real path, symlinks resolved).
pub fn real_path(fd: BorrowedFd<'_>) -> std::io::Result<PathBuf> {
    std::fs::read_link(proc_fd(fd))
}

/// Open `name` beneath `dir` with `flags`: never through a symlink (the
/// last component included), never out of `dir`.
pub fn open_beneath(
    dir: BorrowedFd<'_>,
    name: impl rustix::path::Arg,
    flags: OFlags,
) -> rustix::io::Result<OwnedFd> {
    openat2(
        dir,
        name,
        flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
}

/// Open the directory `name` directly under `parent` for reading: never
/// through a symlink, never out of `parent`, never into another mount.
pub fn open_dir_beneath(parent: BorrowedFd<'_>, name: &CStr) -> rustix::io::Result<OwnedFd> {
    openat2(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH
            | ResolveFlags::NO_SYMLINKS
            | ResolveFlags::NO_MAGICLINKS
            | ResolveFlags::NO_XDEV,
    )
}
