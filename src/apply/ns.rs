//! Entering the container's mount namespace.

use std::io;

use rustix::process::{pidfd_open, Pid, PidfdFlags};
use rustix::thread::{
    move_into_link_name_space, move_into_thread_name_spaces, LinkNameSpaceType, ThreadNameSpaceType,
};

/// Join the mount namespace of `pid`. Through a pidfd where the kernel
/// allows it (no pid-reuse race), else through /proc/PID/ns/mnt. The
/// process must be single-threaded (setns(CLONE_NEWNS) refuses otherwise).
pub fn enter_mount_ns(pid: i32) -> io::Result<()> {
    let pid = Pid::from_raw(pid).ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))?;
    match pidfd_open(pid, PidfdFlags::empty()) {
        Ok(pidfd) => match move_into_thread_name_spaces(
            std::os::fd::AsFd::as_fd(&pidfd),
            ThreadNameSpaceType::MOUNT,
        ) {
            Ok(()) => return Ok(()),
            // Kernels before 5.8 take no pidfd in setns.
            Err(e) if e == rustix::io::Errno::INVAL => {}
            Err(e) => return Err(e.into()),
        },
        Err(e) if e == rustix::io::Errno::NOSYS => {}
        Err(e) => return Err(e.into()),
    }
    let ns = std::fs::File::open(format!("/proc/{}/ns/mnt", pid.as_raw_nonzero()))?;
    move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&ns),
        Some(LinkNameSpaceType::Mount),
    )?;
    Ok(())
}

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
