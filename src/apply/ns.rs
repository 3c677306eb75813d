//! Entering the container's mount namespace.

use std::io;

use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

/// Open the user namespace of `pid` (in the caller's view of /proc: call it
/// before entering the container's mount namespace). Refused with EINVAL
/// when it is the caller's own user namespace: the container has none.
pub fn open_user_ns(pid: i32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::unix::fs::MetadataExt;
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/user"))?;
    let theirs = ns.metadata()?;
    let ours = std::fs::metadata("/proc/self/ns/user")?;
    if (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    Ok(ns.into())
}

/// The container's mount namespace, opened once: `pid`'s, which must not
/// be the hook's own (a state that names a host process would otherwise
/// make the hook mount volumes on the host).
pub struct MountNs {
    theirs: std::fs::File,
    ours: std::fs::File,
}

impl MountNs {
    pub fn of(pid: i32) -> io::Result<MountNs> {
        use std::os::unix::fs::MetadataExt;
        let theirs = std::fs::File::open(format!("/proc/{pid}/ns/mnt"))?;
        let ours = std::fs::File::open("/proc/self/ns/mnt")?;
        let (a, b) = (theirs.metadata()?, ours.metadata()?);
        if (a.dev(), a.ino()) == (b.dev(), b.ino()) {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        Ok(MountNs { theirs, ours })
    }

    /// Enter the container's mount namespace (single-threaded callers only).
    pub fn enter(&self) -> io::Result<()> {
        move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&self.theirs),
            Some(LinkNameSpaceType::Mount),
        )?;
        Ok(())
    }

    /// Go back to the hook's own mount namespace.
    pub fn leave(&self) -> io::Result<()> {
        move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&self.ours),
            Some(LinkNameSpaceType::Mount),
        )?;
        Ok(())
    }
}
